//! Running as a service: the health and metrics listener over real HTTP, signals, the instance
//! lock, and the deployment files (unit verified by `systemd-analyze`, example configuration
//! valid).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use essbot::clock::{Clock, FixedClock};
use essbot::daemon::{self, CycleOutcome};
use essbot::metrics::{self, HttpState, Metrics};
use tokio_util::sync::CancellationToken;

const TIMEOUT: Duration = Duration::from_secs(30);

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A running listener on 127.0.0.1:0 and what it serves.
struct Listener {
    base: String,
    metrics: Metrics,
    clock: FixedClock,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), metrics::MetricsError>>,
}

async fn start_listener() -> Listener {
    let listener = metrics::bind("127.0.0.1:0".parse().unwrap(), false)
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let m = Metrics::new();
    let clock = FixedClock::new(utc("2026-06-10T14:20:00+02:00"));
    let cancel = CancellationToken::new();
    let state = HttpState {
        metrics: m.clone(),
        schedule: cron::Schedule::from_str("0 */15 7-20 * * Mon-Fri").unwrap(),
        timezone: chrono_tz::Europe::Paris,
        clock: Arc::new(clock.clone()),
    };
    let task = tokio::spawn(metrics::serve(listener, state, cancel.clone()));
    Listener {
        base,
        metrics: m,
        clock,
        cancel,
        task,
    }
}

async fn get(url: &str) -> (u16, String, String) {
    let resp = tokio::time::timeout(TIMEOUT, reqwest::get(url))
        .await
        .expect("an answer in time")
        .expect("an HTTP answer");
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ctype, resp.text().await.unwrap())
}

fn value(scrape: &prometheus_parse::Scrape, metric: &str, label: Option<(&str, &str)>) -> f64 {
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .unwrap_or_else(|| panic!("no sample {metric} {label:?}"));
    match &sample.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => *v,
        other => panic!("{metric}: unexpected {other:?}"),
    }
}

#[tokio::test]
async fn metrics_are_served_in_the_prometheus_text_format() {
    let l = start_listener().await;
    let m = &l.metrics;
    m.cycle_finished(
        CycleOutcome::Succeeded,
        l.clock.now(),
        Duration::from_millis(1500),
    );
    m.cycle_finished(CycleOutcome::Failed, l.clock.now(), Duration::from_secs(40));
    m.dossiers_synced(12);
    m.dossiers_checked(7);
    m.set_findings("LI-ADH-02", 2);
    m.set_findings("LI-TER-01", 1);
    m.api_request("200");
    m.api_request("200");
    m.api_request("429");
    m.api_rate_limited();
    m.set_outbox_pending(4);
    m.alert_sent();
    m.alert_failed();
    m.set_milestones_overdue(3);

    let (status, ctype, body) = get(&format!("{}/metrics", l.base)).await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition format");

    let cycles = |outcome| value(&scrape, "essbot_cycles_total", Some(("outcome", outcome)));
    assert_eq!(cycles("succeeded"), 1.0);
    assert_eq!(cycles("failed"), 1.0);
    assert_eq!(cycles("interrupted"), 0.0);
    let duration = scrape
        .samples
        .iter()
        .find(|s| s.metric == "essbot_cycle_duration_seconds")
        .expect("the duration histogram");
    let prometheus_parse::Value::Histogram(buckets) = &duration.value else {
        panic!("not a histogram: {duration:?}")
    };
    let le = |bound: f64| buckets.iter().find(|b| b.less_than == bound).unwrap().count;
    assert_eq!(le(1.0), 0.0);
    assert_eq!(le(2.5), 1.0);
    assert_eq!(le(60.0), 2.0);
    assert_eq!(
        value(&scrape, "essbot_cycle_duration_seconds_count", None),
        2.0
    );
    assert_eq!(value(&scrape, "essbot_dossiers_synced_total", None), 12.0);
    assert_eq!(value(&scrape, "essbot_dossiers_checked_total", None), 7.0);
    assert_eq!(
        value(&scrape, "essbot_findings", Some(("rule", "LI-ADH-02"))),
        2.0
    );
    assert_eq!(
        value(&scrape, "essbot_findings", Some(("rule", "LI-TER-01"))),
        1.0
    );
    assert_eq!(
        value(
            &scrape,
            "essbot_api_requests_total",
            Some(("status", "200"))
        ),
        2.0
    );
    assert_eq!(
        value(
            &scrape,
            "essbot_api_requests_total",
            Some(("status", "429"))
        ),
        1.0
    );
    assert_eq!(value(&scrape, "essbot_api_rate_limited_total", None), 1.0);
    assert_eq!(value(&scrape, "essbot_outbox_pending", None), 4.0);
    assert_eq!(value(&scrape, "essbot_alerts_sent_total", None), 1.0);
    assert_eq!(value(&scrape, "essbot_alerts_failed_total", None), 1.0);
    assert_eq!(value(&scrape, "essbot_milestones_overdue", None), 3.0);
    // Typed as declared, not guessed.
    let typed = scrape
        .samples
        .iter()
        .find(|s| s.metric == "essbot_outbox_pending")
        .unwrap();
    assert!(matches!(typed.value, prometheus_parse::Value::Gauge(_)));

    l.cancel.cancel();
    tokio::time::timeout(TIMEOUT, l.task)
        .await
        .expect("the listener stops when cancelled")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn healthz_follows_the_last_cycle_and_the_schedule() {
    let l = start_listener().await;
    let url = format!("{}/healthz", l.base);
    let json = |body: &str| serde_json::from_str::<serde_json::Value>(body).unwrap();

    // Nothing ran yet.
    let (status, _, body) = get(&url).await;
    assert_eq!(status, 503);
    assert_eq!(json(&body)["status"], "unhealthy");

    // The 14:15 cycle succeeded; it is 14:20.
    l.metrics
        .set_last_cycle(utc("2026-06-10T14:15:40+02:00"), CycleOutcome::Succeeded);
    let (status, ctype, body) = get(&url).await;
    assert_eq!(status, 200, "{body}");
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let body = json(&body);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["last_outcome"], "succeeded");

    // 14:31: the 14:30 cycle may be running; still healthy.
    l.clock.set(utc("2026-06-10T14:31:00+02:00"));
    assert_eq!(get(&url).await.0, 200);

    // 14:45 came too without a success: older than twice the period.
    l.clock.set(utc("2026-06-10T14:46:00+02:00"));
    let (status, _, body) = get(&url).await;
    assert_eq!(status, 503);
    assert!(
        json(&body)["reason"]
            .as_str()
            .unwrap()
            .contains("deux périodes"),
        "{body}"
    );

    // A fresh failure is unhealthy at once.
    l.metrics
        .set_last_cycle(utc("2026-06-10T14:46:30+02:00"), CycleOutcome::Failed);
    let (status, _, body) = get(&url).await;
    assert_eq!(status, 503);
    assert_eq!(json(&body)["last_outcome"], "failed");

    // 404 elsewhere.
    assert_eq!(get(&format!("{}/", l.base)).await.0, 404);
    l.cancel.cancel();
}

#[tokio::test]
async fn the_listener_refuses_non_loopback_addresses_unless_allowed() {
    let err = metrics::bind("0.0.0.0:0".parse().unwrap(), false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, metrics::MetricsError::NotLoopback(_)),
        "{err}"
    );
    assert!(
        metrics::bind("0.0.0.0:0".parse().unwrap(), true)
            .await
            .is_ok()
    );
}

/// SIGTERM and SIGINT cancel the root token. The handlers are installed before the signal is
/// sent, and stay installed for the life of this test process (Tokio never removes them), so
/// the signals cannot kill it.
#[tokio::test]
async fn sigterm_and_sigint_cancel_the_token() {
    for signal in ["TERM", "INT"] {
        let cancel = CancellationToken::new();
        let task = daemon::cancel_on_signals(cancel.clone()).unwrap();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(std::process::id().to_string())
            .status()
            .expect("kill(1)");
        assert!(status.success());
        tokio::time::timeout(TIMEOUT, cancel.cancelled())
            .await
            .unwrap_or_else(|_| panic!("SIG{signal} did not cancel the token"));
        tokio::time::timeout(TIMEOUT, task).await.unwrap().unwrap();
    }
}

#[test]
fn a_second_daemon_on_the_same_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/essbot.db?mode=rwc", dir.path().display());
    let _first = essbot::lock::InstanceLock::for_database(&url)
        .unwrap()
        .expect("a file database has a lock");
    let err = essbot::lock::InstanceLock::for_database(&url).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("already running"), "{message}");
    assert!(
        message.contains(&format!("PID {}", std::process::id())),
        "{message}"
    );
}

/// The packaged configuration ships placeholders, not the demo's instructeur and démarches:
/// `config check` names each until it is replaced; filled in, the file is valid.
#[test]
fn the_packaged_configuration_is_valid_once_its_placeholders_are_filled_in() {
    let path = repo("deploy/essbot.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let env = essbot::config::Env::default();
    let err = essbot::config::load(&essbot::config::Source::File(path.clone()), &env)
        .expect_err("placeholders");
    let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "ds.instructeur_id",
            "demarches[0].number",
            "demarches[1].number"
        ],
        "{err}"
    );
    assert!(
        err.problems
            .iter()
            .all(|p| p.message.contains("placeholder")
                && p.origin
                    .as_deref()
                    .is_some_and(|o| o.contains("deploy/essbot.toml:"))),
        "{err}"
    );
    assert!(!text.contains("12345") && !text.contains("SW5zdHJ1Y3RldXItMQ=="));
    let filled = text
        .replace(
            "instructeur_id = \"CHANGE-ME\"",
            "instructeur_id = \"SW5zdHJ1Y3RldXItNDI=\"",
        )
        .replacen("number = 0 ", "number = 4101 ", 1)
        .replacen("number = 0 ", "number = 4102 ", 1)
        // The token file is root's and absent here: said, not fatal.
        .replace("token_file = \"/etc/essbot/ds-token\"\n", "");
    let settings = essbot::config::load(&essbot::config::Source::Text(filled), &env)
        .unwrap_or_else(|e| panic!("deploy/essbot.toml filled in: {e}"));
    assert_eq!(settings.database.url, "sqlite:///var/lib/essbot/essbot.db");
    assert_eq!(
        essbot::lock::lock_path_for_database(&settings.database.url),
        Some(PathBuf::from("/var/lib/essbot/essbot.db.lock"))
    );
    assert!(settings.http.listen.is_none());
    // The unit's stop timeout leaves room for essbot's own deadline.
    let unit = std::fs::read_to_string(repo("deploy/systemd/essbot.service")).unwrap();
    let stop: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .expect("TimeoutStopSec")
        .parse()
        .unwrap();
    assert!(settings.daemon.shutdown_deadline < Duration::from_secs(stop));
}

/// `systemd-analyze verify` on a copy of the unit whose `ExecStart=` binary exists (verify
/// refuses a missing one), with the rest as shipped.
#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(repo("deploy/systemd/essbot.service")).unwrap();
    for key in [
        "Type=notify",
        "ExecStart=/usr/bin/essbot run --config /etc/essbot/essbot.toml --log-format json",
        "User=essbot",
        "StateDirectory=essbot",
        "LoadCredential=ds-token:/etc/essbot/ds-token",
        // A missing token fails the start once, and no exit code of a configuration problem
        // is restarted.
        "AssertPathExists=/etc/essbot/ds-token",
        "RestartPreventExitStatus=2 243",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WatchdogSec=120",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=\n",
        "UMask=0077",
    ] {
        assert!(unit.contains(key), "{key} missing from the unit");
    }
    let sysusers = std::fs::read_to_string(repo("deploy/systemd/essbot.sysusers")).unwrap();
    assert!(sysusers.contains("u essbot - \"essbot daemon\" /var/lib/essbot"));

    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: systemd-analyze is not installed; the unit was not verified");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_essbot");
    let copy = unit.replace("ExecStart=/usr/bin/essbot ", &format!("ExecStart={exe} "));
    let path = dir.path().join("essbot.service");
    std::fs::write(&path, copy).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Lines about the host (no running systemd in a container, units we don't own) are not
    // about our file; anything naming essbot.service is.
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("essbot.service"))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify failed ({}):\n{stderr}",
        out.status
    );
}

/// A maintainer script with `/etc/essbot` and `/var/lib/essbot` moved under `root`, run with
/// `args` the way dpkg runs it.
fn maintainer_script(name: &str, root: &Path, args: &[&str]) -> std::process::Output {
    let text = std::fs::read_to_string(repo(&format!("deploy/debian/{name}"))).unwrap();
    let text = text
        .replace(
            "/etc/essbot",
            &root.join("etc/essbot").display().to_string(),
        )
        .replace(
            "/var/lib/essbot",
            &root.join("var/lib/essbot").display().to_string(),
        );
    let script = root.join(name);
    std::fs::write(&script, text).unwrap();
    Command::new("sh").arg(&script).args(args).output().unwrap()
}

#[test]
fn an_upgrade_keeps_the_administrators_permissions_and_a_purge_removes_state_and_config() {
    use std::os::unix::fs::PermissionsExt as _;
    let root = tempfile::tempdir().unwrap();
    let etc = root.path().join("etc/essbot");
    let state = root.path().join("var/lib/essbot");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    let conf = etc.join("essbot.toml");
    std::fs::write(&conf, "# edited by the administrator\n").unwrap();
    std::fs::write(etc.join("ds-token"), "token\n").unwrap();
    std::fs::write(state.join("essbot.db"), "").unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).unwrap();

    // An upgrade from 0.1.0: the mode the administrator chose stays.
    let out = maintainer_script("postinst", root.path(), &["configure", "0.1.0"]);
    assert!(out.status.success(), "{out:?}");
    let mode = std::fs::metadata(&conf).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // `remove` keeps configuration, token and database; `purge` removes them.
    let out = maintainer_script("postrm", root.path(), &["remove"]);
    assert!(out.status.success(), "{out:?}");
    assert!(conf.exists() && state.join("essbot.db").exists());
    let out = maintainer_script("postrm", root.path(), &["purge"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!etc.exists() && !state.exists());
}
