//! A Lambda function for the harness's own tests. It echoes what it gets and, as the events say,
//! fails, sleeps or crashes:
//!
//! - an SQS event (`aws_lambda_events`' `SqsEvent`): prints each record, reports the records whose
//!   body contains "fail" in `batchItemFailures`, aborts the process when a body contains "crash",
//!   and fails the invocation when a record lacks a field Lambda always sends;
//! - an S3 or EventBridge event: answers what it read from it through `aws_lambda_events`;
//! - anything else: answers `{"echo": <payload>, ...}` with its context and the environment
//!   variables named in `"env"`; `"fail"` makes it return an error with that message,
//!   `"sleep_ms"` makes it sleep first, `"crash"` makes it abort.

use std::time::Duration;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    println!("echo function: ready");
    lambda_runtime::run(service_fn(handle)).await
}

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, context) = event.into_parts();
    let source = payload
        .pointer("/Records/0/eventSource")
        .and_then(Value::as_str)
        .map(str::to_owned);
    match source.as_deref() {
        Some("aws:sqs") => sqs(serde_json::from_value(payload)?),
        Some("aws:s3") => s3(serde_json::from_value(payload)?),
        _ if payload.get("detail-type").is_some() => schedule(serde_json::from_value(payload)?),
        _ => plain(payload, context).await,
    }
}

fn sqs(event: SqsEvent) -> Result<Value, Error> {
    let mut response = SqsBatchResponse::default();
    for record in &event.records {
        check(record)?;
        let id = record.message_id.clone().unwrap_or_default();
        let body = record.body.as_deref().unwrap_or_default();
        let receives = &record.attributes["ApproximateReceiveCount"];
        println!("echo function: message {id} (receive {receives}): {body}");
        if body.contains("crash") {
            println!("echo function: crashing on message {id}");
            std::process::abort();
        }
        if body.contains("fail") {
            response.add_failure(id);
        }
    }
    Ok(serde_json::to_value(response)?)
}

/// Fails on a record that lacks something Lambda's SQS records always carry.
fn check(record: &SqsMessage) -> Result<(), Error> {
    let present = [
        ("messageId", record.message_id.is_some()),
        ("receiptHandle", record.receipt_handle.is_some()),
        ("body", record.body.is_some()),
        ("md5OfBody", record.md5_of_body.is_some()),
        ("awsRegion", record.aws_region.is_some()),
        (
            "eventSourceARN",
            record
                .event_source_arn
                .as_deref()
                .is_some_and(|arn| arn.starts_with("arn:aws:sqs:")),
        ),
        (
            "attributes.ApproximateReceiveCount",
            record.attributes.contains_key("ApproximateReceiveCount"),
        ),
        (
            "attributes.SentTimestamp",
            record.attributes.contains_key("SentTimestamp"),
        ),
    ];
    match present.iter().find(|(_, present)| !present) {
        Some((field, _)) => Err(format!("an SQS record without {field}").into()),
        None => Ok(()),
    }
}

fn s3(event: S3Event) -> Result<Value, Error> {
    let objects: Vec<Value> = event
        .records
        .iter()
        .map(|record| {
            json!({
                "event": record.event_name,
                "bucket": record.s3.bucket.name,
                "key": record.s3.object.key,
                "size": record.s3.object.size,
                "etag": record.s3.object.e_tag,
                "version": record.s3.object.version_id,
            })
        })
        .collect();
    Ok(json!({ "s3": objects }))
}

fn schedule(event: EventBridgeEvent) -> Result<Value, Error> {
    Ok(json!({
        "schedule": {
            "detailType": event.detail_type,
            "source": event.source,
            "time": event.time.map(|time| time.to_rfc3339()),
            "resources": event.resources,
        }
    }))
}

async fn plain(payload: Value, context: lambda_runtime::Context) -> Result<Value, Error> {
    if let Some(ms) = payload.get("sleep_ms").and_then(Value::as_u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if payload.get("crash").is_some() {
        println!("echo function: crashing as asked");
        std::process::abort();
    }
    if let Some(message) = payload.get("fail").and_then(Value::as_str) {
        return Err(message.into());
    }
    let env: serde_json::Map<String, Value> = payload
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|name| (name.to_owned(), json!(std::env::var(name).ok())))
        .collect();
    Ok(json!({
        "echo": payload,
        "requestId": context.request_id,
        "deadlineMs": context.deadline,
        "invokedFunctionArn": context.invoked_function_arn,
        "traceId": context.xray_trace_id,
        "function": context.env_config.function_name,
        "memory": context.env_config.memory,
        "env": env,
        "pid": std::process::id(),
    }))
}
