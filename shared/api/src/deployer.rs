//! The deployer port: what the API asks of the engine, for the operations that change a
//! deployment. [`cutover_engine::Engine`] implements it over any ports.

use std::future::Future;

use cutover_core::DeploymentId;
use cutover_core::machine::{CreateDeployment, Deployment, HookStatus};
use cutover_core::model::DeploymentWaitType;
use cutover_engine::{Engine, EngineError, HookReport, PortError, Ports};

/// Changes deployments on the API's behalf.
pub trait Deployer: Send + Sync {
    /// Saves a new deployment and queues its first step, as CreateDeployment does.
    fn create(
        &self,
        request: CreateDeployment,
    ) -> impl Future<Output = Result<Deployment, PortError>> + Send;

    /// Asks a deployment to stop, as StopDeployment does; the deployment as saved after.
    fn stop(
        &self,
        id: &DeploymentId,
        auto_rollback_enabled: Option<bool>,
    ) -> impl Future<Output = Result<Deployment, PortError>> + Send;

    /// Ends the wait `wait` of a blue/green deployment, as ContinueDeployment does; the
    /// deployment as saved after. A deployment not in that wait is left as it is.
    fn continue_deployment(
        &self,
        id: &DeploymentId,
        wait: DeploymentWaitType,
    ) -> impl Future<Output = Result<Deployment, PortError>> + Send;

    /// Records what a hook function reported, as PutLifecycleEventHookExecutionStatus does.
    fn report_hook(
        &self,
        id: &DeploymentId,
        execution_id: &str,
        status: HookStatus,
    ) -> impl Future<Output = Result<HookReport, PortError>> + Send;
}

/// An engine error, as the port error the API reports.
fn port_error(e: EngineError) -> PortError {
    match e {
        EngineError::Port { source, .. } => source,
        other if other.is_retryable() => PortError::transient(other.to_string()),
        other => PortError::permanent(other.to_string()),
    }
}

impl<P: Ports> Deployer for Engine<P> {
    async fn create(&self, request: CreateDeployment) -> Result<Deployment, PortError> {
        Engine::create(self, request).await.map_err(port_error)
    }

    async fn stop(
        &self,
        id: &DeploymentId,
        auto_rollback_enabled: Option<bool>,
    ) -> Result<Deployment, PortError> {
        Engine::stop(self, id, auto_rollback_enabled)
            .await
            .map_err(port_error)
    }

    async fn continue_deployment(
        &self,
        id: &DeploymentId,
        wait: DeploymentWaitType,
    ) -> Result<Deployment, PortError> {
        Engine::continue_deployment(self, id, wait)
            .await
            .map_err(port_error)
    }

    async fn report_hook(
        &self,
        id: &DeploymentId,
        execution_id: &str,
        status: HookStatus,
    ) -> Result<HookReport, PortError> {
        Engine::report_hook(self, id, execution_id, status)
            .await
            .map_err(port_error)
    }
}

impl<T: Deployer + ?Sized> Deployer for std::sync::Arc<T> {
    fn create(
        &self,
        request: CreateDeployment,
    ) -> impl Future<Output = Result<Deployment, PortError>> + Send {
        (**self).create(request)
    }

    fn stop(
        &self,
        id: &DeploymentId,
        auto_rollback_enabled: Option<bool>,
    ) -> impl Future<Output = Result<Deployment, PortError>> + Send {
        (**self).stop(id, auto_rollback_enabled)
    }

    fn continue_deployment(
        &self,
        id: &DeploymentId,
        wait: DeploymentWaitType,
    ) -> impl Future<Output = Result<Deployment, PortError>> + Send {
        (**self).continue_deployment(id, wait)
    }

    fn report_hook(
        &self,
        id: &DeploymentId,
        execution_id: &str,
        status: HookStatus,
    ) -> impl Future<Output = Result<HookReport, PortError>> + Send {
        (**self).report_hook(id, execution_id, status)
    }
}
