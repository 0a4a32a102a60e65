//! The `essbot` binary: parse the command line, run the command, map the outcome to an exit
//! code (0 ok, 1 runtime failure, 2 usage or configuration error).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use essbot::cli::{self, Cli, Outcome};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    essbot::telemetry::init(cli.global.log_format);
    match cli::run(cli).await {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Err(e) => {
            // `{:#}` prints the anyhow chain on one line; configuration errors list every problem.
            eprintln!("essbot: {e:#}");
            ExitCode::from(e.exit_code())
        }
    }
}
