//! A simulated world for driving the state machine in tests: it carries out every command the
//! machine returns (a group lock, a revision validator, a fleet, hosts that run their lifecycle
//! events and fail where the test says, a traffic router) and feeds the resulting events back,
//! in order or shuffled, once or twice.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cutover_core::config::{self, DeploymentConfigInfo};
use cutover_core::lifecycle::LifecycleEventName;
use cutover_core::lock::{GroupQueue, LockDecision};
use cutover_core::machine::{
    self, Command, CreateDeployment, Deployment, Event, FinalStatus, HookStatus, LifecycleOutcome,
    PhaseKind, PreviousDeployment,
};
use cutover_core::model::{
    DeploymentGroupInfo, DeploymentOption, Diagnostics, ErrorInformation, LifecycleErrorCode,
    LoadBalancerInfo, LocalLocation, NamedResource, RevisionLocation, TargetLabel, TargetStatus,
    TriggerEventType,
};
use cutover_core::{DeploymentId, TargetId, Timestamp};

/// A deployment group of `hosts` hosts named host-1 ... host-N.
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

pub fn hosts(n: usize) -> Vec<TargetId> {
    (1..=n)
        .map(|i| TargetId::new(format!("host-{i}")))
        .collect()
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

/// A request for a deployment of revision `rev` to `group` with `config`.
pub fn request(
    n: u64,
    group: DeploymentGroupInfo,
    config: DeploymentConfigInfo,
    rev: &str,
) -> CreateDeployment {
    CreateDeployment::new(DeploymentId::from_entropy(n), group, config, revision(rev))
}

/// One step the machine took: the deployment, the phase before and after, and the event.
#[derive(Clone, Debug)]
pub struct Step {
    pub deployment: DeploymentId,
    pub from: PhaseKind,
    pub event: machine::EventKind,
    pub to: PhaseKind,
}

#[derive(Debug, Default)]
pub struct World {
    pub deployments: BTreeMap<DeploymentId, Deployment>,
    pub queue: GroupQueue,
    pub fleet: Vec<TargetId>,
    /// Lifecycle events that fail, per host.
    pub failures: BTreeSet<(TargetId, LifecycleEventName)>,
    /// Events not yet delivered, each with how many more times it will be delivered.
    pub inbox: Vec<(DeploymentId, Event, u32)>,
    pub now: Timestamp,
    pub steps: Vec<Step>,
    pub notices: Vec<(DeploymentId, TriggerEventType, Option<TargetId>)>,
    pub finished: Vec<(DeploymentId, FinalStatus)>,
    pub stopped_hosts: Vec<(DeploymentId, TargetId)>,
    pub last_successful: Option<PreviousDeployment>,
    /// The most hosts seen out of service (in progress or failed) at once, per deployment.
    pub max_out_of_service: BTreeMap<DeploymentId, u32>,
    /// How many times each event is delivered (1 = once, 2 = a duplicate of every event).
    pub deliveries: u32,
    /// Events scheduled for later, with when they are due; delivered once the inbox is empty,
    /// the world's clock jumping to the first one due.
    pub timers: Vec<(Timestamp, DeploymentId, Event)>,
    /// What each Lambda hook function reports: absent means Succeeded, `None` never reports.
    pub hook_reports: BTreeMap<LifecycleEventName, Option<HookStatus>>,
    /// Hook functions invoked: deployment, event, function, execution id.
    pub invocations: Vec<(DeploymentId, LifecycleEventName, String, String)>,
    /// Every weight the alias was given (0 after a restore), with when.
    pub alias_weights: Vec<(Timestamp, u8)>,
    /// An alarm goes off when a shift to at least this percent is asked for.
    pub alarm_at_percent: Option<u8>,
    /// Hook functions to invoke once the deployment has recorded their execution id.
    pub pending_invocations: Vec<(DeploymentId, LifecycleEventName, String)>,
    /// The hosts a blue/green deployment's provisioning comes up with.
    pub replacements: Vec<TargetId>,
    /// Provisioning fails with this error instead.
    pub provisioning_fails: Option<ErrorInformation>,
    /// The hosts in the load balancer: added by a successful AllowTraffic, removed by a
    /// successful BlockTraffic.
    pub in_service: BTreeSet<TargetId>,
    /// The originals let go (terminated or not) and the replacements discarded, per deployment.
    pub released: Vec<(DeploymentId, Vec<TargetId>, bool)>,
    pub discarded: Vec<(DeploymentId, Vec<TargetId>)>,
    /// Provisioning never answers.
    pub provisioning_silent: bool,
    /// Every BlockTraffic and AllowTraffic carried out, in order, with whether it succeeded.
    pub routed: Vec<(TargetId, LifecycleEventName, bool)>,
    /// The most replacement hosts seen out of service (installing or failed) at once while a
    /// blue/green deployment installs, per deployment.
    pub max_green_out_of_service: BTreeMap<DeploymentId, u32>,
}

impl World {
    pub fn new(fleet: Vec<TargetId>) -> Self {
        World {
            fleet,
            now: Timestamp::from_secs(1_700_000_000),
            deliveries: 1,
            ..Default::default()
        }
    }

    pub fn fail(&mut self, host: &str, event: LifecycleEventName) {
        self.failures.insert((TargetId::new(host), event));
    }

    /// Creates a deployment, remembering the group's last success as CodeDeploy does.
    pub fn create(&mut self, mut req: CreateDeployment) -> DeploymentId {
        req.previous = self.last_successful.clone();
        let d = Deployment::create(req, self.now).expect("a valid deployment");
        let id = d.deployment_id.clone();
        self.deployments.insert(id.clone(), d);
        self.post(&id, Event::Created);
        id
    }

    pub fn post(&mut self, id: &DeploymentId, event: Event) {
        self.inbox.push((id.clone(), event, self.deliveries));
    }

    pub fn deployment(&self, id: &DeploymentId) -> &Deployment {
        &self.deployments[id]
    }

    /// Delivers one event now and carries out the commands it yields.
    pub fn deliver(&mut self, id: &DeploymentId, event: Event) -> Vec<Command> {
        self.now = self.now + std::time::Duration::from_secs(1);
        let before = self.deployments[id].clone();
        let kind = event.kind();
        let t = machine::advance(&before, event, self.now)
            .expect("events from the world are well formed");
        let from = before.phase.kind();
        let to = t.deployment.phase.kind();
        if t.deployment == before {
            assert!(
                t.commands.is_empty()
                    || (from == PhaseKind::Created && kind == machine::EventKind::Created),
                "an event that changed nothing returned commands: {:?}",
                t.commands
            );
        } else {
            assert_eq!(t.deployment.version, before.version + 1);
            let allowed = machine::phase::allowed(from, kind);
            assert!(
                allowed.contains(&to),
                "{from:?} --{kind:?}--> {to:?} is not in the phase graph"
            );
        }
        // A copied target that did not change would make a step cost more than what it does.
        for (old, new) in before.targets.iter().zip(&t.deployment.targets) {
            assert!(
                Arc::ptr_eq(old, new) || old != new,
                "{} was copied but did not change",
                old.target_id
            );
        }
        if from.is_finished() {
            assert_eq!(t.deployment, before, "a finished deployment changed");
            assert!(
                t.commands.is_empty(),
                "a finished deployment returned commands"
            );
        }
        self.steps.push(Step {
            deployment: id.clone(),
            from,
            event: kind,
            to,
        });
        let out_of_service = t
            .deployment
            .targets
            .iter()
            .filter(|t| matches!(t.status, TargetStatus::InProgress | TargetStatus::Failed))
            .count() as u32;
        let max = self.max_out_of_service.entry(id.clone()).or_default();
        *max = (*max).max(out_of_service);
        if to == PhaseKind::InstallingReplacements {
            let green_out = t
                .deployment
                .targets
                .iter()
                .filter(|t| t.instance_label == Some(TargetLabel::Green))
                .filter(|t| matches!(t.status, TargetStatus::InProgress | TargetStatus::Failed))
                .count() as u32;
            let max = self.max_green_out_of_service.entry(id.clone()).or_default();
            *max = (*max).max(green_out);
        }
        self.deployments.insert(id.clone(), t.deployment);
        for c in &t.commands {
            self.execute(id, c.clone());
        }
        t.commands
    }

    fn execute(&mut self, id: &DeploymentId, command: Command) {
        match command {
            Command::AcquireGroupLock => match self.queue.acquire(id) {
                LockDecision::Acquired => {
                    let last_successful = self.last_successful.clone();
                    self.post(id, Event::GroupLockAcquired { last_successful })
                }
                LockDecision::Queued { active, .. } => {
                    self.post(id, Event::GroupLockBusy { active })
                }
            },
            Command::ValidateRevision => self.post(
                id,
                Event::RevisionValidated {
                    revision: None,
                    appspec: None,
                },
            ),
            Command::ResolveTargets => {
                let targets = self.fleet.clone();
                self.post(id, Event::TargetsResolved { targets });
            }
            Command::RunLifecycleEvents { targets, events } => {
                let ignore = self.deployments[id]
                    .options
                    .ignore_application_stop_failures;
                for target in targets {
                    for &event in &events {
                        let fails = self.failures.contains(&(target.clone(), event));
                        self.post(id, finished(&target, event, fails));
                        if fails && !(ignore && event.is_ignorable_stop_event()) {
                            break;
                        }
                    }
                }
            }
            Command::BlockTraffic { targets } => {
                self.route(id, targets, LifecycleEventName::BlockTraffic)
            }
            Command::AllowTraffic { targets } => {
                self.route(id, targets, LifecycleEventName::AllowTraffic)
            }
            Command::InvokeHook { event, function } => {
                // The engine draws an id, records it, and invokes the function with the id the
                // deployment recorded.
                let drawn = format!("exec-{}-{event}-{}", id, self.invocations.len());
                self.post(
                    id,
                    Event::HookExecutionStarted {
                        event,
                        execution_id: drawn,
                    },
                );
                self.pending_invocations.push((id.clone(), event, function));
            }
            Command::ShiftTraffic { percent } => {
                if self.alarm_at_percent.is_some_and(|p| percent >= p) {
                    self.post(
                        id,
                        Event::AlarmRaised {
                            alarm: "errors".into(),
                        },
                    );
                } else {
                    self.alias_weights.push((self.now, percent));
                    self.post(id, Event::TrafficShifted { percent });
                }
            }
            Command::RestoreTraffic => {
                self.alias_weights.push((self.now, 0));
                self.post(id, Event::TrafficRestored);
            }
            Command::Schedule { at, event } => self.timers.push((at, id.clone(), *event)),
            Command::ProvisionReplacements if self.provisioning_silent => {}
            Command::ProvisionReplacements => match self.provisioning_fails.clone() {
                Some(error) => self.post(id, Event::StepFailed { error }),
                None => {
                    let targets = self.replacements.clone();
                    self.post(id, Event::ReplacementsReady { targets });
                }
            },
            Command::ReleaseOriginals { targets, terminate } => {
                self.released.push((id.clone(), targets, terminate));
                self.post(id, Event::OriginalsReleased);
            }
            Command::DiscardReplacements { targets } => {
                self.discarded.push((id.clone(), targets));
                self.post(id, Event::ReplacementsDiscarded);
            }
            Command::StopLifecycleEvents { targets } => {
                self.stopped_hosts
                    .extend(targets.into_iter().map(|t| (id.clone(), t)));
            }
            Command::Notify { event, target } => self.notices.push((id.clone(), event, target)),
            Command::StartRollback { rollback } => {
                let rid = rollback.deployment_id.clone();
                assert!(
                    !self.deployments.contains_key(&rid),
                    "a rollback was started twice"
                );
                self.deployments.insert(rid.clone(), *rollback);
                self.post(&rid, Event::Created);
            }
            Command::Finish {
                status,
                hand_lock_to,
            } => {
                self.finished.push((id.clone(), status));
                if status == FinalStatus::Succeeded {
                    let d = &self.deployments[id];
                    self.last_successful = Some(PreviousDeployment {
                        deployment_id: id.clone(),
                        revision: d.revision.clone(),
                    });
                }
                if let Some(next) = self.queue.release(id, hand_lock_to.as_ref()) {
                    let last_successful = self.last_successful.clone();
                    self.post(&next, Event::GroupLockAcquired { last_successful });
                }
            }
        }
    }

    fn route(&mut self, id: &DeploymentId, targets: Vec<TargetId>, event: LifecycleEventName) {
        for target in targets {
            let fails = self.failures.contains(&(target.clone(), event));
            self.routed.push((target.clone(), event, !fails));
            if !fails && event == LifecycleEventName::AllowTraffic {
                self.in_service.insert(target.clone());
            } else if !fails {
                self.in_service.remove(&target);
            }
            self.post(id, finished(&target, event, fails));
        }
    }

    /// Delivers the events waiting, in order, without letting any timer fire: the deployment
    /// is then as a wait leaves it.
    pub fn settle(&mut self) {
        while !self.inbox.is_empty() {
            let (id, event, left) = self.inbox[0].clone();
            if left <= 1 {
                self.inbox.remove(0);
            } else {
                self.inbox[0].2 -= 1;
            }
            self.deliver(&id, event);
        }
    }

    /// Delivers events in the order they were produced until none are left.
    pub fn run(&mut self) {
        self.run_with(|_| 0);
    }

    /// Delivers events in an order chosen by `pick` (given the inbox size, the index to deliver
    /// next) until none are left.
    pub fn run_with(&mut self, mut pick: impl FnMut(usize) -> usize) {
        let mut budget = 1_000_000;
        loop {
            self.invoke_hooks();
            if self.inbox.is_empty() && !self.fire_next_timer() {
                break;
            }
            budget -= 1;
            assert!(budget > 0, "the world did not go quiet");
            let i = pick(self.inbox.len()) % self.inbox.len();
            let (id, event, left) = self.inbox[i].clone();
            if left <= 1 {
                self.inbox.remove(i);
            } else {
                self.inbox[i].2 -= 1;
            }
            self.deliver(&id, event);
        }
    }
}

impl World {
    /// Invokes the hook functions whose execution id is recorded; each reports as planned.
    fn invoke_hooks(&mut self) {
        let pending = std::mem::take(&mut self.pending_invocations);
        for (id, event, function) in pending {
            let recorded = self.deployments[&id]
                .hook_execution(event)
                .map(|e| e.execution_id.clone());
            let Some(execution_id) = recorded else {
                self.pending_invocations.push((id, event, function));
                continue;
            };
            self.invocations
                .push((id.clone(), event, function, execution_id.clone()));
            let status = self
                .hook_reports
                .get(&event)
                .copied()
                .unwrap_or(Some(HookStatus::Succeeded));
            if let Some(status) = status {
                self.post(
                    &id,
                    Event::HookExecutionReported {
                        execution_id,
                        status,
                    },
                );
            }
        }
    }

    /// Moves the clock to the first timer due and posts it; false if none is left.
    fn fire_next_timer(&mut self) -> bool {
        let Some(i) = (0..self.timers.len()).min_by_key(|&i| self.timers[i].0) else {
            return false;
        };
        let (at, id, event) = self.timers.remove(i);
        if at > self.now {
            self.now = at;
        }
        self.post(&id, event);
        true
    }
}

pub fn finished(target: &TargetId, event: LifecycleEventName, fails: bool) -> Event {
    let outcome = if fails {
        LifecycleOutcome::failed(Diagnostics::new(
            LifecycleErrorCode::ScriptFailed,
            Some(format!("scripts/{event}.sh")),
            format!("Script at specified location: scripts/{event}.sh failed with exit code 1"),
            "boom\n",
        ))
    } else {
        LifecycleOutcome::succeeded()
    };
    Event::LifecycleEventFinished {
        target: target.clone(),
        event,
        outcome,
    }
}
