//! `essbot run`: the daemon's start-up checks, its loop and its HTTP listener, wired together.
//!
//! Start-up order matters to systemd: take the instance lock (SQLite), open the store
//! (migrations), resolve every démarche's mapping against DS, and only then send `READY=1`. A
//! démarche whose configuration names champs it lacks is logged as an error and left out; when
//! no démarche can be checked the start stops with exit code 2.
//!
//! Then the instance competes for the database ([`Leadership`]): with SQLite it is the only one
//! (the file lock) and is active at once; with PostgreSQL it is active if no other instance
//! is, and otherwise stands by, trying again every few seconds, until the active one dies. The
//! active instance checks its lock connection every few seconds: when that fails it stops its
//! cycle at the next safe point and exits with an error (systemd restarts it, and it stands by
//! until it can be active again).

use std::sync::Arc;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, Problem, Settings};
use crate::cycle::{self, CycleReport, Services};
use crate::daemon::{self, CycleOutcome, LoopExit, LoopSettings, Notifier};
use crate::ds::RequestStats;
use crate::lock::InstanceLock;
use crate::metrics::{self, HttpState, Metrics};
use crate::store::leadership::{CHECK_EVERY, STANDBY_POLL};
use crate::store::{Leadership, Store};

/// Why `run` did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

/// Opens everything `run` needs, checking the mappings against DS. A démarche whose mapping
/// fails is said loudly and left out (synced, neither checked nor written to) while the others
/// run; only when no démarche can be checked at all is it a configuration error (exit 2). DS
/// being unreachable is not one (the cycle records it).
///
/// # Errors
/// [`StartError::Config`] listing every mapping problem when none resolves, or a runtime
/// failure.
pub async fn start(
    settings: Settings,
    clock: Arc<dyn Clock>,
) -> Result<(Services, Option<InstanceLock>), StartError> {
    // Each error says what it is (another instance, a permission, a damaged file) and what to do.
    let lock = InstanceLock::for_database(&settings.database.url).map_err(anyhow::Error::new)?;
    let store = Store::connect(&settings.database)
        .await
        .map_err(|e| anyhow::anyhow!(e.operator_text()))?;
    let services = Services::with_store(settings, store, clock).context("starting")?;
    let mappings = cycle::mappings(&services, true)
        .await
        .context("resolving the démarches' champs")?;
    // A token DS refuses cannot serve any démarche: say it once and stop (exit 2: systemd does
    // not restart, RestartPreventExitStatus=2), rather than start a daemon that can do nothing.
    if mappings.resolved.is_empty()
        && let Some(refused) = mappings.unavailable.values().find(|u| u.token_refused)
    {
        return Err(ConfigError::one("ds.token", refused.operator.clone()).into());
    }
    for (demarche, why) in &mappings.unavailable {
        warn!(
            demarche,
            problem = %why.operator,
            "cannot read the démarche's champs from DS at start: the next cycle tries again"
        );
    }
    for (demarche, list) in &mappings.errors {
        for p in list {
            error!(
                demarche,
                problem = %p,
                "mapping problem: this démarche is synced but neither checked nor written to until the configuration is fixed (essbot config check --remote)"
            );
        }
    }
    for m in mappings.resolved.values() {
        for effect in m.rules_without_input() {
            warn!(demarche = m.demarche, %effect, "optional field not mapped");
        }
    }
    if mappings.resolved.is_empty() && mappings.unavailable.is_empty() {
        let problems: Vec<Problem> = mappings
            .errors
            .iter()
            .flat_map(|(demarche, list)| {
                list.iter()
                    .map(move |p| Problem::new(format!("démarche {demarche}"), p.clone()))
            })
            .collect();
        if !problems.is_empty() {
            return Err(ConfigError { problems }.into());
        }
    }
    Ok((services, lock))
}

/// SIGHUP: reads the configuration again and, when it is valid, uses it from the next cycle
/// on (démarches and their mappings, rules, milestones, alerts, the DS settings and token). A
/// configuration with problems is logged and ignored: the daemon goes on with the one it has.
/// What is bound at start (the database, the schedule, the HTTP listener, the shutdown
/// deadline) is kept, and a change to it is said to need a restart.
pub fn reload_on_sighup(
    current: &std::sync::Mutex<Services>,
    reload: &Reload,
    clock: &Arc<dyn Clock>,
) {
    info!("SIGHUP: reloading the configuration");
    let new = match reload() {
        Ok(s) => s,
        Err(e) => {
            error!(problems = %e, "configuration not reloaded: it has problems; essbot goes on with the one it runs");
            return;
        }
    };
    if let Err(e) = new.require_token() {
        error!(problem = %e, "configuration not reloaded: essbot goes on with the one it runs");
        return;
    }
    let mut guard = current.lock().expect("services lock");
    let old = guard.settings.clone();
    for (key, changed) in [
        ("database.url", old.database.url != new.database.url),
        (
            "schedule",
            old.schedule.cron_expr != new.schedule.cron_expr
                || old.schedule.timezone != new.schedule.timezone,
        ),
        ("http.listen", old.http.listen != new.http.listen),
        (
            "daemon.shutdown_deadline_secs",
            old.daemon.shutdown_deadline != new.daemon.shutdown_deadline,
        ),
    ] {
        if changed {
            warn!(
                key,
                "this setting changed: it takes effect at the next restart (systemctl restart essbot)"
            );
        }
    }
    let mut kept = new;
    kept.database = old.database.clone();
    kept.schedule = old.schedule.clone();
    kept.http = old.http.clone();
    kept.daemon = old.daemon.clone();
    match Services::with_store(kept, guard.store.clone(), clock.clone()) {
        Ok(services) => {
            *guard = services;
            info!("configuration reloaded: it applies from the next cycle");
        }
        Err(e) => {
            error!(error = %e, "configuration not reloaded: essbot goes on with the one it runs");
        }
    }
}

/// Sets `essbot_findings` from the store's open findings (a failure to read them is logged,
/// the gauge kept).
async fn refresh_findings(store: &Store, metrics: &Metrics) {
    match store.open_findings_by_rule().await {
        Ok(by_rule) => metrics.set_open_findings(&by_rule),
        Err(e) => {
            warn!(error = %e.operator_text(), "cannot read the open findings for the metrics")
        }
    }
}

/// Maps a cycle's result to the daemon's outcome and feeds the metrics; `before` and `after`
/// are the DS client's request counters around the cycle.
pub fn record(
    metrics: &Metrics,
    result: &Result<CycleReport, cycle::CycleError>,
    before: &RequestStats,
    after: &RequestStats,
) -> CycleOutcome {
    for (status, n) in &after.by_status {
        let delta = n - before.by_status.get(status).copied().unwrap_or(0);
        if delta > 0 {
            metrics.api_requests(&status.to_string(), delta);
        }
    }
    let transport = after.transport_errors - before.transport_errors;
    if transport > 0 {
        metrics.api_requests("error", transport);
    }
    metrics.api_rate_limited_by(after.rate_limited - before.rate_limited);
    match result {
        Ok(report) => {
            metrics.dossiers_synced(report.synced);
            metrics.dossiers_checked(report.checked as u64);
            metrics.set_outbox_pending(report.outbox_pending);
            metrics.alerts_sent(report.alerts_sent);
            metrics.alerts_failed(report.alerts_failed);
            metrics.set_milestones_overdue(i64::try_from(report.overdue).unwrap_or(i64::MAX));
            match report.outcome.as_str() {
                "ok" => CycleOutcome::Succeeded,
                "interrupted" => CycleOutcome::Interrupted,
                _ => CycleOutcome::Failed,
            }
        }
        Err(e) => {
            error!(error = %e, "cycle failed");
            CycleOutcome::Failed
        }
    }
}

/// Makes this process the active instance for `essbot run --once`: at once, or not at all.
///
/// # Errors
/// Another instance is active on the database (PostgreSQL; with SQLite the file lock already
/// said so), or the database failed.
pub async fn lead_once(services: &Services) -> anyhow::Result<Leadership> {
    let mut leadership = Leadership::new(&services.store);
    let now = services.clock.now();
    if leadership
        .try_acquire(now)
        .await
        .context("taking the database lock")?
    {
        return Ok(leadership);
    }
    let holder = services
        .store
        .leadership_state(now)
        .await
        .ok()
        .and_then(|s| s.holder)
        .unwrap_or_else(|| "unknown".into());
    anyhow::bail!(
        "another essbot instance is active on this database (instance {holder}): it runs the \
         cycles; stop it first to run one by hand"
    )
}

/// Reads the configuration again, for SIGHUP: the same file and the environment the daemon
/// started with.
pub type Reload = Box<dyn Fn() -> Result<Settings, ConfigError> + Send + Sync>;

/// Runs the daemon until SIGTERM/SIGINT. SIGHUP reloads the configuration with `reload`
/// (see [`reload_on_sighup`]).
///
/// # Errors
/// A start-up failure, or the loss of the database lock (PostgreSQL) while active: then this
/// instance has stopped acting and exits, and a standby takes over. Once started, cycle
/// failures are logged and recorded, not returned.
pub async fn run_daemon(settings: Settings, reload: Reload) -> Result<(), StartError> {
    let cancel = CancellationToken::new();
    daemon::cancel_on_signals(cancel.clone()).context("watching signals")?;
    // Installed before anything slow: from here on SIGHUP never kills the daemon.
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("watching SIGHUP")?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let loop_settings = LoopSettings::from_settings(&settings);
    let listen = settings.http.listen;
    let (services, _lock) = start(settings, clock.clone()).await?;
    let metrics = Metrics::new();
    if let Ok(cycles) = services.store.recent_cycles(50).await
        && let Some(at) = cycles
            .iter()
            .find(|c| c.outcome == crate::store::CycleOutcome::Ok)
            .and_then(|c| c.finished_at)
    {
        metrics.set_last_success(at);
    }
    refresh_findings(&services.store, &metrics).await;
    let current = Arc::new(std::sync::Mutex::new(services.clone()));
    let reloader = {
        let current = current.clone();
        let clock = clock.clone();
        let stop = cancel.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    got = hangups.recv() => {
                        if got.is_none() {
                            break;
                        }
                        reload_on_sighup(&current, &reload, &clock);
                    }
                }
            }
        })
    };

    let http_stop = CancellationToken::new();
    let http = match listen {
        Some(addr) => {
            let listener = metrics::bind(addr, false)
                .await
                .context("starting the metrics listener")?;
            info!(%addr, "serving /healthz and /metrics");
            let state = HttpState {
                metrics: metrics.clone(),
                schedule: loop_settings.schedule.clone(),
                timezone: loop_settings.timezone,
                clock: clock.clone(),
            };
            Some(tokio::spawn(metrics::serve(
                listener,
                state,
                http_stop.clone(),
            )))
        }
        None => None,
    };

    let notifier = Notifier::from_env();
    notifier.ready();
    let mut leadership = Leadership::new(&services.store);
    let result = if stand_by(&mut leadership, &services, &metrics, &notifier, &cancel).await {
        act(
            leadership,
            &services,
            &current,
            &loop_settings,
            &metrics,
            &notifier,
            &cancel,
        )
        .await
    } else {
        leadership.release(clock.now()).await;
        Ok(())
    };
    http_stop.cancel();
    if let Some(task) = http {
        let _ = task.await;
    }
    reloader.abort();
    services.store.close().await;
    result
}

/// Waits until this instance is the active one: true then, false when stopped first.
async fn stand_by(
    leadership: &mut Leadership,
    services: &Services,
    metrics: &Metrics,
    notifier: &Notifier,
    cancel: &CancellationToken,
) -> bool {
    let mut announced = false;
    loop {
        match leadership.try_acquire(services.clock.now()).await {
            Ok(true) => {
                info!(term = leadership.term(), "this instance is the active one");
                metrics.set_active(true);
                return true;
            }
            Ok(false) if !announced => {
                info!("another essbot instance is active on this database: standing by");
                notifier.status("instance de secours : une autre instance est active");
                metrics.set_active(false);
                announced = true;
            }
            Ok(false) => {}
            Err(e) => warn!(error = %e, "cannot try the database lock; trying again"),
        }
        tokio::select! {
            biased;
            () = cancel.cancelled() => return false,
            () = tokio::time::sleep(STANDBY_POLL) => {}
        }
    }
}

/// The active instance: the cycle loop (each cycle with the configuration as last reloaded,
/// `current`), while a watcher checks the lock connection every [`CHECK_EVERY`] and stops the
/// loop when it fails.
async fn act(
    leadership: Leadership,
    services: &Services,
    current: &std::sync::Mutex<Services>,
    loop_settings: &LoopSettings,
    metrics: &Metrics,
    notifier: &Notifier,
    cancel: &CancellationToken,
) -> Result<(), StartError> {
    let clock = services.clock.clone();
    // Cancelled by a stop request (its parent) or by the watcher when the lock is lost.
    let acting = cancel.child_token();
    let watcher = tokio::spawn({
        let (acting, clock) = (acting.clone(), clock.clone());
        let mut leadership = leadership;
        async move {
            loop {
                tokio::select! {
                    biased;
                    () = acting.cancelled() => return (leadership, false),
                    () = tokio::time::sleep(CHECK_EVERY) => {}
                }
                if let Err(e) = leadership.check(clock.now()).await {
                    error!(error = %e, "lost the database lock: this instance stops acting");
                    acting.cancel();
                    return (leadership, true);
                }
            }
        }
    });
    let last = cycle::last_finished(&services.store)
        .await
        .context("reading the last cycle")?;
    let exit = daemon::run_loop(
        loop_settings,
        clock.as_ref(),
        notifier,
        metrics,
        last,
        acting.clone(),
        |ctx| {
            // The configuration as last (re)loaded: a SIGHUP takes effect at the next cycle.
            let services = current.lock().expect("services lock").clone();
            let metrics = metrics.clone();
            async move {
                let before = services.client.stats();
                let result = cycle::run_once(&services, &ctx.cancel).await;
                let outcome = record(&metrics, &result, &before, &services.client.stats());
                refresh_findings(&services.store, &metrics).await;
                outcome
            }
        },
    )
    .await;
    acting.cancel();
    let (leadership, lost) = watcher.await.context("the lock watcher failed")?;
    match exit {
        LoopExit::Stopped { cycles } => info!(cycles, "essbot stopped"),
        LoopExit::DeadlineExceeded { cycles } => {
            warn!(
                cycles,
                "essbot stopped after abandoning the cycle in flight"
            )
        }
    }
    if lost {
        metrics.set_active(false);
        return Err(anyhow::anyhow!(
            "lost the database lock connection: another instance may be active now; this one \
             stopped acting (restart it to stand by)"
        )
        .into());
    }
    leadership.release(clock.now()).await;
    Ok(())
}
