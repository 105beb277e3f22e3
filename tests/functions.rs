//! Lambda functions in the AWS emulator, for the tests of Lambda deployments: functions with
//! published versions and aliases, hook functions whose Python code the emulator really runs,
//! and the emulator's log of invocations. Everything goes through the aws CLI of the test venv.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::awscli::venv;
use crate::{repo_root, stderr, stdout};

/// A function that answers which version it is.
pub const VERSIONED_APP: &str = "import os\ndef handler(event, context):\n    return {'version': os.environ.get('AWS_LAMBDA_FUNCTION_VERSION')}\n";

/// A Lambda AppSpec that moves alias `live` of `function` from `current` to `target`, with a
/// BeforeAllowTraffic hook function when given.
pub fn alias_appspec(function: &str, current: &str, target: &str, before: Option<&str>) -> String {
    let hooks = before
        .map(|h| format!("Hooks:\n  - BeforeAllowTraffic: {h}\n"))
        .unwrap_or_default();
    format!(
        "version: 0.0\nResources:\n  - app:\n      Type: AWS::Lambda::Function\n      Properties:\n        Name: {function}\n        Alias: live\n        CurrentVersion: {current}\n        TargetVersion: {target}\n{hooks}"
    )
}

/// The `--revision` of `aws deploy create-deployment` that gives `appspec` inline.
pub fn inline_revision(appspec: &str) -> String {
    serde_json::json!({
        "revisionType": "AppSpecContent",
        "appSpecContent": {"content": appspec},
    })
    .to_string()
}

/// Application `Functions` for Lambda (unless it exists) and its group `group` with
/// configuration `config` and `extra` arguments, through CodeDeploy's API at `aws`.
pub fn create_lambda_group(
    aws: &crate::awscli::Clients,
    group: &str,
    config: &str,
    extra: &[&str],
) {
    let app = ["get-application", "--application-name", "Functions"];
    if !aws.aws(&app).status.success() {
        aws.ok(&[
            "create-application",
            "--application-name",
            "Functions",
            "--compute-platform",
            "Lambda",
        ]);
    }
    let mut args = vec![
        "create-deployment-group",
        "--application-name",
        "Functions",
        "--deployment-group-name",
        group,
        "--service-role-arn",
        "arn:aws:iam::123456789012:role/CodeDeployRole",
        "--deployment-config-name",
        config,
    ];
    args.extend_from_slice(extra);
    aws.ok(&args);
}

/// The emulator's Lambda, through the aws CLI.
#[derive(Clone, Debug)]
pub struct Functions {
    emulator: String,
    /// The role the functions are created with (the emulator wants it to exist).
    role: String,
}

impl Functions {
    /// The emulator's Lambda, with a role of this test's own for its functions.
    pub fn new(emulator: &str) -> Functions {
        let mut functions = Functions {
            emulator: emulator.to_owned(),
            role: String::new(),
        };
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        let created = functions.aws(&[
            "iam",
            "create-role",
            "--role-name",
            &crate::emulator::unique("cutover-tests-lambda"),
            "--assume-role-policy-document",
            policy,
        ]);
        functions.role = created["Role"]["Arn"].as_str().unwrap().to_owned();
        functions
    }

    /// `aws <args>` against the emulator, which must succeed; its JSON output.
    pub fn aws(&self, args: &[&str]) -> Value {
        let out = Command::new(venv("aws"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::temp_dir())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .args(args)
            .args(["--endpoint-url", &self.emulator, "--output", "json"])
            .output()
            .expect("the aws CLI runs");
        assert!(out.status.success(), "aws {args:?}: {}", stderr(&out));
        let text = stdout(&out);
        if text.trim().is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// Creates a Python function from `source` (the handler module `handler.py`, whose
    /// `handler` function is called) with environment `env`.
    pub fn create(&self, name: &str, source: &str, env: &[(&str, &str)]) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("handler.py"), source).unwrap();
        self.create_from(name, dir.path(), "handler.handler", env);
    }

    /// Creates a Python function from the files of `dir`, with `handler` (`module.function`).
    pub fn create_from(&self, name: &str, dir: &Path, handler: &str, env: &[(&str, &str)]) {
        let zip = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(zip.path(), crate::cloud::zip_dir(dir)).unwrap();
        let code = format!("fileb://{}", zip.path().display());
        let variables = serde_json::json!({
            "Variables": env.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect::<serde_json::Map<_, _>>()
        });
        self.aws(&[
            "lambda",
            "create-function",
            "--function-name",
            name,
            "--runtime",
            "python3.12",
            "--role",
            &self.role,
            "--handler",
            handler,
            "--zip-file",
            &code,
            "--timeout",
            "30",
            "--environment",
            &variables.to_string(),
        ]);
    }

    /// The example hook function (`examples/lambda-alias/hook/smoke_test.py`), created as
    /// `name`, reporting to cutover at `endpoint`, with more environment in `env`.
    pub fn create_example_hook(&self, name: &str, endpoint: &str, env: &[(&str, &str)]) {
        let mut all = vec![("AWS_ENDPOINT_URL_CODEDEPLOY", endpoint)];
        all.extend_from_slice(env);
        let dir = repo_root().join("examples/lambda-alias/hook");
        self.create_from(name, &dir, "smoke_test.handler", &all);
    }

    /// Publishes the function's code and configuration as a new version; its number. Each call
    /// first changes the description, so that every version differs.
    pub fn publish(&self, name: &str) -> String {
        let marker = format!("published {:?}", Instant::now());
        self.aws(&[
            "lambda",
            "update-function-configuration",
            "--function-name",
            name,
            "--description",
            &marker,
        ]);
        let published = self.aws(&["lambda", "publish-version", "--function-name", name]);
        published["Version"].as_str().unwrap().to_owned()
    }

    /// A new function answering which version it is (`prefix` made unique), with versions 1
    /// and 2 published and alias `live` on 1; its name.
    pub fn versioned(&self, prefix: &str) -> String {
        let name = crate::emulator::unique(prefix);
        self.create(&name, VERSIONED_APP, &[]);
        assert_eq!(self.publish(&name), "1");
        assert_eq!(self.publish(&name), "2");
        self.create_alias(&name, "live", "1");
        name
    }

    /// The function's ARN, without a qualifier.
    pub fn arn(&self, name: &str) -> String {
        let got = self.aws(&["lambda", "get-function", "--function-name", name]);
        got["Configuration"]["FunctionArn"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn create_alias(&self, name: &str, alias: &str, version: &str) {
        self.aws(&[
            "lambda",
            "create-alias",
            "--function-name",
            name,
            "--name",
            alias,
            "--function-version",
            version,
        ]);
    }

    /// The version the alias points at, and its extra weights (version → weight).
    pub fn alias(&self, name: &str, alias: &str) -> (String, serde_json::Map<String, Value>) {
        let got = self.aws(&[
            "lambda",
            "get-alias",
            "--function-name",
            name,
            "--name",
            alias,
        ]);
        let weights = got["RoutingConfig"]["AdditionalVersionWeights"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        (got["FunctionVersion"].as_str().unwrap().to_owned(), weights)
    }

    /// The emulator's log of invocations, oldest first.
    pub fn invocations(&self) -> Vec<Value> {
        let script = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())";
        let url = format!("{}/cutover-emulator/lambda-invocations", self.emulator);
        let out = Command::new(venv("python"))
            .args(["-c", script, &url])
            .env("NO_PROXY", "127.0.0.1,localhost")
            .output()
            .expect("python runs");
        assert!(out.status.success(), "{}", stderr(&out));
        let log: Value = serde_json::from_str(&stdout(&out)).unwrap();
        log["invocations"].as_array().cloned().unwrap_or_default()
    }

    /// The invocations of `function` once none of them is still running (at most 60 s).
    pub fn finished_invocations(&self, function: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let of: Vec<Value> = self
                .invocations()
                .into_iter()
                .filter(|i| i["function_name"] == function)
                .collect();
            if of.iter().all(|i| i["status"] != "running") || Instant::now() > deadline {
                return of;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
