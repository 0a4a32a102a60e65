//! `essbot run` as ops run it: the real binary against the sandbox, its metrics listener,
//! the one-instance rule and a stop in the middle of a cycle.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ds_sandbox::{DEMO_TOKEN, Fault};

use crate::helpers::{demo_config_text, demo_sandbox};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The demo configuration pointed at the sandbox, a database in `dir`, a schedule firing every
/// two seconds and the metrics listener on `port`.
fn config(dir: &std::path::Path, endpoint: &str, port: u16) -> std::path::PathBuf {
    let body = demo_config_text(dir, endpoint).replace("0 */15 7-20 * * Mon-Fri", "*/2 * * * * *")
        + &format!(
            "\n[http]\nlisten = \"127.0.0.1:{port}\"\n[daemon]\nshutdown_deadline_secs = 5\n"
        );
    let path = dir.join("essbot.toml");
    std::fs::write(&path, body).unwrap();
    path
}

fn spawn_run(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_essbot"))
        .args(["run", "--config"])
        .arg(config)
        .env_clear()
        .env("ESSBOT_DS_TOKEN", DEMO_TOKEN)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the child to exit, at most `limit`; kills it and fails otherwise.
fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("essbot did not stop within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn scrape(port: u16) -> Option<prometheus_parse::Scrape> {
    let body = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).ok()
}

fn value(scrape: &prometheus_parse::Scrape, metric: &str, label: Option<(&str, &str)>) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_move_with_a_cycle_a_second_instance_is_refused_and_sigterm_stops_cleanly() {
    let sandbox = demo_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), &sandbox.url(), port);
    let mut first = spawn_run(&cfg);

    // The counters move once a cycle has run.
    let deadline = Instant::now() + Duration::from_secs(60);
    let scrape = loop {
        if let Some(s) = scrape(port).await
            && value(&s, "essbot_cycles_total", Some(("outcome", "succeeded"))) >= 1.0
        {
            break s;
        }
        assert!(Instant::now() < deadline, "no successful cycle in /metrics");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(value(&scrape, "essbot_dossiers_synced_total", None) >= 32.0);
    assert!(value(&scrape, "essbot_dossiers_checked_total", None) >= 32.0);
    assert!(
        value(
            &scrape,
            "essbot_api_requests_total",
            Some(("status", "200"))
        ) >= 2.0
    );
    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    // A second instance on the same database refuses to start, with a clear message.
    let second = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || {
            let mut c = spawn_run(&cfg);
            let status = wait_exit(&mut c, Duration::from_secs(30));
            let mut err = String::new();
            c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            (status, err)
        }
    })
    .await
    .unwrap();
    assert!(!second.0.success());
    assert!(second.1.contains("another essbot"), "{}", second.1);

    // SIGTERM: exit 0 within the shutdown deadline.
    sigterm(&first);
    let status =
        tokio::task::spawn_blocking(move || wait_exit(&mut first, Duration::from_secs(15)))
            .await
            .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_in_the_middle_of_a_cycle_loses_nothing() {
    let sandbox = demo_sandbox().await;
    // Slow pages: the first cycle is still syncing when the stop comes.
    sandbox.push_fault(
        Fault::Delay(Duration::from_millis(1500)),
        4,
        Some("GetDemarcheDossiers"),
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &sandbox.url(), free_port());
    let mut child = spawn_run(&cfg);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sandbox
        .requests()
        .iter()
        .any(|r| r.operation_name.as_deref() == Some("GetDemarcheDossiers"))
    {
        assert!(Instant::now() < deadline, "the cycle never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sigterm(&child);
    let status =
        tokio::task::spawn_blocking(move || wait_exit(&mut child, Duration::from_secs(15)))
            .await
            .unwrap();
    assert!(status.success(), "{status:?}");

    // The next run picks up where the stop left: every dossier ends up stored and checked once.
    let cfg2 = cfg.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_essbot"))
            .args(["run", "--once", "--config"])
            .arg(&cfg2)
            .env_clear()
            .env("ESSBOT_DS_TOKEN", DEMO_TOKEN)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let store = essbot::store::Store::open_file(&dir.path().join("essbot.db"))
        .await
        .unwrap();
    let cycles = store.recent_cycles(10).await.unwrap();
    assert!(
        cycles
            .iter()
            .all(|c| c.outcome != essbot::store::CycleOutcome::Running),
        "{cycles:?}"
    );
    let mut stored = 0;
    for demarche in [1001, 1002] {
        stored += store.dossiers_of(demarche).await.unwrap().len();
    }
    // 32 listed dossiers plus the deleted and hidden ones the full pass records.
    assert!(stored >= 32, "{stored}");
    let checks = essbot::precheck::stored_checks(&store).await.unwrap();
    assert_eq!(checks.len(), 32);
    let history = store.demarche_history(1001).await.unwrap();
    let deposits = history
        .iter()
        .filter(|h| h.kind == essbot::store::HistoryKind::Depose)
        .count();
    let mut numbers: Vec<i64> = history
        .iter()
        .filter(|h| h.kind == essbot::store::HistoryKind::Depose)
        .map(|h| h.number)
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(deposits, numbers.len(), "a dossier was recorded twice");
}

fn sighup(child: &Child) {
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits until `/metrics` shows more successful cycles than `after`, and returns the scrape.
async fn next_success(port: u16, after: f64) -> prometheus_parse::Scrape {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = scrape(port).await
            && value(&s, "essbot_cycles_total", Some(("outcome", "succeeded"))) > after
        {
            return s;
        }
        assert!(Instant::now() < deadline, "no successful cycle in /metrics");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_configuration_and_never_kills_the_daemon() {
    let sandbox = demo_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), &sandbox.url(), port);
    let mut daemon = spawn_run(&cfg);

    let first = next_success(port, 0.0).await;
    // The build and the last success are in the metrics.
    let build = first
        .samples
        .iter()
        .find(|s| s.metric == "essbot_build_info")
        .expect("essbot_build_info");
    assert_eq!(build.labels.get("version"), Some(env!("CARGO_PKG_VERSION")));
    assert!(build.labels.get("commit").is_some());
    assert!(value(&first, "essbot_last_success_timestamp_seconds", None) > 1.7e9);

    // A valid change: reloaded, and the daemon goes on cycling.
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{text}\n[alerts]\nlead_days = [14]\n")).unwrap();
    let done = value(
        &first,
        "essbot_cycles_total",
        Some(("outcome", "succeeded")),
    );
    sighup(&daemon);
    let after = next_success(port, done).await;

    // A broken file: said, ignored, and the daemon still runs on the configuration it has.
    std::fs::write(&cfg, "[ds]\npage_size = \"cent\"\n").unwrap();
    let done = value(
        &after,
        "essbot_cycles_total",
        Some(("outcome", "succeeded")),
    );
    sighup(&daemon);
    next_success(port, done).await;
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "SIGHUP stopped the daemon"
    );

    sigterm(&daemon);
    let status = tokio::task::spawn_blocking(move || {
        let status = wait_exit(&mut daemon, Duration::from_secs(15));
        let mut err = String::new();
        daemon
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status, err)
    })
    .await
    .unwrap();
    assert!(status.0.success(), "{:?}\n{}", status.0, status.1);
    assert_eq!(
        status.1.matches("configuration reloaded").count(),
        1,
        "{}",
        status.1
    );
    assert!(
        status.1.contains("configuration not reloaded"),
        "{}",
        status.1
    );
    assert!(status.1.contains("ds.page_size"), "{}", status.1);
}

/// After a restart, before any cycle, `/metrics` already says the open findings by rule (read
/// from the database), not nothing until the next cycle checks something.
#[tokio::test(flavor = "multi_thread")]
async fn open_findings_are_in_the_metrics_right_after_a_restart() {
    let sandbox = demo_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), &sandbox.url(), port);
    let once = Command::new(env!("CARGO_BIN_EXE_essbot"))
        .args(["run", "--once", "--config"])
        .arg(&cfg)
        .env_clear()
        .env("ESSBOT_DS_TOKEN", DEMO_TOKEN)
        .output()
        .unwrap();
    assert!(
        once.status.success(),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
    // The daemon's schedule now fires once a year: no cycle runs while the test looks.
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("*/2 * * * * *", "0 0 0 1 1 *")).unwrap();
    let mut daemon = spawn_run(&cfg);
    let deadline = Instant::now() + Duration::from_secs(30);
    let scraped = loop {
        if let Some(s) = scrape(port).await {
            break s;
        }
        assert!(Instant::now() < deadline, "no /metrics");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(value(&scraped, "essbot_cycles_total", None), 0.0);
    // The demo data set raises LI-ADH-01 on dossiers 12 and 22 (and it is open on others as
    // information): at least two.
    assert!(
        value(&scraped, "essbot_findings", Some(("rule", "LI-ADH-01"))) >= 2.0,
        "{:?}",
        scraped
            .samples
            .iter()
            .filter(|s| s.metric == "essbot_findings")
            .collect::<Vec<_>>()
    );
    // Every rule has its line, zero or not.
    let rules = scraped
        .samples
        .iter()
        .filter(|s| s.metric == "essbot_findings")
        .count();
    assert_eq!(rules, essbot::rules::RuleId::ALL.len());
    sigterm(&daemon);
    wait_exit(&mut daemon, Duration::from_secs(20));
}
