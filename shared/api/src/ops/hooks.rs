//! PutLifecycleEventHookExecutionStatus: a hook function of a Lambda deployment reports how it
//! ended. The execution id it was invoked with is its authority, so the request needs no
//! signature of cutover's keys.

use cutover_core::machine::HookStatus;
use cutover_core::model::ComputePlatform;
use cutover_engine::HookReport;
use serde::{Deserialize, Serialize};

use super::deployments::{deployment, deployment_id};
use super::internal;
use crate::deployer::Deployer;
use crate::registry::Registry;
use crate::wire::ApiError;

/// The longest execution id accepted; the ids cutover gives out are far shorter.
const MAX_EXECUTION_ID: usize = 256;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutStatusInput {
    deployment_id: Option<String>,
    lifecycle_event_hook_execution_id: Option<String>,
    status: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutStatusOutput {
    lifecycle_event_hook_execution_id: String,
}

pub async fn put_status(
    registry: &impl Registry,
    deployer: &impl Deployer,
    input: PutStatusInput,
) -> Result<PutStatusOutput, ApiError> {
    let id = deployment_id(input.deployment_id.as_deref())?;
    let execution_id = input
        .lifecycle_event_hook_execution_id
        .filter(|x| !x.is_empty() && x.len() <= MAX_EXECUTION_ID)
        .ok_or_else(|| {
            ApiError::codedeploy(
                "InvalidLifecycleEventHookExecutionIdException",
                "lifecycleEventHookExecutionId must be the LifecycleEventHookExecutionId the hook function was invoked with.",
            )
        })?;
    let status = match input.status.as_deref() {
        Some("Succeeded") => HookStatus::Succeeded,
        Some("Failed") => HookStatus::Failed,
        other => {
            return Err(ApiError::codedeploy(
                "InvalidLifecycleEventHookExecutionStatusException",
                format!(
                    "status must be Succeeded or Failed, not {}",
                    other.map_or("missing".to_owned(), |s| format!("'{s}'"))
                ),
            ));
        }
    };
    let d = deployment(registry, &id).await?;
    if d.group.compute_platform == ComputePlatform::Server {
        return Err(ApiError::codedeploy(
            "UnsupportedActionForDeploymentTypeException",
            format!(
                "Deployment {id} deploys to servers, whose hooks are scripts; only Lambda and ECS deployments invoke hook functions."
            ),
        ));
    }
    match deployer
        .report_hook(&id, &execution_id, status)
        .await
        .map_err(internal("recording the hook's status"))?
    {
        HookReport::Accepted => Ok(PutStatusOutput {
            lifecycle_event_hook_execution_id: execution_id,
        }),
        HookReport::AlreadyCompleted => Err(ApiError::codedeploy(
            "LifecycleEventAlreadyCompletedException",
            format!(
                "The lifecycle event of this hook execution has already completed in deployment {id}."
            ),
        )),
        HookReport::UnknownExecution => Err(ApiError::codedeploy(
            "InvalidLifecycleEventHookExecutionIdException",
            format!(
                "Deployment {id} gave no hook function the execution id given; pass the LifecycleEventHookExecutionId of the invocation's event."
            ),
        )),
    }
}
