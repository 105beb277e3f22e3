//! A whole cutover stack in the emulator, for end-to-end tests of the cloud functions: the
//! table, the step queues with their dead-letter queues, the SSM document, a revision
//! bucket, and the seven real function binaries fed as Lambda feeds them. Every name is unique,
//! so stacks of tests running in parallel never meet.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cutover_aws::dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use cutover_aws::engine::Store;
use cutover_aws::engine::core::DeploymentId;
use cutover_aws::engine::core::machine::Deployment;
use cutover_aws::engine::core::model::DeploymentGroupInfo;
use cutover_aws::queue::StepFunction;
use cutover_aws::s3::primitives::ByteStream;
use cutover_aws::s3::types::{BucketVersioningStatus, VersioningConfiguration};
use cutover_aws::sqs::types::QueueAttributeName;
use cutover_aws::store::{DynamoStore, S3Trigger};
use cutover_aws::{autoscaling, cloudwatch, dynamodb, ec2, elbv2, ssm};
use serde_json::{Value, json};

use crate::awscli::{KEY_ID, SECRET};
use crate::emulator::{Emulator, Queue, unique};
use crate::events::{EventSource, s3_object_created_event};
use crate::lambda::Function;
use crate::url::FunctionUrl;
use crate::{binary, repo_root};

/// How long a received step stays hidden: long enough for any step, short enough that a
/// step whose function died comes back within the test.
pub const VISIBILITY_SECONDS: u32 = 8;

/// A stack in the emulator, with its functions running.
#[derive(Debug)]
pub struct Stack {
    pub emulator: Emulator,
    pub table: String,
    pub bucket: String,
    pub document: String,
    pub queues: BTreeMap<StepFunction, Queue>,
    pub functions: BTreeMap<&'static str, Arc<Function>>,
    pub store: DynamoStore,
    /// The value of the `cutover-test` tag on this stack's instances.
    pub tag: String,
    /// The functions' environment.
    pub env: Vec<(String, String)>,
    sources: Vec<EventSource>,
}

impl Stack {
    /// Creates the resources and starts the functions, with extra environment for them.
    pub async fn start(extra_env: &[(&str, &str)]) -> Stack {
        Stack::start_with(VISIBILITY_SECONDS, extra_env).await
    }

    /// [`Stack::start`], with step queues that hide a received message for `visibility`
    /// seconds.
    pub async fn start_with(visibility: u32, extra_env: &[(&str, &str)]) -> Stack {
        let emulator = Emulator::connect().await;
        let config = emulator.config().clone();
        let name = unique("cutover");

        let table = format!("{name}-state");
        dynamodb::Client::new(&config)
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("PK"))
            .attribute_definitions(attribute("SK"))
            .key_schema(key("PK", KeyType::Hash))
            .key_schema(key("SK", KeyType::Range))
            .send()
            .await
            .expect("the table is created");

        let mut queues = BTreeMap::new();
        for function in StepFunction::ALL {
            let queue = emulator
                .queue_with_dead_letter_queue(&format!("{name}-{}", function.name()), 5, visibility)
                .await;
            queues.insert(function, queue);
        }

        let bucket = format!("{name}-revisions");
        let s3 = cutover_aws::ports::s3_client(&config);
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("the bucket is created");
        s3.put_bucket_versioning()
            .bucket(&bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .expect("versioning is on");

        let document = format!("{name}-run-agent");
        let content = std::fs::read_to_string(repo_root().join("infra/ssm/cutover-run-agent.yaml"))
            .expect("the SSM document is in infra/ssm");
        ssm::Client::new(&config)
            .create_document()
            .name(&document)
            .content(content)
            .document_type(ssm::types::DocumentType::Command)
            .document_format(ssm::types::DocumentFormat::Yaml)
            .send()
            .await
            .expect("the SSM document is created");

        let mut env: Vec<(String, String)> = emulator.function_env();
        env.push(("CUTOVER_TABLE".into(), table.clone()));
        env.push(("CUTOVER_SSM_DOCUMENT".into(), document.clone()));
        env.push(("RUST_LOG".into(), "info".into()));
        // The emulator takes a command in milliseconds: claims of hosts' runs may expire sooner
        // than in AWS, so that the checks they leave behind come within the tests' waits.
        env.push(("CUTOVER_CLAIM_LEASE_SECONDS".into(), "8".into()));
        for (function, queue) in &queues {
            env.push((function.queue_env().into(), queue.url.clone()));
        }
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );

        let mut functions = BTreeMap::new();
        let mut sources = Vec::new();
        for name in [
            "validate-revision",
            "provision-replacements",
            "run-hooks",
            "shift-traffic",
            "finalize",
            "s3-trigger",
            "schedule",
        ] {
            let function = Arc::new(Function::start(&binary(name), &env));
            functions.insert(name, function);
        }
        for (function, queue) in &queues {
            sources.push(EventSource::sqs(
                functions[function.name()].clone(),
                queue.url.clone(),
                emulator.sqs(),
                10,
            ));
        }

        let settings = cutover_aws::ports::Settings::from_lookup(|k| {
            env.iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.clone())
        })
        .expect("the stack's settings are complete");
        let queue = cutover_aws::queue::SqsQueue::new(emulator.sqs(), settings.queues);
        let store = DynamoStore::new(dynamodb::Client::new(&config), &table, queue);
        Stack {
            emulator,
            table,
            bucket,
            document,
            queues,
            functions,
            store,
            tag: name,
            env,
            sources,
        }
    }

    /// Starts the api function behind a function URL, with the tests' key pair in an SSM
    /// SecureString parameter, as the template sets it up.
    pub async fn api(&self) -> FunctionUrl {
        let parameter = format!("/{}/api-keys", self.tag);
        let keys = json!({"AccessKeyId": KEY_ID, "SecretAccessKey": SECRET});
        ssm::Client::new(self.emulator.config())
            .put_parameter()
            .name(&parameter)
            .value(keys.to_string())
            .r#type(ssm::types::ParameterType::SecureString)
            .send()
            .await
            .expect("the keys' parameter is created");
        let mut env = self.env.clone();
        env.push(("CUTOVER_API_KEYS_PARAMETER".into(), parameter));
        FunctionUrl::start(Arc::new(Function::start(&binary("api"), &env)))
    }

    /// Runs `n` instances tagged `cutover-test=<this stack>` plus `tags`; their ids, sorted.
    pub async fn instances(&self, n: i32, tags: &[(&str, &str)]) -> Vec<String> {
        let mut spec = ec2::types::TagSpecification::builder()
            .resource_type(ec2::types::ResourceType::Instance)
            .tags(
                ec2::types::Tag::builder()
                    .key("cutover-test")
                    .value(&self.tag)
                    .build(),
            );
        for (k, v) in tags {
            spec = spec.tags(ec2::types::Tag::builder().key(*k).value(*v).build());
        }
        let out = ec2::Client::new(self.emulator.config())
            .run_instances()
            .image_id("ami-12c6146b")
            .instance_type(ec2::types::InstanceType::T3Micro)
            .min_count(n)
            .max_count(n)
            .tag_specifications(spec.build())
            .send()
            .await
            .expect("the instances run");
        let mut ids: Vec<String> = out
            .instances()
            .iter()
            .filter_map(|i| i.instance_id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// An Auto Scaling group of `size` instances, launched from a template of its own; its name
    /// and its members.
    pub async fn auto_scaling_group(&self, size: i32) -> (String, Vec<String>) {
        let name = unique("asg");
        let config = self.emulator.config();
        ec2::Client::new(config)
            .create_launch_template()
            .launch_template_name(&name)
            .launch_template_data(
                ec2::types::RequestLaunchTemplateData::builder()
                    .image_id("ami-12c6146b")
                    .instance_type(ec2::types::InstanceType::T3Micro)
                    .build(),
            )
            .send()
            .await
            .expect("the launch template is created");
        let asg = autoscaling::Client::new(config);
        asg.create_auto_scaling_group()
            .auto_scaling_group_name(&name)
            .launch_template(
                autoscaling::types::LaunchTemplateSpecification::builder()
                    .launch_template_name(&name)
                    .version("$Latest")
                    .build(),
            )
            .min_size(0)
            .max_size(size)
            .desired_capacity(size)
            .availability_zones("us-east-1a")
            .send()
            .await
            .expect("the Auto Scaling group is created");
        let out = asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&name)
            .send()
            .await
            .expect("the Auto Scaling group is described");
        let mut members: Vec<String> = out.auto_scaling_groups()[0]
            .instances()
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect();
        members.sort();
        (name, members)
    }

    /// A target group of its own, in a VPC of its own, with `hosts` registered; its name and
    /// ARN.
    pub async fn target_group(&self, hosts: &[String]) -> (String, String) {
        let config = self.emulator.config();
        let vpc = ec2::Client::new(config)
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .expect("the VPC is created")
            .vpc
            .and_then(|v| v.vpc_id)
            .expect("the VPC has an id");
        let name = format!("tg-{}", &self.tag[self.tag.len().saturating_sub(20)..]);
        let lb = elbv2::Client::new(config);
        let arn = lb
            .create_target_group()
            .name(&name)
            .protocol(elbv2::types::ProtocolEnum::Http)
            .port(80)
            .vpc_id(vpc)
            .target_type(elbv2::types::TargetTypeEnum::Instance)
            .send()
            .await
            .expect("the target group is created")
            .target_groups()[0]
            .target_group_arn
            .clone()
            .expect("the target group has an ARN");
        let targets = hosts
            .iter()
            .map(|id| {
                elbv2::types::TargetDescription::builder()
                    .id(id)
                    .port(80)
                    .build()
            })
            .collect();
        lb.register_targets()
            .target_group_arn(&arn)
            .set_targets(Some(targets))
            .send()
            .await
            .expect("the hosts are registered");
        (name, arn)
    }

    /// Creates CloudWatch alarm `name`, in state INSUFFICIENT_DATA until [`Stack::sound_alarm`].
    pub async fn alarm(&self, name: &str) {
        use cutover_aws::cloudwatch::types::{ComparisonOperator, Statistic};
        cloudwatch::Client::new(self.emulator.config())
            .put_metric_alarm()
            .alarm_name(name)
            .metric_name("Errors")
            .namespace("Shop")
            .statistic(Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .send()
            .await
            .expect("the alarm is created");
    }

    /// Puts alarm `name` in ALARM.
    pub async fn sound_alarm(&self, name: &str) {
        cloudwatch::Client::new(self.emulator.config())
            .set_alarm_state()
            .alarm_name(name)
            .state_value(cloudwatch::types::StateValue::Alarm)
            .state_reason("errors")
            .send()
            .await
            .expect("the alarm's state is set");
    }

    /// Saves application `app` and its group `group`, which deploys to this stack's instances
    /// with `config` and starts on uploads under `<group>/`. `extra` adds group settings, in
    /// CodeDeploy's JSON.
    pub async fn group(
        &self,
        app: &str,
        group: &str,
        config: &str,
        extra: Value,
    ) -> DeploymentGroupInfo {
        let mut body = json!({
            "applicationName": app,
            "deploymentGroupId": format!("{}-{group}", self.tag),
            "deploymentGroupName": group,
            "deploymentConfigName": config,
            "ec2TagFilters": [{"Key": "cutover-test", "Value": self.tag, "Type": "KEY_AND_VALUE"}],
        });
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        let info: DeploymentGroupInfo =
            serde_json::from_value(body).expect("the group's settings are CodeDeploy's");
        self.store
            .put_application(app)
            .await
            .expect("the application is saved");
        let trigger = S3Trigger {
            bucket: self.bucket.clone(),
            key_prefix: format!("{group}/"),
        };
        self.store
            .put_group(&info, Some(&trigger))
            .await
            .expect("the group is saved");
        info
    }

    /// Uploads `dir` as a zip to `key`; the object's ETag and version.
    pub async fn upload(&self, key: &str, dir: &Path) -> (String, Option<String>) {
        self.upload_bytes(key, zip_dir(dir)).await
    }

    /// Uploads `bytes` to `key` as they are; the object's ETag and version.
    pub async fn upload_bytes(&self, key: &str, bytes: Vec<u8>) -> (String, Option<String>) {
        let out = cutover_aws::ports::s3_client(self.emulator.config())
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .expect("the object is uploaded");
        (out.e_tag.unwrap_or_default(), out.version_id)
    }

    /// Uploads `dir` to `key` and tells `s3-trigger`, as S3 does; the deployments it started.
    pub async fn deploy_upload(&self, key: &str, dir: &Path) -> Vec<DeploymentId> {
        let (etag, version) = self.upload(key, dir).await;
        self.uploaded(key, &etag, version.as_deref()).await
    }

    /// Tells `s3-trigger` that `key` was uploaded; the deployments it started.
    pub async fn uploaded(
        &self,
        key: &str,
        etag: &str,
        version: Option<&str>,
    ) -> Vec<DeploymentId> {
        let event = s3_object_created_event(&self.bucket, key, 1, etag, version);
        let out = self.functions["s3-trigger"]
            .invoke(event, Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("s3-trigger failed: {e}"));
        out["deploymentIds"]
            .as_array()
            .expect("s3-trigger names the deployments it started")
            .iter()
            .map(|id| id.as_str().unwrap().parse().unwrap())
            .collect()
    }

    pub async fn deployment(&self, id: &DeploymentId) -> Deployment {
        self.store
            .load(id)
            .await
            .expect("the table answers")
            .unwrap_or_else(|| panic!("deployment {id} is not in the table"))
    }

    /// Waits until the deployment exists and has finished, and returns it.
    pub async fn finished(&self, id: &DeploymentId, within: Duration) -> Deployment {
        let deadline = Instant::now() + within;
        loop {
            let d = self.store.load(id).await.expect("the table answers");
            if let Some(d) = &d
                && d.is_finished()
            {
                return d.clone();
            }
            if Instant::now() > deadline {
                panic!(
                    "deployment {id} did not finish within {within:?}; it is {:?}\n{}",
                    d.map(|d| d.phase),
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until every step queue is empty: nothing visible, in flight or delayed, in two
    /// looks a moment apart (a step moving between queues can slip past one look).
    pub async fn settled(&self, within: Duration) {
        let deadline = Instant::now() + within;
        let sqs = self.emulator.sqs();
        let mut idle_looks = 0;
        'poll: loop {
            assert!(
                Instant::now() < deadline,
                "the step queues did not empty within {within:?}"
            );
            for queue in self.queues.values() {
                let attrs = sqs
                    .get_queue_attributes()
                    .queue_url(&queue.url)
                    .attribute_names(QueueAttributeName::All)
                    .send()
                    .await
                    .expect("the queue answers")
                    .attributes
                    .unwrap_or_default();
                let busy = [
                    QueueAttributeName::ApproximateNumberOfMessages,
                    QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                    QueueAttributeName::ApproximateNumberOfMessagesDelayed,
                ]
                .iter()
                .any(|a| attrs.get(a).is_some_and(|n| n != "0"));
                if busy {
                    idle_looks = 0;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue 'poll;
                }
            }
            idle_looks += 1;
            if idle_looks == 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The messages in a step function's dead-letter queue.
    pub async fn dead_letters(&self, function: StepFunction) -> u64 {
        let sqs = self.emulator.sqs();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&self.queues[&function].dead_letter_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .expect("the queue answers")
            .attributes
            .unwrap_or_default();
        attrs
            .get(&QueueAttributeName::ApproximateNumberOfMessages)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Where the emulator keeps an instance's files: it stands in for the host's `/`.
    pub fn host_root(&self, instance: &str) -> PathBuf {
        repo_root().join(".cutover/emulator/hosts").join(instance)
    }

    /// Every function's log, for a failing test's message.
    pub fn logs(&self) -> String {
        self.functions
            .iter()
            .map(|(name, f)| format!("----- {name} -----\n{}", tail(&f.logs(), 6000)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Stops feeding the step functions.
    pub fn stop_sources(&self) {
        for source in &self.sources {
            source.stop();
        }
    }
}

fn tail(text: &str, bytes: usize) -> &str {
    let mut start = text.len().saturating_sub(bytes);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

fn attribute(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .unwrap()
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .unwrap()
}

/// `dir` as a zip archive, with each file's mode, as `zip -r` makes it.
pub fn zip_dir(dir: &Path) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            let options = zip::write::SimpleFileOptions::default().unix_permissions(mode & 0o7777);
            if path.is_dir() {
                zip.add_directory(format!("{name}/"), options).unwrap();
                stack.push(path);
            } else {
                zip.start_file(name, options).unwrap();
                zip.write_all(&std::fs::read(&path).unwrap()).unwrap();
            }
        }
    }
    zip.finish().unwrap().into_inner()
}

impl Stack {
    /// How many commands of this stack's SSM document were sent to `instance`.
    pub async fn commands_sent(&self, instance: &str) -> usize {
        let out = ssm::Client::new(self.emulator.config())
            .list_commands()
            .instance_id(instance)
            .send()
            .await
            .expect("SSM lists commands");
        out.commands()
            .iter()
            .filter(|c| c.document_name() == Some(self.document.as_str()))
            .count()
    }
}

/// The emulator's count of requests, by `service:Operation`.
pub async fn request_counts(emulator: &Emulator) -> BTreeMap<String, u64> {
    let url = format!("{}/cutover-emulator/requests", emulator.endpoint());
    let body = http_get(&url).await;
    let counts: Value = serde_json::from_str(&body).expect("the emulator counts requests");
    counts["requests"]
        .as_object()
        .expect("counts by operation")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
        .collect()
}

/// A plain GET on loopback, for the emulator's own endpoints.
async fn http_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .expect("the emulator listens");
    let request = format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}
