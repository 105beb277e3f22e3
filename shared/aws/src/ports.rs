//! Every port over AWS, built once per process from the environment the template sets.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::SdkConfig;
use cutover_engine::{Ports, SystemClock};

use crate::alarms::CloudWatchAlarms;
use crate::fleet::Ec2Fleet;
use crate::hosts::SsmHosts;
use crate::lambda::LambdaFunctions;
use crate::notifier::LogNotifier;
use crate::queue::{SqsQueue, StepFunction};
use crate::replacements::Ec2Replacements;
use crate::revisions::S3Revisions;
use crate::store::DynamoStore;
use crate::traffic::Elbv2Router;

/// Where cutover's resources are: what the template puts in every function's environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `CUTOVER_TABLE`.
    pub table: String,
    /// `CUTOVER_QUEUE_*`: each step function's queue.
    pub queues: BTreeMap<StepFunction, String>,
    /// `CUTOVER_SSM_DOCUMENT`.
    pub document: String,
    /// `CUTOVER_AGENT_TIMEOUT_SECONDS`, optional.
    pub agent_timeout: Option<u64>,
    /// `CUTOVER_CLAIM_LEASE_SECONDS`, optional: how long a step may take to send a host its
    /// command before another step may take the host's run over.
    pub claim_lease: Option<u64>,
}

impl Settings {
    /// Reads the settings from the environment, naming every variable that is missing.
    pub fn from_env() -> Result<Settings, String> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let mut missing = Vec::new();
        let mut need = |name: &'static str| {
            let value = get(name).filter(|v| !v.is_empty());
            if value.is_none() {
                missing.push(name);
            }
            value.unwrap_or_default()
        };
        let table = need("CUTOVER_TABLE");
        let document = need("CUTOVER_SSM_DOCUMENT");
        let queues = StepFunction::ALL
            .into_iter()
            .map(|f| (f, need(f.queue_env())))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "set {} (the stack's template sets them for its functions)",
                missing.join(", ")
            ));
        }
        let seconds = |name: &str| match get(name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| format!("{name} must be a number of seconds, not '{v}'")),
        };
        Ok(Settings {
            table,
            queues,
            document,
            agent_timeout: seconds("CUTOVER_AGENT_TIMEOUT_SECONDS")?,
            claim_lease: seconds("CUTOVER_CLAIM_LEASE_SECONDS")?,
        })
    }
}

/// An S3 client; path-style addressing when a custom endpoint is set, since emulators and
/// S3-compatible stores seldom serve bucket subdomains.
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

/// The ports of the cloud functions.
#[derive(Debug)]
pub struct AwsPorts {
    store: DynamoStore,
    revisions: S3Revisions,
    fleet: Ec2Fleet,
    hosts: SsmHosts,
    traffic: Elbv2Router,
    replacements: Ec2Replacements,
    lambda: LambdaFunctions,
    alarms: CloudWatchAlarms,
}

impl AwsPorts {
    pub fn new(config: &SdkConfig, settings: Settings) -> AwsPorts {
        let s3 = s3_client(config);
        let queue = SqsQueue::new(aws_sdk_sqs::Client::new(config), settings.queues);
        let dynamodb = aws_sdk_dynamodb::Client::new(config);
        // The replacements switch a group to its copied Auto Scaling group in the same table.
        let groups = DynamoStore::new(dynamodb.clone(), &settings.table, queue.clone());
        AwsPorts {
            replacements: Ec2Replacements::new(config, groups),
            store: DynamoStore::new(dynamodb, settings.table, queue),
            revisions: S3Revisions::new(s3.clone()),
            fleet: Ec2Fleet::new(config),
            hosts: SsmHosts::new(
                aws_sdk_ssm::Client::new(config),
                s3,
                settings.document,
                settings.agent_timeout,
            )
            .with_claim_lease(settings.claim_lease.map(Duration::from_secs)),
            traffic: Elbv2Router::new(config),
            lambda: LambdaFunctions::new(config),
            alarms: CloudWatchAlarms::new(config),
        }
    }

    /// The ports, from the SDK's usual configuration and cutover's settings in the environment.
    pub async fn from_env() -> Result<AwsPorts, String> {
        let settings = Settings::from_env()?;
        Ok(AwsPorts::new(&crate::config::load().await, settings))
    }
}

impl Ports for AwsPorts {
    type Store = DynamoStore;
    type Queue = SqsQueue;
    type Revisions = S3Revisions;
    type Fleet = Ec2Fleet;
    type Hosts = SsmHosts;
    type Traffic = Elbv2Router;
    type Replacements = Ec2Replacements;
    type Lambda = LambdaFunctions;
    type HookFunctions = LambdaFunctions;
    type Alarms = CloudWatchAlarms;
    type Notifier = LogNotifier;
    type Clock = SystemClock;

    fn store(&self) -> &DynamoStore {
        &self.store
    }
    fn queue(&self) -> &SqsQueue {
        self.store.queue()
    }
    fn revisions(&self) -> &S3Revisions {
        &self.revisions
    }
    fn fleet(&self) -> &Ec2Fleet {
        &self.fleet
    }
    fn hosts(&self) -> &SsmHosts {
        &self.hosts
    }
    fn traffic(&self) -> &Elbv2Router {
        &self.traffic
    }
    fn replacements(&self) -> &Ec2Replacements {
        &self.replacements
    }
    fn lambda(&self) -> &LambdaFunctions {
        &self.lambda
    }
    fn hook_functions(&self) -> &LambdaFunctions {
        &self.lambda
    }
    fn alarms(&self) -> &CloudWatchAlarms {
        &self.alarms
    }
    fn notifier(&self) -> &LogNotifier {
        &LogNotifier
    }
    fn clock(&self) -> &SystemClock {
        &SystemClock
    }
}
