//! Properties of the deployment state machine over random fleets (1 to 200 hosts), random
//! configurations and injected failures, with events delivered in order, shuffled and twice.

mod support;

use std::collections::BTreeMap;

use cutover_core::config::{
    DeploymentConfigInfo, HostPlan, MinimumHealthyHosts, MinimumHealthyHostsType,
};
use cutover_core::lifecycle::{self, LifecycleEventName};
use cutover_core::machine::{self, Deployment, Event, FinalStatus, Phase};
use cutover_core::model::{
    AutoRollbackConfiguration, AutoRollbackEvent, DeploymentStatus, ErrorCode,
    LifecycleEventStatus, TargetStatus,
};
use cutover_core::{DeploymentId, TargetId};
use proptest::prelude::*;
use support::*;

/// A random deployment: fleet, configuration, settings and the lifecycle events that fail.
#[derive(Clone, Debug)]
struct Case {
    fleet: usize,
    config: DeploymentConfigInfo,
    traffic_control: bool,
    ignore_stop_failures: bool,
    failures: Vec<(usize, LifecycleEventName)>,
}

fn config_strategy() -> impl Strategy<Value = DeploymentConfigInfo> {
    prop_oneof![
        Just(predefined("CodeDeployDefault.OneAtATime")),
        Just(predefined("CodeDeployDefault.HalfAtATime")),
        Just(predefined("CodeDeployDefault.AllAtOnce")),
        (0i64..40).prop_map(|v| DeploymentConfigInfo::server(
            "HostCount",
            MinimumHealthyHosts {
                kind: MinimumHealthyHostsType::HostCount,
                value: v
            }
        )),
        (0i64..100).prop_map(|v| DeploymentConfigInfo::server(
            "FleetPercent",
            MinimumHealthyHosts {
                kind: MinimumHealthyHostsType::FleetPercent,
                value: v
            }
        )),
    ]
}

fn case_strategy(max_fleet: usize) -> impl Strategy<Value = Case> {
    (
        1..=max_fleet,
        config_strategy(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_flat_map(|(fleet, config, traffic_control, ignore_stop_failures)| {
            let events = lifecycle::server_in_place(traffic_control);
            let failure = (0..fleet, proptest::sample::select(events));
            let failures = prop::collection::vec(failure, 0..=(fleet / 3 + 2));
            (
                Just((fleet, config, traffic_control, ignore_stop_failures)),
                failures,
            )
        })
        .prop_map(
            |((fleet, config, traffic_control, ignore_stop_failures), failures)| Case {
                fleet,
                config,
                traffic_control,
                ignore_stop_failures,
                failures,
            },
        )
}

fn world_for(case: &Case) -> (World, DeploymentId) {
    let mut world = World::new(hosts(case.fleet));
    for (host, event) in &case.failures {
        world.fail(&format!("host-{}", host + 1), *event);
    }
    let mut req = request(7, group(case.traffic_control), case.config.clone(), "v2");
    req.ignore_application_stop_failures = case.ignore_stop_failures;
    let id = world.create(req);
    (world, id)
}

/// What CodeDeploy's rules say should happen, computed from the case alone.
struct Expected {
    status: DeploymentStatus,
    targets: Vec<TargetStatus>,
}

fn expected(case: &Case) -> Expected {
    let Ok(plan) = HostPlan::new(&case.config, case.fleet as u32) else {
        return Expected {
            status: DeploymentStatus::Failed,
            targets: vec![],
        };
    };
    let events = lifecycle::server_in_place(case.traffic_control);
    let fails = |host: usize| {
        events.iter().any(|e| {
            case.failures.contains(&(host, *e))
                && !(case.ignore_stop_failures && e.is_ignorable_stop_event())
        })
    };
    // Hosts start in order while fewer than max_out_of_service have failed; the host whose
    // failure uses up that allowance is the last one to start.
    let mut targets = Vec::new();
    let mut failed = 0;
    for host in 0..case.fleet {
        if failed >= plan.max_out_of_service {
            targets.push(TargetStatus::Skipped);
            continue;
        }
        if fails(host) {
            failed += 1;
            targets.push(TargetStatus::Failed);
        } else {
            targets.push(TargetStatus::Succeeded);
        }
    }
    let skipped = targets.contains(&TargetStatus::Skipped);
    let succeeded = targets
        .iter()
        .filter(|t| **t == TargetStatus::Succeeded)
        .count() as u32;
    let status = if !skipped && plan.is_success(succeeded) {
        DeploymentStatus::Succeeded
    } else {
        DeploymentStatus::Failed
    };
    Expected { status, targets }
}

/// A target's status and its lifecycle events' statuses.
type TargetOutcome = (TargetId, TargetStatus, Vec<LifecycleEventStatus>);

/// The parts of a deployment that must not depend on delivery order.
fn outcome(d: &Deployment) -> (DeploymentStatus, Option<ErrorCode>, Vec<TargetOutcome>) {
    (
        d.status(),
        d.error_information.as_ref().map(|e| e.code),
        d.targets
            .iter()
            .map(|t| {
                (
                    t.target_id.clone(),
                    t.status,
                    t.lifecycle_events.iter().map(|e| e.status).collect(),
                )
            })
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn deployments_keep_the_configurations_health_rules(case in case_strategy(200)) {
        let (mut world, id) = world_for(&case);
        world.run();
        let d = world.deployment(&id);
        let want = expected(&case);

        // The final status matches the configuration's success rule.
        prop_assert_eq!(d.status(), want.status);
        if !d.targets.is_empty() {
            let got: Vec<_> = d.targets.iter().map(|t| t.status).collect();
            prop_assert_eq!(got, want.targets);
        }
        // Every target ends in a final status, and so does every lifecycle event.
        for t in &d.targets {
            prop_assert!(t.status.is_final(), "{} is {}", t.target_id, t.status);
            prop_assert!(t.lifecycle_events.iter().all(|e| e.status.is_final()));
        }
        // Never more hosts out of service at once than the configuration allows.
        if let Ok(plan) = HostPlan::new(&case.config, case.fleet as u32) {
            prop_assert!(world.max_out_of_service[&id] <= plan.max_out_of_service,
                "{} out of service, {} allowed", world.max_out_of_service[&id], plan.max_out_of_service);
        }
        prop_assert_eq!(world.finished.len(), 1);
        prop_assert!(world.queue.active.is_none());
    }

    #[test]
    fn shuffled_and_duplicated_events_reach_the_same_end(
        case in case_strategy(40),
        seed in any::<u64>(),
    ) {
        let (mut in_order, id) = world_for(&case);
        in_order.run();

        let (mut shuffled, same_id) = world_for(&case);
        prop_assert_eq!(&id, &same_id);
        shuffled.deliveries = 2;
        shuffled.inbox[0].2 = 2;
        let mut rng = seed;
        shuffled.run_with(|_| {
            // xorshift: a small deterministic generator for the delivery order.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng as usize
        });
        prop_assert_eq!(outcome(shuffled.deployment(&id)), outcome(in_order.deployment(&id)));
        prop_assert_eq!(shuffled.finished.len(), 1);
        if let Ok(plan) = HostPlan::new(&case.config, case.fleet as u32) {
            prop_assert!(shuffled.max_out_of_service[&id] <= plan.max_out_of_service);
        }
    }

    #[test]
    fn events_for_a_finished_deployment_change_nothing(
        case in case_strategy(30),
        stop_after in 0usize..400,
        host in 0usize..30,
        event in proptest::sample::select(LifecycleEventName::ALL.to_vec()),
        failed in any::<bool>(),
    ) {
        let (mut world, id) = world_for(&case);
        // Stop somewhere along the way (or let it finish first).
        for _ in 0..stop_after {
            if world.inbox.is_empty() { break; }
            let (target, e, _) = world.inbox.remove(0);
            world.deliver(&target, e);
        }
        world.inbox.clear();
        world.deliver(&id, Event::StopRequested { auto_rollback_enabled: None });
        let d = world.deployment(&id).clone();
        prop_assert!(d.is_finished());
        for t in &d.targets {
            prop_assert!(t.status.is_final());
        }
        let events = [
            Event::Created,
            Event::GroupLockAcquired { last_successful: None },
            Event::RevisionValidated { revision: None, appspec: None },
            Event::TargetsResolved { targets: hosts(3) },
            finished(&TargetId::new(format!("host-{}", host + 1)), event, failed),
            Event::AlarmRaised { alarm: "any".into() },
            Event::StopRequested { auto_rollback_enabled: Some(true) },
        ];
        for e in events {
            let t = machine::advance(&d, e, world.now).unwrap();
            prop_assert_eq!(&t.deployment, &d);
            prop_assert!(t.commands.is_empty());
        }
    }

    #[test]
    fn rollback_restores_the_last_good_revision(case in case_strategy(30)) {
        let mut g = group(case.traffic_control);
        g.auto_rollback_configuration = Some(AutoRollbackConfiguration {
            enabled: true,
            events: vec![AutoRollbackEvent::DeploymentFailure],
        });
        let mut world = World::new(hosts(case.fleet));
        let good = world.create(request(1, g.clone(), predefined("CodeDeployDefault.AllAtOnce"), "v1"));
        world.run();
        prop_assert_eq!(world.deployment(&good).status(), DeploymentStatus::Succeeded);

        for (host, event) in &case.failures {
            world.fail(&format!("host-{}", host + 1), *event);
        }
        let mut req = request(2, g, case.config.clone(), "v2");
        req.ignore_application_stop_failures = case.ignore_stop_failures;
        let id = world.create(req);
        world.run();
        let d = world.deployment(&id);
        let rollback_id = id.derive("rollback");
        let touched = d.targets.iter().any(|t| t.dispatched > 0);
        if d.status() == DeploymentStatus::Failed && touched {
            let rollback = world.deployment(&rollback_id);
            prop_assert_eq!(&rollback.revision, &revision("v1"));
            prop_assert_eq!(rollback.status().is_final(), true);
            prop_assert_eq!(
                d.rollback_info.as_ref().and_then(|r| r.rollback_deployment_id.clone()),
                Some(rollback_id.clone())
            );
        } else {
            prop_assert!(!world.deployments.contains_key(&rollback_id));
        }
        prop_assert!(world.queue.active.is_none());
    }
}

#[test]
fn every_step_taken_is_in_the_phase_graph() {
    // The world checks each step against the graph; this drives every kind of ending.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (fleet, fail) in [
        (3, None),
        (3, Some(("host-1", LifecycleEventName::AfterInstall))),
        (0, None),
    ] {
        let mut world = World::new(hosts(fleet));
        if let Some((h, e)) = fail {
            world.fail(h, e);
        }
        let id = world.create(request(
            1,
            group(true),
            predefined("CodeDeployDefault.OneAtATime"),
            "v1",
        ));
        world.run();
        assert!(world.deployment(&id).is_finished());
        for s in &world.steps {
            *seen
                .entry(format!("{:?} {:?} {:?}", s.from, s.event, s.to))
                .or_default() += 1;
        }
    }
    assert!(
        seen.keys()
            .any(|k| k.starts_with("InPlace LifecycleEventFinished Succeeded"))
    );
    assert!(
        seen.keys()
            .any(|k| k.starts_with("InPlace LifecycleEventFinished Failed"))
    );
    assert!(
        seen.keys()
            .any(|k| k.starts_with("ResolvingTargets TargetsResolved Failed"))
    );
    assert!(matches!(
        Phase::Finished {
            status: FinalStatus::Failed
        }
        .kind(),
        machine::PhaseKind::Failed
    ));
}
