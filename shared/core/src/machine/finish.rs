//! How a deployment ends: succeeded, failed or stopped, with its targets settled, its group's
//! lock released, and an automatic rollback started when the settings ask for one.

use std::sync::Arc;

use super::phase::Ending;
use super::{
    Command, Deployment, FinalStatus, Phase, PreviousDeployment, Target, blue_green, lambda,
};
use crate::ids::TargetId;
use crate::model::{
    AlarmConfiguration, AutoRollbackConfiguration, AutoRollbackEvent, ComputePlatform,
    DeploymentCreator, Diagnostics, ErrorCode, ErrorInformation, LifecycleErrorCode,
    LifecycleEventStatus, RollbackInfo, TargetStatus, TriggerEventType,
};
use crate::time::Timestamp;

pub(super) fn succeed(d: &mut Deployment, now: Timestamp, out: &mut Vec<Command>) {
    end(d, FinalStatus::Succeeded, None, None, now, out);
}

pub(super) fn fail(
    d: &mut Deployment,
    error: ErrorInformation,
    now: Timestamp,
    out: &mut Vec<Command>,
) {
    end(
        d,
        FinalStatus::Failed,
        Some(error),
        Some(AutoRollbackEvent::DeploymentFailure),
        now,
        out,
    );
}

pub(super) fn stop_on_alarm(
    d: &mut Deployment,
    error: ErrorInformation,
    now: Timestamp,
    out: &mut Vec<Command>,
) {
    end(
        d,
        FinalStatus::Stopped,
        Some(error),
        Some(AutoRollbackEvent::DeploymentStopOnAlarm),
        now,
        out,
    );
}

/// Stops the deployment for `error`, without a rollback deployment: a wait ran out, for
/// example.
pub(super) fn stop(
    d: &mut Deployment,
    error: ErrorInformation,
    now: Timestamp,
    out: &mut Vec<Command>,
) {
    end(d, FinalStatus::Stopped, Some(error), None, now, out);
}

/// `StopDeployment`. Its `autoRollbackEnabled` flag, when given, decides the rollback; otherwise
/// the deployment's `DEPLOYMENT_STOP_ON_REQUEST` setting does.
pub(super) fn stop_on_request(
    d: &mut Deployment,
    auto_rollback_enabled: Option<bool>,
    now: Timestamp,
    out: &mut Vec<Command>,
) {
    let error = ErrorInformation::new(
        ErrorCode::ManualStop,
        "The deployment was stopped by a user request.",
    );
    match auto_rollback_enabled {
        Some(true) => {
            let cfg = &mut d.options.auto_rollback_configuration;
            cfg.enabled = true;
            if !cfg
                .events
                .contains(&AutoRollbackEvent::DeploymentStopOnRequest)
            {
                cfg.events.push(AutoRollbackEvent::DeploymentStopOnRequest);
            }
        }
        Some(false) => {
            d.options
                .auto_rollback_configuration
                .events
                .retain(|e| *e != AutoRollbackEvent::DeploymentStopOnRequest);
        }
        None => {}
    }
    end(
        d,
        FinalStatus::Stopped,
        Some(error),
        Some(AutoRollbackEvent::DeploymentStopOnRequest),
        now,
        out,
    );
}

/// Ends the deployment, or first puts a Lambda alias whose traffic may have moved back on its
/// current version, or first undoes what a blue/green deployment did to the fleet.
fn end(
    d: &mut Deployment,
    status: FinalStatus,
    error: Option<ErrorInformation>,
    rollback_on: Option<AutoRollbackEvent>,
    now: Timestamp,
    out: &mut Vec<Command>,
) {
    if status != FinalStatus::Succeeded && lambda::restores_first(d) {
        lambda::restore(d, Ending { status, error }, out);
        return;
    }
    if status != FinalStatus::Succeeded && blue_green::cleans_up_first(d) {
        blue_green::clean_up(d, Ending { status, error }, now, out);
        return;
    }
    end_now(d, status, error, rollback_on, now, out);
}

/// Ends a deployment whose traffic was restored.
pub(super) fn conclude(d: &mut Deployment, ending: Ending, now: Timestamp, out: &mut Vec<Command>) {
    end_now(d, ending.status, ending.error, None, now, out);
}

fn end_now(
    d: &mut Deployment,
    status: FinalStatus,
    error: Option<ErrorInformation>,
    rollback_on: Option<AutoRollbackEvent>,
    now: Timestamp,
    out: &mut Vec<Command>,
) {
    let interrupted = settle_targets(d, now);
    // Hosts may still run something; a Lambda target runs nothing of cutover's.
    if !interrupted.is_empty() && d.group.compute_platform == ComputePlatform::Server {
        out.push(Command::StopLifecycleEvents {
            targets: interrupted,
        });
    }
    d.phase = Phase::Finished { status };
    d.complete_time = Some(now);
    d.error_information = error;
    out.push(Command::Notify {
        event: match status {
            FinalStatus::Succeeded => TriggerEventType::DeploymentSuccess,
            FinalStatus::Failed => TriggerEventType::DeploymentFailure,
            FinalStatus::Stopped => TriggerEventType::DeploymentStop,
        },
        target: None,
    });

    let mut hand_lock_to = None;
    // A Lambda deployment moves its alias back itself, before it ends, and a blue/green
    // deployment routes traffic back to its original hosts; neither needs a rollback
    // deployment.
    let wanted = rollback_on
        .filter(|e| d.options.auto_rollback_configuration.rolls_back_on(*e))
        .filter(|_| d.group.compute_platform == ComputePlatform::Server && !d.is_blue_green());
    if let Some(trigger) = wanted {
        match rollback_of(d, trigger, now) {
            Ok(rollback) => {
                hand_lock_to = Some(rollback.deployment_id.clone());
                d.rollback_info = Some(RollbackInfo {
                    rollback_deployment_id: Some(rollback.deployment_id.clone()),
                    rollback_triggering_deployment_id: None,
                    rollback_message: Some(format!(
                        "Automatic rollback ({}) started as deployment {}.",
                        trigger, rollback.deployment_id
                    )),
                });
                out.push(Command::Notify {
                    event: TriggerEventType::DeploymentRollback,
                    target: None,
                });
                out.push(Command::StartRollback {
                    rollback: Box::new(rollback),
                });
            }
            Err(why) => {
                d.rollback_info = Some(RollbackInfo {
                    rollback_message: Some(format!(
                        "Automatic rollback ({trigger}) was not performed: {why}"
                    )),
                    ..d.rollback_info.clone().unwrap_or_default()
                });
            }
        }
    }
    out.push(Command::Finish {
        status,
        hand_lock_to,
    });
}

/// Gives every target a final status: hosts never started are skipped, and hosts caught in the
/// middle of an event are failed. Returns the hosts that were interrupted.
fn settle_targets(d: &mut Deployment, now: Timestamp) -> Vec<TargetId> {
    let mut interrupted = Vec::new();
    let message = interrupted_message(d.group.compute_platform);
    for t in d.targets.iter_mut().filter(|t| !t.status.is_final()) {
        // Every target still unfinished gets a final status, so each one copied here changes.
        let t = Arc::make_mut(t);
        let started = t.status == TargetStatus::InProgress;
        settle_events(t, now, message);
        if started {
            t.status = TargetStatus::Failed;
            interrupted.push(t.target_id.clone());
        } else {
            t.status = TargetStatus::Skipped;
        }
    }
    interrupted
}

/// Ends the target's unfinished events: one that was handed out and is still running fails
/// with `message`, the others are skipped. Returns whether one was caught running.
pub(super) fn settle_events(t: &mut Target, now: Timestamp, message: &str) -> bool {
    let mut caught = false;
    for (i, e) in t.lifecycle_events.iter_mut().enumerate() {
        if e.status.is_final() {
            continue;
        }
        if i < t.dispatched && e.status == LifecycleEventStatus::InProgress {
            caught = true;
            e.status = LifecycleEventStatus::Failed;
            e.end_time = Some(now);
            e.diagnostics = Some(Diagnostics::new(
                LifecycleErrorCode::UnknownError,
                None,
                message,
                "",
            ));
        } else {
            e.status = LifecycleEventStatus::Skipped;
        }
    }
    t.last_updated_at = Some(now);
    caught
}

fn interrupted_message(platform: ComputePlatform) -> &'static str {
    match platform {
        ComputePlatform::Server => {
            "The deployment ended while this event was running; cutover asked the host to stop it."
        }
        _ => "The deployment ended while this event was running.",
    }
}

/// The rollback deployment for `d`, or why there is none. Its id is derived from `d`'s, so
/// ending the same deployment twice names the same rollback.
fn rollback_of(
    d: &Deployment,
    trigger: AutoRollbackEvent,
    now: Timestamp,
) -> Result<Deployment, String> {
    if d.creator == DeploymentCreator::CodeDeployRollback {
        return Err("this deployment is itself a rollback".into());
    }

    let Some(previous) = &d.previous else {
        return Err(format!(
            "deployment group '{}' has no earlier successful deployment to roll back to",
            d.group.deployment_group_name
        ));
    };
    if !d.targets.iter().any(|t| t.dispatched > 0) {
        return Err("no target was changed, so there is nothing to roll back".into());
    }
    let PreviousDeployment {
        deployment_id: good,
        revision,
    } = previous;
    let id = d.deployment_id.derive("rollback");
    let mut options = d.options.clone();
    // The rollback must not roll back itself, nor stop on the alarm that caused it.
    options.auto_rollback_configuration = AutoRollbackConfiguration::default();
    options.auto_rollback_overridden = true;
    options.alarm_configuration = AlarmConfiguration::default();
    options.override_alarm_configuration = None;
    Ok(Deployment {
        deployment_id: id,
        version: 0,
        application_name: d.application_name.clone(),
        group: d.group.clone(),
        config: d.config.clone(),
        revision: revision.clone(),
        previous: d.previous.clone(),
        creator: DeploymentCreator::CodeDeployRollback,
        description: Some(format!(
            "Rollback of {} to the revision of {}",
            d.deployment_id, good
        )),
        options,
        create_time: now,
        start_time: None,
        complete_time: None,
        phase: Phase::Created,
        error_information: None,
        rollback_info: Some(RollbackInfo {
            rollback_deployment_id: None,
            rollback_triggering_deployment_id: Some(d.deployment_id.clone()),
            rollback_message: Some(format!(
                "Rolls back {} ({}) to the revision of {}.",
                d.deployment_id, trigger, good
            )),
        }),
        targets: Vec::new(),
        lambda: None,
    })
}
