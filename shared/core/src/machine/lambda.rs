//! Lambda deployments: the BeforeAllowTraffic hook function, then the alias's traffic moved to the
//! target version step by step as the configuration schedules it, then the AfterAllowTraffic
//! hook function, then an optional bake time watched by the alarms.
//!
//! A deployment has one target, the alias, with the events BeforeAllowTraffic, AllowTraffic and
//! AfterAllowTraffic. A hook function is invoked with an execution id that only it learns, and
//! the deployment waits for it to report through `PutLifecycleEventHookExecutionStatus`, for at
//! most [`HOOK_TIMEOUT`]. Waits are timers: [`Command::Schedule`] delivers a [`Timer`] later.
//!
//! Once traffic may have moved, a deployment that fails or stops first puts the alias back on
//! its current version (`RestoringTraffic`) and only then ends.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    Command, CoreError, Deployment, HookExecution, Phase, Target, Timer, finish, phase::Ending,
    scaled, schedule,
};
use crate::appspec::LambdaFunction;
use crate::config::{TrafficSchedule, TrafficStep};
use crate::ids::TargetId;
use crate::lifecycle::LifecycleEventName;
use crate::model::{
    Diagnostics, ErrorCode, ErrorInformation, LifecycleErrorCode, LifecycleEventStatus,
    TargetStatus,
};
use crate::time::Timestamp;

/// How long a hook function has to report, as in CodeDeploy.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(3600);

/// The lifecycle of a Lambda target.
const EVENTS: [LifecycleEventName; 3] = [
    LifecycleEventName::BeforeAllowTraffic,
    LifecycleEventName::AllowTraffic,
    LifecycleEventName::AfterAllowTraffic,
];

/// What a hook function may report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HookStatus {
    Succeeded,
    Failed,
}

/// The target id of a Lambda deployment: `<function>:<alias>`.
pub fn lambda_target_id(function: &LambdaFunction) -> TargetId {
    TargetId::new(format!("{}:{}", function.name, function.alias))
}

/// `TargetsResolved`: the alias was checked; start with its BeforeAllowTraffic hook.
pub(super) fn start(
    d: &mut Deployment,
    targets: Vec<TargetId>,
    now: Timestamp,
    out: &mut Vec<Command>,
) -> Result<(), CoreError> {
    let Some(spec) = &d.lambda else {
        return Err(CoreError::InvalidEvent {
            event: "TargetsResolved",
            reason: "the Lambda deployment has no AppSpec; its revision was never validated".into(),
        });
    };
    let expected = lambda_target_id(&spec.function);
    if targets != [expected.clone()] {
        return Err(CoreError::InvalidEvent {
            event: "TargetsResolved",
            reason: format!("a Lambda deployment has the one target {expected}, not {targets:?}"),
        });
    }
    let mut target = Target::new(expected, &EVENTS);
    target.status = TargetStatus::InProgress;
    target.last_updated_at = Some(now);
    d.targets = vec![Arc::new(target)];
    enter_hook(d, LifecycleEventName::BeforeAllowTraffic, now, out);
    Ok(())
}

/// `HookExecutionStarted`: the first execution id recorded for the running hook stands, and its
/// deadline is scheduled.
pub(super) fn on_hook_started(
    d: &mut Deployment,
    event: LifecycleEventName,
    execution_id: String,
    now: Timestamp,
    out: &mut Vec<Command>,
) -> Result<(), CoreError> {
    if execution_id.is_empty() {
        return Err(CoreError::InvalidEvent {
            event: "HookExecutionStarted",
            reason: "the execution id is empty".into(),
        });
    }
    if d.phase != (Phase::RunningHook { event }) || d.hook_execution(event).is_some() {
        return Ok(());
    }
    let deadline = now + scaled(d, HOOK_TIMEOUT);
    let t = target_mut(d);
    t.hook_executions.push(HookExecution {
        event,
        execution_id: execution_id.clone(),
        deadline,
    });
    t.last_updated_at = Some(now);
    out.push(schedule(deadline, Timer::HookDeadline { execution_id }));
    Ok(())
}

/// `HookExecutionReported`: the running hook's function reported.
pub(super) fn on_hook_reported(
    d: &mut Deployment,
    execution_id: &str,
    status: HookStatus,
    now: Timestamp,
    out: &mut Vec<Command>,
) {
    let Phase::RunningHook { event } = d.phase else {
        return;
    };
    if !d.hook_execution(event).is_some_and(|e| e.is(execution_id)) {
        return;
    }
    match status {
        HookStatus::Succeeded => {
            end_event(d, event, LifecycleEventStatus::Succeeded, None, now);
            after_hook(d, event, now, out);
        }
        HookStatus::Failed => {
            let function = hook_function(d, event);
            let message = format!("The {event} hook function '{function}' reported Failed.");
            hook_failed(d, event, ErrorCode::HookExecutionFailure, message, now, out);
        }
    }
}

/// `TrafficShifted`: the step asked for is done; schedule the next one, or go on to the
/// AfterAllowTraffic hook once the target version has all the traffic.
pub(super) fn on_traffic_shifted(
    d: &mut Deployment,
    percent: u8,
    now: Timestamp,
    out: &mut Vec<Command>,
) {
    let Phase::ShiftingTraffic {
        step,
        shifted: false,
        started,
    } = d.phase
    else {
        return;
    };
    let steps = traffic_schedule(d).0;
    if steps.get(step).map(|s| s.percent) != Some(percent) {
        return;
    }
    let started = started.unwrap_or(now);
    d.phase = Phase::ShiftingTraffic {
        step,
        shifted: true,
        started: Some(started),
    };
    target_mut(d).last_updated_at = Some(now);
    match steps.get(step + 1) {
        Some(next) => {
            let at = started + scaled(d, next.after);
            out.push(schedule(at, Timer::TrafficStep { step: step + 1 }));
        }
        None => {
            end_event(
                d,
                LifecycleEventName::AllowTraffic,
                LifecycleEventStatus::Succeeded,
                None,
                now,
            );
            enter_hook(d, LifecycleEventName::AfterAllowTraffic, now, out);
        }
    }
}

/// `TimerFired`: a wait this deployment scheduled is over.
pub(super) fn on_timer(d: &mut Deployment, timer: Timer, now: Timestamp, out: &mut Vec<Command>) {
    match (&d.phase, timer) {
        (
            &Phase::ShiftingTraffic {
                step,
                shifted: true,
                started,
            },
            Timer::TrafficStep { step: due },
        ) if due == step + 1 => {
            let Some(TrafficStep { percent, .. }) = traffic_schedule(d).0.get(due).copied() else {
                return;
            };
            d.phase = Phase::ShiftingTraffic {
                step: due,
                shifted: false,
                started,
            };
            out.push(Command::ShiftTraffic { percent });
        }
        (&Phase::RunningHook { event }, Timer::HookDeadline { execution_id })
            if d.hook_execution(event).is_some_and(|e| e.is(&execution_id)) =>
        {
            let function = hook_function(d, event);
            let minutes = scaled(d, HOOK_TIMEOUT).as_secs() / 60;
            let message = format!(
                "The {event} hook function '{function}' did not report its result within {minutes} minutes. A hook function must call PutLifecycleEventHookExecutionStatus with the DeploymentId and LifecycleEventHookExecutionId it was invoked with."
            );
            hook_failed(d, event, ErrorCode::Timeout, message, now, out);
        }
        (Phase::Baking { .. }, Timer::BakeOver) => succeed(d, now, out),
        _ => {}
    }
}

/// `TrafficRestored`: the alias is back on its current version; end as decided.
pub(super) fn on_traffic_restored(d: &mut Deployment, now: Timestamp, out: &mut Vec<Command>) {
    let Phase::RestoringTraffic { ending } = &d.phase else {
        return;
    };
    let ending = ending.clone();
    if let Some(spec) = &d.lambda {
        let f = &spec.function;
        d.rollback_info = Some(crate::model::RollbackInfo {
            rollback_message: Some(format!(
                "The traffic of alias '{}' of function '{}' was moved back to version {}.",
                f.alias, f.name, f.current_version
            )),
            ..d.rollback_info.clone().unwrap_or_default()
        });
    }
    finish::conclude(d, ending, now, out);
}

/// The share of the alias's traffic, in percent, that the deployment has given the target
/// version so far, as far as the deployment knows.
pub(super) fn target_percent(d: &Deployment) -> u8 {
    let steps = traffic_schedule(d).0;
    let shifted = |step: usize| steps.get(step).map_or(100, |s| s.percent);
    match &d.phase {
        Phase::ShiftingTraffic {
            step,
            shifted: true,
            ..
        } => shifted(*step),
        Phase::ShiftingTraffic { step, .. } => step.checked_sub(1).map_or(0, shifted),
        Phase::Baking { .. }
        | Phase::RunningHook {
            event: LifecycleEventName::AfterAllowTraffic,
        } => 100,
        Phase::Finished {
            status: super::FinalStatus::Succeeded,
        } if d.lambda.is_some() => 100,
        _ => 0,
    }
}

/// Whether the deployment must put its alias back before it ends: traffic may have moved.
pub(super) fn restores_first(d: &Deployment) -> bool {
    matches!(
        d.phase,
        Phase::ShiftingTraffic { .. }
            | Phase::Baking { .. }
            | Phase::RunningHook {
                event: LifecycleEventName::AfterAllowTraffic
            }
    )
}

/// Starts restoring the alias; the deployment ends as `ending` says once it is restored.
pub(super) fn restore(d: &mut Deployment, ending: Ending, out: &mut Vec<Command>) {
    d.phase = Phase::RestoringTraffic { ending };
    out.push(Command::RestoreTraffic);
}

/// Starts the hook of `event`, or skips it when the AppSpec hooks no function to it.
fn enter_hook(
    d: &mut Deployment,
    event: LifecycleEventName,
    now: Timestamp,
    out: &mut Vec<Command>,
) {
    let function = d
        .lambda
        .as_ref()
        .and_then(|spec| spec.hook(event))
        .map(str::to_owned);
    match function {
        Some(function) => {
            begin_event(d, event, now);
            d.phase = Phase::RunningHook { event };
            out.push(Command::InvokeHook { event, function });
        }
        None => {
            begin_event(d, event, now);
            end_event(d, event, LifecycleEventStatus::Skipped, None, now);
            after_hook(d, event, now, out);
        }
    }
}

/// What follows a hook that succeeded or was skipped.
fn after_hook(
    d: &mut Deployment,
    event: LifecycleEventName,
    now: Timestamp,
    out: &mut Vec<Command>,
) {
    if event == LifecycleEventName::BeforeAllowTraffic {
        begin_event(d, LifecycleEventName::AllowTraffic, now);
        d.phase = Phase::ShiftingTraffic {
            step: 0,
            shifted: false,
            started: None,
        };
        let percent = traffic_schedule(d).0.first().map_or(100, |s| s.percent);
        out.push(Command::ShiftTraffic { percent });
        return;
    }
    match d.options.bake_time_in_minutes.filter(|&m| m > 0) {
        Some(minutes) => {
            let until = now + scaled(d, Duration::from_secs(u64::from(minutes) * 60));
            d.phase = Phase::Baking { until };
            out.push(schedule(until, Timer::BakeOver));
        }
        None => succeed(d, now, out),
    }
}

fn succeed(d: &mut Deployment, now: Timestamp, out: &mut Vec<Command>) {
    let t = target_mut(d);
    t.status = TargetStatus::Succeeded;
    t.last_updated_at = Some(now);
    finish::succeed(d, now, out);
}

/// A hook failed or timed out: its event fails, and so does the deployment.
fn hook_failed(
    d: &mut Deployment,
    event: LifecycleEventName,
    code: ErrorCode,
    message: String,
    now: Timestamp,
    out: &mut Vec<Command>,
) {
    let lifecycle_code = match code {
        ErrorCode::Timeout => LifecycleErrorCode::ScriptTimedOut,
        _ => LifecycleErrorCode::ScriptFailed,
    };
    let diagnostics = Diagnostics::new(
        lifecycle_code,
        Some(hook_function(d, event)),
        message.clone(),
        "",
    );
    end_event(
        d,
        event,
        LifecycleEventStatus::Failed,
        Some(diagnostics),
        now,
    );
    finish::fail(d, ErrorInformation::new(code, message), now, out);
}

fn hook_function(d: &Deployment, event: LifecycleEventName) -> String {
    d.lambda
        .as_ref()
        .and_then(|spec| spec.hook(event))
        .unwrap_or_default()
        .to_owned()
}

/// The configuration's schedule; a configuration without one moves all traffic at once.
fn traffic_schedule(d: &Deployment) -> TrafficSchedule {
    d.config
        .traffic_routing_config
        .as_ref()
        .and_then(|routing| TrafficSchedule::new(routing).ok())
        .unwrap_or_else(|| {
            TrafficSchedule(vec![TrafficStep {
                after: Duration::ZERO,
                percent: 100,
            }])
        })
}

/// A wait of the deployment's, compressed by its time scale.
fn target_mut(d: &mut Deployment) -> &mut Target {
    Arc::make_mut(&mut d.targets[0])
}

fn begin_event(d: &mut Deployment, event: LifecycleEventName, now: Timestamp) {
    let t = target_mut(d);
    if let Some(i) = t
        .lifecycle_events
        .iter()
        .position(|e| e.lifecycle_event_name == event)
    {
        let e = &mut t.lifecycle_events[i];
        e.status = LifecycleEventStatus::InProgress;
        e.start_time = Some(now);
        t.dispatched = t.dispatched.max(i + 1);
    }
    t.last_updated_at = Some(now);
}

fn end_event(
    d: &mut Deployment,
    event: LifecycleEventName,
    status: LifecycleEventStatus,
    diagnostics: Option<Diagnostics>,
    now: Timestamp,
) {
    let t = target_mut(d);
    if let Some(e) = t
        .lifecycle_events
        .iter_mut()
        .find(|e| e.lifecycle_event_name == event)
    {
        e.status = status;
        e.end_time = Some(now);
        e.diagnostics = diagnostics;
    }
    t.last_updated_at = Some(now);
}
