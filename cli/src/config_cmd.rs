//! `cutover config`: list the predefined deployment configurations and show what one does on a
//! fleet of a given size (batches and success rule) or to traffic (the weight schedule).

use anyhow::{Context, bail};
use clap::Subcommand;
use cutover_core::config::{self, DeploymentConfigInfo, TrafficSchedule};
use cutover_core::model::ComputePlatform;
use serde_json::json;

use crate::{Outcome, plural};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// List the predefined deployment configurations.
    List {
        /// Print JSON (CodeDeploy's deploymentConfigsList shape).
        #[arg(long)]
        json: bool,
    },
    /// Show what a predefined deployment configuration does.
    Show {
        /// A predefined name, such as CodeDeployDefault.HalfAtATime.
        name: String,
        /// For Server configurations: the fleet size to plan for.
        #[arg(long, default_value_t = 9)]
        hosts: u32,
        /// Print JSON: deploymentConfigInfo plus hostPlan or trafficSchedule.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: ConfigCommand) -> anyhow::Result<Outcome> {
    match cmd {
        ConfigCommand::List { json } => {
            let names = config::predefined_names();
            if json {
                println!("{}", json!({ "deploymentConfigsList": names }));
            } else {
                for name in names {
                    let platform = config::predefined(name)
                        .map(|c| c.compute_platform)
                        .unwrap_or_default();
                    println!("{name:<56} {platform}");
                }
            }
            Ok(Outcome::Done)
        }
        ConfigCommand::Show { name, hosts, json } => {
            let Some(info) = config::predefined(&name) else {
                bail!("{}", config::ConfigError::UnknownPredefined(name));
            };
            show(&info, hosts, json)
        }
    }
}

fn show(info: &DeploymentConfigInfo, hosts: u32, json: bool) -> anyhow::Result<Outcome> {
    match info.compute_platform {
        ComputePlatform::Server => {
            let plan = info.host_plan(hosts);
            if json {
                let plan = match &plan {
                    Ok(p) => json!({
                        "fleetSize": p.fleet_size,
                        "minimumHealthyHosts": p.minimum_healthy_hosts,
                        "maxOutOfService": p.max_out_of_service,
                        "minimumSuccessful": p.minimum_successful,
                        "batchSizes": p.batch_sizes(),
                    }),
                    Err(e) => json!({ "fleetSize": hosts, "error": e.to_string() }),
                };
                println!(
                    "{}",
                    json!({ "deploymentConfigInfo": info, "hostPlan": plan })
                );
            } else {
                println!(
                    "{} ({})",
                    info.deployment_config_name, info.compute_platform
                );
                if let Some(m) = info.minimum_healthy_hosts {
                    println!("  minimum healthy hosts: {} {}", m.kind, m.value);
                }
                match &plan {
                    Ok(p) => println!(
                        "  on {} {}: keeps {} healthy, deploys up to {} at a time (batches {}), succeeds if at least {} succeed",
                        p.fleet_size,
                        plural(p.fleet_size as usize, "host"),
                        p.minimum_healthy_hosts,
                        p.max_out_of_service,
                        p.batch_sizes()
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                        p.minimum_successful
                    ),
                    Err(e) => {
                        println!(
                            "  on {hosts} {}: cannot deploy: {e}",
                            plural(hosts as usize, "host")
                        )
                    }
                }
            }
            Ok(if plan.is_ok() {
                Outcome::Done
            } else {
                Outcome::Failed
            })
        }
        ComputePlatform::Lambda | ComputePlatform::Ecs => {
            let routing = info
                .traffic_routing_config
                .context("a traffic configuration without trafficRoutingConfig")?;
            let schedule = TrafficSchedule::new(&routing).map_err(anyhow::Error::msg)?;
            if json {
                println!(
                    "{}",
                    json!({ "deploymentConfigInfo": info, "trafficSchedule": schedule.0 })
                );
            } else {
                println!(
                    "{} ({})",
                    info.deployment_config_name, info.compute_platform
                );
                println!("  traffic routing: {}", routing.kind);
                for step in &schedule.0 {
                    println!(
                        "  after {:>4} min: {:>3}% to the new version",
                        step.after.as_secs() / 60,
                        step.percent
                    );
                }
            }
            Ok(Outcome::Done)
        }
    }
}
