//! Reading deployments and their targets: GetDeployment, BatchGetDeployments, ListDeployments,
//! ListDeploymentTargets, GetDeploymentTarget, BatchGetDeploymentTargets, and the older
//! ListDeploymentInstances, GetDeploymentInstance and BatchGetDeploymentInstances; and
//! CreateDeployment, StopDeployment, ContinueDeployment and SkipWaitTimeForInstanceTermination.

use cutover_core::machine::{CreateDeployment, Deployment, Target, lambda_appspec};
use cutover_core::model::{
    AlarmConfiguration, AutoRollbackConfiguration, ComputePlatform, DeploymentCreator,
    DeploymentGroupInfo, DeploymentInfo, DeploymentStatus, DeploymentTarget, DeploymentType,
    DeploymentWaitType, FileExistsBehavior, GreenFleetProvisioningAction, InstanceSummary,
    RevisionLocation, TargetInstances, TargetLabel, TargetStatus,
};
use cutover_core::{DeploymentId, TargetId, Timestamp};
use serde::{Deserialize, Serialize};

use super::{
    application_name, batch, existing_application, existing_group, group_name, internal, page,
};
use crate::deployer::Deployer;
use crate::registry::Registry;
use crate::wire::ApiError;

/// The most deployments or targets one Batch call takes, as in CodeDeploy.
const MAX_BATCH: usize = 25;

pub(crate) fn deployment_id(value: Option<&str>) -> Result<DeploymentId, ApiError> {
    let value = value.unwrap_or_default();
    if value.is_empty() {
        return Err(ApiError::codedeploy(
            "DeploymentIdRequiredException",
            "The deployment ID must be specified.",
        ));
    }
    value
        .parse()
        .map_err(|e: cutover_core::ids::InvalidDeploymentId| {
            ApiError::codedeploy("InvalidDeploymentIdException", e.to_string())
        })
}

pub(crate) async fn deployment(
    registry: &impl Registry,
    id: &DeploymentId,
) -> Result<Deployment, ApiError> {
    registry
        .deployment(id)
        .await
        .map_err(internal("reading the deployment"))?
        .ok_or_else(|| {
            ApiError::codedeploy(
                "DeploymentDoesNotExistException",
                format!("The deployment {id} could not be found."),
            )
        })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetInput {
    deployment_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetOutput {
    deployment_info: DeploymentInfo,
}

pub async fn get(registry: &impl Registry, input: GetInput) -> Result<GetOutput, ApiError> {
    let id = deployment_id(input.deployment_id.as_deref())?;
    let d = deployment(registry, &id).await?;
    Ok(GetOutput {
        deployment_info: d.info(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchGetInput {
    deployment_ids: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetOutput {
    deployments_info: Vec<DeploymentInfo>,
}

/// The deployments found among those asked for; unknown ids are left out, as CodeDeploy does.
pub async fn batch_get(
    registry: &impl Registry,
    input: BatchGetInput,
) -> Result<BatchGetOutput, ApiError> {
    let ids = batch(
        input.deployment_ids,
        "deployment IDs",
        MAX_BATCH,
        "DeploymentIdRequiredException",
    )?;
    let mut deployments_info = Vec::new();
    for id in &ids {
        let id = deployment_id(Some(id))?;
        if let Some(d) = registry
            .deployment(&id)
            .await
            .map_err(internal("reading the deployment"))?
        {
            deployments_info.push(d.info());
        }
    }
    Ok(BatchGetOutput { deployments_info })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeRange {
    start: Option<Timestamp>,
    end: Option<Timestamp>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    application_name: Option<String>,
    deployment_group_name: Option<String>,
    external_id: Option<String>,
    #[serde(default)]
    include_only_statuses: Vec<DeploymentStatus>,
    create_time_range: Option<TimeRange>,
    next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListOutput {
    deployments: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// Deployment ids, newest first, of one group, one application or all.
pub async fn list(registry: &impl Registry, input: ListInput) -> Result<ListOutput, ApiError> {
    let app = input.application_name.as_deref().filter(|a| !a.is_empty());
    let group = input
        .deployment_group_name
        .as_deref()
        .filter(|g| !g.is_empty());
    if let Some(app) = app {
        existing_application(registry, app).await?;
    }
    match (app, group) {
        (None, Some(_)) => {
            return Err(ApiError::codedeploy(
                "ApplicationNameRequiredException",
                "The application name must be specified with a deployment group name.",
            ));
        }
        (Some(app), Some(group)) => {
            existing_group(registry, app, group).await?;
        }
        _ => {}
    }
    // No deployment of cutover's carries an external id.
    if input.external_id.as_deref().is_some_and(|e| !e.is_empty()) {
        return Ok(ListOutput {
            deployments: Vec::new(),
            next_token: None,
        });
    }
    let ids = registry
        .deployment_ids(app, group)
        .await
        .map_err(internal("listing the deployments"))?;
    let filtered = !input.include_only_statuses.is_empty() || input.create_time_range.is_some();
    let mut names = Vec::with_capacity(ids.len());
    for id in ids {
        if filtered {
            let Some(d) = registry
                .deployment(&id)
                .await
                .map_err(internal("reading the deployment"))?
            else {
                continue;
            };
            let statuses = &input.include_only_statuses;
            if !statuses.is_empty() && !statuses.contains(&d.status()) {
                continue;
            }
            if let Some(range) = &input.create_time_range
                && (range.start.is_some_and(|s| d.create_time < s)
                    || range.end.is_some_and(|e| d.create_time > e))
            {
                continue;
            }
        }
        names.push(id.to_string());
    }
    let (deployments, next_token) = page(names, input.next_token.as_deref())?;
    Ok(ListOutput {
        deployments,
        next_token,
    })
}

// ----- targets ----------------------------------------------------------------------------

fn target<'a>(
    d: &'a Deployment,
    id: &str,
    exception: &'static str,
) -> Result<&'a Target, ApiError> {
    d.target(&TargetId::new(id)).ok_or_else(|| {
        ApiError::codedeploy(
            exception,
            format!(
                "The target {id} is not part of deployment {}.",
                d.deployment_id
            ),
        )
    })
}

fn summary(d: &Deployment, t: &Target) -> InstanceSummary {
    InstanceSummary {
        deployment_id: d.deployment_id.clone(),
        instance_id: t.target_id.clone(),
        status: t.status,
        last_updated_at: t.last_updated_at,
        lifecycle_events: t.lifecycle_events.clone(),
        instance_type: t.instance_label,
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListTargetsInput {
    deployment_id: Option<String>,
    next_token: Option<String>,
    #[serde(default)]
    target_filters: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTargetsOutput {
    target_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// Whether `t` passes the filters: statuses, and blue/green labels.
fn passes(t: &Target, statuses: &[TargetStatus], labels: &[TargetLabel]) -> bool {
    (statuses.is_empty() || statuses.contains(&t.status))
        && (labels.is_empty() || t.instance_label.is_some_and(|l| labels.contains(&l)))
}

/// Target statuses, refused with `InvalidInstanceStatusException` as CodeDeploy does.
fn parse_statuses(values: &[String]) -> Result<Vec<TargetStatus>, ApiError> {
    parse_all(values, "target status", "InvalidInstanceStatusException")
}

/// Blue/green labels, refused with `InvalidInstanceTypeException` as CodeDeploy does.
fn parse_labels(values: &[String]) -> Result<Vec<TargetLabel>, ApiError> {
    parse_all(
        values,
        "instance type (Blue or Green)",
        "InvalidInstanceTypeException",
    )
}

fn parse_all<T: std::str::FromStr>(
    values: &[String],
    what: &str,
    exception: &'static str,
) -> Result<Vec<T>, ApiError> {
    values
        .iter()
        .map(|v| {
            v.parse()
                .map_err(|_| ApiError::codedeploy(exception, format!("'{v}' is not a {what}")))
        })
        .collect()
}

pub async fn list_targets(
    registry: &impl Registry,
    input: ListTargetsInput,
) -> Result<ListTargetsOutput, ApiError> {
    let id = deployment_id(input.deployment_id.as_deref())?;
    let d = deployment(registry, &id).await?;
    let mut statuses = Vec::new();
    let mut labels = Vec::new();
    for (key, values) in &input.target_filters {
        match key.as_str() {
            "TargetStatus" => statuses = parse_statuses(values)?,
            "ServerInstanceLabel" => labels = parse_labels(values)?,
            other => {
                return Err(ApiError::codedeploy(
                    "InvalidTargetFilterNameException",
                    format!(
                        "'{other}' is not a target filter: use TargetStatus or ServerInstanceLabel"
                    ),
                ));
            }
        }
    }
    let ids = d
        .targets
        .iter()
        .filter(|t| passes(t, &statuses, &labels))
        .map(|t| t.target_id.to_string())
        .collect();
    let (target_ids, next_token) = page(ids, input.next_token.as_deref())?;
    Ok(ListTargetsOutput {
        target_ids,
        next_token,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetTargetInput {
    deployment_id: Option<String>,
    target_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetTargetOutput {
    deployment_target: DeploymentTarget,
}

fn target_id(value: Option<&str>) -> Result<&str, ApiError> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| {
        ApiError::codedeploy(
            "DeploymentTargetIdRequiredException",
            "The target ID must be specified.",
        )
    })
}

pub async fn get_target(
    registry: &impl Registry,
    input: GetTargetInput,
) -> Result<GetTargetOutput, ApiError> {
    let id = deployment_id(input.deployment_id.as_deref())?;
    let wanted = target_id(input.target_id.as_deref())?;
    let d = deployment(registry, &id).await?;
    let t = target(&d, wanted, "DeploymentTargetDoesNotExistException")?;
    Ok(GetTargetOutput {
        deployment_target: d.deployment_target(t),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchGetTargetsInput {
    deployment_id: Option<String>,
    target_ids: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetTargetsOutput {
    deployment_targets: Vec<DeploymentTarget>,
}

pub async fn batch_get_targets(
    registry: &impl Registry,
    input: BatchGetTargetsInput,
) -> Result<BatchGetTargetsOutput, ApiError> {
    let id = deployment_id(input.deployment_id.as_deref())?;
    let wanted = batch(
        input.target_ids,
        "target IDs",
        MAX_BATCH,
        "DeploymentTargetIdRequiredException",
    )?;
    let d = deployment(registry, &id).await?;
    let deployment_targets = wanted
        .iter()
        .map(|w| {
            target(&d, w, "DeploymentTargetDoesNotExistException").map(|t| d.deployment_target(t))
        })
        .collect::<Result<_, _>>()?;
    Ok(BatchGetTargetsOutput { deployment_targets })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInstancesInput {
    deployment_id: Option<String>,
    next_token: Option<String>,
    #[serde(default)]
    instance_status_filter: Vec<String>,
    #[serde(default)]
    instance_type_filter: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListInstancesOutput {
    instances_list: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub async fn list_instances(
    registry: &impl Registry,
    input: ListInstancesInput,
) -> Result<ListInstancesOutput, ApiError> {
    let id = deployment_id(input.deployment_id.as_deref())?;
    let d = deployment(registry, &id).await?;
    let statuses = parse_statuses(&input.instance_status_filter)?;
    let labels = parse_labels(&input.instance_type_filter)?;
    let ids = d
        .targets
        .iter()
        .filter(|t| passes(t, &statuses, &labels))
        .map(|t| t.target_id.to_string())
        .collect();
    let (instances_list, next_token) = page(ids, input.next_token.as_deref())?;
    Ok(ListInstancesOutput {
        instances_list,
        next_token,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetInstanceInput {
    deployment_id: Option<String>,
    instance_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetInstanceOutput {
    instance_summary: InstanceSummary,
}

pub async fn get_instance(
    registry: &impl Registry,
    input: GetInstanceInput,
) -> Result<GetInstanceOutput, ApiError> {
    let id = deployment_id(input.deployment_id.as_deref())?;
    let wanted = input
        .instance_id
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ApiError::codedeploy(
                "InstanceIdRequiredException",
                "The instance ID must be specified.",
            )
        })?;
    let d = deployment(registry, &id).await?;
    let t = target(&d, wanted, "InstanceDoesNotExistException")?;
    Ok(GetInstanceOutput {
        instance_summary: summary(&d, t),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchGetInstancesInput {
    deployment_id: Option<String>,
    instance_ids: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetInstancesOutput {
    instances_summary: Vec<InstanceSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
}

pub async fn batch_get_instances(
    registry: &impl Registry,
    input: BatchGetInstancesInput,
) -> Result<BatchGetInstancesOutput, ApiError> {
    let id = deployment_id(input.deployment_id.as_deref())?;
    let wanted = batch(
        input.instance_ids,
        "instance IDs",
        MAX_BATCH,
        "InstanceIdRequiredException",
    )?;
    let d = deployment(registry, &id).await?;
    let mut instances_summary = Vec::new();
    let mut missing = Vec::new();
    for w in &wanted {
        match d.target(&TargetId::new(w.as_str())) {
            Some(t) => instances_summary.push(summary(&d, t)),
            None => missing.push(w.as_str()),
        }
    }
    let error_message = (!missing.is_empty())
        .then(|| format!("Not part of deployment {id}: {}", missing.join(", ")));
    Ok(BatchGetInstancesOutput {
        instances_summary,
        error_message,
    })
}

// ----- changing a deployment ---------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StopInput {
    deployment_id: Option<String>,
    auto_rollback_enabled: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StopOutput {
    status: &'static str,
    status_message: String,
}

/// StopDeployment: `Pending` while the hosts reach a safe point, `Succeeded` once stopped.
pub async fn stop(
    registry: &impl Registry,
    deployer: &impl Deployer,
    input: StopInput,
) -> Result<StopOutput, ApiError> {
    let id = deployment_id(input.deployment_id.as_deref())?;
    let d = deployment(registry, &id).await?;
    if d.is_finished() {
        return Err(ApiError::codedeploy(
            "DeploymentAlreadyCompletedException",
            format!(
                "The deployment {id} has already completed ({}).",
                d.status()
            ),
        ));
    }
    let d = deployer
        .stop(&id, input.auto_rollback_enabled)
        .await
        .map_err(internal("stopping the deployment"))?;
    Ok(if d.is_finished() {
        StopOutput {
            status: "Succeeded",
            status_message: format!("Deployment {id} is {}.", d.status()),
        }
    } else {
        StopOutput {
            status: "Pending",
            status_message: format!(
                "Deployment {id} stops once the hosts it is updating reach a safe point."
            ),
        }
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContinueInput {
    deployment_id: Option<String>,
    deployment_wait_type: Option<String>,
}

/// What a blue/green deployment's wait is for, in words.
fn wait_purpose(wait: DeploymentWaitType) -> &'static str {
    match wait {
        DeploymentWaitType::ReadyWait => "its ready wait, before traffic is rerouted",
        DeploymentWaitType::TerminationWait => {
            "its termination wait, before the original instances are let go"
        }
    }
}

/// Refuses, as CodeDeploy does, to continue a deployment that is over or not blue/green.
fn continuable(d: &Deployment) -> Result<(), ApiError> {
    let id = &d.deployment_id;
    if d.is_finished() {
        return Err(ApiError::codedeploy(
            "DeploymentAlreadyCompletedException",
            format!(
                "The deployment {id} has already completed ({}).",
                d.status()
            ),
        ));
    }
    if !d.is_blue_green() {
        let kind = match d.group.compute_platform {
            ComputePlatform::Server => "an in-place deployment".to_owned(),
            platform => format!("a {platform} deployment"),
        };
        return Err(ApiError::codedeploy(
            "UnsupportedActionForDeploymentTypeException",
            format!(
                "The deployment {id} is {kind}; only a blue/green deployment to instances waits to be continued."
            ),
        ));
    }
    Ok(())
}

/// Ends the wait `wait` of the blue/green deployment `d`, refusing as CodeDeploy does if it is
/// not in that wait.
async fn end_wait(
    deployer: &impl Deployer,
    d: &Deployment,
    wait: DeploymentWaitType,
) -> Result<(), ApiError> {
    let id = &d.deployment_id;
    match d.waiting_for() {
        Some(waiting) if waiting == wait => {}
        Some(waiting) => {
            return Err(ApiError::codedeploy(
                "DeploymentIsNotInReadyStateException",
                format!(
                    "The deployment {id} is not in {} ({wait}): it is in {} ({waiting}); continue it with deploymentWaitType {waiting}.",
                    wait_purpose(wait),
                    wait_purpose(waiting),
                ),
            ));
        }
        None => {
            return Err(ApiError::codedeploy(
                "DeploymentIsNotInReadyStateException",
                format!(
                    "The deployment {id} is not in {} ({wait}): it is {} and waits for nothing that can be continued now.",
                    wait_purpose(wait),
                    d.status()
                ),
            ));
        }
    }
    deployer
        .continue_deployment(id, wait)
        .await
        .map_err(internal("continuing the deployment"))?;
    Ok(())
}

/// ContinueDeployment: ends a blue/green deployment's ready wait (`READY_WAIT`, the default),
/// rerouting traffic at once, or its termination wait (`TERMINATION_WAIT`), letting the
/// original instances go at once.
pub async fn continue_(
    registry: &impl Registry,
    deployer: &impl Deployer,
    input: ContinueInput,
) -> Result<(), ApiError> {
    let wait = match input.deployment_wait_type.as_deref() {
        None => DeploymentWaitType::ReadyWait,
        Some(text) => text.parse().map_err(|_| {
            ApiError::codedeploy(
                "InvalidDeploymentWaitTypeException",
                format!(
                    "'{text}' is not a deployment wait type: use READY_WAIT (the default) or TERMINATION_WAIT"
                ),
            )
        })?,
    };
    let id = deployment_id(input.deployment_id.as_deref())?;
    let d = deployment(registry, &id).await?;
    continuable(&d)?;
    end_wait(deployer, &d, wait).await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SkipWaitInput {
    deployment_id: Option<String>,
}

/// SkipWaitTimeForInstanceTermination, CodeDeploy's older name for ContinueDeployment with
/// `TERMINATION_WAIT`: lets a blue/green deployment's original instances go at once.
pub async fn skip_wait_for_termination(
    registry: &impl Registry,
    deployer: &impl Deployer,
    input: SkipWaitInput,
) -> Result<(), ApiError> {
    let id = deployment_id(input.deployment_id.as_deref())?;
    let d = deployment(registry, &id).await?;
    continuable(&d)?;
    if matches!(
        d.status(),
        DeploymentStatus::Created | DeploymentStatus::Queued
    ) {
        return Err(ApiError::codedeploy(
            "DeploymentNotStartedException",
            format!(
                "The deployment {id} has not started ({}); its termination wait comes after traffic is rerouted.",
                d.status()
            ),
        ));
    }
    end_wait(deployer, &d, DeploymentWaitType::TerminationWait).await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateInput {
    application_name: Option<String>,
    deployment_group_name: Option<String>,
    revision: Option<RevisionLocation>,
    deployment_config_name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    ignore_application_stop_failures: bool,
    target_instances: Option<serde_json::Value>,
    auto_rollback_configuration: Option<AutoRollbackConfiguration>,
    #[serde(default)]
    update_outdated_instances_only: bool,
    file_exists_behavior: Option<FileExistsBehavior>,
    override_alarm_configuration: Option<AlarmConfiguration>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateOutput {
    deployment_id: DeploymentId,
}

/// The revision a Server deployment installs: an S3 bundle.
/// The revision of a deployment to a group of `platform`: an S3 bundle for servers; an AppSpec
/// in S3 or inline, checked here, for Lambda functions.
fn revision_for(
    revision: Option<RevisionLocation>,
    platform: ComputePlatform,
) -> Result<RevisionLocation, ApiError> {
    let revision = revision.ok_or_else(|| {
        ApiError::codedeploy(
            "RevisionRequiredException",
            "The revision must be specified.",
        )
    })?;
    let invalid = |message: String| ApiError::codedeploy("InvalidRevisionException", message);
    match (&revision, platform) {
        (RevisionLocation::S3(loc), _) if loc.bucket.is_empty() || loc.key.is_empty() => {
            Err(invalid("An S3 revision needs a bucket and a key.".into()))
        }
        (RevisionLocation::S3(_), ComputePlatform::Server | ComputePlatform::Lambda) => {
            Ok(revision)
        }
        (
            RevisionLocation::AppSpecContent(_) | RevisionLocation::String(_),
            ComputePlatform::Lambda,
        ) => match lambda_appspec(&revision, None) {
            Ok(_) => Ok(revision),
            Err(e) => Err(invalid(e.to_string())),
        },
        (_, ComputePlatform::Server) => Err(invalid(format!(
            "cutover deploys S3 revisions to Server groups; this revision is a {} revision",
            revision.revision_type()
        ))),
        (_, platform) => Err(invalid(format!(
            "a {platform} deployment's revision is an AppSpec in S3 or inline (AppSpecContent); this revision is a {} revision",
            revision.revision_type()
        ))),
    }
}

/// CreateDeployment's `targetInstances`: the existing instances a blue/green deployment to a
/// group that discovers its replacements (greenFleetProvisioningOption DISCOVER_EXISTING, the
/// default) takes as its replacement fleet. Any other group refuses them, as CodeDeploy does for
/// an in-place deployment, rather than ignore them.
fn target_instances(
    value: Option<serde_json::Value>,
    group: &DeploymentGroupInfo,
) -> Result<Option<TargetInstances>, ApiError> {
    let invalid =
        |message: String| ApiError::codedeploy("InvalidTargetInstancesException", message);
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let name = &group.deployment_group_name;
    let blue_green = group.compute_platform == ComputePlatform::Server
        && group.deployment_style.deployment_type == DeploymentType::BlueGreen;
    if !blue_green {
        return Err(invalid(format!(
            "targetInstances names the replacement instances of a blue/green deployment; deployment group {name} deploys in place to its own instances: leave out targetInstances"
        )));
    }
    let copies = group
        .blue_green_deployment_configuration
        .and_then(|c| c.green_fleet_provisioning_option)
        .is_some_and(|o| o.action == GreenFleetProvisioningAction::CopyAutoScalingGroup);
    if copies {
        return Err(invalid(format!(
            "deployment group {name} makes its replacement instances by copying its Auto Scaling group (greenFleetProvisioningOption COPY_AUTO_SCALING_GROUP); targetInstances names existing ones, for DISCOVER_EXISTING: leave out targetInstances"
        )));
    }
    const FIELDS: [&str; 3] = ["tagFilters", "autoScalingGroups", "ec2TagSet"];
    if let Some(unknown) = value
        .as_object()
        .and_then(|o| o.keys().find(|k| !FIELDS.contains(&k.as_str())))
    {
        return Err(invalid(format!(
            "targetInstances has no field '{unknown}': use tagFilters, ec2TagSet or autoScalingGroups"
        )));
    }
    let targets: TargetInstances = serde_json::from_value(value)
        .map_err(|e| invalid(format!("targetInstances is not valid: {e}")))?;
    if !targets.tag_filters.is_empty() && targets.ec2_tag_set.is_some() {
        return Err(invalid(
            "targetInstances: use either tagFilters or ec2TagSet, not both".into(),
        ));
    }
    Ok(Some(targets))
}

/// CreateDeployment: saves the deployment and queues its first step; whoever drives the
/// queue takes it from there.
pub async fn create(
    registry: &impl Registry,
    deployer: &impl Deployer,
    input: CreateInput,
    now: Timestamp,
) -> Result<CreateOutput, ApiError> {
    let app = application_name(input.application_name.as_deref())?;
    let group_name = group_name(input.deployment_group_name.as_deref())?;
    existing_application(registry, app).await?;
    let group = existing_group(registry, app, group_name).await?;
    let target_instances = target_instances(input.target_instances, &group)?;
    if input.update_outdated_instances_only {
        return Err(ApiError::codedeploy(
            "InvalidUpdateOutdatedInstancesOnlyValueException",
            "cutover does not track outdated instances yet; leave out updateOutdatedInstancesOnly",
        ));
    }
    let revision = revision_for(input.revision, group.compute_platform)?;
    let config_name = input
        .deployment_config_name
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| group.deployment_config_name.clone());
    let config = match cutover_core::config::predefined(&config_name) {
        Some(c) => c,
        None => registry
            .config(&config_name)
            .await
            .map_err(internal("reading the deployment configuration"))?
            .ok_or_else(|| {
                ApiError::codedeploy(
                    "DeploymentConfigDoesNotExistException",
                    format!("No deployment configuration found for name: {config_name}"),
                )
            })?,
    };
    if config.compute_platform != group.compute_platform {
        return Err(ApiError::codedeploy(
            "InvalidDeploymentConfigNameException",
            format!(
                "{config_name} is a {} configuration; group {group_name} deploys to {}",
                config.compute_platform, group.compute_platform
            ),
        ));
    }
    let mut request = CreateDeployment::new(
        DeploymentId::from_entropy(cutover_engine::ids::entropy()),
        group,
        config,
        revision,
    );
    request.creator = DeploymentCreator::User;
    request.description = input.description;
    request.ignore_application_stop_failures = input.ignore_application_stop_failures;
    request.file_exists_behavior = input.file_exists_behavior;
    request.auto_rollback_configuration = input.auto_rollback_configuration;
    request.override_alarm_configuration = input.override_alarm_configuration;
    request.target_instances = target_instances;
    if request.group.compute_platform == ComputePlatform::Lambda {
        request.bake_time_in_minutes = super::tags::group_bake_time(registry, app, group_name)
            .await
            .map_err(internal("reading the group's tags"))?;
    }
    let d = deployer
        .create(request)
        .await
        .map_err(internal("creating the deployment"))?;
    registry
        .revision_used(app, &d.revision, group_name, now)
        .await
        .map_err(internal("registering the deployment's revision"))?;
    Ok(CreateOutput {
        deployment_id: d.deployment_id,
    })
}

#[cfg(test)]
mod tests {
    use cutover_core::config;
    use cutover_core::machine::{FinalStatus, Phase};
    use cutover_core::model::{ApplicationInfo, S3Location};
    use serde_json::{Value, json};

    use super::*;
    use crate::testing::{MemoryRegistry, NOW};

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn target_filters_are_read_and_refused_with_codedeploys_exceptions() {
        assert_eq!(
            parse_statuses(&strings(&["Failed", "Succeeded"])).unwrap(),
            [TargetStatus::Failed, TargetStatus::Succeeded]
        );
        assert_eq!(
            parse_labels(&strings(&["Blue"])).unwrap(),
            [TargetLabel::Blue]
        );
        let e = parse_statuses(&strings(&["Succeeded", "Done"])).unwrap_err();
        assert_eq!(e.kind.name(), "InvalidInstanceStatusException");
        assert!(e.message.contains("'Done'"), "{}", e.message);
        let e = parse_labels(&strings(&["Purple"])).unwrap_err();
        assert_eq!(e.kind.name(), "InvalidInstanceTypeException");
    }

    fn blue_green_group(name: &str, green_fleet: &str) -> DeploymentGroupInfo {
        serde_json::from_value(json!({
            "applicationName": "Shop",
            "deploymentGroupName": name,
            "deploymentGroupId": name,
            "deploymentConfigName": "CodeDeployDefault.OneAtATime",
            "computePlatform": "Server",
            "deploymentStyle": {
                "deploymentType": "BLUE_GREEN",
                "deploymentOption": "WITH_TRAFFIC_CONTROL"
            },
            "loadBalancerInfo": {"targetGroupInfoList": [{"name": "web"}]},
            "blueGreenDeploymentConfiguration": {
                "terminateBlueInstancesOnDeploymentSuccess": {
                    "action": "TERMINATE",
                    "terminationWaitTimeInMinutes": 60
                },
                "deploymentReadyOption": {
                    "actionOnTimeout": "STOP_DEPLOYMENT",
                    "waitTimeInMinutes": 60
                },
                "greenFleetProvisioningOption": {"action": green_fleet}
            }
        }))
        .unwrap()
    }

    fn in_place_group(name: &str) -> DeploymentGroupInfo {
        DeploymentGroupInfo {
            application_name: "Shop".into(),
            deployment_group_name: name.into(),
            deployment_group_id: name.into(),
            deployment_config_name: config::DEFAULT_SERVER_CONFIG.into(),
            ..Default::default()
        }
    }

    /// Application Shop with groups Blue (blue/green, copying its Auto Scaling group), Found
    /// (blue/green, discovering its replacements) and Web (in place).
    async fn shop() -> MemoryRegistry {
        let r = MemoryRegistry::default();
        let app = ApplicationInfo {
            application_id: "shop".into(),
            application_name: "Shop".into(),
            create_time: NOW,
            linked_to_git_hub: false,
            git_hub_account_name: None,
            compute_platform: ComputePlatform::Server,
        };
        assert!(r.create_application(&app).await.unwrap());
        for g in [
            blue_green_group("Blue", "COPY_AUTO_SCALING_GROUP"),
            blue_green_group("Found", "DISCOVER_EXISTING"),
            in_place_group("Web"),
        ] {
            assert!(r.create_group(&g).await.unwrap());
        }
        r
    }

    fn revision() -> RevisionLocation {
        RevisionLocation::S3(S3Location {
            bucket: "revisions".into(),
            key: "web.zip".into(),
            bundle_type: None,
            version: None,
            e_tag: None,
        })
    }

    /// A deployment `n` of `group`, saved in `phase`.
    async fn deployment_in(r: &MemoryRegistry, n: u64, group: &str, phase: Phase) -> DeploymentId {
        let group = r.group("Shop", group).await.unwrap().unwrap();
        let config = config::predefined(&group.deployment_config_name).unwrap();
        let request =
            CreateDeployment::new(DeploymentId::from_entropy(n), group, config, revision());
        let mut d = Deployment::create(request, NOW).unwrap();
        d.phase = phase;
        let id = d.deployment_id.clone();
        r.put_deployment(d);
        id
    }

    async fn continued(r: &MemoryRegistry, input: Value) -> Result<(), ApiError> {
        continue_(r, r, serde_json::from_value(input).unwrap()).await
    }

    async fn skipped(r: &MemoryRegistry, id: &DeploymentId) -> Result<(), ApiError> {
        let input = serde_json::from_value(json!({ "deploymentId": id })).unwrap();
        skip_wait_for_termination(r, r, input).await
    }

    async fn saved(r: &MemoryRegistry, id: &DeploymentId) -> Deployment {
        r.deployment(id).await.unwrap().unwrap()
    }

    fn refused(result: Result<(), ApiError>, exception: &str, says: &str) {
        let e = result.expect_err(exception);
        assert_eq!(e.kind.name(), exception, "{}", e.message);
        assert!(e.message.contains(says), "{}", e.message);
    }

    #[tokio::test]
    async fn continue_ends_the_wait_a_blue_green_deployment_is_in_and_no_other() {
        let r = shop().await;
        let until = NOW + std::time::Duration::from_secs(3600);
        let id = deployment_in(&r, 1, "Blue", Phase::WaitingForReroute { until }).await;

        // Waiting to reroute: TERMINATION_WAIT is not the wait it is in.
        let termination = json!({ "deploymentId": id, "deploymentWaitType": "TERMINATION_WAIT" });
        refused(
            continued(&r, termination.clone()).await,
            "DeploymentIsNotInReadyStateException",
            "it is in its ready wait, before traffic is rerouted (READY_WAIT)",
        );
        refused(
            skipped(&r, &id).await,
            "DeploymentIsNotInReadyStateException",
            "deploymentWaitType READY_WAIT",
        );
        assert_eq!(saved(&r, &id).await.status(), DeploymentStatus::Ready);

        // READY_WAIT, the default, reroutes; the deployment waits to terminate the originals.
        continued(&r, json!({ "deploymentId": id })).await.unwrap();
        let d = saved(&r, &id).await;
        assert_eq!(d.waiting_for(), Some(DeploymentWaitType::TerminationWait));
        let ready = json!({ "deploymentId": id, "deploymentWaitType": "READY_WAIT" });
        refused(
            continued(&r, ready.clone()).await,
            "DeploymentIsNotInReadyStateException",
            "continue it with deploymentWaitType TERMINATION_WAIT",
        );

        // GetDeployment describes the blue/green deployment as CodeDeploy does.
        let input = serde_json::from_value(json!({ "deploymentId": id })).unwrap();
        let info =
            serde_json::to_value(get(&r, input).await.unwrap()).unwrap()["deploymentInfo"].clone();
        assert_eq!(info["instanceTerminationWaitTimeStarted"], true, "{info}");
        assert_eq!(
            info["deploymentStyle"]["deploymentType"], "BLUE_GREEN",
            "{info}"
        );
        assert_eq!(
            info["blueGreenDeploymentConfiguration"]["deploymentReadyOption"]["actionOnTimeout"],
            "STOP_DEPLOYMENT",
            "{info}"
        );

        // SkipWaitTimeForInstanceTermination lets the originals go at once.
        skipped(&r, &id).await.unwrap();
        assert_eq!(saved(&r, &id).await.phase, Phase::ReleasingOriginals);
        refused(
            continued(&r, termination).await,
            "DeploymentIsNotInReadyStateException",
            "it is InProgress and waits for nothing that can be continued now",
        );
    }

    #[tokio::test]
    async fn continue_refuses_what_cannot_be_continued_with_codedeploys_exceptions() {
        let r = shop().await;
        let until = NOW + std::time::Duration::from_secs(3600);
        let waiting = deployment_in(&r, 1, "Blue", Phase::WaitingForReroute { until }).await;
        refused(
            continued(
                &r,
                json!({ "deploymentId": waiting, "deploymentWaitType": "NOW" }),
            )
            .await,
            "InvalidDeploymentWaitTypeException",
            "'NOW' is not a deployment wait type: use READY_WAIT (the default) or TERMINATION_WAIT",
        );
        refused(
            continued(&r, json!({})).await,
            "DeploymentIdRequiredException",
            "must be specified",
        );
        refused(
            continued(&r, json!({ "deploymentId": "nope" })).await,
            "InvalidDeploymentIdException",
            "nope",
        );
        let unknown = DeploymentId::from_entropy(99);
        refused(
            continued(&r, json!({ "deploymentId": unknown })).await,
            "DeploymentDoesNotExistException",
            unknown.as_str(),
        );
        refused(
            skipped(&r, &unknown).await,
            "DeploymentDoesNotExistException",
            "",
        );

        let in_place = deployment_in(&r, 2, "Web", Phase::Created).await;
        for result in [
            continued(&r, json!({ "deploymentId": in_place })).await,
            skipped(&r, &in_place).await,
        ] {
            refused(
                result,
                "UnsupportedActionForDeploymentTypeException",
                "is an in-place deployment; only a blue/green deployment to instances waits to be continued",
            );
        }

        let done = Phase::Finished {
            status: FinalStatus::Succeeded,
        };
        let done = deployment_in(&r, 3, "Blue", done).await;
        refused(
            continued(&r, json!({ "deploymentId": done })).await,
            "DeploymentAlreadyCompletedException",
            "has already completed (Succeeded)",
        );
        refused(
            skipped(&r, &done).await,
            "DeploymentAlreadyCompletedException",
            "",
        );

        let created = deployment_in(&r, 4, "Blue", Phase::Created).await;
        refused(
            skipped(&r, &created).await,
            "DeploymentNotStartedException",
            "has not started (Created)",
        );
        refused(
            continued(&r, json!({ "deploymentId": created })).await,
            "DeploymentIsNotInReadyStateException",
            "it is Created",
        );
    }

    #[tokio::test]
    async fn target_instances_name_the_replacements_of_a_blue_green_deployment_that_discovers_them()
    {
        let r = shop().await;
        let targets =
            json!({"tagFilters": [{"Key": "Color", "Value": "green", "Type": "KEY_AND_VALUE"}]});
        let create_in = |group: &str, targets: Value| {
            let input = serde_json::from_value(json!({
                "applicationName": "Shop",
                "deploymentGroupName": group,
                "revision": {
                    "revisionType": "S3",
                    "s3Location": {"bucket": "revisions", "key": "web.zip", "bundleType": "zip"}
                },
                "targetInstances": targets,
            }))
            .unwrap();
            create(&r, &r, input, NOW)
        };
        let out = create_in("Found", targets.clone()).await.unwrap();
        let d = saved(&r, &out.deployment_id).await;
        assert_eq!(
            serde_json::to_value(&d.options.target_instances).unwrap(),
            targets
        );
        assert_eq!(
            serde_json::to_value(d.info()).unwrap()["targetInstances"],
            targets
        );

        let refusals = [
            (
                "Web",
                targets.clone(),
                "deploys in place to its own instances",
            ),
            ("Blue", targets.clone(), "COPY_AUTO_SCALING_GROUP"),
            (
                "Found",
                json!({"instanceIds": ["i-1"]}),
                "no field 'instanceIds'",
            ),
            (
                "Found",
                json!({"autoScalingGroups": "green"}),
                "targetInstances is not valid",
            ),
            (
                "Found",
                json!({"tagFilters": targets["tagFilters"], "ec2TagSet": {"ec2TagSetList": []}}),
                "either tagFilters or ec2TagSet",
            ),
        ];
        for (group, targets, says) in refusals {
            let result = create_in(group, targets).await.map(drop);
            refused(result, "InvalidTargetInstancesException", says);
        }
        // Without targetInstances, every group deploys.
        create_in("Web", Value::Null).await.unwrap();
    }
}
