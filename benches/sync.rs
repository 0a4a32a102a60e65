//! Full sync of 10 000 realistic dossiers (about 30 champs each) from the sandbox on loopback,
//! side by side with a baseline that fetches the same pages with the same HTTP client
//! (reqwest) and throws them away, and with essbot's client decoding them without storing:
//! what essbot adds on top of the transfer itself (decoding, then hashing and store writes,
//! one transaction per page), into SQLite and into PostgreSQL. Targets: the full sync at most
//! 1.15 × the baseline into SQLite, 1.3 × into PostgreSQL; peak RSS under 64 MB.
//!
//! Run with `cargo bench --bench sync` (`-- 2000` for another number of dossiers, `-- 10000 3`
//! to repeat each phase three times). Prints wall time, requests (as counted by the sandbox)
//! and peak RSS per phase.
//!
//! Every figure is a process's own: the bench re-executes itself, once as the sandbox (which
//! holds the data set and renders the pages), then once per phase, so that each phase's peak
//! RSS (`VmHWM`) is that of a process that did nothing else. The phases run one after the
//! other against the same sandbox; the two essbot syncs of a backend share its database: a
//! SQLite file in a temporary folder, a fresh PostgreSQL database per round (found as the tests
//! find a server: `ESSBOT_TEST_POSTGRES_URL`, else a throw-away cluster, see `tests/it/pg.rs`;
//! without one, its rows are left out).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
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

#[path = "../tests/it/pg.rs"]
#[allow(dead_code)]
mod pg;

const DEMARCHE: i64 = 1001;
/// First argument of the child processes.
const SANDBOX_ROLE: &str = "__sandbox";
const PHASE_ROLE: &str = "__phase";
/// Prefix of the one line a phase prints for its parent.
const RESULT: &str = "RESULT";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Runtime::new()?;
    match args.first().map(String::as_str) {
        Some(SANDBOX_ROLE) => runtime.block_on(sandbox(number_arg(&args[1..], 10_000))),
        Some(PHASE_ROLE) => match &args[1..] {
            [phase, url, db] => runtime.block_on(phase_child(phase, url, db)),
            _ => bail!("usage: {PHASE_ROLE} PHASE URL DB"),
        },
        // `cargo bench` passes `--bench`: numbers are the only arguments read here.
        _ => {
            let mut numbers = args.iter().filter_map(|a| a.parse::<usize>().ok());
            let count = numbers.next().unwrap_or(10_000);
            let rounds = numbers.next().unwrap_or(1).max(1);
            orchestrate(&runtime, count, rounds)
        }
    }
}

fn number_arg(args: &[String], default: usize) -> usize {
    args.first().and_then(|a| a.parse().ok()).unwrap_or(default)
}

/// Starts the sandbox process, then runs each phase in its own process and prints the table.
fn orchestrate(
    runtime: &tokio::runtime::Runtime,
    count: usize,
    rounds: usize,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let mut sandbox = SandboxProcess::spawn(&exe, count)?;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.db");
    println!(
        "essbot sync bench: {count} dossiers on démarche {DEMARCHE}, sandbox (pid {}) on {}",
        sandbox.child.id(),
        sandbox.url
    );
    println!("each phase runs in its own process; peak RSS is that process's VmHWM");
    println!();
    println!(
        "{:<40} {:>10} {:>9} {:>12} {:>14}",
        "phase", "wall", "requests", "dossiers/s", "peak RSS (kB)"
    );
    let mut ratios: Vec<(&str, f64)> = Vec::new();
    let mut peaks: Vec<(&str, u64)> = Vec::new();
    let mut no_postgres = false;
    for _ in 0..rounds {
        let mut baseline = None;
        std::fs::remove_file(&db).ok();
        std::fs::remove_file(db.with_extension("db-wal")).ok();
        std::fs::remove_file(db.with_extension("db-shm")).ok();
        // A fresh PostgreSQL database per round, dropped with it.
        let postgres = runtime.block_on(pg::PgDatabase::create());
        no_postgres |= postgres.is_none();
        let sqlite_url = format!("sqlite://{}", db.display());
        let mut phases = vec![
            (
                "baseline",
                "baseline: fetch and drop",
                "SQLite",
                sqlite_url.clone(),
            ),
            (
                "client",
                "client: fetch and decode",
                "SQLite",
                sqlite_url.clone(),
            ),
            (
                "full",
                "essbot: full sync into SQLite",
                "SQLite",
                sqlite_url.clone(),
            ),
            (
                "quiet",
                "essbot: next cycle, nothing changed",
                "SQLite",
                sqlite_url,
            ),
        ];
        if let Some(pg) = &postgres {
            phases.push((
                "full",
                "essbot: full sync into PostgreSQL",
                "PostgreSQL",
                pg.url.clone(),
            ));
            phases.push((
                "quiet",
                "essbot: next cycle, nothing changed",
                "PostgreSQL",
                pg.url.clone(),
            ));
        }
        for (phase, label, backend, db_url) in phases {
            sandbox.requests()?; // clears the count
            let out = run_phase(&exe, phase, &sandbox.url, &db_url)?;
            let requests = sandbox.requests()?;
            if phase == "full" && out.dossiers != count as u64 {
                bail!("full sync stored {} dossiers, not {count}", out.dossiers);
            }
            if phase == "quiet" && requests != 1 {
                bail!("a cycle with nothing changed made {requests} requests, not 1");
            }
            match phase {
                "baseline" => baseline = Some(out.wall),
                "full" => ratios
                    .extend(baseline.map(|b| (backend, out.wall.as_secs_f64() / b.as_secs_f64()))),
                _ => {}
            }
            if matches!(phase, "full" | "quiet") {
                peaks.push((backend, out.peak_kb));
            }
            let rate = out.dossiers as f64 / out.wall.as_secs_f64().max(1e-9);
            println!(
                "{label:<40} {:>8.3} s {requests:>9} {rate:>12.0} {:>14}",
                out.wall.as_secs_f64(),
                out.peak_kb
            );
        }
        drop(postgres);
    }
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    println!();
    for (backend, target) in [("SQLite", 1.15), ("PostgreSQL", 1.3)] {
        let of: Vec<f64> = ratios
            .iter()
            .filter(|(b, _)| *b == backend)
            .map(|(_, r)| *r)
            .collect();
        if of.is_empty() {
            println!("full sync into {backend}: not run (no server)");
            continue;
        }
        let shown: Vec<String> = of.iter().map(|r| format!("{r:.2}")).collect();
        let worst = of.iter().copied().fold(0.0, f64::max);
        let peak = peaks
            .iter()
            .filter(|(b, _)| *b == backend)
            .map(|(_, p)| *p)
            .max()
            .unwrap_or(0);
        println!(
            "full sync into {backend} / baseline: {} × (target ≤ {target} ×: {}); peak RSS {} MB \
             (target < 64 MB: {})",
            shown.join(", "),
            if worst <= target { "met" } else { "NOT MET" },
            peak / 1024,
            if peak < 64 * 1024 { "met" } else { "NOT MET" }
        );
    }
    if no_postgres {
        println!("PostgreSQL: no server (set ESSBOT_TEST_POSTGRES_URL or install PostgreSQL)");
    }
    println!(
        "SQLite database: {} kB (plus WAL); sandbox peak RSS {} kB; finished {}",
        size / 1024,
        sandbox.peak_kb().unwrap_or(0),
        Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
    );
    sandbox.stop()
}

/// What a phase process reports.
struct PhaseOutcome {
    wall: Duration,
    dossiers: u64,
    peak_kb: u64,
}

fn run_phase(exe: &Path, phase: &str, url: &str, db: &str) -> anyhow::Result<PhaseOutcome> {
    let output = Command::new(exe)
        .args([PHASE_ROLE, phase, url, db])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running phase {phase}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("phase {phase} failed ({}): {stdout}", output.status);
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(RESULT))
        .with_context(|| format!("phase {phase} printed no result: {stdout}"))?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [wall, dossiers, peak_kb] = fields[..] else {
        bail!("phase {phase}: unreadable result {line:?}");
    };
    Ok(PhaseOutcome {
        wall: Duration::from_secs_f64(wall.parse()?),
        dossiers: dossiers.parse()?,
        peak_kb: peak_kb.parse()?,
    })
}

/// The sandbox child: serves the synthetic data set without a rate limit, prints its URL, then
/// answers each `requests` line on stdin with the number of requests received since the last
/// one (and `peak` with its VmHWM); stops at the end of stdin.
async fn sandbox(count: usize) -> anyhow::Result<()> {
    let dataset = Dataset::synthetic(&[DEMARCHE as i32], count, 2026);
    let options = SandboxOptions {
        rate_limit_per_minute: None,
        ..SandboxOptions::default()
    };
    let sandbox = Sandbox::start(dataset, options, "127.0.0.1:0".parse()?).await?;
    println!("{}", sandbox.url());
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(tokio::io::stdin()));
    while let Some(line) = lines.next_line().await? {
        match line.trim() {
            "requests" => {
                println!("{}", sandbox.requests().len());
                sandbox.clear_logs();
            }
            "peak" => println!("{}", status_kb("VmHWM").unwrap_or(0)),
            _ => println!("?"),
        }
    }
    sandbox.shutdown().await;
    Ok(())
}

struct SandboxProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    url: String,
}

impl SandboxProcess {
    fn spawn(exe: &Path, count: usize) -> anyhow::Result<Self> {
        let mut child = Command::new(exe)
            .args([SANDBOX_ROLE, &count.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the sandbox process")?;
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().context("sandbox stdout")?);
        let mut url = String::new();
        stdout.read_line(&mut url)?;
        let url = url.trim().to_owned();
        if !url.starts_with("http://") {
            bail!("the sandbox printed {url:?} instead of its URL");
        }
        Ok(Self {
            child,
            stdin,
            stdout,
            url,
        })
    }

    fn ask(&mut self, what: &str) -> anyhow::Result<u64> {
        let stdin = self.stdin.as_mut().context("sandbox stdin closed")?;
        writeln!(stdin, "{what}")?;
        stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        line.trim()
            .parse()
            .with_context(|| format!("sandbox answered {line:?} to {what}"))
    }

    /// Requests the sandbox received since the last call.
    fn requests(&mut self) -> anyhow::Result<u64> {
        self.ask("requests")
    }

    fn peak_kb(&mut self) -> anyhow::Result<u64> {
        self.ask("peak")
    }

    fn stop(mut self) -> anyhow::Result<()> {
        drop(self.stdin.take());
        self.child.wait()?;
        Ok(())
    }
}

/// One phase, in a process of its own, on the database at `db` (a URL); prints
/// `RESULT <wall s> <dossiers> <VmHWM kB>`.
async fn phase_child(phase: &str, url: &str, db: &str) -> anyhow::Result<()> {
    let env = Env {
        vars: BTreeMap::from([
            (config::TOKEN_ENV.to_owned(), DEMO_TOKEN.to_owned()),
            ("ESSBOT__DS__ENDPOINT".to_owned(), url.to_owned()),
            ("ESSBOT__DATABASE__URL".to_owned(), db.to_owned()),
        ]),
    };
    let mut settings = config::load(&Source::Text(config::DEMO_CONFIG.into()), &env)?;
    // The baseline has no budget: neither has essbot here.
    settings.ds.max_requests_per_second = 1_000_000.0;
    let page_size = settings.ds.page_size;
    let (wall, dossiers) = match phase {
        "baseline" => {
            // The same pages, the same HTTP client, nothing kept.
            let http = reqwest::Client::builder().gzip(true).build()?;
            let started = Instant::now();
            let mut after: Option<String> = None;
            let mut fetched = 0u64;
            loop {
                let body = GetDemarcheDossiers::build_query(get_demarche_dossiers::Variables {
                    demarche: DEMARCHE,
                    first: i64::from(page_size),
                    after: after.clone(),
                    updated_since: None,
                });
                let reply: Value = http
                    .post(url)
                    .bearer_auth(DEMO_TOKEN)
                    .json(&body)
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                let connection = &reply["data"]["demarche"]["dossiers"];
                fetched += connection["nodes"].as_array().map_or(0, Vec::len) as u64;
                if connection["pageInfo"]["hasNextPage"] != Value::Bool(true) {
                    break;
                }
                after = connection["pageInfo"]["endCursor"]
                    .as_str()
                    .map(str::to_owned);
            }
            (started.elapsed(), fetched)
        }
        "client" => {
            // essbot's client alone: the same pages fetched and decoded, nothing stored.
            let client = DsClient::new(&settings.ds)?;
            let started = Instant::now();
            let mut after: Option<String> = None;
            let mut decoded = 0u64;
            loop {
                let page = client
                    .dossiers_page(DEMARCHE, None, after.as_deref())
                    .await?;
                decoded += page.dossiers.iter().filter(|d| d.parsed.is_ok()).count() as u64;
                if !page.has_next_page {
                    break;
                }
                after = page.end_cursor;
            }
            (started.elapsed(), decoded)
        }
        "full" | "quiet" => {
            let demarche = settings
                .demarches
                .iter()
                .find(|d| d.number == DEMARCHE)
                .cloned()
                .context("démarche missing from the demo config")?;
            let client = DsClient::new(&settings.ds)?;
            let store = Store::connect(&settings.database).await?;
            let full_every = Duration::from_secs(86_400);
            let started = Instant::now();
            let report =
                sync_demarche(&client, &store, &demarche, &SystemClock, full_every).await?;
            let wall = started.elapsed();
            store.close().await;
            let counted = if phase == "full" {
                report.new.len() as u64
            } else {
                report.fetched
            };
            (wall, counted)
        }
        other => bail!("unknown phase {other}"),
    };
    println!(
        "{RESULT} {} {dossiers} {}",
        wall.as_secs_f64(),
        status_kb("VmHWM").unwrap_or(0)
    );
    Ok(())
}

/// A `kB` field of `/proc/self/status` (Linux); `None` elsewhere.
fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
