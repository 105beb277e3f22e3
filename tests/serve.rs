//! `cutover serve` for the end-to-end tests: a server on a fresh state directory with the
//! tests' key pair, the clients of the test venv pointed at it ([`crate::awscli`]), and the
//! revisions that the tests deploy through it from the AWS emulator's S3.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::awscli::Clients;
pub use crate::awscli::{KEY_ID, SECRET, venv};
use crate::binary;
pub use crate::{failing_webapp, slow_webapp};

/// A running `cutover serve`, stopped when dropped. It derefs to the clients pointed at it.
#[derive(Debug)]
pub struct Serve {
    child: Child,
    pub url: String,
    pub state: PathBuf,
    /// The state directory, when the server made it; removed with it.
    _made: Option<tempfile::TempDir>,
    /// The aws CLI and boto3 pointed at the server, signing with the tests' key pair.
    pub clients: Clients,
}

impl std::ops::Deref for Serve {
    type Target = Clients;

    fn deref(&self) -> &Clients {
        &self.clients
    }
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
            clients: Clients::new(&url, state),
            url,
            state: state.to_owned(),
            _made: None,
        }
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

/// The service role the deployment groups of these tests name.
pub const ROLE: &str = "arn:aws:iam::123456789012:role/CodeDeployRole";

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
