//! Steps: the units of queued work between handlers. A step is a command for one deployment to
//! carry out, or an event to deliver to one.

use cutover_core::DeploymentId;
use cutover_core::machine::{Command, Event};
use serde::{Deserialize, Serialize};

/// One unit of queued work for one deployment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub deployment_id: DeploymentId,
    pub work: Work,
}

/// What a step asks for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Work {
    /// Carry out a command the core returned.
    Command(Command),
    /// Deliver an event to the deployment.
    Event(Event),
}

impl Step {
    pub fn command(deployment_id: DeploymentId, command: Command) -> Self {
        Step {
            deployment_id,
            work: Work::Command(command),
        }
    }

    pub fn event(deployment_id: DeploymentId, event: Event) -> Self {
        Step {
            deployment_id,
            work: Work::Event(event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_core::TargetId;
    use cutover_core::lifecycle::LifecycleEventName;

    #[test]
    fn steps_round_trip_through_json() {
        let id = DeploymentId::from_entropy(7);
        let steps = vec![
            Step::event(id.clone(), Event::Created),
            Step::command(
                id.clone(),
                Command::RunLifecycleEvents {
                    targets: vec![TargetId::new("host-1")],
                    events: vec![LifecycleEventName::Install],
                },
            ),
        ];
        let json = serde_json::to_string(&steps).unwrap();
        assert!(json.contains(r#""deploymentId":"d-"#), "{json}");
        let back: Vec<Step> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, steps);
    }
}
