//! The `api` function end to end: the real binary behind a function URL on loopback (the
//! harness turns HTTP requests into function URL events), with its keys in an SSM SecureString
//! parameter, driven by the aws CLI and boto3 against a whole stack in the emulator, whose
//! deployments run on the emulator's instances.

use std::time::Duration;

use cutover_tests::awscli::{Clients, KEY_ID, SECRET};
use cutover_tests::cloud::Stack;
use cutover_tests::functions::{Functions, alias_appspec, create_lambda_group, inline_revision};
use cutover_tests::url::FunctionUrl;
use std::process::Command;

use cutover_tests::{binary, failing_webapp, slow_webapp, stderr, stdout, webapp};
use serde_json::{Value, json};

const ROLE: &str = "arn:aws:iam::123456789012:role/CodeDeployRole";
const DEPLOY_TIME: Duration = Duration::from_secs(120);

/// The stack, its instances and the clients of its API.
struct WithApi {
    stack: Stack,
    instances: Vec<String>,
    clients: Clients,
    _url: FunctionUrl,
    _home: tempfile::TempDir,
}

async fn stack_with_api(hosts: i32) -> WithApi {
    let stack = Stack::start(&[]).await;
    let instances = stack.instances(hosts, &[]).await;
    let url = stack.api().await;
    let home = tempfile::tempdir().unwrap();
    let clients = Clients::new(&url.url(), home.path());
    WithApi {
        stack,
        instances,
        clients,
        _url: url,
        _home: home,
    }
}

fn id(value: &Value) -> String {
    value["deploymentId"]
        .as_str()
        .unwrap_or_else(|| panic!("no deployment id: {value}"))
        .to_owned()
}

fn s3_location(bucket: &str, key: &str) -> String {
    format!("bucket={bucket},key={key},bundleType=zip")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_cli_drives_deployments_through_the_api_function() {
    let WithApi {
        stack,
        instances,
        clients: aws,
        _url,
        _home,
    } = stack_with_api(2).await;
    let failing = failing_webapp();
    let slow = slow_webapp(6);
    stack.upload("api/good.zip", &webapp()).await;
    stack.upload("api/bad.zip", failing.path()).await;
    stack.upload("api/slow.zip", slow.path()).await;
    let tag = format!("Key=cutover-test,Value={},Type=KEY_AND_VALUE", stack.tag);

    let bucket = stack.bucket.clone();
    let flow = tokio::task::spawn_blocking(move || {
        aws.ok(&["create-application", "--application-name", "Shop"]);
        aws.ok(&[
            "create-deployment-config",
            "--deployment-config-name",
            "Half",
            "--minimum-healthy-hosts",
            "type=FLEET_PERCENT,value=50",
        ]);
        aws.ok(&[
            "create-deployment-group",
            "--application-name",
            "Shop",
            "--deployment-group-name",
            "Web",
            "--service-role-arn",
            ROLE,
            "--deployment-config-name",
            "Half",
            "--ec2-tag-filters",
            &tag,
        ]);
        let info = &aws.ok(&[
            "get-deployment-group",
            "--application-name",
            "Shop",
            "--deployment-group-name",
            "Web",
        ])["deploymentGroupInfo"];
        assert_eq!(info["deploymentConfigName"], "Half", "{info}");
        let groups = aws.ok(&["list-deployment-groups", "--application-name", "Shop"]);
        assert_eq!(groups["deploymentGroups"], json!(["Web"]));

        // A good revision: the waiter polls through the function URL and returns 0.
        let deploy = |key: &str| {
            id(&aws.ok(&[
                "create-deployment",
                "--application-name",
                "Shop",
                "--deployment-group-name",
                "Web",
                "--s3-location",
                &s3_location(&bucket, key),
                "--description",
                key,
            ]))
        };
        let good = deploy("api/good.zip");
        assert_eq!(aws.wait_successful(&good), Some(0));
        let info = &aws.ok(&["get-deployment", "--deployment-id", &good])["deploymentInfo"];
        assert_eq!(info["status"], "Succeeded", "{info}");
        assert_eq!(info["deploymentOverview"]["Succeeded"], 2, "{info}");
        assert_eq!(info["description"], "api/good.zip");
        assert_eq!(info["creator"], "user");

        // A failing revision: the waiter returns 255 and the target says which script failed.
        let bad = deploy("api/bad.zip");
        assert_eq!(aws.wait_successful(&bad), Some(255));
        let info = &aws.ok(&["get-deployment", "--deployment-id", &bad])["deploymentInfo"];
        assert_eq!(info["status"], "Failed", "{info}");
        let listed = aws.ok(&[
            "list-deployments",
            "--application-name",
            "Shop",
            "--deployment-group-name",
            "Web",
        ]);
        assert_eq!(listed["deployments"], json!([bad, good]));
        let failed = aws.ok(&["list-deployments", "--include-only-statuses", "Failed"]);
        assert_eq!(failed["deployments"], json!([bad]));
        let targets = aws.ok(&["list-deployment-targets", "--deployment-id", &bad]);
        let target_ids: Vec<String> = targets["targetIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
        let mut args = vec!["batch-get-deployment-targets", "--deployment-id", &bad];
        args.push("--target-ids");
        args.extend(target_ids.iter().map(String::as_str));
        let found = aws.ok(&args);
        let events: Vec<&Value> = found["deploymentTargets"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| t["instanceTarget"]["lifecycleEvents"].as_array().unwrap())
            .filter(|e| e["status"] == "Failed")
            .collect();
        assert_eq!(
            events.len(),
            1,
            "one host failed, the other was skipped: {found}"
        );
        assert_eq!(events[0]["lifecycleEventName"], "ValidateService");
        assert_eq!(events[0]["diagnostics"]["errorCode"], "ScriptFailed");

        // A slow revision, stopped while it runs.
        let slow = deploy("api/slow.zip");
        let running = (0..600).any(|_| {
            let info = aws.ok(&["get-deployment", "--deployment-id", &slow]);
            let in_progress = info["deploymentInfo"]["status"] == "InProgress";
            if !in_progress {
                std::thread::sleep(Duration::from_millis(50));
            }
            in_progress
        });
        assert!(running, "the slow deployment started");
        let stopped = aws.ok(&["stop-deployment", "--deployment-id", &slow]);
        assert!(
            ["Pending", "Succeeded"].contains(&stopped["status"].as_str().unwrap_or("")),
            "{stopped}"
        );
        assert_eq!(aws.wait_successful(&slow), Some(255));
        let info = &aws.ok(&["get-deployment", "--deployment-id", &slow])["deploymentInfo"];
        assert_eq!(info["status"], "Stopped", "{info}");
        assert_eq!(info["errorInformation"]["code"], "MANUAL_STOP", "{info}");
        aws.fails(
            &["stop-deployment", "--deployment-id", &slow],
            "DeploymentAlreadyCompletedException",
        );

        // Errors are CodeDeploy's exceptions.
        aws.fails(
            &["get-application", "--application-name", "Nope"],
            "ApplicationDoesNotExistException",
        );
        aws.fails(
            &[
                "create-deployment",
                "--application-name",
                "Shop",
                "--deployment-group-name",
                "Web",
                "--deployment-config-name",
                "Nope",
                "--s3-location",
                &s3_location(&bucket, "api/good.zip"),
            ],
            "DeploymentConfigDoesNotExistException",
        );
        let wrong = aws.aws_as(KEY_ID, "not-the-secret-at-all", &["list-applications"]);
        assert!(
            stderr(&wrong).contains("(InvalidSignatureException)"),
            "{}",
            stderr(&wrong)
        );
        let unknown = aws.aws_as("AKCUNOBODY", SECRET, &["list-applications"]);
        assert!(
            stderr(&unknown).contains("(UnrecognizedClientException)"),
            "{}",
            stderr(&unknown)
        );
        let (status, answer) = aws.raw("ListApplications", "{not json");
        assert_eq!(status, 400);
        assert_eq!(answer["__type"], "SerializationException");
        (good, bad, slow)
    })
    .await
    .expect("the aws CLI flow passes");

    // The deployments really ran on the instances.
    let (good, ..) = flow;
    let d = stack.finished(&good.parse().unwrap(), DEPLOY_TIME).await;
    assert_eq!(d.targets.len(), instances.len());
    for instance in &instances {
        assert!(
            stack
                .host_root(instance)
                .join("opt/cutover/deployment-root")
                .is_dir(),
            "{instance} was deployed to"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_runs_the_flow_against_the_api_function() {
    let WithApi {
        stack,
        clients,
        _url,
        _home,
        ..
    } = stack_with_api(1).await;
    let failing = failing_webapp();
    stack.upload("boto/good.zip", &webapp()).await;
    stack.upload("boto/bad.zip", failing.path()).await;
    let group = json!({
        "ec2TagFilters": [{"Key": "cutover-test", "Value": stack.tag, "Type": "KEY_AND_VALUE"}],
    });
    let bucket = stack.bucket.clone();
    tokio::task::spawn_blocking(move || {
        clients.boto3_flow(&bucket, "boto/good.zip", "boto/bad.zip", &group, 1);

        // A profile of its own, as the README shows, reaches the API with no other setting.
        let profile = tempfile::tempdir().unwrap();
        std::fs::write(
            profile.path().join("credentials"),
            format!("[cutover]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n"),
        )
        .unwrap();
        std::fs::write(
            profile.path().join("config"),
            format!(
                "[profile cutover]\nregion = eu-west-3\nservices = cutover\n\n[services cutover]\ncodedeploy =\n  endpoint_url = {}\n",
                clients.endpoint
            ),
        )
        .unwrap();
        let out = clients.aws_with_profile(profile.path(), "cutover", &["list-applications"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(listed["applications"], json!(["Shop"]));

        // The operator commands reach the stack's API as they reach `cutover serve`.
        let operator = |args: &[&str]| {
            Command::new(binary("cutover"))
                .args(args)
                .args(["--endpoint", &clients.endpoint])
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", profile.path())
                .env("AWS_ACCESS_KEY_ID", KEY_ID)
                .env("AWS_SECRET_ACCESS_KEY", SECRET)
                .env("NO_PROXY", "127.0.0.1,localhost")
                .output()
                .expect("cutover runs")
        };
        let location = format!("bucket={bucket},key=boto/good.zip,bundleType=zip");
        let out = operator(&[
            "deploy",
            "--application-name",
            "Shop",
            "--deployment-group-name",
            "Web",
            "--s3-location",
            &location,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let summary = stdout(&out);
        assert!(summary.contains("Succeeded"), "{summary}");
        let out = operator(&["list", "--application-name", "Shop"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            stdout(&out).lines().filter(|l| l.starts_with("d-")).count(),
            3,
            "{}",
            stdout(&out)
        );
    })
    .await
    .expect("the boto3 flow passes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_deployment_through_the_api_function_waits_for_its_hook_function() {
    let WithApi {
        stack: _stack,
        clients: aws,
        _url,
        _home,
        ..
    } = stack_with_api(0).await;
    let emulator = cutover_tests::emulator::Emulator::url();
    tokio::task::spawn_blocking(move || {
        let lambda = Functions::new(&emulator);
        let function = lambda.versioned("pricing");
        let (v1, v2) = ("1", "2".to_owned());
        // The hook reports to the function URL, as a hook in AWS reports to the stack's ApiUrl.
        let hook = cutover_tests::emulator::unique("pricing-smoke");
        lambda.create_example_hook(&hook, &aws.endpoint, &[]);

        create_lambda_group(&aws, "Live", "CodeDeployDefault.LambdaAllAtOnce", &[]);
        let appspec = alias_appspec(&function, v1, &v2, Some(&hook));
        let created = aws.ok(&[
            "create-deployment",
            "--application-name",
            "Functions",
            "--deployment-group-name",
            "Live",
            "--revision",
            &inline_revision(&appspec),
        ]);
        let deployment = id(&created);
        assert_eq!(aws.wait_successful(&deployment), Some(0));
        assert_eq!(lambda.alias(&function, "live"), (v2, Default::default()));
        let runs = lambda.finished_invocations(&hook);
        assert_eq!(runs.len(), 1, "{runs:#?}");
        assert_eq!(runs[0]["status"], "succeeded", "{:#}", runs[0]);
        assert_eq!(runs[0]["payload"]["DeploymentId"], deployment.as_str());
    })
    .await
    .unwrap();
}
