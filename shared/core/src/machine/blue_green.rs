//! Blue/green deployments to hosts: a replacement (green) fleet is provisioned, the revision is
//! installed on it within the configuration's health limits, traffic is rerouted from the
//! original (blue) hosts to it, and the originals are then terminated or kept.
//!
//! Green hosts run ApplicationStop ... ValidateService, then, when traffic is rerouted, the
//! Allow events; once every green host takes traffic, the blue hosts run the Block events. The
//! group's `deploymentReadyOption` may hold the reroute until a user continues (or until a wait
//! ends), and its `terminateBlueInstancesOnDeploymentSuccess` says what becomes of the originals.
//!
//! A deployment that fails or stops before the reroute discards the green fleet, and traffic
//! never leaves blue. After the reroute, until the originals are let go, it first routes traffic
//! back: the originals run the Allow events and the replacements the Block events; then the
//! green fleet is discarded.

use std::sync::Arc;
use std::time::Duration;

use super::in_place::{self, Runs};
use super::phase::Ending;
use super::{
    Command, CoreError, Deployment, Phase, Target, Timer, finish, scaled, scaled_minutes, schedule,
};
use crate::ids::TargetId;
use crate::lifecycle::{self, ALLOW_TRAFFIC, BLOCK_TRAFFIC, LifecycleEventName, SERVER_INSTALL};
use crate::model::{
    DeploymentReadyAction, DeploymentReadyOption, DeploymentWaitType, ErrorCode, ErrorInformation,
    InstanceAction, LifecycleEventStatus, RollbackInfo, TargetLabel, TargetStatus,
    TriggerEventType,
};
use crate::time::Timestamp;

/// How long the replacement fleet has to come up: its hosts running and reachable.
pub const PROVISIONING_TIMEOUT: Duration = Duration::from_secs(3600);

/// `TargetsResolved`: the original hosts are known; provision their replacements.
pub(super) fn start(
    d: &mut Deployment,
    targets: Vec<TargetId>,
    now: Timestamp,
    out: &mut Vec<Command>,
) -> Result<(), CoreError> {
    let Some(originals) = in_place::resolved_hosts(d, targets, now, out)? else {
        return Ok(());
    };
    d.targets = originals
        .into_iter()
        .map(|id| Arc::new(labelled(id, &BLOCK_TRAFFIC, TargetLabel::Blue)))
        .collect();
    let deadline = now + scaled(d, PROVISIONING_TIMEOUT);
    d.phase = Phase::ProvisioningReplacements { deadline };
    out.push(Command::ProvisionReplacements);
    out.push(schedule(deadline, Timer::ProvisioningDeadline));
    Ok(())
}

/// `ReplacementsReady`: lay out the green hosts' lifecycle and start installing.
pub(super) fn on_replacements_ready(
    d: &mut Deployment,
    targets: Vec<TargetId>,
    now: Timestamp,
    out: &mut Vec<Command>,
) -> Result<(), CoreError> {
    let green = in_place::distinct(targets, "ReplacementsReady")?;
    let refused = if green.is_empty() {
        Some("The replacement fleet has no hosts.".to_owned())
    } else {
        green
            .iter()
            .find(|g| d.target(g).is_some())
            .map(|both| format!("{both} is both an original host and a replacement host; replacements must be new hosts."))
    };
    if let Some(message) = refused {
        finish::fail(
            d,
            ErrorInformation::new(ErrorCode::NoInstances, message),
            now,
            out,
        );
        return Ok(());
    }
    let plan = match d
        .config
        .host_plan(u32::try_from(green.len()).unwrap_or(u32::MAX))
    {
        Ok(plan) => plan,
        Err(e) => {
            let error = ErrorInformation::new(ErrorCode::HealthConstraintsInvalid, e.to_string());
            finish::fail(d, error, now, out);
            return Ok(());
        }
    };
    let events = lifecycle::server_replacement();
    d.targets.extend(
        green
            .into_iter()
            .map(|id| Arc::new(labelled(id, &events, TargetLabel::Green))),
    );
    d.phase = Phase::InstallingReplacements { plan };
    install_progress(d, now, out);
    Ok(())
}

/// `LifecycleEventFinished` while installing, rerouting or routing back.
pub(super) fn on_lifecycle_event(
    d: &mut Deployment,
    target: &TargetId,
    event: LifecycleEventName,
    outcome: super::LifecycleOutcome,
    now: Timestamp,
    out: &mut Vec<Command>,
) {
    if !in_place::record_outcome(d, target, event, outcome, now, out) {
        return;
    }
    match d.phase {
        Phase::InstallingReplacements { .. } => install_progress(d, now, out),
        Phase::Rerouting => reroute_progress(d, now, out),
        Phase::ReroutingBack { .. } => route_back_progress(d, now, out),
        _ => {}
    }
}

/// `ContinueRequested`: end the wait the deployment is in, if it is the one named.
pub(super) fn on_continue(
    d: &mut Deployment,
    wait: DeploymentWaitType,
    now: Timestamp,
    out: &mut Vec<Command>,
) {
    match (&d.phase, wait) {
        (Phase::WaitingForReroute { .. }, DeploymentWaitType::ReadyWait) => reroute(d, now, out),
        (Phase::WaitingToTerminate { .. }, DeploymentWaitType::TerminationWait) => {
            release(d, true, out)
        }
        _ => {}
    }
}

/// The group's `deploymentReadyOption`.
fn ready_option(d: &Deployment) -> Option<DeploymentReadyOption> {
    d.group
        .blue_green_deployment_configuration
        .and_then(|c| c.deployment_ready_option)
}

/// `TimerFired` for a blue/green wait.
pub(super) fn on_timer(d: &mut Deployment, timer: Timer, now: Timestamp, out: &mut Vec<Command>) {
    match (&d.phase, timer) {
        (Phase::ProvisioningReplacements { .. }, Timer::ProvisioningDeadline) => {
            let minutes = scaled(d, PROVISIONING_TIMEOUT).as_secs() / 60;
            let message = format!(
                "The replacement hosts were not running and reachable within {minutes} minutes."
            );
            finish::fail(
                d,
                ErrorInformation::new(ErrorCode::Timeout, message),
                now,
                out,
            );
        }
        (Phase::WaitingForReroute { .. }, Timer::ReadyWaitOver) => match ready_option(d) {
            Some(o) if o.action_on_timeout == DeploymentReadyAction::StopDeployment => {
                let message = format!(
                    "Traffic was not rerouted within the {} minutes the deployment waited (deploymentReadyOption STOP_DEPLOYMENT). Continue the deployment before its wait ends to reroute traffic.",
                    o.wait_time_in_minutes
                );
                finish::stop(
                    d,
                    ErrorInformation::new(ErrorCode::Timeout, message),
                    now,
                    out,
                );
            }
            _ => reroute(d, now, out),
        },
        (Phase::WaitingToTerminate { .. }, Timer::TerminationWaitOver) => release(d, true, out),
        _ => {}
    }
}

/// `OriginalsReleased`: the replacement hosts are the group's; the deployment succeeded.
pub(super) fn on_originals_released(d: &mut Deployment, now: Timestamp, out: &mut Vec<Command>) {
    if d.phase == Phase::ReleasingOriginals {
        finish::succeed(d, now, out);
    }
}

/// `ReplacementsDiscarded`: the green fleet is gone; end as decided.
pub(super) fn on_replacements_discarded(
    d: &mut Deployment,
    now: Timestamp,
    out: &mut Vec<Command>,
) {
    let Phase::DiscardingReplacements { ending } = &d.phase else {
        return;
    };
    let ending = ending.clone();
    note_rollback(d, "The replacement hosts were removed.");
    finish::conclude(d, ending, now, out);
}

/// `StepFailed` while routing traffic back or discarding the green fleet: go on ending, saying
/// what could not be done.
pub(super) fn on_step_failed_while_ending(
    d: &mut Deployment,
    error: ErrorInformation,
    now: Timestamp,
    out: &mut Vec<Command>,
) {
    match &d.phase {
        Phase::ReroutingBack { ending } => {
            let ending = ending.failed_with("Traffic could not be routed back", &error);
            discard(d, ending, out);
        }
        Phase::DiscardingReplacements { ending } => {
            let ending = ending.failed_with(
                "The replacement hosts could not be removed; remove them by hand",
                &error,
            );
            finish::conclude(d, ending, now, out);
        }
        _ => {}
    }
}

/// Whether a deployment that ends now, other than by succeeding, must first undo what it did
/// to the fleet: discard the replacements, and route traffic back to the originals if it may
/// have moved.
pub(super) fn cleans_up_first(d: &Deployment) -> bool {
    matches!(
        d.phase,
        Phase::ProvisioningReplacements { .. }
            | Phase::InstallingReplacements { .. }
            | Phase::WaitingForReroute { .. }
            | Phase::Rerouting
            | Phase::WaitingToTerminate { .. }
    )
}

/// Begins to undo the deployment before it ends as `ending` says.
pub(super) fn clean_up(d: &mut Deployment, ending: Ending, now: Timestamp, out: &mut Vec<Command>) {
    if matches!(d.phase, Phase::Rerouting | Phase::WaitingToTerminate { .. }) {
        route_back(d, ending, now, out);
    } else {
        discard(d, ending, out);
    }
}

/// Whether the original hosts are terminated once the deployment no longer needs them, and the
/// wait before that.
pub(super) fn termination(d: &Deployment) -> Option<u32> {
    d.group
        .blue_green_deployment_configuration
        .and_then(|c| c.terminate_blue_instances_on_deployment_success)
        .filter(|t| t.action == InstanceAction::Terminate)
        .map(|t| t.termination_wait_time_in_minutes)
}

fn labelled(id: TargetId, events: &[LifecycleEventName], label: TargetLabel) -> Target {
    let mut t = Target::new(id, events);
    t.instance_label = Some(label);
    t
}

/// Where a green host's install ends and its Allow events begin.
const INSTALL_END: usize = SERVER_INSTALL.len();

fn is(t: &Target, label: TargetLabel) -> bool {
    t.instance_label == Some(label)
}

fn ids(d: &Deployment, label: TargetLabel) -> Vec<TargetId> {
    d.targets
        .iter()
        .filter(|t| is(t, label))
        .map(|t| t.target_id.clone())
        .collect()
}

fn count(d: &Deployment, label: TargetLabel, status: TargetStatus) -> u32 {
    d.targets
        .iter()
        .filter(|t| is(t, label) && t.status == status)
        .count() as u32
}

/// Hands out the next run to every host of `label` in progress whose current run is over.
fn dispatch(d: &mut Deployment, label: TargetLabel, limit: usize, now: Timestamp) -> Runs {
    in_place::dispatch(d, |t| is(t, label), limit, now)
}

/// Puts the hosts of `label` that are `from` in progress.
fn begin(d: &mut Deployment, label: TargetLabel, from: TargetStatus, now: Timestamp) {
    for t in d
        .targets
        .iter_mut()
        .filter(|t| is(t, label) && t.status == from)
    {
        let t = Arc::make_mut(t);
        t.status = TargetStatus::InProgress;
        t.last_updated_at = Some(now);
    }
}

/// Installs on the green hosts as the plan allows. A green host whose install is over is
/// Ready; once no host can move any more, the deployment waits for the reroute, reroutes, or
/// fails as the plan says.
fn install_progress(d: &mut Deployment, now: Timestamp, out: &mut Vec<Command>) {
    let Phase::InstallingReplacements { plan } = d.phase else {
        return;
    };
    let end = INSTALL_END;
    for t in d
        .targets
        .iter_mut()
        .filter(|t| is(t, TargetLabel::Green) && t.status == TargetStatus::InProgress)
    {
        let installed = t.lifecycle_events[..end]
            .iter()
            .all(|e| e.status == LifecycleEventStatus::Succeeded);
        if installed {
            let t = Arc::make_mut(t);
            t.status = TargetStatus::Ready;
            t.last_updated_at = Some(now);
            out.push(in_place::instance_notice(
                TriggerEventType::InstanceReady,
                &t.target_id,
            ));
        }
    }
    let mut runs = dispatch(d, TargetLabel::Green, end, now);
    let green = |t: &Target| is(t, TargetLabel::Green);
    let in_progress = in_place::start_pending(d, plan, green, end, now, &mut runs, out);
    out.extend(runs.commands());
    if in_progress > 0 {
        return;
    }
    let ready = count(d, TargetLabel::Green, TargetStatus::Ready);
    let pending = count(d, TargetLabel::Green, TargetStatus::Pending);
    if pending == 0 && plan.is_success(ready) {
        installed(d, now, out);
    } else {
        in_place::fail_health(d, plan, pending, now, out);
    }
}

/// The green fleet is installed: reroute now, or wait as the ready option says.
fn installed(d: &mut Deployment, now: Timestamp, out: &mut Vec<Command>) {
    let wait = match ready_option(d) {
        Some(o) if o.action_on_timeout == DeploymentReadyAction::StopDeployment => {
            Some(o.wait_time_in_minutes)
        }
        Some(o) if o.wait_time_in_minutes > 0 => Some(o.wait_time_in_minutes),
        _ => None,
    };
    let Some(minutes) = wait else {
        reroute(d, now, out);
        return;
    };
    let until = now + scaled_minutes(d, minutes);
    d.phase = Phase::WaitingForReroute { until };
    out.push(Command::Notify {
        event: TriggerEventType::DeploymentReady,
        target: None,
    });
    out.push(schedule(until, Timer::ReadyWaitOver));
}

/// Reroutes traffic: every ready green host runs the Allow events.
fn reroute(d: &mut Deployment, now: Timestamp, out: &mut Vec<Command>) {
    d.phase = Phase::Rerouting;
    begin(d, TargetLabel::Green, TargetStatus::Ready, now);
    reroute_progress(d, now, out);
}

/// Moves the reroute along: the green hosts take traffic first, all at once; then the blue
/// hosts give it up, all at once. A host that fails either fails the deployment.
fn reroute_progress(d: &mut Deployment, now: Timestamp, out: &mut Vec<Command>) {
    let runs = dispatch(d, TargetLabel::Green, usize::MAX, now);
    out.extend(runs.commands());
    if count(d, TargetLabel::Green, TargetStatus::InProgress) > 0 {
        return;
    }
    let taking = |t: &Target| t.dispatched > INSTALL_END;
    if failed_reroute(
        d,
        TargetLabel::Green,
        taking,
        "replacement hosts failed to take it",
        now,
        out,
    ) {
        return;
    }
    begin(d, TargetLabel::Blue, TargetStatus::Pending, now);
    let runs = dispatch(d, TargetLabel::Blue, usize::MAX, now);
    out.extend(runs.commands());
    if count(d, TargetLabel::Blue, TargetStatus::InProgress) > 0 {
        return;
    }
    let giving = |_: &Target| true;
    if failed_reroute(
        d,
        TargetLabel::Blue,
        giving,
        "original hosts could not be taken out of service",
        now,
        out,
    ) {
        return;
    }
    rerouted(d, now, out);
}

/// Fails the deployment if a host of `label` that took part in the reroute (as `rerouting`
/// says) failed, saying the `problem`; true if it did.
fn failed_reroute(
    d: &mut Deployment,
    label: TargetLabel,
    rerouting: impl Fn(&Target) -> bool,
    problem: &str,
    now: Timestamp,
    out: &mut Vec<Command>,
) -> bool {
    let failed: Vec<&str> = d
        .targets
        .iter()
        .filter(|t| is(t, label) && t.status == TargetStatus::Failed && rerouting(t))
        .map(|t| t.target_id.as_str())
        .collect();
    if failed.is_empty() {
        return false;
    }
    let message = format!(
        "Traffic could not be rerouted: {} of the {problem} ({}).",
        failed.len(),
        in_place::abbreviate(&failed)
    );
    let code = failure_code(d, label);
    finish::fail(d, ErrorInformation::new(code, message), now, out);
    true
}

/// The error code of a reroute that failed on hosts of `label`: a load balancer's refusal, or
/// a hook script's failure.
fn failure_code(d: &Deployment, label: TargetLabel) -> ErrorCode {
    let by_router = d
        .targets
        .iter()
        .filter(|t| is(t, label))
        .flat_map(|t| &t.lifecycle_events)
        .any(|e| {
            e.status == LifecycleEventStatus::Failed && e.lifecycle_event_name.is_system_event()
        });
    if by_router {
        ErrorCode::ElasticLoadBalancingInvalid
    } else {
        ErrorCode::HookExecutionFailure
    }
}

/// Traffic is on the green fleet: let the originals go, now or after the termination wait.
fn rerouted(d: &mut Deployment, now: Timestamp, out: &mut Vec<Command>) {
    match termination(d) {
        Some(minutes) if minutes > 0 => {
            let until = now + scaled_minutes(d, minutes);
            d.phase = Phase::WaitingToTerminate { until };
            out.push(schedule(until, Timer::TerminationWaitOver));
        }
        Some(_) => release(d, true, out),
        None => release(d, false, out),
    }
}

fn release(d: &mut Deployment, terminate: bool, out: &mut Vec<Command>) {
    d.phase = Phase::ReleasingOriginals;
    out.push(Command::ReleaseOriginals {
        targets: ids(d, TargetLabel::Blue),
        terminate,
    });
}

fn discard(d: &mut Deployment, ending: Ending, out: &mut Vec<Command>) {
    let targets = ids(d, TargetLabel::Green);
    d.phase = Phase::DiscardingReplacements { ending };
    out.push(Command::DiscardReplacements { targets });
}

/// Routes traffic back to the original hosts: each that began to give up traffic runs the Allow
/// events, then each replacement that began to take it runs the Block events. Events caught
/// running are failed and their hosts asked to stop; events not begun are skipped.
fn route_back(d: &mut Deployment, ending: Ending, now: Timestamp, out: &mut Vec<Command>) {
    let allow_at = INSTALL_END + 1;
    let mut interrupted = Vec::new();
    for t in d.targets.iter_mut() {
        let back: &[LifecycleEventName] = match t.instance_label {
            Some(TargetLabel::Blue) if t.dispatched > 0 => &ALLOW_TRAFFIC,
            Some(TargetLabel::Green) if t.dispatched > allow_at => &BLOCK_TRAFFIC,
            _ => &[],
        };
        if back.is_empty() && t.status.is_final() {
            continue;
        }
        let t = Arc::make_mut(t);
        let caught = finish::settle_events(
            t,
            now,
            "The deployment began to route traffic back while this event was running; cutover asked the host to stop it.",
        );
        if caught {
            interrupted.push(t.target_id.clone());
        }
        if back.is_empty() {
            t.status = if caught || t.status == TargetStatus::Failed {
                TargetStatus::Failed
            } else {
                TargetStatus::Skipped
            };
            continue;
        }
        t.dispatched = t.lifecycle_events.len();
        t.lifecycle_events.extend(
            back.iter()
                .copied()
                .map(crate::model::LifecycleEvent::pending),
        );
        t.status = TargetStatus::InProgress;
    }
    if !interrupted.is_empty() {
        out.push(Command::StopLifecycleEvents {
            targets: interrupted,
        });
    }
    d.phase = Phase::ReroutingBack { ending };
    route_back_progress(d, now, out);
}

/// Moves the route back along: the blue hosts take traffic first, then the green hosts give it
/// up; then the green fleet is discarded.
fn route_back_progress(d: &mut Deployment, now: Timestamp, out: &mut Vec<Command>) {
    let runs = dispatch(d, TargetLabel::Blue, usize::MAX, now);
    out.extend(runs.commands());
    if count(d, TargetLabel::Blue, TargetStatus::InProgress) > 0 {
        return;
    }
    let runs = dispatch(d, TargetLabel::Green, usize::MAX, now);
    out.extend(runs.commands());
    if count(d, TargetLabel::Green, TargetStatus::InProgress) > 0 {
        return;
    }
    let Phase::ReroutingBack { ending } = &d.phase else {
        return;
    };
    let mut ending = ending.clone();
    let back_in_service: Vec<&str> = d
        .targets
        .iter()
        .filter(|t| is(t, TargetLabel::Blue) && routed_back(t))
        .map(|t| t.target_id.as_str())
        .collect();
    let failed: Vec<&str> = d
        .targets
        .iter()
        .filter(|t| routed_back(t) && t.status == TargetStatus::Failed)
        .map(|t| t.target_id.as_str())
        .collect();
    if !failed.is_empty() {
        let problem = ErrorInformation::new(
            ErrorCode::ElasticLoadBalancingInvalid,
            format!(
                "{} failed while traffic was routed back; check which hosts serve.",
                in_place::abbreviate(&failed)
            ),
        );
        ending = ending.failed_with("Traffic was not fully routed back", &problem);
    }
    let note = if back_in_service.is_empty() {
        "No original host had left service.".to_owned()
    } else {
        format!(
            "Traffic was routed back to the original hosts ({}).",
            in_place::abbreviate(&back_in_service)
        )
    };
    note_rollback(d, &note);
    discard(d, ending, out);
}

/// Whether the host was given events to route traffic back.
fn routed_back(t: &Target) -> bool {
    let own = match t.instance_label {
        Some(TargetLabel::Green) => INSTALL_END + ALLOW_TRAFFIC.len(),
        _ => BLOCK_TRAFFIC.len(),
    };
    t.lifecycle_events.len() > own
}

/// Adds `note` to what the deployment's `rollbackInfo` says happened.
fn note_rollback(d: &mut Deployment, note: &str) {
    let info = d.rollback_info.get_or_insert_with(RollbackInfo::default);
    info.rollback_message = Some(match info.rollback_message.take() {
        Some(before) => format!("{before} {note}"),
        None => note.to_owned(),
    });
}
