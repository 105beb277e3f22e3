//! The `cutover-agent` binary that SSM Run Command (or an operator) runs on a host: one visit of
//! the agent, printing one JSON line per lifecycle event.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use cutover_agent::bundle::{BundleLimits, DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES};
use cutover_agent::fetch::FetchOptions;
use cutover_agent::hooks::{DEFAULT_KILL_GRACE, RevisionEnv};
use cutover_agent::host::HostRoot;
use cutover_agent::layout::{DEFAULT_ROOT, DeploymentRoot};
use cutover_agent::permissions::Tools;
use cutover_agent::run::{BundleSource, RunRequest, run};
use cutover_core::lifecycle::LifecycleEventName;
use cutover_core::model::{FileExistsBehavior, LifecycleEventStatus};

/// cutover-agent: installs a revision and runs its lifecycle hooks on this host, as the
/// CodeDeploy agent does, and prints one JSON line per lifecycle event.
#[derive(Debug, Parser)]
#[command(name = "cutover-agent", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run lifecycle events of one deployment on this host.
    ///
    /// Exit status: 0 if every event succeeded, 1 if one failed, 2 if the arguments are wrong.
    Run(RunArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The deployment's id, such as d-A1B2C3D4E.
    #[arg(long)]
    deployment_id: String,
    /// The application's name.
    #[arg(long)]
    application: String,
    /// The deployment group's name.
    #[arg(long)]
    group: String,
    /// The deployment group's id (it names the group's folder in the deployment root).
    #[arg(long)]
    group_id: String,
    /// The revision: a directory, a .zip/.tar/.tgz/.tar.gz file, or an https:// URL (such as a
    /// presigned S3 URL). Plain http:// is accepted for loopback addresses only.
    #[arg(long, value_name = "PATH_OR_HTTPS_URL")]
    bundle: String,
    /// The lifecycle events to run, in order, comma-separated (for example
    /// ApplicationStop,DownloadBundle,BeforeInstall,Install,AfterInstall,ApplicationStart,ValidateService).
    #[arg(long, value_delimiter = ',', required = true, value_parser = parse_event)]
    events: Vec<LifecycleEventName>,
    /// The deployment root, as a path on the host.
    #[arg(long, default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// The folder that stands in for / (a simulated host); / is this machine.
    #[arg(long, default_value = "/")]
    host_root: PathBuf,
    /// What to do with files already at a destination; the AppSpec's file_exists_behavior wins.
    #[arg(long, value_name = "DISALLOW|OVERWRITE|RETAIN")]
    file_exists_behavior: Option<FileExistsBehavior>,
    /// Go on when ApplicationStop, BeforeBlockTraffic or AfterBlockTraffic fail.
    #[arg(long)]
    ignore_application_stop_failures: bool,
    /// The bundle file's SHA-256 (hex); the bundle is refused if it differs.
    #[arg(long, value_name = "HEX")]
    sha256: Option<String>,
    /// The AppSpec's file name, when it is not appspec.yaml or appspec.yml.
    #[arg(long, value_name = "NAME")]
    appspec: Option<String>,
    /// BUNDLE_BUCKET for hook scripts (S3 revisions).
    #[arg(long, requires = "bundle_key")]
    bundle_bucket: Option<String>,
    /// BUNDLE_KEY for hook scripts (S3 revisions).
    #[arg(long, requires = "bundle_bucket")]
    bundle_key: Option<String>,
    /// BUNDLE_ETAG for hook scripts (S3 revisions).
    #[arg(long, requires = "bundle_bucket")]
    bundle_etag: Option<String>,
    /// BUNDLE_VERSION for hook scripts (versioned S3 revisions).
    #[arg(long, requires = "bundle_bucket")]
    bundle_version: Option<String>,
    /// BUNDLE_COMMIT for hook scripts (repository revisions).
    #[arg(long, conflicts_with = "bundle_bucket")]
    bundle_commit: Option<String>,
    /// The most bytes a bundle may unpack to.
    #[arg(long, default_value_t = DEFAULT_MAX_BYTES)]
    max_bundle_bytes: u64,
    /// The most files, directories and links a bundle may hold.
    #[arg(long, default_value_t = DEFAULT_MAX_ENTRIES)]
    max_bundle_entries: u64,
    /// A PEM file of CA certificates to trust, besides the built-in roots, when downloading.
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Seconds a timed-out script's processes get between SIGTERM and SIGKILL.
    #[arg(long, default_value_t = DEFAULT_KILL_GRACE.as_secs())]
    kill_grace_seconds: u64,
}

fn parse_event(text: &str) -> Result<LifecycleEventName, String> {
    let event: LifecycleEventName = text.trim().parse().map_err(|_| {
        let names: Vec<&str> = LifecycleEventName::ALL
            .iter()
            .filter(|e| runs_on_host(**e))
            .map(|e| e.as_str())
            .collect();
        format!(
            "'{text}' is not a lifecycle event the agent runs; use: {}",
            names.join(", ")
        )
    })?;
    if !runs_on_host(event) {
        return Err(format!(
            "{event} is performed by cutover's traffic router, not by the agent"
        ));
    }
    Ok(event)
}

fn runs_on_host(event: LifecycleEventName) -> bool {
    use LifecycleEventName::*;
    !matches!(
        event,
        BlockTraffic | AllowTraffic | AllowTestTraffic | AfterAllowTestTraffic
    )
}

fn main() -> ExitCode {
    let Command::Run(args) = Cli::parse().command;
    let request = match request(&args) {
        Ok(request) => request,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let reports = run(&request, &args.events, |report| {
        // One line per event as it ends, so a reader sees progress before the visit is over.
        match serde_json::to_string(report) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!(
                "error: cannot print the result of {}: {e}",
                report.lifecycle_event_name
            ),
        }
    });
    if reports
        .iter()
        .all(|r| r.status == LifecycleEventStatus::Succeeded)
    {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn request(args: &RunArgs) -> Result<RunRequest, String> {
    let host = HostRoot::new(&args.host_root);
    let root = DeploymentRoot::new(host, &args.root).map_err(|e| format!("--root: {e}"))?;
    let bundle = if args.bundle.contains("://") {
        BundleSource::Url(args.bundle.clone())
    } else {
        let path = PathBuf::from(&args.bundle);
        if !path.exists() {
            return Err(format!("--bundle: {} does not exist", path.display()));
        }
        BundleSource::Path(path)
    };
    let revision = match (&args.bundle_bucket, &args.bundle_key, &args.bundle_commit) {
        (Some(bucket), Some(key), _) => Some(RevisionEnv::S3 {
            bucket: bucket.clone(),
            key: key.clone(),
            etag: args.bundle_etag.clone(),
            version: args.bundle_version.clone(),
        }),
        (_, _, Some(commit)) => Some(RevisionEnv::GitHub {
            commit: commit.clone(),
        }),
        _ => None,
    };
    Ok(RunRequest {
        deployment_id: args.deployment_id.clone(),
        application_name: args.application.clone(),
        group_name: args.group.clone(),
        group_id: args.group_id.clone(),
        bundle,
        sha256: args.sha256.clone(),
        appspec_name: args.appspec.clone(),
        revision,
        file_exists_behavior: args.file_exists_behavior,
        ignore_application_stop_failures: args.ignore_application_stop_failures,
        root,
        limits: BundleLimits {
            max_bytes: args.max_bundle_bytes,
            max_entries: args.max_bundle_entries,
        },
        fetch: FetchOptions {
            max_bytes: args.max_bundle_bytes,
            extra_ca_pem: args.ca_file.clone(),
            ..FetchOptions::default()
        },
        kill_grace: Duration::from_secs(args.kill_grace_seconds),
        tools: Tools::default(),
    })
}
