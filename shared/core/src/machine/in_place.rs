//! In-place deployments to hosts: each host runs the whole lifecycle in turn, and the
//! configuration's host plan bounds how many hosts are out of service at once.
//!
//! A host's lifecycle is cut into runs: consecutive events done by the host's agent, and the
//! `BlockTraffic` and `AllowTraffic` events done by the traffic router. A run is handed out
//! only when the previous one has finished, so a host is never asked to do two things at once.
//! New hosts start, in the order the targets were resolved, whenever the plan allows; a host
//! that fails stays out of service until the deployment ends.
//!
//! Targets are shared with the deployment `advance` was given, so each transition reads a
//! target first and calls `Arc::make_mut` only on one it is about to change.

use std::sync::Arc;

use super::{
    Command, CoreError, Deployment, HostCommand, LifecycleOutcome, OutcomeStatus, Phase, Target,
    finish,
};
use crate::config::HostPlan;
use crate::ids::TargetId;
use crate::lifecycle::{self, LifecycleEventName};
use crate::model::{
    Diagnostics, ErrorCode, ErrorInformation, LifecycleEventStatus, TargetStatus, TriggerEventType,
};
use crate::time::Timestamp;

/// `TargetsResolved`: lay out every target's lifecycle and start the first hosts.
pub(super) fn start(
    d: &mut Deployment,
    targets: Vec<TargetId>,
    now: Timestamp,
    out: &mut Vec<Command>,
) -> Result<(), CoreError> {
    let Some(unique) = resolved_hosts(d, targets, now, out)? else {
        return Ok(());
    };
    let fleet = u32::try_from(unique.len()).unwrap_or(u32::MAX);
    let plan = match d.config.host_plan(fleet) {
        Ok(plan) => plan,
        Err(e) => {
            finish::fail(
                d,
                ErrorInformation::new(ErrorCode::HealthConstraintsInvalid, e.to_string()),
                now,
                out,
            );
            return Ok(());
        }
    };
    let events = lifecycle::server_in_place(d.with_traffic_control());
    d.targets = unique
        .into_iter()
        .map(|id| Arc::new(Target::new(id, &events)))
        .collect();
    d.phase = Phase::InPlace { plan };
    progress(d, now, out);
    Ok(())
}

/// The hosts `TargetsResolved` names, each once; `None` once the deployment has failed because
/// there are none.
pub(super) fn resolved_hosts(
    d: &mut Deployment,
    targets: Vec<TargetId>,
    now: Timestamp,
    out: &mut Vec<Command>,
) -> Result<Option<Vec<TargetId>>, CoreError> {
    let unique = distinct(targets, "TargetsResolved")?;
    if unique.is_empty() {
        let error = ErrorInformation::new(
            ErrorCode::NoInstances,
            format!(
                "The deployment found no targets in deployment group '{}'. Check the group's tags, Auto Scaling groups or hosts.",
                d.group.deployment_group_name
            ),
        );
        finish::fail(d, error, now, out);
        return Ok(None);
    }
    Ok(Some(unique))
}

/// The targets an event names, each once, in order; an empty id is refused.
pub(super) fn distinct(
    targets: Vec<TargetId>,
    event: &'static str,
) -> Result<Vec<TargetId>, CoreError> {
    let mut unique: Vec<TargetId> = Vec::with_capacity(targets.len());
    for t in targets {
        if t.as_str().is_empty() {
            return Err(CoreError::InvalidEvent {
                event,
                reason: "a target id is empty".into(),
            });
        }
        if !unique.contains(&t) {
            unique.push(t);
        }
    }
    Ok(unique)
}

/// `HostCommandClaimed`: the first claim of the target's current run stands, unless it has
/// expired without a command recorded.
pub(super) fn on_host_command_claimed(
    d: &mut Deployment,
    target: &TargetId,
    claim: String,
    expires_at: Timestamp,
    now: Timestamp,
) {
    let Some(t) = d.targets.iter_mut().find(|t| &t.target_id == target) else {
        return;
    };
    let run_unfinished = t.lifecycle_events[..t.dispatched]
        .iter()
        .any(|e| !e.status.is_final());
    let held = t
        .running_command()
        .is_some_and(|c| c.command_id.is_some() || !c.expired(now));
    if !run_unfinished || held {
        return;
    }
    let t = Arc::make_mut(t);
    t.host_command = Some(HostCommand {
        claim,
        expires_at,
        command_id: None,
        run_end: t.dispatched,
    });
    t.last_updated_at = Some(now);
}

/// `HostCommandSent`: remember the command running the target's current run, if it was sent
/// under the claim that stands. A second command for the same run is not recorded.
pub(super) fn on_host_command_sent(
    d: &mut Deployment,
    target: &TargetId,
    claim: &str,
    command_id: String,
    now: Timestamp,
) {
    let Some(t) = d.targets.iter_mut().find(|t| &t.target_id == target) else {
        return;
    };
    let claimed = t
        .running_command()
        .is_some_and(|c| c.claim == claim && c.command_id.is_none());
    if !claimed {
        return;
    }
    let t = Arc::make_mut(t);
    if let Some(c) = t.host_command.as_mut() {
        c.command_id = Some(command_id);
    }
    t.last_updated_at = Some(now);
}

/// `LifecycleEventFinished`: record the outcome, then move hosts along.
pub(super) fn on_lifecycle_event(
    d: &mut Deployment,
    target: &TargetId,
    event: LifecycleEventName,
    outcome: LifecycleOutcome,
    now: Timestamp,
    out: &mut Vec<Command>,
) {
    if record_outcome(d, target, event, outcome, now, out) {
        progress(d, now, out);
    }
}

/// Records the outcome of an event handed to a target and still running, starts the next
/// event of its run, and settles the target once all its events are over. False if the
/// outcome is not for an event still running, which changes nothing.
pub(super) fn record_outcome(
    d: &mut Deployment,
    target: &TargetId,
    event: LifecycleEventName,
    outcome: LifecycleOutcome,
    now: Timestamp,
    out: &mut Vec<Command>,
) -> bool {
    let ignore_stop_failures = d.options.ignore_application_stop_failures;
    let Some(t) = d.targets.iter_mut().find(|t| &t.target_id == target) else {
        return false;
    };
    let Some(index) = t.lifecycle_events[..t.dispatched]
        .iter()
        .position(|e| e.lifecycle_event_name == event && !e.status.is_final())
    else {
        return false;
    };
    // The outcome is for an event still running, so from here on the target changes.
    let t = Arc::make_mut(t);
    let ignored = outcome.status == OutcomeStatus::Failed
        && ignore_stop_failures
        && event.is_ignorable_stop_event();
    let failed = outcome.status == OutcomeStatus::Failed && !ignored;

    let record = &mut t.lifecycle_events[index];
    record.status = if ignored {
        LifecycleEventStatus::Succeeded
    } else {
        outcome.status.into()
    };
    record.start_time = outcome.start_time.or(record.start_time).or(Some(now));
    record.end_time = Some(outcome.end_time.unwrap_or(now));
    record.diagnostics = outcome.diagnostics.map(|diag| {
        if ignored {
            Diagnostics {
                message: format!(
                    "ignored because ignoreApplicationStopFailures is set: {}",
                    diag.message
                ),
                ..diag
            }
        } else {
            diag
        }
    });
    t.last_updated_at = Some(now);

    if failed {
        // The host stops at its first failure, so nothing after this event will run. Events
        // before it keep waiting for their own reports, which may arrive after this one.
        for e in t.lifecycle_events[index + 1..].iter_mut() {
            e.status = LifecycleEventStatus::Skipped;
        }
    }
    let events = &mut t.lifecycle_events;
    if !events[..t.dispatched]
        .iter()
        .any(|e| e.status == LifecycleEventStatus::InProgress)
        && let Some(next) = events[..t.dispatched]
            .iter_mut()
            .find(|e| e.status == LifecycleEventStatus::Pending)
    {
        next.status = LifecycleEventStatus::InProgress;
        next.start_time = Some(outcome.end_time.unwrap_or(now));
    }
    if events.iter().all(|e| e.status.is_final()) {
        let failed = events
            .iter()
            .any(|e| e.status == LifecycleEventStatus::Failed);
        t.status = if failed {
            TargetStatus::Failed
        } else {
            TargetStatus::Succeeded
        };
        let notice = if failed {
            TriggerEventType::InstanceFailure
        } else {
            TriggerEventType::InstanceSuccess
        };
        out.push(instance_notice(notice, target));
    }
    true
}

/// Hands out the next run to every host whose current run is over, starts new hosts as the
/// plan allows, and finishes the deployment when no host can move any more.
fn progress(d: &mut Deployment, now: Timestamp, out: &mut Vec<Command>) {
    let Phase::InPlace { plan } = d.phase else {
        return;
    };
    let mut runs = dispatch(d, |_| true, usize::MAX, now);
    let in_progress = start_pending(d, plan, |_| true, usize::MAX, now, &mut runs, out);
    out.extend(runs.commands());

    if in_progress > 0 {
        return;
    }
    let succeeded = count(d, TargetStatus::Succeeded);
    let pending = count(d, TargetStatus::Pending);
    if pending == 0 && plan.is_success(succeeded) {
        finish::succeed(d, now, out);
    } else {
        fail_health(d, plan, pending, now, out);
    }
}

/// Fails a deployment whose hosts can no longer meet `plan`, saying which failed and why the
/// `pending` others were not attempted.
pub(super) fn fail_health(
    d: &mut Deployment,
    plan: HostPlan,
    pending: u32,
    now: Timestamp,
    out: &mut Vec<Command>,
) {
    let failed_ids: Vec<&str> = d
        .targets
        .iter()
        .filter(|t| t.status == TargetStatus::Failed)
        .map(|t| t.target_id.as_str())
        .collect();
    let mut message = format!(
        "{} of {} targets failed ({}). Deployment configuration {} ",
        failed_ids.len(),
        plan.fleet_size,
        abbreviate(&failed_ids),
        d.config.deployment_config_name,
    );
    if pending == 0 {
        message += &format!("needs at least {} to succeed.", plan.minimum_successful);
    } else {
        message += &format!(
            "keeps at least {} of {} healthy, so the other {} targets were not attempted.",
            plan.minimum_healthy_hosts, plan.fleet_size, pending
        );
    }
    finish::fail(
        d,
        ErrorInformation::new(ErrorCode::HealthConstraints, message),
        now,
        out,
    );
}

/// A run of lifecycle events that one executor performs without coming back in between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Run {
    Host(Vec<LifecycleEventName>),
    BlockTraffic,
    AllowTraffic,
}

impl Run {
    fn of(event: LifecycleEventName) -> Run {
        match event {
            LifecycleEventName::BlockTraffic => Run::BlockTraffic,
            LifecycleEventName::AllowTraffic => Run::AllowTraffic,
            other => Run::Host(vec![other]),
        }
    }

    fn command(self, targets: Vec<TargetId>) -> Command {
        match self {
            Run::Host(events) => Command::RunLifecycleEvents { targets, events },
            Run::BlockTraffic => Command::BlockTraffic { targets },
            Run::AllowTraffic => Command::AllowTraffic { targets },
        }
    }
}

/// Hands out the next run (of events before index `limit`) to every host in progress that
/// `which` picks and whose current run is over.
pub(super) fn dispatch(
    d: &mut Deployment,
    which: impl Fn(&Target) -> bool,
    limit: usize,
    now: Timestamp,
) -> Runs {
    let mut runs = Runs::default();
    for t in d
        .targets
        .iter_mut()
        .filter(|t| which(t) && t.status == TargetStatus::InProgress)
    {
        if let Some(run) = dispatch_next_run(t, now, limit) {
            runs.add(run, &t.target_id);
        }
    }
    runs
}

/// Starts the pending hosts that `which` picks, in order, while the plan allows, handing each
/// its first run (of events before index `limit`). Returns how many of those hosts are then in
/// progress.
pub(super) fn start_pending(
    d: &mut Deployment,
    plan: HostPlan,
    which: impl Fn(&Target) -> bool,
    limit: usize,
    now: Timestamp,
    runs: &mut Runs,
    out: &mut Vec<Command>,
) -> u32 {
    let mut in_progress = 0;
    let mut failed = 0;
    for t in d.targets.iter().filter(|t| which(t)) {
        match t.status {
            TargetStatus::InProgress => in_progress += 1,
            TargetStatus::Failed => failed += 1,
            _ => {}
        }
    }
    for t in d
        .targets
        .iter_mut()
        .filter(|t| which(t) && t.status == TargetStatus::Pending)
    {
        if !plan.may_start(in_progress, failed) {
            break;
        }
        let started = Arc::make_mut(t);
        started.status = TargetStatus::InProgress;
        started.last_updated_at = Some(now);
        in_progress += 1;
        out.push(instance_notice(
            TriggerEventType::InstanceStart,
            &t.target_id,
        ));
        if let Some(run) = dispatch_next_run(t, now, limit) {
            runs.add(run, &t.target_id);
        }
    }
    in_progress
}

/// The runs handed out in one step, each with the targets it goes to, so that targets doing
/// the same run share one command.
#[derive(Debug, Default)]
pub(super) struct Runs(Vec<(Run, Vec<TargetId>)>);

impl Runs {
    pub(super) fn add(&mut self, run: Run, id: &TargetId) {
        match self.0.iter_mut().find(|(r, _)| *r == run) {
            Some((_, ids)) => ids.push(id.clone()),
            None => self.0.push((run, vec![id.clone()])),
        }
    }

    pub(super) fn commands(self) -> impl Iterator<Item = Command> {
        self.0
            .into_iter()
            .map(|(run, targets)| run.command(targets))
    }
}

/// If the target's handed-out events have all finished, hands out the next run, of events
/// before index `limit` only. A target with nothing to hand out is left as it is, still shared.
fn dispatch_next_run(t: &mut Arc<Target>, now: Timestamp, limit: usize) -> Option<Run> {
    let (run, end) = next_run(t, limit)?;
    let t = Arc::make_mut(t);
    let first = &mut t.lifecycle_events[t.dispatched];
    first.status = LifecycleEventStatus::InProgress;
    first.start_time = Some(now);
    t.dispatched = end;
    t.last_updated_at = Some(now);
    Some(run)
}

/// The run due on the target and the index just past it, or `None` while a handed-out event is
/// unfinished or nothing is left to hand out.
fn next_run(t: &Target, limit: usize) -> Option<(Run, usize)> {
    let events = &t.lifecycle_events[..limit.min(t.lifecycle_events.len())];
    if t.dispatched >= events.len()
        || events[t.dispatched].status.is_final()
        || events[..t.dispatched].iter().any(|e| !e.status.is_final())
    {
        return None;
    }
    let first = t.dispatched;
    let mut run = Run::of(events[first].lifecycle_event_name);
    let mut end = first + 1;
    if let Run::Host(names) = &mut run {
        while end < events.len()
            && matches!(Run::of(events[end].lifecycle_event_name), Run::Host(_))
        {
            names.push(events[end].lifecycle_event_name);
            end += 1;
        }
    }
    Some((run, end))
}

pub(super) fn count(d: &Deployment, status: TargetStatus) -> u32 {
    d.targets.iter().filter(|t| t.status == status).count() as u32
}

pub(super) fn instance_notice(event: TriggerEventType, target: &TargetId) -> Command {
    Command::Notify {
        event,
        target: Some(target.clone()),
    }
}

/// At most five names, then how many more.
pub(super) fn abbreviate(names: &[&str]) -> String {
    match names.len() {
        0 => "none".into(),
        n if n <= 5 => names.join(", "),
        n => format!("{} and {} more", names[..5].join(", "), n - 5),
    }
}
