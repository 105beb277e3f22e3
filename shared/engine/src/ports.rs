//! The ports: the small traits through which the engine touches the world. Each has one AWS
//! implementation (`cutover-aws`) and one on this machine (`cutover-local`); tests use
//! in-memory fakes.
//!
//! Methods return `impl Future + Send`, so implementations may be written as `async fn` and the
//! engine's futures can run on a multi-threaded runtime.

use std::future::Future;
use std::time::Duration;

use cutover_core::appspec::LambdaFunction;
use cutover_core::lifecycle::LifecycleEventName;
use cutover_core::lock::LockDecision;
use cutover_core::machine::{Deployment, FinalStatus, LifecycleOutcome, PreviousDeployment};
use cutover_core::model::{ErrorInformation, RevisionLocation, TriggerEventType};
use cutover_core::{DeploymentId, TargetId, Timestamp};

use crate::{PortError, Step};

/// Where deployments, group locks and queued steps are kept.
pub trait Store: Send + Sync {
    /// The deployment as last committed, or `None` if there is no such deployment.
    fn load(
        &self,
        id: &DeploymentId,
    ) -> impl Future<Output = Result<Option<Deployment>, PortError>> + Send;

    /// Saves `deployment` if its stored version is still `expected` (`None`: only if it does
    /// not exist yet), and queues `next`: both or neither. Returns [`Commit::Conflict`], having
    /// changed nothing, if the stored version is another.
    fn commit(
        &self,
        deployment: &Deployment,
        expected: Option<u64>,
        next: Vec<Step>,
    ) -> impl Future<Output = Result<Commit, PortError>> + Send;

    /// Takes the lock of the deployment's group, or queues the deployment behind its holder.
    /// Repeating it changes nothing.
    fn acquire_group_lock(
        &self,
        deployment: &Deployment,
    ) -> impl Future<Output = Result<LockDecision, PortError>> + Send;

    /// Records how the deployment ended on its group (a success becomes the group's last
    /// successful deployment) and releases the group's lock, handing it to `hand_to` when given
    /// and else to the next one waiting. Returns the deployment that holds the lock afterwards,
    /// if any. Repeating it changes nothing and returns the same holder.
    fn finish(
        &self,
        deployment: &Deployment,
        status: FinalStatus,
        hand_to: Option<&DeploymentId>,
    ) -> impl Future<Output = Result<Option<DeploymentId>, PortError>> + Send;

    /// The group's last successful deployment: what a new deployment records as its previous
    /// revision and what a rollback restores.
    fn last_successful(
        &self,
        application: &str,
        group: &str,
    ) -> impl Future<Output = Result<Option<PreviousDeployment>, PortError>> + Send;
}

/// What [`Store::commit`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commit {
    Saved,
    /// The stored version was not the expected one; nothing was written.
    Conflict,
}

/// Checks revisions before anything is deployed.
pub trait RevisionSource: Send + Sync {
    fn validate(
        &self,
        deployment: &Deployment,
    ) -> impl Future<Output = Result<Validation, PortError>> + Send;
}

/// What [`RevisionSource::validate`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum Validation {
    /// The revision is there and well formed. `pinned` is exactly what was found, when more is
    /// known than the request said; `appspec` is the text of a Lambda revision that is a file.
    Valid {
        pinned: Option<RevisionLocation>,
        appspec: Option<String>,
    },
    Invalid(ErrorInformation),
}

impl Validation {
    /// A revision found as the request named it, with nothing to pin.
    pub fn valid() -> Self {
        Validation::Valid {
            pinned: None,
            appspec: None,
        }
    }

    /// A revision found, pinned to exactly what was found.
    pub fn pinned(revision: RevisionLocation) -> Self {
        Validation::Valid {
            pinned: Some(revision),
            appspec: None,
        }
    }
}

/// Finds a deployment's targets.
pub trait Fleet: Send + Sync {
    fn resolve(
        &self,
        deployment: &Deployment,
    ) -> impl Future<Output = Result<Resolution, PortError>> + Send;
}

/// What [`Fleet::resolve`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolution {
    /// The targets, in the order to deploy them.
    Targets(Vec<TargetId>),
    Unresolved(ErrorInformation),
}

/// Sends steps to be carried out later, apart from a deployment's commit: a poll of a host
/// command, for example.
pub trait StepQueue: Send + Sync {
    fn send(&self, steps: Vec<Step>) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Runs lifecycle events on hosts.
///
/// A host either runs events while the engine waits ([`HostRun::Finished`], as local hosts do)
/// or is handed them as one remote command whose outcome is polled later
/// ([`HostRun::Started`], as SSM Run Command does). A remote run is claimed in the store before
/// its command is sent, and the command carries the claim, so that a run gets one command
/// however many times its step is delivered, and whenever the step's process dies.
pub trait HookRunner: Send + Sync {
    /// Whether hosts are handed their events as remote commands.
    fn sends_commands(&self) -> bool {
        false
    }

    /// How long a claim holds before another step may take its run over: longer than a step
    /// can take to send a command.
    fn claim_lease(&self) -> Duration {
        Duration::from_secs(120)
    }

    /// Runs `events`, in order, on one host, or starts them. A host that runs events while the
    /// engine waits may finish only the first ones; the engine saves their outcomes and asks
    /// again for the rest. A remote command carries `claim`, the claim of the run it sends.
    fn run(
        &self,
        deployment: &Deployment,
        target: &TargetId,
        events: &[LifecycleEventName],
        claim: Option<&str>,
    ) -> impl Future<Output = Result<HostRun, PortError>> + Send;

    /// The command sent to `target` under `claim`, a claim that expired at `expires_at`, if
    /// there is one.
    fn find(
        &self,
        _target: &TargetId,
        _claim: &str,
        _expires_at: Timestamp,
    ) -> impl Future<Output = Result<Option<String>, PortError>> + Send {
        async { Ok(None) }
    }

    /// Looks at a command that [`HookRunner::run`] started. `attempt` counts the polls before
    /// this one, so that the runner can space them out.
    fn poll(
        &self,
        target: &TargetId,
        command_id: &str,
        events: &[LifecycleEventName],
        attempt: u32,
    ) -> impl Future<Output = Result<Polled, PortError>> + Send;

    /// Cancels a command that was sent but is not wanted: its deployment ended, or its claim
    /// was taken over, while it was being sent.
    fn cancel(
        &self,
        _target: &TargetId,
        _command_id: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send {
        async { Ok(()) }
    }

    /// The deployment is over: these hosts must not start anything more for it.
    fn stop(
        &self,
        deployment: &Deployment,
        targets: &[TargetId],
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// What [`HookRunner::run`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum HostRun {
    /// These events ended, in order: the first ones of those asked for, at least one.
    Finished(Vec<(LifecycleEventName, LifecycleOutcome)>),
    /// The host runs the events as one command; poll it after `poll_after`.
    Started {
        command_id: String,
        poll_after: Duration,
    },
}

/// What [`HookRunner::poll`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum Polled {
    /// Still running; look again after this long.
    Running(Duration),
    /// The command ended: every event asked for, in order, with its outcome.
    Finished(Vec<(LifecycleEventName, LifecycleOutcome)>),
}

/// Takes hosts out of service and puts them back.
pub trait TrafficRouter: Send + Sync {
    fn block(
        &self,
        deployment: &Deployment,
        targets: &[TargetId],
    ) -> impl Future<Output = Result<Vec<(TargetId, LifecycleOutcome)>, PortError>> + Send;

    fn allow(
        &self,
        deployment: &Deployment,
        targets: &[TargetId],
    ) -> impl Future<Output = Result<Vec<(TargetId, LifecycleOutcome)>, PortError>> + Send;
}

/// Provisions the replacement (green) hosts of blue/green deployments, and lets go of the
/// original or the replacement hosts once a deployment no longer needs them. Every method is
/// safe to repeat.
pub trait Replacements: Send + Sync {
    /// Provisions the replacement fleet of `deployment` (a copy of its Auto Scaling group, new
    /// simulated hosts), or discovers it (the deployment's `targetInstances`). Asked again while
    /// the fleet comes up, it says how far it is; a fleet that cannot come up is removed before
    /// [`Provisioning::Failed`] is returned.
    fn provision(
        &self,
        deployment: &Deployment,
    ) -> impl Future<Output = Result<Provisioning, PortError>> + Send;

    /// Traffic is on the replacements: makes them the group's hosts, and terminates
    /// `originals` (`terminate`) or keeps them running, out of the group.
    fn release(
        &self,
        deployment: &Deployment,
        originals: &[TargetId],
        terminate: bool,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Removes the replacement hosts provisioned for `deployment`, whether or not they are
    /// among `replacements` (provisioning may have made some it never reported). Hosts that
    /// were discovered rather than provisioned are left running.
    fn discard(
        &self,
        deployment: &Deployment,
        replacements: &[TargetId],
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// What [`Replacements::provision`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum Provisioning {
    /// The replacement hosts run and can be reached.
    Ready(Vec<TargetId>),
    /// They are coming up; ask again after this long.
    Pending(Duration),
    /// They cannot come up; whatever was made for them is gone.
    Failed(ErrorInformation),
}

/// Moves the traffic of a Lambda function's alias between two published versions.
pub trait LambdaTraffic: Send + Sync {
    /// Checks that the function, its alias and both versions exist, and that the alias sends
    /// all its traffic to `current_version`. Returns why not (`INVALID_LAMBDA_FUNCTION` or
    /// `INVALID_LAMBDA_CONFIGURATION`, naming the check that failed), or `None`.
    fn check(
        &self,
        function: &LambdaFunction,
    ) -> impl Future<Output = Result<Option<ErrorInformation>, PortError>> + Send;

    /// Gives `target_version` `percent` of the alias's traffic and `current_version` the rest.
    /// At 100 the alias points at `target_version` with no extra weights. Repeating it changes
    /// nothing.
    fn shift(
        &self,
        function: &LambdaFunction,
        percent: u8,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Points the alias back at `current_version`, with no extra weights.
    fn restore(
        &self,
        function: &LambdaFunction,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Invokes the hook functions of Lambda and ECS deployments.
pub trait HookFunctions: Send + Sync {
    /// Invokes `function` asynchronously (Lambda's `Event` invocation type) with
    /// `{"DeploymentId": ..., "LifecycleEventHookExecutionId": ...}`.
    fn invoke(
        &self,
        function: &str,
        deployment_id: &DeploymentId,
        execution_id: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Reads the state of alarms.
pub trait Alarms: Send + Sync {
    /// The first of `names` that is in the ALARM state, if any.
    fn first_in_alarm(
        &self,
        names: &[String],
    ) -> impl Future<Output = Result<Option<String>, PortError>> + Send;
}

/// Tells the outside world about state changes (triggers, event buses, a terminal).
pub trait Notifier: Send + Sync {
    fn notify(
        &self,
        deployment: &Deployment,
        event: TriggerEventType,
        target: Option<&TargetId>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// The time. The core never reads a clock; the engine reads this one.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        std::time::SystemTime::now().into()
    }
}

/// Everything the engine works through, as one bundle.
pub trait Ports: Send + Sync {
    type Store: Store;
    type Queue: StepQueue;
    type Revisions: RevisionSource;
    type Fleet: Fleet;
    type Hosts: HookRunner;
    type Traffic: TrafficRouter;
    type Replacements: Replacements;
    type Lambda: LambdaTraffic;
    type HookFunctions: HookFunctions;
    type Alarms: Alarms;
    type Notifier: Notifier;
    type Clock: Clock;

    fn store(&self) -> &Self::Store;
    fn queue(&self) -> &Self::Queue;
    fn revisions(&self) -> &Self::Revisions;
    fn fleet(&self) -> &Self::Fleet;
    fn hosts(&self) -> &Self::Hosts;
    fn traffic(&self) -> &Self::Traffic;
    fn replacements(&self) -> &Self::Replacements;
    fn lambda(&self) -> &Self::Lambda;
    fn hook_functions(&self) -> &Self::HookFunctions;
    fn alarms(&self) -> &Self::Alarms;
    fn notifier(&self) -> &Self::Notifier;
    fn clock(&self) -> &Self::Clock;
}
