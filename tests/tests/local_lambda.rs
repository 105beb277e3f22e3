//! `cutover local`'s Lambda client against the emulator's Lambda: it checks a function's alias
//! and versions, shifts the alias's traffic and puts it back, and invokes hook functions, whose
//! code the emulator runs. The functions are made, and their aliases and invocations read back,
//! by boto3 and Python from the test venv.

use std::process::Command;

use cutover_aws::engine::core::DeploymentId;
use cutover_aws::engine::core::appspec::LambdaFunction;
use cutover_aws::engine::core::model::{ErrorCode, ErrorInformation};
use cutover_aws::engine::{HookFunctions, LambdaTraffic};
use cutover_local::lambda::LambdaApi;
use cutover_tests::awscli::venv;
use cutover_tests::emulator::{ACCESS_KEY_ID, Emulator, SECRET_ACCESS_KEY, unique};
use cutover_tests::lambda::REGION;
use cutover_tests::{stderr, stdout};
use serde_json::{Value, json};

/// Makes the function sys.argv[2] with versions 1 and 2 and alias `live` on version 1; prints
/// the function's ARN.
const MAKE_FUNCTION: &str = r#"
import io, json, sys, zipfile
import boto3
url, name = sys.argv[1:3]
iam = boto3.client("iam", endpoint_url=url)
try:
    iam.create_role(RoleName="cutover-hooks", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
        "Principal": {"Service": "lambda.amazonaws.com"}}]}))
except iam.exceptions.EntityAlreadyExistsException:
    pass
bundle = io.BytesIO()
with zipfile.ZipFile(bundle, "w") as z:
    z.writestr("hook.py", "def handler(event, context):\n    return event\n")
aws_lambda = boto3.client("lambda", endpoint_url=url)
created = aws_lambda.create_function(
    FunctionName=name, Runtime="python3.12", Handler="hook.handler",
    Role="arn:aws:iam::123456789012:role/cutover-hooks",
    Code={"ZipFile": bundle.getvalue()}, Publish=True)
assert created["Version"] == "1", created["Version"]
aws_lambda.update_function_configuration(FunctionName=name, Description="release 2")
assert aws_lambda.publish_version(FunctionName=name)["Version"] == "2"
aws_lambda.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
print(created["FunctionArn"].removesuffix(":1"))
"#;

/// Prints alias `live` of function sys.argv[2] as GetAlias answers it.
const GET_ALIAS: &str = r#"
import json, sys
import boto3
url, name = sys.argv[1:3]
alias = boto3.client("lambda", endpoint_url=url).get_alias(FunctionName=name, Name="live")
alias.pop("ResponseMetadata", None)
print(json.dumps(alias))
"#;

/// Prints the emulator's log of the invocations of function sys.argv[2].
const INVOCATIONS: &str = r#"
import json, sys, urllib.request
url, name = sys.argv[1:3]
with urllib.request.urlopen(url + "/cutover-emulator/lambda-invocations") as answer:
    log = json.load(answer)["invocations"]
print(json.dumps([i for i in log if i["function_name"] == name]))
"#;

/// Runs one of the scripts above with the emulator's URL and `name`; what it printed.
fn boto3(script: &str, name: &str) -> String {
    let out = Command::new(venv("python"))
        .args(["-c", script, &Emulator::url(), name])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .output()
        .expect("the venv's python runs");
    assert!(out.status.success(), "boto3 for {name}: {}", stderr(&out));
    stdout(&out).trim().to_owned()
}

/// A new function with versions 1 and 2 and alias `live` on 1: its name and ARN.
fn make_function(name: &str) -> (String, String) {
    let name = unique(name);
    let arn = boto3(MAKE_FUNCTION, &name);
    (name, arn)
}

/// Where alias `live` of `name` sends its traffic: its version and its extra weights.
fn alias(name: &str) -> (String, Value) {
    let alias: Value = serde_json::from_str(&boto3(GET_ALIAS, name)).expect("GetAlias's JSON");
    let weights = alias
        .pointer("/RoutingConfig/AdditionalVersionWeights")
        .cloned()
        .unwrap_or(json!({}));
    (
        alias["FunctionVersion"].as_str().unwrap().to_owned(),
        weights,
    )
}

/// The client, at the emulator, with its dummy credentials (and no other variable read).
fn api() -> LambdaApi {
    LambdaApi::from_lookup(|name| match name {
        "AWS_ACCESS_KEY_ID" => Some(ACCESS_KEY_ID.into()),
        "AWS_SECRET_ACCESS_KEY" => Some(SECRET_ACCESS_KEY.into()),
        "AWS_REGION" => Some(REGION.into()),
        _ => None,
    })
    .expect("credentials")
    .with_endpoint(&Emulator::url())
}

fn live(name: &str) -> LambdaFunction {
    LambdaFunction {
        name: name.to_owned(),
        alias: "live".into(),
        current_version: "1".into(),
        target_version: "2".into(),
    }
}

fn refused(found: Option<ErrorInformation>, code: ErrorCode, message: &str) {
    let found = found.unwrap_or_else(|| panic!("the check passed, expected: {message}"));
    assert_eq!((found.code, found.message.as_str()), (code, message));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alias_shifts_to_the_target_version_and_back() {
    let (name, arn) = make_function("shift");
    let api = api();
    let f = live(&name);
    assert_eq!(api.check(&f).await.unwrap(), None);
    assert_eq!(api.check(&live(&arn)).await.unwrap(), None, "by ARN");

    api.shift(&f, 10).await.unwrap();
    assert_eq!(alias(&name), ("1".into(), json!({"2": 0.1})));
    // Once shifting has begun, the alias no longer sends everything to CurrentVersion.
    refused(
        api.check(&f).await.unwrap(),
        ErrorCode::InvalidLambdaConfiguration,
        &format!(
            "alias 'live' of Lambda function '{name}' points at version 1 (with 10% on version 2), \
             not at CurrentVersion 1 alone"
        ),
    );

    api.shift(&live(&arn), 100).await.unwrap();
    assert_eq!(alias(&name), ("2".into(), json!({})));
    api.shift(&f, 100).await.unwrap();
    assert_eq!(
        alias(&name),
        ("2".into(), json!({})),
        "repeating changes nothing"
    );
    refused(
        api.check(&f).await.unwrap(),
        ErrorCode::InvalidLambdaConfiguration,
        &format!(
            "alias 'live' of Lambda function '{name}' points at version 2, not at CurrentVersion 1"
        ),
    );

    api.restore(&f).await.unwrap();
    assert_eq!(alias(&name), ("1".into(), json!({})));
    assert_eq!(api.check(&f).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_names_what_is_missing() {
    let (name, _) = make_function("check");
    let api = api();
    let missing = unique("no-such-function");
    refused(
        api.check(&live(&missing)).await.unwrap(),
        ErrorCode::InvalidLambdaFunction,
        &format!("Lambda function '{missing}' does not exist"),
    );
    let f = LambdaFunction {
        target_version: "7".into(),
        ..live(&name)
    };
    refused(
        api.check(&f).await.unwrap(),
        ErrorCode::InvalidLambdaConfiguration,
        &format!("Lambda function '{name}' has no version 7 (its TargetVersion)"),
    );
    let f = LambdaFunction {
        alias: "staging".into(),
        ..live(&name)
    };
    refused(
        api.check(&f).await.unwrap(),
        ErrorCode::InvalidLambdaConfiguration,
        &format!("Lambda function '{name}' has no alias 'staging'"),
    );
    let f = LambdaFunction {
        current_version: "$LATEST".into(),
        ..live(&name)
    };
    let found = api.check(&f).await.unwrap().expect("$LATEST is refused");
    assert_eq!(found.code, ErrorCode::InvalidLambdaConfiguration);
    assert!(found.message.contains("'$LATEST'"), "{}", found.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_functions_are_invoked_and_a_missing_one_fails_for_good() {
    let (name, arn) = make_function("hook");
    let api = api();
    let id: DeploymentId = "d-A1B2C3D4E".parse().unwrap();
    api.invoke(&name, &id, "execution-1").await.unwrap();
    api.invoke(&arn, &id, "execution-2").await.unwrap();
    let log: Vec<Value> = serde_json::from_str(&boto3(INVOCATIONS, &name)).expect("the log's JSON");
    let seen: Vec<(&Value, &Value, &Value)> = log
        .iter()
        .map(|i| (&i["invocation_type"], &i["ran_code"], &i["payload"]))
        .collect();
    assert_eq!(
        seen,
        [
            (
                &json!("Event"),
                &json!(true),
                &json!({"DeploymentId": "d-A1B2C3D4E", "LifecycleEventHookExecutionId": "execution-1"}),
            ),
            (
                &json!("Event"),
                &json!(true),
                &json!({"DeploymentId": "d-A1B2C3D4E", "LifecycleEventHookExecutionId": "execution-2"}),
            ),
        ]
    );

    let missing = unique("no-such-hook");
    let e = api.invoke(&missing, &id, "execution-3").await.unwrap_err();
    assert!(!e.retryable, "{e}");
    assert!(
        e.message.starts_with(&format!(
            "hook function '{missing}' cannot be invoked: it does not exist"
        )),
        "{e}"
    );
}
