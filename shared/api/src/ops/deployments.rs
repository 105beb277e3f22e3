//! Reading deployments and their targets: GetDeployment, BatchGetDeployments, ListDeployments,
//! ListDeploymentTargets, GetDeploymentTarget, BatchGetDeploymentTargets, and the older
//! ListDeploymentInstances, GetDeploymentInstance and BatchGetDeploymentInstances; and
//! CreateDeployment, StopDeployment and ContinueDeployment.

use cutover_core::machine::{CreateDeployment, Deployment, Target, lambda_appspec};
use cutover_core::model::{
    AlarmConfiguration, AutoRollbackConfiguration, ComputePlatform, DeploymentCreator,
    DeploymentInfo, DeploymentStatus, DeploymentTarget, FileExistsBehavior, InstanceSummary,
    RevisionLocation, TargetLabel, TargetStatus,
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

/// ContinueDeployment: only a blue/green deployment waits to be continued, and cutover runs
/// in-place deployments for now.
pub async fn continue_(registry: &impl Registry, input: ContinueInput) -> Result<(), ApiError> {
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
    let _ = input.deployment_wait_type;
    Err(ApiError::codedeploy(
        "DeploymentIsNotInReadyStateException",
        format!(
            "The deployment {id} is not waiting to be continued: only blue/green deployments wait (READY_WAIT or TERMINATION_WAIT)."
        ),
    ))
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
    if input.target_instances.is_some() {
        return Err(ApiError::codedeploy(
            "InvalidTargetInstancesException",
            "cutover deploys to the whole group for now; leave out targetInstances",
        ));
    }
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
    use super::*;

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
}
