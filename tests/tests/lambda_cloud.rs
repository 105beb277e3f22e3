//! Lambda deployments in the cloud functions: an AppSpec uploaded to the revision bucket starts
//! a deployment in the Lambda group that watches its prefix, whose hook function reports to the
//! api function's URL, and whose alias moves in the emulator's Lambda.

use std::time::Duration;

use cutover_aws::engine::core::model::{DeploymentStatus, ErrorCode};
use cutover_tests::cloud::Stack;
use cutover_tests::emulator::{Emulator, unique};
use cutover_tests::functions::{Functions, alias_appspec};
use serde_json::json;

fn lambda_group() -> serde_json::Value {
    json!({
        "computePlatform": "Lambda",
        "ec2TagFilters": [],
        "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_appspec_moves_the_alias_once_its_hook_reports() {
    let stack = Stack::start(&[]).await;
    let api = stack.api().await;
    let lambda = Functions::new(&Emulator::url());
    let (hook, endpoint) = (unique("quotes-smoke"), api.url());
    let setup = {
        let (lambda, hook) = (lambda.clone(), hook.clone());
        tokio::task::spawn_blocking(move || {
            lambda.create_example_hook(&hook, &endpoint, &[]);
            lambda.versioned("quotes")
        })
    };
    let function = setup.await.unwrap();
    let (v1, v2) = ("1", "2".to_owned());
    stack
        .group(
            "Functions",
            "Quotes",
            "CodeDeployDefault.LambdaAllAtOnce",
            lambda_group(),
        )
        .await;

    let appspec = alias_appspec(&function, v1, &v2, Some(&hook));
    let (etag, version) = stack
        .upload_bytes("Quotes/appspec.yml", appspec.into_bytes())
        .await;
    let started = stack
        .uploaded("Quotes/appspec.yml", &etag, version.as_deref())
        .await;
    assert_eq!(started.len(), 1);
    let d = stack.finished(&started[0], Duration::from_secs(120)).await;
    assert_eq!(
        d.status(),
        DeploymentStatus::Succeeded,
        "{:?}",
        d.error_information
    );
    let check = lambda.clone();
    let (alias, runs) = tokio::task::spawn_blocking(move || {
        (
            check.alias(&function, "live"),
            check.finished_invocations(&hook),
        )
    })
    .await
    .unwrap();
    assert_eq!(alias, (v2, Default::default()));
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["status"], "succeeded", "{:#}", runs[0]);

    // An upload that is not an AppSpec fails the deployment it starts, and moves nothing.
    let (etag, version) = stack
        .upload_bytes(
            "Quotes/broken.yml",
            b"version: 0.0\nResources: []\n".to_vec(),
        )
        .await;
    let started = stack
        .uploaded("Quotes/broken.yml", &etag, version.as_deref())
        .await;
    let d = stack.finished(&started[0], Duration::from_secs(60)).await;
    assert_eq!(d.status(), DeploymentStatus::Failed);
    assert_eq!(
        d.error_information.unwrap().code,
        ErrorCode::InvalidRevision
    );
}
