//! What `cutover local` prints about deployments: CodeDeploy's JSON shapes with `--json`, and
//! otherwise the summary table, the traffic registry and the list.

use cutover_core::machine::Deployment;
use cutover_core::model::DeploymentStatus;
use cutover_local::LocalStore;
use serde_json::json;

use crate::Outcome;
use crate::render::summary_table;

/// `{"deploymentInfo": ..., "targets": [...]}`: `GetDeployment` and `instanceTarget` shapes.
pub fn deployment_json(d: &Deployment) -> serde_json::Value {
    let targets: Vec<_> = d
        .targets
        .iter()
        .map(|t| t.instance_target(&d.deployment_id))
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
    if json {
        let infos: Vec<_> = deployments.iter().map(|d| d.info()).collect();
        println!("{}", json!({ "deployments": infos }));
        return;
    }
    if deployments.is_empty() {
        println!("no deployments yet");
        return;
    }
    println!(
        "{:<12} {:<11} {:<16} {:<16} {:<8} NOTE",
        "DEPLOYMENT", "STATUS", "APPLICATION", "GROUP", "HOSTS"
    );
    for d in deployments {
        let o = d.overview();
        let note = match &d.rollback_info {
            Some(r) => match (
                &r.rollback_triggering_deployment_id,
                &r.rollback_deployment_id,
            ) {
                (Some(of), _) => format!("rollback of {of}"),
                (None, Some(by)) => format!("rolled back by {by}"),
                _ => r.rollback_message.clone().unwrap_or_default(),
            },
            None => d
                .error_information
                .as_ref()
                .map(|e| e.code.to_string())
                .unwrap_or_default(),
        };
        println!(
            "{:<12} {:<11} {:<16} {:<16} {:<8} {}",
            d.deployment_id.as_str(),
            d.status().to_string(),
            d.application_name,
            d.group.deployment_group_name,
            format!("{}/{}", o.succeeded, d.targets.len()),
            note
        );
    }
}

/// Exit 0 only for a deployment that succeeded; otherwise the reason goes to stderr.
pub fn outcome(d: &Deployment) -> Outcome {
    if d.status() == DeploymentStatus::Succeeded {
        return Outcome::Done;
    }
    let reason = match &d.error_information {
        Some(e) => format!(": {}: {}", e.code, e.message),
        None if d.is_finished() => String::new(),
        None => " (not finished)".to_owned(),
    };
    eprintln!("deployment {} is {}{reason}", d.deployment_id, d.status());
    Outcome::Failed
}
