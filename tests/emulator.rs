//! The AWS emulator the cloud tests share: where it is (`CUTOVER_EMULATOR_URL`), an SDK
//! configuration pointed at it, the environment that points a function at it, and unique names,
//! since tests run in parallel against one emulator that is never reset.

use std::sync::atomic::{AtomicU64, Ordering};

use cutover_aws::aws_config::{Region, SdkConfig};
use cutover_aws::sqs;
use cutover_aws::sqs::config::{Credentials, SharedCredentialsProvider};
use cutover_aws::sqs::types::QueueAttributeName;

use crate::lambda::REGION;

/// The variable that says where the emulator listens.
pub const EMULATOR_URL: &str = "CUTOVER_EMULATOR_URL";

/// The emulator's dummy credentials.
pub const ACCESS_KEY_ID: &str = "testing";
pub const SECRET_ACCESS_KEY: &str = "testing";

/// The emulator, reached through the SDK.
#[derive(Debug, Clone)]
pub struct Emulator {
    url: String,
    config: SdkConfig,
}

/// A queue and its dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    pub url: String,
    pub arn: String,
    pub dead_letter_url: String,
    pub dead_letter_arn: String,
}

impl Emulator {
    /// The emulator's URL, from `CUTOVER_EMULATOR_URL`. Panics, saying how to start it, when it
    /// is not set, and when it is not on the loopback network.
    pub fn url() -> String {
        let url = std::env::var(EMULATOR_URL).unwrap_or_default();
        assert!(
            !url.is_empty(),
            "{EMULATOR_URL} is not set, and this test needs the AWS emulator: run the tests with \
             ./scripts/test, or start the emulator with `scripts/emulator start` and export the \
             {EMULATOR_URL} it prints"
        );
        let host = url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split(['/', ':']).next())
            .unwrap_or_default();
        assert!(
            host == "localhost" || host.starts_with("127."),
            "{EMULATOR_URL}={url} is not on the loopback network: the tests only talk to an \
             emulator on 127.0.0.0/8"
        );
        url
    }

    /// Connects to the emulator: region us-east-1, the dummy credentials, every client's endpoint
    /// at the emulator.
    pub async fn connect() -> Emulator {
        let url = Emulator::url();
        // The shared configuration resolves a region on load and, when neither the environment
        // nor a profile gives one, asks the EC2 instance metadata service: never let it.
        let region_set = ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .any(|name| std::env::var(name).is_ok_and(|value| !value.is_empty()));
        let metadata_disabled = std::env::var("AWS_EC2_METADATA_DISABLED")
            .is_ok_and(|value| value.eq_ignore_ascii_case("true"));
        assert!(
            region_set || metadata_disabled,
            "the emulator tests need AWS_EC2_METADATA_DISABLED=true or AWS_REGION in their \
             environment (export AWS_EC2_METADATA_DISABLED=true AWS_REGION=us-east-1): without \
             either, loading the SDK configuration asks the EC2 instance metadata service for a \
             region"
        );
        let config = cutover_aws::config::load()
            .await
            .to_builder()
            .endpoint_url(&url)
            .region(Region::new(REGION))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                ACCESS_KEY_ID,
                SECRET_ACCESS_KEY,
                None,
                None,
                "cutover-tests",
            )))
            .build();
        Emulator { url, config }
    }

    /// The emulator's URL.
    pub fn endpoint(&self) -> &str {
        &self.url
    }

    /// The SDK configuration pointed at the emulator.
    pub fn config(&self) -> &SdkConfig {
        &self.config
    }

    /// An SQS client of the emulator.
    pub fn sqs(&self) -> sqs::Client {
        sqs::Client::new(&self.config)
    }

    /// The environment that points a function process at the emulator.
    pub fn function_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.url.as_str()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
            ("AWS_REGION", REGION),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
    }

    /// Creates the standard queue `name` and its dead-letter queue `name-dlq`: a message moves
    /// to the dead-letter queue once it has been received `max_receive_count` times; a received
    /// message is hidden for `visibility_timeout_seconds`.
    pub async fn queue_with_dead_letter_queue(
        &self,
        name: &str,
        max_receive_count: u32,
        visibility_timeout_seconds: u32,
    ) -> Queue {
        let sqs = self.sqs();
        let dead_letter_url = self.create_queue(&sqs, &format!("{name}-dlq"), &[]).await;
        let dead_letter_arn = self.queue_arn(&dead_letter_url).await;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dead_letter_arn,
            "maxReceiveCount": max_receive_count.to_string(),
        })
        .to_string();
        let visibility = visibility_timeout_seconds.to_string();
        let url = self
            .create_queue(
                &sqs,
                name,
                &[
                    (QueueAttributeName::RedrivePolicy, redrive.as_str()),
                    (QueueAttributeName::VisibilityTimeout, visibility.as_str()),
                ],
            )
            .await;
        let arn = self.queue_arn(&url).await;
        Queue {
            url,
            arn,
            dead_letter_url,
            dead_letter_arn,
        }
    }

    async fn create_queue(
        &self,
        sqs: &sqs::Client,
        name: &str,
        attributes: &[(QueueAttributeName, &str)],
    ) -> String {
        let mut request = sqs.create_queue().queue_name(name);
        for (attribute, value) in attributes {
            request = request.attributes(attribute.clone(), *value);
        }
        request
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateQueue {name} on the emulator: {}", display(&e)))
            .queue_url
            .expect("CreateQueue answers with the queue's URL")
    }

    /// The ARN of the queue at `url`.
    pub async fn queue_arn(&self, url: &str) -> String {
        self.queue_attribute(url, QueueAttributeName::QueueArn)
            .await
            .unwrap_or_else(|| panic!("the emulator gives no ARN for {url}"))
    }

    /// How many messages the queue at `url` holds: (visible, in flight).
    pub async fn queue_depth(&self, url: &str) -> (u64, u64) {
        let count = |value: Option<String>| value.and_then(|v| v.parse().ok()).unwrap_or(0);
        let visible = self
            .queue_attribute(url, QueueAttributeName::ApproximateNumberOfMessages)
            .await;
        let in_flight = self
            .queue_attribute(
                url,
                QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            )
            .await;
        (count(visible), count(in_flight))
    }

    async fn queue_attribute(&self, url: &str, attribute: QueueAttributeName) -> Option<String> {
        self.sqs()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(attribute.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetQueueAttributes {url} on the emulator: {}", display(&e)))
            .attributes
            .and_then(|attributes| attributes.get(&attribute).cloned())
    }
}

/// A name no other test (of this run or an earlier one against the same emulator) uses:
/// `name` followed by a short unique suffix. Keep `name` under 60 characters for SQS.
pub fn unique(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let run = crate::lambda::random_u64() & 0xff_ffff;
    format!(
        "{name}-{:x}-{run:06x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn display<E: std::error::Error>(error: &E) -> String {
    sqs::error::DisplayErrorContext(error).to_string()
}
