//! Blue/green deployments through the engine: provisioning asked again while the fleet comes
//! up, traffic moved by the traffic router, `Engine::continue_deployment`, and steps delivered
//! twice, late or shuffled.

mod support;

use cutover_core::lifecycle::LifecycleEventName::{AllowTraffic, BlockTraffic};
use cutover_core::machine::{CreateDeployment, Phase};
use cutover_core::model::{
    BlueGreenDeploymentConfiguration, BlueInstanceTerminationOption, DeploymentReadyAction,
    DeploymentReadyOption, DeploymentStatus, DeploymentType, DeploymentWaitType, InstanceAction,
};
use cutover_engine::{Engine, Step};
use support::*;

fn blue_green_request(n: u64, bg: BlueGreenDeploymentConfiguration) -> CreateDeployment {
    let mut g = group(true);
    g.deployment_style.deployment_type = DeploymentType::BlueGreen;
    g.blue_green_deployment_configuration = Some(bg);
    request(n, g, "CodeDeployDefault.OneAtATime", "v2")
}

fn engine_with_replacements(pending: u32) -> Engine<MemoryPorts> {
    let engine = engine(2);
    for h in ["host-1", "host-2"] {
        engine.ports().traffic.in_service_now(h);
    }
    engine
        .ports()
        .replacements
        .provide(&["green-1", "green-2"], pending);
    engine
}

#[tokio::test]
async fn provisioning_is_asked_again_until_the_fleet_is_up_then_traffic_moves_to_it() {
    for mut driver in [
        Driver::in_order().timed(),
        Driver::in_order().timed().twice(),
        Driver::in_order().timed().shuffled(7),
    ] {
        let engine = engine_with_replacements(3);
        let d = engine
            .create(blue_green_request(
                1,
                BlueGreenDeploymentConfiguration {
                    terminate_blue_instances_on_deployment_success: Some(
                        BlueInstanceTerminationOption {
                            action: InstanceAction::Terminate,
                            termination_wait_time_in_minutes: 5,
                        },
                    ),
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
        driver.run(&engine).await;
        let d = engine.load(&d.deployment_id).await.unwrap();
        assert_eq!(
            d.status(),
            DeploymentStatus::Succeeded,
            "{:?}",
            d.error_information
        );
        let ports = engine.ports();
        assert!(ports.replacements.looks() >= 4);
        for g in ["green-1", "green-2"] {
            assert_eq!(ports.traffic.in_service(g), Some(true), "{g}");
            assert_eq!(
                ports.traffic.changes_to(g),
                [AllowTraffic],
                "{g} was moved once"
            );
        }
        for b in ["host-1", "host-2"] {
            assert_eq!(ports.traffic.in_service(b), Some(false), "{b}");
            assert_eq!(
                ports.traffic.changes_to(b),
                [BlockTraffic],
                "{b} was moved once"
            );
        }
        let released = ports.replacements.released();
        assert!(!released.is_empty());
        assert!(
            released
                .iter()
                .all(|r| *r == (vec![host("host-1"), host("host-2")], true))
        );
        assert!(ports.replacements.discarded().is_empty());
    }
}

#[tokio::test]
async fn a_ready_wait_ends_when_a_user_continues_and_not_before() {
    let engine = engine_with_replacements(0);
    let d = engine
        .create(blue_green_request(
            1,
            BlueGreenDeploymentConfiguration {
                deployment_ready_option: Some(DeploymentReadyOption {
                    action_on_timeout: DeploymentReadyAction::StopDeployment,
                    wait_time_in_minutes: 60,
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let id = d.deployment_id.clone();
    let mut driver = Driver::in_order().timed();
    let waiting = driver
        .run_until(&engine, |p| {
            p.store.deployment(&id).status() == DeploymentStatus::Ready
        })
        .await;
    assert!(waiting);
    assert_eq!(engine.ports().traffic.in_service("green-1"), None);

    // The wrong wait changes nothing.
    let d = engine
        .continue_deployment(&id, DeploymentWaitType::TerminationWait)
        .await
        .unwrap();
    assert_eq!(d.status(), DeploymentStatus::Ready);

    let d = engine
        .continue_deployment(&id, DeploymentWaitType::ReadyWait)
        .await
        .unwrap();
    assert_eq!(d.phase, Phase::Rerouting);
    driver.run(&engine).await;
    let d = engine.load(&id).await.unwrap();
    assert_eq!(d.status(), DeploymentStatus::Succeeded);
    assert_eq!(engine.ports().traffic.in_service("green-2"), Some(true));
    assert_eq!(engine.ports().traffic.in_service("host-2"), Some(false));
    // KEEP_ALIVE by default.
    assert!(engine.ports().replacements.released().iter().all(|r| !r.1));
}

#[tokio::test]
async fn a_stop_while_provisioning_discards_the_fleet_and_late_steps_change_nothing() {
    let engine = engine_with_replacements(1);
    let d = engine
        .create(blue_green_request(1, Default::default()))
        .await
        .unwrap();
    let id = d.deployment_id.clone();
    let mut driver = Driver::in_order();
    // Until provisioning has been asked once.
    driver
        .run_until(&engine, |p| p.replacements.looks() == 1)
        .await;
    engine.stop(&id, None).await.unwrap();
    driver.run(&engine).await;
    // The step asking again, delivered late, provisions nothing.
    engine
        .perform(Step::command(
            id.clone(),
            cutover_core::machine::Command::ProvisionReplacements,
        ))
        .await
        .unwrap();
    let d = engine.load(&id).await.unwrap();
    assert_eq!(d.status(), DeploymentStatus::Stopped);
    let discarded = engine.ports().replacements.discarded();
    assert_eq!(discarded.len(), 1, "{discarded:?}");
    // A late AllowTraffic for a host that never got that far moves nothing.
    engine
        .perform(Step::command(
            id.clone(),
            cutover_core::machine::Command::AllowTraffic {
                targets: vec![host("green-1")],
            },
        ))
        .await
        .unwrap();
    assert_eq!(engine.ports().traffic.in_service("green-1"), None);
    assert_eq!(engine.ports().traffic.in_service("host-1"), Some(true));
    assert_eq!(engine.ports().replacements.looks(), 1);
}
