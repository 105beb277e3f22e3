//! Lambda deployments through `cutover serve` with the real aws CLI: the alias of a function in
//! the AWS emulator moves, and hook functions, whose Python code the emulator runs, report back
//! with PutLifecycleEventHookExecutionStatus through the API, unsigned by cutover's keys.

use cutover_tests::emulator::{Emulator, unique};
use cutover_tests::functions::{Functions, alias_appspec, create_lambda_group, inline_revision};
use cutover_tests::serve::{KEY_ID, SECRET, Serve};
use serde_json::{Value, json};

fn serve_for(emulator: &str) -> Serve {
    Serve::start_with(&[
        ("CUTOVER_ACCESS_KEY_ID", KEY_ID),
        ("CUTOVER_SECRET_ACCESS_KEY", SECRET),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL_LAMBDA", emulator),
        ("AWS_ENDPOINT_URL_S3", emulator),
    ])
}

fn deploy(serve: &Serve, group: &str, appspec: &str) -> String {
    let created = serve.ok(&[
        "create-deployment",
        "--application-name",
        "Functions",
        "--deployment-group-name",
        group,
        "--revision",
        &inline_revision(appspec),
    ]);
    created["deploymentId"].as_str().unwrap().to_owned()
}

fn put_status(
    serve: &Serve,
    key: &str,
    secret: &str,
    id: &str,
    execution: &str,
    status: &str,
) -> std::process::Output {
    serve.aws_as(
        key,
        secret,
        &[
            "put-lifecycle-event-hook-execution-status",
            "--deployment-id",
            id,
            "--lifecycle-event-hook-execution-id",
            execution,
            "--status",
            status,
        ],
    )
}

#[test]
fn a_hook_function_reports_through_the_api_and_the_alias_moves() {
    let emulator = Emulator::url();
    let lambda = Functions::new(&emulator);
    let serve = serve_for(&emulator);
    let function = lambda.versioned("checkout");
    let (v1, v2) = ("1".to_owned(), "2".to_owned());
    let hook = unique("checkout-smoke");
    lambda.create_example_hook(
        &hook,
        &serve.url,
        &[("CHECK_FUNCTION", &function), ("CHECK_VERSION", &v2)],
    );

    create_lambda_group(&serve, "Live", "CodeDeployDefault.LambdaAllAtOnce", &[]);
    let group = serve.ok(&[
        "get-deployment-group",
        "--application-name",
        "Functions",
        "--deployment-group-name",
        "Live",
    ]);
    assert_eq!(
        group["deploymentGroupInfo"]["deploymentStyle"],
        json!({"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"})
    );

    let id = deploy(
        &serve,
        "Live",
        &alias_appspec(&function, &v1, &v2, Some(&hook)),
    );
    assert_eq!(serve.wait_successful(&id), Some(0));
    assert_eq!(
        lambda.alias(&function, "live"),
        (v2.clone(), Default::default())
    );

    // The hook function was invoked asynchronously with the deployment and an execution id, ran,
    // checked the new version, and reported.
    let invocations = lambda.finished_invocations(&hook);
    assert_eq!(invocations.len(), 1, "{invocations:#?}");
    let hook_run = &invocations[0];
    assert_eq!(hook_run["invocation_type"], "Event");
    assert_eq!(hook_run["status"], "succeeded", "{hook_run:#}");
    assert_eq!(hook_run["payload"]["DeploymentId"], id.as_str());
    let execution = hook_run["payload"]["LifecycleEventHookExecutionId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(execution.len() >= 32, "{execution}");
    assert_eq!(hook_run["result"], json!({"status": "Succeeded"}));
    let checked = lambda.finished_invocations(&function);
    assert!(
        checked.iter().any(|i| i["qualifier"] == v2.as_str()),
        "the hook did not invoke the new version: {checked:#?}"
    );

    let targets = serve.ok(&[
        "batch-get-deployment-targets",
        "--deployment-id",
        &id,
        "--target-ids",
        &format!("{function}:live"),
    ]);
    let target = &targets["deploymentTargets"][0];
    assert_eq!(target["deploymentTargetType"], "LambdaTarget");
    let lambda_target = &target["lambdaTarget"];
    assert_eq!(lambda_target["status"], "Succeeded");
    let info = &lambda_target["lambdaFunctionInfo"];
    assert_eq!(info["functionName"], function.as_str());
    assert_eq!(info["functionAlias"], "live");
    assert_eq!(info["currentVersion"], v1.as_str());
    assert_eq!(info["targetVersion"], v2.as_str());
    assert_eq!(info["targetVersionWeight"], 1.0);
    let events: Vec<(Value, Value)> = lambda_target["lifecycleEvents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["lifecycleEventName"].clone(), e["status"].clone()))
        .collect();
    assert_eq!(
        events,
        [
            (json!("BeforeAllowTraffic"), json!("Succeeded")),
            (json!("AllowTraffic"), json!("Succeeded")),
            (json!("AfterAllowTraffic"), json!("Skipped")),
        ]
    );
    // The operator commands show the alias as they show hosts, and where its traffic went.
    let status = std::process::Command::new(cutover_tests::binary("cutover"))
        .args(["status", &id, "--endpoint", &serve.url])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &serve.state)
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .output()
        .unwrap();
    let shown = cutover_tests::stdout(&status) + &cutover_tests::stderr(&status);
    assert!(status.status.success(), "{shown}");
    assert!(shown.contains(&format!("{function}:live")), "{shown}");
    assert!(shown.contains("Succeeded"), "{shown}");
    // The execution id is the hook's secret: nothing the API shows holds it.
    let shown = serve
        .ok(&["get-deployment", "--deployment-id", &id])
        .to_string()
        + &targets.to_string();
    assert!(!shown.contains(&execution));

    // The report needs no cutover keys, only the id; a second one is refused as CodeDeploy does.
    let again = put_status(
        &serve,
        "AKSOMEONEELSE00000",
        "not-cutovers-secret-at-all",
        &id,
        &execution,
        "Succeeded",
    );
    let err = cutover_tests::stderr(&again);
    assert!(
        err.contains("(LifecycleEventAlreadyCompletedException)"),
        "{err}"
    );
    let forged = put_status(&serve, KEY_ID, SECRET, &id, &"0".repeat(48), "Succeeded");
    let err = cutover_tests::stderr(&forged);
    assert!(
        err.contains("(InvalidLifecycleEventHookExecutionIdException)"),
        "{err}"
    );
    let bad_status = put_status(&serve, KEY_ID, SECRET, &id, &execution, "InProgress");
    let err = cutover_tests::stderr(&bad_status);
    assert!(
        err.contains("(InvalidLifecycleEventHookExecutionStatusException)"),
        "{err}"
    );
    let missing = put_status(
        &serve,
        KEY_ID,
        SECRET,
        "d-AAAAAAAAA",
        &execution,
        "Succeeded",
    );
    let err = cutover_tests::stderr(&missing);
    assert!(err.contains("(DeploymentDoesNotExistException)"), "{err}");
    // Other operations still need cutover's keys.
    let unsigned = serve.aws_as(
        "AKSOMEONEELSE00000",
        "not-cutovers-secret-at-all",
        &["list-applications"],
    );
    assert!(cutover_tests::stderr(&unsigned).contains("UnrecognizedClient"));

    // A hook that reports Failed stops the next deployment before any traffic moves.
    let v3 = lambda.publish(&function);
    let failing = unique("checkout-veto");
    lambda.create_example_hook(&failing, &serve.url, &[("FORCE_STATUS", "Failed")]);
    create_lambda_group(
        &serve,
        "Canary",
        "CodeDeployDefault.LambdaCanary10Percent5Minutes",
        &[],
    );
    let vetoed = deploy(
        &serve,
        "Canary",
        &alias_appspec(&function, &v2, &v3, Some(&failing)),
    );
    assert_eq!(serve.wait_successful(&vetoed), Some(255));
    let d = serve.ok(&["get-deployment", "--deployment-id", &vetoed]);
    assert_eq!(d["deploymentInfo"]["status"], "Failed");
    assert_eq!(
        d["deploymentInfo"]["errorInformation"]["code"],
        "HOOK_EXECUTION_FAILURE"
    );
    assert_eq!(
        lambda.alias(&function, "live"),
        (v2.clone(), Default::default())
    );
}

#[test]
fn an_alias_that_does_not_point_at_the_current_version_is_refused() {
    let emulator = Emulator::url();
    let lambda = Functions::new(&emulator);
    let serve = serve_for(&emulator);
    let function = lambda.versioned("orders");
    let (v1, v2) = ("1".to_owned(), "2".to_owned());
    lambda.aws(&[
        "lambda",
        "update-alias",
        "--function-name",
        &function,
        "--name",
        "live",
        "--function-version",
        &v2,
    ]);
    create_lambda_group(&serve, "Live", "CodeDeployDefault.LambdaAllAtOnce", &[]);
    // The AppSpec says the alias is on v1; it is on v2.
    let id = deploy(&serve, "Live", &alias_appspec(&function, &v1, &v2, None));
    assert_eq!(serve.wait_successful(&id), Some(255));
    let d = serve.ok(&["get-deployment", "--deployment-id", &id]);
    let error = &d["deploymentInfo"]["errorInformation"];
    assert_eq!(error["code"], "INVALID_LAMBDA_CONFIGURATION");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("CurrentVersion"), "{message}");
    assert_eq!(
        lambda.alias(&function, "live"),
        (v2.clone(), Default::default())
    );

    // A function that does not exist, and an inline AppSpec that is not one, are refused.
    let id = deploy(
        &serve,
        "Live",
        &alias_appspec("no-such-function", "1", "2", None),
    );
    assert_eq!(serve.wait_successful(&id), Some(255));
    let d = serve.ok(&["get-deployment", "--deployment-id", &id]);
    assert_eq!(
        d["deploymentInfo"]["errorInformation"]["code"],
        "INVALID_LAMBDA_FUNCTION"
    );
    let revision = inline_revision("version: 0.0\nResources: []\n");
    serve.fails(
        &[
            "create-deployment",
            "--application-name",
            "Functions",
            "--deployment-group-name",
            "Live",
            "--revision",
            &revision,
        ],
        "InvalidRevisionException",
    );
}

#[test]
fn a_group_tagged_with_a_bake_time_bakes_and_a_stop_then_moves_traffic_back() {
    let emulator = Emulator::url();
    let lambda = Functions::new(&emulator);
    let serve = serve_for(&emulator);
    let function = lambda.versioned("baked");
    let (v1, v2) = ("1".to_owned(), "2".to_owned());
    create_lambda_group(
        &serve,
        "Live",
        "CodeDeployDefault.LambdaAllAtOnce",
        &["--tags", "Key=cutover:bakeTimeInMinutes,Value=30"],
    );
    let arn = "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:Functions/Live";
    let err = serve.fails(
        &[
            "tag-resource",
            "--resource-arn",
            arn,
            "--tags",
            "Key=cutover:bakeTimeInMinutes,Value=soon",
        ],
        "InvalidTagsToAddException",
    );
    assert!(err.contains("number of minutes"), "{err}");

    let id = deploy(&serve, "Live", &alias_appspec(&function, &v1, &v2, None));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let d = serve.ok(&["get-deployment", "--deployment-id", &id]);
        if d["deploymentInfo"]["status"] == "Baking" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the deployment never baked: {d}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(
        lambda.alias(&function, "live"),
        (v2.clone(), Default::default())
    );
    let stopped = serve.ok(&["stop-deployment", "--deployment-id", &id]);
    assert!(stopped["status"].is_string(), "{stopped}");
    assert_eq!(serve.wait_successful(&id), Some(255));
    let d = serve.ok(&["get-deployment", "--deployment-id", &id]);
    assert_eq!(d["deploymentInfo"]["status"], "Stopped");
    assert_eq!(lambda.alias(&function, "live"), (v1, Default::default()));
}
