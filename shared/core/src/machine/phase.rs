//! The phases of a deployment and the legal graph between them, in one place.
//!
//! ```text
//!  Created ─── GroupLockAcquired ──▶ ValidatingRevision
//!  Created ─── GroupLockBusy ──────▶ Queued ─── GroupLockAcquired ──▶ ValidatingRevision
//!  ValidatingRevision ─── RevisionValidated ──▶ ResolvingTargets | Finished(Failed)  (a Lambda AppSpec that does not parse)
//!  ValidatingRevision ─── RevisionInvalid ────▶ Finished(Failed)
//!  ResolvingTargets ───── TargetsResolved ────▶ InPlace                 (Server, in place)
//!  ResolvingTargets ───── TargetsResolved ────▶ Finished(Failed)        (no targets, or too few)
//!  ResolvingTargets ───── TargetsUnresolved ──▶ Finished(Failed)
//!  InPlace ────────────── LifecycleEventFinished ──▶ InPlace | Finished(Succeeded | Failed)
//!  InPlace ────────────── HostCommandClaimed ──────▶ InPlace
//!  InPlace ────────────── HostCommandSent ─────────▶ InPlace
//!  ResolvingTargets ───── TargetsResolved ────▶ RunningHook | ShiftingTraffic   (Lambda)
//!  RunningHook ────────── HookExecutionStarted ────▶ RunningHook
//!  RunningHook ────────── HookExecutionReported ───▶ ShiftingTraffic | Baking | Finished
//!  RunningHook ────────── TimerFired (deadline) ───▶ Finished(Failed) | RestoringTraffic
//!  ShiftingTraffic ────── TrafficShifted ──────────▶ ShiftingTraffic | RunningHook | Baking | Finished
//!  ShiftingTraffic ────── TimerFired (next step) ──▶ ShiftingTraffic
//!  Baking ─────────────── TimerFired (bake over) ──▶ Finished(Succeeded)
//!  RestoringTraffic ───── TrafficRestored ─────────▶ Finished(Failed | Stopped)
//!  any started phase ──── AlarmRaised, AlarmPollFailed ──▶ Finished(Stopped)
//!  any unfinished phase ─ StopRequested ──────▶ Finished(Stopped)
//!  any unfinished phase ─ StepFailed ─────────▶ Finished(Failed)
//!  (once a Lambda alias's traffic may have moved, an alarm, a stop or a failure goes to
//!  RestoringTraffic first, and from there to Finished)
//!  ResolvingTargets ───── TargetsResolved ────▶ ProvisioningReplacements   (Server, blue/green)
//!  ProvisioningReplacements ── ReplacementsReady ──▶ InstallingReplacements
//!  InstallingReplacements ─── LifecycleEventFinished ──▶ WaitingForReroute | Rerouting
//!  WaitingForReroute ──── ContinueRequested, TimerFired ──▶ Rerouting
//!  Rerouting ──────────── LifecycleEventFinished ──▶ WaitingToTerminate | ReleasingOriginals
//!  WaitingToTerminate ─── TimerFired, ContinueRequested ──▶ ReleasingOriginals
//!  ReleasingOriginals ─── OriginalsReleased ──────▶ Finished(Succeeded)
//!  (a blue/green deployment that fails or stops before the reroute goes to
//!  DiscardingReplacements; after it, to ReroutingBack and then DiscardingReplacements;
//!  DiscardingReplacements ── ReplacementsDiscarded ──▶ Finished(Failed | Stopped))
//!  Finished ───────────── anything ───────────▶ Finished (ignored)
//! ```
//!
//! [`GRAPH`] is the same graph as data; the tests check every step they take against it.
//! `apply` is the one `match` that routes each (phase, event) pair to its transition.

use serde::{Deserialize, Serialize};

use super::{
    Command, CoreError, Deployment, Event, EventKind, Timer, blue_green, finish, in_place, lambda,
};
use crate::config::HostPlan;
use crate::ids::DeploymentId;
use crate::lifecycle::LifecycleEventName;
use crate::model::{ComputePlatform, DeploymentStatus, ErrorCode, ErrorInformation};
use crate::time::Timestamp;

/// Where a deployment is, with the data that only that phase needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all_fields = "camelCase")]
pub enum Phase {
    /// Saved; waiting to learn whether its group is free.
    Created,
    /// Waiting for the group's active deployment to finish.
    Queued { behind: DeploymentId },
    /// Checking that the revision exists and is well formed.
    ValidatingRevision,
    /// Finding the targets.
    ResolvingTargets,
    /// Deploying to hosts in place, within the plan's health limits.
    InPlace { plan: HostPlan },
    /// Waiting for the hook function of `event` to report.
    RunningHook { event: LifecycleEventName },
    /// Moving the alias's traffic by the configuration's schedule: `step` is the step asked
    /// for, `shifted` whether it is done, and `started` when the first step was done.
    ShiftingTraffic {
        step: usize,
        shifted: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        started: Option<Timestamp>,
    },
    /// All traffic is on the target version; the alarms are watched until `until`.
    Baking { until: Timestamp },
    /// Putting the alias back on its current version before ending as `ending` says.
    RestoringTraffic { ending: Ending },
    /// Blue/green: waiting for the replacement fleet to run and be reachable, until `deadline`.
    ProvisioningReplacements { deadline: Timestamp },
    /// Blue/green: installing the revision on the replacement hosts, within the plan's health
    /// limits.
    InstallingReplacements { plan: HostPlan },
    /// Blue/green: the replacement hosts are ready. Traffic is rerouted when a user continues
    /// the deployment, or at `until`, when the deployment stops instead if its ready option
    /// says STOP_DEPLOYMENT.
    WaitingForReroute { until: Timestamp },
    /// Blue/green: the replacement hosts run the Allow events, then the originals the Block
    /// events.
    Rerouting,
    /// Blue/green: traffic is on the replacement hosts; the originals are terminated at
    /// `until`, or when a user continues the deployment.
    WaitingToTerminate { until: Timestamp },
    /// Blue/green: handing the group to the replacement hosts and letting the originals go.
    ReleasingOriginals,
    /// Blue/green: the original hosts run the Allow events and the replacement hosts the Block
    /// events, before the replacements are discarded.
    ReroutingBack { ending: Ending },
    /// Blue/green: removing the replacement hosts before ending as `ending` says.
    DiscardingReplacements { ending: Ending },
    /// Over.
    Finished { status: FinalStatus },
}

/// How a deployment ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FinalStatus {
    Succeeded,
    Failed,
    Stopped,
}

impl From<FinalStatus> for DeploymentStatus {
    fn from(s: FinalStatus) -> Self {
        match s {
            FinalStatus::Succeeded => DeploymentStatus::Succeeded,
            FinalStatus::Failed => DeploymentStatus::Failed,
            FinalStatus::Stopped => DeploymentStatus::Stopped,
        }
    }
}

/// How a deployment that is restoring traffic will end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ending {
    pub status: FinalStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInformation>,
}

impl Ending {
    /// This ending, failed now because `context`: `error` says why.
    pub(super) fn failed_with(&self, context: &str, error: &ErrorInformation) -> Ending {
        let message = format!(
            "{} {context}: {}",
            self.error
                .as_ref()
                .map_or("The deployment was ending.", |e| e.message.as_str()),
            error.message
        );
        Ending {
            status: FinalStatus::Failed,
            error: Some(ErrorInformation::new(error.code, message)),
        }
    }
}

/// A phase without its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PhaseKind {
    Created,
    Queued,
    ValidatingRevision,
    ResolvingTargets,
    InPlace,
    RunningHook,
    ShiftingTraffic,
    Baking,
    RestoringTraffic,
    ProvisioningReplacements,
    InstallingReplacements,
    WaitingForReroute,
    Rerouting,
    WaitingToTerminate,
    ReleasingOriginals,
    ReroutingBack,
    DiscardingReplacements,
    Succeeded,
    Failed,
    Stopped,
}

impl PhaseKind {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            PhaseKind::Succeeded | PhaseKind::Failed | PhaseKind::Stopped
        )
    }
}

impl Phase {
    pub fn kind(&self) -> PhaseKind {
        match self {
            Phase::Created => PhaseKind::Created,
            Phase::Queued { .. } => PhaseKind::Queued,
            Phase::ValidatingRevision => PhaseKind::ValidatingRevision,
            Phase::ResolvingTargets => PhaseKind::ResolvingTargets,
            Phase::InPlace { .. } => PhaseKind::InPlace,
            Phase::RunningHook { .. } => PhaseKind::RunningHook,
            Phase::ShiftingTraffic { .. } => PhaseKind::ShiftingTraffic,
            Phase::Baking { .. } => PhaseKind::Baking,
            Phase::RestoringTraffic { .. } => PhaseKind::RestoringTraffic,
            Phase::ProvisioningReplacements { .. } => PhaseKind::ProvisioningReplacements,
            Phase::InstallingReplacements { .. } => PhaseKind::InstallingReplacements,
            Phase::WaitingForReroute { .. } => PhaseKind::WaitingForReroute,
            Phase::Rerouting => PhaseKind::Rerouting,
            Phase::WaitingToTerminate { .. } => PhaseKind::WaitingToTerminate,
            Phase::ReleasingOriginals => PhaseKind::ReleasingOriginals,
            Phase::ReroutingBack { .. } => PhaseKind::ReroutingBack,
            Phase::DiscardingReplacements { .. } => PhaseKind::DiscardingReplacements,
            Phase::Finished {
                status: FinalStatus::Succeeded,
            } => PhaseKind::Succeeded,
            Phase::Finished {
                status: FinalStatus::Failed,
            } => PhaseKind::Failed,
            Phase::Finished {
                status: FinalStatus::Stopped,
            } => PhaseKind::Stopped,
        }
    }

    /// The CodeDeploy status a user sees in this phase.
    pub fn status(&self) -> DeploymentStatus {
        match self {
            Phase::Created => DeploymentStatus::Created,
            Phase::Queued { .. } => DeploymentStatus::Queued,
            Phase::ValidatingRevision
            | Phase::ResolvingTargets
            | Phase::InPlace { .. }
            | Phase::RunningHook { .. }
            | Phase::ShiftingTraffic { .. }
            | Phase::RestoringTraffic { .. }
            | Phase::ProvisioningReplacements { .. }
            | Phase::InstallingReplacements { .. }
            | Phase::Rerouting
            | Phase::WaitingToTerminate { .. }
            | Phase::ReleasingOriginals
            | Phase::ReroutingBack { .. }
            | Phase::DiscardingReplacements { .. } => DeploymentStatus::InProgress,
            Phase::WaitingForReroute { .. } => DeploymentStatus::Ready,
            Phase::Baking { .. } => DeploymentStatus::Baking,
            Phase::Finished { status } => (*status).into(),
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self, Phase::Finished { .. })
    }

    /// True once the deployment holds its group's lock and has begun work, until it begins to
    /// end.
    pub fn is_started(&self) -> bool {
        matches!(
            self,
            Phase::ValidatingRevision
                | Phase::ResolvingTargets
                | Phase::InPlace { .. }
                | Phase::RunningHook { .. }
                | Phase::ShiftingTraffic { .. }
                | Phase::Baking { .. }
                | Phase::ProvisioningReplacements { .. }
                | Phase::InstallingReplacements { .. }
                | Phase::WaitingForReroute { .. }
                | Phase::Rerouting
                | Phase::WaitingToTerminate { .. }
        )
    }
}

use EventKind as E;
use PhaseKind as P;

/// Every legal step: from a phase, on an event, to one of these phases. A (phase, event) pair
/// that is not listed changes nothing.
pub const GRAPH: &[(PhaseKind, EventKind, &[PhaseKind])] = &[
    (P::Created, E::Created, &[P::Created]),
    (P::Created, E::GroupLockAcquired, &[P::ValidatingRevision]),
    (P::Created, E::GroupLockBusy, &[P::Queued]),
    (P::Queued, E::GroupLockAcquired, &[P::ValidatingRevision]),
    (
        P::ValidatingRevision,
        E::RevisionValidated,
        &[P::ResolvingTargets, P::Failed],
    ),
    (P::ValidatingRevision, E::RevisionInvalid, &[P::Failed]),
    (
        P::ResolvingTargets,
        E::TargetsResolved,
        &[
            P::InPlace,
            P::RunningHook,
            P::ShiftingTraffic,
            P::ProvisioningReplacements,
            P::Failed,
        ],
    ),
    (P::ResolvingTargets, E::TargetsUnresolved, &[P::Failed]),
    (
        P::InPlace,
        E::LifecycleEventFinished,
        &[P::InPlace, P::Succeeded, P::Failed],
    ),
    (P::InPlace, E::HostCommandClaimed, &[P::InPlace]),
    (P::InPlace, E::HostCommandSent, &[P::InPlace]),
    (P::RunningHook, E::HookExecutionStarted, &[P::RunningHook]),
    (
        P::RunningHook,
        E::HookExecutionReported,
        &[
            P::ShiftingTraffic,
            P::Baking,
            P::Succeeded,
            P::Failed,
            P::RestoringTraffic,
        ],
    ),
    (
        P::RunningHook,
        E::TimerFired,
        &[P::RunningHook, P::Failed, P::RestoringTraffic],
    ),
    (
        P::ShiftingTraffic,
        E::TrafficShifted,
        &[P::ShiftingTraffic, P::RunningHook, P::Baking, P::Succeeded],
    ),
    (P::ShiftingTraffic, E::TimerFired, &[P::ShiftingTraffic]),
    (P::Baking, E::TimerFired, &[P::Baking, P::Succeeded]),
    (
        P::RestoringTraffic,
        E::TrafficRestored,
        &[P::Failed, P::Stopped],
    ),
    (
        P::ValidatingRevision,
        E::AlarmRaised,
        &[P::ValidatingRevision, P::Stopped],
    ),
    (
        P::ResolvingTargets,
        E::AlarmRaised,
        &[P::ResolvingTargets, P::Stopped],
    ),
    (P::InPlace, E::AlarmRaised, &[P::InPlace, P::Stopped]),
    (
        P::RunningHook,
        E::AlarmRaised,
        &[P::RunningHook, P::Stopped, P::RestoringTraffic],
    ),
    (
        P::ShiftingTraffic,
        E::AlarmRaised,
        &[P::ShiftingTraffic, P::RestoringTraffic],
    ),
    (P::Baking, E::AlarmRaised, &[P::Baking, P::RestoringTraffic]),
    (
        P::ValidatingRevision,
        E::AlarmPollFailed,
        &[P::ValidatingRevision, P::Stopped],
    ),
    (
        P::ResolvingTargets,
        E::AlarmPollFailed,
        &[P::ResolvingTargets, P::Stopped],
    ),
    (P::InPlace, E::AlarmPollFailed, &[P::InPlace, P::Stopped]),
    (
        P::RunningHook,
        E::AlarmPollFailed,
        &[P::RunningHook, P::Stopped, P::RestoringTraffic],
    ),
    (
        P::ShiftingTraffic,
        E::AlarmPollFailed,
        &[P::ShiftingTraffic, P::RestoringTraffic],
    ),
    (
        P::Baking,
        E::AlarmPollFailed,
        &[P::Baking, P::RestoringTraffic],
    ),
    (P::Created, E::StopRequested, &[P::Stopped]),
    (P::Queued, E::StopRequested, &[P::Stopped]),
    (P::ValidatingRevision, E::StopRequested, &[P::Stopped]),
    (P::ResolvingTargets, E::StopRequested, &[P::Stopped]),
    (P::InPlace, E::StopRequested, &[P::Stopped]),
    (
        P::RunningHook,
        E::StopRequested,
        &[P::Stopped, P::RestoringTraffic],
    ),
    (P::ShiftingTraffic, E::StopRequested, &[P::RestoringTraffic]),
    (P::Baking, E::StopRequested, &[P::RestoringTraffic]),
    (
        P::RestoringTraffic,
        E::StopRequested,
        &[P::RestoringTraffic],
    ),
    (P::Created, E::StepFailed, &[P::Failed]),
    (P::Queued, E::StepFailed, &[P::Failed]),
    (P::ValidatingRevision, E::StepFailed, &[P::Failed]),
    (P::ResolvingTargets, E::StepFailed, &[P::Failed]),
    (P::InPlace, E::StepFailed, &[P::Failed]),
    (
        P::RunningHook,
        E::StepFailed,
        &[P::Failed, P::RestoringTraffic],
    ),
    (P::ShiftingTraffic, E::StepFailed, &[P::RestoringTraffic]),
    (P::Baking, E::StepFailed, &[P::RestoringTraffic]),
    (P::RestoringTraffic, E::StepFailed, &[P::Failed]),
    // Blue/green.
    (
        P::ProvisioningReplacements,
        E::ReplacementsReady,
        &[P::InstallingReplacements, P::DiscardingReplacements],
    ),
    (
        P::ProvisioningReplacements,
        E::TimerFired,
        &[P::DiscardingReplacements],
    ),
    (
        P::InstallingReplacements,
        E::LifecycleEventFinished,
        &[
            P::InstallingReplacements,
            P::WaitingForReroute,
            P::Rerouting,
            P::DiscardingReplacements,
        ],
    ),
    (
        P::InstallingReplacements,
        E::HostCommandClaimed,
        &[P::InstallingReplacements],
    ),
    (
        P::InstallingReplacements,
        E::HostCommandSent,
        &[P::InstallingReplacements],
    ),
    (P::WaitingForReroute, E::ContinueRequested, &[P::Rerouting]),
    (
        P::WaitingForReroute,
        E::TimerFired,
        &[P::Rerouting, P::DiscardingReplacements],
    ),
    (
        P::Rerouting,
        E::LifecycleEventFinished,
        &[
            P::Rerouting,
            P::WaitingToTerminate,
            P::ReleasingOriginals,
            P::ReroutingBack,
            P::DiscardingReplacements,
        ],
    ),
    (P::Rerouting, E::HostCommandClaimed, &[P::Rerouting]),
    (P::Rerouting, E::HostCommandSent, &[P::Rerouting]),
    (
        P::WaitingToTerminate,
        E::TimerFired,
        &[P::ReleasingOriginals],
    ),
    (
        P::WaitingToTerminate,
        E::ContinueRequested,
        &[P::ReleasingOriginals],
    ),
    (P::ReleasingOriginals, E::OriginalsReleased, &[P::Succeeded]),
    (
        P::ReroutingBack,
        E::LifecycleEventFinished,
        &[P::ReroutingBack, P::DiscardingReplacements],
    ),
    (P::ReroutingBack, E::HostCommandClaimed, &[P::ReroutingBack]),
    (P::ReroutingBack, E::HostCommandSent, &[P::ReroutingBack]),
    (
        P::DiscardingReplacements,
        E::ReplacementsDiscarded,
        &[P::Failed, P::Stopped],
    ),
    (
        P::ProvisioningReplacements,
        E::AlarmRaised,
        &[P::ProvisioningReplacements, P::DiscardingReplacements],
    ),
    (
        P::InstallingReplacements,
        E::AlarmRaised,
        &[P::InstallingReplacements, P::DiscardingReplacements],
    ),
    (
        P::WaitingForReroute,
        E::AlarmRaised,
        &[P::WaitingForReroute, P::DiscardingReplacements],
    ),
    (
        P::Rerouting,
        E::AlarmRaised,
        &[P::Rerouting, P::ReroutingBack, P::DiscardingReplacements],
    ),
    (
        P::WaitingToTerminate,
        E::AlarmRaised,
        &[P::WaitingToTerminate, P::ReroutingBack],
    ),
    (
        P::ProvisioningReplacements,
        E::AlarmPollFailed,
        &[P::ProvisioningReplacements, P::DiscardingReplacements],
    ),
    (
        P::InstallingReplacements,
        E::AlarmPollFailed,
        &[P::InstallingReplacements, P::DiscardingReplacements],
    ),
    (
        P::WaitingForReroute,
        E::AlarmPollFailed,
        &[P::WaitingForReroute, P::DiscardingReplacements],
    ),
    (
        P::Rerouting,
        E::AlarmPollFailed,
        &[P::Rerouting, P::ReroutingBack, P::DiscardingReplacements],
    ),
    (
        P::WaitingToTerminate,
        E::AlarmPollFailed,
        &[P::WaitingToTerminate, P::ReroutingBack],
    ),
    (
        P::ProvisioningReplacements,
        E::StopRequested,
        &[P::DiscardingReplacements],
    ),
    (
        P::InstallingReplacements,
        E::StopRequested,
        &[P::DiscardingReplacements],
    ),
    (
        P::WaitingForReroute,
        E::StopRequested,
        &[P::DiscardingReplacements],
    ),
    (
        P::Rerouting,
        E::StopRequested,
        &[P::ReroutingBack, P::DiscardingReplacements],
    ),
    (P::WaitingToTerminate, E::StopRequested, &[P::ReroutingBack]),
    (
        P::ReleasingOriginals,
        E::StopRequested,
        &[P::ReleasingOriginals],
    ),
    (P::ReroutingBack, E::StopRequested, &[P::ReroutingBack]),
    (
        P::DiscardingReplacements,
        E::StopRequested,
        &[P::DiscardingReplacements],
    ),
    (
        P::ProvisioningReplacements,
        E::StepFailed,
        &[P::DiscardingReplacements],
    ),
    (
        P::InstallingReplacements,
        E::StepFailed,
        &[P::DiscardingReplacements],
    ),
    (
        P::WaitingForReroute,
        E::StepFailed,
        &[P::DiscardingReplacements],
    ),
    (
        P::Rerouting,
        E::StepFailed,
        &[P::ReroutingBack, P::DiscardingReplacements],
    ),
    (P::WaitingToTerminate, E::StepFailed, &[P::ReroutingBack]),
    (P::ReleasingOriginals, E::StepFailed, &[P::Failed]),
    (
        P::ReroutingBack,
        E::StepFailed,
        &[P::DiscardingReplacements],
    ),
    (P::DiscardingReplacements, E::StepFailed, &[P::Failed]),
];

/// The phases the graph allows after `event` in `from`; empty if the event is ignored there.
pub fn allowed(from: PhaseKind, event: EventKind) -> &'static [PhaseKind] {
    GRAPH
        .iter()
        .find(|(p, e, _)| *p == from && *e == event)
        .map_or(&[], |(_, _, to)| to)
}

/// Routes one event to the transition for the deployment's phase.
pub(super) fn apply(
    d: &mut Deployment,
    event: Event,
    now: Timestamp,
    out: &mut Vec<Command>,
) -> Result<(), CoreError> {
    match (&d.phase, event) {
        (Phase::Finished { .. }, _) => {}

        (Phase::Created, Event::Created) => out.push(Command::AcquireGroupLock),
        (Phase::Created | Phase::Queued { .. }, Event::GroupLockAcquired { last_successful }) => {
            // A rollback keeps the deployment it restores; any other deployment restores what
            // was last good when it starts.
            if d.creator != crate::model::DeploymentCreator::CodeDeployRollback
                && let Some(last) = last_successful
                && last.deployment_id != d.deployment_id
            {
                d.previous = Some(last);
            }
            d.phase = Phase::ValidatingRevision;
            d.start_time = Some(now);
            out.push(Command::Notify {
                event: crate::model::TriggerEventType::DeploymentStart,
                target: None,
            });
            out.push(Command::ValidateRevision);
        }
        (Phase::Created, Event::GroupLockBusy { active }) if active != d.deployment_id => {
            d.phase = Phase::Queued { behind: active };
        }

        (Phase::ValidatingRevision, Event::RevisionValidated { revision, appspec }) => {
            if let Some(pinned) = revision {
                d.pin_revision(pinned)?;
            }
            if d.group.compute_platform == ComputePlatform::Lambda {
                match super::deployment::lambda_appspec(&d.revision, appspec.as_deref()) {
                    Ok(spec) => d.lambda = Some(spec),
                    Err(e) => {
                        let error =
                            ErrorInformation::new(ErrorCode::InvalidRevision, e.to_string());
                        finish::fail(d, error, now, out);
                        return Ok(());
                    }
                }
            }
            d.phase = Phase::ResolvingTargets;
            out.push(Command::ResolveTargets);
        }
        (Phase::ValidatingRevision, Event::RevisionInvalid { error }) => {
            finish::fail(d, error, now, out);
        }

        (Phase::ResolvingTargets, Event::TargetsResolved { targets }) => {
            if d.group.compute_platform == ComputePlatform::Lambda {
                lambda::start(d, targets, now, out)?;
            } else if d.is_blue_green() {
                blue_green::start(d, targets, now, out)?;
            } else {
                in_place::start(d, targets, now, out)?;
            }
        }
        (Phase::ResolvingTargets, Event::TargetsUnresolved { error }) => {
            finish::fail(d, error, now, out);
        }

        (
            Phase::InPlace { .. },
            Event::LifecycleEventFinished {
                target,
                event,
                outcome,
            },
        ) => in_place::on_lifecycle_event(d, &target, event, outcome, now, out),
        (
            Phase::InstallingReplacements { .. } | Phase::Rerouting | Phase::ReroutingBack { .. },
            Event::LifecycleEventFinished {
                target,
                event,
                outcome,
            },
        ) => blue_green::on_lifecycle_event(d, &target, event, outcome, now, out),
        (Phase::ProvisioningReplacements { .. }, Event::ReplacementsReady { targets }) => {
            blue_green::on_replacements_ready(d, targets, now, out)?;
        }
        (_, Event::ContinueRequested { wait }) => blue_green::on_continue(d, wait, now, out),
        (_, Event::OriginalsReleased) => blue_green::on_originals_released(d, now, out),
        (_, Event::ReplacementsDiscarded) => blue_green::on_replacements_discarded(d, now, out),
        (
            Phase::InPlace { .. }
            | Phase::InstallingReplacements { .. }
            | Phase::Rerouting
            | Phase::ReroutingBack { .. },
            Event::HostCommandClaimed {
                target,
                claim,
                expires_at,
            },
        ) => in_place::on_host_command_claimed(d, &target, claim, expires_at, now),
        (
            Phase::InPlace { .. }
            | Phase::InstallingReplacements { .. }
            | Phase::Rerouting
            | Phase::ReroutingBack { .. },
            Event::HostCommandSent {
                target,
                claim,
                command_id,
            },
        ) => in_place::on_host_command_sent(d, &target, &claim, command_id, now),

        (
            Phase::RunningHook { .. },
            Event::HookExecutionStarted {
                event,
                execution_id,
            },
        ) => lambda::on_hook_started(d, event, execution_id, now, out)?,
        (
            Phase::RunningHook { .. },
            Event::HookExecutionReported {
                execution_id,
                status,
            },
        ) => lambda::on_hook_reported(d, &execution_id, status, now, out),
        (Phase::ShiftingTraffic { .. }, Event::TrafficShifted { percent }) => {
            lambda::on_traffic_shifted(d, percent, now, out);
        }
        (Phase::RestoringTraffic { .. }, Event::TrafficRestored) => {
            lambda::on_traffic_restored(d, now, out);
        }
        (
            _,
            Event::TimerFired {
                timer:
                    timer @ (Timer::ProvisioningDeadline
                    | Timer::ReadyWaitOver
                    | Timer::TerminationWaitOver),
            },
        ) => blue_green::on_timer(d, timer, now, out),
        (_, Event::TimerFired { timer }) => lambda::on_timer(d, timer, now, out),

        (phase, Event::AlarmRaised { alarm })
            if phase.is_started() && d.options.alarm_configuration.watches(&alarm) =>
        {
            let message = format!(
                "The deployment was stopped because alarm '{alarm}' is in the ALARM state."
            );
            finish::stop_on_alarm(
                d,
                ErrorInformation::new(ErrorCode::AlarmActive, message),
                now,
                out,
            );
        }
        (phase, Event::AlarmPollFailed { message })
            if phase.is_started()
                && d.options.alarm_configuration.enabled
                && !d.options.alarm_configuration.ignore_poll_alarm_failure =>
        {
            let message = format!(
                "The deployment was stopped because the state of its alarms could not be read: {message}. Set ignorePollAlarmFailure to continue in that case."
            );
            finish::stop_on_alarm(
                d,
                ErrorInformation::new(ErrorCode::AlarmActive, message),
                now,
                out,
            );
        }

        (Phase::RestoringTraffic { ending }, Event::StepFailed { error }) => {
            let ending = ending.failed_with(
                "The alias could not be moved back to its current version",
                &error,
            );
            finish::conclude(d, ending, now, out);
        }
        (
            Phase::ReroutingBack { .. } | Phase::DiscardingReplacements { .. },
            Event::StepFailed { error },
        ) => blue_green::on_step_failed_while_ending(d, error, now, out),
        (_, Event::StepFailed { error }) => finish::fail(d, error, now, out),

        (
            Phase::RestoringTraffic { .. }
            | Phase::ReleasingOriginals
            | Phase::ReroutingBack { .. }
            | Phase::DiscardingReplacements { .. },
            Event::StopRequested { .. },
        ) => {}
        (
            _,
            Event::StopRequested {
                auto_rollback_enabled,
            },
        ) => {
            finish::stop_on_request(d, auto_rollback_enabled, now, out);
        }

        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNFINISHED: [PhaseKind; 17] = [
        P::Created,
        P::Queued,
        P::ValidatingRevision,
        P::ResolvingTargets,
        P::InPlace,
        P::RunningHook,
        P::ShiftingTraffic,
        P::Baking,
        P::RestoringTraffic,
        P::ProvisioningReplacements,
        P::InstallingReplacements,
        P::WaitingForReroute,
        P::Rerouting,
        P::WaitingToTerminate,
        P::ReleasingOriginals,
        P::ReroutingBack,
        P::DiscardingReplacements,
    ];

    /// The phases in which a Lambda alias's traffic may have moved.
    const TRAFFIC_MOVED: [PhaseKind; 3] = [P::RunningHook, P::ShiftingTraffic, P::Baking];

    /// The blue/green phases with a replacement fleet but traffic still on the originals.
    const BEFORE_REROUTE: [PhaseKind; 3] = [
        P::ProvisioningReplacements,
        P::InstallingReplacements,
        P::WaitingForReroute,
    ];

    /// The blue/green phases in which traffic may have left the original hosts, which are
    /// still there.
    const REROUTED: [PhaseKind; 2] = [P::Rerouting, P::WaitingToTerminate];

    /// The phases that are already ending, or too far along to turn back.
    const ENDING: [PhaseKind; 4] = [
        P::RestoringTraffic,
        P::ReleasingOriginals,
        P::ReroutingBack,
        P::DiscardingReplacements,
    ];

    #[test]
    fn every_unfinished_phase_can_be_stopped() {
        for phase in UNFINISHED {
            let to = allowed(phase, E::StopRequested);
            if ENDING.contains(&phase) {
                assert_eq!(to, &[phase], "{phase:?} is already ending");
            } else if BEFORE_REROUTE.contains(&phase) {
                assert_eq!(to, &[P::DiscardingReplacements], "{phase:?}");
            } else if REROUTED.contains(&phase) {
                assert!(to.contains(&P::ReroutingBack), "{phase:?}");
            } else if TRAFFIC_MOVED.contains(&phase) {
                assert!(to.contains(&P::RestoringTraffic), "{phase:?}");
            } else {
                assert_eq!(to, &[P::Stopped], "{phase:?}");
            }
        }
    }

    #[test]
    fn a_step_that_cannot_be_carried_out_fails_any_unfinished_phase() {
        for phase in UNFINISHED {
            let to = allowed(phase, E::StepFailed);
            if BEFORE_REROUTE.contains(&phase) || phase == P::ReroutingBack {
                assert_eq!(to, &[P::DiscardingReplacements], "{phase:?}");
            } else if REROUTED.contains(&phase) {
                assert!(to.contains(&P::ReroutingBack), "{phase:?}");
                assert!(!to.contains(&P::Failed), "{phase:?}");
            } else if TRAFFIC_MOVED.contains(&phase) {
                assert!(to.contains(&P::RestoringTraffic), "{phase:?}");
                assert!(
                    to.iter()
                        .all(|p| *p == P::Failed || *p == P::RestoringTraffic)
                );
            } else {
                assert_eq!(to, &[P::Failed], "{phase:?}");
            }
        }
    }

    #[test]
    fn traffic_that_may_have_moved_is_restored_before_any_end_but_success() {
        for phase in [P::ShiftingTraffic, P::Baking] {
            for (from, event, to) in GRAPH {
                if *from == phase && *event != E::TrafficShifted && *event != E::TimerFired {
                    assert!(
                        !to.contains(&P::Failed) && !to.contains(&P::Stopped),
                        "{from:?} on {event:?} ends without restoring traffic"
                    );
                }
            }
        }
    }

    #[test]
    fn a_blue_green_deployment_ends_only_through_its_clean_up_unless_it_succeeds() {
        for phase in BEFORE_REROUTE
            .iter()
            .chain(&REROUTED)
            .chain(&[P::ReroutingBack])
        {
            for (from, event, to) in GRAPH {
                if from == phase {
                    assert!(
                        !to.contains(&P::Failed) && !to.contains(&P::Stopped),
                        "{from:?} on {event:?} ends before the fleet is cleaned up"
                    );
                }
            }
        }
        for phase in REROUTED {
            for (from, event, to) in GRAPH {
                if *from == phase && *event != E::LifecycleEventFinished {
                    assert!(
                        !to.contains(&P::DiscardingReplacements) || to.contains(&P::ReroutingBack),
                        "{from:?} on {event:?} discards the replacements without routing back"
                    );
                }
            }
        }
    }

    #[test]
    fn finished_phases_have_no_way_out() {
        for (from, _, to) in GRAPH {
            assert!(
                !from.is_finished(),
                "{from:?} is finished but has a transition"
            );
            assert!(!to.is_empty());
        }
    }

    #[test]
    fn each_phase_and_event_appears_once() {
        for (i, (p, e, _)) in GRAPH.iter().enumerate() {
            assert!(
                GRAPH[i + 1..].iter().all(|(p2, e2, _)| (p2, e2) != (p, e)),
                "{p:?} {e:?} is listed twice"
            );
        }
    }
}
