//! The `cutover` command line: check AppSpecs and configurations, and deploy on this machine
//! with `cutover local`; `cutover serve` says plainly that it is not available in this build yet.

mod appspec_cmd;
mod config_cmd;
mod local;
mod render;
mod serve;

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
    /// Serve CodeDeploy's API on localhost, for the aws CLI, boto3 and the SDKs.
    Serve(serve::ServeArgs),
}

/// What a command ended with: success, or a user-facing failure (exit 1).
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
        Command::Serve(args) => serve::run(args),
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

/// `word`, or its plural for any count but one.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}
