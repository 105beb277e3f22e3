//! What every cloud function shares: JSON logs, the ports built once per process, and the
//! handlers around the engine for SQS step messages, S3 uploads and the watchdog's schedule.
//! Each binary in `functions/` calls one of the `main_*` functions here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use cutover_api::{Api, ApiError};
use cutover_core::DeploymentId;
use cutover_core::machine::{CreateDeployment, Event};
use cutover_core::model::{
    ComputePlatform, DeploymentCreator, ErrorCode, ErrorInformation, RevisionLocation, S3Location,
};
use cutover_engine::{Clock, Engine, EngineError, Ports, Step, StepQueue, Work};
pub use lambda_runtime::Error;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::api::KeySource;
use crate::ports::{AwsPorts, Settings};
use crate::queue::SqsQueue;
use crate::queue::StepFunction;
use crate::revisions::bundle_type_of;
use crate::store::DynamoStore;

/// A step that arrives this much before its time is carried out rather than sent again.
const EARLY_ENOUGH: Duration = Duration::from_secs(1);

/// How long a deployment may go without a change before the watchdog sends its last steps
/// again (`CUTOVER_WATCHDOG_AFTER_SECONDS`).
const WATCHDOG_AFTER: Duration = Duration::from_secs(300);

/// JSON logs on stdout, at `RUST_LOG`'s level (info by default). Each line carries the span
/// it was written in, so a step's lines carry its deployment id.
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .without_time()
        .init();
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn engine() -> Result<Arc<Engine<AwsPorts>>, Error> {
    let ports = AwsPorts::from_env().await?;
    Ok(Arc::new(Engine::new(ports)))
}

// ----- the step functions --------------------------------------------------------------------

/// The `main` of a step function: each SQS record is one step for the engine.
pub fn main_steps(function: StepFunction) -> Result<(), Error> {
    init_logs();
    runtime()?.block_on(async {
        let engine = engine().await?;
        let alarms = Arc::new(AlarmWatch::default());
        tracing::info!(function = function.name(), "ready");
        lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
            let engine = engine.clone();
            let alarms = alarms.clone();
            async move { Ok::<_, Error>(handle_steps(&engine, &alarms, event.payload).await) }
        }))
        .await
    })
}

/// Which deployments watch alarms, as far as this process knows.
#[derive(Debug, Default)]
struct AlarmWatch(Mutex<HashMap<DeploymentId, bool>>);

impl AlarmWatch {
    fn get(&self, id: &DeploymentId) -> Option<bool> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied()
    }

    fn set(&self, id: &DeploymentId, watches: bool) {
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() > 1024 {
            known.clear();
        }
        known.insert(id.clone(), watches);
    }
}

/// Carries out every record's step; the records that should be delivered again are reported
/// as failures, so that SQS returns only those to the queue.
async fn handle_steps<P: Ports>(
    engine: &Engine<P>,
    alarms: &AlarmWatch,
    event: SqsEvent,
) -> SqsBatchResponse {
    let results = futures_util::future::join_all(
        event
            .records
            .iter()
            .map(|record| handle_record(engine, alarms, record)),
    )
    .await;
    let mut response = SqsBatchResponse::default();
    for (record, done) in event.records.iter().zip(results) {
        if !done {
            response.add_failure(record.message_id.clone().unwrap_or_default());
        }
    }
    response
}

/// True when the record is done with: carried out, or not worth trying again.
async fn handle_record<P: Ports>(
    engine: &Engine<P>,
    alarms: &AlarmWatch,
    record: &SqsMessage,
) -> bool {
    let body = record.body.as_deref().unwrap_or("");
    let step: Step = match serde_json::from_str(body) {
        Ok(step) => step,
        Err(e) => {
            // Left to fail until the queue moves it to its dead-letter queue, where it can be
            // read; it never holds up other messages.
            tracing::error!(
                message_id = record.message_id.as_deref().unwrap_or(""),
                "the message is not a cutover step ({e}); it goes to the dead-letter queue"
            );
            return false;
        }
    };
    let span = tracing::info_span!("step", deployment_id = %step.deployment_id);
    carry_out(engine, alarms, step).instrument(span).await
}

async fn carry_out<P: Ports>(engine: &Engine<P>, alarms: &AlarmWatch, step: Step) -> bool {
    let now = engine.ports().clock().now();
    if let Some(at) = step.not_before
        && at > now + EARLY_ENOUGH
    {
        // SQS could not hold the step long enough: send it on for the rest of its wait.
        return match engine.ports().queue().send(vec![step]).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("a waiting step could not be sent on: {e}");
                false
            }
        };
    }
    let id = step.deployment_id.clone();
    if matches!(step.work, Work::Command(_)) && alarms.get(&id) != Some(false) {
        match engine.check_alarms(&id).await {
            Ok(d) => {
                let watched = &d.options.alarm_configuration;
                alarms.set(
                    &id,
                    watched.enabled && !watched.alarms.is_empty() && !d.is_finished(),
                );
            }
            Err(EngineError::DeploymentNotFound(_)) => {}
            Err(e) => tracing::warn!("alarms not checked: {e}"),
        }
    }
    let what = describe(&step);
    match engine.perform(step).await {
        Ok(()) => {
            tracing::info!("{what}: done");
            true
        }
        Err(EngineError::DeploymentNotFound(id)) => {
            tracing::warn!("{what}: deployment {id} does not exist; the step is dropped");
            true
        }
        Err(e) if e.is_retryable() => {
            tracing::warn!("{what}: {e}; it will be tried again");
            false
        }
        // Trying again will not help: the deployment fails, saying why.
        Err(e) => {
            tracing::error!("{what}: {e}; the deployment fails");
            let failed = Event::StepFailed {
                error: failure(&what, &e),
            };
            match engine.deliver(&id, vec![failed]).await {
                Ok(_) => true,
                Err(e) => {
                    tracing::error!("the failure could not be recorded: {e}");
                    false
                }
            }
        }
    }
}

/// What a deployment whose step failed for good records as its error: a refusal by AWS's
/// access control is IAM_ROLE_PERMISSIONS, anything else INTERNAL_ERROR.
fn failure(what: &str, e: &EngineError) -> ErrorInformation {
    let message = format!("{what} failed and cannot succeed by trying again: {e}");
    let denied = ["AccessDenied", "UnauthorizedOperation", "not authorized"]
        .iter()
        .any(|m| message.contains(m));
    let code = if denied {
        ErrorCode::IamRolePermissions
    } else {
        ErrorCode::InternalError
    };
    ErrorInformation::new(code, message)
}

fn describe(step: &Step) -> String {
    match &step.work {
        Work::Command(c) => format!("{c:?}")
            .split([' ', '{', '('])
            .next()
            .unwrap_or("")
            .to_owned(),
        Work::Event(e) => format!("{:?}", e.kind()),
        Work::PollHost {
            target, attempt, ..
        } => format!("PollHost {target} #{attempt}"),
    }
}

// ----- api -------------------------------------------------------------------------------------

/// The `main` of `api`: CodeDeploy's API behind a Lambda function URL, over the state table.
pub fn main_api() -> Result<(), Error> {
    init_logs();
    runtime()?.block_on(async {
        let config = crate::config::load().await;
        let settings = Settings::from_env()?;
        let registry = Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&config),
            settings.table.clone(),
            SqsQueue::new(aws_sdk_sqs::Client::new(&config), settings.queues.clone()),
        ));
        let engine = Arc::new(Engine::new(AwsPorts::new(&config, settings)));
        let keys = Arc::new(KeySource::from_env(aws_sdk_ssm::Client::new(&config))?);
        tracing::info!(function = "api", "ready");
        lambda_runtime::run(service_fn(
            move |event: LambdaEvent<LambdaFunctionUrlRequest>| {
                let (registry, engine, keys) = (registry.clone(), engine.clone(), keys.clone());
                async move {
                    let request_id = event.context.request_id.clone();
                    let answer = match crate::api::request_of(&event.payload) {
                        Ok(request) => match keys.keys().await {
                            Ok(keys) => {
                                Api::new(registry, engine, keys)
                                    .handle(&request, std::time::SystemTime::now())
                                    .await
                            }
                            Err(e) => {
                                tracing::error!("{e}");
                                ApiError::new(
                                    cutover_api::ErrorKind::Internal,
                                    "the API's keys cannot be read; see the api function's logs",
                                )
                                .into()
                            }
                        },
                        Err(answer) => answer,
                    };
                    if answer.status >= 500 {
                        tracing::error!(
                            status = answer.status,
                            "{}",
                            String::from_utf8_lossy(&answer.body)
                        );
                    }
                    Ok::<_, Error>(crate::api::response_of(answer, &request_id))
                }
            },
        ))
        .await
    })
}

// ----- s3-trigger ------------------------------------------------------------------------------

/// The `main` of `s3-trigger`: an uploaded object starts a deployment in every group that
/// watches its bucket and key prefix.
pub fn main_s3_trigger() -> Result<(), Error> {
    init_logs();
    runtime()?.block_on(async {
        let engine = engine().await?;
        lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| {
            let engine = engine.clone();
            async move { on_upload(&engine, event.payload).await }
        }))
        .await
    })
}

async fn on_upload(engine: &Engine<AwsPorts>, event: S3Event) -> Result<Value, Error> {
    let mut started = Vec::new();
    for record in event.records {
        let name = record.event_name.as_deref().unwrap_or("");
        if !name.starts_with("ObjectCreated") {
            continue;
        }
        let object = record.s3.object;
        let (Some(bucket), Some(raw_key)) = (record.s3.bucket.name, &object.key) else {
            tracing::warn!("an S3 record without a bucket or key is ignored");
            continue;
        };
        let key = decode_key(raw_key);
        let store = engine.ports().store();
        for group in store.groups_for_upload(&bucket, &key).await? {
            let (app, name) = (&group.application_name, &group.deployment_group_name);
            let config_name = group.deployment_config_name.clone();
            let Some(config) = store.config(&config_name).await? else {
                tracing::error!(
                    "group {app}/{name} names deployment configuration {config_name}, which does not exist; upload of s3://{bucket}/{key} not deployed"
                );
                continue;
            };
            // The same upload, delivered twice, is the same deployment.
            let id = upload_id(
                &bucket,
                &key,
                &object.version_id,
                &object.e_tag,
                &object.sequencer,
                app,
                name,
            );
            let revision = RevisionLocation::S3(S3Location {
                bucket: bucket.clone(),
                key: key.clone(),
                bundle_type: bundle_type_of(&key),
                version: object
                    .version_id
                    .clone()
                    .filter(|v| !v.is_empty() && v != "null"),
                e_tag: object.e_tag.clone().filter(|e| !e.is_empty()),
            });
            let mut request = CreateDeployment::new(id, group.clone(), config, revision);
            request.creator = DeploymentCreator::User;
            request.description = Some(format!("upload of s3://{bucket}/{key}"));
            if group.compute_platform == ComputePlatform::Lambda {
                request.bake_time_in_minutes =
                    cutover_api::ops::tags::group_bake_time(store, app, name).await?;
            }
            let d = engine.create(request).await?;
            tracing::info!(deployment_id = %d.deployment_id, "s3://{bucket}/{key} starts a deployment to {app}/{name}");
            started.push(d.deployment_id.to_string());
        }
    }
    Ok(serde_json::json!({ "deploymentIds": started }))
}

/// S3 event keys are URL-encoded, with `+` for spaces.
fn decode_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

fn upload_id(
    bucket: &str,
    key: &str,
    version: &Option<String>,
    etag: &Option<String>,
    sequencer: &Option<String>,
    app: &str,
    group: &str,
) -> DeploymentId {
    let mut hash = Sha256::new();
    for part in [
        bucket,
        key,
        version.as_deref().unwrap_or(""),
        etag.as_deref().unwrap_or(""),
        sequencer.as_deref().unwrap_or(""),
        app,
        group,
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let mut entropy = [0u8; 8];
    entropy.copy_from_slice(&digest[..8]);
    DeploymentId::from_entropy(u64::from_be_bytes(entropy))
}

// ----- schedule --------------------------------------------------------------------------------

/// The `main` of `schedule`, the watchdog: every minute it checks the alarms of unfinished
/// deployments and sends again the last steps of any that has not moved for a while, so that a
/// lost message never strands a deployment.
pub fn main_schedule() -> Result<(), Error> {
    init_logs();
    let after = match std::env::var("CUTOVER_WATCHDOG_AFTER_SECONDS") {
        Ok(v) if !v.is_empty() => Duration::from_secs(v.parse().map_err(|_| {
            format!("CUTOVER_WATCHDOG_AFTER_SECONDS must be a number of seconds, not '{v}'")
        })?),
        _ => WATCHDOG_AFTER,
    };
    runtime()?.block_on(async {
        let engine = engine().await?;
        lambda_runtime::run(service_fn(
            move |_: LambdaEvent<EventBridgeEvent<Value>>| {
                let engine = engine.clone();
                async move { watch(&engine, after).await }
            },
        ))
        .await
    })
}

async fn watch(engine: &Engine<AwsPorts>, after: Duration) -> Result<Value, Error> {
    let store = engine.ports().store();
    let mut redriven = Vec::new();
    let active = store.active().await?;
    for id in &active {
        let span = tracing::info_span!("watchdog", deployment_id = %id);
        async {
            if let Err(e) = engine.check_alarms(id).await {
                tracing::warn!("alarms not checked: {e}");
            }
            let now = engine.ports().clock().now();
            match store.overdue(id, now, after).await {
                Ok(Some(steps)) => {
                    tracing::warn!(
                        steps = steps.len(),
                        "no progress for {after:?}: its last steps are sent again"
                    );
                    match engine.ports().queue().send(steps).await {
                        Ok(()) => redriven.push(id.to_string()),
                        Err(e) => tracing::error!("its steps could not be sent again: {e}"),
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("not checked: {e}"),
            }
        }
        .instrument(span)
        .await;
    }
    Ok(serde_json::json!({ "active": active.len(), "redriven": redriven }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_keys_are_decoded() {
        assert_eq!(
            decode_key("releases/my+app%2Bv1.zip"),
            "releases/my app+v1.zip"
        );
    }

    #[test]
    fn the_same_upload_is_the_same_deployment_and_another_is_not() {
        let v1 = Some("v1".to_owned());
        let a = upload_id("b", "k.zip", &v1, &None, &None, "App", "G");
        assert_eq!(a, upload_id("b", "k.zip", &v1, &None, &None, "App", "G"));
        assert_ne!(
            a,
            upload_id("b", "k.zip", &Some("v2".into()), &None, &None, "App", "G")
        );
        assert_ne!(
            a,
            upload_id("b", "k.zip", &v1, &None, &None, "App", "Other")
        );
    }
}
