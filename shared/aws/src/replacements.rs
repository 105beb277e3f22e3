//! The replacement fleets of blue/green deployments in the cloud. The API does not create
//! BLUE_GREEN groups for hosts in the cloud yet, so no deployment of the stack reaches this
//! port; one that did would fail before anything is made, leaving its original hosts serving.

use cutover_core::TargetId;
use cutover_core::machine::Deployment;
use cutover_core::model::{ErrorCode, ErrorInformation};
use cutover_engine::{PortError, Provisioning, Replacements};

/// Refuses to provision, so that nothing is made and the original hosts keep serving.
#[derive(Clone, Copy, Debug, Default)]
pub struct CloudReplacements;

impl Replacements for CloudReplacements {
    async fn provision(&self, d: &Deployment) -> Result<Provisioning, PortError> {
        Ok(Provisioning::Failed(ErrorInformation::new(
            ErrorCode::MissingBlueGreenDeploymentConfiguration,
            format!(
                "deployment group '{}' is BLUE_GREEN, but the cloud stack deploys to hosts in place only; its original hosts were left as they are. Rehearse blue/green deployments with `cutover local deploy --blue-green`",
                d.group.deployment_group_name
            ),
        )))
    }

    async fn release(
        &self,
        _deployment: &Deployment,
        _originals: &[TargetId],
        _terminate: bool,
    ) -> Result<(), PortError> {
        Err(PortError::permanent(
            "the cloud stack provisions no replacement hosts, so it has no original hosts to let go",
        ))
    }

    /// Nothing was provisioned, so nothing is left to remove.
    async fn discard(
        &self,
        _deployment: &Deployment,
        _replacements: &[TargetId],
    ) -> Result<(), PortError> {
        Ok(())
    }
}
