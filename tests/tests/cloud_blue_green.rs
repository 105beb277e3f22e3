//! Blue/green deployments of the cloud functions end to end, against the AWS emulator: the
//! group's Auto Scaling group is copied, the revision installed on the copy by the real agent,
//! traffic moved in an ELBv2 target group, and the originals terminated, or everything undone.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use cutover_aws::engine::core::DeploymentId;
use cutover_aws::engine::core::machine::{Deployment, Phase};
use cutover_aws::engine::core::model::{
    DeploymentStatus, ErrorCode, LifecycleEventStatus, TargetLabel, TargetStatus,
};
use cutover_aws::queue::StepFunction;
use cutover_aws::replacements::{COPIED_FROM_TAG, DEPLOYMENT_TAG};
use cutover_aws::{autoscaling, ec2, elbv2};
use cutover_tests::awscli::Clients;
use cutover_tests::cloud::Stack;
use cutover_tests::events::scheduled_event;
use cutover_tests::{failing_webapp, webapp};
use serde_json::{Value, json};

const DEPLOY_TIME: Duration = Duration::from_secs(150);

/// A stack whose group "web" deploys blue/green from an Auto Scaling group of two instances
/// serving in a target group.
struct BlueGreen {
    stack: Stack,
    asg: String,
    blue: Vec<String>,
    target_group: String,
    target_group_arn: String,
}

impl BlueGreen {
    async fn start(env: &[(&str, &str)], settings: Value, extra: Value) -> BlueGreen {
        let stack = Stack::start(env).await;
        let (asg, blue) = stack.auto_scaling_group(2).await;
        let config = stack.emulator.config();
        autoscaling::Client::new(config)
            .create_or_update_tags()
            .tags(
                autoscaling::types::Tag::builder()
                    .resource_id(&asg)
                    .resource_type("auto-scaling-group")
                    .key("team")
                    .value("shop")
                    .propagate_at_launch(true)
                    .build(),
            )
            .send()
            .await
            .expect("the Auto Scaling group is tagged");
        let (target_group, target_group_arn) = stack.target_group(&blue).await;
        autoscaling::Client::new(config)
            .attach_load_balancer_target_groups()
            .auto_scaling_group_name(&asg)
            .target_group_arns(&target_group_arn)
            .send()
            .await
            .expect("the target group is attached to the Auto Scaling group");
        let bg = BlueGreen {
            stack,
            asg,
            blue,
            target_group,
            target_group_arn,
        };
        let mut group = json!({
            "ec2TagFilters": [],
            "autoScalingGroups": [{"name": bg.asg}],
            "loadBalancerInfo": {"targetGroupInfoList": [{"name": bg.target_group}]},
            "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
            "blueGreenDeploymentConfiguration": settings,
        });
        if let (Some(group), Value::Object(extra)) = (group.as_object_mut(), extra) {
            group.extend(extra);
        }
        bg.stack
            .group("Shop", "web", "CodeDeployDefault.OneAtATime", group)
            .await;
        bg
    }

    fn elbv2(&self) -> elbv2::Client {
        elbv2::Client::new(self.stack.emulator.config())
    }

    /// The instances the target group sends traffic to, sorted.
    async fn serving(&self) -> Vec<String> {
        let health = self
            .elbv2()
            .describe_target_health()
            .target_group_arn(&self.target_group_arn)
            .send()
            .await
            .expect("the target group answers");
        let mut ids: Vec<String> = health
            .target_health_descriptions()
            .iter()
            .filter(|d| {
                d.target_health().and_then(|h| h.state())
                    == Some(&elbv2::types::TargetHealthStateEnum::Healthy)
            })
            .filter_map(|d| d.target().and_then(|t| t.id()).map(str::to_owned))
            .collect();
        ids.sort();
        ids
    }

    /// The Auto Scaling group of that name, if it exists.
    async fn auto_scaling_group(&self, name: &str) -> Option<autoscaling::types::AutoScalingGroup> {
        autoscaling::Client::new(self.stack.emulator.config())
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .expect("Auto Scaling answers")
            .auto_scaling_groups()
            .first()
            .cloned()
    }

    /// The instances of `ids` that run.
    async fn running(&self, ids: &[String]) -> Vec<String> {
        let out = ec2::Client::new(self.stack.emulator.config())
            .describe_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .expect("EC2 answers");
        let mut running: Vec<String> = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| {
                i.state().and_then(|s| s.name()) == Some(&ec2::types::InstanceStateName::Running)
            })
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect();
        running.sort();
        running
    }

    /// The Auto Scaling groups the stored group deploys to.
    async fn group_auto_scaling_groups(&self) -> Vec<String> {
        self.stack
            .store
            .group("Shop", "web")
            .await
            .unwrap()
            .expect("the group is stored")
            .auto_scaling_groups
            .into_iter()
            .map(|a| a.name)
            .collect()
    }

    /// Waits until the deployment is in a phase `wanted` accepts.
    async fn reaches(&self, id: &DeploymentId, wanted: impl Fn(&Phase) -> bool) -> Deployment {
        for _ in 0..1200 {
            let d = self.stack.deployment(id).await;
            if wanted(&d.phase) {
                return d;
            }
            assert!(
                !d.is_finished(),
                "{id} finished ({}) before the phase awaited\n{}",
                d.status(),
                self.stack.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{id} never reached the phase awaited\n{}",
            self.stack.logs()
        );
    }

    /// Every step was carried out: none ended in a dead-letter queue. (The queues do not empty:
    /// the provisioning deadline stays queued, to be dropped when it comes due.)
    async fn no_dead_letters(&self) {
        for function in StepFunction::ALL {
            assert_eq!(
                self.stack.dead_letters(function).await,
                0,
                "{} gave up on a step\n{}",
                function.name(),
                self.stack.logs()
            );
        }
    }

    /// Runs the watchdog once, as its schedule does every minute; what it answers.
    async fn watchdog(&self) -> Value {
        self.stack.functions["schedule"]
            .invoke(
                scheduled_event("cutover-watchdog", SystemTime::now()),
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|e| panic!("the watchdog failed: {e}"))
    }
}

fn labelled(d: &Deployment, label: TargetLabel) -> Vec<String> {
    let mut ids: Vec<String> = d
        .targets
        .iter()
        .filter(|t| t.instance_label == Some(label))
        .map(|t| t.target_id.as_str().to_owned())
        .collect();
    ids.sort();
    ids
}

fn copy_name(id: &DeploymentId) -> String {
    format!("CodeDeploy_web_{id}")
}

fn event_status(d: &Deployment, host: &str, event: &str) -> Option<LifecycleEventStatus> {
    d.targets
        .iter()
        .find(|t| t.target_id.as_str() == host)?
        .lifecycle_events
        .iter()
        .find(|e| e.lifecycle_event_name.as_str() == event)
        .map(|e| e.status)
}

fn settings(ready: Value, terminate: Value) -> Value {
    json!({
        "greenFleetProvisioningOption": {"action": "COPY_AUTO_SCALING_GROUP"},
        "deploymentReadyOption": ready,
        "terminateBlueInstancesOnDeploymentSuccess": terminate,
    })
}

fn at_once() -> Value {
    json!({"actionOnTimeout": "CONTINUE_DEPLOYMENT", "waitTimeInMinutes": 0})
}

fn terminate_at_once() -> Value {
    json!({"action": "TERMINATE", "terminationWaitTimeInMinutes": 0})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_of_the_auto_scaling_group_takes_the_traffic_and_the_originals_are_terminated() {
    let bg = BlueGreen::start(&[], settings(at_once(), terminate_at_once()), json!({})).await;
    assert_eq!(bg.serving().await, bg.blue);

    let ids = bg.stack.deploy_upload("web/v1.zip", &webapp()).await;
    let d = bg.stack.finished(&ids[0], DEPLOY_TIME).await;
    assert_eq!(
        d.status(),
        DeploymentStatus::Succeeded,
        "{}",
        bg.stack.logs()
    );
    assert_eq!(labelled(&d, TargetLabel::Blue), bg.blue);
    let green = labelled(&d, TargetLabel::Green);
    assert_eq!(green.len(), 2, "the copy has the original's capacity");
    assert!(green.iter().all(|g| !bg.blue.contains(g)));

    // The copy: its own name, the original's tags and the deployment's, the green hosts.
    let copy = bg
        .auto_scaling_group(&copy_name(&ids[0]))
        .await
        .expect("the copy exists");
    let mut members: Vec<String> = copy
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect();
    members.sort();
    assert_eq!(members, green);
    let tags: BTreeSet<(String, String)> = copy
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for tag in [
        ("team", "shop"),
        (DEPLOYMENT_TAG, ids[0].as_str()),
        (COPIED_FROM_TAG, bg.asg.as_str()),
    ] {
        assert!(
            tags.contains(&(tag.0.to_owned(), tag.1.to_owned())),
            "{tag:?} in {tags:?}"
        );
    }
    assert_eq!(
        copy.target_group_arns(),
        std::slice::from_ref(&bg.target_group_arn),
        "the copy took over the original's target group"
    );

    // Traffic is on green, which has the revision; blue and its group are gone.
    assert_eq!(bg.serving().await, green);
    for host in &green {
        assert!(
            bg.stack
                .host_root(host)
                .join("srv/webapp/index.html")
                .is_file(),
            "{host} has the revision"
        );
        assert_eq!(
            event_status(&d, host, "AllowTraffic"),
            Some(LifecycleEventStatus::Succeeded)
        );
    }
    for host in &bg.blue {
        assert_eq!(
            event_status(&d, host, "BlockTraffic"),
            Some(LifecycleEventStatus::Succeeded)
        );
    }
    assert!(bg.auto_scaling_group(&bg.asg).await.is_none());
    assert!(bg.running(&bg.blue).await.is_empty(), "blue is terminated");
    assert_eq!(
        bg.group_auto_scaling_groups().await,
        vec![copy_name(&ids[0])]
    );

    // The next deployment copies the copy.
    let next = bg.stack.deploy_upload("web/v2.zip", &webapp()).await;
    let d = bg.stack.finished(&next[0], DEPLOY_TIME).await;
    assert_eq!(
        d.status(),
        DeploymentStatus::Succeeded,
        "{}",
        bg.stack.logs()
    );
    assert_eq!(labelled(&d, TargetLabel::Blue), green);
    let greener = labelled(&d, TargetLabel::Green);
    assert_eq!(bg.serving().await, greener);
    assert!(bg.auto_scaling_group(&copy_name(&ids[0])).await.is_none());
    assert_eq!(
        bg.group_auto_scaling_groups().await,
        vec![copy_name(&next[0])]
    );
    bg.no_dead_letters().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_on_green_deletes_the_copy_and_leaves_blue_serving() {
    let bg = BlueGreen::start(&[], settings(at_once(), terminate_at_once()), json!({})).await;
    let bad = failing_webapp();
    let ids = bg.stack.deploy_upload("web/v1.zip", bad.path()).await;
    let d = bg.stack.finished(&ids[0], DEPLOY_TIME).await;
    assert_eq!(d.status(), DeploymentStatus::Failed, "{}", bg.stack.logs());
    let error = d.error_information.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::HealthConstraints, "{error:?}");
    let green = labelled(&d, TargetLabel::Green);
    assert!(!green.is_empty());
    assert!(
        d.targets
            .iter()
            .filter(|t| t.instance_label == Some(TargetLabel::Green))
            .any(|t| t.status == TargetStatus::Failed)
    );

    assert_eq!(bg.serving().await, bg.blue, "blue still serves");
    assert!(bg.auto_scaling_group(&copy_name(&ids[0])).await.is_none());
    assert!(bg.running(&green).await.is_empty(), "green is gone");
    assert_eq!(bg.running(&bg.blue).await, bg.blue);
    assert!(bg.auto_scaling_group(&bg.asg).await.is_some());
    assert_eq!(bg.group_auto_scaling_groups().await, vec![bg.asg.clone()]);
    bg.no_dead_letters().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_wait_is_continued_through_the_api_and_one_left_alone_times_out() {
    let stop = json!({"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 1});
    let bg = BlueGreen::start(&[], settings(stop, terminate_at_once()), json!({})).await;
    let url = bg.stack.api().await;
    let home = tempfile::tempdir().unwrap();
    let aws = Clients::new(&url.url(), home.path());

    // Continued: traffic moves at once.
    let ids = bg.stack.deploy_upload("web/v1.zip", &webapp()).await;
    let id = ids[0].to_string();
    bg.reaches(&ids[0], |p| matches!(p, Phase::WaitingForReroute { .. }))
        .await;
    let info = aws.ok(&["get-deployment", "--deployment-id", &id]);
    assert_eq!(info["deploymentInfo"]["status"], "Ready", "{info}");
    assert_eq!(bg.serving().await, bg.blue, "nothing moves while it waits");
    let copy = bg
        .auto_scaling_group(&copy_name(&ids[0]))
        .await
        .expect("the copy exists");
    assert!(
        copy.target_group_arns().is_empty(),
        "traffic reaches the copy only through the reroute"
    );
    aws.fails(
        &[
            "continue-deployment",
            "--deployment-id",
            &id,
            "--deployment-wait-type",
            "TERMINATION_WAIT",
        ],
        "DeploymentIsNotInReadyStateException",
    );
    aws.ok(&[
        "continue-deployment",
        "--deployment-id",
        &id,
        "--deployment-wait-type",
        "READY_WAIT",
    ]);
    let d = bg.stack.finished(&ids[0], DEPLOY_TIME).await;
    assert_eq!(
        d.status(),
        DeploymentStatus::Succeeded,
        "{}",
        bg.stack.logs()
    );
    let green = labelled(&d, TargetLabel::Green);
    assert_eq!(bg.serving().await, green);

    // Left alone: the wait ends the deployment after its minute, and the copy is removed.
    let ids = bg.stack.deploy_upload("web/v2.zip", &webapp()).await;
    bg.reaches(&ids[0], |p| matches!(p, Phase::WaitingForReroute { .. }))
        .await;
    let d = bg
        .stack
        .finished(&ids[0], DEPLOY_TIME + Duration::from_secs(60))
        .await;
    assert_eq!(d.status(), DeploymentStatus::Stopped, "{}", bg.stack.logs());
    assert_eq!(
        d.error_information.as_ref().unwrap().code,
        ErrorCode::Timeout
    );
    assert_eq!(bg.serving().await, green, "traffic stayed where it was");
    assert!(bg.auto_scaling_group(&copy_name(&ids[0])).await.is_none());
    aws.fails(
        &[
            "continue-deployment",
            "--deployment-id",
            &ids[0].to_string(),
        ],
        "DeploymentAlreadyCompletedException",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_during_the_termination_wait_routes_traffic_back_to_blue() {
    let alarm_name = format!("errors-{}", std::process::id());
    let keep_an_hour = json!({"action": "TERMINATE", "terminationWaitTimeInMinutes": 60});
    let bg = BlueGreen::start(
        &[],
        settings(at_once(), keep_an_hour),
        json!({"alarmConfiguration": {"enabled": true, "alarms": [{"name": alarm_name}]}}),
    )
    .await;
    bg.stack.alarm(&alarm_name).await;

    let ids = bg.stack.deploy_upload("web/v1.zip", &webapp()).await;
    let d = bg
        .reaches(&ids[0], |p| matches!(p, Phase::WaitingToTerminate { .. }))
        .await;
    let green = labelled(&d, TargetLabel::Green);
    assert_eq!(bg.serving().await, green, "traffic moved to green");

    bg.stack.sound_alarm(&alarm_name).await;
    bg.watchdog().await;
    let d = bg.stack.finished(&ids[0], DEPLOY_TIME).await;
    assert_eq!(d.status(), DeploymentStatus::Stopped, "{}", bg.stack.logs());
    assert_eq!(
        d.error_information.as_ref().unwrap().code,
        ErrorCode::AlarmActive
    );
    assert_eq!(bg.serving().await, bg.blue, "traffic is back on blue");
    for host in &bg.blue {
        let allowed = d
            .targets
            .iter()
            .find(|t| t.target_id.as_str() == host)
            .unwrap()
            .lifecycle_events
            .iter()
            .filter(|e| e.lifecycle_event_name.as_str() == "AllowTraffic")
            .count();
        assert_eq!(allowed, 1, "{host} took traffic back");
    }
    assert!(bg.auto_scaling_group(&copy_name(&ids[0])).await.is_none());
    assert!(bg.running(&green).await.is_empty());
    assert_eq!(bg.running(&bg.blue).await, bg.blue);
    assert_eq!(bg.group_auto_scaling_groups().await, vec![bg.asg.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_sends_again_a_wait_whose_message_was_lost() {
    let a_minute = json!({"actionOnTimeout": "CONTINUE_DEPLOYMENT", "waitTimeInMinutes": 1});
    let bg = BlueGreen::start(
        &[("CUTOVER_WATCHDOG_AFTER_SECONDS", "1")],
        settings(a_minute, terminate_at_once()),
        json!({}),
    )
    .await;
    let ids = bg.stack.deploy_upload("web/v1.zip", &webapp()).await;
    bg.reaches(&ids[0], |p| matches!(p, Phase::WaitingForReroute { .. }))
        .await;
    // The delayed message that ends the wait is lost.
    let sqs = bg.stack.emulator.sqs();
    for queue in bg.stack.queues.values() {
        sqs.purge_queue()
            .queue_url(&queue.url)
            .send()
            .await
            .expect("the queue is purged");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let answer = bg.watchdog().await;
    assert!(
        answer["redriven"]
            .as_array()
            .is_some_and(|r| r.iter().any(|id| id == &json!(ids[0].to_string()))),
        "{answer}"
    );
    let d = bg
        .stack
        .finished(&ids[0], DEPLOY_TIME + Duration::from_secs(60))
        .await;
    assert_eq!(
        d.status(),
        DeploymentStatus::Succeeded,
        "{}",
        bg.stack.logs()
    );
    assert_eq!(bg.serving().await, labelled(&d, TargetLabel::Green));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovered_instances_named_by_the_deployment_take_the_traffic() {
    let discover = json!({
        "greenFleetProvisioningOption": {"action": "DISCOVER_EXISTING"},
        "deploymentReadyOption": at_once(),
        "terminateBlueInstancesOnDeploymentSuccess": terminate_at_once(),
    });
    let bg = BlueGreen::start(&[], discover, json!({})).await;
    let green = bg.stack.instances(2, &[("color", "green")]).await;
    let url = bg.stack.api().await;
    let home = tempfile::tempdir().unwrap();
    let aws = Clients::new(&url.url(), home.path());
    bg.stack.upload("releases/v1.zip", &webapp()).await;
    let location = format!(
        "bucket={},key=releases/v1.zip,bundleType=zip",
        bg.stack.bucket
    );
    let deploy = |targets: &str| {
        let out = aws.ok(&[
            "create-deployment",
            "--application-name",
            "Shop",
            "--deployment-group-name",
            "web",
            "--s3-location",
            &location,
            "--target-instances",
            targets,
        ]);
        out["deploymentId"]
            .as_str()
            .expect("a deployment id")
            .parse::<DeploymentId>()
            .unwrap()
    };

    // Tags that match nothing: the deployment fails before touching anything.
    let none =
        deploy(r#"{"tagFilters":[{"Key":"color","Value":"purple","Type":"KEY_AND_VALUE"}]}"#);
    let d = bg.stack.finished(&none, DEPLOY_TIME).await;
    assert_eq!(d.status(), DeploymentStatus::Failed);
    let error = d.error_information.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::NoInstances, "{error:?}");
    assert!(error.message.contains("color=purple"), "{error:?}");
    assert_eq!(bg.serving().await, bg.blue);

    let id = deploy(r#"{"tagFilters":[{"Key":"color","Value":"green","Type":"KEY_AND_VALUE"}]}"#);
    let d = bg.stack.finished(&id, DEPLOY_TIME).await;
    assert_eq!(
        d.status(),
        DeploymentStatus::Succeeded,
        "{}",
        bg.stack.logs()
    );
    assert_eq!(labelled(&d, TargetLabel::Green), green);
    assert_eq!(bg.serving().await, green);
    assert!(bg.running(&bg.blue).await.is_empty(), "blue is terminated");
    assert_eq!(bg.running(&green).await, green);
    let asg = bg
        .auto_scaling_group(&bg.asg)
        .await
        .expect("a discovering group keeps its Auto Scaling group");
    assert_eq!(
        asg.desired_capacity(),
        Some(0),
        "the originals left it rather than being replaced"
    );
    bg.no_dead_letters().await;
}
