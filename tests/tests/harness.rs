//! The Lambda harness itself, proven with a test-only echo function: invocations through the
//! Runtime API, function errors, crashes, kills and timeouts, and an SQS event source against the
//! emulator (deletes, partial batch failures, retries and dead-letter queues).

use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use cutover_aws::sqs::types::MessageSystemAttributeName;
use cutover_tests::emulator::{Emulator, Queue, unique};
use cutover_tests::events::{EventSource, s3_object_created_event, scheduled_event};
use cutover_tests::lambda::{Function, InvocationError, KillAt};
use serde_json::{Value, json};

const ECHO: &str = env!("CARGO_BIN_EXE_cutover-test-echo-function");
const INVOKE: Duration = Duration::from_secs(20);
/// How long a test waits for what should take a few seconds at most.
const PATIENCE: Duration = Duration::from_secs(30);

fn echo(env: &[(String, String)]) -> Function {
    Function::start(ECHO.as_ref(), env)
}

async fn invoke(function: &Function, payload: Value) -> Value {
    function
        .invoke(payload, INVOKE)
        .await
        .unwrap_or_else(|error| panic!("the invocation failed: {error}"))
}

fn pid(answer: &Value) -> u64 {
    answer["pid"]
        .as_u64()
        .expect("the echo function says its pid")
}

#[tokio::test]
async fn a_plain_invoke_returns_the_functions_json() {
    let function = echo(&[("GREETING".to_owned(), "hello".to_owned())]);
    let before = now_millis();
    let payload = json!({
        "hello": "world",
        "env": ["GREETING", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION",
                "AWS_REGION", "AWS_LAMBDA_RUNTIME_API", "HOME"],
    });
    let answer = invoke(&function, payload.clone()).await;

    assert_eq!(answer["echo"], payload);
    assert_eq!(answer["function"], "cutover-test-echo-function");
    assert_eq!(answer["memory"], 128);
    assert_eq!(answer["invokedFunctionArn"], function.arn());
    assert_eq!(answer["requestId"].as_str().map(str::len), Some(36));
    assert!(answer["traceId"].as_str().unwrap().starts_with("Root=1-"));
    let deadline = answer["deadlineMs"].as_u64().unwrap();
    assert!(deadline >= before + INVOKE.as_millis() as u64, "{answer}");
    let env = &answer["env"];
    assert_eq!(env["GREETING"], "hello");
    assert_eq!(
        env["AWS_LAMBDA_FUNCTION_NAME"],
        "cutover-test-echo-function"
    );
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert_eq!(
        env["AWS_LAMBDA_RUNTIME_API"],
        function.runtime_api().unwrap().to_string()
    );
    assert_eq!(env["HOME"], Value::Null, "the test's environment leaked in");

    // The events of s3-trigger and schedule, read by the function through aws_lambda_events.
    let s3 = s3_object_created_event("revisions", "app/v 2.zip", 1234, "\"abc123\"", None);
    let answer = invoke(&function, s3).await;
    assert_eq!(
        answer["s3"],
        json!([{
            "event": "ObjectCreated:Put",
            "bucket": "revisions",
            "key": "app/v+2.zip",
            "size": 1234,
            "etag": "abc123",
            "version": null,
        }])
    );
    let time = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    let answer = invoke(&function, scheduled_event("cutover-watchdog", time)).await;
    assert_eq!(answer["schedule"]["detailType"], "Scheduled Event");
    assert_eq!(answer["schedule"]["time"], "2026-01-01T00:00:00+00:00");
    assert_eq!(
        answer["schedule"]["resources"],
        json!(["arn:aws:events:us-east-1:123456789012:rule/cutover-watchdog"])
    );

    assert_eq!(function.invocations(), 3);
    assert_eq!(function.starts(), 1, "one process served every invocation");
    assert!(function.logs().contains("echo function: ready"));
}

#[tokio::test]
async fn a_function_error_fails_the_invocation_and_keeps_the_process() {
    let function = echo(&[]);
    let first = invoke(&function, json!({})).await;
    let error = function
        .invoke(json!({"fail": "no such revision"}), INVOKE)
        .await
        .expect_err("the function fails");
    match error {
        InvocationError::Function { message, .. } => assert_eq!(message, "no such revision"),
        other => panic!("a function error, not {other}"),
    }
    let after = invoke(&function, json!({})).await;
    assert_eq!(pid(&first), pid(&after), "the same process goes on");
    assert_eq!(function.starts(), 1);
}

#[tokio::test]
async fn a_crash_fails_the_invocation_and_the_next_one_gets_a_new_process() {
    let function = echo(&[]);
    let first = invoke(&function, json!({})).await;
    let error = function
        .invoke(json!({"crash": true}), INVOKE)
        .await
        .expect_err("the process aborts");
    match &error {
        InvocationError::Crashed { status, logs, .. } => {
            assert!(status.contains("SIGABRT"), "{error}");
            assert!(logs.contains("crashing as asked"), "{error}");
        }
        other => panic!("a crash, not {other}"),
    }
    let second = invoke(&function, json!({})).await;
    assert_ne!(pid(&first), pid(&second));

    function.kill();
    let third = invoke(&function, json!({})).await;
    assert_ne!(pid(&second), pid(&third));
    assert_eq!(function.starts(), 3);
    assert!(function.logs().contains("starting process #3"));
}

#[tokio::test]
async fn the_process_can_be_killed_at_each_point_of_an_invocation() {
    let function = echo(&[]);
    for (at, payload) in [
        (KillAt::Delivery, json!({})),
        (
            KillAt::After(Duration::from_millis(200)),
            json!({"sleep_ms": 20_000}),
        ),
        (KillAt::Result, json!({})),
    ] {
        function.kill_during_invocation(2, at);
        invoke(&function, json!({})).await;
        let started = Instant::now();
        let error = function
            .invoke(payload, INVOKE)
            .await
            .expect_err("the process is killed");
        match &error {
            InvocationError::Crashed { status, .. } => {
                assert!(status.contains("SIGKILL"), "{at:?}: {error}")
            }
            other => panic!("{at:?}: a crash, not {other}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{at:?}");
        invoke(&function, json!({})).await;
    }
    assert_eq!(function.starts(), 4);
    assert_eq!(function.invocations(), 9);
}

#[tokio::test]
async fn a_timeout_kills_the_process() {
    let function = echo(&[]);
    let first = invoke(&function, json!({})).await;
    let started = Instant::now();
    let error = function
        .invoke(json!({"sleep_ms": 20_000}), Duration::from_millis(300))
        .await
        .expect_err("the function is too slow");
    assert!(matches!(error, InvocationError::Timeout { .. }), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let after = invoke(&function, json!({})).await;
    assert_ne!(pid(&first), pid(&after));
}

/// A queue of the emulator, the echo function, and an event source between them.
async fn pipeline(
    test: &str,
    max_receive_count: u32,
    visibility_timeout: u32,
) -> (Emulator, Queue, Arc<Function>, EventSource) {
    let emulator = Emulator::connect().await;
    let queue = emulator
        .queue_with_dead_letter_queue(&unique(test), max_receive_count, visibility_timeout)
        .await;
    let function = Arc::new(echo(&emulator.function_env()));
    let source = EventSource::sqs(function.clone(), &queue.url, emulator.sqs(), 10);
    (emulator, queue, function, source)
}

async fn send(emulator: &Emulator, queue: &Queue, body: &str) {
    emulator
        .sqs()
        .send_message()
        .queue_url(&queue.url)
        .message_body(body)
        .send()
        .await
        .expect("SendMessage");
}

/// Waits for a message with `body` in the dead-letter queue, and gives its receive count (which
/// counts this receive too).
async fn dead_letter(emulator: &Emulator, queue: &Queue, body: &str) -> u64 {
    let started = Instant::now();
    while started.elapsed() < PATIENCE {
        let received = emulator
            .sqs()
            .receive_message()
            .queue_url(&queue.dead_letter_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .expect("ReceiveMessage on the dead-letter queue");
        for message in received.messages() {
            if message.body() == Some(body) {
                return message
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|count| count.parse().ok())
                    .unwrap_or(0);
            }
        }
    }
    panic!("{body:?} never reached {}", queue.dead_letter_url);
}

#[tokio::test]
async fn messages_flow_from_the_queue_through_the_function_and_are_deleted() {
    let (emulator, queue, function, source) = pipeline("harness-flow", 3, 30).await;
    let bodies: Vec<String> = (1..=5).map(|n| format!("step {n}")).collect();
    for body in &bodies {
        send(&emulator, &queue, body).await;
    }
    let stats = source
        .wait_until("5 deletions", PATIENCE, |stats| stats.deleted == 5)
        .await;
    assert_eq!(stats.received, 5);
    assert_eq!(stats.failed_invocations, 0, "{stats:#?}");
    assert_eq!(stats.item_failures, 0);
    assert_eq!(emulator.queue_depth(&queue.url).await, (0, 0));
    let logs = function.logs();
    for body in &bodies {
        assert!(logs.contains(&format!("(receive 1): {body}")), "{logs}");
    }
}

#[tokio::test]
async fn a_failing_record_stays_and_lands_in_the_dead_letter_queue() {
    let (emulator, queue, function, source) = pipeline("harness-dlq", 2, 1).await;
    send(&emulator, &queue, "fine").await;
    send(&emulator, &queue, "please fail").await;

    let receives = dead_letter(&emulator, &queue, "please fail").await;
    assert_eq!(
        receives, 3,
        "received maxReceiveCount times, moved, then received here"
    );
    let logs = function.logs();
    assert!(logs.contains("(receive 2): please fail"), "{logs}");
    assert!(!logs.contains("(receive 3)"), "{logs}");
    let stats = source.stats();
    assert_eq!(
        stats.deleted, 1,
        "only the fine message is deleted: {stats:#?}"
    );
    assert_eq!(stats.item_failures, 2, "{stats:#?}");
    assert_eq!(stats.failed_invocations, 0, "{stats:#?}");
    assert_eq!(emulator.queue_depth(&queue.url).await, (0, 0));
}

#[tokio::test]
async fn a_crash_restarts_the_process_and_the_message_is_retried() {
    let (emulator, queue, function, source) = pipeline("harness-crash", 3, 1).await;
    function.kill_during_next_invocation();
    send(&emulator, &queue, "survivor").await;

    let stats = source
        .wait_until("the retried message's deletion", PATIENCE, |stats| {
            stats.deleted == 1
        })
        .await;
    assert_eq!(stats.failed_invocations, 1, "{stats:#?}");
    assert_eq!(stats.received, 2, "{stats:#?}");
    assert!(stats.errors[0].contains("SIGKILL"), "{stats:#?}");
    assert_eq!(function.starts(), 2);
    let logs = function.logs();
    assert!(logs.contains("(receive 1): survivor"), "{logs}");
    assert!(logs.contains("(receive 2): survivor"), "{logs}");
    assert_eq!(emulator.queue_depth(&queue.url).await, (0, 0));
}

#[tokio::test]
async fn a_record_that_crashes_the_function_every_time_ends_in_the_dead_letter_queue() {
    let (emulator, queue, function, source) = pipeline("harness-poison", 2, 1).await;
    send(&emulator, &queue, "crash me").await;

    let receives = dead_letter(&emulator, &queue, "crash me").await;
    assert_eq!(
        receives, 3,
        "received maxReceiveCount times, moved, then received here"
    );
    let stats = source.stats();
    assert_eq!(stats.failed_invocations, 2, "{stats:#?}");
    assert_eq!(stats.deleted, 0);
    assert!(
        stats.errors.iter().all(|e| e.contains("SIGABRT")),
        "{stats:#?}"
    );
    assert!(function.starts() >= 2);
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}
