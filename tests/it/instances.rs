//! Several `essbot run` on one PostgreSQL database, as the real binary runs them against the
//! sandbox: one active, the others standing by; the fencing of a deposed instance; takeover
//! after SIGKILL and after a lost lock connection; the failover matrix (SIGKILL at seeded
//! points of a cycle with DS writes and alerts in flight); `db copy` and `db backup` for
//! PostgreSQL. Every test here needs PostgreSQL (see `pg`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use ds_sandbox::{DEMO_TOKEN, Fault};
use essbot::milestones::{Event, EventKind, EventSource};
use essbot::store::{Leadership, Store, StoreError};
use serde_json::Value;

use crate::alerts::{HookServer, SmtpServer, parse};
use crate::faults::{assert_invariants, splitmix};
use crate::helpers::{TestDb, TestEnv, demo_config_on};

const ANNOTATIONS: &str = "DossierModifierAnnotations";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The demo configuration on `env`'s sandbox and database, a cycle every two seconds,
/// unpaced; alerts to `alerts` (e-mail and webhook) and the health listener on `listen` when
/// given. Written to `<dir>/<name>.toml`.
fn config(
    env: &TestEnv,
    name: &str,
    alerts: Option<(&SmtpServer, &HookServer)>,
    listen: Option<u16>,
) -> PathBuf {
    let url = env.db.url(env.dir.path());
    let mut body = demo_config_on(env.dir.path(), &env.sandbox.url(), &url)
        .replace("0 */15 7-20 * * Mon-Fri", "*/2 * * * * *")
        .replace(
            "max_requests_per_second = 5.0",
            "max_requests_per_second = 6.0",
        );
    if let Some((smtp, hook)) = alerts {
        body += &format!(
            "\n[alerts]\n[alerts.email]\nsmtp_url = \"smtp://127.0.0.1:{}\"\n\
             from = \"essbot@ars.example\"\nto = [\"cpam-ess@cpam.example\"]\n\
             [alerts.webhook]\nurl = \"{}\"\n",
            smtp.port, hook.url
        );
    }
    body += "\n[daemon]\nshutdown_deadline_secs = 5\n";
    if let Some(port) = listen {
        body += &format!("\n[http]\nlisten = \"127.0.0.1:{port}\"\n");
    }
    let path = env.dir.path().join(format!("{name}.toml"));
    std::fs::write(&path, body).unwrap();
    path
}

fn essbot(config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_essbot"));
    c.arg("--config")
        .arg(config)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("ESSBOT_DS_TOKEN", DEMO_TOKEN)
        .env("RUST_LOG", "info");
    c
}

/// `essbot run` in the background, its log in `<config>.<n>.log`.
fn spawn_run(config: &Path, log: &str) -> Child {
    let log = std::fs::File::create(config.with_extension(format!("{log}.log"))).unwrap();
    essbot(config)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn log_of(config: &Path, log: &str) -> String {
    std::fs::read_to_string(config.with_extension(format!("{log}.log"))).unwrap_or_default()
}

async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Polls `check` every 50 ms until it gives a value; fails after `limit` naming `what`.
async fn wait_for<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(ms(50)).await;
    }
}

/// The active instance's pid and the term, as the database records them.
async fn active(store: &Store) -> Option<(u32, i64)> {
    let state = store.leadership_state(Utc::now()).await.ok()?;
    let pid = state.holder?.split(':').nth(1)?.parse().ok()?;
    Some((pid, state.term))
}

async fn healthz(port: u16) -> Option<(u16, Value)> {
    let r = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().await.ok()?))
}

/// Ends the lock session of the instance whose pid is `pid`, as a network cut or a DBA's
/// `pg_terminate_backend` would: its advisory lock is released.
async fn cut_lock_connection(store: &Store, pid: u32) {
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name LIKE 'essbot-lock %' AND application_name LIKE $1",
    )
    .bind(format!("%:{pid}:%"))
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(ended, [true], "one lock session of pid {pid}");
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn wait_exit(mut child: Child, limit: Duration) -> std::process::ExitStatus {
    tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                panic!("essbot did not exit within {limit:?}");
            }
            std::thread::sleep(ms(50));
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_deposed_instance_can_neither_write_nor_claim() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = db.url(dir.path());
    let (a, b) = (
        Store::open(&url).await.unwrap(),
        Store::open(&url).await.unwrap(),
    );
    let now = Utc::now();
    let mut first = Leadership::new(&a);
    assert!(first.try_acquire(now).await.unwrap());
    let mut second = Leadership::new(&b);
    assert!(!second.try_acquire(now).await.unwrap(), "the lock is held");
    let event = Event {
        project: 1,
        kind: EventKind::AmorcageContractSigned,
        effective: now.date_naive(),
        source: EventSource::Manual,
        author: "test".into(),
        recorded_at: now,
        reason: Some("fencing".into()),
    };
    a.append_events(std::slice::from_ref(&event)).await.unwrap();

    // Both lock sessions end (this process has two): the server releases the lock, the second
    // candidate takes it, with a new term, before the first one has noticed anything.
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name LIKE 'essbot-lock %' AND datname = current_database()",
    )
    .fetch_all(b.pool())
    .await
    .unwrap();
    assert_eq!(ended.len(), 2);
    let deadline = Instant::now() + Duration::from_secs(10);
    // The first attempts may find the candidate's own lock session gone: it reconnects.
    while !second.try_acquire(Utc::now()).await.unwrap_or(false) {
        assert!(
            Instant::now() < deadline,
            "the second candidate never got the lock"
        );
        tokio::time::sleep(ms(50)).await;
    }
    assert_eq!(second.term(), Some(2));

    // The first one's writes and claims are refused; the second one's go through.
    assert!(matches!(
        a.append_events(std::slice::from_ref(&event)).await,
        Err(StoreError::NotActive)
    ));
    assert!(matches!(
        a.outbox_mark_sending(&[1], now).await,
        Err(StoreError::NotActive)
    ));
    assert!(matches!(
        a.claim_delivery("k", "email", now, now, None).await,
        Err(StoreError::NotActive)
    ));
    assert!(matches!(first.check(now).await, Err(StoreError::NotActive)));
    b.append_events(std::slice::from_ref(&event)).await.unwrap();
    assert_eq!(b.event_count().await.unwrap(), 2);
    let state = b.leadership_state(now).await.unwrap();
    assert_eq!(state.term, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_once_refuses_while_another_instance_is_active() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let env = TestEnv::spawn_on(db).await;
    let cfg = config(&env, "essbot", None, None);
    let mut other = Leadership::new(&env.store);
    assert!(other.try_acquire(Utc::now()).await.unwrap());
    let refused = output({
        let mut c = essbot(&cfg);
        c.args(["run", "--once"]);
        c
    })
    .await;
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another essbot instance is active on this database"),
        "{stderr}"
    );
    assert!(env.store.last_cycle().await.unwrap().is_none(), "no cycle");
    assert!(env.sandbox.mutations().is_empty(), "nothing written");
    other.release(Utc::now()).await;
    let ran = output({
        let mut c = essbot(&cfg);
        c.args(["run", "--once"]);
        c
    })
    .await;
    assert!(ran.status.success(), "{}", text(&ran.stderr));
    assert_eq!(
        env.store.last_cycle().await.unwrap().unwrap().outcome,
        essbot::store::CycleOutcome::Ok
    );

    // Every command that reads or writes the database works on PostgreSQL.
    for args in [
        &["status"][..],
        &["db", "migrate"],
        &["milestones", "--format", "json"],
        &["payments", "--format", "csv"],
        &["config", "check"],
    ] {
        let out = output({
            let mut c = essbot(&cfg);
            c.args(args);
            c
        })
        .await;
        assert!(
            out.status.success(),
            "{args:?}: {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_acts_the_other_stands_by_and_takes_over_when_it_dies_or_loses_its_lock() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let env = TestEnv::spawn_on(db).await;
    let (pa, pb) = (free_port(), free_port());
    let (cfg_a, cfg_b) = (
        config(&env, "a", None, Some(pa)),
        config(&env, "b", None, Some(pb)),
    );
    let a = spawn_run(&cfg_a, "1");
    let (a_pid, _) = wait_for(Duration::from_secs(60), "a active", || async {
        active(&env.store).await
    })
    .await;
    assert_eq!(a_pid, a.id());
    wait_for(Duration::from_secs(60), "a healthy", || async {
        healthz(pa)
            .await
            .filter(|(code, body)| *code == 200 && body["status"] == "ok")
    })
    .await;
    let b = spawn_run(&cfg_b, "1");
    let (_, body) = wait_for(Duration::from_secs(60), "b standing by", || async {
        healthz(pb)
            .await
            .filter(|(_, body)| body["role"] == "standby")
    })
    .await;
    assert_eq!(body["status"], "standby");
    assert_eq!(healthz(pa).await.unwrap().1["role"], "active");

    // `status` says which is which.
    let status = output({
        let mut c = essbot(&cfg_a);
        c.arg("status");
        c
    })
    .await;
    let stdout = text(&status.stdout);
    assert!(status.status.success(), "{stdout}");
    assert!(stdout.contains("Instances (postgres)"), "{stdout}");
    let line = |pid: u32| {
        stdout
            .lines()
            .find(|l| l.contains(&format!("(pid {pid},")))
            .unwrap_or_else(|| panic!("no line for pid {pid}:\n{stdout}"))
            .to_owned()
    };
    assert!(line(a.id()).contains(": active depuis"), "{stdout}");
    assert!(line(b.id()).contains(": en attente"), "{stdout}");

    // The active instance's lock connection is cut: it stops acting and exits; the standby
    // takes over.
    cut_lock_connection(&env.store, a.id()).await;
    let b_pid = b.id();
    wait_for(
        Duration::from_secs(30),
        "b active after the cut",
        || async {
            active(&env.store)
                .await
                .filter(|(pid, _)| *pid == b_pid)
                .map(|_| ())
        },
    )
    .await;
    let exited = wait_exit(a, Duration::from_secs(30)).await;
    assert_eq!(exited.code(), Some(1));
    let a_log = log_of(&cfg_a, "1");
    assert!(a_log.contains("lost the database lock"), "{a_log}");

    // A restarted instance stands by; SIGKILL on the active one hands over to it.
    let a = spawn_run(&cfg_a, "2");
    wait_for(Duration::from_secs(60), "a standing by again", || async {
        healthz(pa)
            .await
            .filter(|(_, body)| body["role"] == "standby")
    })
    .await;
    wait_for(Duration::from_secs(60), "b healthy", || async {
        healthz(pb)
            .await
            .filter(|(code, body)| *code == 200 && body["status"] == "ok")
    })
    .await;
    let mut b = b;
    b.kill().unwrap();
    b.wait().unwrap();
    let a_pid = a.id();
    wait_for(
        Duration::from_secs(30),
        "a active after SIGKILL",
        || async {
            active(&env.store)
                .await
                .filter(|(pid, _)| *pid == a_pid)
                .map(|_| ())
        },
    )
    .await;
    wait_for(Duration::from_secs(60), "a healthy", || async {
        healthz(pa)
            .await
            .filter(|(code, body)| *code == 200 && body["status"] == "ok")
    })
    .await;
    sigterm(&a);
    assert!(wait_exit(a, Duration::from_secs(30)).await.success());
    assert_invariants(&env.store, &env.sandbox, &env.client()).await;
}

/// Where a seed kills the active instance.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// Once DS has applied this many writes (the next one may be on its way).
    Write(usize),
    /// Once the receivers have this many alerts (e-mail and webhook together).
    Alert(usize),
    /// This long after the first request of the cycle.
    Time(Duration),
}

/// Alerts received per key: by the webhook (its body's key) and by e-mail (its Message-ID).
fn receipts(
    keys: &[String],
    smtp: &SmtpServer,
    hook: &HookServer,
) -> BTreeMap<(String, &'static str), usize> {
    let mut out = BTreeMap::new();
    for body in hook.delivered() {
        if let Some(k) = body["key"].as_str() {
            *out.entry((k.to_owned(), "webhook")).or_default() += 1;
        }
    }
    let by_id: BTreeMap<String, &String> = keys
        .iter()
        .map(|k| (essbot::alerts::channel::key_digest(k), k))
        .collect();
    for m in smtp.accepted() {
        let message = parse(&m.raw);
        let id = message.message_id().unwrap_or_default().to_owned();
        let digest = id.split('.').next().unwrap_or_default();
        if let Some(k) = by_id.get(digest) {
            *out.entry(((*k).clone(), "email")).or_default() += 1;
        }
    }
    out
}

/// One seed of the failover matrix.
async fn failover(seed: u64) {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let env = TestEnv::spawn_on(db).await;
    let smtp = SmtpServer::start(&[]);
    let hook = HookServer::start(&[]).await;
    let cfg = config(&env, "essbot", Some((&smtp, &hook)), None);
    // Some writes are slow, so that a kill finds calls on their way.
    env.sandbox
        .push_fault(Fault::Delay(ms(25)), 24, Some(ANNOTATIONS));
    env.sandbox
        .push_fault(Fault::Delay(ms(25)), 12, Some("DossierAjouterLabel"));
    let mut rng = seed;
    let kill_at = match seed % 3 {
        0 => KillAt::Write(1 + (splitmix(&mut rng) % 40) as usize),
        1 => KillAt::Alert(1 + (splitmix(&mut rng) % 12) as usize),
        _ => KillAt::Time(ms(splitmix(&mut rng) % 8000)),
    };
    let jitter = ms(splitmix(&mut rng) % 15);

    let mut children = vec![spawn_run(&cfg, "1"), spawn_run(&cfg, "2")];
    let (pid, term) = wait_for(Duration::from_secs(60), "an active instance", || async {
        active(&env.store).await
    })
    .await;
    let victim = children.iter().position(|c| c.id() == pid).unwrap();
    let mut killed = children.remove(victim);
    let survivor = children.pop().unwrap();
    let first_request = wait_for(Duration::from_secs(60), "the first cycle", || async {
        (!env.sandbox.requests().is_empty()).then(Instant::now)
    })
    .await;
    let reached = |env: &TestEnv| match kill_at {
        KillAt::Write(n) => {
            env.sandbox
                .mutations()
                .iter()
                .filter(|m| m.errors.is_empty())
                .count()
                >= n
        }
        KillAt::Alert(n) => hook.delivered().len() + smtp.accepted().len() >= n,
        KillAt::Time(d) => first_request.elapsed() >= d,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let first_cycle_over = env
            .store
            .last_cycle()
            .await
            .ok()
            .flatten()
            .is_some_and(|c| c.finished_at.is_some());
        if reached(&env) || first_cycle_over {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed}: the cycle never got there"
        );
        tokio::time::sleep(ms(1)).await;
    }
    tokio::time::sleep(jitter).await;
    // SIGKILL: no chance to finish a call, record an answer or release anything.
    killed.kill().unwrap();
    killed.wait().unwrap();
    let killed_at = Instant::now();
    let writes_at_kill = env.sandbox.mutations().len();

    // The standby takes over within 30 s.
    let survivor_pid = survivor.id();
    wait_for(
        Duration::from_secs(30),
        &format!("seed {seed} ({kill_at:?}): the standby active"),
        || async {
            active(&env.store)
                .await
                .filter(|(p, t)| *p == survivor_pid && *t > term)
        },
    )
    .await;
    let took_over = killed_at.elapsed();

    // It resumes from what was committed until everything is written and delivered...
    let settled = wait_for(
        Duration::from_secs(120),
        &format!("seed {seed} ({kill_at:?}): everything settled"),
        || async {
            let store = &env.store;
            let cycle = store.last_cycle().await.ok()??;
            let settled = cycle.outcome == essbot::store::CycleOutcome::Ok
                && store.outbox_open_count().await.ok()? == 0
                && store.pending_alerts_count().await.ok()? == 0;
            settled.then_some(cycle.id)
        },
    )
    .await;
    // ...and a later cycle finds nothing left to write or to send.
    let (mutations, alerts) = (
        env.sandbox.mutations().len(),
        hook.calls().len() + smtp.transactions(),
    );
    wait_for(Duration::from_secs(60), "a later cycle", || async {
        let c = env.store.last_cycle().await.ok()??;
        (c.id > settled && c.finished_at.is_some()).then_some(())
    })
    .await;
    sigterm(&survivor);
    let status = wait_exit(survivor, Duration::from_secs(30)).await;
    assert!(status.success(), "seed {seed}: {}", log_of(&cfg, "2"));
    assert_eq!(
        env.sandbox.mutations().len(),
        mutations,
        "seed {seed}: a quiet cycle wrote"
    );
    assert_eq!(
        hook.calls().len() + smtp.transactions(),
        alerts,
        "seed {seed}: a quiet cycle sent alerts"
    );

    // Every dossier is written on DS exactly once, nothing recorded is lost...
    assert_invariants(&env.store, &env.sandbox, &env.client()).await;
    for check in env.store.stored_checks().await.unwrap() {
        assert!(
            env.sandbox
                .mutations()
                .iter()
                .any(|m| m.name == "dossierModifierAnnotations"
                    && m.errors.is_empty()
                    && m.dossier_number == Some(check.dossier as i32)),
            "seed {seed}: dossier {} never annotated",
            check.dossier
        );
    }
    let cycles = env.store.recent_cycles(100).await.unwrap();
    assert!(
        cycles
            .iter()
            .all(|c| c.outcome != essbot::store::CycleOutcome::Running),
        "seed {seed}: {cycles:?}"
    );
    let twice: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT project, kind, COUNT(*) FROM milestone_events
         GROUP BY project, slot, kind, effective, source, author, COALESCE(reason, '')
         HAVING COUNT(*) > 1",
    )
    .fetch_all(env.store.pool())
    .await
    .unwrap();
    assert!(
        twice.is_empty(),
        "seed {seed}: events recorded twice: {twice:?}"
    );

    // ...and every alert is delivered once on each channel. The only exception is a delivery
    // the killed instance had claimed and never settled (the server may or may not have
    // accepted it): the ledger records it, and it goes again with the same Message-ID or
    // Idempotency-Key, so that receivers can drop the duplicate.
    let keys: Vec<String> = sqlx::query_scalar("SELECT key FROM alert_ledger ORDER BY key")
        .fetch_all(env.store.pool())
        .await
        .unwrap();
    assert!(!keys.is_empty(), "seed {seed}: no alert planned");
    let interrupted: Vec<(String, String)> = sqlx::query_as(
        "SELECT alert_key, channel FROM alert_delivery WHERE last_error LIKE '%interrompu%'",
    )
    .fetch_all(env.store.pool())
    .await
    .unwrap();
    let got = receipts(&keys, &smtp, &hook);
    for key in &keys {
        for channel in ["email", "webhook"] {
            let n = got
                .get(&(key.clone(), channel))
                .copied()
                .unwrap_or_default();
            let in_doubt = interrupted.contains(&(key.clone(), channel.to_owned()));
            assert!(
                n == 1 || (in_doubt && n == 2),
                "seed {seed} ({kill_at:?}): {key} received {n} times by {channel} \
                 (interrupted: {in_doubt})"
            );
        }
    }
    let twice = got.values().filter(|n| **n == 2).count();
    eprintln!(
        "failover seed {seed}: killed at {kill_at:?} (+{jitter:?}), {writes_at_kill} writes \
         done then; standby active after {took_over:?}; {} of {} deliveries in doubt, {twice} \
         received twice",
        interrupted.len(),
        2 * keys.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_active_instance_mid_cycle_loses_nothing_and_sends_nothing_twice() {
    let mut set = tokio::task::JoinSet::new();
    for seed in 1..=10u64 {
        set.spawn(failover(seed));
        // Two at a time keeps a 2-core machine from starving the processes.
        if set.len() == 2 {
            set.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
}

/// The demo data set synced, checked, written and alerted on SQLite by in-process cycles,
/// with a manual milestone event: a store with every table filled.
async fn filled_sqlite_store(env: &TestEnv, hook: &HookServer) {
    use essbot::cycle::{self, Services};
    let mut settings = env.settings.clone();
    settings.alerts.webhook = Some(essbot::config::WebhookSettings {
        url: hook.url.clone(),
    });
    let services = Services::with_store(
        settings,
        env.store.clone(),
        std::sync::Arc::new(env.clock.clone()),
    )
    .unwrap();
    let report = cycle::run_once(&services, &tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.outcome, "ok", "{:?}", report.errors);
    let now = Utc::now();
    env.store
        .append_events(&[Event {
            project: 1,
            kind: EventKind::AmorcageContractSigned,
            effective: now.date_naive(),
            source: EventSource::Manual,
            author: "agent.ars@example".into(),
            recorded_at: now,
            reason: Some("contrat signé en main propre".into()),
        }])
        .await
        .unwrap();
    // The event moves project 1's next deadline: written now, before the copy.
    let report = cycle::run_once(&services, &tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.outcome, "ok", "{:?}", report.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_copy_moves_a_sqlite_store_into_an_empty_postgres_database() {
    let Some(pg) = TestDb::postgres().await else {
        return;
    };
    let env = TestEnv::spawn().await;
    let hook = HookServer::start(&[]).await;
    filled_sqlite_store(&env, &hook).await;
    let cfg = env.dir.path().join("essbot.toml");
    std::fs::write(
        &cfg,
        crate::helpers::demo_config_text(env.dir.path(), &env.sandbox.url()),
    )
    .unwrap();
    // A password in the URL (the test server trusts anyone): never printed.
    let mut to = url::Url::parse(&pg.url(env.dir.path())).unwrap();
    to.set_password(Some("s3cret-pw")).unwrap();
    let copy = |to: String| {
        let mut c = essbot(&cfg);
        c.args(["db", "copy", "--to", &to]);
        c
    };

    // Refused while essbot runs on the SQLite file.
    {
        let _daemon = essbot::lock::InstanceLock::for_database(&env.settings.database.url)
            .unwrap()
            .unwrap();
        let out = output(copy(to.to_string())).await;
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("stop essbot"),
            "{}",
            text(&out.stderr)
        );
    }

    let out = output(copy(to.to_string())).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("row counts match"), "{stdout}");
    for table in [
        "dossiers",
        "dossier_history",
        "checks",
        "findings",
        "outbox",
        "alert_ledger",
        "alert_delivery",
        "milestone_events",
        "cycles",
    ] {
        assert!(
            stdout.lines().any(|l| l.trim_start().starts_with(table)),
            "{table} not listed:\n{stdout}"
        );
    }
    let shown = pg.url(env.dir.path());
    assert!(stdout.contains(&format!("url = \"{shown}\"")), "{stdout}");
    assert!(
        !format!("{stdout}{}", text(&out.stderr)).contains("s3cret-pw"),
        "the password was printed"
    );

    // The copy is the same store: reports, history, the audit trail, the outbox...
    let copied = Store::open(&shown).await.unwrap();
    let stored = env.store.stored_checks().await.unwrap();
    assert_eq!(stored.len(), 32);
    let again = copied.stored_checks().await.unwrap();
    assert_eq!(
        stored
            .iter()
            .map(|c| (c.dossier, &c.report_text))
            .collect::<Vec<_>>(),
        again
            .iter()
            .map(|c| (c.dossier, &c.report_text))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        env.store.history(1).await.unwrap(),
        copied.history(1).await.unwrap()
    );
    assert_eq!(
        env.store.events().await.unwrap(),
        copied.events().await.unwrap()
    );
    assert_eq!(copied.outbox_open_count().await.unwrap(), 0);
    // ...and essbot carries on from it: nothing to write again, new rows after the copied ids.
    let last = env.store.last_cycle().await.unwrap().unwrap();
    let mut settings = env.settings.clone();
    settings.database.url = shown.clone();
    settings.alerts.webhook = Some(essbot::config::WebhookSettings {
        url: hook.url.clone(),
    });
    let services = essbot::cycle::Services::with_store(
        settings,
        copied.clone(),
        std::sync::Arc::new(env.clock.clone()),
    )
    .unwrap();
    let (writes, alerts) = (env.sandbox.mutations().len(), hook.calls().len());
    let report = essbot::cycle::run_once(&services, &tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.outcome, "ok", "{:?}", report.errors);
    assert_eq!(report.cycle, last.id + 1);
    assert_eq!(
        env.sandbox.mutations().len(),
        writes,
        "rewrote after the copy"
    );
    assert_eq!(hook.calls().len(), alerts, "alerted again after the copy");

    // Into a database that is not empty: refused.
    let out = output(copy(to.to_string())).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not empty"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_backup_of_postgres_runs_pg_dump_or_says_how() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let env = TestEnv::spawn_on(db).await;
    let mut url = url::Url::parse(&env.db.url(env.dir.path())).unwrap();
    url.set_password(Some("s3cret-pw")).unwrap();
    let cfg = env.dir.path().join("essbot.toml");
    std::fs::write(
        &cfg,
        demo_config_on(env.dir.path(), &env.sandbox.url(), url.as_str()),
    )
    .unwrap();
    let dump = env.dir.path().join("essbot.dump");
    let backup = |path: Option<&str>| {
        let mut c = essbot(&cfg);
        c.args(["db", "backup"]).arg(&dump);
        if let Some(p) = path {
            c.env("PATH", p);
        }
        c
    };

    // Without pg_dump: exit 1, and the message says what to install and what to run.
    let out = output(backup(Some(""))).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("pg_dump is not installed"), "{stderr}");
    assert!(stderr.contains("pg_dump --format=custom"), "{stderr}");
    assert!(!stderr.contains("s3cret-pw"), "{stderr}");
    assert!(!dump.exists());

    // With it: a custom-format archive of the database.
    let out = output(backup(None)).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("pg_restore"), "{stdout}");
    assert!(!stdout.contains("s3cret-pw"), "{stdout}");
    let bytes = std::fs::read(&dump).unwrap();
    assert!(bytes.starts_with(b"PGDMP"), "not a pg_dump archive");
}

#[tokio::test]
async fn the_store_speaks_tls_to_postgres_and_verifies_the_server_when_asked() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = db.url(dir.path());
    let plain = Store::open(&url).await.unwrap();
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(plain.pool())
        .await
        .unwrap();
    if ssl != "on" {
        assert!(
            std::env::var("CI").is_err(),
            "the test PostgreSQL server has no TLS (the throw-away cluster makes a certificate \
             with openssl)"
        );
        eprintln!("SKIPPED: the PostgreSQL server given has ssl = off");
        return;
    }
    let with = |params: &str| format!("{url}?{params}");
    let tls_sessions = |store: &Store, name: &'static str| {
        let store = store.clone();
        async move {
            let ssl: Vec<bool> = sqlx::query_scalar(
                "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
                 WHERE a.datname = current_database() AND a.application_name LIKE $1",
            )
            .bind(name)
            .fetch_all(store.pool())
            .await
            .unwrap();
            ssl
        }
    };

    // Encrypted: the pool's sessions and the lock session.
    let tls = Store::open(&with("sslmode=require")).await.unwrap();
    let mut lead = Leadership::new(&tls);
    assert!(lead.try_acquire(Utc::now()).await.unwrap());
    let pool = tls_sessions(&tls, "essbot %").await;
    assert!(!pool.is_empty() && pool.iter().all(|s| *s), "{pool:?}");
    assert_eq!(tls_sessions(&tls, "essbot-lock %").await, [true]);
    lead.release(Utc::now()).await;

    // Verified against the server's certificate; refused against another one.
    let Some(cert) = crate::pg::server_certificate() else {
        return;
    };
    let verified = Store::open(&with(&format!(
        "sslmode=verify-full&sslrootcert={}",
        cert.display()
    )))
    .await
    .unwrap();
    assert_eq!(verified.check_keys().await.unwrap().len(), 0);
    let other = dir.path().join("other.crt");
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(dir.path().join("other.key"))
        .arg("-out")
        .arg(&other)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(made.success());
    let refused = Store::open(&with(&format!(
        "sslmode=verify-full&sslrootcert={}",
        other.display()
    )))
    .await
    .unwrap_err()
    .to_string();
    assert!(refused.contains("impossible d'ouvrir"), "{refused}");
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reads_the_other_projects_from_a_postgres_store_and_writes_nothing() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let env = TestEnv::spawn_on(db).await;
    let services = essbot::cycle::Services::with_store(
        env.settings.clone(),
        env.store.clone(),
        std::sync::Arc::new(env.clock.clone()),
    )
    .unwrap();
    let report = essbot::cycle::run_once(&services, &tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.outcome, "ok", "{:?}", report.errors);
    let count = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT (SELECT COUNT(*) FROM checks) + (SELECT COUNT(*) FROM findings)
                  + (SELECT COUNT(*) FROM dossiers) + (SELECT COUNT(*) FROM cycles)",
        )
        .fetch_one(env.store.pool())
        .await
        .unwrap()
    };
    let before = count().await;
    let writes = env.sandbox.mutations().len();
    let today = essbot::precheck::paris_today(Utc::now());
    let json = essbot::commands::check::check_on(&env.settings, 1, true, today)
        .await
        .unwrap();
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["store"], "present", "{json}");
    assert_eq!(json["overlap_check"], "complete", "{json}");
    assert_eq!(count().await, before, "check wrote to the store");
    assert_eq!(env.sandbox.mutations().len(), writes, "check wrote to DS");
}
