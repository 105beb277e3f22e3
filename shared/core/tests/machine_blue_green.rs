//! Blue/green deployments to hosts through the state machine: replacements installed within the
//! health limits, traffic rerouted green first, then blue, the waits before the reroute and
//! before termination, and what a failure, a stop or an alarm undoes at each point.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use cutover_core::TargetId;
use cutover_core::lifecycle::LifecycleEventName::{self, *};
use cutover_core::machine::{Deployment, Event, FinalStatus, Phase, PhaseKind};
use cutover_core::model::{
    Alarm, AlarmConfiguration, AutoRollbackConfiguration, AutoRollbackEvent,
    BlueGreenDeploymentConfiguration, BlueInstanceTerminationOption, DeploymentReadyAction,
    DeploymentReadyOption, DeploymentStatus, DeploymentType, DeploymentWaitType, ErrorCode,
    ErrorInformation, InstanceAction, LifecycleEventStatus, TargetLabel, TargetStatus,
    TriggerEventType,
};
use proptest::prelude::*;
use support::*;

fn green(n: usize) -> Vec<TargetId> {
    (1..=n)
        .map(|i| TargetId::new(format!("Fleet-green-{i}")))
        .collect()
}

fn blue_green(bg: BlueGreenDeploymentConfiguration) -> cutover_core::model::DeploymentGroupInfo {
    let mut g = group(true);
    g.deployment_style.deployment_type = DeploymentType::BlueGreen;
    g.blue_green_deployment_configuration = Some(bg);
    g
}

fn terminate_after(minutes: u32) -> BlueGreenDeploymentConfiguration {
    BlueGreenDeploymentConfiguration {
        terminate_blue_instances_on_deployment_success: Some(BlueInstanceTerminationOption {
            action: InstanceAction::Terminate,
            termination_wait_time_in_minutes: minutes,
        }),
        ..Default::default()
    }
}

fn ready_wait(action: DeploymentReadyAction, minutes: u32) -> BlueGreenDeploymentConfiguration {
    BlueGreenDeploymentConfiguration {
        deployment_ready_option: Some(DeploymentReadyOption {
            action_on_timeout: action,
            wait_time_in_minutes: minutes,
        }),
        ..Default::default()
    }
}

/// A blue/green deployment of revision v2 with `CodeDeployDefault.<config>`.
fn bg_request(
    n: u64,
    bg: BlueGreenDeploymentConfiguration,
    config: &str,
) -> cutover_core::machine::CreateDeployment {
    request(
        n,
        blue_green(bg),
        predefined(&format!("CodeDeployDefault.{config}")),
        "v2",
    )
}

/// A world with `blue` original hosts in service and `green` replacements to provision.
fn world(blue: usize, green_hosts: usize) -> World {
    let mut w = World::new(hosts(blue));
    w.in_service = hosts(blue).into_iter().collect();
    w.replacements = green(green_hosts);
    w
}

fn set(ids: &[TargetId]) -> BTreeSet<TargetId> {
    ids.iter().cloned().collect()
}

fn events(d: &Deployment, id: &str) -> Vec<(LifecycleEventName, LifecycleEventStatus)> {
    d.target(&TargetId::new(id))
        .unwrap_or_else(|| panic!("no target {id}"))
        .lifecycle_events
        .iter()
        .map(|e| (e.lifecycle_event_name, e.status))
        .collect()
}

fn labelled(d: &Deployment, label: TargetLabel) -> Vec<(String, TargetStatus)> {
    d.targets
        .iter()
        .filter(|t| t.instance_label == Some(label))
        .map(|t| (t.target_id.to_string(), t.status))
        .collect()
}

#[test]
fn green_takes_traffic_before_blue_gives_it_up_and_blue_is_kept_alive_by_default() {
    let mut w = world(2, 3);
    let id = w.create(bg_request(1, Default::default(), "OneAtATime"));
    w.run();
    let d = w.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Succeeded);
    assert_eq!(w.in_service, set(&green(3)));
    assert_eq!(w.released, vec![(id.clone(), hosts(2), false)]);
    assert!(w.discarded.is_empty());
    assert!(!d.info().instance_termination_wait_time_started);
    let all_succeeded = |label| {
        labelled(d, label)
            .iter()
            .all(|(_, s)| *s == TargetStatus::Succeeded)
    };
    assert!(all_succeeded(TargetLabel::Green) && all_succeeded(TargetLabel::Blue));
    assert_eq!(
        events(d, "Fleet-green-1")
            .iter()
            .map(|e| e.0)
            .collect::<Vec<_>>(),
        [
            ApplicationStop,
            DownloadBundle,
            BeforeInstall,
            Install,
            AfterInstall,
            ApplicationStart,
            ValidateService,
            BeforeAllowTraffic,
            AllowTraffic,
            AfterAllowTraffic
        ]
    );
    assert_eq!(
        events(d, "host-1"),
        [
            (BeforeBlockTraffic, LifecycleEventStatus::Succeeded),
            (BlockTraffic, LifecycleEventStatus::Succeeded),
            (AfterBlockTraffic, LifecycleEventStatus::Succeeded)
        ]
    );
    let last_allow = w.routed.iter().rposition(|r| r.1 == AllowTraffic).unwrap();
    let first_block = w.routed.iter().position(|r| r.1 == BlockTraffic).unwrap();
    assert!(last_allow < first_block, "{:?}", w.routed);
    // OneAtATime applies to the replacements: one installs at a time.
    assert_eq!(w.max_green_out_of_service[&id], 1);
    let ready: Vec<_> = w
        .notices
        .iter()
        .filter(|n| n.1 == TriggerEventType::InstanceReady)
        .collect();
    assert_eq!(ready.len(), 3);
}

#[test]
fn originals_are_terminated_after_the_wait_or_when_a_user_continues() {
    let mut w = world(2, 2);
    let id = w.create(bg_request(1, terminate_after(60), "AllAtOnce"));
    w.settle();
    let d = w.deployment(&id).clone();
    let Phase::WaitingToTerminate { until } = d.phase else {
        panic!("{:?}", d.phase)
    };
    assert_eq!(d.status(), DeploymentStatus::InProgress);
    assert!(d.info().instance_termination_wait_time_started);
    assert_eq!(w.in_service, set(&green(2)));
    let rerouted_at = w.now;
    w.run();
    assert!(until >= rerouted_at + Duration::from_secs(3600 - 5));
    assert!(w.now >= until);
    assert_eq!(w.deployment(&id).status(), DeploymentStatus::Succeeded);
    assert_eq!(w.released, vec![(id.clone(), hosts(2), true)]);

    // SkipWaitTimeForInstanceTermination.
    let mut w = world(1, 1);
    let id = w.create(bg_request(2, terminate_after(60), "AllAtOnce"));
    w.settle();
    let ready_wait = Event::ContinueRequested {
        wait: DeploymentWaitType::ReadyWait,
    };
    w.deliver(&id, ready_wait);
    assert_eq!(
        w.deployment(&id).phase.kind(),
        PhaseKind::WaitingToTerminate
    );
    let waited_from = w.now;
    w.post(
        &id,
        Event::ContinueRequested {
            wait: DeploymentWaitType::TerminationWait,
        },
    );
    w.run();
    assert_eq!(w.deployment(&id).status(), DeploymentStatus::Succeeded);
    let completed = w.deployment(&id).complete_time.unwrap();
    assert!(completed < waited_from + Duration::from_secs(60));
    assert_eq!(w.released, vec![(id.clone(), hosts(1), true)]);
}

#[test]
fn a_failure_on_green_leaves_blue_serving_and_removes_green() {
    let mut w = world(2, 2);
    w.fail("Fleet-green-1", AfterInstall);
    let mut req = bg_request(1, terminate_after(0), "OneAtATime");
    req.auto_rollback_configuration = Some(AutoRollbackConfiguration {
        enabled: true,
        events: vec![AutoRollbackEvent::DeploymentFailure],
    });
    let id = w.create(req);
    w.run();
    let d = w.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Failed);
    let error = d.error_information.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::HealthConstraints);
    assert!(error.message.contains("Fleet-green-1"), "{}", error.message);
    assert_eq!(w.in_service, set(&hosts(2)));
    assert!(w.routed.is_empty(), "{:?}", w.routed);
    assert_eq!(w.discarded, vec![(id.clone(), green(2))]);
    assert!(w.released.is_empty());
    assert_eq!(
        labelled(d, TargetLabel::Blue),
        [
            ("host-1".into(), TargetStatus::Skipped),
            ("host-2".into(), TargetStatus::Skipped)
        ]
    );
    // OneAtATime: the second replacement was never started.
    assert_eq!(
        labelled(d, TargetLabel::Green),
        [
            ("Fleet-green-1".into(), TargetStatus::Failed),
            ("Fleet-green-2".into(), TargetStatus::Skipped)
        ]
    );
    // Blue never left service, so there is no rollback deployment to run.
    assert_eq!(w.deployments.len(), 1);
    assert!(
        d.rollback_info
            .as_ref()
            .and_then(|r| r.rollback_message.as_deref())
            .is_some_and(|m| m.contains("replacement hosts were removed"))
    );
}

#[test]
fn all_at_once_reroutes_to_the_replacements_that_installed() {
    let mut w = world(2, 3);
    w.fail("Fleet-green-2", Install);
    let id = w.create(bg_request(1, Default::default(), "AllAtOnce"));
    w.run();
    let d = w.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Succeeded);
    let expected: BTreeSet<TargetId> = ["Fleet-green-1", "Fleet-green-3"]
        .into_iter()
        .map(TargetId::new)
        .collect();
    assert_eq!(w.in_service, expected);
    assert_eq!(
        d.target(&TargetId::new("Fleet-green-2")).unwrap().status,
        TargetStatus::Failed
    );
}

#[test]
fn a_stop_deployment_ready_wait_is_continued_or_stops_when_it_runs_out() {
    let config = ready_wait(DeploymentReadyAction::StopDeployment, 30);
    let mut w = world(1, 1);
    let id = w.create(bg_request(1, config, "AllAtOnce"));
    w.settle();
    let d = w.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Ready);
    assert_eq!(
        labelled(d, TargetLabel::Green),
        [("Fleet-green-1".into(), TargetStatus::Ready)]
    );
    assert!(
        w.notices
            .iter()
            .any(|n| n.1 == TriggerEventType::DeploymentReady)
    );
    assert_eq!(w.in_service, set(&hosts(1)));
    // Continuing a wait the deployment is not in changes nothing.
    let wrong = Event::ContinueRequested {
        wait: DeploymentWaitType::TerminationWait,
    };
    assert!(w.deliver(&id, wrong).is_empty());
    w.post(
        &id,
        Event::ContinueRequested {
            wait: DeploymentWaitType::ReadyWait,
        },
    );
    w.run();
    assert_eq!(w.deployment(&id).status(), DeploymentStatus::Succeeded);
    assert_eq!(w.in_service, set(&green(1)));

    let mut w = world(1, 1);
    let id = w.create(bg_request(2, config, "AllAtOnce"));
    w.run();
    let d = w.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Stopped);
    let error = d.error_information.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::Timeout);
    assert!(error.message.contains("30 minutes"), "{}", error.message);
    assert_eq!(w.in_service, set(&hosts(1)));
    assert_eq!(w.discarded, vec![(id.clone(), green(1))]);
}

#[test]
fn a_continue_deployment_ready_wait_reroutes_when_it_ends() {
    let mut w = world(1, 1);
    let id = w.create(bg_request(
        1,
        ready_wait(DeploymentReadyAction::ContinueDeployment, 10),
        "AllAtOnce",
    ));
    w.settle();
    assert_eq!(w.deployment(&id).status(), DeploymentStatus::Ready);
    let installed_at = w.now;
    w.run();
    assert_eq!(w.deployment(&id).status(), DeploymentStatus::Succeeded);
    let allowed_at = w.deployment(&id).targets[1].lifecycle_events[8]
        .start_time
        .unwrap();
    assert!(allowed_at >= installed_at + Duration::from_secs(600 - 5));
}

#[test]
fn an_alarm_after_the_reroute_routes_traffic_back_to_blue() {
    let mut w = world(2, 2);
    let mut req = bg_request(1, terminate_after(60), "AllAtOnce");
    req.override_alarm_configuration = Some(AlarmConfiguration {
        enabled: true,
        ignore_poll_alarm_failure: false,
        alarms: vec![Alarm {
            name: "errors".into(),
        }],
    });
    let id = w.create(req);
    w.settle();
    assert_eq!(w.in_service, set(&green(2)));
    w.post(
        &id,
        Event::AlarmRaised {
            alarm: "errors".into(),
        },
    );
    w.run();
    let d = w.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Stopped);
    assert_eq!(
        d.error_information.as_ref().unwrap().code,
        ErrorCode::AlarmActive
    );
    assert_eq!(w.in_service, set(&hosts(2)));
    assert_eq!(w.discarded, vec![(id.clone(), green(2))]);
    assert!(w.released.is_empty());
    // The originals ran the Allow events, the replacements the Block events.
    assert_eq!(
        events(d, "host-1")[3..]
            .iter()
            .map(|e| e.0)
            .collect::<Vec<_>>(),
        [BeforeAllowTraffic, AllowTraffic, AfterAllowTraffic]
    );
    assert_eq!(
        events(d, "Fleet-green-1")[10..],
        [
            (BeforeBlockTraffic, LifecycleEventStatus::Succeeded),
            (BlockTraffic, LifecycleEventStatus::Succeeded),
            (AfterBlockTraffic, LifecycleEventStatus::Succeeded)
        ]
    );
    let message = d
        .rollback_info
        .as_ref()
        .and_then(|r| r.rollback_message.clone())
        .unwrap();
    assert!(
        message.contains("routed back to the original hosts (host-1, host-2)"),
        "{message}"
    );
}

#[test]
fn a_blue_host_that_cannot_leave_service_fails_the_deployment_and_traffic_goes_back() {
    let mut w = world(2, 2);
    w.fail("host-2", BlockTraffic);
    let id = w.create(bg_request(1, terminate_after(0), "AllAtOnce"));
    w.run();
    let d = w.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Failed);
    let error = d.error_information.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::ElasticLoadBalancingInvalid);
    assert!(error.message.contains("host-2"), "{}", error.message);
    assert_eq!(w.in_service, set(&hosts(2)));
    assert_eq!(w.discarded, vec![(id.clone(), green(2))]);
    assert!(w.released.is_empty());
}

#[test]
fn provisioning_that_fails_or_never_ends_fails_the_deployment_and_cleans_up() {
    let mut w = world(1, 1);
    w.provisioning_fails = Some(ErrorInformation::new(
        ErrorCode::AutoScalingConfiguration,
        "the launch template is gone",
    ));
    let id = w.create(bg_request(1, Default::default(), "AllAtOnce"));
    w.run();
    let d = w.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Failed);
    assert_eq!(
        d.error_information.as_ref().unwrap().code,
        ErrorCode::AutoScalingConfiguration
    );
    assert_eq!(w.discarded, vec![(id.clone(), vec![])]);
    assert_eq!(
        labelled(d, TargetLabel::Blue),
        [("host-1".into(), TargetStatus::Skipped)]
    );

    let mut w = world(1, 1);
    w.provisioning_silent = true;
    let started = w.now;
    let id = w.create(bg_request(2, Default::default(), "AllAtOnce"));
    w.run();
    let d = w.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Failed);
    assert_eq!(
        d.error_information.as_ref().unwrap().code,
        ErrorCode::Timeout
    );
    assert!(w.now >= started + Duration::from_secs(3600));
    assert_eq!(w.discarded.len(), 1);
    // A late answer changes nothing.
    let late = Event::ReplacementsReady { targets: green(1) };
    assert!(w.deliver(&id, late).is_empty());
}

#[test]
fn replacements_that_are_originals_or_none_are_refused() {
    for replacements in [vec![], hosts(1)] {
        let mut w = world(2, 0);
        w.replacements = replacements;
        let id = w.create(bg_request(1, Default::default(), "AllAtOnce"));
        w.run();
        let d = w.deployment(&id);
        assert_eq!(d.status(), DeploymentStatus::Failed);
        assert_eq!(
            d.error_information.as_ref().unwrap().code,
            ErrorCode::NoInstances
        );
        assert_eq!(w.in_service, set(&hosts(2)));
    }
}

#[test]
fn a_stop_before_the_reroute_discards_green_and_one_while_releasing_is_too_late() {
    let mut w = world(1, 1);
    let id = w.create(bg_request(
        1,
        ready_wait(DeploymentReadyAction::StopDeployment, 60),
        "AllAtOnce",
    ));
    w.settle();
    w.post(
        &id,
        Event::StopRequested {
            auto_rollback_enabled: None,
        },
    );
    w.run();
    assert_eq!(w.deployment(&id).status(), DeploymentStatus::Stopped);
    assert_eq!(w.in_service, set(&hosts(1)));
    assert_eq!(w.discarded.len(), 1);

    let mut w = world(1, 1);
    let id = w.create(bg_request(2, terminate_after(0), "AllAtOnce"));
    while w.deployment(&id).phase != Phase::ReleasingOriginals {
        let (d, e, _) = w.inbox.remove(0);
        w.deliver(&d, e);
    }
    let stop = Event::StopRequested {
        auto_rollback_enabled: Some(true),
    };
    assert!(w.deliver(&id, stop).is_empty());
    w.run();
    assert_eq!(w.deployment(&id).status(), DeploymentStatus::Succeeded);
}

/// One random blue/green deployment.
#[derive(Clone, Debug)]
struct Case {
    blue: usize,
    green: usize,
    config: &'static str,
    failures: Vec<(bool, usize, LifecycleEventName)>,
    bg: BlueGreenDeploymentConfiguration,
    continue_ready: bool,
    deliveries: u32,
    order: Vec<usize>,
}

fn case() -> impl Strategy<Value = Case> {
    let failure = (
        any::<bool>(),
        0usize..6,
        prop::sample::select(vec![
            ApplicationStop,
            Install,
            ValidateService,
            BeforeAllowTraffic,
            AllowTraffic,
            AfterAllowTraffic,
            BeforeBlockTraffic,
            BlockTraffic,
        ]),
    );
    let ready = prop::option::of((
        prop::sample::select(vec![
            DeploymentReadyAction::ContinueDeployment,
            DeploymentReadyAction::StopDeployment,
        ]),
        0u32..120,
    ));
    let terminate = prop::option::of((any::<bool>(), 0u32..120));
    (
        1usize..5,
        1usize..6,
        prop::sample::select(vec![
            "CodeDeployDefault.OneAtATime",
            "CodeDeployDefault.HalfAtATime",
            "CodeDeployDefault.AllAtOnce",
        ]),
        prop::collection::vec(failure, 0..3),
        ready,
        terminate,
        any::<bool>(),
        1u32..3,
        prop::collection::vec(0usize..64, 0..400),
    )
        .prop_map(
            |(
                blue,
                green,
                config,
                failures,
                ready,
                terminate,
                continue_ready,
                deliveries,
                order,
            )| {
                Case {
                    blue,
                    green,
                    config,
                    failures,
                    bg: BlueGreenDeploymentConfiguration {
                        terminate_blue_instances_on_deployment_success: terminate.map(
                            |(t, minutes)| BlueInstanceTerminationOption {
                                action: if t {
                                    InstanceAction::Terminate
                                } else {
                                    InstanceAction::KeepAlive
                                },
                                termination_wait_time_in_minutes: minutes,
                            },
                        ),
                        deployment_ready_option: ready.map(|(action, minutes)| {
                            DeploymentReadyOption {
                                action_on_timeout: action,
                                wait_time_in_minutes: minutes,
                            }
                        }),
                        green_fleet_provisioning_option: None,
                    },
                    continue_ready,
                    deliveries,
                    order,
                }
            },
        )
}

/// Runs a case; events are delivered in the case's order, each `deliveries` times.
fn play(c: &Case) -> (World, cutover_core::DeploymentId) {
    let mut w = world(c.blue, c.green);
    w.deliveries = c.deliveries;
    for (is_green, i, event) in &c.failures {
        let host = if *is_green {
            format!("Fleet-green-{}", i % c.green + 1)
        } else {
            format!("host-{}", i % c.blue + 1)
        };
        w.fail(&host, *event);
    }
    let id = w.create(request(1, blue_green(c.bg), predefined(c.config), "v2"));
    let mut order = c.order.iter().copied().cycle();
    let mut next = move |n: usize| order.next().unwrap_or(0) % n.max(1);
    if c.continue_ready {
        w.settle();
        w.post(
            &id,
            Event::ContinueRequested {
                wait: DeploymentWaitType::ReadyWait,
            },
        );
    }
    w.run_with(&mut next);
    (w, id)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn traffic_ends_on_exactly_one_fleet(c in case()) {
        let (w, id) = play(&c);
        let d = w.deployment(&id);
        prop_assert!(d.is_finished(), "{:?}", d.phase);
        let blue = set(&hosts(c.blue));
        let green_ids = set(&green(c.green));
        let Ok(plan) = predefined(c.config).host_plan(c.green as u32) else {
            prop_assert_eq!(
                d.error_information.as_ref().map(|e| e.code),
                Some(ErrorCode::HealthConstraintsInvalid)
            );
            prop_assert_eq!(&w.in_service, &blue);
            return Ok(());
        };
        // The minimum-healthy rule holds on the replacement fleet.
        if let Some(max) = w.max_green_out_of_service.get(&id) {
            prop_assert!(*max <= plan.max_out_of_service, "{max} > {}", plan.max_out_of_service);
        }
        if d.status() == DeploymentStatus::Succeeded {
            prop_assert!(!w.in_service.is_empty());
            prop_assert!(w.in_service.is_subset(&green_ids), "{:?}", w.in_service);
            let terminate = c.bg.terminate_blue_instances_on_deployment_success
                .is_some_and(|t| t.action == InstanceAction::Terminate);
            prop_assert_eq!(&w.released, &vec![(id.clone(), hosts(c.blue), terminate)]);
            prop_assert!(w.discarded.is_empty());
            // Every replacement in service took traffic before any original gave it up.
            let first_block = w.routed.iter().position(|r| r.1 == BlockTraffic);
            let last_allow = w.routed.iter().rposition(|r| r.1 == AllowTraffic);
            prop_assert!(first_block > last_allow, "{:?}", w.routed);
        } else {
            // Blue serves, and only blue, unless a host was planned to fail the events that
            // route traffic back.
            let route_back_fails = c.failures.iter().any(|(g, _, e)| {
                if *g {
                    matches!(e, BeforeBlockTraffic | BlockTraffic)
                } else {
                    matches!(e, BeforeAllowTraffic | AllowTraffic)
                }
            });
            if !route_back_fails {
                prop_assert_eq!(&w.in_service, &blue);
            }
            prop_assert!(w.released.is_empty());
            prop_assert_eq!(w.discarded.len(), 1);
            prop_assert!(d.targets.iter().all(|t| t.status.is_final()));
        }
        // Nothing is left running and no rollback deployment was made.
        prop_assert_eq!(w.deployments.len(), 1);
        prop_assert_eq!(w.finished.len(), 1);
        prop_assert!(matches!(w.finished[0].1, FinalStatus::Succeeded | FinalStatus::Failed | FinalStatus::Stopped));
    }
}
