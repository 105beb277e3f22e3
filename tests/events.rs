//! What invokes the functions: an SQS event source mapping that polls a queue in the background,
//! and builders of the S3 and EventBridge events that `s3-trigger` and `schedule` receive, all in
//! the shape of the `aws_lambda_events` crate.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cutover_aws::sqs;
use cutover_aws::sqs::error::DisplayErrorContext;
use cutover_aws::sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

use crate::lambda::{ACCOUNT, Function, REGION, random_u64};

/// How many error messages [`SqsStats::errors`] keeps (the latest).
const KEPT_ERRORS: usize = 20;

/// An SQS event source mapping: a background task that receives batches from a queue, invokes
/// the function with each, and deletes what the function handled, as Lambda does with
/// `ReportBatchItemFailures`:
///
/// - the answer's `batchItemFailures[].itemIdentifier` messages stay in the queue, the others
///   are deleted;
/// - an answer that names an unknown or empty identifier, or that is not JSON, fails the batch;
/// - a failed invocation (error, crash, timeout) deletes nothing.
///
/// Messages that stay come back after their visibility timeout; a queue with a `RedrivePolicy`
/// moves a message to its dead-letter queue once it has been received `maxReceiveCount` times
/// (the emulator does so on the next receive). Dropping the event source stops it.
#[derive(Debug)]
pub struct EventSource {
    queue_url: String,
    stats: Arc<Mutex<SqsStats>>,
    task: JoinHandle<()>,
}

/// What an [`EventSource`] has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqsStats {
    /// Messages received (a message received again counts again).
    pub received: u64,
    /// Invocations started (one per non-empty batch).
    pub invocations: u64,
    /// Invocations that failed: a function error, a crash or a timeout.
    pub failed_invocations: u64,
    /// Records the function reported in `batchItemFailures`.
    pub item_failures: u64,
    /// Messages deleted from the queue.
    pub deleted: u64,
    /// The latest errors: failed invocations, and SQS calls that failed.
    pub errors: Vec<String>,
}

impl EventSource {
    /// Starts polling `queue_url` for `function` with batches of up to `batch_size` (1 to 10)
    /// messages, with `ReceiveMessage` long polls of 1 s. Each invocation gets the function's
    /// [`Function::timeout`]. Call it from the Tokio runtime that made `sqs`: the task runs on it.
    pub fn sqs(
        function: Arc<Function>,
        queue_url: impl Into<String>,
        sqs: sqs::Client,
        batch_size: i32,
    ) -> EventSource {
        assert!(
            (1..=10).contains(&batch_size),
            "an SQS batch holds 1 to 10 messages, not {batch_size}"
        );
        let queue_url = queue_url.into();
        let stats = Arc::new(Mutex::new(SqsStats::default()));
        let task = tokio::spawn(poll(
            function,
            sqs,
            queue_url.clone(),
            batch_size,
            stats.clone(),
        ));
        EventSource {
            queue_url,
            stats,
            task,
        }
    }

    /// The queue it polls.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// A snapshot of what it has done.
    pub fn stats(&self) -> SqsStats {
        self.stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Waits until `done` holds for the stats, and returns them; panics after `timeout`, saying
    /// `what` was awaited and showing the stats.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&SqsStats) -> bool,
    ) -> SqsStats {
        let start = Instant::now();
        loop {
            let stats = self.stats();
            if done(&stats) {
                return stats;
            }
            assert!(
                start.elapsed() < timeout,
                "waited {timeout:?} for {what}, in vain: the event source of {} has {stats:#?}",
                self.queue_url
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops polling. An invocation in progress is abandoned; its messages stay in the queue.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for EventSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The event source's loop.
async fn poll(
    function: Arc<Function>,
    sqs: sqs::Client,
    queue_url: String,
    batch_size: i32,
    stats: Arc<Mutex<SqsStats>>,
) {
    let record = |update: &dyn Fn(&mut SqsStats)| {
        update(&mut stats.lock().unwrap_or_else(|p| p.into_inner()));
    };
    let note_error = |error: String| {
        record(&|stats| {
            stats.errors.push(error.clone());
            let excess = stats.errors.len().saturating_sub(KEPT_ERRORS);
            stats.errors.drain(..excess);
        });
    };
    let queue_arn = queue_arn(&sqs, &queue_url).await;
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(batch_size)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await;
        let messages = match received {
            Ok(output) => output.messages.unwrap_or_default(),
            Err(error) => {
                note_error(format!(
                    "ReceiveMessage on {queue_url}: {}",
                    DisplayErrorContext(&error)
                ));
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        record(&|stats| {
            stats.received += messages.len() as u64;
            stats.invocations += 1;
        });

        let event = sqs_event(&queue_arn, &messages);
        let answer = match function.invoke(event, function.timeout()).await {
            Ok(answer) => answer,
            Err(error) => {
                record(&|stats| stats.failed_invocations += 1);
                note_error(error.to_string());
                continue;
            }
        };
        let failed = match batch_item_failures(&answer, &messages) {
            Ok(failed) => failed,
            Err(reason) => {
                // Lambda treats a malformed partial batch response as a failed batch.
                record(&|stats| stats.failed_invocations += 1);
                note_error(format!(
                    "{} answered a malformed batch response ({reason}): {answer}",
                    function.name()
                ));
                continue;
            }
        };
        record(&|stats| stats.item_failures += failed.len() as u64);

        let done: Vec<&Message> = messages
            .iter()
            .filter(|message| !failed.contains(message.message_id().unwrap_or_default()))
            .collect();
        for chunk in done.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(index, message)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(index.to_string())
                        .receipt_handle(message.receipt_handle().unwrap_or_default())
                        .build()
                        .expect("id and receipt handle are set")
                })
                .collect();
            match sqs
                .delete_message_batch()
                .queue_url(&queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(output) => {
                    record(&|stats| stats.deleted += output.successful.len() as u64);
                    for failure in &output.failed {
                        note_error(format!(
                            "DeleteMessageBatch on {queue_url}: entry {}: {} {}",
                            failure.id,
                            failure.code,
                            failure.message.as_deref().unwrap_or_default()
                        ));
                    }
                }
                Err(error) => note_error(format!(
                    "DeleteMessageBatch on {queue_url}: {}",
                    DisplayErrorContext(&error)
                )),
            }
        }
    }
}

/// The queue's ARN, asked of SQS (made up from the URL if SQS does not say).
async fn queue_arn(sqs: &sqs::Client, queue_url: &str) -> String {
    let asked = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await;
    asked
        .ok()
        .and_then(|output| {
            output
                .attributes
                .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn).cloned())
        })
        .unwrap_or_else(|| {
            let name = queue_url.rsplit('/').next().unwrap_or(queue_url);
            format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")
        })
}

/// The message ids of an SQS partial batch response, or why it is malformed.
fn batch_item_failures(answer: &Value, messages: &[Message]) -> Result<HashSet<String>, String> {
    let failures = match answer {
        Value::Null => return Ok(HashSet::new()),
        Value::Object(fields) => match fields.get("batchItemFailures") {
            None | Some(Value::Null) => return Ok(HashSet::new()),
            Some(Value::Array(failures)) => failures,
            Some(_) => return Err("batchItemFailures is not a list".to_owned()),
        },
        _ => return Ok(HashSet::new()),
    };
    let ids: HashSet<&str> = messages.iter().filter_map(Message::message_id).collect();
    failures
        .iter()
        .map(|failure| match failure.get("itemIdentifier") {
            Some(Value::String(id)) if ids.contains(id.as_str()) => Ok(id.clone()),
            Some(Value::String(id)) if id.is_empty() => Err("an empty itemIdentifier".to_owned()),
            Some(Value::String(id)) => Err(format!("{id} is not a message of the batch")),
            _ => Err(format!("{failure} has no itemIdentifier string")),
        })
        .collect()
}

/// The Lambda event for SQS `messages` received from the queue `queue_arn`
/// (`aws_lambda_events::sqs::SqsEvent`).
pub fn sqs_event(queue_arn: &str, messages: &[Message]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|message| {
            let attributes: Map<String, Value> = message
                .attributes()
                .into_iter()
                .flatten()
                .map(|(name, value)| (name.as_str().to_owned(), Value::String(value.clone())))
                .collect();
            let message_attributes: Map<String, Value> = message
                .message_attributes()
                .into_iter()
                .flatten()
                .map(|(name, value)| {
                    let binary = |blob: &sqs::primitives::Blob| base64(blob.as_ref());
                    let attribute = json!({
                        "stringValue": value.string_value(),
                        "binaryValue": value.binary_value().map(binary),
                        "stringListValues": value.string_list_values(),
                        "binaryListValues": value
                            .binary_list_values()
                            .iter()
                            .map(binary)
                            .collect::<Vec<_>>(),
                        "dataType": value.data_type(),
                    });
                    (name.clone(), attribute)
                })
                .collect();
            json!({
                "messageId": message.message_id(),
                "receiptHandle": message.receipt_handle(),
                "body": message.body(),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": message.md5_of_body(),
                "md5OfMessageAttributes": message.md5_of_message_attributes(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            })
        })
        .collect();
    json!({ "Records": records })
}

/// The S3 notification of an object created by a `PutObject` (`aws_lambda_events::s3::S3Event`).
/// `key` is the object's key as is (the event carries it URL-encoded, as S3 does); `etag` may
/// keep the quotes S3 puts around it in `HeadObject`; `version_id` is for versioned buckets.
pub fn s3_object_created_event(
    bucket: &str,
    key: &str,
    size: u64,
    etag: &str,
    version_id: Option<&str>,
) -> Value {
    let mut object = json!({
        "key": s3_event_key(key),
        "size": size,
        "eTag": etag.trim_matches('"'),
        "sequencer": format!("{:016X}", random_u64()),
    });
    if let Some(version_id) = version_id {
        object["versionId"] = json!(version_id);
    }
    json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": REGION,
            "eventTime": rfc3339(SystemTime::now(), true),
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {
                "x-amz-request-id": format!("{:016X}", random_u64()),
                "x-amz-id-2": format!("{:016x}{:016x}", random_u64(), random_u64()),
            },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "cutover-revisions",
                "bucket": {
                    "name": bucket,
                    "ownerIdentity": {"principalId": "AIDAEXAMPLE"},
                    "arn": format!("arn:aws:s3:::{bucket}"),
                },
                "object": object,
            },
        }]
    })
}

/// The EventBridge event a schedule rule named `rule` sends at `time`
/// (`aws_lambda_events::eventbridge::EventBridgeEvent`).
pub fn scheduled_event(rule: &str, time: SystemTime) -> Value {
    let (a, b) = (random_u64(), random_u64());
    json!({
        "version": "0",
        "id": format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        ),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": rfc3339(time, false),
        "region": REGION,
        "resources": [format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule}")],
        "detail": {},
    })
}

/// An object key as S3 notifications carry it: URL-encoded, spaces as `+`, slashes kept.
fn s3_event_key(key: &str) -> String {
    let mut encoded = String::with_capacity(key.len());
    for byte in key.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                encoded.push(byte as char)
            }
            b' ' => encoded.push('+'),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | ((b as u32) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `time` as `YYYY-MM-DDTHH:MM:SS[.mmm]Z`.
fn rfc3339(time: SystemTime, millis: bool) -> String {
    let (year, month, day, hour, minute, second, milli) = civil(time);
    let fraction = if millis {
        format!(".{milli:03}")
    } else {
        String::new()
    };
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}Z")
}

/// The UTC calendar date and time of `time`: year, month, day, hour, minute, second, millisecond.
pub(crate) fn civil(time: SystemTime) -> (i64, u32, u32, u32, u32, u32, u32) {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs() as i64;
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (of_day / 3600) as u32,
        (of_day % 3600 / 60) as u32,
        (of_day % 60) as u32,
        since.subsec_millis(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_are_utc_calendar_values() {
        let at = |seconds: u64| rfc3339(UNIX_EPOCH + Duration::from_millis(seconds), true);
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
        assert_eq!(at(1_735_689_600_123), "2025-01-01T00:00:00.123Z");
    }

    #[test]
    fn base64_pads_like_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"1100"), "MTEwMA==");
    }

    #[test]
    fn s3_keys_are_url_encoded_as_s3_notifications_do() {
        assert_eq!(
            s3_event_key("revisions/my app v1.zip"),
            "revisions/my+app+v1.zip"
        );
        assert_eq!(s3_event_key("a+b=c.zip"), "a%2Bb%3Dc.zip");
    }

    #[test]
    fn the_s3_event_reads_as_aws_lambda_events_reads_it() {
        use aws_lambda_events::event::s3::S3Event;
        let event =
            s3_object_created_event("revisions", "app/v 1.zip", 42, "\"0123abcd\"", Some("v7"));
        let event: S3Event = serde_json::from_value(event).expect("an S3Event");
        let record = &event.records[0];
        assert_eq!(record.event_source.as_deref(), Some("aws:s3"));
        assert_eq!(record.event_name.as_deref(), Some("ObjectCreated:Put"));
        assert!(record.event_time.timestamp() > 1_700_000_000);
        assert_eq!(record.s3.bucket.name.as_deref(), Some("revisions"));
        assert_eq!(record.s3.object.key.as_deref(), Some("app/v+1.zip"));
        assert_eq!(record.s3.object.size, Some(42));
        assert_eq!(record.s3.object.e_tag.as_deref(), Some("0123abcd"));
        assert_eq!(record.s3.object.version_id.as_deref(), Some("v7"));
    }

    #[test]
    fn the_scheduled_event_reads_as_aws_lambda_events_reads_it() {
        use aws_lambda_events::event::eventbridge::EventBridgeEvent;
        let time = UNIX_EPOCH + Duration::from_secs(1_735_689_660);
        let event: EventBridgeEvent =
            serde_json::from_value(scheduled_event("watchdog", time)).expect("an EventBridgeEvent");
        assert_eq!(event.detail_type, "Scheduled Event");
        assert_eq!(event.source, "aws.events");
        assert_eq!(event.time.map(|t| t.timestamp()), Some(1_735_689_660));
        assert_eq!(
            event.resources,
            Some(vec![
                "arn:aws:events:us-east-1:123456789012:rule/watchdog".to_owned()
            ])
        );
    }

    #[test]
    fn a_partial_batch_response_names_messages_of_the_batch() {
        let messages = [
            Message::builder().message_id("m1").build(),
            Message::builder().message_id("m2").build(),
        ];
        let failures = |answer: Value| batch_item_failures(&answer, &messages);
        assert_eq!(failures(Value::Null), Ok(HashSet::new()));
        assert_eq!(failures(json!({})), Ok(HashSet::new()));
        assert_eq!(
            failures(json!({"batchItemFailures": []})),
            Ok(HashSet::new())
        );
        assert_eq!(
            failures(json!({"batchItemFailures": [{"itemIdentifier": "m2"}]})),
            Ok(HashSet::from(["m2".to_owned()]))
        );
        assert!(failures(json!({"batchItemFailures": [{"itemIdentifier": "m3"}]})).is_err());
        assert!(failures(json!({"batchItemFailures": [{"itemIdentifier": ""}]})).is_err());
        assert!(failures(json!({"batchItemFailures": [{"id": "m1"}]})).is_err());
    }
}
