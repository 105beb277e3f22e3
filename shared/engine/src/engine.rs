//! The step handlers: [`Engine::create`], [`Engine::deliver`] and [`Engine::perform`], plus the
//! entry points for users and watchdogs ([`Engine::stop`], [`Engine::check_alarms`]).

use std::time::Duration;

use cutover_core::appspec::LambdaFunction;
use cutover_core::lifecycle::LifecycleEventName;
use cutover_core::lock::LockDecision;
use cutover_core::machine::{
    self, Command, CreateDeployment, Deployment, Event, HookStatus, LifecycleOutcome,
    OutcomeStatus, Phase, Target,
};
use cutover_core::model::{
    ComputePlatform, DeploymentStatus, DeploymentWaitType, Diagnostics, ErrorCode,
    ErrorInformation, LifecycleErrorCode, LifecycleEventStatus,
};
use cutover_core::{DeploymentId, TargetId, Timestamp};
use futures_util::future::join_all;
use tokio::sync::Mutex;

use crate::ports::{
    Alarms, Clock, Commit, Fleet, HookFunctions, HookRunner, HostRun, LambdaTraffic, Notifier,
    Polled, Ports, Provisioning, Replacements, Resolution, RevisionSource, StepQueue, Store,
    TrafficRouter, Validation,
};
use crate::{EngineError, PortError, Step, Work};

/// How many times a step reloads and decides again when another writer got there first.
const MAX_CONFLICTS: usize = 100;

/// The step handlers, over one set of ports.
#[derive(Debug)]
pub struct Engine<P> {
    ports: P,
    /// Decisions in one process take turns, so that hosts finishing together do not race each
    /// other's conditional writes; writers in other processes are caught by the version check.
    deciding: Mutex<()>,
}

impl<P: Ports> Engine<P> {
    pub fn new(ports: P) -> Self {
        Engine {
            ports,
            deciding: Mutex::new(()),
        }
    }

    pub fn ports(&self) -> &P {
        &self.ports
    }

    /// Saves a new deployment and queues its `Created` event. The group's last successful
    /// deployment becomes its previous revision.
    pub async fn create(&self, mut req: CreateDeployment) -> Result<Deployment, EngineError> {
        let store = self.ports.store();
        req.previous = store
            .last_successful(
                &req.group.application_name,
                &req.group.deployment_group_name,
            )
            .await
            .map_err(EngineError::port("store"))?;
        let d = Deployment::create(req, self.ports.clock().now())?;
        let created = Step::event(d.deployment_id.clone(), Event::Created);
        match store
            .commit(&d, None, vec![created])
            .await
            .map_err(EngineError::port("store"))?
        {
            Commit::Saved => Ok(d),
            // The same request, delivered twice: the first one stands.
            Commit::Conflict => self.load(&d.deployment_id).await,
        }
    }

    /// The deployment as last saved.
    pub async fn load(&self, id: &DeploymentId) -> Result<Deployment, EngineError> {
        self.ports
            .store()
            .load(id)
            .await
            .map_err(EngineError::port("store"))?
            .ok_or_else(|| EngineError::DeploymentNotFound(id.clone()))
    }

    /// Delivers events to a deployment, in order: the core decides, and the new state is saved
    /// with the commands that follow from it. Returns the deployment as saved.
    pub async fn deliver(
        &self,
        id: &DeploymentId,
        events: Vec<Event>,
    ) -> Result<Deployment, EngineError> {
        self.decide(id, None, events, Vec::new()).await
    }

    /// [`Engine::deliver`], starting from `known` (the deployment as this step last read it, so
    /// that an uncontended step reads it only once), and queueing `also` with the commands if
    /// the events changed the deployment.
    async fn decide(
        &self,
        id: &DeploymentId,
        mut known: Option<Deployment>,
        events: Vec<Event>,
        also: Vec<Step>,
    ) -> Result<Deployment, EngineError> {
        let _turn = self.deciding.lock().await;
        for _ in 0..MAX_CONFLICTS {
            let before = match known.take() {
                Some(d) => d,
                None => self.load(id).await?,
            };
            let now = self.ports.clock().now();
            // Copying a deployment costs a pointer per target, so the first event advances
            // `before` itself rather than a copy of it.
            let mut advanced: Option<Deployment> = None;
            let mut next = Vec::new();
            for event in &events {
                let t = machine::advance(advanced.as_ref().unwrap_or(&before), event.clone(), now)?;
                advanced = Some(t.deployment);
                next.extend(t.commands.into_iter().map(|c| step_for(id, c)));
            }
            // `Created` asks for the lock without changing anything, so an unchanged deployment
            // may still have steps to queue.
            let after = match advanced {
                Some(after) if after.version != before.version || !next.is_empty() => after,
                _ => return Ok(before),
            };
            if after.version != before.version {
                next.extend(also.iter().cloned());
            }
            match self
                .ports
                .store()
                .commit(&after, Some(before.version), next)
                .await
                .map_err(EngineError::port("store"))?
            {
                Commit::Saved => return Ok(after),
                Commit::Conflict => continue,
            }
        }
        Err(EngineError::Contended(id.clone()))
    }

    /// Carries out one queued step. Safe to repeat.
    pub async fn perform(&self, step: Step) -> Result<(), EngineError> {
        let id = step.deployment_id;
        match step.work {
            Work::Event(event) => {
                if let Event::TimerFired { timer } = &event
                    && timer.reads_alarms()
                {
                    self.check_alarms(&id).await?;
                }
                self.deliver(&id, vec![event]).await.map(drop)
            }
            Work::Command(command) => self.carry_out(&id, command).await,
            Work::PollHost {
                target,
                command_id,
                events,
                attempt,
            } => {
                self.poll_host(id, target, command_id, events, attempt)
                    .await
            }
        }
    }

    /// A user asked to stop the deployment.
    pub async fn stop(
        &self,
        id: &DeploymentId,
        auto_rollback_enabled: Option<bool>,
    ) -> Result<Deployment, EngineError> {
        let stop = Event::StopRequested {
            auto_rollback_enabled,
        };
        self.deliver(id, vec![stop]).await
    }

    /// Reads the alarms the deployment watches and stops it if one is in ALARM (or if they
    /// cannot be read, unless the deployment says to ignore that).
    pub async fn check_alarms(&self, id: &DeploymentId) -> Result<Deployment, EngineError> {
        let d = self.load(id).await?;
        self.alarms_checked(d).await
    }

    /// [`Engine::check_alarms`] of `d`, as this step last read it.
    async fn alarms_checked(&self, d: Deployment) -> Result<Deployment, EngineError> {
        let watched = &d.options.alarm_configuration;
        if d.is_finished() || !watched.enabled || watched.alarms.is_empty() {
            return Ok(d);
        }
        let names: Vec<String> = watched.alarms.iter().map(|a| a.name.clone()).collect();
        let event = match self.ports.alarms().first_in_alarm(&names).await {
            Ok(None) => return Ok(d),
            Ok(Some(alarm)) => Event::AlarmRaised { alarm },
            Err(e) => Event::AlarmPollFailed { message: e.message },
        };
        let id = d.deployment_id.clone();
        self.decide(&id, Some(d), vec![event], Vec::new()).await
    }

    async fn carry_out(&self, id: &DeploymentId, command: Command) -> Result<(), EngineError> {
        let d = self.load(id).await?;
        let p = &self.ports;
        match command {
            // Work that only moves an unfinished deployment along.
            Command::AcquireGroupLock
            | Command::ValidateRevision
            | Command::ResolveTargets
            | Command::RunLifecycleEvents { .. }
            | Command::BlockTraffic { .. }
            | Command::AllowTraffic { .. }
            | Command::InvokeHook { .. }
            | Command::ShiftTraffic { .. }
            | Command::RestoreTraffic
            | Command::ProvisionReplacements
            | Command::ReleaseOriginals { .. }
            | Command::DiscardReplacements { .. }
                if d.is_finished() =>
            {
                Ok(())
            }
            Command::AcquireGroupLock => {
                let event = match p
                    .store()
                    .acquire_group_lock(&d)
                    .await
                    .map_err(EngineError::port("store"))?
                {
                    LockDecision::Acquired => self.lock_acquired(&d).await?,
                    LockDecision::Queued { active, .. } => Event::GroupLockBusy { active },
                };
                self.decide(id, Some(d), vec![event], Vec::new())
                    .await
                    .map(drop)
            }
            Command::ValidateRevision => {
                let event = match p
                    .revisions()
                    .validate(&d)
                    .await
                    .map_err(EngineError::port("revision source"))?
                {
                    Validation::Valid { pinned, appspec } => Event::RevisionValidated {
                        revision: pinned,
                        appspec,
                    },
                    Validation::Invalid(error) => Event::RevisionInvalid { error },
                };
                self.decide(id, Some(d), vec![event], Vec::new())
                    .await
                    .map(drop)
            }
            Command::ResolveTargets if d.group.compute_platform == ComputePlatform::Lambda => {
                let function = lambda_function(&d)?;
                let event = match p
                    .lambda()
                    .check(function)
                    .await
                    .map_err(EngineError::port("Lambda"))?
                {
                    None => Event::TargetsResolved {
                        targets: vec![machine::lambda_target_id(function)],
                    },
                    Some(error) => Event::TargetsUnresolved { error },
                };
                self.decide(id, Some(d), vec![event], Vec::new())
                    .await
                    .map(drop)
            }
            Command::ResolveTargets => {
                let event = match p
                    .fleet()
                    .resolve(&d)
                    .await
                    .map_err(EngineError::port("fleet"))?
                {
                    Resolution::Targets(targets) => Event::TargetsResolved { targets },
                    Resolution::Unresolved(error) => Event::TargetsUnresolved { error },
                };
                self.decide(id, Some(d), vec![event], Vec::new())
                    .await
                    .map(drop)
            }
            Command::RunLifecycleEvents { targets, events } => {
                let runs = targets
                    .iter()
                    .map(|t| self.run_on_host(id, d.clone(), t, &events));
                join_all(runs).await.into_iter().collect()
            }
            Command::BlockTraffic { targets } => {
                let targets = running(&d, targets, LifecycleEventName::BlockTraffic);
                if targets.is_empty() {
                    return Ok(());
                }
                let outcomes = p
                    .traffic()
                    .block(&d, &targets)
                    .await
                    .map_err(EngineError::port("traffic router"))?;
                self.deliver_outcomes(id, LifecycleEventName::BlockTraffic, outcomes)
                    .await
            }
            Command::AllowTraffic { targets } => {
                let targets = running(&d, targets, LifecycleEventName::AllowTraffic);
                if targets.is_empty() {
                    return Ok(());
                }
                let outcomes = p
                    .traffic()
                    .allow(&d, &targets)
                    .await
                    .map_err(EngineError::port("traffic router"))?;
                self.deliver_outcomes(id, LifecycleEventName::AllowTraffic, outcomes)
                    .await
            }
            Command::ProvisionReplacements => self.provision(id, d).await,
            Command::ReleaseOriginals { targets, terminate } => {
                if d.phase != Phase::ReleasingOriginals {
                    return Ok(());
                }
                let event = match p.replacements().release(&d, &targets, terminate).await {
                    Ok(()) => Event::OriginalsReleased,
                    Err(e) if e.retryable => return Err(EngineError::port("replacements")(e)),
                    Err(e) => Event::StepFailed {
                        error: ErrorInformation::new(
                            ErrorCode::InternalError,
                            format!(
                                "Traffic is on the replacement hosts, but the original hosts could not be let go: {}",
                                e.message
                            ),
                        ),
                    },
                };
                self.decide(id, Some(d), vec![event], Vec::new())
                    .await
                    .map(drop)
            }
            Command::DiscardReplacements { targets } => {
                if !matches!(d.phase, Phase::DiscardingReplacements { .. }) {
                    return Ok(());
                }
                let event = match p.replacements().discard(&d, &targets).await {
                    Ok(()) => Event::ReplacementsDiscarded,
                    Err(e) if e.retryable => return Err(EngineError::port("replacements")(e)),
                    Err(e) => Event::StepFailed {
                        error: ErrorInformation::new(ErrorCode::InternalError, e.message),
                    },
                };
                self.decide(id, Some(d), vec![event], Vec::new())
                    .await
                    .map(drop)
            }
            Command::InvokeHook { event, function } => {
                self.invoke_hook(id, d, event, function).await
            }
            Command::ShiftTraffic { percent } => self.shift_traffic(id, d, percent).await,
            Command::RestoreTraffic => {
                if !matches!(d.phase, Phase::RestoringTraffic { .. }) {
                    return Ok(());
                }
                let event = match p.lambda().restore(lambda_function(&d)?).await {
                    Ok(()) => Event::TrafficRestored,
                    Err(e) if e.retryable => return Err(EngineError::port("Lambda")(e)),
                    Err(e) => Event::StepFailed {
                        error: ErrorInformation::new(
                            ErrorCode::InvalidLambdaConfiguration,
                            e.message,
                        ),
                    },
                };
                self.decide(id, Some(d), vec![event], Vec::new())
                    .await
                    .map(drop)
            }
            // `decide` queues it as a delayed event; a step that carries it anyway queues that.
            schedule @ Command::Schedule { .. } => p
                .queue()
                .send(vec![step_for(id, schedule)])
                .await
                .map_err(EngineError::port("step queue")),
            Command::StopLifecycleEvents { targets } => p
                .hosts()
                .stop(&d, &targets)
                .await
                .map_err(EngineError::port("hosts")),
            Command::Notify { event, target } => p
                .notifier()
                .notify(&d, event, target.as_ref())
                .await
                .map_err(EngineError::port("notifier")),
            Command::StartRollback { rollback } => {
                let created = Step::event(rollback.deployment_id.clone(), Event::Created);
                // A conflict means an earlier delivery of this step saved it already.
                p.store()
                    .commit(&rollback, None, vec![created])
                    .await
                    .map_err(EngineError::port("store"))
                    .map(drop)
            }
            Command::Finish {
                status,
                hand_lock_to,
            } => {
                let holder = p
                    .store()
                    .finish(&d, status, hand_lock_to.as_ref())
                    .await
                    .map_err(EngineError::port("store"))?;
                let Some(next) = holder.filter(|next| next != id) else {
                    return Ok(());
                };
                // Telling it twice is harmless: the core ignores a lock it already holds.
                let acquired = self.lock_acquired(&d).await?;
                match self.deliver(&next, vec![acquired]).await {
                    // The rollback's StartRollback, queued with this step, has not been carried
                    // out yet. Once it is, the rollback's `Created` asks for the lock and finds
                    // it is already the rollback's.
                    Err(EngineError::DeploymentNotFound(_))
                        if hand_lock_to.as_ref() == Some(&next) =>
                    {
                        Ok(())
                    }
                    result => result.map(drop),
                }
            }
        }
    }

    /// A user asked a waiting blue/green deployment to go on (`ContinueDeployment`). Returns
    /// the deployment as it is afterwards; a deployment that is not in that wait is unchanged.
    pub async fn continue_deployment(
        &self,
        id: &DeploymentId,
        wait: DeploymentWaitType,
    ) -> Result<Deployment, EngineError> {
        self.deliver(id, vec![Event::ContinueRequested { wait }])
            .await
    }

    /// Provisions a blue/green deployment's replacement fleet, asking again later while it comes
    /// up. A fleet that comes up after the deployment began to end is discarded again.
    async fn provision(&self, id: &DeploymentId, d: Deployment) -> Result<(), EngineError> {
        if !matches!(d.phase, Phase::ProvisioningReplacements { .. }) {
            return Ok(());
        }
        let replacements = self.ports.replacements();
        let event = match replacements.provision(&d).await {
            Ok(Provisioning::Ready(targets)) => Event::ReplacementsReady { targets },
            Ok(Provisioning::Pending(after)) => {
                let again = Step::command(id.clone(), Command::ProvisionReplacements)
                    .not_before(self.ports.clock().now() + after);
                return self
                    .ports
                    .queue()
                    .send(vec![again])
                    .await
                    .map_err(EngineError::port("step queue"));
            }
            Ok(Provisioning::Failed(error)) => Event::StepFailed { error },
            Err(e) if e.retryable => return Err(EngineError::port("replacements")(e)),
            Err(e) => Event::StepFailed {
                error: ErrorInformation::new(
                    ErrorCode::InternalError,
                    format!(
                        "The replacement hosts could not be provisioned: {}",
                        e.message
                    ),
                ),
            },
        };
        let made = match &event {
            Event::ReplacementsReady { targets } => targets.clone(),
            _ => Vec::new(),
        };
        let after = self.decide(id, Some(d), vec![event], Vec::new()).await?;
        let too_late =
            after.is_finished() || matches!(after.phase, Phase::DiscardingReplacements { .. });
        if too_late && !made.is_empty() {
            replacements
                .discard(&after, &made)
                .await
                .map_err(EngineError::port("replacements"))?;
        }
        Ok(())
    }

    /// A hook function reported (`PutLifecycleEventHookExecutionStatus`). The execution id is
    /// the caller's authority: it must be the id of one of the deployment's hook executions.
    pub async fn report_hook(
        &self,
        id: &DeploymentId,
        execution_id: &str,
        status: HookStatus,
    ) -> Result<HookReport, EngineError> {
        let d = self.load(id).await?;
        let Some(execution) = d
            .targets
            .iter()
            .flat_map(|t| &t.hook_executions)
            .find(|e| e.is(execution_id))
        else {
            return Ok(HookReport::UnknownExecution);
        };
        if d.phase
            != (Phase::RunningHook {
                event: execution.event,
            })
        {
            return Ok(HookReport::AlreadyCompleted);
        }
        let reported = Event::HookExecutionReported {
            execution_id: execution_id.to_owned(),
            status,
        };
        self.decide(id, Some(d), vec![reported], Vec::new()).await?;
        Ok(HookReport::Accepted)
    }

    /// Invokes the hook function of `event` with the deployment's execution id for it, drawing
    /// and recording one first if there is none. A step delivered again invokes the function
    /// again, with the same id, unless it has reported.
    async fn invoke_hook(
        &self,
        id: &DeploymentId,
        d: Deployment,
        event: LifecycleEventName,
        function: String,
    ) -> Result<(), EngineError> {
        if d.phase != (Phase::RunningHook { event }) {
            return Ok(());
        }
        let d = match d.hook_execution(event) {
            Some(_) => d,
            None => {
                let execution_id = crate::ids::execution_id().map_err(|e| {
                    EngineError::port("random source")(PortError::transient(e.to_string()))
                })?;
                let started = Event::HookExecutionStarted {
                    event,
                    execution_id,
                };
                self.decide(id, Some(d), vec![started], Vec::new()).await?
            }
        };
        let Some(execution) = d
            .hook_execution(event)
            .filter(|_| d.phase == (Phase::RunningHook { event }))
        else {
            return Ok(());
        };
        match self
            .ports
            .hook_functions()
            .invoke(&function, id, &execution.execution_id)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.retryable => Err(EngineError::port("hook functions")(e)),
            Err(e) => {
                let error = ErrorInformation::new(
                    ErrorCode::HookExecutionFailure,
                    format!(
                        "The {event} hook function '{function}' could not be invoked: {}",
                        e.message
                    ),
                );
                self.decide(id, Some(d), vec![Event::StepFailed { error }], Vec::new())
                    .await
                    .map(drop)
            }
        }
    }

    /// Reads the alarms, then moves the alias's traffic to the step asked for. A shift that
    /// lands after the deployment began to end is undone.
    async fn shift_traffic(
        &self,
        id: &DeploymentId,
        d: Deployment,
        percent: u8,
    ) -> Result<(), EngineError> {
        let asked =
            |d: &Deployment| matches!(d.phase, Phase::ShiftingTraffic { shifted: false, .. });
        if !asked(&d) {
            return Ok(());
        }
        let d = self.alarms_checked(d).await?;
        if !asked(&d) {
            return Ok(());
        }
        let lambda = self.ports.lambda();
        let function = lambda_function(&d)?;
        let event = match lambda.shift(function, percent).await {
            Ok(()) => Event::TrafficShifted { percent },
            Err(e) if e.retryable => return Err(EngineError::port("Lambda")(e)),
            Err(e) => Event::StepFailed {
                error: ErrorInformation::new(ErrorCode::InvalidLambdaConfiguration, e.message),
            },
        };
        let after = self.decide(id, Some(d), vec![event], Vec::new()).await?;
        let ending = matches!(after.phase, Phase::RestoringTraffic { .. })
            || (after.is_finished() && after.status() != DeploymentStatus::Succeeded);
        if ending {
            lambda
                .restore(lambda_function(&after)?)
                .await
                .map_err(EngineError::port("Lambda"))?;
        }
        Ok(())
    }

    /// `GroupLockAcquired` for a deployment of `d`'s group, with the group's last success now.
    async fn lock_acquired(&self, d: &Deployment) -> Result<Event, EngineError> {
        let last_successful = self
            .ports
            .store()
            .last_successful(&d.application_name, &d.group.deployment_group_name)
            .await
            .map_err(EngineError::port("store"))?;
        Ok(Event::GroupLockAcquired { last_successful })
    }

    /// Runs `events` on one host, saving each outcome as it arrives. Events the saved deployment
    /// already records as finished are not run again, so a step delivered again after a crash
    /// picks up where the host was. Hosts that are sent remote commands go through
    /// [`Engine::send_to_host`] instead.
    async fn run_on_host(
        &self,
        id: &DeploymentId,
        mut d: Deployment,
        target: &TargetId,
        events: &[LifecycleEventName],
    ) -> Result<(), EngineError> {
        if self.ports.hosts().sends_commands() {
            return self.send_to_host(id, d, target, events).await;
        }
        // After each delivery, `d` is what `decide` just saved: reading it back before the next
        // event would cost a store read and be no fresher.
        loop {
            let Some(remaining) = still_to_run(&d, target, events) else {
                return Ok(());
            };
            let started = self.ports.clock().now();
            let outcomes = match self.ports.hosts().run(&d, target, &remaining, None).await {
                Ok(HostRun::Finished(outcomes)) => outcomes,
                Ok(HostRun::Started { .. }) => {
                    return Err(EngineError::port("hosts")(PortError::permanent(
                        "a host that runs events while the engine waits started a remote command",
                    )));
                }
                // The step is delivered again later and resumes at this event.
                Err(e) if e.retryable => return Err(EngineError::port("hosts")(e)),
                Err(e) => self.could_not_run(target, remaining[0], started, e),
            };
            let all_succeeded = outcomes
                .iter()
                .all(|(_, o)| o.status == OutcomeStatus::Succeeded);
            d = self
                .decide(id, Some(d), finished(target, outcomes), Vec::new())
                .await?;
            if !all_succeeded {
                return Ok(());
            }
        }
    }

    /// Hands a host the rest of its run as one remote command, once however many times the step
    /// is delivered. The run is claimed first, with a check of the claim queued for when it
    /// expires; only the step whose claim is saved sends the command. A claim found without a
    /// command is its step's until it expires; after that, the command its step may have sent
    /// before dying is looked for, and recorded if found, or the run is claimed and sent anew.
    async fn send_to_host(
        &self,
        id: &DeploymentId,
        d: Deployment,
        target: &TargetId,
        events: &[LifecycleEventName],
    ) -> Result<(), EngineError> {
        let hosts = self.ports.hosts();
        let Some(remaining) = still_to_run(&d, target, events) else {
            return Ok(());
        };
        let now = self.ports.clock().now();
        if let Some(c) = d.target(target).and_then(Target::running_command) {
            // Sent (and polled by the step that sent it), or being sent.
            if c.command_id.is_some() || !c.expired(now) {
                return Ok(());
            }
            let found = hosts
                .find(target, &c.claim, c.expires_at)
                .await
                .map_err(EngineError::port("hosts"))?;
            if let Some(command_id) = found {
                let claim = c.claim.clone();
                let sent = (claim, command_id, Duration::ZERO);
                return self.record_command(id, d, target, remaining, sent).await;
            }
        }
        let claim = new_claim();
        let expires_at = now + hosts.claim_lease();
        let check = Step {
            deployment_id: id.clone(),
            work: Work::Command(Command::RunLifecycleEvents {
                targets: vec![target.clone()],
                events: events.to_vec(),
            }),
            // A second late, so that a clock a little behind still finds the claim expired.
            not_before: Some(expires_at + Duration::from_secs(1)),
        };
        let claimed = Event::HostCommandClaimed {
            target: target.clone(),
            claim: claim.clone(),
            expires_at,
        };
        let d = self.decide(id, Some(d), vec![claimed], vec![check]).await?;
        let ours = d
            .target(target)
            .and_then(Target::running_command)
            .is_some_and(|c| c.claim == claim && c.command_id.is_none());
        if !ours {
            return Ok(());
        }
        let started = self.ports.clock().now();
        let outcomes = match hosts.run(&d, target, &remaining, Some(&claim)).await {
            Ok(HostRun::Started {
                command_id,
                poll_after,
            }) => {
                let sent = (claim, command_id, poll_after);
                return self.record_command(id, d, target, remaining, sent).await;
            }
            Ok(HostRun::Finished(outcomes)) => outcomes,
            // The claim expires, and its check tries again.
            Err(e) if e.retryable => return Err(EngineError::port("hosts")(e)),
            Err(e) => self.could_not_run(target, remaining[0], started, e),
        };
        self.decide(id, Some(d), finished(target, outcomes), Vec::new())
            .await
            .map(drop)
    }

    /// Records the command sent under a claim, with its first poll. A command that is not
    /// recorded (the deployment ended, or the claim was taken over, while it was being sent) is
    /// cancelled.
    async fn record_command(
        &self,
        id: &DeploymentId,
        d: Deployment,
        target: &TargetId,
        events: Vec<LifecycleEventName>,
        (claim, command_id, poll_after): (String, String, Duration),
    ) -> Result<(), EngineError> {
        let poll = Step {
            deployment_id: id.clone(),
            work: Work::PollHost {
                target: target.clone(),
                command_id: command_id.clone(),
                events,
                attempt: 0,
            },
            not_before: Some(self.ports.clock().now() + poll_after),
        };
        let sent = Event::HostCommandSent {
            target: target.clone(),
            claim,
            command_id: command_id.clone(),
        };
        let after = self.decide(id, Some(d), vec![sent], vec![poll]).await?;
        let recorded = after
            .target(target)
            .and_then(|t| t.host_command.as_ref())
            .and_then(|c| c.command_id.as_deref())
            == Some(command_id.as_str());
        if recorded {
            return Ok(());
        }
        self.ports
            .hosts()
            .cancel(target, &command_id)
            .await
            .map_err(EngineError::port("hosts"))
    }

    /// The outcome of an event that a host could not be asked to run.
    fn could_not_run(
        &self,
        target: &TargetId,
        event: LifecycleEventName,
        started: Timestamp,
        e: PortError,
    ) -> Vec<(LifecycleEventName, LifecycleOutcome)> {
        let failed = LifecycleOutcome {
            status: OutcomeStatus::Failed,
            diagnostics: Some(Diagnostics::new(
                LifecycleErrorCode::UnknownError,
                None,
                format!("{target} could not run {event}: {}", e.message),
                "",
            )),
            start_time: Some(started),
            end_time: Some(self.ports.clock().now()),
        };
        vec![(event, failed)]
    }

    /// Looks at a host command, and delivers its outcomes once it has ended.
    async fn poll_host(
        &self,
        id: DeploymentId,
        target: TargetId,
        command_id: String,
        events: Vec<LifecycleEventName>,
        attempt: u32,
    ) -> Result<(), EngineError> {
        let polled = self
            .ports
            .hosts()
            .poll(&target, &command_id, &events, attempt)
            .await
            .map_err(EngineError::port("hosts"))?;
        match polled {
            Polled::Running(after) => {
                let again = Step {
                    deployment_id: id,
                    work: Work::PollHost {
                        target,
                        command_id,
                        events,
                        attempt: attempt.saturating_add(1),
                    },
                    not_before: Some(self.ports.clock().now() + after),
                };
                self.ports
                    .queue()
                    .send(vec![again])
                    .await
                    .map_err(EngineError::port("step queue"))
            }
            Polled::Finished(outcomes) => self
                .deliver(&id, finished(&target, outcomes))
                .await
                .map(drop),
        }
    }

    async fn deliver_outcomes(
        &self,
        id: &DeploymentId,
        event: LifecycleEventName,
        outcomes: Vec<(TargetId, LifecycleOutcome)>,
    ) -> Result<(), EngineError> {
        let events = outcomes
            .into_iter()
            .map(|(target, outcome)| Event::LifecycleEventFinished {
                target,
                event,
                outcome,
            })
            .collect();
        self.deliver(id, events).await.map(drop)
    }
}

/// Those of `targets` on which `event` is running: a step delivered again after the event
/// ended, or after the deployment moved on, must not move traffic again.
fn running(d: &Deployment, targets: Vec<TargetId>, event: LifecycleEventName) -> Vec<TargetId> {
    targets
        .into_iter()
        .filter(|id| {
            d.target(id).is_some_and(|t| {
                t.lifecycle_events[..t.dispatched].iter().any(|e| {
                    e.lifecycle_event_name == event && e.status == LifecycleEventStatus::InProgress
                })
            })
        })
        .collect()
}

/// The function and alias a Lambda deployment moves, known once its revision is validated.
fn lambda_function(d: &Deployment) -> Result<&LambdaFunction, EngineError> {
    d.lambda.as_ref().map(|spec| &spec.function).ok_or_else(|| {
        EngineError::port("Lambda")(PortError::permanent(format!(
            "deployment {} has no Lambda AppSpec",
            d.deployment_id
        )))
    })
}

/// What [`Engine::report_hook`] did with a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookReport {
    /// The hook was waiting for it.
    Accepted,
    /// The hook has already ended (it reported, timed out, or the deployment moved on).
    AlreadyCompleted,
    /// No hook of the deployment was given this execution id.
    UnknownExecution,
}

/// The step that carries out `command`: a scheduled event is queued to be delivered when due.
fn step_for(id: &DeploymentId, command: Command) -> Step {
    match command {
        Command::Schedule { at, event } => Step::event(id.clone(), *event).not_before(at),
        command => Step::command(id.clone(), command),
    }
}

/// The events of `events` still to run on `target`, if the deployment goes on.
fn still_to_run(
    d: &Deployment,
    target: &TargetId,
    events: &[LifecycleEventName],
) -> Option<Vec<LifecycleEventName>> {
    if d.is_finished() {
        return None;
    }
    unfinished(d.target(target)?, events)
}

/// A claim no other step makes.
fn new_claim() -> String {
    format!("{:016x}", crate::ids::entropy())
}

/// The events of `events` that are still to run on `t`, from the first one that has not
/// succeeded; `None` if none is left, or if one has already failed or been skipped.
fn unfinished(t: &Target, events: &[LifecycleEventName]) -> Option<Vec<LifecycleEventName>> {
    let status = |event: LifecycleEventName| {
        t.lifecycle_events
            .iter()
            .find(|e| e.lifecycle_event_name == event)
            .map(|e| e.status)
    };
    let first = events
        .iter()
        .position(|&e| status(e) != Some(LifecycleEventStatus::Succeeded))?;
    match status(events[first]) {
        Some(s) if !s.is_final() => Some(events[first..].to_vec()),
        _ => None,
    }
}

fn finished(
    target: &TargetId,
    outcomes: Vec<(LifecycleEventName, LifecycleOutcome)>,
) -> Vec<Event> {
    outcomes
        .into_iter()
        .map(|(event, outcome)| Event::LifecycleEventFinished {
            target: target.clone(),
            event,
            outcome,
        })
        .collect()
}
