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
#[command(name = "essbot", version = crate::build::LONG_VERSION, about, propagate_version = true)]
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
    /// Last cycle, its outcome, last sync and last error per démarche, writes and alerts
    /// waiting; exits 1 when unhealthy.
    Status {
        /// Print the status as JSON (for scripts and monitoring).
        #[arg(long)]
        json: bool,
    },
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
    /// Prints the shell completion script for SHELL (the .deb installs them for bash, zsh and
    /// fish).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Prints the manual page essbot(1), or with --dir writes it and one page per subcommand
    /// (essbot-run(1), ...) into DIR.
    Manpage {
        /// Where to write every page.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// The command line as clap sees it, with the plain version (no commit): what the completion
/// scripts and manual pages are generated from, so that they do not change with every commit.
pub fn command() -> clap::Command {
    use clap::CommandFactory as _;
    Cli::command().version(crate::build::VERSION)
}

/// Writes essbot(1) and a page per subcommand into `dir`.
///
/// # Errors
/// When a file cannot be written.
pub fn write_manpages(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(command(), dir)
}

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command(), "essbot", &mut out);
    String::from_utf8_lossy(&out).into_owned()
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
    /// A command's own error, with the exit code it calls for.
    #[error("{message}")]
    Command { code: u8, message: String },
}

impl CliError {
    /// A command error of `check` (French: staff run it) or of `describe` (English: operators
    /// run it), with its exit code: 2 for a configuration problem, the token's included.
    fn from_command(e: crate::commands::check::CommandError, english: bool) -> Self {
        let message = match (&e, english) {
            (crate::commands::check::CommandError::Api(api), true) => api.operator_text(),
            _ => e.to_string(),
        };
        Self::Command {
            code: e.exit_code(),
            message,
        }
    }
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
            Self::Command { code, .. } => *code,
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
                settings.require_token()?;
                let remote = crate::commands::describe::remote_check(&settings).await;
                emit(&remote.readings);
                if !remote.problems.is_empty() {
                    return Err(ConfigError {
                        problems: remote.problems,
                    }
                    .into());
                }
                if !remote.unreachable.is_empty() {
                    let lines: Vec<String> =
                        remote.unreachable.iter().map(ToString::to_string).collect();
                    return Err(CliError::Runtime(anyhow::anyhow!(
                        "could not check everything against DS:\n  - {}",
                        lines.join("\n  - ")
                    )));
                }
                println!(
                    "{}: configuration valid; every mapped champ and annotation exists on DS",
                    path.display()
                );
            } else {
                println!(
                    "{}: configuration valid (`essbot config check --remote` checks the mapping against DS)",
                    path.display()
                );
            }
            print_unmapped(&settings);
            Ok(Outcome::Ok)
        }
        Command::Check { number, json } => {
            let settings = load_settings(&cli.global)?;
            settings.require_token()?;
            let text = crate::commands::check::check(&settings, number, json)
                .await
                .map_err(|e| CliError::from_command(e, false))?;
            emit(&text);
            Ok(Outcome::Ok)
        }
        Command::Demarche(DemarcheCommand::Describe { number }) => {
            // Describing a démarche is how its section gets written: only [ds] must be right.
            let path = config::locate(cli.global.config.as_deref())?;
            let source = Source::File(path);
            let env = Env::from_process();
            let (ds, kind) = match config::load(&source, &env) {
                Ok(settings) => {
                    let kind = settings
                        .demarches
                        .iter()
                        .find(|d| d.number == number)
                        .map(|d| d.kind);
                    (settings.ds, kind)
                }
                Err(full) => {
                    let ds = config::load_ds(&source, &env).map_err(|_| full)?;
                    tracing::warn!(
                        "the configuration has problems outside [ds] (see essbot config check): describing with its [ds] section"
                    );
                    (ds, None)
                }
            };
            if ds.token.is_none() {
                return Err(ConfigError::one(
                    "ds.token",
                    ds.token_problem.clone().unwrap_or_default(),
                )
                .into());
            }
            let text = crate::commands::describe::describe_with(&ds, kind, number)
                .await
                .map_err(|e| CliError::from_command(e, true))?;
            emit(&text);
            Ok(Outcome::Ok)
        }
        Command::Milestones(args) => {
            let settings = load_settings(&cli.global)?;
            let text =
                crate::commands::milestones::run(&settings, &args, &crate::clock::SystemClock)
                    .await
                    .map_err(milestones_error)?;
            emit(&text);
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
            emit(&text);
            Ok(Outcome::Ok)
        }
        Command::Sandbox(args) => sandbox(args).await,
        Command::Completions { shell } => {
            emit(&completions(shell));
            Ok(Outcome::Ok)
        }
        Command::Manpage { dir: Some(dir) } => {
            use anyhow::Context as _;
            write_manpages(&dir)
                .with_context(|| format!("writing the manual pages to {}", dir.display()))?;
            println!("manual pages written to {}", dir.display());
            Ok(Outcome::Ok)
        }
        Command::Manpage { dir: None } => {
            use anyhow::Context as _;
            let mut out = Vec::new();
            clap_mangen::Man::new(command())
                .render(&mut out)
                .context("rendering the manual page")?;
            emit(&String::from_utf8_lossy(&out));
            Ok(Outcome::Ok)
        }
        Command::Demo => {
            emit(&crate::demo::run().await?);
            Ok(Outcome::Ok)
        }
        Command::Run { once: false } => {
            let path = config::locate(cli.global.config.as_deref())?;
            let settings = config::load(&Source::File(path.clone()), &Env::from_process())?;
            settings.require_token()?;
            let reload: crate::service::Reload =
                Box::new(move || config::load(&Source::File(path.clone()), &Env::from_process()));
            crate::service::run_daemon(settings, reload).await?;
            Ok(Outcome::Ok)
        }
        Command::Run { once: true } => {
            let settings = load_settings(&cli.global)?;
            settings.require_token()?;
            run_once(settings).await
        }
        Command::Status { json } => {
            use anyhow::Context as _;
            let settings = load_settings(&cli.global)?;
            // Reading never creates nor migrates the database, and works where the user
            // cannot write (root running `status` must not leave a root-owned file behind).
            let store = crate::store::Store::open_required(
                &settings.database.url,
                crate::store::Access::Read,
            )
            .await
            .map_err(|e| anyhow::anyhow!(e.operator_text()))?;
            let status = crate::status::status(&settings, &store, chrono::Utc::now())
                .await
                .context("reading the status")?;
            if json {
                emit(&status.json());
            } else {
                emit(&status.text);
            }
            Ok(if status.healthy {
                Outcome::Ok
            } else {
                Outcome::Failed
            })
        }
        Command::Db(DbCommand::Migrate) => {
            let settings = load_settings(&cli.global)?;
            let store = crate::store::Store::connect(&settings.database)
                .await
                .map_err(|e| anyhow::anyhow!(e.operator_text()))?;
            store
                .migrate()
                .await
                .map_err(|e| anyhow::anyhow!(e.operator_text()))?;
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
            let store = crate::store::Store::open_required(
                &settings.database.url,
                crate::store::Access::Read,
            )
            .await
            .map_err(|e| anyhow::anyhow!(e.operator_text()))?;
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

/// Writes a report or a table to stdout. A reader that went away (`essbot payments | head`)
/// ends the output quietly instead of with a panic.
fn emit(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        tracing::error!(error = %e, "cannot write to stdout");
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
    use crate::rules::text::count;
    println!(
        "Cycle {} : {} — {}, {}, {}, {}",
        report.cycle,
        crate::cycle::outcome_fr(&report.outcome),
        count(report.synced as usize, "dossier reçu", "dossiers reçus"),
        count(report.checked, "dossier vérifié", "dossiers vérifiés"),
        count(report.unchanged, "dossier inchangé", "dossiers inchangés"),
        count(report.requests as usize, "requête à DS", "requêtes à DS")
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

/// Lists, per démarche, the optional domain fields no champ is mapped onto and the rules that
/// run without them: said once here (and at start), never in a dossier's report. A required
/// field left unmapped is a configuration problem, reported before this.
fn print_unmapped(settings: &Settings) {
    for d in &settings.demarches {
        for effect in d.not_mapped() {
            println!(
                "démarche {} ({}): not mapped: {effect}",
                d.number,
                d.kind.as_str()
            );
        }
    }
    if let Some(why) = &settings.ds.token_problem {
        println!(
            "note: {why}; commands that call DS (run, check, demarche describe, config check --remote) refuse to start without a token"
        );
    }
}
