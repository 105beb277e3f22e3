//! The `cutover` command line: check AppSpecs and configurations, and deploy on this machine
//! with `cutover local`; `cutover serve` says plainly that it is not available in this build yet.

mod appspec_cmd;
mod config_cmd;
mod local;
mod render;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// cutover: self-hosted AWS CodeDeploy. Your appspec.yml files, deployment configurations and
/// `aws deploy` habits, on your own machine or in your own AWS account.
#[derive(Debug, Parser)]
#[command(name = "cutover", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// AppSpec files: check one before deploying it.
    #[command(subcommand)]
    Appspec(appspec_cmd::AppSpecCommand),
    /// Deployment configurations: the predefined ones and what a configuration does.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Deploy on this machine: local hosts, real hook scripts, an embedded store.
    #[command(subcommand)]
    Local(local::LocalCommand),
    /// Serve the CodeDeploy API on localhost (not available in this build yet).
    Serve {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
}

/// What a command ended with: success, a user-facing failure (exit 1), or a command that this
/// build does not have (exit 2).
enum Outcome {
    Done,
    Failed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Appspec(cmd) => appspec_cmd::run(cmd),
        Command::Config(cmd) => config_cmd::run(cmd),
        Command::Local(cmd) => local::run(cmd),
        Command::Serve { .. } => return not_available("cutover serve"),
    };
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn not_available(command: &str) -> ExitCode {
    eprintln!(
        "error: {command} is not available in cutover {} yet; nothing was done",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}

/// `word`, or its plural for any count but one.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}
