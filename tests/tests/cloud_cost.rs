//! What one in-place deployment costs in AWS requests per host, counted by the emulator, with
//! a budget the test enforces. It runs alone in its own test binary, so that no other test's
//! requests are counted with it.

use std::collections::BTreeMap;
use std::time::Duration;

use cutover_aws::engine::core::model::DeploymentStatus;
use cutover_tests::cloud::{Stack, request_counts};
use cutover_tests::repo_root;
use serde_json::json;

/// The most requests the functions may make per host of a 5-hook in-place deployment without a
/// load balancer.
const BUDGET_PER_HOST: f64 = 15.0;

/// Requests the SQS event source makes (Lambda's pollers, in AWS), not the functions.
fn by_event_source(op: &str) -> bool {
    matches!(
        op,
        "sqs:ReceiveMessage"
            | "sqs:DeleteMessage"
            | "sqs:DeleteMessageBatch"
            | "sqs:ChangeMessageVisibility"
            | "sqs:ChangeMessageVisibilityBatch"
            | "sqs:GetQueueAttributes"
    )
}

/// Requests hosts make themselves: the agent downloading the bundle.
fn by_hosts(op: &str) -> bool {
    op == "s3:GetObject"
}

/// Deploys to `hosts` hosts and returns the requests the functions made, by operation.
async fn deploy(hosts: i32) -> BTreeMap<String, u64> {
    let stack = Stack::start(&[]).await;
    stack.instances(hosts, &[]).await;
    let group = format!("cost{hosts}");
    stack
        .group("Shop", &group, "CodeDeployDefault.OneAtATime", json!({}))
        .await;
    let key = format!("{group}/v1.zip");
    let (etag, version) = stack
        .upload(&key, &repo_root().join("examples/webapp"))
        .await;
    stack.settled(Duration::from_secs(10)).await;

    let before = request_counts(&stack.emulator).await;
    let ids = stack.uploaded(&key, &etag, version.as_deref()).await;
    stack.settled(Duration::from_secs(120)).await;
    let after = request_counts(&stack.emulator).await;

    let d = stack.finished(&ids[0], Duration::from_secs(10)).await;
    assert_eq!(d.status(), DeploymentStatus::Succeeded, "{}", stack.logs());
    after
        .into_iter()
        .map(|(op, n)| {
            let n = n - before.get(&op).copied().unwrap_or(0);
            (op, n)
        })
        .filter(|(op, n)| *n > 0 && !by_event_source(op) && !by_hosts(op))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_place_deployment_costs_at_most_fifteen_requests_per_host() {
    let small = deploy(2).await;
    let large = deploy(6).await;
    let total = |counts: &BTreeMap<String, u64>| counts.values().sum::<u64>() as f64;
    // What one more host costs: the difference between the two, over the four hosts more.
    let per_host = (total(&large) - total(&small)) / 4.0;
    let mut report =
        String::from("operation                               2 hosts  6 hosts  per host\n");
    let ops: std::collections::BTreeSet<&String> = small.keys().chain(large.keys()).collect();
    for op in ops {
        let (s, l) = (
            small.get(op).copied().unwrap_or(0),
            large.get(op).copied().unwrap_or(0),
        );
        report += &format!(
            "{op:<40}{s:>7}{l:>9}{:>10.2}\n",
            (l as f64 - s as f64) / 4.0
        );
    }
    report += &format!(
        "{:<40}{:>7}{:>9}{per_host:>10.2}\n",
        "total",
        total(&small),
        total(&large)
    );
    println!("{report}");
    assert!(
        per_host <= BUDGET_PER_HOST,
        "one more host costs {per_host:.2} requests, over the budget of {BUDGET_PER_HOST}:\n{report}"
    );
    assert!(
        per_host >= 3.0,
        "a host costs at least a command, a poll and a save:\n{report}"
    );
}
