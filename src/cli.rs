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
    /// Configuration commands.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Runs the built-in DS sandbox alone, for manual tests and other tools.
    Sandbox(SandboxArgs),
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
    Check,
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
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => 2,
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
        Command::Config(ConfigCommand::Check) => {
            let path = config::locate(cli.global.config.as_deref())?;
            let settings = config::load(&Source::File(path.clone()), &Env::from_process())?;
            println!("{}: configuration valid", path.display());
            print_unmapped(&settings);
            Ok(Outcome::Ok)
        }
        Command::Sandbox(args) => sandbox(args).await,
    }
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
