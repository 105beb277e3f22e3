//! The operator commands: `cutover deploy`, `status`, `list`, `stop` and `continue`. They call
//! CodeDeploy's API, so they work the same against `cutover serve` on this machine and against
//! the API of a stack in AWS.

mod client;
mod follow;
mod profile;
mod s3_location;

use std::io::IsTerminal;

use anyhow::Context;
use clap::Args;
use cutover_core::DeploymentId;
use cutover_core::model::{
    DeploymentInfo, DeploymentStatus, FileExistsBehavior, RevisionLocation, S3Location,
};
use serde::Deserialize;
use serde_json::json;

use self::client::Client;
use self::follow::{Follower, Snapshot};
use crate::Outcome;
use crate::local::parse_deployment_id;
use crate::render::{self, Progress};

/// The variables that name the endpoint, in the order they are read.
const ENDPOINT_VARS: [&str; 3] = [
    "CUTOVER_ENDPOINT",
    "AWS_ENDPOINT_URL_CODEDEPLOY",
    "AWS_ENDPOINT_URL",
];

/// The most deployments one `BatchGetDeployments` takes.
const DEPLOYMENTS_PER_BATCH: usize = 25;

/// Where the API is and what to sign with; every operator command takes these.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// The CodeDeploy API to call: `cutover serve` (http://127.0.0.1:7447) or a stack's API URL [default: $CUTOVER_ENDPOINT, else $AWS_ENDPOINT_URL_CODEDEPLOY, else $AWS_ENDPOINT_URL]
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// Sign with this profile's keys from ~/.aws/credentials and ~/.aws/config [default: $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY, else $AWS_PROFILE, else default]
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// The region to sign for [default: $AWS_REGION, else $AWS_DEFAULT_REGION, else the profile's, else us-east-1]
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
}

impl Connection {
    fn client(&self) -> anyhow::Result<Client> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let endpoint = match &self.endpoint {
            Some(e) => e.clone(),
            None => ENDPOINT_VARS.iter().find_map(|v| env(v)).with_context(|| {
                "no CodeDeploy endpoint to call: pass --endpoint URL or set CUTOVER_ENDPOINT \
                 (http://127.0.0.1:7447 for `cutover serve`, or your stack's API URL)"
            })?,
        };
        let files = profile::SharedFiles::load(&env).map_err(anyhow::Error::msg)?;
        let signing = profile::resolve(
            self.profile.as_deref(),
            self.region.as_deref(),
            &env,
            &files,
        )
        .map_err(anyhow::Error::msg)?;
        Client::new(endpoint.trim(), signing).map_err(anyhow::Error::msg)
    }
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The application of the deployment group.
    #[arg(long, value_name = "NAME")]
    application_name: String,
    /// The deployment group to deploy to.
    #[arg(long, value_name = "NAME")]
    deployment_group_name: String,
    /// The revision: bucket=BUCKET,key=KEY,bundleType=zip|tar|tgz[,eTag=ETAG][,version=VERSION]
    #[arg(long, value_name = "LOCATION", value_parser = s3_location::parse)]
    s3_location: S3Location,
    /// A predefined or custom configuration [default: the group's]
    #[arg(long, value_name = "NAME")]
    deployment_config_name: Option<String>,
    /// A note kept with the deployment.
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// What to do with files already at a destination (the AppSpec's choice wins).
    #[arg(long, value_name = "DISALLOW|OVERWRITE|RETAIN")]
    file_exists_behavior: Option<FileExistsBehavior>,
    /// A failing ApplicationStop, BeforeBlockTraffic or AfterBlockTraffic does not fail the host.
    #[arg(long)]
    ignore_application_stop_failures: bool,
    /// Print the deployment's id and return at once, instead of following it to its end.
    #[arg(long)]
    no_wait: bool,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    deployment_id: String,
    /// Follow the deployment with live progress until it ends, then show it.
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this application's deployments.
    #[arg(long, value_name = "NAME")]
    application_name: Option<String>,
    /// Only this group's deployments (with --application-name).
    #[arg(long, value_name = "NAME", requires = "application_name")]
    deployment_group_name: Option<String>,
    /// Only deployments in these statuses (Created, Queued, InProgress, Succeeded, Failed, Stopped, ...).
    #[arg(long, value_name = "STATUS", num_args = 1..)]
    include_only_statuses: Vec<DeploymentStatus>,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    deployment_id: String,
    /// Roll back to the group's last successful revision once stopped.
    #[arg(long)]
    auto_rollback_enabled: bool,
    /// Return once the stop is asked for, instead of following the deployment to its end.
    #[arg(long)]
    no_wait: bool,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub struct ContinueArgs {
    deployment_id: String,
    /// What the deployment waits for: READY_WAIT (to reroute traffic) or TERMINATION_WAIT.
    #[arg(long, value_name = "TYPE", value_parser = ["READY_WAIT", "TERMINATION_WAIT"])]
    deployment_wait_type: Option<String>,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateOutput {
    deployment_id: DeploymentId,
}

/// `cutover deploy`: CreateDeployment, then (unless --no-wait) its progress and summary.
pub fn deploy(args: DeployArgs) -> anyhow::Result<Outcome> {
    let client = args.connection.client()?;
    let location = &args.s3_location;
    let mut input = json!({
        "applicationName": args.application_name,
        "deploymentGroupName": args.deployment_group_name,
        "revision": RevisionLocation::S3(location.clone()),
    });
    if let Some(config) = &args.deployment_config_name {
        input["deploymentConfigName"] = json!(config);
    }
    if let Some(description) = &args.description {
        input["description"] = json!(description);
    }
    if let Some(behavior) = args.file_exists_behavior {
        input["fileExistsBehavior"] = json!(behavior);
    }
    if args.ignore_application_stop_failures {
        input["ignoreApplicationStopFailures"] = json!(true);
    }
    let created: CreateOutput = client.call("CreateDeployment", &input)?;
    let id = created.deployment_id;
    if args.no_wait {
        println!("{id}");
        return Ok(Outcome::Done);
    }
    eprintln!(
        "Deploying s3://{}/{} to {} of {}: {id} (Ctrl-C stops following it; the deployment goes on)",
        location.bucket, location.key, args.deployment_group_name, args.application_name
    );
    follow_to_end(&client, id)
}

/// `cutover status`: the deployment's summary, after following it with --wait.
pub fn status(args: StatusArgs) -> anyhow::Result<Outcome> {
    let id = parse_deployment_id(&args.deployment_id)?;
    let client = args.connection.client()?;
    if args.wait {
        return follow_to_end(&client, id);
    }
    let mut follower = Follower::new(&client, id);
    follower.refresh()?;
    let d = follower.latest().context("the deployment was just read")?;
    print!("{}", render::summary_table(d));
    Ok(render::outcome(d))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListOutput {
    #[serde(default)]
    deployments: Vec<DeploymentId>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchGetOutput {
    #[serde(default)]
    deployments_info: Vec<DeploymentInfo>,
}

/// `cutover list`: every page of ListDeployments, newest first, as a table.
pub fn list(args: ListArgs) -> anyhow::Result<Outcome> {
    let client = args.connection.client()?;
    let mut input = json!({});
    if let Some(app) = &args.application_name {
        input["applicationName"] = json!(app);
    }
    if let Some(group) = &args.deployment_group_name {
        input["deploymentGroupName"] = json!(group);
    }
    if !args.include_only_statuses.is_empty() {
        input["includeOnlyStatuses"] = json!(args.include_only_statuses);
    }
    let mut ids = Vec::new();
    loop {
        let page: ListOutput = client.call("ListDeployments", &input)?;
        ids.extend(page.deployments);
        match page.next_token.filter(|t| !t.is_empty()) {
            Some(token) => input["nextToken"] = json!(token),
            None => break,
        }
    }
    let mut infos = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(DEPLOYMENTS_PER_BATCH) {
        let got: BatchGetOutput =
            client.call("BatchGetDeployments", &json!({ "deploymentIds": chunk }))?;
        // In the order listed: newest first.
        for id in chunk {
            if let Some(info) = got.deployments_info.iter().find(|d| d.deployment_id == *id) {
                infos.push(info.clone());
            }
        }
    }
    if infos.is_empty() {
        let filtered = args.application_name.is_some() || !args.include_only_statuses.is_empty();
        println!(
            "{}",
            if filtered {
                "no deployments match"
            } else {
                "no deployments yet"
            }
        );
    } else {
        print!("{}", render::list_table(&infos));
    }
    Ok(Outcome::Done)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StopOutput {
    status: Option<String>,
    status_message: Option<String>,
}

/// `cutover stop`: StopDeployment, then (unless --no-wait) the deployment until it ends.
pub fn stop(args: StopArgs) -> anyhow::Result<Outcome> {
    let id = parse_deployment_id(&args.deployment_id)?;
    let client = args.connection.client()?;
    let mut input = json!({ "deploymentId": id });
    if args.auto_rollback_enabled {
        input["autoRollbackEnabled"] = json!(true);
    }
    let stopped: StopOutput = client.call("StopDeployment", &input)?;
    let message = stopped
        .status_message
        .or(stopped.status)
        .unwrap_or_else(|| "stop requested".to_owned());
    eprintln!("Stopping {id}: {message}");
    if args.no_wait {
        return Ok(Outcome::Done);
    }
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let (ended, rollback) = follow::until_finished(&client, id, &mut progress)?;
    print_ended(&ended, rollback.as_ref());
    Ok(Outcome::Done)
}

/// `cutover continue`: ContinueDeployment.
pub fn continue_(args: ContinueArgs) -> anyhow::Result<Outcome> {
    let id = parse_deployment_id(&args.deployment_id)?;
    let client = args.connection.client()?;
    let mut input = json!({ "deploymentId": id });
    if let Some(wait_type) = &args.deployment_wait_type {
        input["deploymentWaitType"] = json!(wait_type);
    }
    let _: serde_json::Value = client
        .call("ContinueDeployment", &input)
        .with_context(|| format!("deployment {id} cannot be continued"))?;
    println!("deployment {id} continues");
    Ok(Outcome::Done)
}

/// Follows a deployment (and its rollback) with live progress, then prints how it ended; the
/// outcome is the deployment's own.
fn follow_to_end(client: &Client, id: DeploymentId) -> anyhow::Result<Outcome> {
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let (ended, rollback) = follow::until_finished(client, id, &mut progress)?;
    print_ended(&ended, rollback.as_ref());
    Ok(render::outcome(&ended))
}

/// The summary of a deployment, and of its rollback under it, as `cutover local deploy` ends.
fn print_ended(ended: &Snapshot, rollback: Option<&Snapshot>) {
    print!("{}", render::summary_table(ended));
    if let Some(r) = rollback {
        println!();
        print!("{}", render::summary_table(r));
    }
}
