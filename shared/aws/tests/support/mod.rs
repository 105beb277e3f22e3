//! What the emulator tests share: the SDK configuration for the emulator, unique names, a
//! deployment builder, EC2 helpers, and a small HTTP stand-in for APIs the emulator lacks.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use cutover_aws::aws_config::{self, BehaviorVersion, Region, SdkConfig};
use cutover_aws::ec2;
use cutover_core::config;
use cutover_core::machine::{CreateDeployment, Deployment};
use cutover_core::model::{
    DeploymentGroupInfo, LocalLocation, RevisionLocation, TagFilter, TagFilterType, TargetInstances,
};
use cutover_core::{DeploymentId, Timestamp};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// The emulator's URL, from `CUTOVER_EMULATOR_URL`.
pub fn emulator_url() -> String {
    std::env::var("CUTOVER_EMULATOR_URL").unwrap_or_else(|_| {
        panic!(
            "CUTOVER_EMULATOR_URL is not set: these tests talk to the AWS emulator. Run them with ./scripts/test, which starts it, or start one (moto_server -H 127.0.0.1 -p 5055) and set CUTOVER_EMULATOR_URL=http://127.0.0.1:5055"
        )
    })
}

/// The SDK configuration for the emulator: region us-east-1 and dummy credentials.
pub async fn sdk_config() -> SdkConfig {
    config_for(&emulator_url(), true).await
}

/// The SDK configuration for a stand-in at `url`, without retries.
pub async fn stand_in_config(url: &str) -> SdkConfig {
    config_for(url, false).await
}

async fn config_for(url: &str, retries: bool) -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let retry = if retries {
        aws_config::retry::RetryConfig::standard()
    } else {
        aws_config::retry::RetryConfig::disabled()
    };
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(ec2::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "cutover-tests",
        ))
        .retry_config(retry)
        .load()
        .await
}

/// A name no other test (or earlier run against the same emulator) uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{prefix}-{:x}-{:x}-{}",
        std::process::id(),
        nanos % 0xffff_ffff,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn filter(filter_type: TagFilterType, key: &str, value: &str) -> TagFilter {
    TagFilter {
        key: (!key.is_empty()).then(|| key.to_owned()),
        value: (!value.is_empty()).then(|| value.to_owned()),
        filter_type,
    }
}

/// A group named `name` of application App that names no targets yet.
pub fn group(name: &str) -> DeploymentGroupInfo {
    DeploymentGroupInfo {
        application_name: "App".into(),
        deployment_group_name: name.into(),
        deployment_group_id: format!("id-{name}"),
        ..Default::default()
    }
}

/// A new deployment to `group`, with the deployment's own targets if given.
pub fn deployment(group: DeploymentGroupInfo, target: Option<TargetInstances>) -> Deployment {
    let mut req = CreateDeployment::new(
        DeploymentId::from_entropy(42),
        group,
        config::predefined(config::DEFAULT_SERVER_CONFIG).unwrap(),
        RevisionLocation::Local(LocalLocation {
            path: "/nonexistent/revision".into(),
            bundle_type: None,
        }),
    );
    req.target_instances = target;
    Deployment::create(req, Timestamp::from_secs(1_700_000_000)).unwrap()
}

/// Launches one running instance with these tags and returns its id.
pub async fn launch(client: &ec2::Client, tags: &[(&str, &str)]) -> String {
    let mut spec =
        ec2::types::TagSpecification::builder().resource_type(ec2::types::ResourceType::Instance);
    for (k, v) in tags {
        spec = spec.tags(ec2::types::Tag::builder().key(*k).value(*v).build());
    }
    let out = client
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .tag_specifications(spec.build())
        .send()
        .await
        .expect("RunInstances");
    out.instances()[0].instance_id().unwrap().to_owned()
}

pub async fn stop(client: &ec2::Client, id: &str) {
    client
        .stop_instances()
        .instance_ids(id)
        .send()
        .await
        .expect("StopInstances");
}

/// What a stand-in answers: HTTP status, content type and body.
pub type Answer = (u16, &'static str, String);
type Handler = dyn Fn(&Request) -> Answer + Send + Sync;

/// One request the stand-in received.
#[derive(Clone, Debug)]
pub struct Request {
    /// The `X-Amz-Target` header (JSON protocols), empty for query protocols.
    pub target: String,
    pub body: String,
}

/// A small HTTP server on 127.0.0.1 that answers AWS API calls with `handler`, for APIs the
/// emulator does not implement or states it cannot produce. It records every request.
pub struct StandIn {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Request>>>,
}

impl StandIn {
    pub async fn start(handler: impl Fn(&Request) -> Answer + Send + Sync + 'static) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, handler.clone(), seen.clone()));
            }
        });
        StandIn { url, requests }
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(
    socket: tokio::net::TcpStream,
    handler: Arc<Handler>,
    seen: Arc<Mutex<Vec<Request>>>,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        let mut reader = BufReader::new(socket);
        loop {
            let mut length = 0usize;
            let mut target = String::new();
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            loop {
                line.clear();
                if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let header = line.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    match name.trim().to_ascii_lowercase().as_str() {
                        "content-length" => length = value.trim().parse().unwrap_or(0),
                        "x-amz-target" => target = value.trim().to_owned(),
                        _ => {}
                    }
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).await.is_err() {
                return;
            }
            let request = Request {
                target,
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            let (status, content_type, answer) = handler(&request);
            seen.lock().unwrap().push(request);
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nx-amzn-requestid: stand-in\r\n\r\n{answer}",
                answer.len()
            );
            if reader
                .get_mut()
                .write_all(response.as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    })
}
