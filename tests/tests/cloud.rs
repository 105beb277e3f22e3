//! The cloud functions end to end: the real function binaries, fed through the Lambda Runtime
//! API by the test harness, against the AWS emulator, whose SSM really runs `cutover-agent` on
//! each instance's folder. Each test builds its own stack.

use std::time::Duration;

use cutover_aws::engine::Store;
use cutover_aws::engine::core::machine::{Deployment, PhaseKind};
use cutover_aws::engine::core::model::{
    DeploymentCreator, DeploymentStatus, ErrorCode, LifecycleEventStatus, TargetStatus,
};
use cutover_tests::cloud::Stack;
use cutover_tests::{copy_dir, failing_webapp, webapp};
use serde_json::json;

const DEPLOY_TIME: Duration = Duration::from_secs(120);

fn statuses(d: &Deployment) -> Vec<TargetStatus> {
    d.targets.iter().map(|t| t.status).collect()
}

fn installed(stack: &Stack, instance: &str) -> bool {
    stack
        .host_root(instance)
        .join("srv/webapp/index.html")
        .is_file()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_deploys_to_four_hosts_one_at_a_time() {
    let stack = Stack::start(&[]).await;
    let hosts = stack.instances(4, &[]).await;
    stack
        .group("Shop", "web", "CodeDeployDefault.OneAtATime", json!({}))
        .await;

    let ids = stack.deploy_upload("web/release-1.zip", &webapp()).await;
    assert_eq!(ids.len(), 1, "one group watches web/");
    let d = stack.finished(&ids[0], DEPLOY_TIME).await;

    assert_eq!(d.status(), DeploymentStatus::Succeeded, "{}", stack.logs());
    assert_eq!(d.creator, DeploymentCreator::User);
    let mut targets: Vec<String> = d.targets.iter().map(|t| t.target_id.to_string()).collect();
    targets.sort();
    assert_eq!(targets, hosts);
    assert_eq!(statuses(&d), [TargetStatus::Succeeded; 4]);
    for t in &d.targets {
        assert!(
            t.lifecycle_events
                .iter()
                .all(|e| e.status == LifecycleEventStatus::Succeeded),
            "{t:?}"
        );
        assert!(
            installed(&stack, t.target_id.as_str()),
            "{} has the site",
            t.target_id
        );
    }
    // The revision was pinned to the uploaded object.
    let cutover_aws::engine::core::model::RevisionLocation::S3(s3) = &d.revision else {
        panic!("an S3 revision: {:?}", d.revision);
    };
    assert!(s3.e_tag.is_some() && s3.version.is_some(), "{s3:?}");

    // One at a time: each host started after the one before it had finished.
    let mut spans: Vec<_> = d
        .targets
        .iter()
        .map(|t| {
            let first = t.lifecycle_events.first().unwrap().start_time.unwrap();
            let last = t.lifecycle_events.last().unwrap().end_time.unwrap();
            (first, last)
        })
        .collect();
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "hosts overlapped: {spans:?}");
    }
    stack.settled(Duration::from_secs(30)).await;
    for f in cutover_aws::queue::StepFunction::ALL {
        assert_eq!(stack.dead_letters(f).await, 0, "{f:?} dead letters");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_names_an_auto_scaling_group_deploys_to_its_members() {
    let stack = Stack::start(&[]).await;
    // Instances of this stack outside the Auto Scaling group are left alone.
    let outsiders = stack.instances(1, &[]).await;
    let (asg, members) = stack.auto_scaling_group(3).await;
    assert_eq!(members.len(), 3);
    stack
        .group(
            "Shop",
            "fleet",
            "CodeDeployDefault.HalfAtATime",
            json!({"ec2TagFilters": [], "autoScalingGroups": [{"name": asg}]}),
        )
        .await;

    let ids = stack.deploy_upload("fleet/v1.zip", &webapp()).await;
    let d = stack.finished(&ids[0], DEPLOY_TIME).await;
    assert_eq!(d.status(), DeploymentStatus::Succeeded, "{}", stack.logs());
    let mut targets: Vec<String> = d.targets.iter().map(|t| t.target_id.to_string()).collect();
    targets.sort();
    assert_eq!(targets, members);
    for m in &members {
        assert!(installed(&stack, m), "{m} has the site");
        assert_eq!(stack.commands_sent(m).await, 1, "{m} got one command");
    }
    assert!(!installed(&stack, &outsiders[0]));
    assert_eq!(stack.commands_sent(&outsiders[0]).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_health_check_fails_the_deployment_and_rolls_back_to_the_last_good_revision() {
    let stack = Stack::start(&[]).await;
    stack.instances(3, &[]).await;
    stack
        .group(
            "Shop",
            "api",
            "CodeDeployDefault.OneAtATime",
            json!({"autoRollbackConfiguration": {"enabled": true, "events": ["DEPLOYMENT_FAILURE"]}}),
        )
        .await;
    let good = stack.deploy_upload("api/v1.zip", &webapp()).await;
    let good = stack.finished(&good[0], DEPLOY_TIME).await;
    assert_eq!(
        good.status(),
        DeploymentStatus::Succeeded,
        "{}",
        stack.logs()
    );

    let bad_revision = failing_webapp();
    let bad = stack.deploy_upload("api/v2.zip", bad_revision.path()).await;
    let bad = stack.finished(&bad[0], DEPLOY_TIME).await;
    assert_eq!(bad.status(), DeploymentStatus::Failed);
    let error = bad.error_information.as_ref().expect("a failure says why");
    assert_eq!(error.code, ErrorCode::HealthConstraints, "{error:?}");
    // One at a time with a healthy minimum of all but one: the first failure ends it.
    let failed: Vec<_> = bad
        .targets
        .iter()
        .filter(|t| t.status == TargetStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", statuses(&bad));
    let validate = failed[0]
        .lifecycle_events
        .iter()
        .find(|e| e.status == LifecycleEventStatus::Failed)
        .unwrap();
    let diagnostics = validate.diagnostics.as_ref().unwrap();
    assert_eq!(validate.lifecycle_event_name.as_str(), "ValidateService");
    assert!(
        diagnostics.log_tail.contains("the health check failed"),
        "{diagnostics:?}"
    );

    // The rollback redeploys v1 and succeeds.
    let rollback_id = bad
        .rollback_info
        .as_ref()
        .and_then(|r| r.rollback_deployment_id.clone())
        .expect("the failure started a rollback");
    let rollback = stack.finished(&rollback_id, DEPLOY_TIME).await;
    assert_eq!(
        rollback.status(),
        DeploymentStatus::Succeeded,
        "{}",
        stack.logs()
    );
    assert_eq!(rollback.creator, DeploymentCreator::CodeDeployRollback);
    assert_eq!(rollback.revision, good.revision);
    // The group records it once the rollback's last step is done.
    stack.settled(Duration::from_secs(30)).await;
    let last = stack.store.last_successful("Shop", "api").await.unwrap();
    assert_eq!(last.map(|l| l.deployment_id), Some(rollback_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_upload_to_a_busy_group_queues_behind_the_first() {
    let stack = Stack::start(&[]).await;
    stack.instances(2, &[]).await;
    stack
        .group("Shop", "queue", "CodeDeployDefault.OneAtATime", json!({}))
        .await;
    let first = stack.deploy_upload("queue/a.zip", &webapp()).await;
    let second = stack.deploy_upload("queue/b.zip", &webapp()).await;
    let mut saw_queued = false;
    for _ in 0..200 {
        let d = stack.deployment(&second[0]).await;
        if d.phase.kind() == PhaseKind::Queued {
            saw_queued = true;
            break;
        }
        if d.is_finished() || d.start_time.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(saw_queued, "the second deployment waited behind the first");
    let first = stack.finished(&first[0], DEPLOY_TIME).await;
    let second = stack.finished(&second[0], DEPLOY_TIME).await;
    assert_eq!(
        first.status(),
        DeploymentStatus::Succeeded,
        "{}",
        stack.logs()
    );
    assert_eq!(
        second.status(),
        DeploymentStatus::Succeeded,
        "{}",
        stack.logs()
    );
    assert!(second.start_time.unwrap() >= first.complete_time.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_control_takes_no_more_hosts_out_than_the_configuration_allows() {
    use cutover_aws::elbv2;
    let stack = Stack::start(&[]).await;
    let hosts = stack.instances(4, &[]).await;
    let (tg_name, tg) = stack.target_group(&hosts).await;
    let lb = elbv2::Client::new(stack.emulator.config());
    stack
        .group(
            "Shop",
            "lb",
            "CodeDeployDefault.HalfAtATime",
            json!({
                "loadBalancerInfo": {"targetGroupInfoList": [{"name": tg_name}]},
                "deploymentStyle": {"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
            }),
        )
        .await;

    // Watch the target group while the deployment runs.
    let watch = {
        let (lb, tg, hosts) = (lb.clone(), tg.clone(), hosts.clone());
        tokio::spawn(async move {
            let mut most_out = 0;
            let mut ever_out = std::collections::BTreeSet::new();
            loop {
                let health = lb
                    .describe_target_health()
                    .target_group_arn(&tg)
                    .send()
                    .await
                    .unwrap();
                let serving: Vec<String> = health
                    .target_health_descriptions()
                    .iter()
                    .filter(|d| {
                        d.target_health().and_then(|h| h.state())
                            == Some(&elbv2::types::TargetHealthStateEnum::Healthy)
                    })
                    .filter_map(|d| d.target().and_then(|t| t.id()).map(str::to_owned))
                    .collect();
                let out: Vec<&String> = hosts.iter().filter(|h| !serving.contains(h)).collect();
                most_out = most_out.max(out.len());
                ever_out.extend(out.into_iter().cloned());
                tokio::time::sleep(Duration::from_millis(50)).await;
                if ever_out.len() == hosts.len() && serving.len() == hosts.len() {
                    return (most_out, ever_out);
                }
            }
        })
    };
    let ids = stack.deploy_upload("lb/v1.zip", &webapp()).await;
    let d = stack.finished(&ids[0], DEPLOY_TIME).await;
    assert_eq!(d.status(), DeploymentStatus::Succeeded, "{}", stack.logs());
    let (most_out, ever_out) = tokio::time::timeout(Duration::from_secs(30), watch)
        .await
        .expect("every host went out and came back")
        .unwrap();
    assert_eq!(ever_out.into_iter().collect::<Vec<_>>(), hosts);
    assert!(
        most_out <= 2,
        "HalfAtATime keeps 2 of 4 hosts serving, but {most_out} were out at once"
    );
    for t in &d.targets {
        let names: Vec<&str> = t
            .lifecycle_events
            .iter()
            .map(|e| e.lifecycle_event_name.as_str())
            .collect();
        assert!(
            names.contains(&"BlockTraffic") && names.contains(&"AllowTraffic"),
            "{names:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_in_alarm_stops_the_deployment() {
    let stack = Stack::start(&[]).await;
    stack.instances(3, &[]).await;
    let alarm = format!("{}-errors", stack.tag);
    stack.alarm(&alarm).await;
    stack
        .group(
            "Shop",
            "watched",
            "CodeDeployDefault.OneAtATime",
            json!({"alarmConfiguration": {"enabled": true, "alarms": [{"name": alarm}]}}),
        )
        .await;
    let ids = stack.deploy_upload("watched/v1.zip", &webapp()).await;
    // Once the first host is at work, the alarm goes off.
    for _ in 0..400 {
        let d = stack.deployment(&ids[0]).await;
        if d.targets
            .iter()
            .any(|t| t.status == TargetStatus::InProgress)
            || d.is_finished()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stack.sound_alarm(&alarm).await;
    let d = stack.finished(&ids[0], DEPLOY_TIME).await;
    assert_eq!(d.status(), DeploymentStatus::Stopped, "{}", stack.logs());
    let error = d.error_information.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::AlarmActive);
    assert!(error.message.contains(&alarm), "{error:?}");
    assert!(
        d.targets
            .iter()
            .any(|t| t.status != TargetStatus::Succeeded),
        "the deployment stopped before every host was done: {:?}",
        statuses(&d)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_step_messages_change_nothing() {
    let stack = Stack::start(&[]).await;
    let hosts = stack.instances(3, &[]).await;
    stack
        .group("Shop", "dup", "CodeDeployDefault.OneAtATime", json!({}))
        .await;
    let ids = stack.deploy_upload("dup/v1.zip", &webapp()).await;
    let id = &ids[0];
    // While it runs, every step the deployment last queued is sent again, several times: SQS
    // delivering each message more than once.
    let mut duplicated = 0;
    for _ in 0..40 {
        let d = stack.deployment(id).await;
        if d.is_finished() {
            break;
        }
        let steps = stack.store.last_steps(id).await.unwrap();
        duplicated += steps.len();
        use cutover_aws::engine::StepQueue;
        stack.store.queue().send(steps).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        duplicated > 0,
        "steps were sent twice while the deployment ran"
    );
    let d = stack.finished(id, DEPLOY_TIME).await;
    assert_eq!(d.status(), DeploymentStatus::Succeeded, "{}", stack.logs());
    stack.settled(Duration::from_secs(60)).await;

    // And once it is over, they change nothing either.
    let before = stack.deployment(id).await;
    let steps = stack.store.last_steps(id).await.unwrap();
    use cutover_aws::engine::StepQueue;
    stack.store.queue().send(steps).await.unwrap();
    stack.settled(Duration::from_secs(60)).await;
    assert_eq!(stack.deployment(id).await, before);
    for h in &hosts {
        assert_eq!(stack.commands_sent(h).await, 1, "{h} got one command");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_killed_in_the_middle_of_a_step_is_retried_and_the_deployment_finishes() {
    use cutover_tests::lambda::KillAt;
    let stack = Stack::start(&[]).await;
    let hosts = stack.instances(2, &[]).await;
    stack
        .group("Shop", "crash", "CodeDeployDefault.OneAtATime", json!({}))
        .await;
    // run-hooks dies after sending the first host its command, before SQS hears it is done;
    // finalize dies while it takes its second batch of steps.
    stack.functions["run-hooks"].kill_during_invocation(1, KillAt::Result);
    stack.functions["finalize"].kill_during_invocation(2, KillAt::Delivery);
    let ids = stack.deploy_upload("crash/v1.zip", &webapp()).await;
    let d = stack.finished(&ids[0], DEPLOY_TIME).await;
    assert_eq!(d.status(), DeploymentStatus::Succeeded, "{}", stack.logs());
    assert!(
        stack.functions["run-hooks"].starts() >= 2,
        "run-hooks was restarted"
    );
    assert!(
        stack.functions["finalize"].starts() >= 2,
        "finalize was restarted"
    );
    for h in &hosts {
        assert_eq!(stack.commands_sent(h).await, 1, "{h} got one command");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_ends_in_the_dead_letter_queue_and_blocks_nothing() {
    use cutover_aws::queue::StepFunction;
    // Received messages come back after a second, so that five receives take seconds.
    let stack = Stack::start_with(1, &[]).await;
    stack.instances(2, &[]).await;
    stack
        .group("Shop", "poison", "CodeDeployDefault.AllAtOnce", json!({}))
        .await;
    let sqs = stack.emulator.sqs();
    for function in [StepFunction::Finalize, StepFunction::RunHooks] {
        sqs.send_message()
            .queue_url(&stack.queues[&function].url)
            .message_body("{\"not\": \"a step\"}")
            .send()
            .await
            .unwrap();
    }
    let ids = stack.deploy_upload("poison/v1.zip", &webapp()).await;
    let d = stack.finished(&ids[0], DEPLOY_TIME).await;
    assert_eq!(d.status(), DeploymentStatus::Succeeded, "{}", stack.logs());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while stack.dead_letters(StepFunction::Finalize).await < 1
        || stack.dead_letters(StepFunction::RunHooks).await < 1
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the poison messages reached the dead-letter queues"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        stack.functions["finalize"]
            .logs()
            .contains("is not a cutover step")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_fails_for_good_fails_the_deployment_with_an_error_code() {
    use cutover_aws::engine::{Step, StepQueue, Work};
    let stack = Stack::start(&[]).await;
    let hosts = stack.instances(1, &[]).await;
    stack
        .group("Shop", "broken", "CodeDeployDefault.OneAtATime", json!({}))
        .await;
    let slow = tempfile::tempdir().unwrap();
    copy_dir(&webapp(), slow.path());
    std::fs::write(
        slow.path().join("scripts/before_install.sh"),
        "#!/bin/sh\nsleep 4\n",
    )
    .unwrap();
    let ids = stack.deploy_upload("broken/v1.zip", slow.path()).await;
    for _ in 0..400 {
        let d = stack.deployment(&ids[0]).await;
        if d.targets.iter().any(|t| t.host_command.is_some()) || d.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // A poll of a command SSM has never heard of: asking again cannot help.
    let forged = Step {
        deployment_id: ids[0].clone(),
        work: Work::PollHost {
            target: cutover_aws::engine::core::TargetId::new(hosts[0].clone()),
            command_id: "00000000-0000-0000-0000-000000000000".into(),
            events: vec!["Install".parse().unwrap()],
            attempt: 9,
        },
        not_before: None,
    };
    stack.store.queue().send(vec![forged]).await.unwrap();
    let d = stack.finished(&ids[0], DEPLOY_TIME).await;
    assert_eq!(d.status(), DeploymentStatus::Failed, "{}", stack.logs());
    let error = d.error_information.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::InternalError, "{error:?}");
    assert!(error.message.contains("00000000-0000"), "{error:?}");
}
