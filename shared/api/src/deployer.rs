//! The deployer port: what the API asks of the engine, for the operations that change a
//! deployment. [`cutover_engine::Engine`] implements it over any ports.

use std::future::Future;

use cutover_core::DeploymentId;
use cutover_core::machine::Deployment;
use cutover_engine::{Engine, EngineError, PortError, Ports};

/// Changes deployments on the API's behalf.
pub trait Deployer: Send + Sync {
    /// Asks a deployment to stop, as StopDeployment does; the deployment as saved after.
    fn stop(
        &self,
        id: &DeploymentId,
        auto_rollback_enabled: Option<bool>,
    ) -> impl Future<Output = Result<Deployment, PortError>> + Send;
}

impl<P: Ports> Deployer for Engine<P> {
    async fn stop(
        &self,
        id: &DeploymentId,
        auto_rollback_enabled: Option<bool>,
    ) -> Result<Deployment, PortError> {
        Engine::stop(self, id, auto_rollback_enabled)
            .await
            .map_err(|e| match e {
                EngineError::Port { source, .. } => source,
                other if other.is_retryable() => PortError::transient(other.to_string()),
                other => PortError::permanent(other.to_string()),
            })
    }
}

impl<T: Deployer + ?Sized> Deployer for std::sync::Arc<T> {
    fn stop(
        &self,
        id: &DeploymentId,
        auto_rollback_enabled: Option<bool>,
    ) -> impl Future<Output = Result<Deployment, PortError>> + Send {
        (**self).stop(id, auto_rollback_enabled)
    }
}
