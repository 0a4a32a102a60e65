//! The fault matrix: essbot against the sandbox under each fault DS, the network, the process
//! or the database can throw at it. After each fault the same invariants are checked:
//!
//! - **nothing lost**: once the fault clears, every dossier DS lists is stored (status listed)
//!   and has a stored pre-check;
//! - **nothing written twice**: no mutation DS applied appears twice in the sandbox's mutation
//!   log for the same dossier, operation and input; no duplicate `dossier_history` row;
//! - **a clear error**: the démarche's `sync_state.last_error`, the cycle's errors or the
//!   outbox failure says what happened, in French where staff read it, naming the démarche;
//! - **the next cycle is healthy**: outcome `ok`, and a quiet cycle after it writes nothing.
//!
//! Most rows run [`cycle::run_once`] in process (short retry delays, small timeouts); the
//! SIGKILL row spawns the real binary. README.md, "Reliability: the fault matrix", lists the
//! rows and what each checks.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Duration as ChronoDuration;
use ds_sandbox::{DEMO_TOKEN, Dataset, DeletedDossierReason, Fault, Sandbox};
use essbot::clock::Clock;
use essbot::config::Settings;
use essbot::cycle::{self, CycleReport, Services};
use essbot::ds::DsClient;
use essbot::store::{CycleOutcome, DossierStatus, Store};
use essbot::writeback;
use sqlx::Connection as _;
use sqlx::SqliteConnection;
use tokio_util::sync::CancellationToken;

use crate::helpers::{TestDb, TestEnv};

const LIST: &str = "GetDemarcheDossiers";
const ANNOTATIONS: &str = "DossierModifierAnnotations";
const DEMARCHES: [i64; 2] = [1001, 1002];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Services on the environment's store with `settings` and millisecond retry delays.
fn services(env: &TestEnv, settings: Settings) -> Services {
    let mut s = Services::with_store(settings, env.store.clone(), Arc::new(env.clock.clone()))
        .expect("services");
    s.client = s.client.with_retry_delays(ms(1), ms(5));
    s
}

async fn run(s: &Services) -> CycleReport {
    cycle::run_once(s, &CancellationToken::new())
        .await
        .expect("the cycle runs (a démarche's failure makes it partial, not an error)")
}

/// Every dossier DS lists for `demarche`, read with a fault-free client.
pub(crate) async fn listed(client: &DsClient, demarche: i64) -> BTreeSet<i64> {
    let mut out = BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        let page = client
            .dossiers_page(demarche, None, after.as_deref())
            .await
            .expect("list DS");
        out.extend(page.dossiers.iter().filter_map(|d| d.number));
        if !page.has_next_page {
            return out;
        }
        after = page.end_cursor;
    }
}

/// Nothing lost, nothing written twice (see the module docs).
pub(crate) async fn assert_invariants(store: &Store, sandbox: &Sandbox, client: &DsClient) {
    let checked: BTreeSet<i64> = essbot::precheck::stored_checks(store)
        .await
        .expect("checks")
        .iter()
        .map(|c| c.dossier)
        .collect();
    for demarche in DEMARCHES {
        for number in listed(client, demarche).await {
            let stored = store
                .dossier(number)
                .await
                .expect("store")
                .unwrap_or_else(|| {
                    panic!("dossier {number} of démarche {demarche} listed by DS but not stored")
                });
            assert_eq!(stored.status, DossierStatus::Listed, "dossier {number}");
            assert!(checked.contains(&number), "dossier {number} never checked");
        }
    }
    assert_no_duplicate_mutation(sandbox);
    let dups: Vec<(i64, String, String, i64)> = sqlx::query_as(
        "SELECT number, kind, at, COUNT(*) FROM dossier_history
         GROUP BY number, kind, COALESCE(from_state, ''), COALESCE(to_state, ''), at
         HAVING COUNT(*) > 1",
    )
    .fetch_all(store.pool())
    .await
    .expect("history");
    assert!(dups.is_empty(), "history rows recorded twice: {dups:?}");
}

/// No mutation DS applied appears twice with the same operation, dossier and input.
#[track_caller]
pub(crate) fn assert_no_duplicate_mutation(sandbox: &Sandbox) {
    let mut seen: BTreeMap<(String, Option<i32>, String), usize> = BTreeMap::new();
    for m in sandbox
        .mutations()
        .into_iter()
        .filter(|m| m.errors.is_empty())
    {
        let mut input = m.input.clone();
        if let Some(o) = input.as_object_mut() {
            o.remove("clientMutationId");
        }
        *seen
            .entry((m.name, m.dossier_number, input.to_string()))
            .or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "written twice: {twice:?}");
}

/// The next cycle is ok, the invariants hold, and one more cycle writes nothing.
async fn assert_recovered(env: &TestEnv, s: &Services) -> CycleReport {
    let report = run(s).await;
    assert_eq!(report.outcome, "ok", "{:?}", report.errors);
    assert_invariants(&env.store, &env.sandbox, &env.client()).await;
    let before = env.sandbox.mutations().len();
    let quiet = run(s).await;
    assert_eq!(quiet.outcome, "ok", "{:?}", quiet.errors);
    assert_eq!(env.sandbox.mutations().len(), before, "a quiet cycle wrote");
    report
}

/// Every error of the report, joined, for `contains` checks.
fn all_errors(report: &CycleReport) -> String {
    format!("{:?}", report.errors)
}

async fn last_error(store: &Store, demarche: i64) -> String {
    store
        .sync_state(demarche)
        .await
        .expect("sync state")
        .last_error
        .unwrap_or_default()
}

/// A fault on every listing request of the first cycle: both démarches' sync stops with
/// `expected` as their last error, the cycle is partial and names them; once the fault clears
/// the next cycle recovers everything.
async fn listing_fault_row(env: TestEnv, settings: Settings, fault: Fault, expected: &str) {
    let s = services(&env, settings);
    env.sandbox.push_fault(fault.clone(), 1000, Some(LIST));
    let report = run(&s).await;
    assert_eq!(report.outcome, "partial", "{fault:?}");
    for demarche in DEMARCHES {
        let errors = report.errors[&demarche].join(" | ");
        assert!(errors.contains(expected), "{fault:?}: {errors}");
        let last = last_error(&env.store, demarche).await;
        assert!(last.contains(expected), "{fault:?}: {last}");
    }
    let cycle = env.store.last_cycle().await.unwrap().unwrap();
    let text = cycle.error.unwrap_or_default();
    assert!(
        text.contains("démarche 1001") && text.contains(expected),
        "{text}"
    );
    assert!(
        env.sandbox.mutations().is_empty(),
        "nothing synced, nothing written"
    );
    env.sandbox.clear_faults();
    assert_recovered(&env, &s).await;
    for demarche in DEMARCHES {
        assert_eq!(last_error(&env.store, demarche).await, "", "cleared");
    }
}

#[tokio::test]
async fn a_429_storm_shorter_than_the_retries_is_absorbed_a_longer_one_is_recorded() {
    let env = TestEnv::spawn().await;
    let s = services(&env, env.settings.clone());
    let storm = Fault::Http429 {
        reset_secs: 0,
        retry_after: Some(0),
    };
    // Two 429 in a row: the third attempt (max_retries = 2) goes through.
    env.sandbox.push_fault(storm.clone(), 2, None);
    let report = run(&s).await;
    assert_eq!(report.outcome, "ok", "{:?}", report.errors);
    assert_invariants(&env.store, &env.sandbox, &env.client()).await;

    let env = TestEnv::spawn().await;
    let settings = env.settings.clone();
    listing_fault_row(env, settings, storm, "limite de requêtes DS atteinte").await;
}

#[tokio::test]
async fn http_500_502_503_are_recorded_and_the_next_cycle_recovers() {
    for status in [500, 502, 503] {
        let env = TestEnv::spawn().await;
        let settings = env.settings.clone();
        let expected = format!("DS indisponible (HTTP {status}) après 3 essais");
        listing_fault_row(env, settings, Fault::Status(status), &expected).await;
    }
}

#[tokio::test]
async fn a_500_on_annotation_writes_leaves_them_for_the_next_cycle_and_writes_once() {
    let env = TestEnv::spawn().await;
    let s = services(&env, env.settings.clone());
    env.sandbox
        .push_fault(Fault::Status(500), 1000, Some(ANNOTATIONS));
    let report = run(&s).await;
    assert_eq!(report.outcome, "partial");
    let errors = all_errors(&report);
    assert!(errors.contains("DS indisponible (HTTP 500)"), "{errors}");
    assert!(writeback::pending_count(&env.store).await.unwrap() > 0);
    env.sandbox.clear_faults();
    assert_recovered(&env, &s).await;
}

#[tokio::test]
async fn answers_slower_than_the_timeout_are_recorded_and_the_next_cycle_recovers() {
    let env = TestEnv::spawn().await;
    let mut settings = env.settings.clone();
    // `ds.timeout_secs` is at least 1 in the file; the validated setting takes less.
    settings.ds.timeout = ms(300);
    let s = services(&env, settings);
    env.sandbox.push_fault(Fault::Delay(ms(700)), 3, Some(LIST));
    let report = run(&s).await;
    assert_eq!(report.outcome, "partial");
    let last = last_error(&env.store, 1001).await;
    assert!(
        last.contains("DS ne répond pas (délai dépassé) après 3 essais"),
        "{last}"
    );
    assert!(
        report.errors[&1001].join(" ").contains("DS ne répond pas"),
        "{report:?}"
    );
    // 1002 went on.
    assert!(!report.errors.contains_key(&1002), "{:?}", report.errors);
    assert_recovered(&env, &s).await;
}

#[tokio::test]
async fn a_label_write_slower_than_the_timeout_is_read_back_not_sent_twice() {
    let env = TestEnv::spawn().await;
    let mut settings = env.settings.clone();
    settings.ds.timeout = ms(300);
    let s = services(&env, settings);
    // DS runs the label addition after the client gave up: only a read-back can tell.
    env.sandbox
        .push_fault(Fault::Delay(ms(600)), 1, Some("DossierAjouterLabel"));
    let report = run(&s).await;
    assert_eq!(report.outcome, "partial", "{:?}", report.errors);
    assert!(all_errors(&report).contains("délai dépassé"), "{report:?}");
    // Let the delayed request land on the sandbox before the next cycle reads back.
    tokio::time::sleep(ms(500)).await;
    assert_recovered(&env, &s).await;
}

#[tokio::test]
async fn connection_refused_is_recorded_then_the_endpoint_comes_back() {
    let env = TestEnv::spawn().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut settings = env.settings.clone();
    settings.ds.endpoint = format!("http://127.0.0.1:{closed}/api/v2/graphql")
        .parse()
        .unwrap();
    let down = services(&env, settings);
    let report = run(&down).await;
    assert_eq!(report.outcome, "partial");
    for demarche in DEMARCHES {
        let last = last_error(&env.store, demarche).await;
        assert!(last.contains("DS injoignable"), "{last}");
        assert!(
            report.errors[&demarche]
                .join(" ")
                .contains("DS injoignable"),
            "{report:?}"
        );
    }
    assert!(env.sandbox.requests().is_empty());
    let up = services(&env, env.settings.clone());
    assert_recovered(&env, &up).await;
}

#[tokio::test]
async fn a_cut_body_and_malformed_json_are_recorded_and_the_next_cycle_recovers() {
    let env = TestEnv::spawn().await;
    let settings = env.settings.clone();
    listing_fault_row(env, settings, Fault::CutBody, "échange avec DS interrompu").await;
    let env = TestEnv::spawn().await;
    let settings = env.settings.clone();
    listing_fault_row(
        env,
        settings,
        Fault::MalformedJson,
        "réponse illisible de DS",
    )
    .await;
}

#[tokio::test]
async fn an_annotation_write_whose_answer_is_cut_is_recovered_without_a_second_send() {
    let env = TestEnv::spawn().await;
    let s = services(&env, env.settings.clone());
    // DS runs the write, the answer is cut: the client cannot know it went through.
    env.sandbox.push_fault(Fault::CutBody, 1, Some(ANNOTATIONS));
    env.sandbox
        .push_fault(Fault::DropConnection, 1000, Some(ANNOTATIONS));
    let report = run(&s).await;
    assert_eq!(report.outcome, "partial");
    env.sandbox.clear_faults();
    let next = assert_recovered(&env, &s).await;
    assert!(
        next.writes.iter().any(|o| !o.recovered.is_empty()) || next.mutations > 0,
        "{next:?}"
    );
}

#[tokio::test]
async fn graphql_errors_with_partial_data_keep_the_rest_and_lose_nothing() {
    let env = TestEnv::spawn().await;
    let s = services(&env, env.settings.clone());
    // One node nulled (DS's `invalid_null`), then the whole answer nulled (`timeout`, retried).
    env.sandbox.push_fault(
        Fault::GraphQlError {
            code: "invalid_null".into(),
            message: "Cannot return null for non-nullable field".into(),
            path: ["demarche", "dossiers", "nodes", "2"]
                .map(str::to_owned)
                .to_vec(),
        },
        1,
        Some(LIST),
    );
    env.sandbox.push_fault(
        Fault::GraphQlError {
            code: "timeout".into(),
            message: "Timeout on Query.demarche".into(),
            path: Vec::new(),
        },
        1000,
        Some(LIST),
    );
    let report = run(&s).await;
    assert_eq!(report.outcome, "partial");
    let last = last_error(&env.store, 1002).await;
    assert!(
        last.contains("erreur de DS sur GetDemarcheDossiers (timeout)"),
        "{last}"
    );
    env.sandbox.clear_faults();
    // The nulled node had no readable number: nothing could be recorded for it, and the
    // incremental passes that follow do not list it again (its date did not move). The next
    // full reconciliation does (see README, "Reliability: the fault matrix").
    env.clock.set(env.clock.now() + ChronoDuration::hours(25));
    assert_recovered(&env, &s).await;
}

#[tokio::test]
async fn token_problems_are_recorded_per_demarche() {
    for (token, expected) in [
        ("essbot-demo-expired", "jeton expiré"),
        ("not-a-token", "accès refusé par DS (HTTP 403)"),
    ] {
        let env = TestEnv::spawn().await;
        let mut settings = env.settings.clone();
        settings.ds.token = Some(token.to_owned().into());
        let s = services(&env, settings);
        let report = run(&s).await;
        assert_eq!(report.outcome, "partial");
        for demarche in DEMARCHES {
            let last = last_error(&env.store, demarche).await;
            assert!(last.contains(expected), "{token}: {last}");
            assert!(!last.contains(token), "the token leaked: {last}");
        }
        assert!(env.sandbox.mutations().is_empty());
        let good = services(&env, env.settings.clone());
        assert_recovered(&env, &good).await;
    }

    // A token restricted to 1001: 1002 is refused, 1001 goes on.
    let env = TestEnv::spawn().await;
    let mut settings = env.settings.clone();
    settings.ds.token = Some("essbot-demo-li-only".to_owned().into());
    let s = services(&env, settings);
    let report = run(&s).await;
    assert_eq!(report.outcome, "partial");
    assert!(!report.errors.contains_key(&1001), "{:?}", report.errors);
    let last = last_error(&env.store, 1002).await;
    assert!(
        last.contains("jeton sans accès à la démarche 1002"),
        "{last}"
    );
    let good = services(&env, env.settings.clone());
    assert_recovered(&env, &good).await;
}

#[tokio::test]
async fn a_read_only_token_and_an_instructeur_without_rights_are_recorded_not_retried_blindly() {
    for (token, instructeur, expected) in [
        (
            "essbot-demo-readonly",
            None,
            "Le jeton utilisé est configuré seulement en lecture",
        ),
        (DEMO_TOKEN, Some("SW5zdHJ1Y3RldXItMg=="), "droits"),
    ] {
        let env = TestEnv::spawn().await;
        let mut settings = env.settings.clone();
        settings.ds.token = Some(token.to_owned().into());
        if let Some(i) = instructeur {
            settings.ds.instructeur_id = i.into();
        }
        let s = services(&env, settings);
        let report = run(&s).await;
        assert_eq!(report.outcome, "partial");
        assert!(all_errors(&report).contains(expected), "{report:?}");
        let failures = writeback::failures(&env.store).await.unwrap();
        assert!(
            failures.iter().any(|f| f.error.contains(expected)),
            "{failures:?}"
        );
        // The same refused writes are not sent again at the next cycle.
        let refused = env.sandbox.mutations().len();
        let again = run(&s).await;
        assert_eq!(env.sandbox.mutations().len(), refused, "{again:?}");

        // Fixed by an administrator: after the retry delay, each write lands once.
        env.clock.set(env.clock.now() + ChronoDuration::hours(25));
        let good = services(&env, env.settings.clone());
        assert_recovered(&env, &good).await;
        assert!(writeback::failures(&env.store).await.unwrap().is_empty());
    }
}

/// splitmix64: a seeded sequence without a dependency.
pub(crate) fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The demo configuration on the environment's sandbox and database, unpaced.
fn config_file(env: &TestEnv) -> std::path::PathBuf {
    let body = essbot::config::DEMO_CONFIG
        .replace("http://127.0.0.1:8080/api/v2/graphql", &env.sandbox.url())
        .replace(
            "sqlite://essbot-demo.db",
            &format!("sqlite://{}", env.dir.path().join("essbot.db").display()),
        )
        .replace(
            "max_requests_per_second = 5.0",
            "max_requests_per_second = 6.0",
        );
    let path = env.dir.path().join("essbot.toml");
    std::fs::write(&path, body).unwrap();
    path
}

fn run_once_command(config: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_essbot"));
    c.args(["run", "--once", "--config"])
        .arg(config)
        .env_clear()
        .env("ESSBOT_DS_TOKEN", DEMO_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// One seed: `essbot run --once` killed with SIGKILL after a seeded delay, then run again
/// until a cycle is ok; the invariants hold on the SQLite file and the mutation log.
async fn kill_at_random(seed: u64) {
    // A small data set: the binary paces its requests (at most 6 a second, as configured).
    let env = TestEnv::with_dataset(Dataset::synthetic(&[1001, 1002], 3, seed)).await;
    let cfg = config_file(&env);
    let mut rng = seed;
    // Slow some reads and writes so that kills land in every stage.
    env.sandbox.push_fault(Fault::Delay(ms(80)), 2, Some(LIST));
    env.sandbox
        .push_fault(Fault::Delay(ms(40)), 12, Some(ANNOTATIONS));
    env.sandbox
        .push_fault(Fault::Delay(ms(40)), 6, Some("DossierAjouterLabel"));
    let kill_after = ms(100 + splitmix(&mut rng) % 2500);
    let mut child = run_once_command(&cfg).spawn().unwrap();
    tokio::time::sleep(kill_after).await;
    // SIGKILL (`Child::kill`): no chance to finish the call or record its answer.
    let _ = child.kill();
    let _ = child.wait();
    env.sandbox.clear_faults();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let cfg = cfg.clone();
        let out = tokio::task::spawn_blocking(move || run_once_command(&cfg).output().unwrap())
            .await
            .unwrap();
        if out.status.success() {
            break;
        }
        assert!(
            attempts < 3,
            "seed {seed}, killed after {kill_after:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let cycles = env.store.recent_cycles(20).await.unwrap();
    assert!(
        cycles.iter().all(|c| c.outcome != CycleOutcome::Running),
        "seed {seed}: {cycles:?}"
    );
    assert_eq!(cycles[0].outcome, CycleOutcome::Ok, "seed {seed}");
    assert_invariants(&env.store, &env.sandbox, &env.client()).await;
    let before = env.sandbox.mutations().len();
    let out = tokio::task::spawn_blocking(move || run_once_command(&cfg).output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "seed {seed}");
    assert_eq!(
        env.sandbox.mutations().len(),
        before,
        "seed {seed}: rewrote"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_of_a_cycle_loses_nothing_and_writes_nothing_twice() {
    let mut set = tokio::task::JoinSet::new();
    for seed in 1..=10u64 {
        set.spawn(kill_at_random(seed));
        // Two at a time keeps the 2-core machine from starving the killed process.
        if set.len() == 2 {
            set.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_by_another_process_fails_clearly_then_waits_then_succeeds() {
    let env = TestEnv::spawn().await;
    let s = services(&env, env.settings.clone());
    let url = format!("sqlite://{}", env.dir.path().join("essbot.db").display());
    let mut other = SqliteConnection::connect(&url).await.unwrap();

    // Held longer than the store's busy timeout (10 s): the cycle fails and says why.
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut other)
        .await
        .unwrap();
    let started = Instant::now();
    let err = cycle::run_once(&s, &CancellationToken::new())
        .await
        .expect_err("the database is locked");
    let text = format!("{:#}", anyhow::Error::from(err));
    assert!(text.contains("database is locked"), "{text}");
    assert!(text.contains("erreur de base de données"), "{text}");
    assert!(started.elapsed() >= Duration::from_secs(5), "{text}");
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();

    // Held for a moment: the cycle waits, then runs.
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut other)
        .await
        .unwrap();
    let cycle = tokio::spawn({
        let s = s.clone();
        async move { cycle::run_once(&s, &CancellationToken::new()).await }
    });
    tokio::time::sleep(ms(800)).await;
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    let report = cycle.await.unwrap().expect("the cycle waited");
    assert_eq!(report.outcome, "ok", "{:?}", report.errors);
    other.close().await.unwrap();
    assert_recovered(&env, &s).await;
}

/// `PRAGMA max_page_count` on every connection of the store's pool (it is per connection):
/// the four are held at once so that each gets it. `None` lifts the limit.
async fn limit_pages(store: &Store, limited: bool) {
    let mut conns = Vec::new();
    for _ in 0..4 {
        conns.push(store.pool().acquire().await.unwrap());
    }
    // 1 is raised by SQLite to the current size: the file cannot grow by a single page.
    let pragma = if limited {
        "PRAGMA max_page_count = 1"
    } else {
        "PRAGMA max_page_count = 1073741823"
    };
    for c in &mut conns {
        sqlx::query(pragma).execute(&mut **c).await.unwrap();
    }
}

#[tokio::test]
async fn a_full_database_fails_clearly_then_the_next_cycle_recovers() {
    let env = TestEnv::spawn().await;
    let s = services(&env, env.settings.clone());
    limit_pages(&env.store, true).await;
    let text = match cycle::run_once(&s, &CancellationToken::new()).await {
        Ok(report) => {
            assert_ne!(report.outcome, "ok");
            all_errors(&report)
        }
        Err(e) => format!("{:#}", anyhow::Error::from(e)),
    };
    assert!(text.contains("database or disk is full"), "{text}");
    // The failed cycle is recorded with its cause (an UPDATE in place needs no new page).
    let last = env.store.last_cycle().await.unwrap().unwrap();
    assert_ne!(last.outcome, CycleOutcome::Ok);
    let recorded = last.error.unwrap_or_default();
    assert!(recorded.contains("database or disk is full"), "{recorded}");
    limit_pages(&env.store, false).await;
    assert_recovered(&env, &s).await;
}

/// PostgreSQL: another session holds exclusive locks on the tables the cycle starts with.
async fn lock_tables(other: &mut sqlx::PgConnection) {
    sqlx::query("BEGIN").execute(&mut *other).await.unwrap();
    sqlx::query("LOCK TABLE cycles, sync_state, dossiers IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *other)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tables_locked_by_another_session_fail_clearly_then_wait_then_succeed() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let env = TestEnv::spawn_on(db).await;
    let s = services(&env, env.settings.clone());
    let url = env.db.url(env.dir.path());
    let mut other = sqlx::PgConnection::connect(&url).await.unwrap();

    // Held longer than the store's lock timeout (10 s): the cycle fails and says why.
    lock_tables(&mut other).await;
    let started = Instant::now();
    let err = cycle::run_once(&s, &CancellationToken::new())
        .await
        .expect_err("the tables are locked");
    let text = format!("{:#}", anyhow::Error::from(err));
    assert!(text.contains("lock timeout"), "{text}");
    assert!(text.contains("erreur de base de données"), "{text}");
    assert!(started.elapsed() >= Duration::from_secs(5), "{text}");
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();

    // Held for a moment: the cycle waits, then runs.
    lock_tables(&mut other).await;
    let cycle = tokio::spawn({
        let s = s.clone();
        async move { cycle::run_once(&s, &CancellationToken::new()).await }
    });
    tokio::time::sleep(ms(800)).await;
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    let report = cycle.await.unwrap().expect("the cycle waited");
    assert_eq!(report.outcome, "ok", "{:?}", report.errors);
    other.close().await.unwrap();
    assert_recovered(&env, &s).await;
}

/// PostgreSQL: ends every session of the test's database but `admin`'s, as a server restart or
/// a DBA would; the store's pool opens new ones.
async fn end_sessions(admin: &mut sqlx::PgConnection) {
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(admin)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_turned_read_only_fails_clearly_then_the_next_cycle_recovers() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let env = TestEnv::spawn_on(db).await;
    let s = services(&env, env.settings.clone());
    // What a DBA does before maintenance, or a standby server promoted late: every new
    // session is read-only.
    let mut admin = sqlx::PgConnection::connect(&env.db.url(env.dir.path()))
        .await
        .unwrap();
    let name: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {name} SET default_transaction_read_only = on"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    end_sessions(&mut admin).await;
    let text = match cycle::run_once(&s, &CancellationToken::new()).await {
        Ok(report) => {
            assert_ne!(report.outcome, "ok");
            all_errors(&report)
        }
        Err(e) => format!("{:#}", anyhow::Error::from(e)),
    };
    assert!(text.contains("read-only transaction"), "{text}");
    assert!(env.sandbox.mutations().is_empty(), "nothing written to DS");
    // Lifted: the next cycle recovers everything.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {name} RESET default_transaction_read_only"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    end_sessions(&mut admin).await;
    admin.close().await.unwrap();
    assert_recovered(&env, &s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sessions_cut_in_the_middle_of_the_write_back_lose_nothing() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let env = TestEnv::spawn_on(db).await;
    let s = services(&env, env.settings.clone());
    // Slow writes, so that the cut finds calls on their way and rows being recorded.
    env.sandbox
        .push_fault(Fault::Delay(ms(150)), 1000, Some(ANNOTATIONS));
    let cycle = tokio::spawn({
        let s = s.clone();
        async move { cycle::run_once(&s, &CancellationToken::new()).await }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.requests(ANNOTATIONS).len() < 3 {
        assert!(Instant::now() < deadline, "the write-back never started");
        tokio::time::sleep(ms(10)).await;
    }
    let mut admin = sqlx::PgConnection::connect(&env.db.url(env.dir.path()))
        .await
        .unwrap();
    end_sessions(&mut admin).await;
    admin.close().await.unwrap();
    // The cycle goes on (the pool reconnects) or fails naming the database; either way the
    // next one recovers everything, writes each value once, and a quiet one writes nothing.
    match cycle.await.unwrap() {
        Ok(report) => assert!(!report.outcome.is_empty(), "{report:?}"),
        Err(e) => {
            let text = format!("{:#}", anyhow::Error::from(e));
            assert!(text.contains("base de données"), "{text}");
        }
    }
    env.sandbox.clear_faults();
    assert_recovered(&env, &s).await;
}

#[tokio::test]
async fn a_mapped_champ_removed_from_the_demarche_is_recorded_for_that_demarche_only() {
    let env = TestEnv::spawn().await;
    let s = services(&env, env.settings.clone());
    assert_eq!(run(&s).await.outcome, "ok");
    // « Nombre de médecins adhérents » (stable id 116), mapped as `nb_adherents` on 1001.
    env.sandbox.remove_champ_descriptor(1001, 116).unwrap();
    let before = env.sandbox.mutations().len();
    // Descriptors are read again at the next full reconciliation.
    env.clock.set(env.clock.now() + ChronoDuration::hours(25));
    let report = run(&s).await;
    assert_eq!(report.outcome, "partial");
    let errors = report.errors[&1001].join(" | ");
    assert!(errors.contains("configuration"), "{errors}");
    assert!(!report.errors.contains_key(&1002), "{:?}", report.errors);
    // Nothing written for 1001 on a mapping that no longer holds.
    let of_1001 = listed(&env.client(), 1001).await;
    let written: Vec<_> = env.sandbox.mutations()[before..]
        .iter()
        .filter(|m| {
            m.dossier_number
                .is_some_and(|n| of_1001.contains(&i64::from(n)))
        })
        .cloned()
        .collect();
    assert!(written.is_empty(), "{written:?}");
    assert_no_duplicate_mutation(&env.sandbox);
    // The other démarche keeps being checked: its sync state is clean.
    assert_eq!(last_error(&env.store, 1002).await, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dossier_deleted_during_a_cycle_is_recorded_and_not_written_again() {
    let env = TestEnv::spawn().await;
    let s = services(&env, env.settings.clone());
    let victim = *listed(&env.client(), 1002).await.last().unwrap();
    // The write-back is slowed so that the deletion lands in the middle of it.
    env.sandbox
        .push_fault(Fault::Delay(ms(300)), 1, Some(ANNOTATIONS));
    let cycle = tokio::spawn({
        let s = s.clone();
        async move { cycle::run_once(&s, &CancellationToken::new()).await }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.requests(ANNOTATIONS).is_empty() {
        assert!(Instant::now() < deadline, "no write-back");
        tokio::time::sleep(ms(10)).await;
    }
    env.sandbox
        .delete_dossier(victim as i32, DeletedDossierReason::UserRequest)
        .unwrap();
    let report = cycle.await.unwrap().expect("the cycle runs");
    let errors = all_errors(&report);
    assert!(
        report.outcome == "ok" || errors.contains(&format!("dossier {victim}")),
        "{errors}"
    );
    // The next full reconciliation records the deletion; nothing more is written for it.
    env.clock.set(env.clock.now() + ChronoDuration::hours(25));
    let before = env
        .sandbox
        .mutations()
        .iter()
        .filter(|m| m.dossier_number == Some(victim as i32))
        .count();
    assert_recovered(&env, &s).await;
    let after = env
        .sandbox
        .mutations()
        .iter()
        .filter(|m| m.dossier_number == Some(victim as i32))
        .count();
    assert_eq!(before, after);
    let stored = env.store.dossier(victim).await.unwrap().unwrap();
    assert_eq!(stored.status, DossierStatus::Deleted);
}
