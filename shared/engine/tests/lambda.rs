//! Lambda deployments through the engine: hook functions invoked with an execution id and
//! reported through `Engine::report_hook`, traffic shifted on the clock, alarms, and the alias
//! moved back when a deployment does not succeed.

mod support;

use std::time::Duration;

use cutover_core::DeploymentId;
use cutover_core::machine::{CreateDeployment, HookStatus};
use cutover_core::model::{
    Alarm, AlarmConfiguration, AppSpecContent, ComputePlatform, DeploymentGroupInfo,
    DeploymentOption, DeploymentStatus, DeploymentType, ErrorCode, ErrorInformation,
    RevisionLocation,
};
use cutover_engine::{Engine, EngineError, HookReport};
use support::*;

const CANARY: &str = "CodeDeployDefault.LambdaCanary10Percent5Minutes";
const ALL_AT_ONCE: &str = "CodeDeployDefault.LambdaAllAtOnce";

fn lambda_request(n: u64, config: &str, hooks: &[(&str, &str)]) -> CreateDeployment {
    let mut group = DeploymentGroupInfo {
        application_name: "Api".into(),
        deployment_group_id: "4f1c2d3e-0000-4000-8000-000000000002".into(),
        deployment_group_name: "Live".into(),
        deployment_config_name: config.into(),
        compute_platform: ComputePlatform::Lambda,
        ..Default::default()
    };
    group.deployment_style.deployment_type = DeploymentType::BlueGreen;
    group.deployment_style.deployment_option = DeploymentOption::WithTrafficControl;
    let mut appspec = String::from(
        "version: 0.0\nResources:\n  - api:\n      Type: AWS::Lambda::Function\n      Properties:\n        Name: checkout\n        Alias: live\n        CurrentVersion: 3\n        TargetVersion: 4\n",
    );
    if !hooks.is_empty() {
        appspec.push_str("Hooks:\n");
    }
    for (event, function) in hooks {
        appspec.push_str(&format!("  - {event}: {function}\n"));
    }
    let revision = RevisionLocation::AppSpecContent(AppSpecContent {
        content: appspec,
        sha256: None,
    });
    CreateDeployment::new(
        DeploymentId::from_entropy(n),
        group,
        predefined(config),
        revision,
    )
}

fn lambda_engine() -> Engine<MemoryPorts> {
    let engine = engine(0);
    engine.ports().lambda.add_function("before");
    engine.ports().lambda.add_function("after");
    engine
}

async fn create(engine: &Engine<MemoryPorts>, req: CreateDeployment) -> DeploymentId {
    engine.create(req).await.unwrap().deployment_id
}

/// Runs until the `n`th hook invocation, and returns its execution id.
async fn until_invoked(engine: &Engine<MemoryPorts>, driver: &mut Driver, n: usize) -> String {
    let invoked = driver
        .run_until(engine, |p| p.lambda.invocations().len() >= n)
        .await;
    assert!(invoked, "hook invocation {n} never came");
    engine.ports().lambda.invocations()[n - 1].2.clone()
}

fn status(engine: &Engine<MemoryPorts>, id: &DeploymentId) -> DeploymentStatus {
    engine.ports().store.deployment(id).status()
}

fn error_code(engine: &Engine<MemoryPorts>, id: &DeploymentId) -> ErrorCode {
    engine
        .ports()
        .store
        .deployment(id)
        .error_information
        .unwrap()
        .code
}

#[tokio::test]
async fn a_canary_with_both_hooks_succeeds_once_each_reports() {
    let engine = lambda_engine();
    let hooks = [
        ("BeforeAllowTraffic", "before"),
        ("AfterAllowTraffic", "after"),
    ];
    let id = create(&engine, lambda_request(1, CANARY, &hooks)).await;
    let started = engine.ports().clock.now_for_tests();
    let mut driver = Driver::in_order().timed();

    let before = until_invoked(&engine, &mut driver, 1).await;
    assert!(
        engine.ports().lambda.weights().is_empty(),
        "traffic moved before the hook"
    );
    let report = engine
        .report_hook(&id, &before, HookStatus::Succeeded)
        .await
        .unwrap();
    assert_eq!(report, HookReport::Accepted);

    let after = until_invoked(&engine, &mut driver, 2).await;
    assert_ne!(before, after);
    assert_eq!(engine.ports().lambda.weights(), [10, 100]);
    assert!(engine.ports().clock.now_for_tests().since(started) >= Duration::from_secs(5 * 60));
    assert_eq!(status(&engine, &id), DeploymentStatus::InProgress);
    engine
        .report_hook(&id, &after, HookStatus::Succeeded)
        .await
        .unwrap();
    driver.run(&engine).await;
    assert_eq!(status(&engine, &id), DeploymentStatus::Succeeded);

    let invoked: Vec<_> = engine
        .ports()
        .lambda
        .invocations()
        .into_iter()
        .map(|(f, d, _)| (f, d))
        .collect();
    assert_eq!(
        invoked,
        [
            ("before".to_owned(), id.clone()),
            ("after".to_owned(), id.clone())
        ]
    );
    // A report for a hook that is over, or with an id the deployment never gave, changes nothing.
    let again = engine
        .report_hook(&id, &before, HookStatus::Failed)
        .await
        .unwrap();
    assert_eq!(again, HookReport::AlreadyCompleted);
    let forged = engine
        .report_hook(&id, "0123456789abcdef", HookStatus::Failed)
        .await
        .unwrap();
    assert_eq!(forged, HookReport::UnknownExecution);
    assert_eq!(status(&engine, &id), DeploymentStatus::Succeeded);
}

#[tokio::test]
async fn execution_ids_are_long_random_and_kept_when_a_step_is_delivered_twice() {
    let engine = lambda_engine();
    let id = create(
        &engine,
        lambda_request(1, ALL_AT_ONCE, &[("BeforeAllowTraffic", "before")]),
    )
    .await;
    let mut driver = Driver::in_order().twice().timed();
    let execution = until_invoked(&engine, &mut driver, 1).await;
    driver
        .run_until(&engine, |p| p.lambda.invocations().len() >= 2)
        .await;
    // Invoked again by the duplicate step, with the same id.
    assert!(
        engine
            .ports()
            .lambda
            .invocations()
            .iter()
            .all(|(_, _, x)| *x == execution)
    );
    assert!(execution.len() >= 32, "{execution} is under 128 bits");
    assert!(execution.chars().all(|c| c.is_ascii_hexdigit()));
    let other = cutover_engine::ids::execution_id().unwrap();
    assert_ne!(other, execution);

    engine
        .report_hook(&id, &execution, HookStatus::Succeeded)
        .await
        .unwrap();
    driver.run(&engine).await;
    assert_eq!(status(&engine, &id), DeploymentStatus::Succeeded);
    assert_eq!(engine.ports().lambda.weights(), [100]);
}

#[tokio::test]
async fn a_hook_that_reports_failed_fails_before_traffic_moves() {
    let engine = lambda_engine();
    let id = create(
        &engine,
        lambda_request(1, CANARY, &[("BeforeAllowTraffic", "before")]),
    )
    .await;
    let mut driver = Driver::in_order().timed();
    let execution = until_invoked(&engine, &mut driver, 1).await;
    engine
        .report_hook(&id, &execution, HookStatus::Failed)
        .await
        .unwrap();
    driver.run(&engine).await;
    assert_eq!(status(&engine, &id), DeploymentStatus::Failed);
    assert_eq!(error_code(&engine, &id), ErrorCode::HookExecutionFailure);
    assert!(engine.ports().lambda.weights().is_empty());
}

#[tokio::test]
async fn a_hook_that_never_reports_times_out_after_an_hour_and_traffic_goes_back() {
    let engine = lambda_engine();
    let id = create(
        &engine,
        lambda_request(1, CANARY, &[("AfterAllowTraffic", "after")]),
    )
    .await;
    let started = engine.ports().clock.now_for_tests();
    let mut driver = Driver::in_order().timed();
    driver.run(&engine).await;
    assert_eq!(status(&engine, &id), DeploymentStatus::Failed);
    assert_eq!(error_code(&engine, &id), ErrorCode::Timeout);
    assert_eq!(engine.ports().lambda.weights(), [10, 100, 0]);
    let waited = engine.ports().clock.now_for_tests().since(started);
    assert!(waited >= Duration::from_secs(65 * 60), "{waited:?}");
}

#[tokio::test]
async fn an_alias_that_fails_its_check_is_refused_before_anything_moves() {
    let engine = lambda_engine();
    engine.ports().lambda.make_invalid(ErrorInformation::new(
        ErrorCode::InvalidLambdaConfiguration,
        "alias 'live' of 'checkout' points at version 2, not at CurrentVersion 3",
    ));
    let id = create(
        &engine,
        lambda_request(1, CANARY, &[("BeforeAllowTraffic", "before")]),
    )
    .await;
    Driver::in_order().timed().run(&engine).await;
    assert_eq!(status(&engine, &id), DeploymentStatus::Failed);
    assert_eq!(
        error_code(&engine, &id),
        ErrorCode::InvalidLambdaConfiguration
    );
    assert!(engine.ports().lambda.invocations().is_empty());
    assert!(engine.ports().lambda.weights().is_empty());
}

#[tokio::test]
async fn a_shift_that_is_refused_fails_the_deployment_and_moves_traffic_back() {
    let engine = lambda_engine();
    engine.ports().lambda.refuse_shift_to(100);
    let id = create(&engine, lambda_request(1, CANARY, &[])).await;
    Driver::in_order().timed().run(&engine).await;
    assert_eq!(status(&engine, &id), DeploymentStatus::Failed);
    assert_eq!(
        error_code(&engine, &id),
        ErrorCode::InvalidLambdaConfiguration
    );
    assert_eq!(engine.ports().lambda.weights(), [10, 0]);
}

#[tokio::test]
async fn a_hook_function_that_cannot_be_invoked_fails_the_deployment() {
    let engine = lambda_engine();
    let id = create(
        &engine,
        lambda_request(1, CANARY, &[("BeforeAllowTraffic", "missing")]),
    )
    .await;
    let mut driver = Driver::in_order().timed();
    driver.run_until(&engine, |_| false).await;
    assert_eq!(status(&engine, &id), DeploymentStatus::Failed);
    let d = engine.ports().store.deployment(&id);
    let error = d.error_information.unwrap();
    assert_eq!(error.code, ErrorCode::HookExecutionFailure);
    assert!(
        error.message.contains("'missing' could not be invoked"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn an_alarm_before_a_step_stops_the_deployment_and_moves_traffic_back() {
    let engine = lambda_engine();
    let mut req = lambda_request(1, CANARY, &[]);
    req.override_alarm_configuration = Some(AlarmConfiguration {
        enabled: true,
        ignore_poll_alarm_failure: false,
        alarms: vec![Alarm {
            name: "errors".into(),
        }],
    });
    let id = create(&engine, req).await;
    let mut driver = Driver::in_order().timed();
    driver
        .run_until(&engine, |p| p.lambda.weights() == [10])
        .await;
    engine.ports().alarms.raise("errors");
    driver.run(&engine).await;
    assert_eq!(status(&engine, &id), DeploymentStatus::Stopped);
    assert_eq!(error_code(&engine, &id), ErrorCode::AlarmActive);
    assert_eq!(engine.ports().lambda.weights(), [10, 0]);
}

#[tokio::test]
async fn a_report_for_a_deployment_that_does_not_exist_says_so() {
    let engine = lambda_engine();
    let err = engine
        .report_hook(&DeploymentId::from_entropy(9), "x", HookStatus::Succeeded)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::DeploymentNotFound(_)), "{err}");
}

#[tokio::test]
async fn a_schedule_carried_out_as_a_step_is_queued_for_its_time_not_delivered() {
    use cutover_core::machine::{Command, Event, Timer};
    use cutover_engine::{Step, Work};
    let engine = lambda_engine();
    let id = create(&engine, lambda_request(1, CANARY, &[])).await;
    engine.ports().store.take_steps();
    let at = engine.ports().clock.now_for_tests() + Duration::from_secs(600);
    let timer = Event::TimerFired {
        timer: Timer::BakeOver,
    };
    let schedule = Command::Schedule {
        at,
        event: Box::new(timer.clone()),
    };
    let before = engine.ports().store.deployment(&id);
    engine
        .perform(Step::command(id.clone(), schedule))
        .await
        .unwrap();
    assert_eq!(engine.ports().store.deployment(&id), before);
    let queued = engine.ports().store.take_steps();
    assert_eq!(queued.len(), 1, "{queued:#?}");
    assert_eq!(queued[0].work, Work::Event(timer));
    assert_eq!(queued[0].not_before, Some(at));
}
