//! The engine's step handlers over in-memory ports: whole deployments driven step by step,
//! with steps delivered twice, shuffled, interrupted by a crash, or racing another writer.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use cutover_core::DeploymentId;
use cutover_core::lifecycle::{self, LifecycleEventName::*};
use cutover_core::machine::{
    Command, CreateDeployment, Deployment, HostCommand, PhaseKind, PreviousDeployment,
};
use cutover_core::model::{
    Alarm, AlarmConfiguration, AutoRollbackConfiguration, AutoRollbackEvent, DeploymentCreator,
    DeploymentStatus, ErrorCode, LifecycleErrorCode, LifecycleEventStatus, TargetStatus,
    TriggerEventType,
};
use cutover_engine::{Engine, EngineError, Step, Work};
use support::*;

const ONE_AT_A_TIME: &str = "CodeDeployDefault.OneAtATime";
const HALF_AT_A_TIME: &str = "CodeDeployDefault.HalfAtATime";
const HOSTS: [&str; 3] = ["host-1", "host-2", "host-3"];

/// Creates deployment `n` of revision `rev` to the plain group.
async fn create(engine: &Engine<MemoryPorts>, n: u64, config: &str, rev: &str) -> DeploymentId {
    create_in(engine, request(n, group(false), config, rev)).await
}

async fn create_in(engine: &Engine<MemoryPorts>, req: CreateDeployment) -> DeploymentId {
    engine.create(req).await.unwrap().deployment_id
}

fn event_statuses(d: &Deployment, target: &str) -> Vec<LifecycleEventStatus> {
    d.target(&host(target))
        .unwrap_or_else(|| panic!("{target} is not a target of {}", d.deployment_id))
        .lifecycle_events
        .iter()
        .map(|e| e.status)
        .collect()
}

fn target_status(d: &Deployment, target: &str) -> TargetStatus {
    d.target(&host(target)).unwrap().status
}

fn is_command(step: &Step, id: &DeploymentId, wanted: fn(&Command) -> bool) -> bool {
    &step.deployment_id == id && matches!(&step.work, Work::Command(c) if wanted(c))
}

fn in_place(id: &DeploymentId) -> impl Fn(&MemoryPorts) -> bool {
    let id = id.clone();
    move |p| {
        p.store
            .get(&id)
            .is_some_and(|d| d.phase.kind() == PhaseKind::InPlace)
    }
}

#[tokio::test]
async fn three_hosts_one_at_a_time_run_every_event_once_in_order() {
    let engine = engine(3);
    let id = create(&engine, 1, ONE_AT_A_TIME, "v1").await;
    Driver::in_order().run(&engine).await;

    let ports = engine.ports();
    let d = ports.store.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Succeeded);
    for h in HOSTS {
        assert_eq!(target_status(&d, h), TargetStatus::Succeeded, "{h}");
        assert_eq!(ports.hosts.ran(&id, h), SCRIPTED, "{h}");
    }
    // One at a time: a host starts only once the one before it has run its last event.
    let mut order: Vec<String> = ports
        .hosts
        .runs()
        .iter()
        .map(|r| r.target.to_string())
        .collect();
    order.dedup();
    assert_eq!(order, HOSTS);

    use TriggerEventType::*;
    let instance = |event, h: &str| (event, Some(h.to_string()));
    assert_eq!(
        ports.notifier.sent_for(&id),
        [
            (DeploymentStart, None),
            instance(InstanceStart, "host-1"),
            instance(InstanceSuccess, "host-1"),
            instance(InstanceStart, "host-2"),
            instance(InstanceSuccess, "host-2"),
            instance(InstanceStart, "host-3"),
            instance(InstanceSuccess, "host-3"),
            (DeploymentSuccess, None),
        ]
    );
    assert_eq!(
        ports.store.last_successful_of("App", "Fleet"),
        Some(PreviousDeployment {
            deployment_id: id,
            revision: revision("v1"),
        })
    );
    assert_eq!(ports.store.group_queue("App", "Fleet"), Default::default());
}

#[tokio::test]
async fn with_traffic_control_the_router_blocks_and_allows_each_host() {
    let engine = engine(2);
    let id = create_in(&engine, request(1, group(true), ONE_AT_A_TIME, "v1")).await;
    Driver::in_order().run(&engine).await;

    let ports = engine.ports();
    assert_eq!(
        ports.store.deployment(&id).status(),
        DeploymentStatus::Succeeded
    );
    let on_host: Vec<_> = lifecycle::server_in_place(true)
        .into_iter()
        .filter(|e| !matches!(e, BlockTraffic | AllowTraffic))
        .collect();
    for h in ["host-1", "host-2"] {
        assert_eq!(ports.hosts.ran(&id, h), on_host, "{h}");
        assert_eq!(ports.traffic.changes_to(h), [BlockTraffic, AllowTraffic]);
        assert_eq!(ports.traffic.in_service(h), Some(true));
    }
}

/// What a run of two deployments to one group leaves behind, to compare runs by.
#[derive(Debug, PartialEq)]
struct EndState {
    /// Without their versions: a version counts the changes on the way, and whether the second
    /// deployment had to queue depends on the order its steps arrived in.
    deployments: Vec<Deployment>,
    notices: BTreeSet<Notice>,
    last_successful: Option<PreviousDeployment>,
}

/// Deploys v1 and, once it holds the group's lock, v2 to four hosts half at a time.
async fn two_deployments(mut driver: Driver) -> EndState {
    let engine = engine(4);
    let first = create(&engine, 1, HALF_AT_A_TIME, "v1").await;
    let holds_lock = |p: &MemoryPorts| p.store.group_queue("App", "Fleet").active.is_some();
    assert!(driver.run_until(&engine, holds_lock).await);
    let second = create(&engine, 2, HALF_AT_A_TIME, "v2").await;
    driver.run(&engine).await;

    let ports = engine.ports();
    for id in [&first, &second] {
        for h in ["host-1", "host-2", "host-3", "host-4"] {
            assert_eq!(ports.hosts.ran(id, h), SCRIPTED, "{id} on {h}");
        }
    }
    EndState {
        deployments: ports
            .store
            .deployments()
            .into_iter()
            .map(|d| Deployment { version: 0, ..d })
            .collect(),
        notices: ports.notifier.sent().into_iter().collect(),
        last_successful: ports.store.last_successful_of("App", "Fleet"),
    }
}

#[tokio::test]
async fn steps_delivered_twice_or_shuffled_reach_the_same_end_state() {
    let expected = two_deployments(Driver::in_order()).await;
    assert!(
        expected
            .deployments
            .iter()
            .all(|d| d.status() == DeploymentStatus::Succeeded)
    );
    assert_eq!(
        expected.last_successful.as_ref().unwrap().revision,
        revision("v2")
    );

    assert_eq!(two_deployments(Driver::in_order().twice()).await, expected);
    for seed in 1..=12 {
        let shuffled = two_deployments(Driver::in_order().shuffled(seed)).await;
        assert_eq!(shuffled, expected, "shuffled with seed {seed}");
        let both = two_deployments(Driver::in_order().twice().shuffled(seed)).await;
        assert_eq!(both, expected, "twice, shuffled with seed {seed}");
    }
}

/// A deployment to three hosts that run their events as remote commands, polled later; with
/// the end state, and how many commands each host was sent.
async fn remote_deployment(mut driver: Driver, fail_on: Option<&str>) -> (Deployment, Vec<usize>) {
    let engine = engine(3);
    engine.ports().hosts.run_remotely();
    let id = DeploymentId::from_entropy(1);
    if let Some(h) = fail_on {
        engine.ports().hosts.fail(&id, h, AfterInstall);
    }
    let created = create(&engine, 1, ONE_AT_A_TIME, "v1").await;
    assert_eq!(created, id);
    driver.run(&engine).await;
    let ports = engine.ports();
    let sent = HOSTS
        .iter()
        .map(|h| ports.hosts.commands_sent(&id, h))
        .collect();
    (without_claims(ports.store.deployment(&id)), sent)
}

/// `d` with every claim of a host command blanked: claims are drawn at random.
fn without_claims(mut d: Deployment) -> Deployment {
    for t in &mut d.targets {
        if let Some(c) = std::sync::Arc::make_mut(t).host_command.as_mut() {
            c.claim.clear();
        }
    }
    d
}

/// The command claimed or sent for `h`'s current run.
fn host_command(d: &Deployment, h: &str) -> Option<HostCommand> {
    d.target(&host(h))?.running_command().cloned()
}

/// How long a claim of a host's run holds, unless the hosts say otherwise.
const LEASE: Duration = Duration::from_secs(120);

/// A remote deployment whose first step died after claiming host-1's run, before sending the
/// command, and whose claim has expired; with that step, for the test to deliver again.
async fn host_1_claimed_by_a_dead_step(engine: &Engine<MemoryPorts>) -> (DeploymentId, Step) {
    let ports = engine.ports();
    ports.hosts.run_remotely();
    let id = create(engine, 1, ONE_AT_A_TIME, "v1").await;
    let hold = ports.hosts.hold_send(&id, "host-1", false);
    let mut driver = Driver::in_order();
    tokio::select! {
        () = driver.run(engine) => panic!("the deployment ended while host-1 was held"),
        () = hold.reached() => {}
    }
    let claimed = host_command(&ports.store.deployment(&id), "host-1").unwrap();
    assert_eq!(claimed.command_id, None);
    ports.clock.advance(LEASE);
    (id, driver.recover_in_flight())
}

#[tokio::test]
async fn two_deliveries_of_a_remote_step_at_once_send_one_command() {
    let engine = engine(3);
    let ports = engine.ports();
    let (id, step) = host_1_claimed_by_a_dead_step(&engine).await;

    // The first delivery takes the run over and is held before it sends the command.
    let hold = ports.hosts.hold_send(&id, "host-1", false);
    let mut first = std::pin::pin!(engine.perform(step.clone()));
    tokio::select! {
        r = &mut first => panic!("the step ended while host-1 was held: {r:?}"),
        () = hold.reached() => {}
    }
    let claimed = host_command(&ports.store.deployment(&id), "host-1").unwrap();
    assert_eq!(claimed.command_id, None);

    // A second delivery, while the first is sending, finds the claim and leaves it be.
    engine.perform(step.clone()).await.unwrap();
    assert_eq!(ports.hosts.commands_sent(&id, "host-1"), 0);
    assert_eq!(
        host_command(&ports.store.deployment(&id), "host-1"),
        Some(claimed.clone())
    );

    // The first one goes on and sends it.
    hold.release();
    first.await.unwrap();
    let sent = host_command(&ports.store.deployment(&id), "host-1").unwrap();
    assert_eq!(sent.claim, claimed.claim);
    assert_eq!(sent.command_id.as_deref(), Some("command-1"));

    Driver::in_order().run(&engine).await;
    assert_eq!(
        ports.store.deployment(&id).status(),
        DeploymentStatus::Succeeded
    );
    for h in HOSTS {
        assert_eq!(ports.hosts.commands_sent(&id, h), 1, "{h}");
    }
    assert_eq!(ports.hosts.cancelled(), Vec::<String>::new());
}

/// A deployment whose step dies while sending host-1 its command, just before or just after
/// SSM takes it. Returns the engine once the deployment has ended.
async fn a_step_dies_while_sending(sent: bool) -> Engine<MemoryPorts> {
    let engine = engine(3);
    let ports = engine.ports();
    ports.hosts.run_remotely();
    let id = create(&engine, 1, ONE_AT_A_TIME, "v1").await;
    let hold = ports.hosts.hold_send(&id, "host-1", sent);
    let mut driver = Driver::in_order();
    tokio::select! {
        () = driver.run(&engine) => panic!("the deployment ended while host-1 was held"),
        () = hold.reached() => {}
    }
    let sent_before = usize::from(sent);
    assert_eq!(ports.hosts.commands_sent(&id, "host-1"), sent_before);

    // SQS delivers the step again, and the claim's check comes: while the claim's lease runs,
    // neither sends anything, since the step that claimed it may yet send the command.
    let step = driver.recover_in_flight();
    driver.run(&engine).await;
    let d = ports.store.deployment(&id);
    assert!(!d.is_finished());
    assert_eq!(host_command(&d, "host-1").unwrap().command_id, None);
    assert_eq!(ports.hosts.commands_sent(&id, "host-1"), sent_before);

    // Once it has expired, the step looks for the command the dead step sent, and records it;
    // or, if none was sent, claims the run again and sends it.
    ports.clock.advance(LEASE);
    driver.redeliver(step);
    driver.run(&engine).await;
    let d = ports.store.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Succeeded);
    for h in HOSTS {
        assert_eq!(ports.hosts.commands_sent(&id, h), 1, "{h}");
    }
    engine
}

#[tokio::test]
async fn a_step_that_dies_after_sending_a_command_is_not_followed_by_a_second_one() {
    let engine = a_step_dies_while_sending(true).await;
    assert_eq!(engine.ports().hosts.cancelled(), Vec::<String>::new());
}

#[tokio::test]
async fn a_step_that_dies_before_sending_a_command_is_taken_over_once_its_claim_expires() {
    a_step_dies_while_sending(false).await;
}

#[tokio::test]
async fn a_command_sent_after_its_deployment_stopped_is_cancelled() {
    let engine = engine(3);
    let ports = engine.ports();
    let (id, step) = host_1_claimed_by_a_dead_step(&engine).await;
    let hold = ports.hosts.hold_send(&id, "host-1", true);
    let mut held = std::pin::pin!(engine.perform(step));
    tokio::select! {
        r = &mut held => panic!("the step ended while host-1 was held: {r:?}"),
        () = hold.reached() => {}
    }
    // The deployment is stopped while SSM takes the command: the command is not recorded, and
    // the step that sent it cancels it.
    engine.stop(&id, Some(false)).await.unwrap();
    hold.release();
    held.await.unwrap();
    Driver::in_order().run(&engine).await;
    assert_eq!(
        ports.store.deployment(&id).status(),
        DeploymentStatus::Stopped
    );
    assert_eq!(ports.hosts.commands_sent(&id, "host-1"), 1);
    assert_eq!(ports.hosts.cancelled(), ["command-1"]);
}

#[tokio::test]
async fn remote_hosts_are_sent_one_command_each_and_polled_until_it_ends() {
    let (d, sent) = remote_deployment(Driver::in_order(), None).await;
    assert_eq!(d.status(), DeploymentStatus::Succeeded);
    assert_eq!(sent, [1, 1, 1]);
    for h in HOSTS {
        let t = d.target(&host(h)).unwrap();
        assert_eq!(t.status, TargetStatus::Succeeded, "{h}");
        assert!(
            t.host_command.is_some(),
            "{h} keeps the command that ran it"
        );
    }

    // Delivered twice, or shuffled: a host still gets one command, and the end is the same.
    for driver in [
        Driver::in_order().twice(),
        Driver::in_order().shuffled(3),
        Driver::in_order().twice().shuffled(7),
    ] {
        let (again, sent) = remote_deployment(driver, None).await;
        assert_eq!(sent, [1, 1, 1]);
        assert_eq!(again, d);
    }
}

#[tokio::test]
async fn a_remote_command_that_fails_an_event_fails_the_host_and_skips_the_rest() {
    let (d, sent) = remote_deployment(Driver::in_order(), Some("host-1")).await;
    assert_eq!(d.status(), DeploymentStatus::Failed);
    assert_eq!(sent, [1, 0, 0]);
    use LifecycleEventStatus::{Failed, Skipped, Succeeded};
    assert_eq!(
        event_statuses(&d, "host-1"),
        [
            Succeeded, Succeeded, Succeeded, Succeeded, Failed, Skipped, Skipped
        ]
    );
}

#[tokio::test]
async fn a_step_redelivered_after_a_crash_does_not_run_finished_events_again() {
    let engine = engine(3);
    let id = create(&engine, 1, ONE_AT_A_TIME, "v1").await;
    let hold = engine.ports().hosts.hold(&id, "host-1", Install);
    let mut driver = Driver::in_order();
    // The process dies while host-1 runs Install: the driver's future is dropped right there.
    tokio::select! {
        () = driver.run(&engine) => panic!("the deployment ended while host-1 was held"),
        () = hold.reached() => {}
    }

    let ports = engine.ports();
    let saved = ports.store.deployment(&id);
    use LifecycleEventStatus::{InProgress, Pending, Succeeded};
    assert_eq!(
        event_statuses(&saved, "host-1"),
        [
            Succeeded, Succeeded, Succeeded, InProgress, Pending, Pending, Pending
        ]
    );
    assert_eq!(ports.hosts.ran(&id, "host-1"), SCRIPTED[..3]);

    let step = driver.recover_in_flight();
    assert!(is_command(&step, &id, |c| matches!(
        c,
        Command::RunLifecycleEvents { targets, .. } if targets == &[host("host-1")]
    )));
    driver.run(&engine).await;

    assert_eq!(
        ports.store.deployment(&id).status(),
        DeploymentStatus::Succeeded
    );
    for h in HOSTS {
        assert_eq!(ports.hosts.ran(&id, h), SCRIPTED, "{h}");
    }
}

fn rollback_on_failure() -> AutoRollbackConfiguration {
    AutoRollbackConfiguration {
        enabled: true,
        events: vec![AutoRollbackEvent::DeploymentFailure],
    }
}

/// Deploys v1, then v2 with AfterInstall failing on host-2 and automatic rollback on failure.
async fn a_failure_rolled_back(mut driver: Driver) {
    let mut g = group(false);
    g.auto_rollback_configuration = Some(rollback_on_failure());
    let engine = engine(3);
    let ports = engine.ports();
    let good = create_in(&engine, request(1, g.clone(), ONE_AT_A_TIME, "v1")).await;
    driver.run(&engine).await;
    let bad_request = request(2, g, ONE_AT_A_TIME, "v2");
    let bad = bad_request.deployment_id.clone();
    ports.hosts.fail(&bad, "host-2", AfterInstall);
    create_in(&engine, bad_request).await;
    driver.run(&engine).await;

    let failed = ports.store.deployment(&bad);
    assert_eq!(failed.status(), DeploymentStatus::Failed);
    assert_eq!(
        failed.error_information.as_ref().unwrap().code,
        ErrorCode::HealthConstraints
    );
    assert_eq!(target_status(&failed, "host-1"), TargetStatus::Succeeded);
    assert_eq!(target_status(&failed, "host-2"), TargetStatus::Failed);
    assert_eq!(target_status(&failed, "host-3"), TargetStatus::Skipped);
    use LifecycleEventStatus::{Failed, Skipped, Succeeded};
    assert_eq!(
        event_statuses(&failed, "host-2"),
        [
            Succeeded, Succeeded, Succeeded, Succeeded, Failed, Skipped, Skipped
        ]
    );
    assert_eq!(event_statuses(&failed, "host-3"), [Skipped; 7]);
    let after_install = &failed.target(&host("host-2")).unwrap().lifecycle_events[4];
    assert_eq!(
        after_install.diagnostics.as_ref().unwrap().error_code,
        LifecycleErrorCode::ScriptFailed
    );
    assert_eq!(ports.hosts.ran(&bad, "host-1"), SCRIPTED);
    assert_eq!(ports.hosts.ran(&bad, "host-2"), SCRIPTED[..5]);
    assert!(ports.hosts.ran(&bad, "host-3").is_empty());
    let notices = ports.notifier.sent_for(&bad);
    for notice in [
        (
            TriggerEventType::InstanceFailure,
            Some("host-2".to_string()),
        ),
        (TriggerEventType::DeploymentFailure, None),
        (TriggerEventType::DeploymentRollback, None),
    ] {
        assert!(notices.contains(&notice), "{notice:?} not in {notices:?}");
    }

    let rollback_id = bad.derive("rollback");
    assert_eq!(
        failed
            .rollback_info
            .as_ref()
            .unwrap()
            .rollback_deployment_id,
        Some(rollback_id.clone())
    );
    let rollback = ports.store.deployment(&rollback_id);
    assert_eq!(rollback.creator, DeploymentCreator::CodeDeployRollback);
    assert_eq!(rollback.revision, revision("v1"));
    assert_eq!(rollback.status(), DeploymentStatus::Succeeded);
    for h in HOSTS {
        assert_eq!(ports.hosts.ran(&rollback_id, h), SCRIPTED, "{h}");
    }
    let ids: Vec<_> = ports
        .store
        .deployments()
        .into_iter()
        .map(|d| d.deployment_id)
        .collect();
    assert_eq!(ids, [good, bad.clone(), rollback_id.clone()]);
    assert_eq!(
        ports.store.last_successful_of("App", "Fleet"),
        Some(PreviousDeployment {
            deployment_id: rollback_id.clone(),
            revision: revision("v1"),
        })
    );

    // Long after the rollback finished, its StartRollback arrives once more.
    let start_rollback = driver
        .performed
        .iter()
        .find(|s| is_command(s, &bad, |c| matches!(c, Command::StartRollback { .. })))
        .cloned()
        .expect("StartRollback was performed");
    driver.redeliver(start_rollback);
    driver.run(&engine).await;
    assert_eq!(ports.store.deployment(&rollback_id), rollback);
    assert_eq!(ports.store.group_queue("App", "Fleet"), Default::default());
}

#[tokio::test]
async fn a_failed_event_skips_the_rest_and_rolls_back_once() {
    a_failure_rolled_back(Driver::in_order()).await;
    a_failure_rolled_back(Driver::in_order().twice()).await;
}

#[tokio::test]
async fn a_rollback_runs_to_the_end_whatever_order_its_steps_arrive_in() {
    // StartRollback and Finish are queued together, so Finish often hands the lock to a
    // rollback that is not saved yet.
    for seed in 1..=12 {
        a_failure_rolled_back(Driver::in_order().twice().shuffled(seed)).await;
    }
}

#[tokio::test]
async fn a_finish_delivered_again_hands_the_lock_on_once_and_keeps_the_newer_success() {
    let engine = engine(2);
    let ports = engine.ports();
    let mut driver = Driver::in_order().twice();
    let first = create(&engine, 1, ONE_AT_A_TIME, "v1").await;
    let holds_lock = |p: &MemoryPorts| p.store.group_queue("App", "Fleet").active.is_some();
    assert!(driver.run_until(&engine, holds_lock).await);
    let second = create(&engine, 2, ONE_AT_A_TIME, "v2").await;
    driver.run(&engine).await;

    for id in [&first, &second] {
        assert_eq!(
            ports.store.deployment(id).status(),
            DeploymentStatus::Succeeded
        );
        for h in ["host-1", "host-2"] {
            assert_eq!(ports.hosts.ran(id, h), SCRIPTED, "{id} on {h}");
        }
    }
    let runs = ports.hosts.runs();
    let last_of_first = runs.iter().rposition(|r| r.deployment == first).unwrap();
    let first_of_second = runs.iter().position(|r| r.deployment == second).unwrap();
    assert!(
        last_of_first < first_of_second,
        "the queued deployment ran before the lock was handed to it"
    );
    let newest = Some(PreviousDeployment {
        deployment_id: second.clone(),
        revision: revision("v2"),
    });
    assert_eq!(ports.store.last_successful_of("App", "Fleet"), newest);

    // The first deployment's Finish, delivered once more after the second has finished.
    let finish_first = driver
        .performed
        .iter()
        .find(|s| is_command(s, &first, |c| matches!(c, Command::Finish { .. })))
        .cloned()
        .expect("the first deployment finished");
    let settled = ports.store.deployment(&second);
    driver.redeliver(finish_first);
    driver.run(&engine).await;
    assert_eq!(ports.store.last_successful_of("App", "Fleet"), newest);
    assert_eq!(ports.store.group_queue("App", "Fleet"), Default::default());
    assert_eq!(ports.store.deployment(&second), settled);
}

#[tokio::test]
async fn a_stop_request_mid_deployment_starts_nothing_more() {
    let engine = engine(3);
    let ports = engine.ports();
    let id = create(&engine, 1, ONE_AT_A_TIME, "v1").await;
    let hold = ports.hosts.hold(&id, "host-1", Install);
    let mut driver = Driver::in_order();
    let stop_during_install = async {
        hold.reached().await;
        let stopped = engine.stop(&id, None).await.unwrap();
        hold.release();
        stopped
    };
    let ((), stopped) = tokio::join!(driver.run(&engine), stop_during_install);

    assert_eq!(stopped.status(), DeploymentStatus::Stopped);
    assert_eq!(
        stopped.error_information.as_ref().unwrap().code,
        ErrorCode::ManualStop
    );
    // Install's report, arriving after the stop, changed nothing.
    assert_eq!(ports.store.deployment(&id), stopped);
    assert_eq!(target_status(&stopped, "host-1"), TargetStatus::Failed);
    let install = &stopped.target(&host("host-1")).unwrap().lifecycle_events[3];
    assert_eq!(install.status, LifecycleEventStatus::Failed);
    assert_eq!(
        install.diagnostics.as_ref().unwrap().error_code,
        LifecycleErrorCode::UnknownError
    );
    assert_eq!(ports.hosts.ran(&id, "host-1"), SCRIPTED[..4]);
    for h in ["host-2", "host-3"] {
        assert_eq!(target_status(&stopped, h), TargetStatus::Skipped);
        assert!(ports.hosts.ran(&id, h).is_empty(), "{h}");
    }
    assert_eq!(ports.hosts.stopped(), [(id.clone(), host("host-1"))]);
    let notices = ports.notifier.sent_for(&id);
    assert!(notices.contains(&(TriggerEventType::DeploymentStop, None)));
    assert!(!notices.contains(&(TriggerEventType::DeploymentSuccess, None)));
    assert_eq!(ports.store.group_queue("App", "Fleet"), Default::default());
    assert_eq!(ports.store.last_successful_of("App", "Fleet"), None);
}

fn watching(alarm: &str, ignore_poll_alarm_failure: bool) -> AlarmConfiguration {
    AlarmConfiguration {
        enabled: true,
        ignore_poll_alarm_failure,
        alarms: vec![Alarm { name: alarm.into() }],
    }
}

/// An engine with one deployment watching `HighErrors`, driven until its hosts are about to
/// start.
async fn watched_deployment(ignore_poll_alarm_failure: bool) -> (Engine<MemoryPorts>, Driver) {
    let mut g = group(false);
    g.alarm_configuration = Some(watching("HighErrors", ignore_poll_alarm_failure));
    let engine = engine(3);
    let id = create_in(&engine, request(1, g, ONE_AT_A_TIME, "v1")).await;
    let mut driver = Driver::in_order();
    assert!(driver.run_until(&engine, in_place(&id)).await);
    (engine, driver)
}

#[tokio::test]
async fn a_watched_alarm_in_alarm_stops_the_deployment() {
    let (engine, mut driver) = watched_deployment(false).await;
    let ports = engine.ports();
    let id = DeploymentId::from_entropy(1);
    let before = ports.store.deployment(&id);
    ports.alarms.raise("SomeoneElses");
    assert_eq!(engine.check_alarms(&id).await.unwrap(), before);

    ports.alarms.raise("HighErrors");
    let stopped = engine.check_alarms(&id).await.unwrap();
    assert_eq!(stopped.status(), DeploymentStatus::Stopped);
    let error = stopped.error_information.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::AlarmActive);
    assert!(error.message.contains("HighErrors"), "{}", error.message);

    driver.run(&engine).await;
    assert_eq!(ports.store.deployment(&id), stopped);
    assert!(ports.hosts.runs().is_empty());
    assert_eq!(ports.hosts.stopped(), [(id.clone(), host("host-1"))]);
    // A finished deployment's alarms are not read again.
    assert_eq!(engine.check_alarms(&id).await.unwrap(), stopped);
}

#[tokio::test]
async fn alarms_that_cannot_be_read_stop_the_deployment_unless_ignored() {
    let (engine, mut driver) = watched_deployment(false).await;
    let id = DeploymentId::from_entropy(1);
    engine.ports().alarms.fail_reads("Rate exceeded");
    let stopped = engine.check_alarms(&id).await.unwrap();
    assert_eq!(stopped.status(), DeploymentStatus::Stopped);
    let error = stopped.error_information.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::AlarmActive);
    assert!(error.message.contains("Rate exceeded"), "{}", error.message);
    driver.run(&engine).await;
    assert!(engine.ports().hosts.runs().is_empty());

    let (engine, mut driver) = watched_deployment(true).await;
    engine.ports().alarms.fail_reads("Rate exceeded");
    let before = engine.ports().store.deployment(&id);
    assert_eq!(engine.check_alarms(&id).await.unwrap(), before);
    driver.run(&engine).await;
    assert_eq!(
        engine.ports().store.deployment(&id).status(),
        DeploymentStatus::Succeeded
    );
}

#[tokio::test]
async fn a_lost_race_is_decided_again_on_what_the_other_writer_saved() {
    let engine = engine(3);
    let ports = engine.ports();
    let id = create(&engine, 1, ONE_AT_A_TIME, "v1").await;
    let mut driver = Driver::in_order();
    assert!(driver.run_until(&engine, in_place(&id)).await);

    ports.store.conflict_next(1);
    let before = ports.store.deployment(&id);
    let stopped = engine.stop(&id, None).await.unwrap();
    assert_eq!(ports.store.conflicts_reported(), 1);
    assert_eq!(stopped.status(), DeploymentStatus::Stopped);
    // One version for the other writer's change, one for the stop.
    assert_eq!(stopped.version, before.version + 2);
    assert_eq!(ports.store.deployment(&id), stopped);
    driver.run(&engine).await;
    assert!(ports.hosts.runs().is_empty());
}

#[tokio::test]
async fn lost_races_while_hosts_report_run_no_event_twice() {
    let engine = engine(3);
    let ports = engine.ports();
    let id = create(&engine, 1, ONE_AT_A_TIME, "v1").await;
    let mut driver = Driver::in_order();
    assert!(driver.run_until(&engine, in_place(&id)).await);
    ports.store.conflict_next(5);
    driver.run(&engine).await;

    assert_eq!(ports.store.conflicts_reported(), 5);
    assert_eq!(
        ports.store.deployment(&id).status(),
        DeploymentStatus::Succeeded
    );
    for h in HOSTS {
        assert_eq!(ports.hosts.ran(&id, h), SCRIPTED, "{h}");
    }
}

#[tokio::test]
async fn a_deployment_that_keeps_changing_underneath_is_contended_and_retryable() {
    let engine = engine(3);
    let ports = engine.ports();
    let id = create(&engine, 1, ONE_AT_A_TIME, "v1").await;
    ports.store.always_conflict();

    let err = engine.stop(&id, None).await.unwrap_err();
    assert!(
        matches!(&err, EngineError::Contended(c) if c == &id),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(
        ports.store.deployment(&id).status(),
        DeploymentStatus::Created
    );
}

#[tokio::test]
async fn creating_the_same_deployment_twice_returns_the_first() {
    let engine = engine(3);
    let ports = engine.ports();
    let req = request(1, group(false), ONE_AT_A_TIME, "v1");
    let first = engine.create(req.clone()).await.unwrap();
    ports.clock.advance(Duration::from_secs(60));
    let second = engine.create(req).await.unwrap();
    assert_eq!(second, first);
    assert_eq!(ports.store.queued_steps().len(), 1, "one Created, not two");

    Driver::in_order().run(&engine).await;
    let id = first.deployment_id;
    assert_eq!(
        ports.store.deployment(&id).status(),
        DeploymentStatus::Succeeded
    );
    for h in HOSTS {
        assert_eq!(ports.hosts.ran(&id, h), SCRIPTED, "{h}");
    }
}

#[tokio::test]
async fn a_host_that_cannot_be_reached_fails_its_event_with_unknown_error() {
    let engine = engine(3);
    let ports = engine.ports();
    ports.hosts.make_unreachable("host-1");
    let id = create(&engine, 1, ONE_AT_A_TIME, "v1").await;
    Driver::in_order().run(&engine).await;

    let d = ports.store.deployment(&id);
    assert_eq!(d.status(), DeploymentStatus::Failed);
    let first = &d.target(&host("host-1")).unwrap().lifecycle_events[0];
    assert_eq!(first.status, LifecycleEventStatus::Failed);
    let diagnostics = first.diagnostics.as_ref().unwrap();
    assert_eq!(diagnostics.error_code, LifecycleErrorCode::UnknownError);
    assert!(
        diagnostics.message.contains("host-1 does not answer"),
        "{}",
        diagnostics.message
    );
    assert!(ports.hosts.runs().is_empty());
}
