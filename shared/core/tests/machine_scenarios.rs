//! The deployment state machine, scenario by scenario: each test drives a deployment through a
//! simulated world and checks what CodeDeploy users would see.

mod support;

use std::sync::Arc;

use cutover_core::config::{DeploymentConfigInfo, MinimumHealthyHosts, MinimumHealthyHostsType};
use cutover_core::lifecycle::LifecycleEventName::{self, *};
use cutover_core::machine::{
    self, Command, CoreError, CreateDeployment, Deployment, Event, FinalStatus, LifecycleOutcome,
    OutcomeStatus, Phase,
};
use cutover_core::model::{
    Alarm, AlarmConfiguration, AppSpecContent, AutoRollbackConfiguration, AutoRollbackEvent,
    DeploymentCreator, DeploymentStatus, DeploymentType, ErrorCode, LifecycleErrorCode,
    LifecycleEventStatus, RevisionLocation, S3Location, TargetStatus, TriggerEventType,
};
use cutover_core::{DeploymentId, TargetId};
use support::*;

const SCRIPTED: [LifecycleEventName; 7] = [
    ApplicationStop,
    DownloadBundle,
    BeforeInstall,
    Install,
    AfterInstall,
    ApplicationStart,
    ValidateService,
];

fn one_at_a_time() -> DeploymentConfigInfo {
    predefined("CodeDeployDefault.OneAtATime")
}

fn statuses(d: &Deployment) -> Vec<(String, TargetStatus)> {
    d.targets
        .iter()
        .map(|t| (t.target_id.to_string(), t.status))
        .collect()
}

fn event_statuses(d: &Deployment, host: &str) -> Vec<(LifecycleEventName, LifecycleEventStatus)> {
    d.target(&TargetId::new(host))
        .unwrap()
        .lifecycle_events
        .iter()
        .map(|e| (e.lifecycle_event_name, e.status))
        .collect()
}

fn host_commands(world: &mut World, id: &DeploymentId, event: Event) -> Vec<Command> {
    world
        .deliver(id, event)
        .into_iter()
        .filter(|c| !matches!(c, Command::Notify { .. }))
        .collect()
}

#[test]
fn one_at_a_time_deploys_host_by_host_and_succeeds() {
    let mut world = World::new(hosts(3));
    let id = world.create(request(1, group(false), one_at_a_time(), "v1"));
    world.run();
    let d = world.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Succeeded);
    assert_eq!(
        statuses(d),
        [
            ("host-1".into(), TargetStatus::Succeeded),
            ("host-2".into(), TargetStatus::Succeeded),
            ("host-3".into(), TargetStatus::Succeeded)
        ]
    );
    assert_eq!(
        event_statuses(d, "host-2"),
        SCRIPTED.map(|e| (e, LifecycleEventStatus::Succeeded))
    );
    assert_eq!(world.max_out_of_service[&id], 1);
    let info = d.info();
    assert_eq!(info.deployment_overview.succeeded, 3);
    assert!(info.start_time.is_some() && info.complete_time.is_some());
    assert_eq!(world.finished, [(id.clone(), FinalStatus::Succeeded)]);

    // Triggers see the deployment start and end, and each host start and succeed.
    let notices: Vec<_> = world
        .notices
        .iter()
        .map(|(_, e, t)| (*e, t.clone()))
        .collect();
    assert_eq!(
        notices.first(),
        Some(&(TriggerEventType::DeploymentStart, None))
    );
    assert_eq!(
        notices.last(),
        Some(&(TriggerEventType::DeploymentSuccess, None))
    );
    let starts = notices
        .iter()
        .filter(|(e, _)| *e == TriggerEventType::InstanceStart)
        .count();
    assert_eq!(starts, 3);
}

#[test]
fn the_commands_follow_codedeploys_order() {
    let mut world = World::new(hosts(2));
    let id = world.create(request(1, group(false), one_at_a_time(), "v1"));
    let (_, created, _) = world.inbox.remove(0);
    assert_eq!(
        host_commands(&mut world, &id, created),
        [Command::AcquireGroupLock]
    );
    world.inbox.clear();
    assert_eq!(
        host_commands(
            &mut world,
            &id,
            Event::GroupLockAcquired {
                last_successful: None
            }
        ),
        [Command::ValidateRevision]
    );
    world.inbox.clear();
    assert_eq!(
        host_commands(
            &mut world,
            &id,
            Event::RevisionValidated {
                revision: None,
                appspec: None
            }
        ),
        [Command::ResolveTargets]
    );
    world.inbox.clear();
    let first = host_commands(
        &mut world,
        &id,
        Event::TargetsResolved { targets: hosts(2) },
    );
    assert_eq!(
        first,
        [Command::RunLifecycleEvents {
            targets: vec![TargetId::new("host-1")],
            events: SCRIPTED.to_vec()
        }]
    );
    let d = world.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::InProgress);
    // The first event of the run is in progress, the rest of the run is pending.
    assert_eq!(
        event_statuses(d, "host-1")[0],
        (ApplicationStop, LifecycleEventStatus::InProgress)
    );
    assert_eq!(
        event_statuses(d, "host-1")[1],
        (DownloadBundle, LifecycleEventStatus::Pending)
    );
    assert_eq!(
        event_statuses(d, "host-2")[0],
        (ApplicationStop, LifecycleEventStatus::Pending)
    );
}

#[test]
fn with_traffic_control_hosts_are_blocked_and_allowed_around_the_install() {
    let mut world = World::new(hosts(1));
    let id = world.create(request(1, group(true), one_at_a_time(), "v1"));
    world.run();
    let d = world.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Succeeded);
    let names: Vec<_> = event_statuses(d, "host-1")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, cutover_core::lifecycle::server_in_place(true));

    // Replay the host's part by hand to see each command.
    let mut world = World::new(hosts(1));
    let id = world.create(request(2, group(true), one_at_a_time(), "v1"));
    for e in [
        Event::Created,
        Event::GroupLockAcquired {
            last_successful: None,
        },
        Event::RevisionValidated {
            revision: None,
            appspec: None,
        },
    ] {
        world.deliver(&id, e);
    }
    world.inbox.clear();
    let h = TargetId::new("host-1");
    let run = |events: &[LifecycleEventName]| Command::RunLifecycleEvents {
        targets: vec![h.clone()],
        events: events.to_vec(),
    };
    assert_eq!(
        host_commands(
            &mut world,
            &id,
            Event::TargetsResolved { targets: hosts(1) }
        ),
        [run(&[BeforeBlockTraffic])]
    );
    assert_eq!(
        host_commands(&mut world, &id, finished(&h, BeforeBlockTraffic, false)),
        [Command::BlockTraffic {
            targets: vec![h.clone()]
        }]
    );
    let mut middle = vec![AfterBlockTraffic];
    middle.extend(SCRIPTED);
    middle.push(BeforeAllowTraffic);
    assert_eq!(
        host_commands(&mut world, &id, finished(&h, BlockTraffic, false)),
        [run(&middle)]
    );
    for e in &middle[..middle.len() - 1] {
        assert_eq!(host_commands(&mut world, &id, finished(&h, *e, false)), []);
    }
    assert_eq!(
        host_commands(&mut world, &id, finished(&h, BeforeAllowTraffic, false)),
        [Command::AllowTraffic {
            targets: vec![h.clone()]
        }]
    );
    assert_eq!(
        host_commands(&mut world, &id, finished(&h, AllowTraffic, false)),
        [run(&[AfterAllowTraffic])]
    );
    let last = host_commands(&mut world, &id, finished(&h, AfterAllowTraffic, false));
    assert_eq!(
        last,
        [Command::Finish {
            status: FinalStatus::Succeeded,
            hand_lock_to: None
        }]
    );
}

#[test]
fn a_failure_before_the_last_host_fails_one_at_a_time() {
    let mut world = World::new(hosts(3));
    world.fail("host-1", AfterInstall);
    let id = world.create(request(1, group(false), one_at_a_time(), "v1"));
    world.run();
    let d = world.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Failed);
    let error = d.error_information.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::HealthConstraints);
    assert_eq!(
        error.message,
        "1 of 3 targets failed (host-1). Deployment configuration CodeDeployDefault.OneAtATime keeps at least 2 of 3 healthy, so the other 2 targets were not attempted."
    );
    assert_eq!(
        statuses(d),
        [
            ("host-1".into(), TargetStatus::Failed),
            ("host-2".into(), TargetStatus::Skipped),
            ("host-3".into(), TargetStatus::Skipped)
        ]
    );
    let events = event_statuses(d, "host-1");
    assert_eq!(events[3], (Install, LifecycleEventStatus::Succeeded));
    assert_eq!(events[4], (AfterInstall, LifecycleEventStatus::Failed));
    assert_eq!(events[5], (ApplicationStart, LifecycleEventStatus::Skipped));
    let diag = d.target(&TargetId::new("host-1")).unwrap().lifecycle_events[4]
        .diagnostics
        .clone()
        .unwrap();
    assert_eq!(diag.error_code, LifecycleErrorCode::ScriptFailed);
    assert_eq!(diag.script_name.as_deref(), Some("scripts/AfterInstall.sh"));
    assert_eq!(d.info().deployment_overview.skipped, 2);
}

#[test]
fn a_failure_on_the_last_host_still_succeeds_one_at_a_time() {
    let mut world = World::new(hosts(3));
    world.fail("host-3", ValidateService);
    let id = world.create(request(1, group(false), one_at_a_time(), "v1"));
    world.run();
    let d = world.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Succeeded);
    assert_eq!(
        d.target(&TargetId::new("host-3")).unwrap().status,
        TargetStatus::Failed
    );
}

#[test]
fn a_single_host_must_succeed() {
    let mut world = World::new(hosts(1));
    world.fail("host-1", ApplicationStart);
    let id = world.create(request(1, group(false), one_at_a_time(), "v1"));
    world.run();
    let d = world.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Failed);
    assert_eq!(
        d.error_information.as_ref().unwrap().message,
        "1 of 1 targets failed (host-1). Deployment configuration CodeDeployDefault.OneAtATime needs at least 1 to succeed."
    );
}

#[test]
fn half_at_a_time_starts_four_of_nine_in_one_command() {
    let mut world = World::new(hosts(9));
    let id = world.create(request(
        1,
        group(false),
        predefined("CodeDeployDefault.HalfAtATime"),
        "v1",
    ));
    for e in [
        Event::Created,
        Event::GroupLockAcquired {
            last_successful: None,
        },
        Event::RevisionValidated {
            revision: None,
            appspec: None,
        },
    ] {
        world.deliver(&id, e);
    }
    world.inbox.clear();
    let first = host_commands(
        &mut world,
        &id,
        Event::TargetsResolved { targets: hosts(9) },
    );
    assert_eq!(
        first,
        [Command::RunLifecycleEvents {
            targets: hosts(4),
            events: SCRIPTED.to_vec()
        }]
    );
    world.run();
    assert_eq!(world.deployment(&id).status(), DeploymentStatus::Succeeded);
    assert_eq!(world.max_out_of_service[&id], 4);
}

#[test]
fn host_count_six_of_nine_keeps_three_out_and_tolerates_three_failures() {
    let config = DeploymentConfigInfo::server(
        "SixHealthy",
        MinimumHealthyHosts {
            kind: MinimumHealthyHostsType::HostCount,
            value: 6,
        },
    );
    let mut world = World::new(hosts(9));
    for h in ["host-2", "host-5", "host-9"] {
        world.fail(h, BeforeInstall);
    }
    let id = world.create(request(1, group(false), config.clone(), "v1"));
    world.run();
    assert_eq!(world.deployment(&id).status(), DeploymentStatus::Succeeded);
    assert_eq!(
        world.deployment(&id).info().deployment_overview.succeeded,
        6
    );
    assert!(world.max_out_of_service[&id] <= 3);

    // The third failure before the end leaves too few healthy hosts to go on.
    let mut world = World::new(hosts(9));
    for h in ["host-1", "host-2", "host-3"] {
        world.fail(h, BeforeInstall);
    }
    let id = world.create(request(2, group(false), config, "v1"));
    world.run();
    let d = world.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Failed);
    assert_eq!(
        d.error_information.as_ref().unwrap().code,
        ErrorCode::HealthConstraints
    );
    assert_eq!(d.info().deployment_overview.skipped, 6);
}

#[test]
fn all_at_once_succeeds_if_one_host_succeeds() {
    let mut world = World::new(hosts(4));
    for h in ["host-1", "host-2", "host-3"] {
        world.fail(h, ApplicationStart);
    }
    let id = world.create(request(
        1,
        group(false),
        predefined("CodeDeployDefault.AllAtOnce"),
        "v1",
    ));
    world.run();
    assert_eq!(world.deployment(&id).status(), DeploymentStatus::Succeeded);

    let mut world = World::new(hosts(2));
    world.fail("host-1", ApplicationStart);
    world.fail("host-2", DownloadBundle);
    let id = world.create(request(
        2,
        group(false),
        predefined("CodeDeployDefault.AllAtOnce"),
        "v1",
    ));
    world.run();
    assert_eq!(world.deployment(&id).status(), DeploymentStatus::Failed);
}

#[test]
fn too_few_hosts_for_the_configuration_fail_before_any_host_is_touched() {
    let mut world = World::new(hosts(1));
    let id = world.create(request(
        1,
        group(false),
        predefined("CodeDeployDefault.HalfAtATime"),
        "v1",
    ));
    world.run();
    let d = world.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Failed);
    let error = d.error_information.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::HealthConstraintsInvalid);
    assert!(
        error.message.contains("needs 1 of 1 hosts healthy"),
        "{}",
        error.message
    );
    assert!(d.targets.is_empty());
}

#[test]
fn no_targets_fail_with_no_instances() {
    let mut world = World::new(vec![]);
    let id = world.create(request(1, group(false), one_at_a_time(), "v1"));
    world.run();
    let d = world.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Failed);
    assert_eq!(
        d.error_information.as_ref().unwrap().code,
        ErrorCode::NoInstances
    );
}

#[test]
fn ignore_application_stop_failures_lets_a_host_continue() {
    let mut world = World::new(hosts(2));
    world.fail("host-1", ApplicationStop);
    world.fail("host-2", AfterBlockTraffic);
    let mut req = request(1, group(true), one_at_a_time(), "v1");
    req.ignore_application_stop_failures = true;
    let id = world.create(req);
    world.run();
    let d = world.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Succeeded);
    let stop = &d.target(&TargetId::new("host-1")).unwrap().lifecycle_events[3];
    assert_eq!(stop.lifecycle_event_name, ApplicationStop);
    assert_eq!(stop.status, LifecycleEventStatus::Succeeded);
    let diag = stop.diagnostics.as_ref().unwrap();
    assert_eq!(diag.error_code, LifecycleErrorCode::ScriptFailed);
    assert!(
        diag.message
            .starts_with("ignored because ignoreApplicationStopFailures is set")
    );

    // The same failure without the flag fails the host and, with it, the deployment.
    let mut world = World::new(hosts(2));
    world.fail("host-1", ApplicationStop);
    let id = world.create(request(2, group(true), one_at_a_time(), "v1"));
    world.run();
    assert_eq!(world.deployment(&id).status(), DeploymentStatus::Failed);
}

#[test]
fn the_flag_does_not_cover_other_events() {
    let mut world = World::new(hosts(2));
    world.fail("host-1", BeforeInstall);
    let mut req = request(1, group(false), one_at_a_time(), "v1");
    req.ignore_application_stop_failures = true;
    let id = world.create(req);
    world.run();
    assert_eq!(world.deployment(&id).status(), DeploymentStatus::Failed);
}

/// Delivers events until `until` says stop, returning the deployment id.
fn run_until(world: &mut World, id: &DeploymentId, until: impl Fn(&Deployment) -> bool) {
    while !until(world.deployment(id)) {
        assert!(
            !world.inbox.is_empty(),
            "the deployment never reached the expected state"
        );
        let (target, event, _) = world.inbox.remove(0);
        world.deliver(&target, event);
    }
}

#[test]
fn a_stop_request_stops_at_once_and_late_reports_change_nothing() {
    let mut world = World::new(hosts(3));
    let id = world.create(request(1, group(false), one_at_a_time(), "v1"));
    run_until(&mut world, &id, |d| {
        d.target(&TargetId::new("host-2"))
            .is_some_and(|t| t.status == TargetStatus::InProgress)
    });
    let late = world.inbox.clone();
    world.inbox.clear();
    let commands = world.deliver(
        &id,
        Event::StopRequested {
            auto_rollback_enabled: None,
        },
    );
    assert!(commands.contains(&Command::StopLifecycleEvents {
        targets: vec![TargetId::new("host-2")]
    }));
    assert!(commands.contains(&Command::Finish {
        status: FinalStatus::Stopped,
        hand_lock_to: None
    }));
    let d = world.deployment(&id).clone();
    assert_eq!(d.status(), DeploymentStatus::Stopped);
    assert_eq!(
        d.error_information.as_ref().unwrap().code,
        ErrorCode::ManualStop
    );
    assert_eq!(
        statuses(&d),
        [
            ("host-1".into(), TargetStatus::Succeeded),
            ("host-2".into(), TargetStatus::Failed),
            ("host-3".into(), TargetStatus::Skipped)
        ]
    );
    let interrupted = &d.target(&TargetId::new("host-2")).unwrap().lifecycle_events[0];
    assert_eq!(interrupted.status, LifecycleEventStatus::Failed);
    assert_eq!(
        interrupted.diagnostics.as_ref().unwrap().error_code,
        LifecycleErrorCode::UnknownError
    );

    // The host's reports arrive after the stop: nothing changes.
    for (target, event, _) in late {
        let t = machine::advance(world.deployment(&target), event, world.now).unwrap();
        assert_eq!(t.deployment, d);
        assert!(t.commands.is_empty());
    }
    let again = machine::advance(
        &d,
        Event::StopRequested {
            auto_rollback_enabled: Some(true),
        },
        world.now,
    )
    .unwrap();
    assert_eq!(again.deployment, d);
}

fn watching(alarm: &str, ignore_poll_alarm_failure: bool) -> AlarmConfiguration {
    AlarmConfiguration {
        enabled: true,
        ignore_poll_alarm_failure,
        alarms: vec![Alarm { name: alarm.into() }],
    }
}

#[test]
fn a_watched_alarm_stops_the_deployment() {
    let mut g = group(false);
    g.alarm_configuration = Some(watching("HighErrors", false));
    let mut world = World::new(hosts(3));
    let id = world.create(request(1, g, one_at_a_time(), "v1"));
    run_until(&mut world, &id, |d| {
        d.status() == DeploymentStatus::InProgress && !d.targets.is_empty()
    });

    let unchanged = world.deployment(&id).clone();
    world.deliver(
        &id,
        Event::AlarmRaised {
            alarm: "SomeoneElses".into(),
        },
    );
    assert_eq!(world.deployment(&id), &unchanged);

    world.deliver(
        &id,
        Event::AlarmRaised {
            alarm: "HighErrors".into(),
        },
    );
    let d = world.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Stopped);
    let error = d.error_information.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::AlarmActive);
    assert!(error.message.contains("'HighErrors'"));
}

#[test]
fn alarm_poll_failures_stop_unless_ignored() {
    for (ignore, expected) in [
        (false, DeploymentStatus::Stopped),
        (true, DeploymentStatus::InProgress),
    ] {
        let mut g = group(false);
        g.alarm_configuration = Some(watching("HighErrors", ignore));
        let mut world = World::new(hosts(2));
        let id = world.create(request(1, g, one_at_a_time(), "v1"));
        run_until(&mut world, &id, |d| {
            d.status() == DeploymentStatus::InProgress
        });
        world.deliver(
            &id,
            Event::AlarmPollFailed {
                message: "throttled".into(),
            },
        );
        assert_eq!(
            world.deployment(&id).status(),
            expected,
            "ignorePollAlarmFailure={ignore}"
        );
    }
}

#[test]
fn a_deployment_override_replaces_the_groups_alarms() {
    let mut g = group(false);
    g.alarm_configuration = Some(watching("HighErrors", false));
    let mut req = request(1, g, one_at_a_time(), "v1");
    req.override_alarm_configuration = Some(AlarmConfiguration::default());
    let mut world = World::new(hosts(2));
    let id = world.create(req);
    run_until(&mut world, &id, |d| {
        d.status() == DeploymentStatus::InProgress
    });
    world.deliver(
        &id,
        Event::AlarmRaised {
            alarm: "HighErrors".into(),
        },
    );
    assert_eq!(world.deployment(&id).status(), DeploymentStatus::InProgress);
    assert_eq!(
        world.deployment(&id).info().override_alarm_configuration,
        Some(AlarmConfiguration::default())
    );
}

#[test]
fn deployments_to_one_group_queue_and_run_in_order() {
    let mut world = World::new(hosts(2));
    let first = world.create(request(1, group(false), one_at_a_time(), "v1"));
    let second = world.create(request(2, group(false), one_at_a_time(), "v2"));
    let third = world.create(request(3, group(false), one_at_a_time(), "v3"));
    // Deliver the three Created events and the lock answers they produce.
    for _ in 0..6 {
        let (id, e, _) = world.inbox.remove(0);
        world.deliver(&id, e);
    }
    assert_eq!(
        world.deployment(&first).status(),
        DeploymentStatus::InProgress
    );
    assert_eq!(world.deployment(&second).status(), DeploymentStatus::Queued);
    assert_eq!(
        world.deployment(&second).phase,
        Phase::Queued {
            behind: first.clone()
        }
    );
    assert_eq!(world.deployment(&third).status(), DeploymentStatus::Queued);

    // A queued deployment can be stopped; it leaves the queue.
    world.deliver(
        &third,
        Event::StopRequested {
            auto_rollback_enabled: None,
        },
    );
    assert_eq!(world.deployment(&third).status(), DeploymentStatus::Stopped);
    assert_eq!(world.queue.waiting, std::slice::from_ref(&second));

    world.run();
    assert_eq!(
        world.deployment(&first).status(),
        DeploymentStatus::Succeeded
    );
    assert_eq!(
        world.deployment(&second).status(),
        DeploymentStatus::Succeeded
    );
    let order: Vec<_> = world.finished.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(order, [third, first, second]);
    assert!(world.queue.active.is_none());
}

fn rollback_on(events: &[AutoRollbackEvent]) -> AutoRollbackConfiguration {
    AutoRollbackConfiguration {
        enabled: true,
        events: events.to_vec(),
    }
}

#[test]
fn a_failed_deployment_rolls_back_to_the_last_successful_revision() {
    let mut g = group(false);
    g.auto_rollback_configuration = Some(rollback_on(&[AutoRollbackEvent::DeploymentFailure]));
    let mut world = World::new(hosts(3));
    let good = world.create(request(1, g.clone(), one_at_a_time(), "v1"));
    world.run();
    assert_eq!(
        world.deployment(&good).status(),
        DeploymentStatus::Succeeded
    );

    world.fail("host-2", ValidateService);
    let bad = world.create(request(2, g.clone(), one_at_a_time(), "v2"));
    // A deployment queued behind the failure must wait for the rollback too.
    let waiting = world.create(request(3, g, one_at_a_time(), "v3"));
    run_until(&mut world, &bad, |d| d.is_finished());
    world.failures.clear();
    world.run();

    let failed = world.deployment(&bad);
    assert_eq!(failed.status(), DeploymentStatus::Failed);
    let rollback_id = bad.derive("rollback");
    let info = failed.rollback_info.clone().unwrap();
    assert_eq!(info.rollback_deployment_id, Some(rollback_id.clone()));
    assert!(
        info.rollback_message
            .unwrap()
            .contains("DEPLOYMENT_FAILURE")
    );

    let rollback = world.deployment(&rollback_id);
    assert_eq!(rollback.creator, DeploymentCreator::CodeDeployRollback);
    assert_eq!(
        rollback.revision,
        revision("v1"),
        "the rollback restores the last good revision"
    );
    assert_eq!(rollback.status(), DeploymentStatus::Succeeded);
    assert_eq!(
        rollback
            .rollback_info
            .as_ref()
            .unwrap()
            .rollback_triggering_deployment_id,
        Some(bad.clone())
    );
    let order: Vec<_> = world.finished.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(order, [good, bad, rollback_id, waiting.clone()]);
    assert_eq!(
        world.deployment(&waiting).status(),
        DeploymentStatus::Succeeded
    );
}

#[test]
fn a_failed_rollback_does_not_roll_back_again() {
    let mut g = group(false);
    g.auto_rollback_configuration = Some(rollback_on(&[AutoRollbackEvent::DeploymentFailure]));
    let mut world = World::new(hosts(2));
    world.create(request(1, g.clone(), one_at_a_time(), "v1"));
    world.run();
    world.fail("host-1", AfterInstall);
    let bad = world.create(request(2, g, one_at_a_time(), "v2"));
    world.run();
    let rollback = world.deployment(&bad.derive("rollback"));
    assert_eq!(rollback.status(), DeploymentStatus::Failed);
    assert!(
        rollback
            .rollback_info
            .as_ref()
            .unwrap()
            .rollback_deployment_id
            .is_none()
    );
    assert_eq!(world.deployments.len(), 3);
}

#[test]
fn the_first_deployment_of_a_group_has_nothing_to_roll_back_to() {
    let mut g = group(false);
    g.auto_rollback_configuration = Some(rollback_on(&[AutoRollbackEvent::DeploymentFailure]));
    let mut world = World::new(hosts(2));
    world.fail("host-1", AfterInstall);
    let id = world.create(request(1, g, one_at_a_time(), "v1"));
    world.run();
    let d = world.deployment(&id);
    let info = d.rollback_info.as_ref().unwrap();
    assert!(info.rollback_deployment_id.is_none());
    assert!(
        info.rollback_message
            .as_ref()
            .unwrap()
            .contains("no earlier successful deployment")
    );
    assert_eq!(world.deployments.len(), 1);
}

#[test]
fn stop_requests_roll_back_when_asked() {
    for (flag, group_events, expect_rollback) in [
        (Some(true), vec![], true),
        (None, vec![AutoRollbackEvent::DeploymentStopOnRequest], true),
        (
            Some(false),
            vec![AutoRollbackEvent::DeploymentStopOnRequest],
            false,
        ),
        (None, vec![AutoRollbackEvent::DeploymentFailure], false),
    ] {
        let mut g = group(false);
        if !group_events.is_empty() {
            g.auto_rollback_configuration = Some(rollback_on(&group_events));
        }
        let mut world = World::new(hosts(2));
        world.create(request(1, g.clone(), one_at_a_time(), "v1"));
        world.run();
        let id = world.create(request(2, g, one_at_a_time(), "v2"));
        run_until(&mut world, &id, |d| !d.targets.is_empty());
        world.inbox.clear();
        world.deliver(
            &id,
            Event::StopRequested {
                auto_rollback_enabled: flag,
            },
        );
        let rolled_back = world.deployments.contains_key(&id.derive("rollback"));
        assert_eq!(
            rolled_back, expect_rollback,
            "flag {flag:?}, group {group_events:?}"
        );
    }
}

#[test]
fn an_invalid_revision_fails_without_touching_hosts_or_rolling_back() {
    let mut g = group(false);
    g.auto_rollback_configuration = Some(rollback_on(&[AutoRollbackEvent::DeploymentFailure]));
    let mut world = World::new(hosts(2));
    world.create(request(1, g.clone(), one_at_a_time(), "v1"));
    world.run();
    let id = world.create(request(2, g, one_at_a_time(), "v2"));
    run_until(&mut world, &id, |d| d.phase == Phase::ValidatingRevision);
    world.inbox.clear();
    let error = cutover_core::model::ErrorInformation::new(
        ErrorCode::InvalidRevision,
        "appspec.yml line 3: ...",
    );
    world.deliver(
        &id,
        Event::RevisionInvalid {
            error: error.clone(),
        },
    );
    let d = world.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Failed);
    assert_eq!(d.error_information, Some(error));
    assert!(d.targets.is_empty());
    assert!(
        d.rollback_info
            .as_ref()
            .unwrap()
            .rollback_message
            .as_ref()
            .unwrap()
            .contains("nothing to roll back")
    );
}

#[test]
fn duplicate_and_out_of_order_reports_reach_the_same_state() {
    let mut world = World::new(hosts(1));
    let id = world.create(request(1, group(false), one_at_a_time(), "v1"));
    run_until(&mut world, &id, |d| !d.targets.is_empty());
    world.inbox.clear();
    let h = TargetId::new("host-1");
    // The host fails at BeforeInstall; its report overtakes the two before it.
    let reports = [
        finished(&h, BeforeInstall, true),
        finished(&h, ApplicationStop, false),
        finished(&h, ApplicationStop, false),
        finished(&h, DownloadBundle, false),
    ];
    world.deliver(&id, reports[0].clone());
    let t = world.deployment(&id).target(&h).unwrap();
    assert_eq!(
        t.status,
        TargetStatus::InProgress,
        "earlier reports are still due"
    );
    for r in &reports[1..] {
        world.deliver(&id, r.clone());
    }
    let d = world.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Failed);
    assert_eq!(
        event_statuses(d, "host-1")[..4],
        [
            (ApplicationStop, LifecycleEventStatus::Succeeded),
            (DownloadBundle, LifecycleEventStatus::Succeeded),
            (BeforeInstall, LifecycleEventStatus::Failed),
            (Install, LifecycleEventStatus::Skipped),
        ]
    );
}

#[test]
fn reports_for_events_not_handed_out_are_ignored() {
    let mut world = World::new(hosts(2));
    let id = world.create(request(1, group(true), one_at_a_time(), "v1"));
    run_until(&mut world, &id, |d| !d.targets.is_empty());
    world.inbox.clear();
    let before = world.deployment(&id).clone();
    for event in [
        finished(&TargetId::new("host-1"), AfterInstall, false),
        finished(&TargetId::new("host-2"), BeforeBlockTraffic, false),
        finished(&TargetId::new("host-9"), BeforeBlockTraffic, false),
    ] {
        let t = machine::advance(&before, event, world.now).unwrap();
        assert_eq!(t.deployment, before);
        assert!(t.commands.is_empty());
    }
}

#[test]
fn a_validated_revision_is_pinned_to_the_object_found() {
    let s3 = |etag: Option<&str>, bucket: &str| {
        RevisionLocation::S3(S3Location {
            bucket: bucket.into(),
            key: "app.zip".into(),
            bundle_type: None,
            version: None,
            e_tag: etag.map(Into::into),
        })
    };
    let mut req = request(1, group(false), one_at_a_time(), "v1");
    req.revision = s3(None, "releases");
    let mut d = Deployment::create(req, world_now()).unwrap();
    for e in [
        Event::Created,
        Event::GroupLockAcquired {
            last_successful: None,
        },
    ] {
        d = machine::advance(&d, e, world_now()).unwrap().deployment;
    }
    let pinned = machine::advance(
        &d,
        Event::RevisionValidated {
            revision: Some(s3(Some("\"abc\""), "releases")),
            appspec: None,
        },
        world_now(),
    )
    .unwrap();
    assert_eq!(pinned.deployment.revision, s3(Some("\"abc\""), "releases"));
    let err = machine::advance(
        &d,
        Event::RevisionValidated {
            revision: Some(s3(None, "elsewhere")),
            appspec: None,
        },
        world_now(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            CoreError::InvalidEvent {
                event: "RevisionValidated",
                ..
            }
        ),
        "{err}"
    );
}

fn world_now() -> cutover_core::Timestamp {
    cutover_core::Timestamp::from_secs(1_700_000_000)
}

#[test]
fn requests_that_cannot_work_are_refused_at_creation() {
    let lambda = predefined("CodeDeployDefault.LambdaAllAtOnce");
    let err = Deployment::create(request(1, group(false), lambda, "v1"), world_now()).unwrap_err();
    assert!(matches!(err, CoreError::PlatformMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("is for Lambda deployments"),
        "{err}"
    );

    let mut req = request(1, group(false), one_at_a_time(), "v1");
    req.revision = RevisionLocation::AppSpecContent(AppSpecContent {
        content: "version: 0.0".into(),
        sha256: None,
    });
    let err = Deployment::create(req, world_now()).unwrap_err();
    assert!(matches!(err, CoreError::InvalidRevision(_)), "{err}");

    let mut g = group(false);
    g.deployment_style.deployment_type = DeploymentType::BlueGreen;
    g.blue_green_deployment_configuration = Some(Default::default());
    let err = Deployment::create(request(1, g, one_at_a_time(), "v1"), world_now()).unwrap_err();
    assert!(
        err.to_string()
            .contains("a BLUE_GREEN deployment reroutes traffic through a load balancer"),
        "{err}"
    );

    let mut g = group(false);
    g.deployment_style.deployment_option =
        cutover_core::model::DeploymentOption::WithTrafficControl;
    let err = Deployment::create(request(1, g, one_at_a_time(), "v1"), world_now()).unwrap_err();
    assert!(
        err.to_string()
            .contains("WITH_TRAFFIC_CONTROL needs loadBalancerInfo"),
        "{err}"
    );
}

#[test]
fn deployments_events_and_commands_survive_json() {
    let mut world = World::new(hosts(2));
    world.fail("host-2", AfterInstall);
    let id = world.create(request(1, group(true), one_at_a_time(), "v1"));
    world.run();
    let d = world.deployment(&id);
    let json = serde_json::to_string(d).unwrap();
    let back: Deployment = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, d);

    let info = serde_json::to_value(d.info()).unwrap();
    assert_eq!(info["deploymentId"], id.as_str());
    assert_eq!(info["status"], "Succeeded");
    assert_eq!(info["deploymentOverview"]["Succeeded"], 1);
    assert_eq!(info["deploymentOverview"]["Failed"], 1);
    assert_eq!(info["creator"], "user");
    assert_eq!(
        info["deploymentStyle"]["deploymentOption"],
        "WITH_TRAFFIC_CONTROL"
    );
    assert_eq!(info["fileExistsBehavior"], "DISALLOW");
    assert!(info["createTime"].is_f64());

    let target = serde_json::to_value(d.targets[1].instance_target(&id)).unwrap();
    assert_eq!(target["status"], "Failed");
    assert_eq!(
        target["lifecycleEvents"][7]["lifecycleEventName"],
        "AfterInstall"
    );
    assert_eq!(
        target["lifecycleEvents"][7]["diagnostics"]["errorCode"],
        "ScriptFailed"
    );

    let event = finished(&TargetId::new("host-1"), AfterInstall, true);
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["type"], "LifecycleEventFinished");
    assert_eq!(json["outcome"]["status"], "Failed");
    assert_eq!(serde_json::from_value::<Event>(json).unwrap(), event);
    let stop: Event =
        serde_json::from_str(r#"{"type":"StopRequested","autoRollbackEnabled":true}"#).unwrap();
    assert_eq!(
        stop,
        Event::StopRequested {
            auto_rollback_enabled: Some(true)
        }
    );

    let command = Command::RunLifecycleEvents {
        targets: hosts(1),
        events: vec![ApplicationStop],
    };
    let json = serde_json::to_string(&command).unwrap();
    assert_eq!(
        json,
        r#"{"type":"RunLifecycleEvents","targets":["host-1"],"events":["ApplicationStop"]}"#
    );
    assert!(serde_json::from_str::<Event>(r#"{"type":"Exploded"}"#).is_err());
}

#[test]
fn outcomes_carry_host_times() {
    let mut world = World::new(hosts(1));
    let id = world.create(request(1, group(false), one_at_a_time(), "v1"));
    run_until(&mut world, &id, |d| !d.targets.is_empty());
    world.inbox.clear();
    let start = cutover_core::Timestamp::from_secs(1_700_000_100);
    let end = cutover_core::Timestamp::from_secs(1_700_000_160);
    let outcome = LifecycleOutcome {
        status: OutcomeStatus::Succeeded,
        diagnostics: None,
        start_time: Some(start),
        end_time: Some(end),
    };
    world.deliver(
        &id,
        Event::LifecycleEventFinished {
            target: TargetId::new("host-1"),
            event: ApplicationStop,
            outcome,
        },
    );
    let e = &world.deployment(&id).targets[0].lifecycle_events;
    assert_eq!((e[0].start_time, e[0].end_time), (Some(start), Some(end)));
    assert_eq!(e[1].status, LifecycleEventStatus::InProgress);
    assert_eq!(e[1].start_time, Some(end));
}

#[test]
fn creation_resolves_the_effective_settings() {
    let mut g = group(false);
    g.auto_rollback_configuration = Some(rollback_on(&[AutoRollbackEvent::DeploymentFailure]));
    let mut req: CreateDeployment = request(1, g, one_at_a_time(), "v1");
    req.auto_rollback_configuration = Some(AutoRollbackConfiguration::default());
    req.file_exists_behavior = Some(cutover_core::model::FileExistsBehavior::Retain);
    let d = Deployment::create(req, world_now()).unwrap();
    assert!(
        !d.options.auto_rollback_configuration.enabled,
        "the deployment's override wins"
    );
    assert!(d.options.auto_rollback_overridden);
    assert_eq!(
        d.info().file_exists_behavior,
        cutover_core::model::FileExistsBehavior::Retain
    );
    assert_eq!(d.status(), DeploymentStatus::Created);
    assert_eq!(d.version, 0);
}

/// The targets `after` holds copies of instead of sharing them with `before`.
fn copied(before: &Deployment, after: &Deployment) -> Vec<String> {
    before
        .targets
        .iter()
        .zip(&after.targets)
        .filter(|(old, new)| !Arc::ptr_eq(old, new))
        .map(|(old, _)| old.target_id.to_string())
        .collect()
}

#[test]
fn a_lifecycle_event_copies_only_the_target_it_finishes_on() {
    let mut world = World::new(hosts(200));
    let config = predefined("CodeDeployDefault.AllAtOnce");
    let id = world.create(request(1, group(false), config, "v1"));
    run_until(&mut world, &id, |d| !d.targets.is_empty());
    let before = world.deployment(&id).clone();
    assert_eq!(before.overview().in_progress, 200);

    let report = finished(&TargetId::new("host-57"), ApplicationStop, false);
    let after = machine::advance(&before, report.clone(), world.now)
        .unwrap()
        .deployment;
    assert_eq!(after.version, before.version + 1);
    assert_eq!(
        event_statuses(&after, "host-57")[..2],
        [
            (ApplicationStop, LifecycleEventStatus::Succeeded),
            (DownloadBundle, LifecycleEventStatus::InProgress)
        ]
    );
    assert_eq!(copied(&before, &after), ["host-57"]);

    // The same report again changes nothing, so it copies nothing.
    let again = machine::advance(&after, report, world.now).unwrap();
    assert_eq!(again.deployment.version, after.version);
    assert!(copied(&after, &again.deployment).is_empty());
}

#[test]
fn a_host_that_finishes_copies_itself_and_the_host_it_starts() {
    let mut world = World::new(hosts(200));
    let id = world.create(request(1, group(false), one_at_a_time(), "v1"));
    run_until(&mut world, &id, |d| {
        !d.targets.is_empty()
            && event_statuses(d, "host-1")[6] == (ValidateService, LifecycleEventStatus::InProgress)
    });
    let before = world.deployment(&id).clone();

    let report = finished(&TargetId::new("host-1"), ValidateService, false);
    let step = machine::advance(&before, report, world.now).unwrap();
    assert_eq!(
        statuses(&step.deployment)[..3],
        [
            ("host-1".to_string(), TargetStatus::Succeeded),
            ("host-2".to_string(), TargetStatus::InProgress),
            ("host-3".to_string(), TargetStatus::Pending),
        ]
    );
    assert_eq!(copied(&before, &step.deployment), ["host-1", "host-2"]);
}

#[test]
fn two_thousand_hosts_deploy_one_at_a_time_to_the_end() {
    let mut world = World::new(hosts(2000));
    let id = world.create(request(1, group(false), one_at_a_time(), "v1"));
    world.run();
    let d = world.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Succeeded);
    assert_eq!(d.overview().succeeded, 2000);
    assert_eq!(world.finished, [(id.clone(), FinalStatus::Succeeded)]);
    assert_eq!(world.max_out_of_service[&id], 1);
}

#[test]
fn a_deployment_that_waited_in_the_queue_rolls_back_to_what_succeeded_while_it_waited() {
    let mut g = group(false);
    g.auto_rollback_configuration = Some(rollback_on(&[AutoRollbackEvent::DeploymentFailure]));
    let mut world = World::new(hosts(2));
    let v1 = world.create(request(1, g.clone(), one_at_a_time(), "v1"));
    world.run();
    // v3 is created while v2 runs, so when it was created the last success was v1.
    let v2 = world.create(request(2, g.clone(), one_at_a_time(), "v2"));
    let v3 = world.create(request(3, g, one_at_a_time(), "v3"));
    assert_eq!(
        world
            .deployment(&v3)
            .previous
            .as_ref()
            .map(|p| &p.deployment_id),
        Some(&v1)
    );
    run_until(&mut world, &v2, |d| d.is_finished());
    assert_eq!(world.deployment(&v2).status(), DeploymentStatus::Succeeded);
    world.fail("host-1", ValidateService);
    world.run();

    assert_eq!(world.deployment(&v3).status(), DeploymentStatus::Failed);
    let rollback = world.deployment(&v3.derive("rollback"));
    assert_eq!(
        rollback.revision,
        revision("v2"),
        "v2 succeeded while v3 waited, so v3 rolls back to v2"
    );
    assert_eq!(
        world.deployment(&v3).info().previous_revision,
        Some(revision("v2"))
    );
}

#[test]
fn one_claim_of_a_run_stands_and_only_its_command_is_recorded() {
    let mut world = World::new(hosts(2));
    let id = world.create(request(1, group(false), one_at_a_time(), "v1"));
    let (_, created, _) = world.inbox.remove(0);
    world.deliver(&id, created);
    world.deliver(
        &id,
        Event::GroupLockAcquired {
            last_successful: None,
        },
    );
    world.deliver(
        &id,
        Event::RevisionValidated {
            revision: None,
            appspec: None,
        },
    );
    world.deliver(&id, Event::TargetsResolved { targets: hosts(2) });
    world.inbox.clear();
    let h = TargetId::new("host-1");
    let lease = std::time::Duration::from_secs(120);
    let claim = |world: &mut World, claim: &str| {
        let event = Event::HostCommandClaimed {
            target: h.clone(),
            claim: claim.into(),
            expires_at: world.now + lease,
        };
        world.deliver(&id, event);
        let t = world.deployment(&id).target(&h).unwrap();
        t.running_command().map(|c| c.claim.clone())
    };
    let sent = |world: &mut World, claim: &str, command: &str| {
        let event = Event::HostCommandSent {
            target: h.clone(),
            claim: claim.into(),
            command_id: command.into(),
        };
        world.deliver(&id, event);
        let t = world.deployment(&id).target(&h).unwrap();
        t.running_command().and_then(|c| c.command_id.clone())
    };

    // Two steps claim the run at once: the first claim stands.
    assert_eq!(claim(&mut world, "a").as_deref(), Some("a"));
    assert_eq!(claim(&mut world, "b").as_deref(), Some("a"));
    // A command sent under a claim that does not stand is not recorded.
    assert_eq!(sent(&mut world, "b", "command-b"), None);

    // Once the lease is over without a command, another step may take over.
    world.now = world.now + lease;
    assert_eq!(claim(&mut world, "c").as_deref(), Some("c"));
    assert_eq!(sent(&mut world, "a", "command-a"), None);
    assert_eq!(
        sent(&mut world, "c", "command-c").as_deref(),
        Some("command-c")
    );
    // Recorded, the command holds however long it runs; a second one is not recorded.
    world.now = world.now + lease * 10;
    assert_eq!(claim(&mut world, "d").as_deref(), Some("c"));
    assert_eq!(
        sent(&mut world, "c", "command-again").as_deref(),
        Some("command-c")
    );

    // host-2's run has not started: it cannot be claimed yet.
    let early = Event::HostCommandClaimed {
        target: TargetId::new("host-2"),
        claim: "e".into(),
        expires_at: world.now + lease,
    };
    let before = world.deployment(&id).clone();
    world.deliver(&id, early);
    assert_eq!(world.deployment(&id), &before);
}
