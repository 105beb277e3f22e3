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
use cutover_tests::{copy_dir, repo_root};
use serde_json::json;

const DEPLOY_TIME: Duration = Duration::from_secs(120);

fn webapp() -> std::path::PathBuf {
    repo_root().join("examples/webapp")
}

/// The webapp with a ValidateService that always fails.
fn failing_webapp() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&webapp(), dir.path());
    std::fs::write(
        dir.path().join("scripts/validate.sh"),
        "#!/bin/sh\necho 'the health check failed' >&2\nexit 3\n",
    )
    .unwrap();
    dir
}

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
