//! The replacement fleets of blue/green deployments in the cloud. COPY_AUTO_SCALING_GROUP makes
//! a copy of the group's Auto Scaling group, named `CodeDeploy_<group>_<deployment id>` as
//! CodeDeploy names it; DISCOVER_EXISTING takes the deployment's `targetInstances`. The fleet is
//! ready once each instance runs and its SSM agent is online. Once traffic is on it, the copy
//! takes over the original's load balancers, the group deploys to the copy, and the originals
//! are terminated or kept; a deployment that ends without
//! getting there deletes its copy. Instances that were discovered are never terminated by
//! cutover on a rollback: they were there before the deployment.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_autoscaling as autoscaling;
use aws_sdk_autoscaling::error::ProvideErrorMetadata;
use aws_sdk_autoscaling::types::{
    AutoScalingGroup, LaunchTemplateSpecification, LifecycleState, Tag,
};
use aws_sdk_ec2 as ec2;
use cutover_core::TargetId;
use cutover_core::machine::Deployment;
use cutover_core::model::{ErrorCode, ErrorInformation, GreenFleetProvisioningAction, TargetLabel};
use cutover_engine::{PortError, Provisioning, Replacements};

use crate::error::{code, port_error};
use crate::fleet::{Ec2Fleet, Selection};
use crate::store::DynamoStore;

/// How long to wait before looking again at a fleet that is coming up.
pub const PROVISIONING_POLL: Duration = Duration::from_secs(15);
/// The tag on a copied Auto Scaling group and its instances naming the deployment that made it.
pub const DEPLOYMENT_TAG: &str = "cutover:deployment-id";
/// The tag on a copied Auto Scaling group naming the group it was copied from.
pub const COPIED_FROM_TAG: &str = "cutover:copied-from";
/// The most instances EC2 terminates, or Auto Scaling detaches, in one call.
const TERMINATE_PER_CALL: usize = 20;

/// Provisions, releases and discards replacement fleets with Auto Scaling, EC2 and SSM.
#[derive(Debug)]
pub struct Ec2Replacements {
    autoscaling: autoscaling::Client,
    ec2: ec2::Client,
    fleet: Ec2Fleet,
    store: DynamoStore,
}

impl Ec2Replacements {
    /// Replacements whose clients share `config`; the group's Auto Scaling group is switched to
    /// the copy in `store`.
    pub fn new(config: &SdkConfig, store: DynamoStore) -> Self {
        Ec2Replacements {
            autoscaling: autoscaling::Client::new(config),
            ec2: ec2::Client::new(config),
            fleet: Ec2Fleet::new(config),
            store,
        }
    }

    /// COPY_AUTO_SCALING_GROUP: the copy, made if it is not there yet, and whether its instances
    /// are up.
    async fn copy(&self, d: &Deployment) -> Result<Provisioning, PortError> {
        let name = copy_name(d);
        let copy = match self.describe(&name).await? {
            Some(copy) => copy,
            None => {
                let original = match self.original(d).await? {
                    Ok(original) => original,
                    Err(error) => return Ok(Provisioning::Failed(error)),
                };
                if let Err(error) = self.create_copy(d, &original, &name).await? {
                    return Ok(Provisioning::Failed(error));
                }
                match self.describe(&name).await? {
                    Some(copy) => copy,
                    None => return Ok(Provisioning::Pending(PROVISIONING_POLL)),
                }
            }
        };
        let wanted = copy.desired_capacity().unwrap_or(0).max(0) as usize;
        let members: Vec<String> = copy
            .instances()
            .iter()
            .filter(|i| i.lifecycle_state() == Some(&LifecycleState::InService))
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect();
        if members.len() < wanted {
            return Ok(Provisioning::Pending(PROVISIONING_POLL));
        }
        self.when_reachable(members).await
    }

    /// The group's one Auto Scaling group, or why it cannot be copied.
    async fn original(
        &self,
        d: &Deployment,
    ) -> Result<Result<AutoScalingGroup, ErrorInformation>, PortError> {
        let group = &d.group.deployment_group_name;
        let name = match d.group.auto_scaling_groups.as_slice() {
            [one] => &one.name,
            none_or_many => {
                return Ok(Err(ErrorInformation::new(
                    ErrorCode::AutoScalingConfiguration,
                    format!(
                        "greenFleetProvisioningOption COPY_AUTO_SCALING_GROUP copies the Auto Scaling group of deployment group '{group}', which must name exactly one in autoScalingGroups; it names {}",
                        none_or_many.len()
                    ),
                )));
            }
        };
        let Some(original) = self.describe(name).await? else {
            return Ok(Err(ErrorInformation::new(
                ErrorCode::AutoScalingConfiguration,
                format!(
                    "Auto Scaling group '{name}' of deployment group '{group}' does not exist in this account and region, so it cannot be copied. Update autoScalingGroups."
                ),
            )));
        };
        if original.desired_capacity().unwrap_or(0) < 1 {
            return Ok(Err(ErrorInformation::new(
                ErrorCode::AutoScalingConfiguration,
                format!(
                    "Auto Scaling group '{name}' has a desired capacity of 0, so its copy would have no instances to deploy to. Scale it out first."
                ),
            )));
        }
        Ok(Ok(original))
    }

    /// Creates `name` with the original's launch settings, capacity and tags, plus the
    /// deployment's; not its load balancers or target groups, since traffic reaches the copy
    /// only through the reroute.
    async fn create_copy(
        &self,
        d: &Deployment,
        original: &AutoScalingGroup,
        name: &str,
    ) -> Result<Result<(), ErrorInformation>, PortError> {
        let original_name = original.auto_scaling_group_name().unwrap_or_default();
        let tag = |key: &str, value: &str, propagate: bool| {
            Tag::builder()
                .resource_id(name)
                .resource_type("auto-scaling-group")
                .key(key)
                .value(value)
                .propagate_at_launch(propagate)
                .build()
        };
        let mut tags: Vec<Tag> = original
            .tags()
            .iter()
            .filter(|t| {
                t.key()
                    .is_some_and(|k| k != DEPLOYMENT_TAG && k != COPIED_FROM_TAG)
            })
            .map(|t| {
                tag(
                    t.key().unwrap_or_default(),
                    t.value().unwrap_or_default(),
                    t.propagate_at_launch().unwrap_or(false),
                )
            })
            .collect();
        tags.push(tag(DEPLOYMENT_TAG, d.deployment_id.as_str(), true));
        tags.push(tag(COPIED_FROM_TAG, original_name, false));
        let vpc_zones = original.vpc_zone_identifier().filter(|z| !z.is_empty());
        let request = self
            .autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .set_launch_template(original.launch_template().map(one_name))
            .set_mixed_instances_policy(original.mixed_instances_policy().cloned())
            .set_launch_configuration_name(original.launch_configuration_name().map(str::to_owned))
            .min_size(original.min_size().unwrap_or(0))
            .max_size(original.max_size().unwrap_or(0))
            .set_desired_capacity(original.desired_capacity())
            .set_vpc_zone_identifier(vpc_zones.map(str::to_owned))
            .set_availability_zones(
                vpc_zones
                    .is_none()
                    .then(|| original.availability_zones().to_vec()),
            )
            .set_default_cooldown(original.default_cooldown())
            .set_health_check_type(original.health_check_type().map(str::to_owned))
            .set_health_check_grace_period(original.health_check_grace_period())
            .set_termination_policies(Some(original.termination_policies().to_vec()))
            .set_new_instances_protected_from_scale_in(
                original.new_instances_protected_from_scale_in(),
            )
            .set_capacity_rebalance(original.capacity_rebalance())
            .set_placement_group(original.placement_group().map(str::to_owned))
            .set_service_linked_role_arn(original.service_linked_role_arn().map(str::to_owned))
            .set_max_instance_lifetime(original.max_instance_lifetime())
            .set_tags(Some(tags));
        match request.send().await {
            Ok(_) => Ok(Ok(())),
            // A redelivered step made it a moment ago.
            Err(e) if code(&e) == Some("AlreadyExists") => Ok(Ok(())),
            Err(e) if crate::error::is_transient(&e) => Err(port_error(
                format!("autoscaling:CreateAutoScalingGroup {name}"),
                e,
            )),
            Err(e) => {
                let why = e.message().unwrap_or("no reason given").to_owned();
                let refused = matches!(
                    code(&e),
                    Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation")
                );
                Ok(Err(ErrorInformation::new(
                    if refused {
                        ErrorCode::AutoScalingIamRolePermissions
                    } else {
                        ErrorCode::AutoscalingValidationError
                    },
                    format!(
                        "Auto Scaling group '{original_name}' could not be copied to '{name}': {why}"
                    ),
                )))
            }
        }
    }

    /// DISCOVER_EXISTING: the instances the deployment's `targetInstances` name, once each is up.
    async fn discover(&self, d: &Deployment) -> Result<Provisioning, PortError> {
        let group = &d.group.deployment_group_name;
        let Some(selection) = Selection::target_instances(d) else {
            return Ok(Provisioning::Failed(ErrorInformation::new(
                ErrorCode::NoInstances,
                format!(
                    "deployment group '{group}' discovers its replacement instances (greenFleetProvisioningOption DISCOVER_EXISTING), but the deployment names none: give targetInstances (tagFilters, ec2TagSet or autoScalingGroups) in CreateDeployment, or set COPY_AUTO_SCALING_GROUP"
                ),
            )));
        };
        let found = match self.fleet.find(&selection).await? {
            Ok(found) => found,
            Err(error) => return Ok(Provisioning::Failed(error)),
        };
        if found.is_empty() {
            return Ok(Provisioning::Failed(ErrorInformation::new(
                ErrorCode::NoInstances,
                format!(
                    "No replacement instances were found: nothing running matches {} of {}.",
                    selection.describe(),
                    selection.source
                ),
            )));
        }
        let originals: Vec<&str> = d
            .targets
            .iter()
            .filter(|t| t.instance_label == Some(TargetLabel::Blue))
            .map(|t| t.target_id.as_str())
            .filter(|id| found.contains(*id))
            .collect();
        if !originals.is_empty() {
            return Ok(Provisioning::Failed(ErrorInformation::new(
                ErrorCode::NoInstances,
                format!(
                    "targetInstances match instances that are already in deployment group '{group}': {}. The replacement instances must be others.",
                    originals.join(", ")
                ),
            )));
        }
        self.when_reachable(found.into_iter().collect()).await
    }

    /// Ready once every one of `ids` runs with its SSM agent online; pending until then.
    async fn when_reachable(&self, ids: Vec<String>) -> Result<Provisioning, PortError> {
        let reachable = self.fleet.reachable(&ids).await?;
        if ids.iter().all(|id| reachable.contains(id)) {
            Ok(Provisioning::Ready(
                ids.into_iter().map(TargetId::new).collect(),
            ))
        } else {
            Ok(Provisioning::Pending(PROVISIONING_POLL))
        }
    }

    /// The Auto Scaling group of that name, unless it does not exist or is being deleted.
    async fn describe(&self, name: &str) -> Result<Option<AutoScalingGroup>, PortError> {
        let out = self
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .map_err(|e| port_error("autoscaling:DescribeAutoScalingGroups", e))?;
        Ok(out
            .auto_scaling_groups()
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(name) && !is_being_deleted(g))
            .cloned())
    }

    /// Deletes an Auto Scaling group and terminates its instances; one that is gone is fine.
    async fn delete(&self, name: &str) -> Result<(), PortError> {
        if self.describe(name).await?.is_none() {
            return Ok(());
        }
        match self
            .autoscaling
            .delete_auto_scaling_group()
            .auto_scaling_group_name(name)
            .force_delete(true)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if gone(e.message()) => Ok(()),
            Err(e) => Err(port_error(
                format!("autoscaling:DeleteAutoScalingGroup {name}"),
                e,
            )),
        }
    }

    /// Attaches the original's target groups and load balancers to the copy, now that traffic
    /// is on it, so that hosts it launches from now on serve as the original's did.
    async fn take_over_load_balancers(
        &self,
        copy: &str,
        original: &AutoScalingGroup,
    ) -> Result<(), PortError> {
        let target_groups = original.target_group_arns();
        if !target_groups.is_empty() {
            self.autoscaling
                .attach_load_balancer_target_groups()
                .auto_scaling_group_name(copy)
                .set_target_group_arns(Some(target_groups.to_vec()))
                .send()
                .await
                .map_err(|e| {
                    port_error(
                        format!("autoscaling:AttachLoadBalancerTargetGroups {copy}"),
                        e,
                    )
                })?;
        }
        let load_balancers = original.load_balancer_names();
        if !load_balancers.is_empty() {
            self.autoscaling
                .attach_load_balancers()
                .auto_scaling_group_name(copy)
                .set_load_balancer_names(Some(load_balancers.to_vec()))
                .send()
                .await
                .map_err(|e| port_error(format!("autoscaling:AttachLoadBalancers {copy}"), e))?;
        }
        Ok(())
    }

    /// Terminates instances, first taking those in `groups` out of them so that the groups do
    /// not launch others in their place.
    async fn terminate(&self, ids: &[String], groups: &[String]) -> Result<(), PortError> {
        for group in groups {
            let Some(g) = self.describe(group).await? else {
                continue;
            };
            let members: Vec<String> = g
                .instances()
                .iter()
                .filter_map(|i| i.instance_id())
                .filter(|id| ids.iter().any(|i| i == id))
                .map(str::to_owned)
                .collect();
            for chunk in members.chunks(TERMINATE_PER_CALL) {
                self.autoscaling
                    .detach_instances()
                    .auto_scaling_group_name(group)
                    .set_instance_ids(Some(chunk.to_vec()))
                    .should_decrement_desired_capacity(true)
                    .send()
                    .await
                    .map_err(|e| port_error(format!("autoscaling:DetachInstances {group}"), e))?;
            }
        }
        let ec2_ids: Vec<String> = ids
            .iter()
            .filter(|id| id.starts_with("i-"))
            .cloned()
            .collect();
        for chunk in ec2_ids.chunks(TERMINATE_PER_CALL) {
            match self
                .ec2
                .terminate_instances()
                .set_instance_ids(Some(chunk.to_vec()))
                .send()
                .await
            {
                Ok(_) => {}
                Err(e) if code(&e) == Some("InvalidInstanceID.NotFound") => {}
                Err(e) => return Err(port_error("ec2:TerminateInstances", e)),
            }
        }
        Ok(())
    }
}

impl Replacements for Ec2Replacements {
    async fn provision(&self, d: &Deployment) -> Result<Provisioning, PortError> {
        match provisioning_action(d) {
            GreenFleetProvisioningAction::CopyAutoScalingGroup => self.copy(d).await,
            GreenFleetProvisioningAction::DiscoverExisting => self.discover(d).await,
        }
    }

    async fn release(
        &self,
        d: &Deployment,
        originals: &[TargetId],
        terminate: bool,
    ) -> Result<(), PortError> {
        let ids: Vec<String> = originals.iter().map(|t| t.as_str().to_owned()).collect();
        let group_asgs: Vec<String> = d
            .group
            .auto_scaling_groups
            .iter()
            .map(|a| a.name.clone())
            .collect();
        if provisioning_action(d) == GreenFleetProvisioningAction::CopyAutoScalingGroup {
            let copy = copy_name(d);
            for original in &group_asgs {
                if let Some(original) = self.describe(original).await? {
                    self.take_over_load_balancers(&copy, &original).await?;
                }
                self.store
                    .replace_auto_scaling_group(
                        &d.application_name,
                        &d.group.deployment_group_name,
                        original,
                        &copy,
                    )
                    .await?;
                if terminate {
                    self.delete(original).await?;
                }
            }
        }
        if terminate {
            self.terminate(&ids, &group_asgs).await?;
        }
        Ok(())
    }

    async fn discard(&self, d: &Deployment, _replacements: &[TargetId]) -> Result<(), PortError> {
        match provisioning_action(d) {
            GreenFleetProvisioningAction::CopyAutoScalingGroup => self.delete(&copy_name(d)).await,
            GreenFleetProvisioningAction::DiscoverExisting => Ok(()),
        }
    }
}

/// How the deployment's replacement fleet comes to be: DISCOVER_EXISTING unless the group says
/// otherwise, as in CodeDeploy.
fn provisioning_action(d: &Deployment) -> GreenFleetProvisioningAction {
    d.group
        .blue_green_deployment_configuration
        .and_then(|c| c.green_fleet_provisioning_option)
        .map_or(GreenFleetProvisioningAction::DiscoverExisting, |o| o.action)
}

/// The name of the Auto Scaling group a deployment copies, as CodeDeploy names it.
pub fn copy_name(d: &Deployment) -> String {
    format!(
        "CodeDeploy_{}_{}",
        d.group.deployment_group_name, d.deployment_id
    )
}

/// A launch template named once, by id where known: Auto Scaling describes a group's template
/// by id and name, and refuses a request that gives both.
fn one_name(t: &LaunchTemplateSpecification) -> LaunchTemplateSpecification {
    LaunchTemplateSpecification::builder()
        .set_launch_template_id(t.launch_template_id().map(str::to_owned))
        .set_launch_template_name(
            t.launch_template_id()
                .is_none()
                .then(|| t.launch_template_name().map(str::to_owned))
                .flatten(),
        )
        .set_version(t.version().map(str::to_owned))
        .build()
}

fn is_being_deleted(g: &AutoScalingGroup) -> bool {
    g.status().is_some_and(|s| s.starts_with("Delete"))
}

/// Whether an Auto Scaling error says the group is gone or going.
fn gone(message: Option<&str>) -> bool {
    message.is_some_and(|m| m.contains("not found") || m.contains("being deleted"))
}
