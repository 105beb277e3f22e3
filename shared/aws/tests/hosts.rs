//! SSM hosts against a stand-in for SSM: the claim a command is sent under travels in its
//! comment, and a step looking for the command its predecessor sent finds it by that claim.

mod support;

use std::sync::{Arc, Mutex};

use cutover_aws::hosts::SsmHosts;
use cutover_aws::{s3, ssm};
use cutover_core::TargetId;
use cutover_core::Timestamp;
use cutover_core::lifecycle::LifecycleEventName;
use cutover_core::model::{RevisionLocation, S3Location};
use cutover_engine::{HookRunner, HostRun};
use serde_json::{Value, json};
use support::{Request, StandIn};

const DOCUMENT: &str = "cutover-run-agent";

async fn hosts(stand_in: &StandIn) -> SsmHosts {
    let config = support::stand_in_config(&stand_in.url).await;
    SsmHosts::new(
        ssm::Client::new(&config),
        s3::Client::new(&config),
        DOCUMENT,
        None,
    )
}

fn body(r: &Request) -> Value {
    serde_json::from_str(&r.body).unwrap_or(Value::Null)
}

fn answer(value: Value) -> support::Answer {
    (200, "application/x-amz-json-1.1", value.to_string())
}

/// An SSM stand-in that takes commands and lists them back, newest first, one per page.
fn ssm_stand_in(sent: Arc<Mutex<Vec<(String, String)>>>) -> impl Fn(&Request) -> support::Answer {
    move |r| match r.target.as_str() {
        "AmazonSSM.SendCommand" => {
            let comment = body(r)["Comment"].as_str().unwrap_or("").to_owned();
            let mut sent = sent.lock().unwrap();
            let id = format!("command-{}", sent.len() + 1);
            sent.push((id.clone(), comment));
            answer(json!({ "Command": { "CommandId": id } }))
        }
        "AmazonSSM.ListCommandInvocations" => {
            let sent = sent.lock().unwrap();
            let page: usize = body(r)["NextToken"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let newest_first: Vec<_> = sent.iter().rev().collect();
            let mut out = json!({ "CommandInvocations": [] });
            if let Some((id, comment)) = newest_first.get(page) {
                out["CommandInvocations"] = json!([{ "CommandId": id, "Comment": comment }]);
                if page + 1 < newest_first.len() {
                    out["NextToken"] = json!((page + 1).to_string());
                }
            }
            answer(out)
        }
        other => (400, "text/plain", format!("unexpected {other}")),
    }
}

#[tokio::test]
async fn a_command_is_found_by_the_claim_it_was_sent_under() {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let stand_in = StandIn::start(ssm_stand_in(sent.clone())).await;
    let hosts = hosts(&stand_in).await;
    let mut d = support::deployment(support::group("Web"), None);
    d.revision = RevisionLocation::S3(S3Location {
        bucket: "revisions".into(),
        key: "web/v1.zip".into(),
        bundle_type: None,
        version: None,
        e_tag: Some("\"abc\"".into()),
    });
    let target = TargetId::new("i-0123456789abcdef0");
    let events = [
        LifecycleEventName::ApplicationStop,
        LifecycleEventName::DownloadBundle,
        LifecycleEventName::Install,
    ];
    // Claimed at 22:13:20 UTC, for the default two minutes.
    let expires_at = Timestamp::from_secs(1_700_000_000 + 120);

    for claim in ["1111aaaa2222bbbb", "3333cccc4444dddd"] {
        let run = hosts.run(&d, &target, &events, Some(claim)).await.unwrap();
        assert!(matches!(run, HostRun::Started { .. }), "{run:?}");
    }
    // The first command is on the second page.
    let found = hosts
        .find(&target, "1111aaaa2222bbbb", expires_at)
        .await
        .unwrap();
    assert_eq!(found.as_deref(), Some("command-1"));
    let found = hosts
        .find(&target, "3333cccc4444dddd", expires_at)
        .await
        .unwrap();
    assert_eq!(found.as_deref(), Some("command-2"));
    assert_eq!(hosts.find(&target, "5555", expires_at).await.unwrap(), None);

    // The lookup asks SSM only for this host's invocations of cutover's document.
    let lists: Vec<Value> = stand_in
        .requests()
        .iter()
        .filter(|r| r.target == "AmazonSSM.ListCommandInvocations")
        .map(body)
        .collect();
    let first = &lists[0];
    assert_eq!(first["InstanceId"], target.as_str());
    let filters = first["Filters"].as_array().unwrap();
    assert!(
        filters.contains(&json!({ "key": "DocumentName", "value": DOCUMENT })),
        "{filters:?}"
    );
    let invoked_after = filters
        .iter()
        .find(|f| f["key"] == "InvokedAfter")
        .and_then(|f| f["value"].as_str())
        .unwrap();
    // From the claim, less five minutes for clocks that are apart.
    assert_eq!(invoked_after, "2023-11-14T22:08:20Z");
}
