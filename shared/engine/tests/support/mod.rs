//! In-memory ports for driving the engine in tests, and a driver that plays the queue: it hands
//! the engine every queued step, in order or shuffled, once or twice, until none is left.
//!
//! The fakes keep state rather than scripts: the store holds deployments, the outbox of steps,
//! group queues and each group's last success; hosts record what they ran and fail where the
//! test says. Tests assert on that state, not on which calls were made.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cutover_core::appspec::LambdaFunction;
use cutover_core::config::{self, DeploymentConfigInfo};
use cutover_core::lifecycle::LifecycleEventName;
use cutover_core::lock::{GroupQueue, LockDecision};
use cutover_core::machine::{
    CreateDeployment, Deployment, FinalStatus, LifecycleOutcome, PreviousDeployment,
};
use cutover_core::model::ErrorInformation;
use cutover_core::model::{
    DeploymentGroupInfo, DeploymentOption, Diagnostics, LifecycleErrorCode, LoadBalancerInfo,
    LocalLocation, NamedResource, RevisionLocation, TriggerEventType,
};
use cutover_core::{DeploymentId, TargetId, Timestamp};
use cutover_engine::{
    Alarms, Clock, Commit, Engine, Fleet, HookFunctions, HookRunner, LambdaTraffic, Notifier,
    Polled, PortError, Ports, Provisioning, Replacements, Resolution, RevisionSource, Step,
    StepQueue, Store, TrafficRouter, Validation,
};
use tokio::sync::Notify;

/// The lifecycle events a host runs in an in-place deployment without a load balancer.
pub const SCRIPTED: [LifecycleEventName; 7] = [
    LifecycleEventName::ApplicationStop,
    LifecycleEventName::DownloadBundle,
    LifecycleEventName::BeforeInstall,
    LifecycleEventName::Install,
    LifecycleEventName::AfterInstall,
    LifecycleEventName::ApplicationStart,
    LifecycleEventName::ValidateService,
];

pub fn group(with_traffic_control: bool) -> DeploymentGroupInfo {
    let mut g = DeploymentGroupInfo {
        application_name: "App".into(),
        deployment_group_id: "4f1c2d3e-0000-4000-8000-000000000001".into(),
        deployment_group_name: "Fleet".into(),
        deployment_config_name: config::DEFAULT_SERVER_CONFIG.into(),
        ..Default::default()
    };
    if with_traffic_control {
        g.deployment_style.deployment_option = DeploymentOption::WithTrafficControl;
        g.load_balancer_info = Some(LoadBalancerInfo {
            target_group_info_list: vec![NamedResource { name: "web".into() }],
            ..Default::default()
        });
    }
    g
}

pub fn revision(name: &str) -> RevisionLocation {
    RevisionLocation::Local(LocalLocation {
        path: format!("/revisions/{name}"),
        bundle_type: None,
    })
}

pub fn predefined(name: &str) -> DeploymentConfigInfo {
    config::predefined(name).unwrap_or_else(|| panic!("{name} is not predefined"))
}

/// A request to deploy revision `rev` to `group` with `config`, under an id made from `n`.
pub fn request(n: u64, group: DeploymentGroupInfo, config: &str, rev: &str) -> CreateDeployment {
    CreateDeployment::new(
        DeploymentId::from_entropy(n),
        group,
        predefined(config),
        revision(rev),
    )
}

pub fn host(name: &str) -> TargetId {
    TargetId::new(name)
}

/// An engine over fresh in-memory ports with hosts host-1 ... host-`n`.
pub fn engine(n: usize) -> Engine<MemoryPorts> {
    Engine::new(MemoryPorts::with_hosts(n))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding a fake's lock has failed already; keep its state
    // readable for the assertions that report why.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Every port, in memory.
#[derive(Debug, Default)]
pub struct MemoryPorts {
    pub store: MemoryStore,
    pub revisions: MemoryRevisions,
    pub fleet: MemoryFleet,
    pub hosts: MemoryHosts,
    pub traffic: MemoryTraffic,
    pub alarms: MemoryAlarms,
    pub notifier: MemoryNotifier,
    pub clock: ManualClock,
    pub lambda: MemoryLambda,
    pub replacements: MemoryReplacements,
}

impl MemoryPorts {
    pub fn with_hosts(n: usize) -> Self {
        let ports = MemoryPorts::default();
        *lock(&ports.fleet.hosts) = (1..=n).map(|i| host(&format!("host-{i}"))).collect();
        ports
    }
}

impl Ports for MemoryPorts {
    type Store = MemoryStore;
    type Queue = MemoryStore;
    type Revisions = MemoryRevisions;
    type Fleet = MemoryFleet;
    type Hosts = MemoryHosts;
    type Traffic = MemoryTraffic;
    type Replacements = MemoryReplacements;
    type Lambda = MemoryLambda;
    type HookFunctions = MemoryLambda;
    type Alarms = MemoryAlarms;
    type Notifier = MemoryNotifier;
    type Clock = ManualClock;

    fn store(&self) -> &MemoryStore {
        &self.store
    }
    fn queue(&self) -> &MemoryStore {
        &self.store
    }
    fn revisions(&self) -> &MemoryRevisions {
        &self.revisions
    }
    fn fleet(&self) -> &MemoryFleet {
        &self.fleet
    }
    fn hosts(&self) -> &MemoryHosts {
        &self.hosts
    }
    fn traffic(&self) -> &MemoryTraffic {
        &self.traffic
    }
    fn replacements(&self) -> &MemoryReplacements {
        &self.replacements
    }
    fn lambda(&self) -> &MemoryLambda {
        &self.lambda
    }
    fn hook_functions(&self) -> &MemoryLambda {
        &self.lambda
    }
    fn alarms(&self) -> &MemoryAlarms {
        &self.alarms
    }
    fn notifier(&self) -> &MemoryNotifier {
        &self.notifier
    }
    fn clock(&self) -> &ManualClock {
        &self.clock
    }
}

// ----- store -------------------------------------------------------------------------------

type GroupKey = (String, String);

fn group_key(d: &Deployment) -> GroupKey {
    (
        d.application_name.clone(),
        d.group.deployment_group_name.clone(),
    )
}

/// Deployments, the outbox of steps, group locks and last successes, behind one lock so that a
/// commit is atomic, as a DynamoDB transaction or an SQLite transaction is.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<StoreState>,
}

#[derive(Debug, Default)]
struct StoreState {
    deployments: BTreeMap<DeploymentId, Saved>,
    next_seq: u64,
    outbox: Vec<Step>,
    groups: BTreeMap<GroupKey, GroupQueue>,
    /// With the creation order of the deployment, so that an older success cannot replace a
    /// newer one.
    last_successful: BTreeMap<GroupKey, (u64, PreviousDeployment)>,
    conflicts_to_report: usize,
    always_conflict: bool,
    conflicts_reported: usize,
}

#[derive(Debug)]
struct Saved {
    /// The order in which deployments were first saved.
    seq: u64,
    deployment: Deployment,
}

impl MemoryStore {
    pub fn get(&self, id: &DeploymentId) -> Option<Deployment> {
        lock(&self.state)
            .deployments
            .get(id)
            .map(|s| s.deployment.clone())
    }

    pub fn deployment(&self, id: &DeploymentId) -> Deployment {
        self.get(id)
            .unwrap_or_else(|| panic!("deployment {id} was never saved"))
    }

    /// Every saved deployment, in the order they were first saved.
    pub fn deployments(&self) -> Vec<Deployment> {
        let state = lock(&self.state);
        let mut saved: Vec<&Saved> = state.deployments.values().collect();
        saved.sort_by_key(|s| s.seq);
        saved.into_iter().map(|s| s.deployment.clone()).collect()
    }

    /// Takes every queued step out of the outbox, oldest first.
    pub fn take_steps(&self) -> Vec<Step> {
        std::mem::take(&mut lock(&self.state).outbox)
    }

    pub fn queued_steps(&self) -> Vec<Step> {
        lock(&self.state).outbox.clone()
    }

    pub fn group_queue(&self, application: &str, group: &str) -> GroupQueue {
        lock(&self.state)
            .groups
            .get(&(application.into(), group.into()))
            .cloned()
            .unwrap_or_default()
    }

    pub fn last_successful_of(&self, application: &str, group: &str) -> Option<PreviousDeployment> {
        lock(&self.state)
            .last_successful
            .get(&(application.into(), group.into()))
            .map(|(_, p)| p.clone())
    }

    /// The next `n` updates of a deployment lose their race, as if another process had written
    /// the deployment just before each of them.
    pub fn conflict_next(&self, n: usize) {
        lock(&self.state).conflicts_to_report = n;
    }

    /// Every update of a deployment loses its race from now on.
    pub fn always_conflict(&self) {
        lock(&self.state).always_conflict = true;
    }

    pub fn conflicts_reported(&self) -> usize {
        lock(&self.state).conflicts_reported
    }
}

impl StepQueue for MemoryStore {
    async fn send(&self, steps: Vec<Step>) -> Result<(), PortError> {
        lock(&self.state).outbox.extend(steps);
        Ok(())
    }
}

impl Store for MemoryStore {
    async fn load(&self, id: &DeploymentId) -> Result<Option<Deployment>, PortError> {
        Ok(self.get(id))
    }

    async fn commit(
        &self,
        deployment: &Deployment,
        expected: Option<u64>,
        next: Vec<Step>,
    ) -> Result<Commit, PortError> {
        let mut state = lock(&self.state);
        let state = &mut *state;
        let id = &deployment.deployment_id;
        if expected.is_some() && (state.always_conflict || state.conflicts_to_report > 0) {
            state.conflicts_to_report = state.conflicts_to_report.saturating_sub(1);
            state.conflicts_reported += 1;
            // The other writer's change: the content is what it was, but the version moved on.
            if let Some(saved) = state.deployments.get_mut(id) {
                saved.deployment.version += 1;
            }
            return Ok(Commit::Conflict);
        }
        let stored = state.deployments.get(id).map(|s| s.deployment.version);
        if stored != expected {
            return Ok(Commit::Conflict);
        }
        let seq = match state.deployments.get(id) {
            Some(saved) => saved.seq,
            None => {
                state.next_seq += 1;
                state.next_seq
            }
        };
        state.deployments.insert(
            id.clone(),
            Saved {
                seq,
                deployment: deployment.clone(),
            },
        );
        state.outbox.extend(next);
        Ok(Commit::Saved)
    }

    async fn acquire_group_lock(&self, deployment: &Deployment) -> Result<LockDecision, PortError> {
        let mut state = lock(&self.state);
        let queue = state.groups.entry(group_key(deployment)).or_default();
        Ok(queue.acquire(&deployment.deployment_id))
    }

    async fn finish(
        &self,
        deployment: &Deployment,
        status: FinalStatus,
        hand_to: Option<&DeploymentId>,
    ) -> Result<Option<DeploymentId>, PortError> {
        let mut state = lock(&self.state);
        let state = &mut *state;
        let id = &deployment.deployment_id;
        let key = group_key(deployment);
        if status == FinalStatus::Succeeded {
            let seq = state
                .deployments
                .get(id)
                .map(|s| s.seq)
                .ok_or_else(|| PortError::permanent(format!("{id} was never saved")))?;
            let newer = state
                .last_successful
                .get(&key)
                .is_none_or(|(last, _)| *last < seq);
            if newer {
                let previous = PreviousDeployment {
                    deployment_id: id.clone(),
                    revision: deployment.revision.clone(),
                };
                state.last_successful.insert(key.clone(), (seq, previous));
            }
        }
        let queue = state.groups.entry(key).or_default();
        Ok(match queue.release(id, hand_to) {
            Some(next) => Some(next),
            // Finished before: the lock moved on already, so name its holder again.
            None => queue.active.clone().filter(|active| active != id),
        })
    }

    async fn last_successful(
        &self,
        application: &str,
        group: &str,
    ) -> Result<Option<PreviousDeployment>, PortError> {
        Ok(self.last_successful_of(application, group))
    }
}

// ----- revisions and fleet -----------------------------------------------------------------

/// Every revision is there and well formed.
#[derive(Debug, Default)]
pub struct MemoryRevisions;

impl RevisionSource for MemoryRevisions {
    async fn validate(&self, _deployment: &Deployment) -> Result<Validation, PortError> {
        Ok(Validation::valid())
    }
}

/// The group's hosts, in the order to deploy them.
#[derive(Debug, Default)]
pub struct MemoryFleet {
    pub hosts: Mutex<Vec<TargetId>>,
}

impl Fleet for MemoryFleet {
    async fn resolve(&self, _deployment: &Deployment) -> Result<Resolution, PortError> {
        Ok(Resolution::Targets(lock(&self.hosts).clone()))
    }
}

// ----- hosts -------------------------------------------------------------------------------

/// One lifecycle event that a host ran to the end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRun {
    pub deployment: DeploymentId,
    pub target: TargetId,
    pub event: LifecycleEventName,
}

/// Hosts that run every lifecycle event they are given, record it, and fail the ones the test
/// names. A host told to stop must not be asked for anything more by that deployment.
#[derive(Debug, Default)]
pub struct MemoryHosts {
    state: Mutex<HostsState>,
}

type EventKey = (DeploymentId, TargetId, LifecycleEventName);

#[derive(Debug, Default)]
struct HostsState {
    runs: Vec<HostRun>,
    failures: BTreeSet<EventKey>,
    unreachable: BTreeSet<TargetId>,
    stopped: Vec<(DeploymentId, TargetId)>,
    holds: Vec<(EventKey, Arc<Hold>)>,
    /// Hosts run their events as remote commands, polled later, instead of while the engine
    /// waits.
    remote: bool,
    /// The remote commands sent, by id: the deployment, target and events each runs, and the
    /// claim it was sent under.
    commands: Vec<(DeploymentId, TargetId, Vec<LifecycleEventName>, String)>,
    /// The commands cancelled, by id.
    cancelled: Vec<String>,
    /// Remote sends held, each just before or just after the command is sent.
    send_holds: Vec<(DeploymentId, TargetId, bool, Arc<Hold>)>,
    /// How each ended command ended, by its index in `commands`.
    ended: BTreeMap<usize, Vec<(LifecycleEventName, LifecycleOutcome)>>,
}

/// A host held at the start of one lifecycle event until the test lets it go (or drops the
/// engine's future there, as a crash would).
#[derive(Debug, Default)]
pub struct Hold {
    reached: Notify,
    released: Notify,
}

impl Hold {
    /// Waits until the host has started the event.
    pub async fn reached(&self) {
        self.reached.notified().await;
    }

    /// Lets the host finish the event.
    pub fn release(&self) {
        self.released.notify_one();
    }
}

impl MemoryHosts {
    /// `event` fails on `target` in deployment `id`, with a script failure.
    pub fn fail(&self, id: &DeploymentId, target: &str, event: LifecycleEventName) {
        lock(&self.state)
            .failures
            .insert((id.clone(), host(target), event));
    }

    /// The host cannot be asked to run anything: every call returns an error.
    pub fn make_unreachable(&self, target: &str) {
        lock(&self.state).unreachable.insert(host(target));
    }

    /// Holds `target` at the start of `event` in deployment `id`, once.
    pub fn hold(&self, id: &DeploymentId, target: &str, event: LifecycleEventName) -> Arc<Hold> {
        let hold = Arc::new(Hold::default());
        lock(&self.state)
            .holds
            .push(((id.clone(), host(target), event), hold.clone()));
        hold
    }

    /// From now on hosts run their events as remote commands that the engine polls.
    pub fn run_remotely(&self) {
        lock(&self.state).remote = true;
    }

    /// Holds the next remote command to `target` for deployment `id`, once: just before it is
    /// sent, or, when `sent`, just after.
    pub fn hold_send(&self, id: &DeploymentId, target: &str, sent: bool) -> Arc<Hold> {
        let hold = Arc::new(Hold::default());
        lock(&self.state)
            .send_holds
            .push((id.clone(), host(target), sent, hold.clone()));
        hold
    }

    /// How many remote commands were sent to `target` for deployment `id`.
    pub fn commands_sent(&self, id: &DeploymentId, target: &str) -> usize {
        lock(&self.state)
            .commands
            .iter()
            .filter(|(d, t, _, _)| d == id && t.as_str() == target)
            .count()
    }

    /// The ids of the commands cancelled.
    pub fn cancelled(&self) -> Vec<String> {
        lock(&self.state).cancelled.clone()
    }

    pub fn runs(&self) -> Vec<HostRun> {
        lock(&self.state).runs.clone()
    }

    /// The lifecycle events `target` ran for deployment `id`, in the order it ran them.
    pub fn ran(&self, id: &DeploymentId, target: &str) -> Vec<LifecycleEventName> {
        lock(&self.state)
            .runs
            .iter()
            .filter(|r| &r.deployment == id && r.target.as_str() == target)
            .map(|r| r.event)
            .collect()
    }

    /// The hosts told to stop, with the deployment that told them.
    pub fn stopped(&self) -> Vec<(DeploymentId, TargetId)> {
        lock(&self.state).stopped.clone()
    }
}

impl MemoryHosts {
    async fn run_event(
        &self,
        id: &DeploymentId,
        target: &TargetId,
        event: LifecycleEventName,
    ) -> Result<LifecycleOutcome, PortError> {
        let key = (id.clone(), target.clone(), event);
        let hold = {
            let mut state = lock(&self.state);
            assert!(
                !state.stopped.contains(&(id.clone(), target.clone())),
                "{target} was asked to run {event} for {id} after it was told to stop"
            );
            if state.unreachable.contains(target) {
                return Err(PortError::permanent(format!("{target} does not answer")));
            }
            let i = state.holds.iter().position(|(k, _)| *k == key);
            i.map(|i| state.holds.remove(i).1)
        };
        if let Some(hold) = hold {
            hold.reached.notify_one();
            hold.released.notified().await;
        }
        let mut state = lock(&self.state);
        state.runs.push(HostRun {
            deployment: id.clone(),
            target: target.clone(),
            event,
        });
        Ok(if state.failures.contains(&key) {
            LifecycleOutcome::failed(Diagnostics::new(
                LifecycleErrorCode::ScriptFailed,
                Some(format!("scripts/{event}.sh")),
                format!("Script at specified location: scripts/{event}.sh failed with exit code 1"),
                "boom\n",
            ))
        } else {
            LifecycleOutcome::succeeded()
        })
    }
}

impl MemoryHosts {
    /// Waits at the send hold of (`id`, `target`) for this point, if there is one.
    async fn at_send_hold(&self, id: &DeploymentId, target: &TargetId, sent: bool) {
        let hold = {
            let mut state = lock(&self.state);
            let i = state
                .send_holds
                .iter()
                .position(|(d, t, after, _)| d == id && t == target && *after == sent);
            i.map(|i| state.send_holds.remove(i).3)
        };
        if let Some(hold) = hold {
            hold.reached.notify_one();
            hold.released.notified().await;
        }
    }
}

impl HookRunner for MemoryHosts {
    fn sends_commands(&self) -> bool {
        lock(&self.state).remote
    }

    async fn run(
        &self,
        deployment: &Deployment,
        target: &TargetId,
        events: &[LifecycleEventName],
        claim: Option<&str>,
    ) -> Result<cutover_engine::HostRun, PortError> {
        let id = &deployment.deployment_id;
        if self.sends_commands() {
            let claim = claim.expect("a remote command is sent under a claim");
            self.at_send_hold(id, target, false).await;
            let command_id = {
                let mut state = lock(&self.state);
                if state.unreachable.contains(target) {
                    return Err(PortError::permanent(format!("{target} does not answer")));
                }
                state.commands.push((
                    id.clone(),
                    target.clone(),
                    events.to_vec(),
                    claim.to_owned(),
                ));
                format!("command-{}", state.commands.len())
            };
            self.at_send_hold(id, target, true).await;
            return Ok(cutover_engine::HostRun::Started {
                command_id,
                poll_after: Duration::from_secs(2),
            });
        }
        let outcome = self.run_event(id, target, events[0]).await?;
        Ok(cutover_engine::HostRun::Finished(vec![(
            events[0], outcome,
        )]))
    }

    async fn find(
        &self,
        target: &TargetId,
        claim: &str,
        _expires_at: Timestamp,
    ) -> Result<Option<String>, PortError> {
        let state = lock(&self.state);
        let i = state
            .commands
            .iter()
            .position(|(_, t, _, c)| t == target && c == claim);
        Ok(i.map(|i| format!("command-{}", i + 1)))
    }

    async fn cancel(&self, _target: &TargetId, command_id: &str) -> Result<(), PortError> {
        lock(&self.state).cancelled.push(command_id.to_owned());
        Ok(())
    }

    /// A remote command is still running on its first poll, and ends on the second, having run
    /// its events one by one up to the first failure. Later polls read how it ended.
    async fn poll(
        &self,
        target: &TargetId,
        command_id: &str,
        events: &[LifecycleEventName],
        attempt: u32,
    ) -> Result<Polled, PortError> {
        if attempt == 0 {
            return Ok(Polled::Running(Duration::from_secs(5)));
        }
        let index: usize = command_id
            .strip_prefix("command-")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| PortError::permanent(format!("no command {command_id}")))?;
        let (id, sent_to, sent_events, _) = lock(&self.state).commands[index - 1].clone();
        if let Some(ended) = lock(&self.state).ended.get(&index) {
            return Ok(Polled::Finished(ended.clone()));
        }
        assert_eq!(&sent_to, target);
        assert_eq!(sent_events, events);
        let mut outcomes = Vec::new();
        let mut failed = false;
        for &event in events {
            let outcome = if failed {
                LifecycleOutcome {
                    status: cutover_core::machine::OutcomeStatus::Skipped,
                    diagnostics: None,
                    start_time: None,
                    end_time: None,
                }
            } else {
                self.run_event(&id, target, event).await?
            };
            failed |= outcome.status != cutover_core::machine::OutcomeStatus::Succeeded;
            outcomes.push((event, outcome));
        }
        lock(&self.state).ended.insert(index, outcomes.clone());
        Ok(Polled::Finished(outcomes))
    }

    async fn stop(&self, deployment: &Deployment, targets: &[TargetId]) -> Result<(), PortError> {
        let mut state = lock(&self.state);
        for t in targets {
            let stop = (deployment.deployment_id.clone(), t.clone());
            if !state.stopped.contains(&stop) {
                state.stopped.push(stop);
            }
        }
        Ok(())
    }
}

// ----- traffic, alarms, notifications, time -------------------------------------------------

/// Which hosts are in service behind the load balancer, and every change made to that.
#[derive(Debug, Default)]
pub struct MemoryTraffic {
    state: Mutex<TrafficState>,
}

#[derive(Debug, Default)]
struct TrafficState {
    in_service: BTreeMap<TargetId, bool>,
    changes: Vec<(TargetId, LifecycleEventName)>,
}

impl MemoryTraffic {
    pub fn in_service(&self, target: &str) -> Option<bool> {
        lock(&self.state).in_service.get(&host(target)).copied()
    }

    /// `target` is in service before any deployment moves it.
    pub fn in_service_now(&self, target: &str) {
        lock(&self.state).in_service.insert(host(target), true);
    }

    /// `BlockTraffic` and `AllowTraffic` as they were done to `target`, in order.
    pub fn changes_to(&self, target: &str) -> Vec<LifecycleEventName> {
        lock(&self.state)
            .changes
            .iter()
            .filter(|(t, _)| t.as_str() == target)
            .map(|(_, e)| *e)
            .collect()
    }

    fn route(
        &self,
        targets: &[TargetId],
        event: LifecycleEventName,
        in_service: bool,
    ) -> Vec<(TargetId, LifecycleOutcome)> {
        let mut state = lock(&self.state);
        targets
            .iter()
            .map(|t| {
                state.in_service.insert(t.clone(), in_service);
                state.changes.push((t.clone(), event));
                (t.clone(), LifecycleOutcome::succeeded())
            })
            .collect()
    }
}

impl TrafficRouter for MemoryTraffic {
    async fn block(
        &self,
        _deployment: &Deployment,
        targets: &[TargetId],
    ) -> Result<Vec<(TargetId, LifecycleOutcome)>, PortError> {
        Ok(self.route(targets, LifecycleEventName::BlockTraffic, false))
    }

    async fn allow(
        &self,
        _deployment: &Deployment,
        targets: &[TargetId],
    ) -> Result<Vec<(TargetId, LifecycleOutcome)>, PortError> {
        Ok(self.route(targets, LifecycleEventName::AllowTraffic, true))
    }
}

/// A replacement fleet that comes up after a number of looks, and a record of the hosts let go
/// and discarded.
#[derive(Debug, Default)]
pub struct MemoryReplacements {
    state: Mutex<ReplacementsState>,
}

#[derive(Debug, Default)]
struct ReplacementsState {
    hosts: Vec<TargetId>,
    /// How many more looks find the fleet still coming up.
    pending: u32,
    looks: u32,
    released: Vec<(Vec<TargetId>, bool)>,
    discarded: Vec<Vec<TargetId>>,
}

impl MemoryReplacements {
    /// Provisioning comes up with `hosts`, after `pending` looks that find it coming up.
    pub fn provide(&self, hosts: &[&str], pending: u32) {
        let mut state = lock(&self.state);
        state.hosts = hosts.iter().map(|h| host(h)).collect();
        state.pending = pending;
    }

    pub fn looks(&self) -> u32 {
        lock(&self.state).looks
    }

    pub fn released(&self) -> Vec<(Vec<TargetId>, bool)> {
        lock(&self.state).released.clone()
    }

    pub fn discarded(&self) -> Vec<Vec<TargetId>> {
        lock(&self.state).discarded.clone()
    }
}

impl Replacements for MemoryReplacements {
    async fn provision(&self, _deployment: &Deployment) -> Result<Provisioning, PortError> {
        let mut state = lock(&self.state);
        state.looks += 1;
        if state.pending > 0 {
            state.pending -= 1;
            return Ok(Provisioning::Pending(Duration::from_secs(15)));
        }
        Ok(Provisioning::Ready(state.hosts.clone()))
    }

    async fn release(
        &self,
        _deployment: &Deployment,
        originals: &[TargetId],
        terminate: bool,
    ) -> Result<(), PortError> {
        lock(&self.state)
            .released
            .push((originals.to_vec(), terminate));
        Ok(())
    }

    async fn discard(
        &self,
        _deployment: &Deployment,
        replacements: &[TargetId],
    ) -> Result<(), PortError> {
        lock(&self.state).discarded.push(replacements.to_vec());
        Ok(())
    }
}

/// A Lambda function's alias and the hook functions that can be invoked.
#[derive(Debug, Default)]
pub struct MemoryLambda {
    state: Mutex<LambdaState>,
}

#[derive(Debug, Default)]
struct LambdaState {
    /// What `check` answers.
    invalid: Option<ErrorInformation>,
    /// The percent of traffic on the target version, after each change.
    weights: Vec<u8>,
    /// Shifts to this percent fail for good.
    refuse_percent: Option<u8>,
    /// Hook functions that exist.
    functions: BTreeSet<String>,
    /// Invocations: function, deployment, execution id.
    invocations: Vec<(String, DeploymentId, String)>,
}

impl MemoryLambda {
    pub fn make_invalid(&self, error: ErrorInformation) {
        lock(&self.state).invalid = Some(error);
    }

    pub fn refuse_shift_to(&self, percent: u8) {
        lock(&self.state).refuse_percent = Some(percent);
    }

    pub fn add_function(&self, name: &str) {
        lock(&self.state).functions.insert(name.into());
    }

    pub fn weights(&self) -> Vec<u8> {
        lock(&self.state).weights.clone()
    }

    pub fn invocations(&self) -> Vec<(String, DeploymentId, String)> {
        lock(&self.state).invocations.clone()
    }
}

impl LambdaTraffic for MemoryLambda {
    async fn check(
        &self,
        _function: &LambdaFunction,
    ) -> Result<Option<ErrorInformation>, PortError> {
        Ok(lock(&self.state).invalid.clone())
    }

    async fn shift(&self, _function: &LambdaFunction, percent: u8) -> Result<(), PortError> {
        let mut state = lock(&self.state);
        if state.refuse_percent == Some(percent) {
            return Err(PortError::permanent(
                "the alias was changed by someone else",
            ));
        }
        if state.weights.last() != Some(&percent) {
            state.weights.push(percent);
        }
        Ok(())
    }

    async fn restore(&self, _function: &LambdaFunction) -> Result<(), PortError> {
        let mut state = lock(&self.state);
        if state.weights.last().is_some_and(|&w| w != 0) {
            state.weights.push(0);
        }
        Ok(())
    }
}

impl HookFunctions for MemoryLambda {
    async fn invoke(
        &self,
        function: &str,
        deployment_id: &DeploymentId,
        execution_id: &str,
    ) -> Result<(), PortError> {
        let mut state = lock(&self.state);
        if !state.functions.contains(function) {
            return Err(PortError::permanent(format!(
                "function {function} does not exist"
            )));
        }
        state
            .invocations
            .push((function.into(), deployment_id.clone(), execution_id.into()));
        Ok(())
    }
}

/// Alarms by name: the ones in ALARM, and whether reading them fails.
#[derive(Debug, Default)]
pub struct MemoryAlarms {
    state: Mutex<AlarmsState>,
}

#[derive(Debug, Default)]
struct AlarmsState {
    in_alarm: BTreeSet<String>,
    unreadable: Option<String>,
}

impl MemoryAlarms {
    pub fn raise(&self, name: &str) {
        lock(&self.state).in_alarm.insert(name.into());
    }

    /// Reading alarms fails with `message` from now on.
    pub fn fail_reads(&self, message: &str) {
        lock(&self.state).unreadable = Some(message.into());
    }
}

impl Alarms for MemoryAlarms {
    async fn first_in_alarm(&self, names: &[String]) -> Result<Option<String>, PortError> {
        let state = lock(&self.state);
        if let Some(message) = &state.unreadable {
            return Err(PortError::transient(message.clone()));
        }
        Ok(names.iter().find(|n| state.in_alarm.contains(*n)).cloned())
    }
}

/// One notification: the deployment, what happened, and the host it happened to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Notice {
    pub deployment: DeploymentId,
    pub event: TriggerEventType,
    pub target: Option<TargetId>,
}

/// Every notification sent, in order.
#[derive(Debug, Default)]
pub struct MemoryNotifier {
    sent: Mutex<Vec<Notice>>,
}

impl MemoryNotifier {
    pub fn sent(&self) -> Vec<Notice> {
        lock(&self.sent).clone()
    }

    /// What was sent about deployment `id`, with the host each is about, in order.
    pub fn sent_for(&self, id: &DeploymentId) -> Vec<(TriggerEventType, Option<String>)> {
        lock(&self.sent)
            .iter()
            .filter(|n| &n.deployment == id)
            .map(|n| (n.event, n.target.as_ref().map(|t| t.to_string())))
            .collect()
    }
}

impl Notifier for MemoryNotifier {
    async fn notify(
        &self,
        deployment: &Deployment,
        event: TriggerEventType,
        target: Option<&TargetId>,
    ) -> Result<(), PortError> {
        lock(&self.sent).push(Notice {
            deployment: deployment.deployment_id.clone(),
            event,
            target: target.cloned(),
        });
        Ok(())
    }
}

/// A clock that moves only when the test moves it, so that runs compare equal.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock {
            now: Mutex::new(Timestamp::from_secs(1_700_000_000)),
        }
    }
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        let mut now = lock(&self.now);
        *now = *now + by;
    }
}

impl ManualClock {
    pub fn now_for_tests(&self) -> Timestamp {
        *lock(&self.now)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *lock(&self.now)
    }
}

// ----- the driver ----------------------------------------------------------------------------

/// A small deterministic generator for shuffling, so that a failing seed replays exactly.
#[derive(Debug)]
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Plays the queue: takes the steps the store has queued and hands them to the engine, one at
/// a time, until none is left. A step that fails for a passing reason is queued again; one
/// that fails for good is set aside in `failed`, as the local driver drops it.
#[derive(Debug)]
pub struct Driver {
    deliveries: u32,
    shuffle: Option<Lcg>,
    /// Steps taken from the store, each with how many more times it will be delivered.
    inbox: Vec<(Step, u32)>,
    in_flight: Option<Step>,
    pub performed: Vec<Step>,
    pub failed: Vec<(Step, String)>,
    /// Whether steps wait for their `not_before`, the clock jumping to the first one due when
    /// nothing else is ready.
    timed: bool,
}

impl Default for Driver {
    fn default() -> Self {
        Driver {
            deliveries: 1,
            timed: false,
            shuffle: None,
            inbox: Vec::new(),
            in_flight: None,
            performed: Vec::new(),
            failed: Vec::new(),
        }
    }
}

impl Driver {
    /// Delivers every step once, oldest first.
    pub fn in_order() -> Self {
        Driver::default()
    }

    /// Delivers every step twice.
    pub fn twice(mut self) -> Self {
        self.deliveries = 2;
        self
    }

    /// Holds every step until its `not_before`, moving the clock on when nothing is ready.
    pub fn timed(mut self) -> Self {
        self.timed = true;
        self
    }

    /// Delivers steps in an order drawn from `seed` instead of oldest first.
    pub fn shuffled(mut self, seed: u64) -> Self {
        self.shuffle = Some(Lcg(seed));
        self
    }

    /// Runs until no step is left, and fails the test if a step failed for good.
    pub async fn run(&mut self, engine: &Engine<MemoryPorts>) {
        self.run_until(engine, |_| false).await;
        assert!(self.failed.is_empty(), "steps failed: {:#?}", self.failed);
    }

    /// Runs until `done` holds (checked before every step) or no step is left; says which.
    pub async fn run_until(
        &mut self,
        engine: &Engine<MemoryPorts>,
        mut done: impl FnMut(&MemoryPorts) -> bool,
    ) -> bool {
        let mut budget = 100_000;
        loop {
            let deliveries = self.deliveries;
            let queued = engine.ports().store.take_steps();
            self.inbox
                .extend(queued.into_iter().map(|s| (s, deliveries)));
            if done(engine.ports()) {
                return true;
            }
            if self.inbox.is_empty() {
                return false;
            }
            budget -= 1;
            assert!(budget > 0, "the queue never emptied: {:#?}", self.inbox);
            let clock = &engine.ports().clock;
            let ready: Vec<usize> = (0..self.inbox.len())
                .filter(|&i| {
                    !self.timed || self.inbox[i].0.not_before.is_none_or(|t| t <= clock.now())
                })
                .collect();
            if ready.is_empty() {
                let first = self
                    .inbox
                    .iter()
                    .filter_map(|(s, _)| s.not_before)
                    .min()
                    .unwrap();
                clock.advance(first.since(clock.now()));
                continue;
            }
            let i = match &mut self.shuffle {
                Some(rng) => ready[rng.below(ready.len())],
                None => ready[0],
            };
            let step = if self.inbox[i].1 <= 1 {
                self.inbox.remove(i).0
            } else {
                self.inbox[i].1 -= 1;
                self.inbox[i].0.clone()
            };
            self.in_flight = Some(step.clone());
            let result = engine.perform(step.clone()).await;
            self.in_flight = None;
            match result {
                Ok(()) => self.performed.push(step),
                Err(e) if e.is_retryable() => self.inbox.push((step, 1)),
                Err(e) => self.failed.push((step, e.to_string())),
            }
        }
    }

    /// The step that was being performed when the driver's future was dropped goes back on the
    /// queue, as a message whose handler died becomes visible again.
    pub fn recover_in_flight(&mut self) -> Step {
        let step = self.in_flight.take().expect("no step was being performed");
        self.inbox.push((step.clone(), 1));
        step
    }

    /// Queues `step` for one more delivery.
    pub fn redeliver(&mut self, step: Step) {
        self.inbox.push((step, 1));
    }
}
