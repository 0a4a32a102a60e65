//! Full sync of 10 000 realistic dossiers (about 30 champs each) from the sandbox on loopback,
//! side by side with a baseline that fetches the same pages with the same HTTP client
//! (reqwest) and throws them away, and with essbot's client decoding them without storing:
//! what essbot adds on top of the transfer itself (decoding, then hashing and SQLite writes,
//! one transaction per page).
//!
//! Run with `cargo bench --bench sync` (`-- 2000` for another number of dossiers). Prints wall
//! time, requests and peak RSS (`VmHWM`, reset between phases through `/proc/self/clear_refs`)
//! per phase. The sandbox runs in the same process, so its own memory (the data set and the
//! page being served) is part of every figure.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use ds_sandbox::{DEMO_TOKEN, Dataset, Sandbox, SandboxOptions};
use essbot::clock::SystemClock;
use essbot::config::{self, Env, Source};
use essbot::ds::DsClient;
use essbot::ds::ops::{GetDemarcheDossiers, get_demarche_dossiers};
use essbot::store::Store;
use essbot::sync::sync_demarche;
use graphql_client::GraphQLQuery;
use serde_json::Value;

const DEMARCHE: i64 = 1001;

#[tokio::main]
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
    let demarche = settings
        .demarches
        .iter()
        .find(|d| d.number == DEMARCHE)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("démarche {DEMARCHE} missing from the demo config"))?;
    let page_size = settings.ds.page_size;
    println!(
        "essbot sync bench: {count} dossiers on démarche {DEMARCHE}, {page_size} a page, sandbox on {}",
        sandbox.addr()
    );
    println!("resident before: {} kB", status_kb("VmRSS").unwrap_or(0));
    println!();
    println!(
        "{:<34} {:>10} {:>9} {:>12} {:>14}",
        "phase", "wall", "requests", "dossiers/s", "peak RSS (kB)"
    );

    // Baseline: the same pages, the same HTTP client, nothing kept.
    reset_peak();
    sandbox.clear_logs();
    let http = reqwest::Client::builder().gzip(true).build()?;
    let started = Instant::now();
    let mut after: Option<String> = None;
    let mut fetched = 0usize;
    loop {
        let body = GetDemarcheDossiers::build_query(get_demarche_dossiers::Variables {
            demarche: DEMARCHE,
            first: i64::from(page_size),
            after: after.clone(),
            updated_since: None,
        });
        let reply: Value = http
            .post(sandbox.url())
            .bearer_auth(DEMO_TOKEN)
            .json(&body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let connection = &reply["data"]["demarche"]["dossiers"];
        fetched += connection["nodes"].as_array().map_or(0, Vec::len);
        if connection["pageInfo"]["hasNextPage"] != Value::Bool(true) {
            break;
        }
        after = connection["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_owned);
    }
    row(
        "baseline: fetch and drop",
        started.elapsed(),
        sandbox.requests().len(),
        fetched,
    );

    // essbot's client alone: the same pages fetched and decoded into dossiers, nothing stored.
    let client = DsClient::new(&settings.ds)?;
    reset_peak();
    sandbox.clear_logs();
    let started = Instant::now();
    let mut after: Option<String> = None;
    let mut decoded = 0usize;
    loop {
        let page = client
            .dossiers_page(DEMARCHE, None, after.as_deref())
            .await?;
        decoded += page.dossiers.iter().filter(|d| d.parsed.is_ok()).count();
        if !page.has_next_page {
            break;
        }
        after = page.end_cursor;
    }
    row(
        "client: fetch and decode",
        started.elapsed(),
        sandbox.requests().len(),
        decoded,
    );

    // essbot: a first (full) sync into a fresh SQLite file.
    let store = Store::connect(&settings.database).await?;
    let full_every = Duration::from_secs(86_400);
    reset_peak();
    sandbox.clear_logs();
    let started = Instant::now();
    let report = sync_demarche(&client, &store, &demarche, &SystemClock, full_every).await?;
    row(
        "essbot: full sync into SQLite",
        started.elapsed(),
        sandbox.requests().len(),
        report.fetched as usize,
    );
    assert_eq!(report.new.len(), count, "every dossier stored");

    // essbot: the next cycle, nothing changed.
    reset_peak();
    sandbox.clear_logs();
    let started = Instant::now();
    let report = sync_demarche(&client, &store, &demarche, &SystemClock, full_every).await?;
    row(
        "essbot: next cycle, nothing changed",
        started.elapsed(),
        sandbox.requests().len(),
        report.fetched as usize,
    );
    let size = std::fs::metadata(dir.path().join("bench.db"))?.len();
    println!();
    println!(
        "database: {} kB (plus WAL); finished {}",
        size / 1024,
        Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
    );
    store.close().await;
    sandbox.shutdown().await;
    Ok(())
}

fn row(phase: &str, wall: Duration, requests: usize, dossiers: usize) {
    let rate = dossiers as f64 / wall.as_secs_f64().max(1e-9);
    println!(
        "{phase:<34} {:>8.3} s {requests:>9} {rate:>12.0} {:>14}",
        wall.as_secs_f64(),
        status_kb("VmHWM").unwrap_or(0)
    );
}

/// A `kB` field of `/proc/self/status` (Linux); `None` elsewhere.
fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resets the peak RSS to the current RSS (Linux `clear_refs` value 5), so each phase reports
/// its own peak; a no-op where unsupported.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
