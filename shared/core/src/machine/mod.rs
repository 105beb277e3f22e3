//! The deployment state machine: a deterministic function from (deployment, event, time) to
//! (new deployment, commands).
//!
//! The engine calls [`advance`] once for every [`Event`] it receives, saves the new deployment
//! with a write that is conditional on the `version` it loaded, and then carries out the returned
//! [`Command`]s, each of which eventually produces more events. The machine does no I/O, reads no
//! clock and draws no random numbers, so tests drive it on a virtual clock.
//!
//! Events may arrive twice, late or out of order (SQS delivers at least once). Every event names
//! what it refers to, and an event that does not apply to the current state changes nothing and
//! returns no commands. An event for a finished deployment is always ignored.
//!
//! The legal graph of phases is in [`phase`]; each group of transitions has its own file.

mod blue_green;
mod deployment;
mod finish;
mod in_place;
mod lambda;
pub mod phase;

pub use blue_green::PROVISIONING_TIMEOUT;
pub use deployment::{
    CreateDeployment, Deployment, DeploymentOptions, HookExecution, HostCommand,
    PreviousDeployment, Target, lambda_appspec,
};
pub use lambda::{HOOK_TIMEOUT, HookStatus, lambda_target_id};
pub use phase::{FinalStatus, Phase, PhaseKind};

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::ids::{DeploymentId, TargetId};
use crate::lifecycle::LifecycleEventName;
use crate::model::{
    DeploymentWaitType, Diagnostics, ErrorInformation, GroupError, LifecycleEventStatus,
    RevisionLocation, TriggerEventType,
};
use crate::time::Timestamp;

/// Something that happened to a deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum Event {
    /// The deployment was saved; it asks for its group's lock.
    Created,
    /// The deployment holds its group's lock and may start. `last_successful` is the group's last
    /// successful deployment at that moment: a deployment that waited in the queue rolls back to
    /// what succeeded while it waited, not to what had succeeded when it was created.
    GroupLockAcquired {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_successful: Option<PreviousDeployment>,
    },
    /// Another deployment of the group is active; this one waits behind it.
    GroupLockBusy { active: DeploymentId },
    /// The revision exists and is well formed. `revision` pins what was found (for example the
    /// S3 object's ETag and version), when the validator learned more than the request said.
    /// `appspec` is the text of a Lambda revision that is not inline (an S3 object or a file):
    /// the AppSpec is the whole revision.
    RevisionValidated {
        revision: Option<RevisionLocation>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        appspec: Option<String>,
    },
    /// The revision is missing or malformed.
    RevisionInvalid { error: ErrorInformation },
    /// The targets the deployment goes to, in the order to deploy them.
    TargetsResolved { targets: Vec<TargetId> },
    /// The targets could not be found.
    TargetsUnresolved { error: ErrorInformation },
    /// A host or the traffic router finished one lifecycle event on one target.
    LifecycleEventFinished {
        target: TargetId,
        event: LifecycleEventName,
        outcome: LifecycleOutcome,
    },
    /// A step is about to hand a host the events of its current run as one remote command (an
    /// SSM command, for example), whose outcome arrives later. The first claim of a run stands,
    /// so that of the steps delivered at once only one sends the command; a claim whose command
    /// was not recorded by `expires_at` may be taken over.
    HostCommandClaimed {
        target: TargetId,
        claim: String,
        expires_at: Timestamp,
    },
    /// The step that holds `claim` sent the host its command. Recording it keeps a step that is
    /// delivered again from sending the same events twice.
    HostCommandSent {
        target: TargetId,
        claim: String,
        command_id: String,
    },
    /// A step is about to invoke the hook function of `event` with this execution id, drawn
    /// from the operating system's random source. The first id recorded for an event stands.
    HookExecutionStarted {
        event: LifecycleEventName,
        execution_id: String,
    },
    /// A hook function reported how it ended (`PutLifecycleEventHookExecutionStatus`).
    HookExecutionReported {
        execution_id: String,
        status: HookStatus,
    },
    /// The alias now gives the target version `percent` of its traffic.
    TrafficShifted { percent: u8 },
    /// The alias points at its current version again, with no extra weights.
    TrafficRestored,
    /// A wait the deployment scheduled with [`Command::Schedule`] is over.
    TimerFired { timer: Timer },
    /// The replacement (green) hosts of a blue/green deployment run and can be reached.
    ReplacementsReady { targets: Vec<TargetId> },
    /// A user asked a waiting blue/green deployment to go on (`ContinueDeployment`): to reroute
    /// traffic now, or to terminate the original hosts now.
    ContinueRequested { wait: DeploymentWaitType },
    /// The replacement hosts are the group's, and the original hosts were terminated or kept
    /// as the deployment said.
    OriginalsReleased,
    /// The replacement hosts that cutover provisioned are gone.
    ReplacementsDiscarded,
    /// A watched alarm is in the ALARM state.
    AlarmRaised { alarm: String },
    /// The alarms' state could not be read.
    AlarmPollFailed { message: String },
    /// A step of the deployment cannot be carried out, and trying it again will not help (cutover
    /// may not call a service it needs, for example). The deployment fails with `error`.
    StepFailed { error: ErrorInformation },
    /// A user asked to stop the deployment. `auto_rollback_enabled` is StopDeployment's flag:
    /// when given it decides whether to roll back; when absent the deployment's
    /// `DEPLOYMENT_STOP_ON_REQUEST` setting does.
    StopRequested { auto_rollback_enabled: Option<bool> },
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Created => EventKind::Created,
            Event::GroupLockAcquired { .. } => EventKind::GroupLockAcquired,
            Event::GroupLockBusy { .. } => EventKind::GroupLockBusy,
            Event::RevisionValidated { .. } => EventKind::RevisionValidated,
            Event::RevisionInvalid { .. } => EventKind::RevisionInvalid,
            Event::TargetsResolved { .. } => EventKind::TargetsResolved,
            Event::TargetsUnresolved { .. } => EventKind::TargetsUnresolved,
            Event::LifecycleEventFinished { .. } => EventKind::LifecycleEventFinished,
            Event::HostCommandClaimed { .. } => EventKind::HostCommandClaimed,
            Event::HostCommandSent { .. } => EventKind::HostCommandSent,
            Event::HookExecutionStarted { .. } => EventKind::HookExecutionStarted,
            Event::HookExecutionReported { .. } => EventKind::HookExecutionReported,
            Event::TrafficShifted { .. } => EventKind::TrafficShifted,
            Event::TrafficRestored => EventKind::TrafficRestored,
            Event::TimerFired { .. } => EventKind::TimerFired,
            Event::ReplacementsReady { .. } => EventKind::ReplacementsReady,
            Event::ContinueRequested { .. } => EventKind::ContinueRequested,
            Event::OriginalsReleased => EventKind::OriginalsReleased,
            Event::ReplacementsDiscarded => EventKind::ReplacementsDiscarded,
            Event::AlarmRaised { .. } => EventKind::AlarmRaised,
            Event::AlarmPollFailed { .. } => EventKind::AlarmPollFailed,
            Event::StepFailed { .. } => EventKind::StepFailed,
            Event::StopRequested { .. } => EventKind::StopRequested,
        }
    }
}

/// The kind of an [`Event`], without its data; the phase graph is written in these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    Created,
    GroupLockAcquired,
    GroupLockBusy,
    RevisionValidated,
    RevisionInvalid,
    TargetsResolved,
    TargetsUnresolved,
    LifecycleEventFinished,
    HostCommandClaimed,
    HostCommandSent,
    HookExecutionStarted,
    HookExecutionReported,
    TrafficShifted,
    TrafficRestored,
    TimerFired,
    ReplacementsReady,
    ContinueRequested,
    OriginalsReleased,
    ReplacementsDiscarded,
    AlarmRaised,
    AlarmPollFailed,
    StepFailed,
    StopRequested,
}

/// The waits a deployment schedules. Each names what it waits for, so that one that fires late,
/// twice, or after the deployment moved on changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "timer", rename_all_fields = "camelCase")]
pub enum Timer {
    /// The hook execution has had [`HOOK_TIMEOUT`] to report.
    HookDeadline { execution_id: String },
    /// Traffic step `step` of the configuration's schedule is due.
    TrafficStep { step: usize },
    /// The bake time after full traffic is over.
    BakeOver,
    /// The replacement fleet has had [`PROVISIONING_TIMEOUT`] to come up.
    ProvisioningDeadline,
    /// The blue/green deployment's wait before it reroutes traffic is over.
    ReadyWaitOver,
    /// The blue/green deployment's wait before it terminates the original hosts is over.
    TerminationWaitOver,
}

impl Timer {
    /// Whether the alarms are read just before this timer is delivered: the end of a bake time
    /// succeeds the deployment, and the end of a termination wait lets the original hosts go,
    /// so their alarms get a last look.
    pub fn reads_alarms(&self) -> bool {
        matches!(self, Timer::BakeOver | Timer::TerminationWaitOver)
    }
}

/// How one lifecycle event ended on one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutcomeStatus {
    Succeeded,
    Failed,
    Skipped,
}

impl From<OutcomeStatus> for LifecycleEventStatus {
    fn from(s: OutcomeStatus) -> Self {
        match s {
            OutcomeStatus::Succeeded => LifecycleEventStatus::Succeeded,
            OutcomeStatus::Failed => LifecycleEventStatus::Failed,
            OutcomeStatus::Skipped => LifecycleEventStatus::Skipped,
        }
    }
}

/// What a host or the traffic router reports about one lifecycle event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleOutcome {
    pub status: OutcomeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Diagnostics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
}

impl LifecycleOutcome {
    pub fn succeeded() -> Self {
        Self::with_status(OutcomeStatus::Succeeded, None)
    }

    pub fn failed(diagnostics: Diagnostics) -> Self {
        Self::with_status(OutcomeStatus::Failed, Some(diagnostics))
    }

    fn with_status(status: OutcomeStatus, diagnostics: Option<Diagnostics>) -> Self {
        LifecycleOutcome {
            status,
            diagnostics,
            start_time: None,
            end_time: None,
        }
    }
}

/// Something the engine must do. Every command is safe to carry out twice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum Command {
    /// Take the group's lock, or queue behind its holder; answer with `GroupLockAcquired` or
    /// `GroupLockBusy`.
    AcquireGroupLock,
    /// Check that the deployment's revision exists and is well formed; answer with
    /// `RevisionValidated` or `RevisionInvalid`.
    ValidateRevision,
    /// Find the deployment's targets (the group's, or the deployment's `targetInstances`);
    /// answer with `TargetsResolved` or `TargetsUnresolved`.
    ResolveTargets,
    /// Run these lifecycle events, in order, on each of these hosts, stopping a host at its first
    /// failure (except the failures `ignoreApplicationStopFailures` covers, when set); answer
    /// with one `LifecycleEventFinished` per event run.
    RunLifecycleEvents {
        targets: Vec<TargetId>,
        events: Vec<LifecycleEventName>,
    },
    /// Take these hosts out of the load balancer and wait until they drain; answer with a
    /// `LifecycleEventFinished` for `BlockTraffic` per host.
    BlockTraffic { targets: Vec<TargetId> },
    /// Put these hosts into the load balancer and wait until they are healthy; answer with a
    /// `LifecycleEventFinished` for `AllowTraffic` per host.
    AllowTraffic { targets: Vec<TargetId> },
    /// Draw an execution id for `event` (or take the one recorded), record it with
    /// `HookExecutionStarted`, and invoke `function` with it asynchronously.
    InvokeHook {
        event: LifecycleEventName,
        function: String,
    },
    /// Read the watched alarms, answering `AlarmRaised` if one is in ALARM; otherwise give the
    /// target version `percent` of the alias's traffic and answer `TrafficShifted`.
    ShiftTraffic { percent: u8 },
    /// Point the alias back at its current version, with no extra weights; answer
    /// `TrafficRestored`.
    RestoreTraffic,
    /// Provision the replacement (green) fleet of a blue/green deployment, or discover it;
    /// answer `ReplacementsReady` once its hosts run and can be reached, or `StepFailed`,
    /// having removed whatever was made.
    ProvisionReplacements,
    /// Traffic is on the replacement hosts: make them the group's hosts, and terminate the
    /// original hosts (`terminate`) or keep them running, out of service; answer
    /// `OriginalsReleased`.
    ReleaseOriginals {
        targets: Vec<TargetId>,
        terminate: bool,
    },
    /// Remove the replacement hosts that cutover provisioned (hosts it discovered are left
    /// running, out of service); answer `ReplacementsDiscarded`.
    DiscardReplacements { targets: Vec<TargetId> },
    /// Deliver `event` to this deployment at `at`, not before.
    Schedule { at: Timestamp, event: Box<Event> },
    /// Stop whatever these hosts are running for this deployment.
    StopLifecycleEvents { targets: Vec<TargetId> },
    /// Publish a state change to the group's triggers and event bus.
    Notify {
        event: TriggerEventType,
        target: Option<TargetId>,
    },
    /// Save this new rollback deployment and deliver `Created` to it.
    StartRollback { rollback: Box<Deployment> },
    /// The deployment is over: record the outcome on the group and release the group's lock,
    /// handing it to `hand_lock_to` first when given, else to the next queued deployment.
    Finish {
        status: FinalStatus,
        hand_lock_to: Option<DeploymentId>,
    },
}

/// The result of one step.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// The deployment after the event. Its `version` is one more than before if anything
    /// changed, and the same if nothing did.
    pub deployment: Deployment,
    pub commands: Vec<Command>,
}

/// A request or event that cannot be applied, with a message a user can act on.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Group(#[from] GroupError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "deployment configuration {config} is for {config_platform} deployments, but deployment group '{group}' deploys to {group_platform}"
    )]
    PlatformMismatch {
        config: String,
        config_platform: crate::model::ComputePlatform,
        group: String,
        group_platform: crate::model::ComputePlatform,
    },
    #[error("invalid revision: {0}")]
    InvalidRevision(String),
    #[error("{0} is not supported yet")]
    Unsupported(String),
    #[error("invalid {event} event: {reason}")]
    InvalidEvent { event: &'static str, reason: String },
}

/// Applies one event to a deployment.
///
/// Returns the new deployment and the commands to carry out. An event that does not apply to
/// the deployment's current phase returns the deployment unchanged and no commands.
pub fn advance(d: &Deployment, event: Event, now: Timestamp) -> Result<Transition, CoreError> {
    // `next` shares every target with `d` until a transition changes it, so this clone and the
    // comparison below cost a pointer per target, plus whatever the event really changed.
    let mut next = d.clone();
    let mut commands = Vec::new();
    phase::apply(&mut next, event, now, &mut commands)?;
    next.version = d.version;
    if next != *d {
        next.version = d.version + 1;
    }
    Ok(Transition {
        deployment: next,
        commands,
    })
}

/// A wait of the deployment, passed `time_scale` times faster than real time.
fn scaled(d: &Deployment, wait: std::time::Duration) -> std::time::Duration {
    wait / d.options.time_scale.unwrap_or(1).max(1)
}

/// `minutes` of the deployment's waits, scaled as [`scaled`] says.
fn scaled_minutes(d: &Deployment, minutes: u32) -> std::time::Duration {
    scaled(d, std::time::Duration::from_secs(u64::from(minutes) * 60))
}

/// The command that delivers `timer` at `at`.
fn schedule(at: Timestamp, timer: Timer) -> Command {
    Command::Schedule {
        at,
        event: Box::new(Event::TimerFired { timer }),
    }
}
