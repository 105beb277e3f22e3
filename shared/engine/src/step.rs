//! Steps: the units of queued work between handlers. A step is a command for one deployment to
//! carry out, or an event to deliver to one.

use cutover_core::lifecycle::LifecycleEventName;
use cutover_core::machine::{Command, Event};
use cutover_core::{DeploymentId, TargetId, Timestamp};
use serde::{Deserialize, Serialize};

/// One unit of queued work for one deployment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub deployment_id: DeploymentId,
    pub work: Work,
    /// Not to be carried out before this time. Queues that cannot hold a step that long (SQS
    /// holds one for at most 15 minutes) hand it back early, and it is sent again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Timestamp>,
}

/// What a step asks for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Work {
    /// Carry out a command the core returned.
    Command(Command),
    /// Deliver an event to the deployment.
    Event(Event),
    /// Look at a host command that runs `events` on `target`, and deliver their outcomes once
    /// it has ended. `attempt` counts the earlier polls.
    PollHost {
        target: TargetId,
        command_id: String,
        events: Vec<LifecycleEventName>,
        attempt: u32,
    },
}

impl Step {
    pub fn command(deployment_id: DeploymentId, command: Command) -> Self {
        Step {
            deployment_id,
            work: Work::Command(command),
            not_before: None,
        }
    }

    pub fn event(deployment_id: DeploymentId, event: Event) -> Self {
        Step {
            deployment_id,
            work: Work::Event(event),
            not_before: None,
        }
    }

    /// The same step, not to be carried out before `at`.
    pub fn not_before(mut self, at: Timestamp) -> Self {
        self.not_before = Some(at);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
