//! Trigger notifications, written as structured log lines: every state change a group's
//! triggers would publish, with the deployment and target it concerns.

use cutover_core::TargetId;
use cutover_core::machine::Deployment;
use cutover_core::model::TriggerEventType;
use cutover_engine::{Notifier, PortError};

/// Logs each notification at info level, under the target `cutover::notify`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogNotifier;

impl Notifier for LogNotifier {
    async fn notify(
        &self,
        d: &Deployment,
        event: TriggerEventType,
        target: Option<&TargetId>,
    ) -> Result<(), PortError> {
        tracing::info!(
            target: "cutover::notify",
            deployment_id = %d.deployment_id,
            application = %d.application_name,
            group = %d.group.deployment_group_name,
            status = %d.status(),
            event = %event,
            instance = target.map(TargetId::as_str),
            "{event}"
        );
        Ok(())
    }
}
