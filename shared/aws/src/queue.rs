//! The step queues: one SQS queue per step function. Every step goes to the queue of the
//! function that may carry it out, delayed until its `not_before` (SQS holds a message for at
//! most 15 minutes; a step that arrives early is sent again by the function).

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use cutover_core::Timestamp;
use cutover_core::machine::Command;
use cutover_engine::{PortError, Step, StepQueue, Work};

use crate::error::port_error;

/// The longest delay SQS gives a message.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// SQS takes at most ten messages per batch.
const BATCH: usize = 10;

/// The step functions, each fed by its own queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StepFunction {
    ValidateRevision,
    ProvisionReplacements,
    RunHooks,
    ShiftTraffic,
    Finalize,
}

impl StepFunction {
    pub const ALL: [StepFunction; 5] = [
        StepFunction::ValidateRevision,
        StepFunction::ProvisionReplacements,
        StepFunction::RunHooks,
        StepFunction::ShiftTraffic,
        StepFunction::Finalize,
    ];

    /// The function that carries out `step`: each has the permissions for its own side effects.
    pub fn of(step: &Step) -> StepFunction {
        match &step.work {
            Work::Event(_) => StepFunction::Finalize,
            Work::PollHost { .. } => StepFunction::RunHooks,
            Work::Command(command) => match command {
                Command::AcquireGroupLock | Command::ValidateRevision | Command::ResolveTargets => {
                    StepFunction::ValidateRevision
                }
                Command::ProvisionReplacements
                | Command::ReleaseOriginals { .. }
                | Command::DiscardReplacements { .. } => StepFunction::ProvisionReplacements,
                Command::RunLifecycleEvents { .. }
                | Command::StopLifecycleEvents { .. }
                | Command::InvokeHook { .. } => StepFunction::RunHooks,
                Command::BlockTraffic { .. }
                | Command::AllowTraffic { .. }
                | Command::ShiftTraffic { .. }
                | Command::RestoreTraffic => StepFunction::ShiftTraffic,
                Command::Notify { .. }
                | Command::StartRollback { .. }
                | Command::Finish { .. }
                | Command::Schedule { .. } => StepFunction::Finalize,
            },
        }
    }

    /// The binary's name, as in `functions/<name>`.
    pub fn name(self) -> &'static str {
        match self {
            StepFunction::ValidateRevision => "validate-revision",
            StepFunction::ProvisionReplacements => "provision-replacements",
            StepFunction::RunHooks => "run-hooks",
            StepFunction::ShiftTraffic => "shift-traffic",
            StepFunction::Finalize => "finalize",
        }
    }

    /// The environment variable that holds the URL of the function's queue.
    pub fn queue_env(self) -> &'static str {
        match self {
            StepFunction::ValidateRevision => "CUTOVER_QUEUE_VALIDATE_REVISION",
            StepFunction::ProvisionReplacements => "CUTOVER_QUEUE_PROVISION_REPLACEMENTS",
            StepFunction::RunHooks => "CUTOVER_QUEUE_RUN_HOOKS",
            StepFunction::ShiftTraffic => "CUTOVER_QUEUE_SHIFT_TRAFFIC",
            StepFunction::Finalize => "CUTOVER_QUEUE_FINALIZE",
        }
    }
}

/// The step queues, one per [`StepFunction`].
#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    urls: BTreeMap<StepFunction, String>,
}

impl SqsQueue {
    pub fn new(client: Client, urls: BTreeMap<StepFunction, String>) -> Self {
        SqsQueue { client, urls }
    }

    /// Sends `steps`, each to its function's queue, delayed until its `not_before`.
    pub async fn send_at(&self, steps: Vec<Step>, now: Timestamp) -> Result<(), PortError> {
        let mut by_queue: BTreeMap<StepFunction, Vec<Step>> = BTreeMap::new();
        for step in steps.into_iter().flat_map(one_host_each) {
            by_queue
                .entry(StepFunction::of(&step))
                .or_default()
                .push(step);
        }
        for (function, steps) in by_queue {
            let url = self.urls.get(&function).ok_or_else(|| {
                PortError::permanent(format!(
                    "no queue for {}: set {}",
                    function.name(),
                    function.queue_env()
                ))
            })?;
            for chunk in steps.chunks(BATCH) {
                self.send_batch(url, chunk, now).await?;
            }
        }
        Ok(())
    }

    async fn send_batch(&self, url: &str, steps: &[Step], now: Timestamp) -> Result<(), PortError> {
        let mut entries = Vec::with_capacity(steps.len());
        for (i, step) in steps.iter().enumerate() {
            let body = serde_json::to_string(step)
                .map_err(|e| PortError::permanent(format!("a step cannot be written: {e}")))?;
            let entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(body)
                .delay_seconds(delay(step, now).as_secs() as i32)
                .build()
                .map_err(|e| PortError::permanent(e.to_string()))?;
            entries.push(entry);
        }
        let sent = self
            .client
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| port_error(format!("sending steps to {url}"), e))?;
        match sent.failed.first() {
            None => Ok(()),
            // Steps are safe to send twice, so the whole batch goes again with the step.
            Some(failed) => Err(PortError::transient(format!(
                "SQS refused a step for {url}: {} {}",
                failed.code,
                failed.message.as_deref().unwrap_or("")
            ))),
        }
    }
}

impl StepQueue for SqsQueue {
    async fn send(&self, steps: Vec<Step>) -> Result<(), PortError> {
        self.send_at(steps, crate::now()).await
    }
}

/// How long SQS should hold `step`: until its `not_before`, at most 15 minutes.
pub fn delay(step: &Step, now: Timestamp) -> Duration {
    match step.not_before {
        Some(at) if at > now => {
            let wait = at.since(now);
            // Whole seconds, rounded up, so that the step never arrives early by a fraction.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            Duration::from_secs(secs).min(MAX_DELAY)
        }
        _ => Duration::ZERO,
    }
}

/// A step for many hosts, as one step per host, so that hosts run in parallel and a message
/// stays far below SQS's size limit however large the batch.
fn one_host_each(step: Step) -> Vec<Step> {
    let split = |targets: &[cutover_core::TargetId], make: &dyn Fn(Vec<_>) -> Command| {
        targets
            .iter()
            .map(|t| Step {
                deployment_id: step.deployment_id.clone(),
                work: Work::Command(make(vec![t.clone()])),
                not_before: step.not_before,
            })
            .collect::<Vec<_>>()
    };
    match &step.work {
        Work::Command(Command::RunLifecycleEvents { targets, events }) if targets.len() > 1 => {
            split(targets, &|targets| Command::RunLifecycleEvents {
                targets,
                events: events.clone(),
            })
        }
        Work::Command(Command::BlockTraffic { targets }) if targets.len() > 1 => {
            split(targets, &|targets| Command::BlockTraffic { targets })
        }
        Work::Command(Command::AllowTraffic { targets }) if targets.len() > 1 => {
            split(targets, &|targets| Command::AllowTraffic { targets })
        }
        _ => vec![step],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_core::lifecycle::LifecycleEventName;
    use cutover_core::{DeploymentId, TargetId};

    fn run(targets: &[&str]) -> Step {
        Step::command(
            DeploymentId::from_entropy(1),
            Command::RunLifecycleEvents {
                targets: targets.iter().map(|t| TargetId::new(*t)).collect(),
                events: vec![LifecycleEventName::Install],
            },
        )
    }

    #[test]
    fn a_step_for_many_hosts_becomes_one_per_host() {
        let steps = one_host_each(run(&["i-1", "i-2", "i-3"]));
        assert_eq!(steps, vec![run(&["i-1"]), run(&["i-2"]), run(&["i-3"])]);
        assert_eq!(one_host_each(run(&["i-1"])), vec![run(&["i-1"])]);
    }

    #[test]
    fn delays_round_up_and_stop_at_fifteen_minutes() {
        let now = Timestamp::from_millis(1_000_000);
        let step = run(&["i-1"]);
        assert_eq!(delay(&step, now), Duration::ZERO);
        let soon = step.clone().not_before(Timestamp::from_millis(1_001_500));
        assert_eq!(delay(&soon, now), Duration::from_secs(2));
        let late = step.clone().not_before(now + Duration::from_secs(3600));
        assert_eq!(delay(&late, now), MAX_DELAY);
        let past = step.not_before(Timestamp::from_millis(1));
        assert_eq!(delay(&past, now), Duration::ZERO);
    }

    #[test]
    fn every_step_has_a_function() {
        let id = DeploymentId::from_entropy(1);
        assert_eq!(
            StepFunction::of(&Step::command(id.clone(), Command::ValidateRevision)),
            StepFunction::ValidateRevision
        );
        assert_eq!(
            StepFunction::of(&Step::command(id.clone(), Command::ResolveTargets)),
            StepFunction::ValidateRevision
        );
        for replacements in [
            Command::ProvisionReplacements,
            Command::ReleaseOriginals {
                targets: vec![TargetId::new("i-1")],
                terminate: true,
            },
            Command::DiscardReplacements {
                targets: vec![TargetId::new("i-2")],
            },
        ] {
            assert_eq!(
                StepFunction::of(&Step::command(id.clone(), replacements.clone())),
                StepFunction::ProvisionReplacements,
                "{replacements:?}"
            );
        }
        assert_eq!(StepFunction::of(&run(&["i-1"])), StepFunction::RunHooks);
        assert_eq!(
            StepFunction::of(&Step::event(id, cutover_core::machine::Event::Created)),
            StepFunction::Finalize
        );
    }

    #[test]
    fn every_function_has_its_own_name_and_queue_variable() {
        let names: std::collections::BTreeSet<&str> =
            StepFunction::ALL.iter().map(|f| f.name()).collect();
        let variables: std::collections::BTreeSet<&str> =
            StepFunction::ALL.iter().map(|f| f.queue_env()).collect();
        assert_eq!(names.len(), StepFunction::ALL.len());
        assert_eq!(variables.len(), StepFunction::ALL.len());
        assert_eq!(
            StepFunction::ProvisionReplacements.name(),
            "provision-replacements"
        );
        assert_eq!(
            StepFunction::ProvisionReplacements.queue_env(),
            "CUTOVER_QUEUE_PROVISION_REPLACEMENTS"
        );
        for f in StepFunction::ALL {
            let expected = format!(
                "CUTOVER_QUEUE_{}",
                f.name().to_uppercase().replace('-', "_")
            );
            assert_eq!(f.queue_env(), expected, "{f:?}");
        }
    }
}
