//! `cutover serve` for the end-to-end tests: a server on a fresh state directory with the
//! tests' key pair, the aws CLI of the test venv pointed at it, and the revisions (good,
//! failing, slow) that the tests deploy through it from the AWS emulator's S3.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

use crate::{binary, repo_root, stderr, stdout};

/// The key pair the tests' servers accept (`CUTOVER_ACCESS_KEY_ID`, `CUTOVER_SECRET_ACCESS_KEY`).
pub const KEY_ID: &str = "AKCUTESTKEY0000001";
pub const SECRET: &str = "test-secret-that-only-this-test-knows";

/// A running `cutover serve`, stopped when dropped.
#[derive(Debug)]
pub struct Serve {
    child: Child,
    pub url: String,
    pub state: PathBuf,
    /// The state directory, when the server made it; removed with it.
    _made: Option<tempfile::TempDir>,
    /// More environment for the aws CLI (an S3 endpoint, for one).
    pub client_env: Vec<(String, String)>,
}

impl Serve {
    /// Starts the server with the test's key pair.
    pub fn start() -> Serve {
        Serve::start_with(&[
            ("CUTOVER_ACCESS_KEY_ID", KEY_ID),
            ("CUTOVER_SECRET_ACCESS_KEY", SECRET),
        ])
    }

    /// Starts the server with the test's key pair, reading S3 revisions from the emulator.
    pub fn start_reading_s3(emulator: &str) -> Serve {
        Serve::start_with(&[
            ("CUTOVER_ACCESS_KEY_ID", KEY_ID),
            ("CUTOVER_SECRET_ACCESS_KEY", SECRET),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL_S3", emulator),
        ])
    }

    /// Starts the server on a fresh state directory, with `env`.
    pub fn start_with(env: &[(&str, &str)]) -> Serve {
        let made = tempfile::tempdir().unwrap();
        let mut serve = Serve::start_in(made.path(), env);
        serve._made = Some(made);
        serve
    }

    pub fn start_in(state: &Path, env: &[(&str, &str)]) -> Serve {
        let mut child = Command::new(binary("cutover"))
            .args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state)
            .env_remove("CUTOVER_ACCESS_KEY_ID")
            .env_remove("CUTOVER_SECRET_ACCESS_KEY")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cutover serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://127.0.0.1:"))
            .unwrap_or_else(|| panic!("cutover serve did not say where it listens: {line:?}"))
            .to_owned();
        Serve {
            child,
            url,
            state: state.to_owned(),
            _made: None,
            client_env: Vec::new(),
        }
    }

    /// `aws deploy <args>` against this server, signed with `key` and `secret`.
    pub fn aws_as(&self, key: &str, secret: &str, args: &[&str]) -> Output {
        let aws = venv("aws");
        Command::new(&aws)
            .arg("deploy")
            .args(args)
            .args(["--endpoint-url", &self.url, "--output", "json"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.state)
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .envs(self.client_env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap_or_else(|e| panic!("{} runs: {e}", aws.display()))
    }

    pub fn aws(&self, args: &[&str]) -> Output {
        self.aws_as(KEY_ID, SECRET, args)
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
        let mut python = Command::new(venv("python"))
            .args(["-c", script, &self.url, &target, KEY_ID, SECRET])
            .env("NO_PROXY", "127.0.0.1,localhost")
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
}

impl Serve {
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.stop();
    }
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

/// The service role the deployment groups of these tests name.
pub const ROLE: &str = "arn:aws:iam::123456789012:role/CodeDeployRole";

/// The web app with a ValidateService that always fails.
pub fn failing_webapp() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    crate::copy_dir(&repo_root().join("examples/webapp"), dir.path());
    std::fs::write(
        dir.path().join("scripts/validate.sh"),
        "#!/bin/sh\necho 'the health check failed' >&2\nexit 3\n",
    )
    .unwrap();
    dir
}

/// A copy of the web app whose ApplicationStart takes `seconds` longer.
pub fn slow_webapp(seconds: u32) -> tempfile::TempDir {
    let revision = tempfile::tempdir().unwrap();
    crate::copy_dir(&repo_root().join("examples/webapp"), revision.path());
    let path = revision.path().join("scripts/start.sh");
    let script = std::fs::read_to_string(&path).unwrap();
    let (shebang, rest) = script.split_once('\n').unwrap();
    std::fs::write(&path, format!("{shebang}\nsleep {seconds}\n{rest}")).unwrap();
    revision
}

/// Waiting for a child, bounded so that a deployment that never stops fails the test.
pub trait WaitBounded {
    fn wait_with_output_timeout(self) -> Output;
}

impl WaitBounded for Child {
    fn wait_with_output_timeout(mut self) -> Output {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while self.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = self.kill();
                panic!("the deployment did not stop within 60 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self.wait_with_output().unwrap()
    }
}

/// Uploads revisions to a new bucket of the AWS emulator; the bucket's name.
pub fn upload_revisions(revisions: &[(&str, &Path)]) -> String {
    use crate::emulator::{Emulator, unique};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let emulator = Emulator::connect().await;
        let s3 = cutover_aws::ports::s3_client(emulator.config());
        let bucket = unique("serve-revisions");
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        for (key, dir) in revisions {
            s3.put_object()
                .bucket(&bucket)
                .key(*key)
                .body(cutover_aws::s3::primitives::ByteStream::from(
                    crate::cloud::zip_dir(dir),
                ))
                .send()
                .await
                .unwrap();
        }
        bucket
    })
}
