//! Counters for Prometheus and the health check, and the optional HTTP listener serving them.
//!
//! The listener is off by default (`[http] listen` empty). When on, it serves
//! - `/healthz`: on the active instance, 200 when the last cycle succeeded and the last success
//!   is not "older than twice the period" ([`crate::schedule::is_stale`]), 503 otherwise; on a
//!   standby (PostgreSQL, another instance is active), 200 with `"status": "standby"`. A short
//!   JSON body says which role and why;
//! - `/metrics`: the Prometheus text exposition format (0.0.4), through `prometheus-client`.
//!
//! It binds loopback only unless the caller explicitly allows otherwise ([`check_listen_addr`]):
//! the metrics say how many dossiers and alerts there are, which is nobody else's business, and
//! a node exporter or a local Prometheus agent can reach loopback.
//!
//! [`Metrics`] is a cheap clone (one `Arc`); the cycle, the DS client and the alerts each hold one
//! and move their counters, whether or not the listener runs. Every series is exposed at 0 from
//! the start except those keyed by a rule (`essbot_findings`) or an HTTP status
//! (`essbot_api_requests_total`), which appear with their first value.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::daemon::CycleOutcome;

/// Why the metrics listener could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// `[http] listen` is not a loopback address and the caller did not allow that.
    #[error(
        "http.listen {0} is not a loopback address: the health and metrics listener only binds 127.0.0.0/8 or ::1"
    )]
    NotLoopback(SocketAddr),
    /// The address could not be bound (in use, permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("health and metrics listener failed: {0}")]
    Serve(#[source] std::io::Error),
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    rule: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    commit: &'static str,
}

/// What the health check looks at: this instance's role, the last cycle and the last
/// successful one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Health {
    /// `active` or `standby` once the daemon knows (`None` before it tried).
    pub role: Option<&'static str>,
    pub last_cycle_at: Option<DateTime<Utc>>,
    pub last_outcome: Option<CycleOutcome>,
    pub last_success_at: Option<DateTime<Utc>>,
}

impl Health {
    /// The verdict at `now`: healthy when the last cycle succeeded and the last success is not
    /// stale for `schedule` ([`crate::schedule::is_stale`]); otherwise the reason, in French for
    /// the operator.
    pub fn verdict(
        &self,
        now: DateTime<Utc>,
        schedule: &cron::Schedule,
        tz: Tz,
    ) -> Result<(), &'static str> {
        match self.last_outcome {
            None => return Err("aucun cycle terminé depuis le démarrage"),
            Some(CycleOutcome::Failed) => return Err("le dernier cycle a échoué"),
            Some(CycleOutcome::Interrupted) => return Err("le dernier cycle a été interrompu"),
            Some(CycleOutcome::Succeeded) => {}
        }
        if crate::schedule::is_stale(self.last_success_at, now, schedule, tz) {
            return Err("le dernier cycle réussi date de plus de deux périodes");
        }
        Ok(())
    }
}

/// essbot's metrics. Clones share the same counters.
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    cycles: Family<OutcomeLabels, Counter>,
    cycle_duration: Histogram,
    dossiers_synced: Counter,
    dossiers_checked: Counter,
    findings: Family<RuleLabels, Gauge>,
    api_requests: Family<StatusLabels, Counter>,
    api_rate_limited: Counter,
    outbox_pending: Gauge,
    alerts_sent: Counter,
    alerts_failed: Counter,
    milestones_overdue: Gauge,
    last_cycle_timestamp: Gauge,
    last_success_timestamp: Gauge,
    active: Gauge,
    health: Mutex<Health>,
}

/// Cycle durations run from seconds (nothing changed) to many minutes (a full sync).
const DURATION_BUCKETS: [f64; 11] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every essbot metric at zero. Counter names get their `_total` suffix from
    /// `prometheus-client`.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let cycles = Family::<OutcomeLabels, Counter>::default();
        for outcome in [
            CycleOutcome::Succeeded,
            CycleOutcome::Failed,
            CycleOutcome::Interrupted,
        ] {
            // Present at 0 from the start, so that rate() and alerts see every series.
            let _ = cycles.get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            });
        }
        let cycle_duration = Histogram::new(DURATION_BUCKETS);
        let dossiers_synced = Counter::default();
        let dossiers_checked = Counter::default();
        let findings = Family::<RuleLabels, Gauge>::default();
        let api_requests = Family::<StatusLabels, Counter>::default();
        let api_rate_limited = Counter::default();
        let outbox_pending = Gauge::default();
        let alerts_sent = Counter::default();
        let alerts_failed = Counter::default();
        let milestones_overdue = Gauge::default();
        let last_cycle_timestamp = Gauge::default();
        let last_success_timestamp = Gauge::default();
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: crate::build::VERSION,
                commit: crate::build::COMMIT,
            })
            .set(1);
        let active = Gauge::default();

        registry.register(
            "essbot_cycles",
            "Cycles finished, by outcome (succeeded, failed, interrupted)",
            cycles.clone(),
        );
        registry.register(
            "essbot_cycle_duration_seconds",
            "Duration of cycles, in seconds",
            cycle_duration.clone(),
        );
        registry.register(
            "essbot_dossiers_synced",
            "Dossiers read from DS and stored",
            dossiers_synced.clone(),
        );
        registry.register(
            "essbot_dossiers_checked",
            "Dossiers pre-checked",
            dossiers_checked.clone(),
        );
        registry.register(
            "essbot_findings",
            "Open findings of the last pre-check, by rule",
            findings.clone(),
        );
        registry.register(
            "essbot_api_requests",
            "Requests to the DS API, by HTTP status (or \"error\" when no response came)",
            api_requests.clone(),
        );
        registry.register(
            "essbot_api_rate_limited",
            "DS API answers 429 Too Many Requests",
            api_rate_limited.clone(),
        );
        registry.register(
            "essbot_outbox_pending",
            "Writes to DS waiting in the outbox",
            outbox_pending.clone(),
        );
        registry.register(
            "essbot_alerts_sent",
            "Alerts delivered",
            alerts_sent.clone(),
        );
        registry.register(
            "essbot_alerts_failed",
            "Alert deliveries that failed",
            alerts_failed.clone(),
        );
        registry.register(
            "essbot_milestones_overdue",
            "Financing milestones past their due date",
            milestones_overdue.clone(),
        );
        registry.register(
            "essbot_build_info",
            "The running build: version and git commit (\"unknown\" when built outside git), always 1",
            build_info,
        );
        registry.register(
            "essbot_last_cycle_timestamp_seconds",
            "When the last cycle ended, in seconds since the Unix epoch (0: none since start)",
            last_cycle_timestamp.clone(),
        );
        registry.register(
            "essbot_last_success_timestamp_seconds",
            "When the last successful cycle ended, in seconds since the Unix epoch (0: none known)",
            last_success_timestamp.clone(),
        );
        registry.register(
            "essbot_active",
            "1 when this instance is the active one on its database, 0 on standby",
            active.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                cycles,
                cycle_duration,
                dossiers_synced,
                dossiers_checked,
                findings,
                api_requests,
                api_rate_limited,
                outbox_pending,
                alerts_sent,
                alerts_failed,
                milestones_overdue,
                last_cycle_timestamp,
                last_success_timestamp,
                active,
                health: Mutex::new(Health::default()),
            }),
        }
    }

    /// Records a finished cycle: its outcome, its duration, and the health state.
    /// [`crate::daemon::run_loop`] calls this; `essbot run --once` may too.
    pub fn cycle_finished(
        &self,
        outcome: CycleOutcome,
        finished_at: DateTime<Utc>,
        duration: Duration,
    ) {
        self.inner
            .cycles
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            })
            .inc();
        self.inner.cycle_duration.observe(duration.as_secs_f64());
        self.set_last_cycle(finished_at, outcome);
    }

    /// Seeds the health state, e.g. from the last cycle stored in the database at start, so that
    /// a restart does not report unhealthy until the next cycle ends.
    pub fn set_last_cycle(&self, at: DateTime<Utc>, outcome: CycleOutcome) {
        let mut h = self.inner.health.lock().expect("health lock");
        h.last_cycle_at = Some(at);
        h.last_outcome = Some(outcome);
        self.inner.last_cycle_timestamp.set(at.timestamp());
        if outcome == CycleOutcome::Succeeded {
            h.last_success_at = Some(at);
            self.inner.last_success_timestamp.set(at.timestamp());
        }
    }

    /// Seeds the last successful cycle from the store at start, so that the timestamp metric
    /// and the staleness check survive a restart.
    pub fn set_last_success(&self, at: DateTime<Utc>) {
        let mut h = self.inner.health.lock().expect("health lock");
        if h.last_success_at.is_none_or(|t| t < at) {
            h.last_success_at = Some(at);
            self.inner.last_success_timestamp.set(at.timestamp());
        }
    }

    /// Records this instance's role: `true` active, `false` standby.
    pub fn set_active(&self, active: bool) {
        self.inner.active.set(i64::from(active));
        self.inner.health.lock().expect("health lock").role =
            Some(if active { "active" } else { "standby" });
    }

    /// The health state as it is now.
    pub fn health(&self) -> Health {
        *self.inner.health.lock().expect("health lock")
    }

    /// `n` more dossiers read from DS.
    pub fn dossiers_synced(&self, n: u64) {
        self.inner.dossiers_synced.inc_by(n);
    }

    /// `n` more dossiers pre-checked.
    pub fn dossiers_checked(&self, n: u64) {
        self.inner.dossiers_checked.inc_by(n);
    }

    /// Every rule's open findings, as the store has them (0 for a rule with none): at start, so
    /// that the gauge survives a restart, and after each cycle.
    pub fn set_open_findings(&self, by_rule: &std::collections::BTreeMap<String, i64>) {
        for rule in crate::rules::RuleId::ALL {
            let id = rule.as_str();
            self.set_findings(id, by_rule.get(id).copied().unwrap_or(0));
        }
    }

    /// The number of open findings for `rule` (e.g. `LI-ADH-02`) after the last pre-check.
    pub fn set_findings(&self, rule: &str, n: i64) {
        self.inner
            .findings
            .get_or_create(&RuleLabels { rule: rule.into() })
            .set(n);
    }

    /// One request to DS answered with `status` (an HTTP code such as `200`, or `error` when no
    /// answer came: timeout, connection refused).
    pub fn api_request(&self, status: &str) {
        self.api_requests(status, 1);
    }

    /// `n` requests to DS answered with `status` (as [`Metrics::api_request`]).
    pub fn api_requests(&self, status: &str, n: u64) {
        self.inner
            .api_requests
            .get_or_create(&StatusLabels {
                status: status.into(),
            })
            .inc_by(n);
    }

    /// One 429 from DS.
    pub fn api_rate_limited(&self) {
        self.inner.api_rate_limited.inc();
    }

    /// `n` 429s from DS.
    pub fn api_rate_limited_by(&self, n: u64) {
        self.inner.api_rate_limited.inc_by(n);
    }

    /// Writes waiting in the outbox now.
    pub fn set_outbox_pending(&self, n: i64) {
        self.inner.outbox_pending.set(n);
    }

    /// One alert delivered.
    pub fn alert_sent(&self) {
        self.alerts_sent(1);
    }

    /// `n` alerts delivered.
    pub fn alerts_sent(&self, n: u64) {
        self.inner.alerts_sent.inc_by(n);
    }

    /// One alert delivery failed.
    pub fn alert_failed(&self) {
        self.alerts_failed(1);
    }

    /// `n` alert deliveries failed.
    pub fn alerts_failed(&self, n: u64) {
        self.inner.alerts_failed.inc_by(n);
    }

    /// Milestones past due now.
    pub fn set_milestones_overdue(&self, n: i64) {
        self.inner.milestones_overdue.set(n);
    }

    /// The metrics in the Prometheus text format (0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.inner.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Refuses a listen address off loopback unless `allow_non_loopback` (module docs).
///
/// # Errors
/// [`MetricsError::NotLoopback`].
pub fn check_listen_addr(addr: SocketAddr, allow_non_loopback: bool) -> Result<(), MetricsError> {
    if addr.ip().is_loopback() || allow_non_loopback {
        Ok(())
    } else {
        Err(MetricsError::NotLoopback(addr))
    }
}

/// Checks and binds the listen address.
///
/// # Errors
/// [`MetricsError::NotLoopback`] or [`MetricsError::Bind`].
pub async fn bind(addr: SocketAddr, allow_non_loopback: bool) -> Result<TcpListener, MetricsError> {
    check_listen_addr(addr, allow_non_loopback)?;
    TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError::Bind { addr, source })
}

/// What the HTTP handlers need: the metrics, and the schedule and clock to judge staleness.
#[derive(Debug, Clone)]
pub struct HttpState {
    pub metrics: Metrics,
    pub schedule: cron::Schedule,
    pub timezone: Tz,
    pub clock: Arc<dyn Clock>,
}

/// The `/healthz` and `/metrics` routes.
pub fn router(state: HttpState) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Serves [`router`] on `listener` until `cancel` is cancelled, then finishes the requests in
/// flight and returns.
///
/// # Errors
/// [`MetricsError::Serve`] when the server fails.
///
/// # Cancel safety
/// Meant to be spawned; stop it with `cancel`, not by dropping it.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    cancel: CancellationToken,
) -> Result<(), MetricsError> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
        .map_err(MetricsError::Serve)
}

async fn healthz(State(state): State<HttpState>) -> Response {
    let health = state.metrics.health();
    if health.role == Some("standby") {
        // A standby is healthy as such: it is ready to take over.
        let body = serde_json::json!({
            "status": "standby",
            "role": "standby",
            "reason": "une autre instance est active sur cette base ; celle-ci prendra le relais",
        });
        return (StatusCode::OK, axum::Json(body)).into_response();
    }
    let verdict = health.verdict(state.clock.now(), &state.schedule, state.timezone);
    let body = serde_json::json!({
        "status": if verdict.is_ok() { "ok" } else { "unhealthy" },
        "role": health.role,
        "reason": verdict.err(),
        "last_cycle": health.last_cycle_at.map(|t| t.to_rfc3339()),
        "last_outcome": health.last_outcome.map(CycleOutcome::as_str),
        "last_success": health.last_success_at.map(|t| t.to_rfc3339()),
    });
    let status = if verdict.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(state): State<HttpState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        state.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Paris;
    use std::str::FromStr;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn only_loopback_unless_allowed() {
        for (addr, ok) in [
            ("127.0.0.1:9187", true),
            ("127.1.2.3:9187", true),
            ("[::1]:9187", true),
            ("0.0.0.0:9187", false),
            ("192.168.1.10:9187", false),
            ("[::]:9187", false),
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(check_listen_addr(addr, false).is_ok(), ok, "{addr}");
            assert!(check_listen_addr(addr, true).is_ok(), "{addr}");
        }
        let err = check_listen_addr("0.0.0.0:9187".parse().unwrap(), false).unwrap_err();
        assert!(err.to_string().contains("0.0.0.0:9187"), "{err}");
    }

    #[test]
    fn health_verdicts() {
        let s = cron::Schedule::from_str("0 */15 7-20 * * Mon-Fri").unwrap();
        let now = utc("2026-06-10T14:20:00+02:00");
        let m = Metrics::new();
        assert!(m.health().verdict(now, &s, Paris).is_err());
        m.set_last_cycle(utc("2026-06-10T14:15:30+02:00"), CycleOutcome::Succeeded);
        assert_eq!(m.health().verdict(now, &s, Paris), Ok(()));
        // Two fires later without another success: stale.
        assert!(
            m.health()
                .verdict(utc("2026-06-10T14:45:00+02:00"), &s, Paris)
                .is_err()
        );
        m.set_last_cycle(utc("2026-06-10T14:31:00+02:00"), CycleOutcome::Failed);
        assert_eq!(
            m.health()
                .verdict(utc("2026-06-10T14:32:00+02:00"), &s, Paris),
            Err("le dernier cycle a échoué")
        );
        assert_eq!(
            m.health().last_success_at,
            Some(utc("2026-06-10T14:15:30+02:00"))
        );
    }

    #[test]
    fn every_metric_is_exposed_from_the_start() {
        let text = Metrics::new().render();
        for name in [
            "essbot_cycles_total{outcome=\"succeeded\"} 0",
            "essbot_cycles_total{outcome=\"failed\"} 0",
            "essbot_cycle_duration_seconds_count 0",
            "essbot_dossiers_synced_total 0",
            "essbot_dossiers_checked_total 0",
            "essbot_api_rate_limited_total 0",
            "essbot_outbox_pending 0",
            "essbot_alerts_sent_total 0",
            "essbot_alerts_failed_total 0",
            "essbot_milestones_overdue 0",
            "essbot_active 0",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
        // Families keyed by rule or status appear with their first series.
        assert!(!text.contains("essbot_findings"), "{text}");
        let m = Metrics::new();
        m.set_findings("LI-ADH-02", 3);
        m.api_request("200");
        let text = m.render();
        assert!(
            text.contains("essbot_findings{rule=\"LI-ADH-02\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("essbot_api_requests_total{status=\"200\"} 1"),
            "{text}"
        );
    }
}
