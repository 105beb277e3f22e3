//! `cutover serve` driven by real clients: the aws CLI (v1, installed in `.venv` by the test
//! command) and raw requests signed by botocore, against the real `cutover` binary.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use cutover_tests::awscli::user_arn;
use cutover_tests::serve::{
    KEY_ID, ROLE, SECRET, Serve, WaitBounded, failing_webapp, slow_webapp, upload_revisions,
};
use cutover_tests::{binary, repo_root, stderr, stdout};
use serde_json::{Value, json};

#[test]
fn the_aws_cli_manages_applications() {
    let serve = Serve::start();
    let created = serve.ok(&["create-application", "--application-name", "Shop"]);
    let id = created["applicationId"].as_str().unwrap();
    assert_eq!(id.len(), 36, "{id}");

    let got = serve.ok(&["get-application", "--application-name", "Shop"]);
    let app = &got["application"];
    assert_eq!(app["applicationName"], "Shop");
    assert_eq!(app["applicationId"], id);
    assert_eq!(app["computePlatform"], "Server");
    assert_eq!(app["linkedToGitHub"], false);
    assert!(app["createTime"].is_number(), "{app}");

    serve.ok(&[
        "create-application",
        "--application-name",
        "Functions",
        "--compute-platform",
        "Lambda",
    ]);
    let listed = serve.ok(&["list-applications"]);
    assert_eq!(listed["applications"], json!(["Functions", "Shop"]));
    let both = serve.ok(&[
        "batch-get-applications",
        "--application-names",
        "Shop",
        "Functions",
    ]);
    let platforms: Vec<&Value> = both["applicationsInfo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["computePlatform"])
        .collect();
    assert_eq!(platforms, [&json!("Server"), &json!("Lambda")]);

    serve.fails(
        &["create-application", "--application-name", "Shop"],
        "ApplicationAlreadyExistsException",
    );
    serve.ok(&[
        "update-application",
        "--application-name",
        "Shop",
        "--new-application-name",
        "Store",
    ]);
    let err = serve.fails(
        &["get-application", "--application-name", "Shop"],
        "ApplicationDoesNotExistException",
    );
    assert!(err.contains("No application found for name: Shop"), "{err}");
    let renamed = serve.ok(&["get-application", "--application-name", "Store"]);
    assert_eq!(renamed["application"]["applicationId"], id);

    serve.ok(&["delete-application", "--application-name", "Store"]);
    let listed = serve.ok(&["list-applications"]);
    assert_eq!(listed["applications"], json!(["Functions"]));
    serve.fails(
        &["batch-get-applications", "--application-names", "Store"],
        "ApplicationDoesNotExistException",
    );
    let long = "x".repeat(101);
    serve.fails(
        &["create-application", "--application-name", &long],
        "InvalidApplicationNameException",
    );
}

#[test]
fn the_aws_cli_manages_deployment_configurations() {
    let serve = Serve::start();
    let created = serve.ok(&[
        "create-deployment-config",
        "--deployment-config-name",
        "ThreeQuarters",
        "--minimum-healthy-hosts",
        "type=FLEET_PERCENT,value=75",
    ]);
    assert!(created["deploymentConfigId"].is_string(), "{created}");
    let got = serve.ok(&[
        "get-deployment-config",
        "--deployment-config-name",
        "ThreeQuarters",
    ]);
    let info = &got["deploymentConfigInfo"];
    assert_eq!(
        info["minimumHealthyHosts"],
        json!({"type": "FLEET_PERCENT", "value": 75})
    );
    assert_eq!(info["computePlatform"], "Server");

    let predefined = serve.ok(&[
        "get-deployment-config",
        "--deployment-config-name",
        "CodeDeployDefault.OneAtATime",
    ]);
    assert_eq!(
        predefined["deploymentConfigInfo"]["minimumHealthyHosts"]["type"],
        "MOST_CONCURRENCY"
    );
    let listed = serve.ok(&["list-deployment-configs"]);
    let names = listed["deploymentConfigsList"].as_array().unwrap();
    assert_eq!(names.len(), 18, "{names:?}");
    assert!(names.contains(&json!("ThreeQuarters")));

    serve.fails(
        &[
            "create-deployment-config",
            "--deployment-config-name",
            "ThreeQuarters",
            "--minimum-healthy-hosts",
            "type=HOST_COUNT,value=1",
        ],
        "DeploymentConfigAlreadyExistsException",
    );
    serve.fails(
        &[
            "create-deployment-config",
            "--deployment-config-name",
            "CodeDeployDefault.Mine",
            "--minimum-healthy-hosts",
            "type=HOST_COUNT,value=1",
        ],
        "InvalidDeploymentConfigNameException",
    );
    serve.fails(
        &[
            "create-deployment-config",
            "--deployment-config-name",
            "TooMuch",
            "--minimum-healthy-hosts",
            "type=FLEET_PERCENT,value=101",
        ],
        "InvalidMinimumHealthyHostValueException",
    );
    serve.fails(
        &["get-deployment-config", "--deployment-config-name", "Nope"],
        "DeploymentConfigDoesNotExistException",
    );
    serve.fails(
        &[
            "delete-deployment-config",
            "--deployment-config-name",
            "CodeDeployDefault.AllAtOnce",
        ],
        "InvalidOperationException",
    );
    serve.ok(&[
        "delete-deployment-config",
        "--deployment-config-name",
        "ThreeQuarters",
    ]);
    let listed = serve.ok(&["list-deployment-configs"]);
    assert_eq!(
        listed["deploymentConfigsList"].as_array().unwrap().len(),
        17
    );
}

#[test]
fn requests_without_a_valid_signature_are_refused_and_change_nothing() {
    let serve = Serve::start();
    let out = serve.aws_as(
        KEY_ID,
        "not-the-secret",
        &["create-application", "--application-name", "Shop"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("(InvalidSignatureException)"),
        "{}",
        stderr(&out)
    );
    let out = serve.aws_as(
        "AKCUNOBODY",
        SECRET,
        &["create-application", "--application-name", "Shop"],
    );
    assert!(
        stderr(&out).contains("(UnrecognizedClientException)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(serve.ok(&["list-applications"])["applications"], json!([]));
}

#[test]
fn malformed_and_unknown_requests_get_clear_errors() {
    let serve = Serve::start();
    let (status, answer) = serve.raw("CreateApplication", "{\"applicationName\": ");
    assert_eq!(status, 400);
    assert_eq!(answer["__type"], "SerializationException");
    let (status, answer) = serve.raw("CreateApplication", "{\"applicationNam\": \"Shop\"}");
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["__type"], "ValidationException");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("applicationNam"),
        "{answer}"
    );
    let (status, answer) = serve.raw("Frobnicate", "{}");
    assert_eq!(status, 400);
    assert_eq!(answer["__type"], "UnknownOperationException");
    let (_, answer) = serve.raw("DynamoDB_20120810.GetItem", "{}");
    assert_eq!(answer["__type"], "UnknownOperationException");
    let big = format!(
        "{{\"applicationName\": \"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let (status, _) = serve.raw("CreateApplication", &big);
    assert_eq!(status, 413);
    // None of it created anything.
    assert_eq!(serve.ok(&["list-applications"])["applications"], json!([]));
}

#[test]
fn serve_makes_a_private_key_pair_on_first_start_and_keeps_it() {
    let mut serve = Serve::start_with(&[]);
    let path = serve.state.join("api-keys.json");
    let keys: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let (key, secret) = (
        keys["AccessKeyId"].as_str().unwrap().to_owned(),
        keys["SecretAccessKey"].as_str().unwrap().to_owned(),
    );
    assert!(secret.len() >= 40, "{secret}");
    let out = serve.aws_as(&key, &secret, &["list-applications"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = serve.aws(&["list-applications"]);
    assert!(stderr(&out).contains("(UnrecognizedClientException)"));
    serve.stop();

    // A second server on the same state directory keeps the key pair.
    let again = Serve::start_in(&serve.state, &[]);
    let now: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(now, keys);
    let out = again.aws_as(&key, &secret, &["list-applications"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn the_aws_cli_manages_deployment_groups() {
    let serve = Serve::start();
    serve.ok(&["create-application", "--application-name", "Shop"]);
    let created = serve.ok(&[
        "create-deployment-group",
        "--application-name",
        "Shop",
        "--deployment-group-name",
        "Web",
        "--service-role-arn",
        ROLE,
        "--deployment-config-name",
        "CodeDeployDefault.HalfAtATime",
        "--ec2-tag-filters",
        "Key=Role,Value=web,Type=KEY_AND_VALUE",
        "--auto-scaling-groups",
        "web-asg",
        "--auto-rollback-configuration",
        "enabled=true,events=DEPLOYMENT_FAILURE",
    ]);
    let id = created["deploymentGroupId"].as_str().unwrap().to_owned();

    let got = serve.ok(&[
        "get-deployment-group",
        "--application-name",
        "Shop",
        "--deployment-group-name",
        "Web",
    ]);
    let info = &got["deploymentGroupInfo"];
    assert_eq!(info["deploymentGroupId"], id.as_str());
    assert_eq!(
        info["deploymentConfigName"],
        "CodeDeployDefault.HalfAtATime"
    );
    assert_eq!(info["serviceRoleArn"], ROLE);
    assert_eq!(
        info["ec2TagFilters"],
        json!([{"Key": "Role", "Value": "web", "Type": "KEY_AND_VALUE"}])
    );
    assert_eq!(info["autoScalingGroups"], json!([{"name": "web-asg"}]));
    assert_eq!(info["computePlatform"], "Server");
    assert_eq!(
        info["deploymentStyle"],
        json!({"deploymentType": "IN_PLACE", "deploymentOption": "WITHOUT_TRAFFIC_CONTROL"})
    );

    // A new name and configuration; what is not given stays.
    serve.ok(&[
        "create-deployment-config",
        "--deployment-config-name",
        "Quarter",
        "--minimum-healthy-hosts",
        "type=FLEET_PERCENT,value=75",
    ]);
    let updated = serve.ok(&[
        "update-deployment-group",
        "--application-name",
        "Shop",
        "--current-deployment-group-name",
        "Web",
        "--new-deployment-group-name",
        "Frontend",
        "--deployment-config-name",
        "Quarter",
    ]);
    assert_eq!(updated["hooksNotCleanedUp"], json!([]));
    let got = serve.ok(&[
        "get-deployment-group",
        "--application-name",
        "Shop",
        "--deployment-group-name",
        "Frontend",
    ]);
    let info = &got["deploymentGroupInfo"];
    assert_eq!(info["deploymentGroupId"], id.as_str());
    assert_eq!(info["deploymentConfigName"], "Quarter");
    assert_eq!(info["autoScalingGroups"], json!([{"name": "web-asg"}]));
    serve.fails(
        &[
            "delete-deployment-config",
            "--deployment-config-name",
            "Quarter",
        ],
        "DeploymentConfigInUseException",
    );

    serve.ok(&[
        "create-deployment-group",
        "--application-name",
        "Shop",
        "--deployment-group-name",
        "Api",
        "--service-role-arn",
        ROLE,
    ]);
    let listed = serve.ok(&["list-deployment-groups", "--application-name", "Shop"]);
    assert_eq!(listed["deploymentGroups"], json!(["Api", "Frontend"]));
    // The aws CLI shows the list only; the answer also names the application.
    let (_, answer) = serve.raw("ListDeploymentGroups", r#"{"applicationName": "Shop"}"#);
    assert_eq!(answer["applicationName"], "Shop");
    let batch = serve.ok(&[
        "batch-get-deployment-groups",
        "--application-name",
        "Shop",
        "--deployment-group-names",
        "Api",
        "Web",
    ]);
    assert_eq!(batch["deploymentGroupsInfo"].as_array().unwrap().len(), 1);
    assert!(
        batch["errorMessage"].as_str().unwrap().contains("Web"),
        "{batch}"
    );

    serve.ok(&[
        "delete-deployment-group",
        "--application-name",
        "Shop",
        "--deployment-group-name",
        "Api",
    ]);
    serve.fails(
        &[
            "get-deployment-group",
            "--application-name",
            "Shop",
            "--deployment-group-name",
            "Api",
        ],
        "DeploymentGroupDoesNotExistException",
    );
}

#[test]
fn deployment_groups_that_cutover_cannot_deploy_are_refused() {
    let serve = Serve::start();
    serve.ok(&["create-application", "--application-name", "Shop"]);
    let group = |extra: &[&str]| {
        let mut args = vec![
            "create-deployment-group",
            "--application-name",
            "Shop",
            "--deployment-group-name",
            "Web",
            "--service-role-arn",
            ROLE,
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<String>>()
    };
    let refused = |extra: &[&str], exception: &str| {
        let args = group(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        serve.fails(&args, exception)
    };
    refused(
        &["--deployment-config-name", "Nope"],
        "DeploymentConfigDoesNotExistException",
    );
    refused(
        &[
            "--deployment-config-name",
            "CodeDeployDefault.LambdaAllAtOnce",
        ],
        "InvalidDeploymentConfigNameException",
    );
    // A blue/green group needs its blue/green settings and traffic control.
    let err = refused(
        &[
            "--deployment-style",
            "deploymentType=BLUE_GREEN,deploymentOption=WITH_TRAFFIC_CONTROL",
        ],
        "InvalidBlueGreenDeploymentConfigurationException",
    );
    assert!(
        err.contains("needs a blueGreenDeploymentConfiguration"),
        "{err}"
    );
    refused(
        &[
            "--deployment-style",
            "deploymentType=BLUE_GREEN,deploymentOption=WITHOUT_TRAFFIC_CONTROL",
            "--blue-green-deployment-configuration",
            "deploymentReadyOption={actionOnTimeout=CONTINUE_DEPLOYMENT}",
        ],
        "InvalidDeploymentStyleException",
    );
    refused(
        &[
            "--deployment-style",
            "deploymentType=BLUE_GREEN,deploymentOption=WITH_TRAFFIC_CONTROL",
            "--load-balancer-info",
            "targetGroupInfoList=[{name=web}]",
            "--blue-green-deployment-configuration",
            "deploymentReadyOption={actionOnTimeout=STOP_DEPLOYMENT,waitTimeInMinutes=2881}",
        ],
        "InvalidBlueGreenDeploymentConfigurationException",
    );
    refused(
        &[
            "--deployment-style",
            "deploymentType=IN_PLACE,deploymentOption=WITH_TRAFFIC_CONTROL",
        ],
        "InvalidLoadBalancerInfoException",
    );
    refused(
        &[
            "--deployment-style",
            "deploymentType=IN_PLACE,deploymentOption=WITH_TRAFFIC_CONTROL",
            "--load-balancer-info",
            "elbInfoList=[{name=classic}]",
        ],
        "InvalidLoadBalancerInfoException",
    );
    let err = refused(
        &["--tags", &format!("Key={},Value=x", "k".repeat(129))],
        "InvalidTagsToAddException",
    );
    assert!(err.contains("128"), "{err}");
    refused(
        &[
            "--ec2-tag-filters",
            "Key=Role,Value=web,Type=KEY_AND_VALUE",
            "--ec2-tag-set",
            "ec2TagSetList=[[{Key=Role,Value=web,Type=KEY_AND_VALUE}]]",
        ],
        "InvalidInputException",
    );
    serve.fails(
        &[
            "create-deployment-group",
            "--application-name",
            "Nope",
            "--deployment-group-name",
            "Web",
            "--service-role-arn",
            ROLE,
        ],
        "ApplicationDoesNotExistException",
    );
    // The aws CLI insists on a role; a raw request without one is refused as CodeDeploy does.
    let (status, answer) = serve.raw(
        "CreateDeploymentGroup",
        r#"{"applicationName": "Shop", "deploymentGroupName": "Web"}"#,
    );
    assert_eq!(status, 400);
    assert_eq!(answer["__type"], "RoleRequiredException");
    // None of them was saved.
    let listed = serve.ok(&["list-deployment-groups", "--application-name", "Shop"]);
    assert_eq!(listed["deploymentGroups"], json!([]));

    serve.ok(&group(&[]).iter().map(String::as_str).collect::<Vec<_>>());
    refused(&[], "DeploymentGroupAlreadyExistsException");
}

/// Deploys `revision` with `cutover local deploy` into `state`; the deployment's id.
fn local_deploy(state: &Path, revision: &Path, extra: &[&str]) -> String {
    let out = Command::new(binary("cutover"))
        .args(["local", "deploy"])
        .arg(revision)
        .arg("--state-dir")
        .arg(state)
        .args(extra)
        .arg("--json")
        .output()
        .expect("cutover local deploy runs");
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {} {}", stdout(&out), stderr(&out)));
    json["deploymentInfo"]["deploymentId"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_aws_cli_reads_local_deployments_and_waits_for_them() {
    let serve = Serve::start();
    let webapp = repo_root().join("examples/webapp");
    let good = local_deploy(&serve.state, &webapp, &["--hosts", "2"]);
    let failing = failing_webapp();
    let bad = local_deploy(&serve.state, failing.path(), &[]);

    let got = serve.ok(&["get-deployment", "--deployment-id", &good]);
    let info = &got["deploymentInfo"];
    assert_eq!(info["status"], "Succeeded");
    assert_eq!(info["applicationName"], "LocalApp");
    assert_eq!(info["deploymentGroupName"], "LocalFleet");
    assert_eq!(info["deploymentOverview"]["Succeeded"], 2);

    // `aws deploy wait deployment-successful` ends at once: 0 for a success, 255 for a failure.
    let wait = |id: &str| {
        serve
            .aws(&["wait", "deployment-successful", "--deployment-id", id])
            .status
            .code()
    };
    assert_eq!(wait(&good), Some(0));
    assert_eq!(wait(&bad), Some(255));

    let listed = serve.ok(&[
        "list-deployments",
        "--application-name",
        "LocalApp",
        "--deployment-group-name",
        "LocalFleet",
    ]);
    assert_eq!(listed["deployments"], json!([bad, good]), "newest first");
    let failed = serve.ok(&["list-deployments", "--include-only-statuses", "Failed"]);
    assert_eq!(failed["deployments"], json!([bad]));
    let apps = serve.ok(&["list-applications"]);
    assert_eq!(apps["applications"], json!(["LocalApp"]));

    let batch = serve.ok(&[
        "batch-get-deployments",
        "--deployment-ids",
        &good,
        &bad,
        "d-AAAAAAAAA",
    ]);
    let statuses: Vec<&Value> = batch["deploymentsInfo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["status"])
        .collect();
    assert_eq!(statuses, [&json!("Succeeded"), &json!("Failed")]);

    let targets = serve.ok(&["list-deployment-targets", "--deployment-id", &good]);
    assert_eq!(targets["targetIds"], json!(["host-1", "host-2"]));
    let target = serve.ok(&[
        "get-deployment-target",
        "--deployment-id",
        &good,
        "--target-id",
        "host-2",
    ]);
    let t = &target["deploymentTarget"];
    assert_eq!(t["deploymentTargetType"], "InstanceTarget");
    assert_eq!(t["instanceTarget"]["status"], "Succeeded");
    let events = t["instanceTarget"]["lifecycleEvents"].as_array().unwrap();
    assert!(events.iter().all(|e| e["status"] == "Succeeded"), "{t}");
    assert_eq!(
        events.last().unwrap()["lifecycleEventName"],
        "ValidateService"
    );

    let broken = serve.ok(&[
        "batch-get-deployment-targets",
        "--deployment-id",
        &bad,
        "--target-ids",
        "host-1",
    ]);
    let events = broken["deploymentTargets"][0]["instanceTarget"]["lifecycleEvents"]
        .as_array()
        .unwrap()
        .clone();
    let validate = events
        .iter()
        .find(|e| e["lifecycleEventName"] == "ValidateService")
        .unwrap();
    assert_eq!(validate["status"], "Failed");
    assert_eq!(validate["diagnostics"]["errorCode"], "ScriptFailed");
    assert!(
        validate["diagnostics"]["logTail"]
            .as_str()
            .unwrap()
            .contains("the health check failed"),
        "{validate}"
    );

    let instances = serve.ok(&[
        "list-deployment-instances",
        "--deployment-id",
        &good,
        "--instance-status-filter",
        "Succeeded",
    ]);
    assert_eq!(instances["instancesList"], json!(["host-1", "host-2"]));
    let summary = serve.ok(&[
        "get-deployment-instance",
        "--deployment-id",
        &good,
        "--instance-id",
        "host-1",
    ]);
    assert_eq!(summary["instanceSummary"]["status"], "Succeeded");

    serve.fails(
        &["get-deployment", "--deployment-id", "d-AAAAAAAAA"],
        "DeploymentDoesNotExistException",
    );
    let err = serve.fails(
        &["get-deployment", "--deployment-id", "nope"],
        "InvalidDeploymentIdException",
    );
    assert!(err.contains("d-"), "{err}");
    serve.fails(
        &[
            "get-deployment-target",
            "--deployment-id",
            &good,
            "--target-id",
            "host-9",
        ],
        "DeploymentTargetDoesNotExistException",
    );
}

/// Starts `cutover local deploy` of the web app to `hosts` hosts on the server's state
/// directory, with an ApplicationStart that takes `seconds` longer; the process, and the
/// revision it deploys.
fn slow_local_deploy(serve: &Serve, hosts: u32, seconds: u32) -> (Child, tempfile::TempDir) {
    let revision = slow_webapp(seconds);
    let deploy = Command::new(binary("cutover"))
        .args(["local", "deploy"])
        .arg(revision.path())
        .args(["--hosts", &hosts.to_string(), "--json", "--state-dir"])
        .arg(&serve.state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (deploy, revision)
}

#[test]
fn the_aws_cli_stops_a_local_deployment_at_its_next_safe_point() {
    let serve = Serve::start();
    // host-1's ApplicationStart runs for a while (long enough for a loaded machine's aws CLI
    // to see the deployment run): the deployment is stopped meanwhile.
    let (deploy, _revision) = slow_local_deploy(&serve, 3, 10);

    // Wait until the deployment runs, then stop it through the API.
    let id = (0..200)
        .find_map(|_| {
            let listed = serve.ok(&["list-deployments"]);
            let id = listed["deployments"][0].as_str().map(str::to_owned);
            let running = id.as_ref().is_some_and(|id| {
                serve.ok(&["get-deployment", "--deployment-id", id])["deploymentInfo"]["status"]
                    == "InProgress"
            });
            if !running {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            id.filter(|_| running)
        })
        .expect("the deployment started");
    let stopped = serve.ok(&["stop-deployment", "--deployment-id", &id]);
    assert!(
        ["Pending", "Succeeded"].contains(&stopped["status"].as_str().unwrap()),
        "{stopped}"
    );

    // The process that runs it stops at the next safe point, with the deployment Stopped.
    let out = deploy.wait_with_output_timeout();
    assert!(!out.status.success(), "{}", stderr(&out));
    let info = &serve.ok(&["get-deployment", "--deployment-id", &id])["deploymentInfo"];
    assert_eq!(info["status"], "Stopped", "{info}");
    assert_eq!(info["errorInformation"]["code"], "MANUAL_STOP", "{info}");
    let statuses: Vec<Value> = (1..=3)
        .map(|i| {
            let t = serve.ok(&[
                "get-deployment-target",
                "--deployment-id",
                &id,
                "--target-id",
                &format!("host-{i}"),
            ]);
            t["deploymentTarget"]["instanceTarget"]["status"].clone()
        })
        .collect();
    assert_eq!(
        statuses[1..],
        [json!("Skipped"), json!("Skipped")],
        "hosts not started are skipped: {statuses:?}"
    );
    assert_eq!(
        serve
            .aws(&["wait", "deployment-successful", "--deployment-id", &id])
            .status
            .code(),
        Some(255)
    );

    serve.fails(
        &["stop-deployment", "--deployment-id", &id],
        "DeploymentAlreadyCompletedException",
    );
    serve.fails(
        &["continue-deployment", "--deployment-id", &id],
        "DeploymentAlreadyCompletedException",
    );
}

#[test]
fn serve_finishes_a_local_deployment_whose_process_was_killed() {
    let serve = Serve::start();
    let (mut deploy, _revision) = slow_local_deploy(&serve, 2, 1);
    let id = (0..400)
        .find_map(|_| {
            let id = serve.ok(&["list-deployments"])["deployments"][0]
                .as_str()
                .map(str::to_owned);
            if id.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            id
        })
        .expect("the deployment was created");
    deploy.kill().unwrap();
    deploy.wait().unwrap();

    // `aws deploy wait` polls every 15 s; the server takes the deployment over and ends it.
    let out = serve.aws(&["wait", "deployment-successful", "--deployment-id", &id]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}\n{}",
        stderr(&out),
        serve.ok(&["get-deployment", "--deployment-id", &id]),
        serve.ok(&[
            "batch-get-deployment-targets",
            "--deployment-id",
            &id,
            "--target-ids",
            "host-1",
            "host-2"
        ])
    );
    let targets = serve.ok(&[
        "list-deployment-instances",
        "--deployment-id",
        &id,
        "--instance-status-filter",
        "Succeeded",
    ]);
    assert_eq!(targets["instancesList"], json!(["host-1", "host-2"]));
}

#[test]
fn the_aws_cli_deploys_s3_revisions_to_local_hosts() {
    let webapp = repo_root().join("examples/webapp");
    let failing = failing_webapp();
    let bucket = upload_revisions(&[("web/good.zip", &webapp), ("web/bad.zip", failing.path())]);
    let emulator = cutover_tests::emulator::Emulator::url();
    let mut serve = Serve::start_reading_s3(&emulator);
    // The aws CLI's own S3 calls (`aws deploy push`) go to the emulator too.
    serve
        .clients
        .env
        .push(("AWS_ENDPOINT_URL_S3".into(), emulator.clone()));
    serve.ok(&["create-application", "--application-name", "Shop"]);
    serve.ok(&[
        "create-deployment-group",
        "--application-name",
        "Shop",
        "--deployment-group-name",
        "Web",
        "--service-role-arn",
        ROLE,
    ]);
    let deploy = |key: &str| {
        let created = serve.ok(&[
            "create-deployment",
            "--application-name",
            "Shop",
            "--deployment-group-name",
            "Web",
            "--description",
            "from the aws CLI",
            "--s3-location",
            &format!("bucket={bucket},key={key},bundleType=zip"),
        ]);
        created["deploymentId"].as_str().unwrap().to_owned()
    };
    let wait = |id: &str| {
        serve
            .aws(&["wait", "deployment-successful", "--deployment-id", id])
            .status
            .code()
    };

    let good = deploy("web/good.zip");
    assert_eq!(wait(&good), Some(0));
    let info = &serve.ok(&["get-deployment", "--deployment-id", &good])["deploymentInfo"];
    assert_eq!(info["description"], "from the aws CLI");
    assert_eq!(info["revision"]["revisionType"], "S3");
    assert_eq!(info["revision"]["s3Location"]["key"], "web/good.zip");
    assert!(
        info["revision"]["s3Location"]["eTag"].is_string(),
        "the revision is pinned to the object it validated: {info}"
    );
    // The group got one simulated host, which has the site now.
    let host = serve.state.join("hosts/host-1");
    assert!(host.join("srv/webapp/index.html").is_file());

    let bad = deploy("web/bad.zip");
    assert_eq!(wait(&bad), Some(255));
    let info = &serve.ok(&["get-deployment", "--deployment-id", &bad])["deploymentInfo"];
    assert_eq!(info["status"], "Failed");

    let missing = deploy("web/missing.zip");
    assert_eq!(wait(&missing), Some(255));
    let info = &serve.ok(&["get-deployment", "--deployment-id", &missing])["deploymentInfo"];
    assert_eq!(
        info["errorInformation"]["code"], "REVISION_MISSING",
        "{info}"
    );

    // `aws deploy push` zips a directory, uploads it, and registers it with the application;
    // the revision it registered then deploys, and records where it was used.
    let source = repo_root().join("examples/webapp");
    let pushed = serve.aws(&[
        "push",
        "--application-name",
        "Shop",
        "--s3-location",
        &format!("s3://{bucket}/web/pushed.zip"),
        "--source",
        source.to_str().unwrap(),
        "--description",
        "pushed by the aws CLI",
    ]);
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    let listed = serve.ok(&["list-application-revisions", "--application-name", "Shop"]);
    let registered: Vec<&Value> = listed["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["s3Location"]["key"] == "web/pushed.zip")
        .collect();
    assert_eq!(registered.len(), 1, "{listed}");
    let s3 = &registered[0]["s3Location"];
    assert_eq!(s3["bundleType"], "zip");
    let location = format!(
        "bucket={bucket},key=web/pushed.zip,bundleType=zip,eTag={}",
        s3["eTag"].as_str().unwrap()
    );
    let got = serve.ok(&[
        "get-application-revision",
        "--application-name",
        "Shop",
        "--s3-location",
        &location,
    ]);
    assert_eq!(got["revisionInfo"]["description"], "pushed by the aws CLI");
    assert!(got["revisionInfo"].get("firstUsedTime").is_none(), "{got}");
    let created = serve.ok(&[
        "create-deployment",
        "--application-name",
        "Shop",
        "--deployment-group-name",
        "Web",
        "--s3-location",
        &location,
    ]);
    let id = created["deploymentId"].as_str().unwrap();
    assert_eq!(wait(id), Some(0));
    let got = serve.ok(&[
        "get-application-revision",
        "--application-name",
        "Shop",
        "--s3-location",
        &location,
    ]);
    assert_eq!(got["revisionInfo"]["deploymentGroups"], json!(["Web"]));
    assert!(got["revisionInfo"]["firstUsedTime"].is_number(), "{got}");
    let deployed = serve.ok(&[
        "list-application-revisions",
        "--application-name",
        "Shop",
        "--deployed",
        "include",
        "--s3-bucket",
        &bucket,
        "--s3-key-prefix",
        "web/",
    ]);
    assert_eq!(
        deployed["revisions"].as_array().unwrap().len(),
        4,
        "{deployed}"
    );
    serve.fails(
        &[
            "get-application-revision",
            "--application-name",
            "Shop",
            "--s3-location",
            &format!("bucket={bucket},key=web/never.zip,bundleType=zip"),
        ],
        "RevisionDoesNotExistException",
    );

    serve.fails(
        &[
            "create-deployment",
            "--application-name",
            "Shop",
            "--deployment-group-name",
            "Nope",
            "--s3-location",
            &format!("bucket={bucket},key=web/good.zip,bundleType=zip"),
        ],
        "DeploymentGroupDoesNotExistException",
    );
    serve.fails(
        &[
            "create-deployment",
            "--application-name",
            "Shop",
            "--deployment-group-name",
            "Web",
        ],
        "RevisionRequiredException",
    );
    serve.fails(
        &[
            "create-deployment",
            "--application-name",
            "Shop",
            "--deployment-group-name",
            "Web",
            "--github-location",
            "repository=me/site,commitId=0123456789abcdef0123456789abcdef01234567",
        ],
        "InvalidRevisionException",
    );
}

/// Polls GetDeployment until `done` holds of its `deploymentInfo`, which it returns.
fn wait_for_deployment(
    serve: &Serve,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let info = serve.ok(&["get-deployment", "--deployment-id", id])["deploymentInfo"].clone();
        if done(&info) {
            return info;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never {what}: {info:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn the_aws_cli_runs_a_blue_green_deployment_to_local_hosts_through_its_waits() {
    let webapp = repo_root().join("examples/webapp");
    let bucket = upload_revisions(&[("web/good.zip", &webapp)]);
    let serve = Serve::start_reading_s3(&cutover_tests::emulator::Emulator::url());
    serve.ok(&["create-application", "--application-name", "Shop"]);
    let settings = json!({
        "terminateBlueInstancesOnDeploymentSuccess": {
            "action": "TERMINATE",
            "terminationWaitTimeInMinutes": 60
        },
        "deploymentReadyOption": {
            "actionOnTimeout": "STOP_DEPLOYMENT",
            "waitTimeInMinutes": 60
        },
        "greenFleetProvisioningOption": {"action": "COPY_AUTO_SCALING_GROUP"}
    });
    serve.ok(&[
        "create-deployment-group",
        "--application-name",
        "Shop",
        "--deployment-group-name",
        "Web",
        "--service-role-arn",
        ROLE,
        "--deployment-style",
        "deploymentType=BLUE_GREEN,deploymentOption=WITH_TRAFFIC_CONTROL",
        "--load-balancer-info",
        "targetGroupInfoList=[{name=web}]",
        "--blue-green-deployment-configuration",
        &settings.to_string(),
    ]);
    let group = serve.ok(&[
        "get-deployment-group",
        "--application-name",
        "Shop",
        "--deployment-group-name",
        "Web",
    ]);
    assert_eq!(
        group["deploymentGroupInfo"]["blueGreenDeploymentConfiguration"], settings,
        "{group}"
    );

    let created = serve.ok(&[
        "create-deployment",
        "--application-name",
        "Shop",
        "--deployment-group-name",
        "Web",
        "--s3-location",
        &format!("bucket={bucket},key=web/good.zip,bundleType=zip"),
    ]);
    let id = created["deploymentId"].as_str().unwrap().to_owned();

    // Installed on the replacement host, the deployment waits to be continued.
    let info = wait_for_deployment(&serve, &id, "Ready", |i| i["status"] == "Ready");
    assert_eq!(
        info["deploymentStyle"]["deploymentType"], "BLUE_GREEN",
        "{info}"
    );
    assert_eq!(info["blueGreenDeploymentConfiguration"], settings, "{info}");
    assert_eq!(info["instanceTerminationWaitTimeStarted"], false, "{info}");
    let green = serve.ok(&[
        "list-deployment-targets",
        "--deployment-id",
        &id,
        "--target-filters",
        "ServerInstanceLabel=Green",
    ]);
    assert_eq!(green["targetIds"], json!(["Web-green-1"]), "{green}");
    assert!(
        serve
            .state
            .join("hosts/Web-green-1/srv/webapp/index.html")
            .is_file()
    );
    serve.fails(
        &[
            "continue-deployment",
            "--deployment-id",
            &id,
            "--deployment-wait-type",
            "TERMINATION_WAIT",
        ],
        "DeploymentIsNotInReadyStateException",
    );
    serve.fails(
        &[
            "skip-wait-time-for-instance-termination",
            "--deployment-id",
            &id,
        ],
        "DeploymentIsNotInReadyStateException",
    );

    // Continued: traffic moves to the replacement, then the originals wait to be let go.
    serve.ok(&[
        "continue-deployment",
        "--deployment-id",
        &id,
        "--deployment-wait-type",
        "READY_WAIT",
    ]);
    let info = wait_for_deployment(&serve, &id, "in its termination wait", |i| {
        i["instanceTerminationWaitTimeStarted"] == true
    });
    assert_eq!(info["status"], "InProgress", "{info}");
    serve.fails(
        &["continue-deployment", "--deployment-id", &id],
        "DeploymentIsNotInReadyStateException",
    );
    serve.ok(&[
        "skip-wait-time-for-instance-termination",
        "--deployment-id",
        &id,
    ]);
    assert_eq!(
        serve
            .aws(&["wait", "deployment-successful", "--deployment-id", &id])
            .status
            .code(),
        Some(0)
    );
    // The original host is terminated; the replacement is the group's.
    assert!(!serve.state.join("hosts/host-1").exists());
    serve.fails(
        &["continue-deployment", "--deployment-id", &id],
        "DeploymentAlreadyCompletedException",
    );
}

#[test]
fn the_aws_cli_tags_applications_and_groups_by_arn() {
    let serve = Serve::start();
    let app_arn = "arn:aws:codedeploy:us-east-1:123456789012:application:Shop";
    let group_arn =
        |app: &str| format!("arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:{app}/Web");
    serve.ok(&[
        "create-application",
        "--application-name",
        "Shop",
        "--tags",
        "Key=team,Value=web",
    ]);
    serve.ok(&[
        "create-deployment-group",
        "--application-name",
        "Shop",
        "--deployment-group-name",
        "Web",
        "--service-role-arn",
        ROLE,
        "--tags",
        "Key=env,Value=prod",
    ]);
    let tags =
        |arn: &str| serve.ok(&["list-tags-for-resource", "--resource-arn", arn])["Tags"].clone();
    assert_eq!(tags(app_arn), json!([{"Key": "team", "Value": "web"}]));
    assert_eq!(
        tags(&group_arn("Shop")),
        json!([{"Key": "env", "Value": "prod"}])
    );

    serve.ok(&[
        "tag-resource",
        "--resource-arn",
        app_arn,
        "--tags",
        "Key=team,Value=api",
        "Key=cost,Value=42",
    ]);
    assert_eq!(
        tags(app_arn),
        json!([{"Key": "team", "Value": "api"}, {"Key": "cost", "Value": "42"}])
    );
    serve.ok(&[
        "untag-resource",
        "--resource-arn",
        app_arn,
        "--tag-keys",
        "cost",
    ]);
    assert_eq!(tags(app_arn), json!([{"Key": "team", "Value": "api"}]));

    // A renamed application keeps its tags and its groups'.
    serve.ok(&[
        "update-application",
        "--application-name",
        "Shop",
        "--new-application-name",
        "Store",
    ]);
    assert_eq!(
        tags("arn:aws:codedeploy:us-east-1:123456789012:application:Store"),
        json!([{"Key": "team", "Value": "api"}])
    );
    assert_eq!(
        tags(&group_arn("Store")),
        json!([{"Key": "env", "Value": "prod"}])
    );

    serve.fails(
        &["list-tags-for-resource", "--resource-arn", app_arn],
        "ApplicationDoesNotExistException",
    );
    serve.fails(
        &[
            "list-tags-for-resource",
            "--resource-arn",
            "arn:aws:s3:::bucket",
        ],
        "InvalidArnException",
    );
    serve.fails(
        &[
            "tag-resource",
            "--resource-arn",
            "arn:aws:codedeploy:us-east-1:123456789012:deploymentconfig:Mine",
            "--tags",
            "Key=a,Value=b",
        ],
        "ArnNotSupportedException",
    );
}

/// An IAM user ARN of the test account, for on-premises instance `name`.

#[test]
fn the_aws_cli_registers_tags_and_deregisters_on_premises_instances() {
    let serve = Serve::start();
    serve.register_instance("rack-1", &["Key=Role,Value=web", "Key=Env,Value=prod"]);
    serve.ok(&[
        "register-on-premises-instance",
        "--instance-name",
        "rack-2",
        "--iam-session-arn",
        "arn:aws:sts::123456789012:assumed-role/OnPrem/rack-2",
    ]);
    serve.register_instance("rack-3", &["Key=Role,Value=db"]);
    serve.ok(&[
        "add-tags-to-on-premises-instances",
        "--instance-names",
        "rack-2",
        "rack-3",
        "--tags",
        "Key=Env,Value=staging",
    ]);

    let info = serve.ok(&["get-on-premises-instance", "--instance-name", "rack-1"])["instanceInfo"]
        .clone();
    assert_eq!(info["instanceName"], "rack-1");
    assert_eq!(info["iamUserArn"], user_arn("rack-1"));
    assert_eq!(
        info["instanceArn"],
        "arn:aws:codedeploy:us-east-1:123456789012:instance/rack-1"
    );
    assert!(info["registerTime"].is_number(), "{info}");
    assert!(info.get("deregisterTime").is_none(), "{info}");
    assert_eq!(
        info["tags"],
        json!([{"Key": "Role", "Value": "web"}, {"Key": "Env", "Value": "prod"}])
    );
    let info = serve.ok(&["get-on-premises-instance", "--instance-name", "rack-2"])["instanceInfo"]
        .clone();
    assert_eq!(
        info["iamSessionArn"],
        "arn:aws:sts::123456789012:assumed-role/OnPrem/rack-2"
    );
    assert_eq!(info["tags"], json!([{"Key": "Env", "Value": "staging"}]));

    assert_eq!(
        serve.instance_names(&[]),
        json!(["rack-1", "rack-2", "rack-3"])
    );
    let staging = ["--tag-filters", "Key=Env,Value=staging,Type=KEY_AND_VALUE"];
    assert_eq!(serve.instance_names(&staging), json!(["rack-2", "rack-3"]));
    assert_eq!(
        serve.instance_names(&[
            "--tag-filters",
            "Key=Role,Type=KEY_ONLY",
            "Value=prod,Type=VALUE_ONLY"
        ]),
        json!(["rack-1", "rack-3"])
    );
    serve.ok(&[
        "remove-tags-from-on-premises-instances",
        "--instance-names",
        "rack-2",
        "--tags",
        "Key=Env,Value=staging",
    ]);
    assert_eq!(serve.instance_names(&staging), json!(["rack-3"]));

    let got = serve.ok(&[
        "batch-get-on-premises-instances",
        "--instance-names",
        "rack-3",
        "nowhere",
        "rack-1",
    ]);
    let names: Vec<&Value> = got["instanceInfos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["instanceName"])
        .collect();
    assert_eq!(names, [&json!("rack-3"), &json!("rack-1")], "{got}");

    // The aws CLI's own `deploy deregister` reads the instance, removes its tags and
    // deregisters it (--no-delete-iam-user leaves IAM alone).
    let out = serve.aws(&[
        "deregister",
        "--instance-name",
        "rack-3",
        "--no-delete-iam-user",
    ]);
    assert!(
        stdout(&out).contains("Deregistering the on-premises instance... DONE"),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let info = serve.ok(&["get-on-premises-instance", "--instance-name", "rack-3"])["instanceInfo"]
        .clone();
    assert!(info["deregisterTime"].is_number(), "{info}");
    assert_eq!(info["tags"], json!([]));
    // Deregistering again is harmless.
    serve.ok(&[
        "deregister-on-premises-instance",
        "--instance-name",
        "rack-3",
    ]);
    let registered = ["--registration-status", "Registered"];
    assert_eq!(
        serve.instance_names(&registered),
        json!(["rack-1", "rack-2"])
    );
    let deregistered = ["--registration-status", "Deregistered"];
    assert_eq!(serve.instance_names(&deregistered), json!(["rack-3"]));

    // Bad input gets CodeDeploy's exceptions and changes nothing.
    let register_fails = |name: &str, arn: &[&str], exception: &str| {
        let mut args = vec!["register-on-premises-instance", "--instance-name", name];
        args.extend_from_slice(arn);
        serve.fails(&args, exception);
    };
    let rack_4 = user_arn("rack-4");
    register_fails(
        "rack-1",
        &["--iam-user-arn", &rack_4],
        "InstanceNameAlreadyRegisteredException",
    );
    register_fails(
        "rack-4",
        &[
            "--iam-user-arn",
            &rack_4,
            "--iam-session-arn",
            "arn:aws:sts::123456789012:assumed-role/OnPrem/rack-4",
        ],
        "MultipleIamArnsProvidedException",
    );
    register_fails("rack-4", &[], "IamArnRequiredException");
    register_fails(
        "rack-4",
        &["--iam-user-arn", &user_arn("rack-1")],
        "IamUserArnAlreadyRegisteredException",
    );
    register_fails(
        "rack-4",
        &["--iam-user-arn", "arn:aws:iam::123456789012:role/x"],
        "InvalidIamUserArnException",
    );
    register_fails(
        "rack 4",
        &["--iam-user-arn", &rack_4],
        "InvalidInstanceNameException",
    );
    serve.fails(
        &["get-on-premises-instance", "--instance-name", "rack-9"],
        "InstanceNotRegisteredException",
    );
    serve.fails(
        &[
            "deregister-on-premises-instance",
            "--instance-name",
            "rack-9",
        ],
        "InstanceNotRegisteredException",
    );
    serve.fails(
        &[
            "add-tags-to-on-premises-instances",
            "--instance-names",
            "rack-1",
            "rack-9",
            "--tags",
            "Key=Role,Value=api",
        ],
        "InstanceNotRegisteredException",
    );
    serve.fails(
        &[
            "add-tags-to-on-premises-instances",
            "--instance-names",
            "rack-3",
            "--tags",
            "Key=Role,Value=api",
        ],
        "InstanceNotRegisteredException",
    );
    serve.fails(
        &[
            "list-on-premises-instances",
            "--registration-status",
            "Gone",
        ],
        "InvalidRegistrationStatusException",
    );
    assert_eq!(
        serve.instance_names(&[]),
        json!(["rack-1", "rack-2", "rack-3"])
    );
    let info = serve.ok(&["get-on-premises-instance", "--instance-name", "rack-1"])["instanceInfo"]
        .clone();
    assert_eq!(
        info["tags"],
        json!([{"Key": "Role", "Value": "web"}, {"Key": "Env", "Value": "prod"}])
    );
}

#[test]
fn the_aws_cli_deploys_to_the_on_premises_instances_a_group_selects_by_tags() {
    let webapp = repo_root().join("examples/webapp");
    let bucket = upload_revisions(&[("onprem/web.zip", &webapp)]);
    let serve = Serve::start_reading_s3(&cutover_tests::emulator::Emulator::url());
    serve.ok(&["create-application", "--application-name", "Shop"]);
    serve.register_instance("web-1", &["Key=Role,Value=web"]);
    serve.register_instance("db-1", &["Key=Role,Value=db", "Key=Env,Value=prod"]);
    serve.register_instance("web-2", &["Key=Role,Value=web", "Key=Env,Value=prod"]);
    serve.register_instance("web-old", &["Key=Role,Value=web"]);
    serve.ok(&[
        "deregister-on-premises-instance",
        "--instance-name",
        "web-old",
    ]);
    let group = |name: &str, selection: &[&str]| {
        let mut args = vec![
            "create-deployment-group",
            "--application-name",
            "Shop",
            "--deployment-group-name",
            name,
            "--service-role-arn",
            ROLE,
        ];
        args.extend_from_slice(selection);
        serve.ok(&args);
    };
    group(
        "Web",
        &[
            "--on-premises-instance-tag-filters",
            "Key=Role,Value=web,Type=KEY_AND_VALUE",
        ],
    );
    // Every group of a tag set must match: Env=prod and (Role=db or Role=cache).
    group(
        "Db",
        &[
            "--on-premises-tag-set",
            r#"{"onPremisesTagSetList": [
                [{"Key": "Env", "Value": "prod", "Type": "KEY_AND_VALUE"}],
                [{"Key": "Role", "Value": "db", "Type": "KEY_AND_VALUE"},
                 {"Key": "Role", "Value": "cache", "Type": "KEY_AND_VALUE"}]
            ]}"#,
        ],
    );
    group(
        "Cache",
        &[
            "--on-premises-instance-tag-filters",
            "Key=Role,Value=cache,Type=KEY_AND_VALUE",
        ],
    );
    let deploy = |group: &str| {
        let created = serve.ok(&[
            "create-deployment",
            "--application-name",
            "Shop",
            "--deployment-group-name",
            group,
            "--s3-location",
            &format!("bucket={bucket},key=onprem/web.zip,bundleType=zip"),
        ]);
        let id = created["deploymentId"].as_str().unwrap().to_owned();
        let waited = serve
            .aws(&["wait", "deployment-successful", "--deployment-id", &id])
            .status
            .code();
        (id, waited)
    };
    let site = |host: &str| {
        serve
            .state
            .join("hosts")
            .join(host)
            .join("srv/webapp/index.html")
    };

    let (web, waited) = deploy("Web");
    assert_eq!(waited, Some(0));
    let targets = serve.ok(&["list-deployment-targets", "--deployment-id", &web]);
    assert_eq!(targets["targetIds"], json!(["web-1", "web-2"]), "{targets}");
    assert!(site("web-1").is_file());
    assert!(site("web-2").is_file());
    for untouched in ["db-1", "web-old", "host-1"] {
        assert!(
            !serve.state.join("hosts").join(untouched).exists(),
            "{untouched} was not selected"
        );
    }

    let (db, waited) = deploy("Db");
    assert_eq!(waited, Some(0));
    let targets = serve.ok(&["list-deployment-targets", "--deployment-id", &db]);
    assert_eq!(targets["targetIds"], json!(["db-1"]), "{targets}");
    assert!(site("db-1").is_file());

    // Filters that match no registered instance fail the deployment as CodeDeploy does.
    let (cache, waited) = deploy("Cache");
    assert_eq!(waited, Some(255));
    let info = &serve.ok(&["get-deployment", "--deployment-id", &cache])["deploymentInfo"];
    assert_eq!(info["status"], "Failed");
    assert_eq!(info["errorInformation"]["code"], "NO_INSTANCES", "{info}");
    assert!(!serve.state.join("hosts/web-old").exists());
}

#[test]
fn boto3_runs_the_same_flow() {
    let failing = failing_webapp();
    let webapp = repo_root().join("examples/webapp");
    let bucket = upload_revisions(&[("boto/good.zip", &webapp), ("boto/bad.zip", failing.path())]);
    let serve = Serve::start_reading_s3(&cutover_tests::emulator::Emulator::url());
    // The group made through the API deploys to its one simulated host.
    serve.boto3_flow(&bucket, "boto/good.zip", "boto/bad.zip", &json!({}), 1);
}
