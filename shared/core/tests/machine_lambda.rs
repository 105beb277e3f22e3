//! Lambda deployments in the state machine: hooks, the weight schedule of every configuration,
//! timers, alarms, bake time, and moving traffic back, with events duplicated and shuffled.

mod support;

use std::time::Duration;

use cutover_core::config::{
    self, DeploymentConfigInfo, TimeBasedCanary, TimeBasedLinear, TrafficRoutingConfig,
    TrafficRoutingType, TrafficSchedule,
};
use cutover_core::lifecycle::LifecycleEventName;
use cutover_core::machine::{self, CreateDeployment, Event, HOOK_TIMEOUT, HookStatus, Phase};
use cutover_core::model::{
    AlarmConfiguration, AppSpecContent, ComputePlatform, DeploymentGroupInfo, DeploymentOption,
    DeploymentStatus, DeploymentType, ErrorCode, LifecycleEventStatus, RevisionLocation,
    TargetStatus,
};
use cutover_core::{DeploymentId, TargetId, Timestamp};
use proptest::prelude::*;
use support::World;

use LifecycleEventName::{AfterAllowTraffic, AllowTraffic, BeforeAllowTraffic};

fn lambda_group() -> DeploymentGroupInfo {
    let mut g = DeploymentGroupInfo {
        application_name: "Api".into(),
        deployment_group_id: "4f1c2d3e-0000-4000-8000-000000000002".into(),
        deployment_group_name: "Live".into(),
        deployment_config_name: "CodeDeployDefault.LambdaAllAtOnce".into(),
        compute_platform: ComputePlatform::Lambda,
        ..Default::default()
    };
    g.deployment_style.deployment_type = DeploymentType::BlueGreen;
    g.deployment_style.deployment_option = DeploymentOption::WithTrafficControl;
    g
}

fn appspec(before: bool, after: bool) -> String {
    let mut text = String::from(
        "version: 0.0\nResources:\n  - api:\n      Type: AWS::Lambda::Function\n      Properties:\n        Name: checkout\n        Alias: live\n        CurrentVersion: 3\n        TargetVersion: 4\n",
    );
    if before || after {
        text.push_str("Hooks:\n");
    }
    if before {
        text.push_str("  - BeforeAllowTraffic: checkout-before\n");
    }
    if after {
        text.push_str("  - AfterAllowTraffic: checkout-after\n");
    }
    text
}

fn inline(text: &str) -> RevisionLocation {
    RevisionLocation::AppSpecContent(AppSpecContent {
        content: text.to_owned(),
        sha256: None,
    })
}

fn request(n: u64, config: DeploymentConfigInfo, before: bool, after: bool) -> CreateDeployment {
    CreateDeployment::new(
        DeploymentId::from_entropy(n),
        lambda_group(),
        config,
        inline(&appspec(before, after)),
    )
}

fn target() -> TargetId {
    TargetId::new("checkout:live")
}

fn world() -> World {
    World::new(vec![target()])
}

fn event_status(w: &World, id: &DeploymentId, event: LifecycleEventName) -> LifecycleEventStatus {
    w.deployment(id).targets[0]
        .lifecycle_events
        .iter()
        .find(|e| e.lifecycle_event_name == event)
        .unwrap()
        .status
}

fn weights(w: &World) -> Vec<u8> {
    w.alias_weights.iter().map(|(_, p)| *p).collect()
}

#[test]
fn a_canary_moves_ten_percent_then_the_rest_after_the_interval() {
    let mut w = world();
    let config = config::predefined("CodeDeployDefault.LambdaCanary10Percent5Minutes").unwrap();
    let id = w.create(request(1, config, true, true));
    w.run();
    let d = w.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Succeeded);
    assert_eq!(weights(&w), [10, 100]);
    let (t10, t100) = (w.alias_weights[0].0, w.alias_weights[1].0);
    // The world's clock moves a second per delivery.
    let gap = t100.since(t10);
    assert!(
        gap >= Duration::from_secs(5 * 60) && gap < Duration::from_secs(5 * 60 + 5),
        "{gap:?}"
    );
    for event in [BeforeAllowTraffic, AllowTraffic, AfterAllowTraffic] {
        assert_eq!(
            event_status(&w, &id, event),
            LifecycleEventStatus::Succeeded
        );
    }
    assert_eq!(d.targets[0].status, TargetStatus::Succeeded);
    assert_eq!(d.targets[0].target_id, target());
    // Each hook function was invoked once, with the id the deployment recorded.
    let invoked: Vec<_> = w
        .invocations
        .iter()
        .map(|(_, e, f, _)| (*e, f.as_str()))
        .collect();
    assert_eq!(
        invoked,
        [
            (BeforeAllowTraffic, "checkout-before"),
            (AfterAllowTraffic, "checkout-after")
        ]
    );
}

#[test]
fn without_hooks_the_hook_events_are_skipped() {
    let mut w = world();
    let config = config::predefined("CodeDeployDefault.LambdaAllAtOnce").unwrap();
    let id = w.create(request(1, config, false, false));
    w.run();
    assert_eq!(w.deployment(&id).status(), DeploymentStatus::Succeeded);
    assert_eq!(weights(&w), [100]);
    assert!(w.invocations.is_empty());
    assert_eq!(
        event_status(&w, &id, BeforeAllowTraffic),
        LifecycleEventStatus::Skipped
    );
    assert_eq!(
        event_status(&w, &id, AllowTraffic),
        LifecycleEventStatus::Succeeded
    );
}

#[test]
fn a_before_hook_that_reports_failed_leaves_traffic_where_it_was() {
    let mut w = world();
    w.hook_reports
        .insert(BeforeAllowTraffic, Some(HookStatus::Failed));
    let config = config::predefined("CodeDeployDefault.LambdaLinear10PercentEvery1Minute").unwrap();
    let id = w.create(request(1, config, true, true));
    w.run();
    let d = w.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Failed);
    let error = d.error_information.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::HookExecutionFailure);
    assert!(
        error.message.contains("checkout-before"),
        "{}",
        error.message
    );
    assert!(
        w.alias_weights.is_empty(),
        "traffic moved: {:?}",
        w.alias_weights
    );
    assert_eq!(
        event_status(&w, &id, BeforeAllowTraffic),
        LifecycleEventStatus::Failed
    );
    assert_eq!(
        event_status(&w, &id, AllowTraffic),
        LifecycleEventStatus::Skipped
    );
    assert_eq!(d.targets[0].status, TargetStatus::Failed);
}

#[test]
fn an_after_hook_that_fails_moves_traffic_back() {
    let mut w = world();
    w.hook_reports
        .insert(AfterAllowTraffic, Some(HookStatus::Failed));
    let config = config::predefined("CodeDeployDefault.LambdaAllAtOnce").unwrap();
    let id = w.create(request(1, config, false, true));
    w.run();
    let d = w.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Failed);
    assert_eq!(weights(&w), [100, 0]);
    let message = d
        .rollback_info
        .as_ref()
        .and_then(|r| r.rollback_message.clone())
        .unwrap();
    assert!(message.contains("version 3"), "{message}");
}

#[test]
fn a_hook_that_never_reports_fails_after_an_hour() {
    let mut w = world();
    w.hook_reports.insert(BeforeAllowTraffic, None);
    let config = config::predefined("CodeDeployDefault.LambdaAllAtOnce").unwrap();
    let id = w.create(request(1, config, true, false));
    w.run();
    let d = w.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Failed);
    assert_eq!(
        d.error_information.as_ref().unwrap().code,
        ErrorCode::Timeout
    );
    let started = d.targets[0].lifecycle_events[0].start_time.unwrap();
    let ended = d.complete_time.unwrap();
    assert!(ended.since(started) >= HOOK_TIMEOUT);
    assert!(ended.since(started) < HOOK_TIMEOUT + Duration::from_secs(60));
    assert!(w.alias_weights.is_empty());
}

#[test]
fn a_time_scale_compresses_every_wait() {
    let mut w = world();
    w.hook_reports.insert(AfterAllowTraffic, None);
    let config = config::predefined("CodeDeployDefault.LambdaCanary10Percent30Minutes").unwrap();
    let mut req = request(1, config, false, true);
    req.time_scale = Some(60);
    let id = w.create(req);
    w.run();
    let d = w.deployment(&id);
    assert_eq!(weights(&w), [10, 100, 0]);
    let gap = w.alias_weights[1].0.since(w.alias_weights[0].0);
    assert!(
        gap >= Duration::from_secs(30) && gap < Duration::from_secs(35),
        "{gap:?}"
    );
    assert_eq!(
        d.error_information.as_ref().unwrap().code,
        ErrorCode::Timeout
    );
    assert!(
        d.error_information
            .as_ref()
            .unwrap()
            .message
            .contains("within 1 minutes"),
        "{}",
        d.error_information.as_ref().unwrap().message
    );
}

#[test]
fn an_alarm_mid_shift_stops_and_moves_traffic_back() {
    let mut w = world();
    w.alarm_at_percent = Some(20);
    let config =
        config::predefined("CodeDeployDefault.LambdaLinear10PercentEvery2Minutes").unwrap();
    let mut req = request(1, config, false, false);
    req.override_alarm_configuration = Some(alarms());
    let id = w.create(req);
    w.run();
    let d = w.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Stopped);
    assert_eq!(
        d.error_information.as_ref().unwrap().code,
        ErrorCode::AlarmActive
    );
    assert_eq!(weights(&w), [10, 0]);
    assert_eq!(
        event_status(&w, &id, AllowTraffic),
        LifecycleEventStatus::Failed
    );
}

#[test]
fn an_alarm_during_the_bake_time_moves_full_traffic_back() {
    let mut w = world();
    let config = config::predefined("CodeDeployDefault.LambdaAllAtOnce").unwrap();
    let mut req = request(1, config, false, false);
    req.override_alarm_configuration = Some(alarms());
    req.bake_time_in_minutes = Some(15);
    let id = w.create(req);
    // Run until the deployment bakes.
    while !matches!(w.deployment(&id).phase, Phase::Baking { .. }) {
        let (id, event, _) = w.inbox.remove(0);
        w.deliver(&id, event);
    }
    assert_eq!(w.deployment(&id).status(), DeploymentStatus::Baking);
    w.post(
        &id,
        Event::AlarmRaised {
            alarm: "errors".into(),
        },
    );
    w.run();
    assert_eq!(w.deployment(&id).status(), DeploymentStatus::Stopped);
    assert_eq!(weights(&w), [100, 0]);
}

#[test]
fn a_bake_time_holds_success_until_it_is_over() {
    let mut w = world();
    let config = config::predefined("CodeDeployDefault.LambdaAllAtOnce").unwrap();
    let mut req = request(1, config, false, false);
    req.bake_time_in_minutes = Some(15);
    let id = w.create(req);
    w.run();
    let d = w.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Succeeded);
    let shifted = w.alias_weights[0].0;
    assert!(d.complete_time.unwrap().since(shifted) >= Duration::from_secs(15 * 60));
}

#[test]
fn a_stop_before_traffic_moves_ends_at_once_and_a_stop_after_restores_first() {
    let mut w = world();
    w.hook_reports.insert(BeforeAllowTraffic, None);
    let config = config::predefined("CodeDeployDefault.LambdaAllAtOnce").unwrap();
    let id = w.create(request(1, config.clone(), true, false));
    while !matches!(w.deployment(&id).phase, Phase::RunningHook { .. }) {
        let (id, event, _) = w.inbox.remove(0);
        w.deliver(&id, event);
    }
    w.deliver(
        &id,
        Event::StopRequested {
            auto_rollback_enabled: None,
        },
    );
    assert_eq!(w.deployment(&id).status(), DeploymentStatus::Stopped);
    assert!(w.alias_weights.is_empty());

    let mut w = world();
    w.hook_reports.insert(AfterAllowTraffic, None);
    let id = w.create(request(2, config, false, true));
    while !matches!(
        w.deployment(&id).phase,
        Phase::RunningHook {
            event: AfterAllowTraffic
        }
    ) {
        let (id, event, _) = w.inbox.remove(0);
        w.deliver(&id, event);
    }
    w.deliver(
        &id,
        Event::StopRequested {
            auto_rollback_enabled: None,
        },
    );
    assert!(matches!(
        w.deployment(&id).phase,
        Phase::RestoringTraffic { .. }
    ));
    w.run();
    assert_eq!(w.deployment(&id).status(), DeploymentStatus::Stopped);
    assert_eq!(weights(&w), [100, 0]);
}

#[test]
fn a_report_with_another_execution_id_changes_nothing() {
    let mut w = world();
    w.hook_reports.insert(BeforeAllowTraffic, None);
    let config = config::predefined("CodeDeployDefault.LambdaAllAtOnce").unwrap();
    let id = w.create(request(1, config, true, false));
    while w
        .deployment(&id)
        .hook_execution(BeforeAllowTraffic)
        .is_none()
    {
        let (id, event, _) = w.inbox.remove(0);
        w.deliver(&id, event);
    }
    let real = w
        .deployment(&id)
        .hook_execution(BeforeAllowTraffic)
        .unwrap()
        .execution_id
        .clone();
    let before = w.deployment(&id).clone();
    for forged in [
        format!("{real}x"),
        real[..real.len() - 1].to_owned(),
        String::new(),
    ] {
        let t = machine::advance(
            &before,
            Event::HookExecutionReported {
                execution_id: forged,
                status: HookStatus::Succeeded,
            },
            w.now,
        )
        .unwrap();
        assert_eq!(t.deployment, before);
        assert!(t.commands.is_empty());
    }
    // A second id for the same hook does not replace the first.
    let t = machine::advance(
        &before,
        Event::HookExecutionStarted {
            event: BeforeAllowTraffic,
            execution_id: "another".into(),
        },
        w.now,
    )
    .unwrap();
    assert_eq!(t.deployment, before);
}

#[test]
fn execution_ids_are_not_part_of_what_users_see() {
    let mut w = world();
    let config = config::predefined("CodeDeployDefault.LambdaAllAtOnce").unwrap();
    let id = w.create(request(1, config, true, true));
    w.run();
    let d = w.deployment(&id);
    let (_, _, _, execution_id) = &w.invocations[0];
    let info = serde_json::to_string(&d.info()).unwrap();
    let target = serde_json::to_string(&d.targets[0].instance_target(&id)).unwrap();
    assert!(!info.contains(execution_id.as_str()));
    assert!(!target.contains(execution_id.as_str()));
}

#[test]
fn a_bad_inline_appspec_is_refused_when_the_deployment_is_created() {
    let config = config::predefined("CodeDeployDefault.LambdaAllAtOnce").unwrap();
    let mut req = request(1, config.clone(), false, false);
    req.revision = inline("version: 0.0\nResources: []\n");
    let err = machine::Deployment::create(req, Timestamp::EPOCH).unwrap_err();
    assert!(err.to_string().contains("invalid revision"), "{err}");

    let mut req = request(1, config, false, false);
    req.revision = RevisionLocation::AppSpecContent(AppSpecContent {
        content: appspec(false, false),
        sha256: Some("00".repeat(32)),
    });
    let err = machine::Deployment::create(req, Timestamp::EPOCH).unwrap_err();
    assert!(err.to_string().contains("SHA-256"), "{err}");
}

#[test]
fn an_s3_appspec_that_does_not_parse_fails_the_deployment() {
    let mut w = world();
    let config = config::predefined("CodeDeployDefault.LambdaAllAtOnce").unwrap();
    let mut req = request(1, config, false, false);
    req.revision = support::revision("appspec.yaml");
    let id = w.create(req);
    // The world's validator reads no text, as if the file were empty.
    w.run();
    let d = w.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Failed);
    assert_eq!(
        d.error_information.as_ref().unwrap().code,
        ErrorCode::InvalidRevision
    );
}

fn alarms() -> AlarmConfiguration {
    AlarmConfiguration {
        enabled: true,
        ignore_poll_alarm_failure: false,
        alarms: vec![cutover_core::model::Alarm {
            name: "errors".into(),
        }],
    }
}

/// Every Lambda configuration there is, and custom ones.
fn config_strategy() -> impl Strategy<Value = DeploymentConfigInfo> {
    let predefined: Vec<DeploymentConfigInfo> = config::predefined_names()
        .into_iter()
        .filter(|n| n.starts_with("CodeDeployDefault.Lambda"))
        .map(|n| config::predefined(n).unwrap())
        .collect();
    let custom = (1i64..=99, 1i64..=30, any::<bool>()).prop_map(|(percent, interval, canary)| {
        let routing = TrafficRoutingConfig {
            kind: if canary {
                TrafficRoutingType::TimeBasedCanary
            } else {
                TrafficRoutingType::TimeBasedLinear
            },
            time_based_canary: canary.then_some(TimeBasedCanary {
                canary_percentage: percent,
                canary_interval: interval,
            }),
            time_based_linear: (!canary).then_some(TimeBasedLinear {
                linear_percentage: percent,
                linear_interval: interval,
            }),
        };
        DeploymentConfigInfo::traffic("Custom", ComputePlatform::Lambda, routing)
    });
    prop_oneof![proptest::sample::select(predefined), custom]
        .prop_filter("a schedule CodeDeploy accepts", |c| {
            TrafficSchedule::new(c.traffic_routing_config.as_ref().unwrap()).is_ok()
        })
}

/// What a hook does: absent, succeeds, fails, or never reports.
fn hook_strategy() -> impl Strategy<Value = Option<Option<HookStatus>>> {
    prop_oneof![
        Just(None),
        Just(Some(Some(HookStatus::Succeeded))),
        Just(Some(Some(HookStatus::Failed))),
        Just(Some(None)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the configuration, the hooks, the alarm and the delivery order: traffic moves
    /// by the schedule and no sooner, the deployment succeeds only if every hook does and no
    /// alarm fires, and it ends with all traffic on the target version or all of it back.
    #[test]
    fn traffic_follows_the_schedule_and_ends_whole(
        config in config_strategy(),
        before in hook_strategy(),
        after in hook_strategy(),
        alarm_at in proptest::option::of(1u8..=100),
        bake in proptest::option::of(1u32..=60),
        twice in any::<bool>(),
        order in proptest::collection::vec(any::<usize>(), 0..64),
    ) {
        let mut w = world();
        if twice {
            w.deliveries = 2;
        }
        if let Some(report) = before {
            w.hook_reports.insert(BeforeAllowTraffic, report);
        }
        if let Some(report) = after {
            w.hook_reports.insert(AfterAllowTraffic, report);
        }
        w.alarm_at_percent = alarm_at;
        let schedule = TrafficSchedule::new(config.traffic_routing_config.as_ref().unwrap()).unwrap();
        let mut req = request(1, config, before.is_some(), after.is_some());
        req.bake_time_in_minutes = bake;
        if alarm_at.is_some() {
            req.override_alarm_configuration = Some(alarms());
        }
        let id = w.create(req);
        let mut picks = order.into_iter().cycle();
        w.run_with(|_| picks.next().unwrap_or(0));
        let d = w.deployment(&id);

        let good = |h: Option<Option<HookStatus>>| matches!(h, None | Some(Some(HookStatus::Succeeded)));
        let alarm_fires = alarm_at.is_some_and(|p| schedule.0.iter().any(|s| s.percent >= p));
        let expect_success = good(before) && good(after) && !alarm_fires;
        prop_assert_eq!(d.status() == DeploymentStatus::Succeeded, expect_success, "{:?}", d.error_information);
        prop_assert!(d.is_finished());

        // The weights given are the schedule's, in order, up to where the deployment stopped,
        // then 0 if it moved any traffic and did not succeed.
        let given = weights(&w);
        let moved: Vec<u8> = given.iter().copied().take_while(|&p| p != 0).collect();
        let planned: Vec<u8> = schedule.0.iter().map(|s| s.percent).collect();
        prop_assert!(planned.starts_with(&moved), "{:?} is not a prefix of {:?}", moved, planned);
        if expect_success {
            prop_assert_eq!(&moved, &planned);
            prop_assert_eq!(given.last(), Some(&100));
        } else if !moved.is_empty() {
            prop_assert_eq!(given.last(), Some(&0), "traffic was not moved back: {:?}", given);
        }
        if !good(before) {
            prop_assert!(given.is_empty(), "traffic moved despite the BeforeAllowTraffic hook");
        }
        // No step comes sooner than the schedule says.
        if let Some(&(first, _)) = w.alias_weights.first() {
            for ((at, percent), step) in w.alias_weights.iter().zip(&schedule.0) {
                if *percent == 0 { break; }
                prop_assert!(at.since(first) >= step.after, "{}% came early", percent);
            }
        }
        // Each hook's function was invoked once per execution id, and the deployment kept one.
        for event in [BeforeAllowTraffic, AfterAllowTraffic] {
            let ids: std::collections::BTreeSet<_> = w
                .invocations
                .iter()
                .filter(|(_, e, _, _)| *e == event)
                .map(|(_, _, _, x)| x.clone())
                .collect();
            prop_assert!(ids.len() <= 1, "{} got several execution ids: {:?}", event, ids);
        }
    }
}
