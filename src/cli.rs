//! The command line (interface.md, "The binary"): clap definitions and dispatch.
//!
//! Each subcommand returns an [`Outcome`]; `main` maps it to the exit code: 0 ok, 1 runtime
//! failure, 2 usage or configuration error.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, ConfigError, Env, Settings, Source};
use crate::telemetry::LogFormat;

/// essbot: pre-checks ESS dossiers on Démarches Simplifiées and tracks their financing.
#[derive(Debug, Parser)]
#[command(name = "essbot", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted before or after the subcommand.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Configuration file (default: config/essbot.toml, then /etc/essbot/essbot.toml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs one whole cycle on the built-in DS sandbox with a temporary database and prints the
    /// verdicts: no token, no network, no setup.
    Demo,
    /// Configuration commands.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Runs the built-in DS sandbox alone, for manual tests and other tools.
    Sandbox(SandboxArgs),
    /// The daemon: a cycle (sync, pre-check, write-back, milestones, alerts) on every fire of
    /// the schedule; `--once` runs one cycle and exits (1 if it failed).
    Run {
        /// Run one cycle and exit.
        #[arg(long)]
        once: bool,
    },
    /// Last cycle, its outcome, lag and last error per démarche; exits 1 when unhealthy.
    Status,
    /// Fetches one dossier and prints its pre-check report; writes nothing anywhere.
    Check {
        /// The dossier number.
        number: i64,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Démarche commands.
    #[command(subcommand)]
    Demarche(DemarcheCommand),
    /// The financing schedule of every project; `record` adds an event that lives outside DS.
    Milestones(crate::commands::milestones::MilestonesArgs),
    /// Payments proposed, due and recorded, with how each amount was computed.
    Payments(crate::commands::milestones::PaymentsArgs),
    /// Database commands.
    #[command(subcommand)]
    Db(DbCommand),
}

/// `essbot demarche ...`
#[derive(Debug, Subcommand)]
pub enum DemarcheCommand {
    /// Prints the démarche's champs and annotations (label, type, stable id) and a mapping
    /// skeleton in TOML.
    Describe {
        /// The démarche number.
        number: i64,
    },
}

/// `essbot db ...`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Applies the migrations not applied yet (also done at the start of `run`).
    Migrate,
    /// Writes a consistent copy of the database to PATH while essbot may be running
    /// (SQLite's `VACUUM INTO`; for PostgreSQL, `pg_dump --format=custom` when installed).
    Backup {
        /// Where to write the copy; must not exist yet.
        path: PathBuf,
    },
    /// Copies the configured SQLite database into an empty PostgreSQL database (every table,
    /// history and audit included), checks the row counts and says what to change in the
    /// configuration. Stop essbot first.
    Copy {
        /// The PostgreSQL database to fill, e.g. postgres://essbot@db.example/essbot (the
        /// password may come from PGPASSWORD or ~/.pgpass instead of the URL).
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

/// `essbot sandbox [--listen ADDR] [--data FILE] [--token TOKEN]`
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address to listen on (a loopback address; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Data set file (default: the built-in demo data set).
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Token the sandbox accepts, besides the data set's own (default: the demo token).
    #[arg(long, default_value = ds_sandbox::DEMO_TOKEN)]
    pub token: String,
}

/// `essbot config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Loads and validates the configuration; prints every problem, not just the first.
    Check {
        /// Also check, against DS, that every configured champ and annotation exists with a
        /// usable type.
        #[arg(long)]
        remote: bool,
    },
}

/// How a command ended, mapped to the process exit code by `main`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Ok,
    /// Exit 1: the command ran and something failed (a cycle, an unhealthy status).
    Failed,
}

/// A command's error: configuration problems exit 2, the rest 1.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

impl From<crate::service::StartError> for CliError {
    fn from(e: crate::service::StartError) -> Self {
        match e {
            crate::service::StartError::Config(c) => Self::Config(c),
            crate::service::StartError::Runtime(r) => Self::Runtime(r),
        }
    }
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::Usage(_) => 2,
            Self::Runtime(_) => 1,
        }
    }
}

/// Loads the configuration named by the global options, with the process environment.
///
/// # Errors
/// Every configuration problem, at once.
pub fn load_settings(global: &GlobalArgs) -> Result<Settings, ConfigError> {
    let path = config::locate(global.config.as_deref())?;
    config::load(&Source::File(path), &Env::from_process())
}

/// Runs the parsed command line.
///
/// # Errors
/// A configuration error (exit 2) or a runtime failure (exit 1).
pub async fn run(cli: Cli) -> Result<Outcome, CliError> {
    match cli.command {
        Command::Config(ConfigCommand::Check { remote }) => {
            let path = config::locate(cli.global.config.as_deref())?;
            let settings = config::load(&Source::File(path.clone()), &Env::from_process())?;
            if remote {
                let problems = crate::commands::describe::check_remote(&settings).await;
                if !problems.is_empty() {
                    return Err(ConfigError { problems }.into());
                }
                println!(
                    "{}: configuration valid; every mapped champ and annotation exists on DS",
                    path.display()
                );
            } else {
                println!("{}: configuration valid", path.display());
            }
            print_unmapped(&settings);
            Ok(Outcome::Ok)
        }
        Command::Check { number, json } => {
            let settings = load_settings(&cli.global)?;
            let text = crate::commands::check::check(&settings, number, json)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print!("{text}");
            Ok(Outcome::Ok)
        }
        Command::Demarche(DemarcheCommand::Describe { number }) => {
            let settings = load_settings(&cli.global)?;
            let text = crate::commands::describe::describe(&settings, number)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print!("{text}");
            Ok(Outcome::Ok)
        }
        Command::Milestones(args) => {
            let settings = load_settings(&cli.global)?;
            let text =
                crate::commands::milestones::run(&settings, &args, &crate::clock::SystemClock)
                    .await
                    .map_err(milestones_error)?;
            print!("{text}");
            Ok(Outcome::Ok)
        }
        Command::Payments(args) => {
            let settings = load_settings(&cli.global)?;
            let text = crate::commands::milestones::payments(
                &settings,
                args.format,
                &crate::clock::SystemClock,
            )
            .await
            .map_err(milestones_error)?;
            print!("{text}");
            Ok(Outcome::Ok)
        }
        Command::Sandbox(args) => sandbox(args).await,
        Command::Demo => {
            print!("{}", crate::demo::run().await?);
            Ok(Outcome::Ok)
        }
        Command::Run { once: false } => {
            let settings = load_settings(&cli.global)?;
            crate::service::run_daemon(settings).await?;
            Ok(Outcome::Ok)
        }
        Command::Run { once: true } => {
            let settings = load_settings(&cli.global)?;
            run_once(settings).await
        }
        Command::Status => {
            use anyhow::Context as _;
            let settings = load_settings(&cli.global)?;
            let store = crate::store::Store::connect(&settings.database)
                .await
                .context("opening the database")?;
            let status = crate::status::status(&settings, &store, chrono::Utc::now())
                .await
                .context("reading the status")?;
            print!("{}", status.text);
            Ok(if status.healthy {
                Outcome::Ok
            } else {
                Outcome::Failed
            })
        }
        Command::Db(DbCommand::Migrate) => {
            use anyhow::Context as _;
            let settings = load_settings(&cli.global)?;
            let store = crate::store::Store::connect(&settings.database)
                .await
                .context("opening the database")?;
            store.migrate().await.context("applying migrations")?;
            println!("database up to date");
            Ok(Outcome::Ok)
        }
        Command::Db(DbCommand::Backup { path }) => {
            use anyhow::Context as _;
            let settings = load_settings(&cli.global)?;
            if path.exists() {
                return Err(CliError::Usage(format!(
                    "{} already exists: give a new file name",
                    path.display()
                )));
            }
            let store = crate::store::Store::connect(&settings.database)
                .await
                .context("opening the database")?;
            let written = store.backup_to(&path).await;
            store.close().await;
            match written.with_context(|| format!("writing the backup to {}", path.display()))? {
                crate::store::Backup::SqliteFile => {
                    println!("backup written to {}", path.display());
                }
                crate::store::Backup::PgDump => println!(
                    "backup written to {} by pg_dump (custom format): restore it into an empty \
                     database with pg_restore --dbname=URL {}",
                    path.display(),
                    path.display()
                ),
            }
            Ok(Outcome::Ok)
        }
        Command::Db(DbCommand::Copy { to }) => {
            let settings = load_settings(&cli.global)?;
            db_copy(&settings, &to).await
        }
    }
}

/// `essbot db copy --to URL`.
async fn db_copy(settings: &Settings, to: &str) -> Result<Outcome, CliError> {
    use crate::store::{Backend, DatabaseUrl, Store};
    use anyhow::Context as _;
    let source = DatabaseUrl::parse(&settings.database.url).context("database.url")?;
    let target = DatabaseUrl::parse(to).map_err(|e| CliError::Usage(format!("--to: {e}")))?;
    if source.backend() != Backend::Sqlite || source.sqlite_path().is_none() {
        return Err(CliError::Usage(format!(
            "database.url is {}: db copy reads a SQLite database file",
            source.redacted()
        )));
    }
    if target.backend() != Backend::Postgres {
        return Err(CliError::Usage(
            "--to must be a PostgreSQL URL (postgres://user@host/database)".into(),
        ));
    }
    // No daemon may write to the file meanwhile: the copy would miss what it writes.
    let _lock = crate::lock::InstanceLock::for_database(&settings.database.url)
        .context("stop essbot before copying its database")?;
    let from = Store::connect(&settings.database)
        .await
        .context("opening the SQLite database")?;
    let into = Store::open(to)
        .await
        .with_context(|| format!("opening {}", target.redacted()))?;
    let copied = from.copy_into(&into).await;
    from.close().await;
    into.close().await;
    let report = copied.context("copying")?;
    println!("copied {} into {}:", source.redacted(), target.redacted());
    println!("  {:<24} {:>10} {:>10}", "table", "SQLite", "PostgreSQL");
    for t in &report.tables {
        println!("  {:<24} {:>10} {:>10}", t.table, t.source, t.destination);
    }
    println!("row counts match.");
    println!();
    println!("Next:");
    println!("  1. in the configuration, set the database to the PostgreSQL one:");
    println!("       [database]");
    println!("       url = \"{}\"", target.redacted());
    println!(
        "     (or ESSBOT__DATABASE__URL; the password in the URL, percent-encoded, or in \
         PGPASSWORD / a pgpass file)"
    );
    println!(
        "  2. keep {} as a backup; essbot no longer writes to it",
        source
            .sqlite_path()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    println!(
        "  3. start essbot (essbot run): any number of instances may share the database, one \
         is active and the others stand by"
    );
    Ok(Outcome::Ok)
}

fn milestones_error(e: crate::commands::milestones::MilestonesError) -> CliError {
    if e.is_usage() {
        CliError::Usage(e.to_string())
    } else {
        CliError::Runtime(anyhow::anyhow!("{e}"))
    }
}

/// `essbot run --once`: one cycle, its summary on stdout, exit 1 unless it fully succeeded.
async fn run_once(settings: Settings) -> Result<Outcome, CliError> {
    use anyhow::Context as _;
    let clock: std::sync::Arc<dyn crate::clock::Clock> =
        std::sync::Arc::new(crate::clock::SystemClock);
    let (services, _lock) = crate::service::start(settings, clock).await?;
    let leadership = crate::service::lead_once(&services).await?;
    let cancel = tokio_util::sync::CancellationToken::new();
    crate::daemon::cancel_on_signals(cancel.clone()).context("watching signals")?;
    let report = crate::cycle::run_once(&services, &cancel)
        .await
        .context("running the cycle")?;
    println!(
        "cycle {} : {} — {} dossier(s) reçu(s), {} vérifié(s), {} inchangé(s), {} requête(s) DS",
        report.cycle,
        report.outcome,
        report.synced,
        report.checked,
        report.unchanged,
        report.requests
    );
    for (demarche, errors) in &report.errors {
        for e in errors {
            println!("  démarche {demarche} : {e}");
        }
    }
    leadership.release(services.clock.now()).await;
    services.store.close().await;
    Ok(if report.outcome == "ok" {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}

async fn sandbox(args: SandboxArgs) -> Result<Outcome, CliError> {
    use anyhow::Context as _;
    let dataset = match &args.data {
        Some(path) => ds_sandbox::Dataset::load(path)
            .with_context(|| format!("loading the data set {}", path.display()))?,
        None => ds_sandbox::Dataset::demo(),
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    println!("DS sandbox listening on http://{addr}/api/v2/graphql");
    println!("accepted token: {}", args.token);
    let options = ds_sandbox::SandboxOptions {
        extra_tokens: vec![args.token],
        ..Default::default()
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    crate::daemon::cancel_on_signals(cancel.clone()).context("watching signals")?;
    ds_sandbox::serve(listener, dataset, options, async move {
        cancel.cancelled().await
    })
    .await
    .context("serving the sandbox")?;
    Ok(Outcome::Ok)
}

/// Lists, per démarche, the domain fields no champ is mapped onto: the rules that need them
/// will say "not checked" in their reports, and the operator should know that up front.
fn print_unmapped(settings: &Settings) {
    for d in &settings.demarches {
        let missing: Vec<&str> = d
            .kind
            .fields()
            .iter()
            .copied()
            .filter(|f| !d.fields.contains_key(*f))
            .collect();
        if !missing.is_empty() {
            println!(
                "démarche {} ({}): not checked (no champ mapped): {}",
                d.number,
                d.kind.as_str(),
                missing.join(", ")
            );
        }
    }
    if settings.ds.token.is_none() {
        println!(
            "no DS token configured (ESSBOT_DS_TOKEN, ds.token_file or $CREDENTIALS_DIRECTORY/ds-token): commands that call DS will refuse to start"
        );
    }
}
