//! The `cutover` command line: check AppSpecs and configurations, deploy on this machine with
//! `cutover local`, serve CodeDeploy's API with `cutover serve`, and deploy, follow and stop
//! deployments through that API (or a stack's) with the operator commands.

mod appspec_cmd;
mod config_cmd;
mod local;
mod remote;
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
    /// Deploy an S3 revision to a deployment group through the API, and follow it to its end.
    Deploy(remote::DeployArgs),
    /// Show a deployment through the API: its hosts and lifecycle events.
    Status(remote::StatusArgs),
    /// List deployments through the API, newest first.
    List(remote::ListArgs),
    /// Stop a deployment through the API, at its next safe point.
    Stop(remote::StopArgs),
    /// Continue a blue/green deployment that waits, through the API.
    Continue(remote::ContinueArgs),
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
        Command::Deploy(args) => remote::deploy(args),
        Command::Status(args) => remote::status(args),
        Command::List(args) => remote::list(args),
        Command::Stop(args) => remote::stop(args),
        Command::Continue(args) => remote::continue_(args),
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
