//! `cutover local`'s Lambda client against the emulator's Lambda: it checks a function's alias
//! and versions, shifts the alias's traffic and puts it back, and invokes hook functions, whose
//! code the emulator runs. The functions are made, and their aliases and invocations read back,
//! with the aws CLI of the test venv.

use cutover_aws::engine::core::DeploymentId;
use cutover_aws::engine::core::appspec::LambdaFunction;
use cutover_aws::engine::core::model::{ErrorCode, ErrorInformation};
use cutover_aws::engine::{HookFunctions, LambdaTraffic};
use cutover_local::lambda::LambdaApi;
use cutover_tests::emulator::{ACCESS_KEY_ID, Emulator, SECRET_ACCESS_KEY, unique};
use cutover_tests::functions::Functions;
use cutover_tests::lambda::REGION;
use serde_json::{Value, json};

/// A new function with versions 1 and 2 and alias `live` on 1: its name and ARN.
fn make_function(name: &str) -> (String, String) {
    let name = unique(name);
    let lambda = functions();
    lambda.create(
        &name,
        "def handler(event, context):\n    return event\n",
        &[],
    );
    assert_eq!(lambda.publish(&name), "1");
    assert_eq!(lambda.publish(&name), "2");
    lambda.create_alias(&name, "live", "1");
    let arn = lambda.arn(&name);
    (name, arn)
}

fn functions() -> Functions {
    Functions::new(&Emulator::url())
}

/// Where alias `live` of `name` sends its traffic: its version and its extra weights.
fn alias(name: &str) -> (String, Value) {
    let (version, weights) = functions().alias(name, "live");
    (version, Value::Object(weights))
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
    let log = functions().finished_invocations(&name);
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
