//! Shared test helpers: a temporary store on either backend ([`TestDb`]), a [`TestEnv`] that
//! runs the DS sandbox on port 0 next to a temporary database, with settings pointing at both,
//! and one real cycle run on the demo data set's "today". [`both_backends!`] runs one test body
//! on SQLite and on PostgreSQL.
//!
//! Everything lives in a temporary folder (or a throw-away PostgreSQL database, see `pg`)
//! removed when the value is dropped, and the sandbox listens on a free port, so tests run in
//! parallel without sharing anything.

// Shared by several test modules, each of which uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use ds_sandbox::{DEMO_TOKEN, Dataset, RequestRecord, Sandbox, SandboxOptions};
use essbot::clock::FixedClock;
use essbot::config::{self, ConfigError, DemarcheSettings, Env, Settings, Source};
use essbot::cycle::{self, CycleReport, Services};
use essbot::ds::DsClient;
use essbot::store::{Backend, Store};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use crate::pg::PgDatabase;

/// Runs one async test body twice, as `<name>::sqlite` and `<name>::postgres`, with `db` a
/// [`TestDb`] of that backend. The PostgreSQL run says SKIPPED and returns when no server can
/// be had (it fails instead under `CI=true`, see `pg`).
///
/// ```text
/// both_backends! {
///     #[tokio::test]
///     async fn a_page_is_committed_with_its_position(db) { let t = temp_store_on(db).await; ... }
/// }
/// ```
macro_rules! both_backends {
    ($(#[$attr:meta])* async fn $name:ident($db:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($db: crate::helpers::TestDb) $body

            $(#[$attr])*
            async fn sqlite() {
                body(crate::helpers::TestDb::Sqlite).await
            }

            $(#[$attr])*
            async fn postgres() {
                if let Some(db) = crate::helpers::TestDb::postgres().await {
                    body(db).await
                }
            }
        }
    };
}

/// Which database a test runs on.
pub enum TestDb {
    /// A SQLite file, `essbot.db` in the test's temporary folder.
    Sqlite,
    /// A throw-away PostgreSQL database, dropped with this value.
    Postgres(PgDatabase),
}

impl TestDb {
    /// A new PostgreSQL database, or `None` when there is no server (see `pg`).
    pub async fn postgres() -> Option<Self> {
        PgDatabase::create().await.map(Self::Postgres)
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// The database URL, a SQLite one in `dir`.
    pub fn url(&self, dir: &std::path::Path) -> String {
        match self {
            Self::Sqlite => format!("sqlite://{}", dir.join("essbot.db").display()),
            Self::Postgres(db) => db.url.clone(),
        }
    }
}

/// A fresh store and where it lives; reopen it with `Store::open(&t.url)`.
pub struct TempStore {
    pub store: Store,
    pub url: String,
    pub dir: TempDir,
    pub db: TestDb,
}

/// A fresh store on `db`, migrations applied.
pub async fn temp_store_on(db: TestDb) -> TempStore {
    let dir = tempfile::tempdir().expect("temporary folder");
    let url = db.url(dir.path());
    let store = Store::open(&url).await.expect("open the store");
    TempStore {
        store,
        url,
        dir,
        db,
    }
}

/// A fresh SQLite store in a temporary folder (`<dir>/essbot.db`), migrations applied. Keep
/// the folder alive as long as the store.
pub async fn temp_store() -> (TempDir, Store) {
    let t = temp_store_on(TestDb::Sqlite).await;
    (t.dir, t.store)
}

/// The sandbox serving a data set, a store in a temporary folder, and the demo configuration
/// pointed at both (token [`DEMO_TOKEN`]), with a clock fixed at the start of the test.
pub struct TestEnv {
    pub sandbox: Sandbox,
    pub store: Store,
    /// The demo configuration (démarches 1001 and 1002) with the sandbox's endpoint, the
    /// temporary database, no rate limit worth waiting for, and short retries.
    pub settings: Settings,
    /// Fixed at the wall-clock time the environment started; move it with `set`.
    pub clock: FixedClock,
    pub dir: TempDir,
    /// Where the store lives (kept alive with the environment).
    pub db: TestDb,
}

impl TestEnv {
    /// The sandbox with the demo data set.
    pub async fn spawn() -> Self {
        Self::with_dataset(Dataset::demo()).await
    }

    /// The sandbox with `dataset` (e.g. `Dataset::synthetic(&[1001, 1002], 250, 7)`).
    pub async fn with_dataset(dataset: Dataset) -> Self {
        Self::with_dataset_on(dataset, TestDb::Sqlite).await
    }

    /// The sandbox with the demo data set, the store on `db`.
    pub async fn spawn_on(db: TestDb) -> Self {
        Self::with_dataset_on(Dataset::demo(), db).await
    }

    /// The sandbox with `dataset`, the store on `db`.
    pub async fn with_dataset_on(dataset: Dataset, db: TestDb) -> Self {
        let sandbox = Sandbox::start(
            dataset,
            SandboxOptions {
                rate_limit_per_minute: None,
                ..SandboxOptions::default()
            },
            "127.0.0.1:0".parse().expect("address"),
        )
        .await
        .expect("start the sandbox");
        let dir = tempfile::tempdir().expect("temporary folder");
        let settings = settings_for_url(config::DEMO_CONFIG, &sandbox.url(), &db.url(dir.path()))
            .expect("demo config");
        let store = Store::connect(&settings.database)
            .await
            .expect("open the store");
        Self {
            sandbox,
            store,
            settings,
            clock: FixedClock::new(Utc::now()),
            dir,
            db,
        }
    }

    /// A client with the configured token and millisecond retry delays.
    pub fn client(&self) -> DsClient {
        DsClient::new(&self.settings.ds)
            .expect("client")
            .with_retry_delays(Duration::from_millis(1), Duration::from_millis(5))
    }

    /// A client presenting another token (expired, restricted, unknown).
    pub fn client_with_token(&self, token: &str) -> DsClient {
        let mut ds = self.settings.ds.clone();
        ds.token = Some(token.to_owned().into());
        DsClient::new(&ds)
            .expect("client")
            .with_retry_delays(Duration::from_millis(1), Duration::from_millis(5))
    }

    /// The configured démarche `number`.
    pub fn demarche(&self, number: i64) -> &DemarcheSettings {
        self.settings
            .demarches
            .iter()
            .find(|d| d.number == number)
            .expect("démarche in the demo configuration")
    }

    /// Requests the sandbox received for `operation` since the last `clear_logs`.
    pub fn requests(&self, operation: &str) -> Vec<RequestRecord> {
        self.sandbox
            .requests()
            .into_iter()
            .filter(|r| r.operation_name.as_deref() == Some(operation))
            .collect()
    }
}

/// A configuration text (the demo's, or another form's) loaded with the demo token, pointed at
/// the sandbox `endpoint` and the SQLite file `db`, with no pacing worth waiting for and short
/// retries.
pub fn settings_for(config_text: &str, endpoint: &str, db: &Path) -> Result<Settings, ConfigError> {
    settings_for_url(config_text, endpoint, &format!("sqlite://{}", db.display()))
}

/// As [`settings_for`], with any database URL (SQLite or PostgreSQL).
pub fn settings_for_url(
    config_text: &str,
    endpoint: &str,
    database_url: &str,
) -> Result<Settings, ConfigError> {
    let env = Env {
        vars: BTreeMap::from([
            (config::TOKEN_ENV.to_owned(), DEMO_TOKEN.to_owned()),
            ("ESSBOT__DS__ENDPOINT".to_owned(), endpoint.to_owned()),
            ("ESSBOT__DATABASE__URL".to_owned(), database_url.to_owned()),
        ]),
    };
    let mut settings = config::load(&Source::Text(config_text.into()), &env)?;
    // Loopback: pacing requests would only slow the tests down.
    settings.ds.max_requests_per_second = 10_000.0;
    settings.ds.max_retries = 2;
    Ok(settings)
}

/// "Today" of the demo data set (sandbox/data/README.md).
pub fn demo_today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 25).expect("date")
}

/// A demo environment whose clock reads the data set's "today", noon in Paris.
pub async fn demo_env() -> TestEnv {
    let env = TestEnv::spawn().await;
    env.clock.set(
        Utc.with_ymd_and_hms(2026, 11, 25, 11, 0, 0)
            .single()
            .expect("time"),
    );
    env
}

/// Runs one real cycle (sync, pre-check, write-back) of `settings` on `store` and returns its
/// report, errors included.
pub async fn run_cycle_with(settings: &Settings, store: &Store, clock: &FixedClock) -> CycleReport {
    let services = Services::with_store(settings.clone(), store.clone(), Arc::new(clock.clone()))
        .expect("services");
    cycle::run_once(&services, &CancellationToken::new())
        .await
        .expect("cycle")
}

/// Runs one real cycle of the environment's configuration on its store, failing the test on any
/// error of the cycle.
pub async fn run_cycle(env: &TestEnv) -> CycleReport {
    let report = run_cycle_with(&env.settings, &env.store, &env.clock).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    report
}

/// The sandbox with the demo data set and DS's default rate limit, on a free loopback port: what
/// the tests that spawn the real binary talk to.
pub async fn demo_sandbox() -> Sandbox {
    Sandbox::start(
        Dataset::demo(),
        SandboxOptions::default(),
        "127.0.0.1:0".parse().expect("address"),
    )
    .await
    .expect("start the sandbox")
}

/// The embedded demo configuration pointed at `endpoint`, with its database in `dir`, as TOML
/// text for a configuration file (the binary reads files, not `Settings`).
pub fn demo_config_text(dir: &std::path::Path, endpoint: &str) -> String {
    config::DEMO_CONFIG
        .replace("http://127.0.0.1:8080/api/v2/graphql", endpoint)
        .replace(
            "sqlite://essbot-demo.db",
            &format!("sqlite://{}", dir.join("essbot.db").display()),
        )
}

/// [`demo_config_text`] with the database at `url` instead of a file in `dir`.
pub fn demo_config_on(dir: &std::path::Path, endpoint: &str, url: &str) -> String {
    demo_config_text(dir, endpoint).replace(
        &format!("sqlite://{}", dir.join("essbot.db").display()),
        url,
    )
}
