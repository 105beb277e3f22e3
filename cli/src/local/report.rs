//! What `cutover local` prints about deployments: CodeDeploy's JSON shapes with `--json`, and
//! otherwise the summary table, the traffic registry and the list.

use cutover_core::machine::Deployment;
use cutover_local::LocalStore;
use serde_json::json;

use crate::render::{list_table, summary_table};

/// `{"deploymentInfo": ..., "targets": [...]}`: `GetDeployment` and `instanceTarget` shapes
/// (`lambdaTarget` for a Lambda deployment).
pub fn deployment_json(d: &Deployment) -> serde_json::Value {
    let targets: Vec<_> = d
        .targets
        .iter()
        .map(|t| match d.deployment_target(t).lambda_target {
            Some(lambda) => json!(lambda),
            None => json!(t.instance_target(&d.deployment_id)),
        })
        .collect();
    json!({ "deploymentInfo": d.info(), "targets": targets })
}

/// A deployment as `deploy` ends with it and `status` shows it: JSON, or the summary table.
pub fn print_deployment(store: &LocalStore, d: &Deployment, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", deployment_json(d));
        return Ok(());
    }
    print!("{}", summary_table(d));
    if d.with_traffic_control() {
        print_traffic(store, d)?;
    }
    Ok(())
}

fn print_traffic(store: &LocalStore, d: &Deployment) -> anyhow::Result<()> {
    let hosts = store.traffic(&d.application_name, &d.group.deployment_group_name)?;
    if hosts.is_empty() {
        return Ok(());
    }
    let line: Vec<String> = hosts
        .iter()
        .map(|(host, in_service)| {
            let state = if *in_service {
                "in service"
            } else {
                "out of service"
            };
            format!("{host} {state}")
        })
        .collect();
    println!("traffic: {}", line.join(", "));
    Ok(())
}

/// `list`: one line per deployment, or `{"deployments": [deploymentInfo, ...]}`.
pub fn print_list(deployments: &[Deployment], json: bool) {
    let infos: Vec<_> = deployments.iter().map(|d| d.info()).collect();
    if json {
        println!("{}", json!({ "deployments": infos }));
        return;
    }
    if infos.is_empty() {
        println!("no deployments yet");
        return;
    }
    print!("{}", list_table(&infos));
}
