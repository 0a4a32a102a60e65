//! How long the rulebook takes over 10 000 stored lettres d'intention (about 30 champs each),
//! on one core: the target is under one second for `rules::check_batch`.
//!
//! The dossiers come from the sandbox's synthetic generator, synced by the real sync into a
//! fresh SQLite file and a fresh PostgreSQL database, so that they are exactly what the
//! pre-check reads in production. Phases: decoding the stored JSON into dossiers; building the
//! other known projects (what LI-TERR-02 compares every dossier with, all 10 000 of them);
//! `check_batch` alone (pure); then, on each backend, the whole `precheck::run` (read, decode,
//! evaluate, store every report and finding), first on a fresh store (target: at least 2 000
//! dossiers a second) and then again with nothing changed.
//!
//! PostgreSQL is found as the tests find it (`ESSBOT_TEST_POSTGRES_URL`, else a throw-away
//! cluster from the machine's `initdb`, see `tests/it/pg.rs`); without one, its column says so.
//!
//! Run with `cargo bench --bench rules` (`-- 2000` for another number of dossiers).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use ds_sandbox::{DEMO_TOKEN, Dataset, Sandbox, SandboxOptions};
use essbot::clock::SystemClock;
use essbot::config::{self, Env, Source};
use essbot::ds::{DsClient, decode_dossier_text};
use essbot::precheck;
use essbot::rules::{self, KnownProject, KnownProjects, ReferenceData, RuleContext, Verdict};
use essbot::store::Store;
use essbot::sync::sync_demarche;

#[path = "../tests/it/pg.rs"]
#[allow(dead_code)]
mod pg;

const DEMARCHE: i64 = 1001;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let dataset = Dataset::synthetic(&[DEMARCHE as i32], count, 2026);
    let options = SandboxOptions {
        rate_limit_per_minute: None,
        ..SandboxOptions::default()
    };
    let sandbox = Sandbox::start(dataset, options, "127.0.0.1:0".parse()?).await?;
    let dir = tempfile::tempdir()?;
    let env = Env {
        vars: BTreeMap::from([
            (config::TOKEN_ENV.to_owned(), DEMO_TOKEN.to_owned()),
            ("ESSBOT__DS__ENDPOINT".to_owned(), sandbox.url()),
            (
                "ESSBOT__DATABASE__URL".to_owned(),
                format!("sqlite://{}", dir.path().join("bench.db").display()),
            ),
        ]),
    };
    let mut settings = config::load(&Source::Text(config::DEMO_CONFIG.into()), &env)?;
    settings.ds.max_requests_per_second = 1_000_000.0;
    settings.demarches.retain(|d| d.number == DEMARCHE);
    let demarche = settings.demarches[0].clone();

    // Set-up, not timed: sync into each backend, resolve the mapping, load the reference data.
    let client = DsClient::new(&settings.ds)?;
    let postgres = pg::PgDatabase::create().await;
    let mut stores = vec![("SQLite", Store::connect(&settings.database).await?)];
    match &postgres {
        Some(db) => stores.push(("PostgreSQL", Store::open(&db.url).await?)),
        None => println!("PostgreSQL: no server, its rows are left out"),
    }
    for (_, store) in &stores {
        let synced = sync_demarche(
            &client,
            store,
            &demarche,
            &SystemClock,
            Duration::from_secs(86_400),
        )
        .await?;
        anyhow::ensure!(synced.new.len() == count, "every dossier stored");
    }
    let store = &stores[0].1;
    let mapping = demarche.resolve(&client.demarche_descriptors(DEMARCHE).await?)?;
    let reference = ReferenceData::load(&settings.reference)?;
    let now = Utc::now();
    let today = precheck::paris_today(now);

    println!(
        "essbot rules bench: {count} stored lettres d'intention, one core (current-thread runtime)"
    );
    println!();
    println!("{:<48} {:>10} {:>14}", "phase", "wall", "dossiers/s");

    let stored = store.dossiers_of(DEMARCHE).await?;
    let started = Instant::now();
    let dossiers = stored
        .iter()
        .filter_map(|s| s.raw.as_deref())
        .map(decode_dossier_text)
        .collect::<Result<Vec<_>, _>>()?;
    row(
        "decode stored JSON into dossiers",
        started.elapsed(),
        dossiers.len(),
    );

    let started = Instant::now();
    let projects = KnownProjects::new(dossiers.iter().map(|d| {
        let li = rules::extract_lettre(d, &mapping);
        KnownProject::from_lettre(&li, d.state, &reference)
    }));
    row(
        "known projects (extract + index)",
        started.elapsed(),
        dossiers.len(),
    );

    let ctx = RuleContext {
        reference: &reference,
        config: &settings.rules,
        today,
        projets: &projects,
    };
    let started = Instant::now();
    let reports = rules::check_batch(&dossiers, &mapping, &ctx);
    let batch = started.elapsed();
    row("rules::check_batch (target < 1 s)", batch, reports.len());
    let conformes = reports
        .iter()
        .filter(|r| r.verdict == Verdict::Conforme)
        .count();
    let findings: usize = reports.iter().map(|r| r.findings.len()).sum();

    let started = Instant::now();
    let texts: usize = reports.iter().map(|r| r.text().len()).sum();
    row(
        "render every report's French text",
        started.elapsed(),
        reports.len(),
    );

    let mappings = BTreeMap::from([(DEMARCHE, mapping.clone())]);
    let mut rates = Vec::new();
    for (backend, store) in &stores {
        let started = Instant::now();
        let first = precheck::run(store, &settings, &reference, &mappings, today, now).await?;
        let wall = started.elapsed();
        row(
            &format!("{backend}: precheck::run, fresh store"),
            wall,
            first.checked.len(),
        );
        rates.push((*backend, first.checked.len() as f64 / wall.as_secs_f64()));
        let started = Instant::now();
        let again = precheck::run(store, &settings, &reference, &mappings, today, now).await?;
        row(
            &format!("{backend}: precheck::run, nothing changed"),
            started.elapsed(),
            again.unchanged,
        );
    }

    println!();
    println!(
        "{conformes} conformes, {findings} findings, {} kB of report text; check_batch {}",
        texts / 1024,
        if batch < Duration::from_secs(1) {
            "within target"
        } else {
            "OVER TARGET"
        }
    );
    for (backend, rate) in rates {
        println!(
            "{backend}: first pre-check saves {rate:.0} dossiers/s (target ≥ 2 000: {})",
            if rate >= 2000.0 { "met" } else { "NOT MET" }
        );
    }
    for (_, store) in &stores {
        store.close().await;
    }
    drop(postgres);
    sandbox.shutdown().await;
    Ok(())
}

fn row(phase: &str, wall: Duration, dossiers: usize) {
    let rate = dossiers as f64 / wall.as_secs_f64().max(1e-9);
    println!("{phase:<48} {:>8.3} s {rate:>14.0}", wall.as_secs_f64());
}
