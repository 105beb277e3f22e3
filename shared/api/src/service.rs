//! [`Api`]: one request in, one answer out. It checks the request's size and signature, then
//! routes its operation to the handler that implements it.

use std::sync::Arc;
use std::time::SystemTime;

use cutover_core::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::deployer::Deployer;
use crate::ops::{applications, configs, deployments, groups, hooks, instances, revisions, tags};
use crate::registry::Registry;
use crate::sigv4::{self, AccessKey};
use crate::wire::{ApiError, ApiRequest, ApiResponse, ErrorKind, MAX_BODY};

/// The service name requests are signed for.
pub const SERVICE: &str = "codedeploy";

/// CodeDeploy's API over a registry and a deployer, for the holders of `keys`.
#[derive(Debug)]
pub struct Api<R, D> {
    registry: Arc<R>,
    deployer: D,
    keys: Vec<AccessKey>,
}

impl<R: Registry, D: Deployer> Api<R, D> {
    pub fn new(registry: Arc<R>, deployer: D, keys: Vec<AccessKey>) -> Self {
        Api {
            registry,
            deployer,
            keys,
        }
    }

    /// Answers one request, received at `now`.
    pub async fn handle(&self, request: &ApiRequest, now: SystemTime) -> ApiResponse {
        match self.answer(request, now).await {
            Ok(response) => response,
            Err(e) => e.into(),
        }
    }

    async fn answer(&self, request: &ApiRequest, now: SystemTime) -> Result<ApiResponse, ApiError> {
        if request.body.len() > MAX_BODY {
            return Err(ApiError::new(
                ErrorKind::RequestTooLarge,
                format!(
                    "the request body is {} bytes; the most cutover accepts is {MAX_BODY}",
                    request.body.len()
                ),
            ));
        }
        if !request.method.eq_ignore_ascii_case("POST") {
            return Err(ApiError::new(
                ErrorKind::UnknownOperation,
                format!(
                    "{} is not how CodeDeploy's API is called: send POST / with X-Amz-Target: CodeDeploy_20141006.<Operation>",
                    request.method
                ),
            ));
        }
        let r = &*self.registry;
        // A hook function signs with its own role's credentials, which cutover does not know;
        // the execution id it was invoked with is its authority instead.
        if request.operation()? == "PutLifecycleEventHookExecutionStatus" {
            return json(hooks::put_status(r, &self.deployer, input(request)?).await);
        }
        let signer = sigv4::verify(request, SERVICE, self.keys.as_slice(), now)?;
        let now = Timestamp::from(now);
        match request.operation()? {
            "CreateApplication" => json(applications::create(r, input(request)?, now).await),
            "GetApplication" => json(applications::get(r, input(request)?).await),
            "UpdateApplication" => json(applications::update(r, input(request)?).await),
            "DeleteApplication" => json(applications::delete(r, input(request)?).await),
            "ListApplications" => json(applications::list(r, input(request)?).await),
            "BatchGetApplications" => json(applications::batch_get(r, input(request)?).await),
            "CreateDeploymentGroup" => json(groups::create(r, input(request)?).await),
            "GetDeploymentGroup" => json(groups::get(r, input(request)?).await),
            "UpdateDeploymentGroup" => json(groups::update(r, input(request)?).await),
            "DeleteDeploymentGroup" => json(groups::delete(r, input(request)?).await),
            "ListDeploymentGroups" => json(groups::list(r, input(request)?).await),
            "BatchGetDeploymentGroups" => json(groups::batch_get(r, input(request)?).await),
            "GetDeployment" => json(deployments::get(r, input(request)?).await),
            "BatchGetDeployments" => json(deployments::batch_get(r, input(request)?).await),
            "ListDeployments" => json(deployments::list(r, input(request)?).await),
            "ListDeploymentTargets" => json(deployments::list_targets(r, input(request)?).await),
            "GetDeploymentTarget" => json(deployments::get_target(r, input(request)?).await),
            "BatchGetDeploymentTargets" => {
                json(deployments::batch_get_targets(r, input(request)?).await)
            }
            "ListDeploymentInstances" => {
                json(deployments::list_instances(r, input(request)?).await)
            }
            "GetDeploymentInstance" => json(deployments::get_instance(r, input(request)?).await),
            "BatchGetDeploymentInstances" => {
                json(deployments::batch_get_instances(r, input(request)?).await)
            }
            "CreateDeployment" => {
                json(deployments::create(r, &self.deployer, input(request)?, now).await)
            }
            "StopDeployment" => json(deployments::stop(r, &self.deployer, input(request)?).await),
            "ContinueDeployment" => json(
                deployments::continue_(r, &self.deployer, input(request)?)
                    .await
                    .map(|()| serde_json::json!({})),
            ),
            "SkipWaitTimeForInstanceTermination" => json(
                deployments::skip_wait_for_termination(r, &self.deployer, input(request)?)
                    .await
                    .map(|()| serde_json::json!({})),
            ),
            "RegisterApplicationRevision" => {
                json(revisions::register(r, input(request)?, now).await)
            }
            "GetApplicationRevision" => json(revisions::get(r, input(request)?).await),
            "ListApplicationRevisions" => json(revisions::list(r, input(request)?).await),
            "BatchGetApplicationRevisions" => json(revisions::batch_get(r, input(request)?).await),
            "TagResource" => json(tags::tag(r, input(request)?).await),
            "UntagResource" => json(tags::untag(r, input(request)?).await),
            "ListTagsForResource" => json(tags::list(r, input(request)?).await),
            "CreateDeploymentConfig" => json(configs::create(r, input(request)?, now).await),
            "GetDeploymentConfig" => json(configs::get(r, input(request)?).await),
            "DeleteDeploymentConfig" => json(configs::delete(r, input(request)?).await),
            "ListDeploymentConfigs" => json(configs::list(r, input(request)?).await),
            "RegisterOnPremisesInstance" => {
                json(instances::register(r, input(request)?, now, &signer.region).await)
            }
            "DeregisterOnPremisesInstance" => {
                json(instances::deregister(r, input(request)?, now).await)
            }
            "GetOnPremisesInstance" => json(instances::get(r, input(request)?).await),
            "ListOnPremisesInstances" => json(instances::list(r, input(request)?).await),
            "BatchGetOnPremisesInstances" => json(instances::batch_get(r, input(request)?).await),
            "AddTagsToOnPremisesInstances" => json(instances::add_tags(r, input(request)?).await),
            "RemoveTagsFromOnPremisesInstances" => {
                json(instances::remove_tags(r, input(request)?).await)
            }
            other => Err(ApiError::new(
                ErrorKind::UnknownOperation,
                format!("cutover does not implement the operation {other}"),
            )),
        }
    }
}

fn input<T: DeserializeOwned>(request: &ApiRequest) -> Result<T, ApiError> {
    request.input()
}

fn json(output: Result<impl Serialize, ApiError>) -> Result<ApiResponse, ApiError> {
    output.map(|o| ApiResponse::ok(&o))
}
