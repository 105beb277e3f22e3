//! The real clients of the test venv pointed at one of cutover's CodeDeploy endpoints (`cutover
//! serve` or the api function's URL): the aws CLI v1, boto3's flow script, and raw requests
//! that botocore signs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::{repo_root, stderr, stdout};

/// The key pair the tests' endpoints accept.
pub const KEY_ID: &str = "AKCUTESTKEY0000001";
pub const SECRET: &str = "test-secret-that-only-this-test-knows";

/// The IAM user the tests register on-premises instance `name` with.
pub fn user_arn(name: &str) -> String {
    format!("arn:aws:iam::123456789012:user/on-prem/{name}")
}

/// A tool of the test venv, which the test command installs (`scripts/emulator venv`).
pub fn venv(tool: &str) -> PathBuf {
    let path = repo_root().join(".venv/bin").join(tool);
    assert!(
        path.exists(),
        "{} is missing: run the tests with ./scripts/test, or install the test tools with scripts/emulator venv",
        path.display()
    );
    path
}

/// The clients of one endpoint.
#[derive(Clone, Debug)]
pub struct Clients {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The clients' home, so that no profile of the machine's user is read.
    pub home: PathBuf,
    /// More environment for the clients (an S3 endpoint, for one).
    pub env: Vec<(String, String)>,
}

impl Clients {
    pub fn new(endpoint: &str, home: &Path) -> Clients {
        Clients {
            endpoint: endpoint.to_owned(),
            home: home.to_owned(),
            env: Vec::new(),
        }
    }

    /// A client process with only the environment it needs, signing with `key` and `secret`.
    fn command(&self, program: &Path, key: &str, secret: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// `aws deploy <args>`, signed with `key` and `secret`.
    pub fn aws_as(&self, key: &str, secret: &str, args: &[&str]) -> Output {
        let aws = venv("aws");
        self.command(&aws, key, secret)
            .arg("deploy")
            .args(args)
            .args(["--endpoint-url", &self.endpoint, "--output", "json"])
            .output()
            .unwrap_or_else(|e| panic!("{} runs: {e}", aws.display()))
    }

    pub fn aws(&self, args: &[&str]) -> Output {
        self.aws_as(KEY_ID, SECRET, args)
    }

    /// `aws deploy <args>` with neither keys nor endpoint on the command line: only what the
    /// profile `profile` of the shared files in `dir` (`config`, `credentials`) says.
    pub fn aws_with_profile(&self, dir: &Path, profile: &str, args: &[&str]) -> Output {
        let aws = venv("aws");
        self.command(&aws, "", "")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_DEFAULT_REGION")
            .env("AWS_CONFIG_FILE", dir.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("credentials"))
            .args(["--profile", profile, "--output", "json", "deploy"])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{} runs: {e}", aws.display()))
    }

    /// `aws deploy <args>`, which must succeed; its JSON output.
    pub fn ok(&self, args: &[&str]) -> Value {
        let out = self.aws(args);
        assert!(
            out.status.success(),
            "aws deploy {args:?} failed: {}",
            stderr(&out)
        );
        let text = stdout(&out);
        if text.trim().is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// `aws deploy <args>`, which must fail with CodeDeploy exception `exception`.
    pub fn fails(&self, args: &[&str], exception: &str) -> String {
        let out = self.aws(args);
        assert!(!out.status.success(), "aws deploy {args:?} succeeded");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("({exception})")),
            "aws deploy {args:?}: expected {exception}, got: {err}"
        );
        err
    }

    /// Registers on-premises instance `name` with an IAM user of its own ([`user_arn`]), and
    /// tags it with `tags` (`Key=K,Value=V` each).
    pub fn register_instance(&self, name: &str, tags: &[&str]) {
        self.ok(&[
            "register-on-premises-instance",
            "--instance-name",
            name,
            "--iam-user-arn",
            &user_arn(name),
        ]);
        if !tags.is_empty() {
            let mut args = vec![
                "add-tags-to-on-premises-instances",
                "--instance-names",
                name,
                "--tags",
            ];
            args.extend_from_slice(tags);
            self.ok(&args);
        }
    }

    /// `list-on-premises-instances` with `args`: the names.
    pub fn instance_names(&self, args: &[&str]) -> Value {
        let mut all = vec!["list-on-premises-instances"];
        all.extend_from_slice(args);
        self.ok(&all)["instanceNames"].clone()
    }

    /// `aws deploy wait deployment-successful`: its exit code (0 for a success, 255 for a
    /// failure).
    pub fn wait_successful(&self, id: &str) -> Option<i32> {
        self.aws(&["wait", "deployment-successful", "--deployment-id", id])
            .status
            .code()
    }

    /// A request signed by botocore for `target` (an operation, or a whole X-Amz-Target) with
    /// this raw body; the HTTP status and the JSON answer.
    pub fn raw(&self, target: &str, body: &str) -> (u16, Value) {
        let target = if target.contains('.') {
            target.to_owned()
        } else {
            format!("CodeDeploy_20141006.{target}")
        };
        let script = r#"
import json, sys, urllib.request
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
url, target, key, secret = sys.argv[1:5]
body = sys.stdin.read()
request = AWSRequest(method="POST", url=url, data=body.encode(), headers={
    "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
SigV4Auth(Credentials(key, secret), "codedeploy", "us-east-1").add_auth(request)
prepared = request.prepare()
try:
    with urllib.request.urlopen(urllib.request.Request(
            url, data=prepared.body, headers=dict(prepared.headers), method="POST")) as r:
        print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); print(e.read().decode())
"#;
        let mut python = self
            .command(&venv("python"), KEY_ID, SECRET)
            .args(["-c", script, &self.endpoint, &target, KEY_ID, SECRET])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python runs");
        python
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        let out = python.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let (status, answer) = text
            .split_once('\n')
            .unwrap_or_else(|| panic!("no answer: {text} {}", stderr(&out)));
        (
            status.trim().parse().unwrap(),
            serde_json::from_str(answer.trim()).unwrap_or(Value::Null),
        )
    }

    /// Runs `tests/python/boto3_flow.py` against the endpoint, deploying `good` and `bad` from
    /// `bucket` to a group with `group` settings (CodeDeploy's JSON, merged into
    /// CreateDeploymentGroup's input) and `hosts` hosts; panics with its output if it fails.
    pub fn boto3_flow(&self, bucket: &str, good: &str, bad: &str, group: &Value, hosts: usize) {
        let out = self
            .command(&venv("python"), KEY_ID, SECRET)
            .arg(repo_root().join("tests/python/boto3_flow.py"))
            .args([self.endpoint.as_str(), bucket, good, bad])
            .env("CUTOVER_FLOW_GROUP", group.to_string())
            .env("CUTOVER_FLOW_HOSTS", hosts.to_string())
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "the boto3 flow failed:\n{}\n{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            stdout(&out).contains("errors are CodeDeploy's exceptions"),
            "{}",
            stdout(&out)
        );
    }
}
