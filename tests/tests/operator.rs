//! The operator commands (`cutover deploy`, `status`, `list`, `stop`, `continue`) end to end:
//! the real `cutover` binary against a real `cutover serve`, which deploys S3 revisions from the
//! AWS emulator to its local hosts.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use cutover_tests::emulator::Emulator;
use cutover_tests::serve::{
    KEY_ID, ROLE, SECRET, Serve, failing_webapp, slow_webapp, upload_revisions,
};
use cutover_tests::{binary, repo_root, stderr, stdout};
use serde_json::Value;

/// A server with application Shop and its group Web, and revisions in S3.
struct Stack {
    serve: Serve,
    bucket: String,
    /// Keeps the revisions' folders until the test ends.
    _revisions: Vec<tempfile::TempDir>,
}

impl Stack {
    /// `good.zip` (the web app), `bad.zip` (its ValidateService fails) and `slow.zip` (its
    /// ApplicationStart takes 5 s longer) in a new bucket; application Shop with group Web.
    fn start() -> Stack {
        let failing = failing_webapp();
        let slow = slow_webapp(5);
        let webapp = repo_root().join("examples/webapp");
        let bucket = upload_revisions(&[
            ("good.zip", &webapp),
            ("bad.zip", failing.path()),
            ("slow.zip", slow.path()),
        ]);
        let serve = Serve::start_reading_s3(&Emulator::url());
        serve.ok(&["create-application", "--application-name", "Shop"]);
        serve.ok(&[
            "create-deployment-group",
            "--application-name",
            "Shop",
            "--deployment-group-name",
            "Web",
            "--service-role-arn",
            ROLE,
        ]);
        Stack {
            serve,
            bucket,
            _revisions: vec![failing, slow],
        }
    }

    fn location(&self, key: &str) -> String {
        format!("bucket={},key={key},bundleType=zip", self.bucket)
    }

    /// `cutover ARGS` with this server as the endpoint and its keys in the environment.
    fn cutover(&self, args: &[&str]) -> Output {
        self.cutover_with(
            args,
            &[
                ("CUTOVER_ENDPOINT", &self.serve.url),
                ("AWS_ACCESS_KEY_ID", KEY_ID),
                ("AWS_SECRET_ACCESS_KEY", SECRET),
            ],
        )
    }

    /// `cutover ARGS` with only `env` (and a home with no AWS files) for the connection.
    fn cutover_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(binary("cutover"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.serve.state)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .envs(env.iter().copied())
            .output()
            .expect("cutover runs")
    }

    /// `cutover deploy` of `key` to Shop/Web, with `extra` options.
    fn deploy(&self, key: &str, extra: &[&str]) -> Output {
        let location = self.location(key);
        let mut args = vec![
            "deploy",
            "--application-name",
            "Shop",
            "--deployment-group-name",
            "Web",
            "--s3-location",
            &location,
        ];
        args.extend(extra);
        self.cutover(&args)
    }

    /// `cutover deploy --no-wait`: the id it printed.
    fn start_deploy(&self, key: &str) -> String {
        let out = self.deploy(key, &["--no-wait"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let id = stdout(&out).trim().to_owned();
        assert!(id.starts_with("d-") && id.len() == 11, "{id:?}");
        id
    }

    /// The deployment as `aws deploy get-deployment` shows it.
    fn info(&self, id: &str) -> Value {
        self.serve.ok(&["get-deployment", "--deployment-id", id])["deploymentInfo"].clone()
    }

    /// Waits until the deployment's status is `status`.
    fn wait_for_status(&self, id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.info(id)["status"] != status {
            assert!(
                Instant::now() < deadline,
                "{id} never got to {status}: {}",
                self.info(id)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The id of the deployment an output's summary is about (`d-XXXXXXXXX Succeeded in ...`).
fn summary_id(text: &str, status: &str) -> String {
    text.lines()
        .find_map(|l| {
            let (id, rest) = l.split_once(' ')?;
            (id.starts_with("d-") && rest.starts_with(&format!("{status} in "))).then_some(id)
        })
        .unwrap_or_else(|| panic!("no summary line of a {status} deployment in\n{text}"))
        .to_owned()
}

/// The row of `host` in a summary table.
fn row<'a>(text: &'a str, host: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(&format!("{host} ")))
        .unwrap_or_else(|| panic!("no row for {host} in\n{text}"))
}

#[test]
fn deploy_follows_a_good_revision_to_its_end_and_exits_0() {
    let stack = Stack::start();
    let out = stack.deploy(
        "good.zip",
        &[
            "--description",
            "from cutover deploy",
            "--file-exists-behavior",
            "OVERWRITE",
            "--deployment-config-name",
            "CodeDeployDefault.AllAtOnce",
        ],
    );
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{text}\n{err}");
    let id = summary_id(&text, "Succeeded");

    // The same summary table as `cutover local deploy`.
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "Host",
            "ApplicationStop",
            "DownloadBundle",
            "BeforeInstall",
            "Install",
            "AfterInstall",
            "ApplicationStart",
            "ValidateService",
            "Status"
        ],
        "{text}"
    );
    let host = row(&text, "host-1");
    assert!(host.ends_with("Succeeded"), "{text}");
    // Seven lifecycle events and the host itself.
    assert_eq!(host.matches("Succeeded").count(), 8, "{text}");
    assert!(text.contains("1 host: 1 Succeeded"), "{text}");
    // Progress went to stderr, as a timeline without a terminal.
    assert!(
        err.starts_with(&format!(
            "Deploying s3://{}/good.zip to Web of Shop: {id}",
            stack.bucket
        )),
        "{err}"
    );
    assert!(err.contains("host-1  ValidateService"), "{err}");
    assert!(err.contains(&format!("{id} Succeeded in ")), "{err}");

    // What it asked for is what the API made.
    let info = stack.info(&id);
    assert_eq!(info["description"], "from cutover deploy");
    assert_eq!(info["fileExistsBehavior"], "OVERWRITE");
    assert_eq!(info["deploymentConfigName"], "CodeDeployDefault.AllAtOnce");
    assert_eq!(info["revision"]["s3Location"]["key"], "good.zip");
    assert!(
        stack
            .serve
            .state
            .join("hosts/host-1/srv/webapp/index.html")
            .is_file()
    );
}

#[test]
fn deploy_of_a_failing_revision_exits_nonzero_with_the_error() {
    let stack = Stack::start();
    let out = stack.deploy("bad.zip", &["--ignore-application-stop-failures"]);
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}\n{err}");
    let id = summary_id(&text, "Failed");
    assert!(row(&text, "host-1").ends_with("Failed"), "{text}");
    assert!(text.contains("1 host: 1 Failed"), "{text}");
    // The failed host's diagnostics and the end of its log, as local mode shows them.
    assert!(
        text.contains("\nhost-1: ValidateService Failed after "),
        "{text}"
    );
    assert!(text.contains("| [stderr]the health check failed"), "{text}");
    let code = stack.info(&id)["errorInformation"]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains(&format!("\nError: {code}: ")), "{text}");
    assert!(
        err.lines()
            .any(|l| l.starts_with(&format!("deployment {id} is Failed: {code}: "))),
        "{err}"
    );
    assert_eq!(stack.info(&id)["ignoreApplicationStopFailures"], true);
}

#[test]
fn no_wait_returns_the_id_and_status_wait_follows_it() {
    let stack = Stack::start();
    let id = stack.start_deploy("slow.zip");
    // --no-wait returned while the hook still sleeps.
    assert_ne!(stack.info(&id)["status"], "Succeeded");

    let out = stack.cutover(&["status", &id, "--wait"]);
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{text}\n{err}");
    assert_eq!(summary_id(&text, "Succeeded"), id);
    assert!(err.contains("host-1  ApplicationStart"), "{err}");
    assert!(err.contains(&format!("{id} Succeeded in ")), "{err}");

    // Without --wait: the summary at once, the same table.
    let out = stack.cutover(&["status", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), text);
    assert_eq!(stderr(&out), "");

    let out = stack.cutover(&["status", "d-AAAAAAAAA"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "error: GetDeployment failed: DeploymentDoesNotExistException: The deployment d-AAAAAAAAA could not be found."
    );
    let out = stack.cutover(&["status", "nope"]);
    assert!(
        stderr(&out).contains("'nope' is not a deployment id"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn list_shows_deployments_newest_first_with_filters() {
    let stack = Stack::start();
    stack.serve.ok(&[
        "create-deployment-group",
        "--application-name",
        "Shop",
        "--deployment-group-name",
        "Api",
        "--service-role-arn",
        ROLE,
    ]);
    let good = stack.start_deploy("good.zip");
    let bad = stack.start_deploy("bad.zip");
    stack.wait_for_status(&good, "Succeeded");
    stack.wait_for_status(&bad, "Failed");
    // Groups made through the API share the simulated host host-1, so Api deploys once Web is
    // done, over the files Web installed.
    let location = stack.location("good.zip");
    let api = stack.cutover(&[
        "deploy",
        "--application-name",
        "Shop",
        "--deployment-group-name",
        "Api",
        "--s3-location",
        &location,
        "--file-exists-behavior",
        "OVERWRITE",
    ]);
    assert!(api.status.success(), "{}\n{}", stdout(&api), stderr(&api));
    let api = summary_id(&stdout(&api), "Succeeded");

    let ids = |out: &Output| -> Vec<String> {
        assert!(out.status.success(), "{}", stderr(out));
        let text = stdout(out);
        let mut lines = text.lines();
        assert!(
            lines.next().unwrap().starts_with("DEPLOYMENT   STATUS"),
            "{text}"
        );
        lines
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .collect()
    };
    let all = stack.cutover(&["list"]);
    assert_eq!(ids(&all), [api.as_str(), &bad, &good], "newest first");
    let text = stdout(&all);
    let bad_row = text.lines().find(|l| l.starts_with(&bad)).unwrap();
    let fields: Vec<&str> = bad_row.split_whitespace().collect();
    assert_eq!(&fields[1..5], ["Failed", "Shop", "Web", "0/1"], "{text}");
    let good_row = text.lines().find(|l| l.starts_with(&good)).unwrap();
    assert!(good_row.contains(" Succeeded "), "{text}");
    assert!(good_row.contains(" 1/1"), "{text}");

    let web = stack.cutover(&[
        "list",
        "--application-name",
        "Shop",
        "--deployment-group-name",
        "Web",
    ]);
    assert_eq!(ids(&web), [bad.as_str(), &good]);
    let failed = stack.cutover(&["list", "--include-only-statuses", "Failed", "Stopped"]);
    assert_eq!(ids(&failed), [bad.as_str()]);
    let none = stack.cutover(&[
        "list",
        "--application-name",
        "Shop",
        "--include-only-statuses",
        "Stopped",
    ]);
    assert_eq!(stdout(&none).trim(), "no deployments match");

    let out = stack.cutover(&["list", "--application-name", "Nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "error: ListDeployments failed: ApplicationDoesNotExistException: No application found for name: Nope"
    );
    let out = stack.cutover(&["list", "--include-only-statuses", "Done"]);
    assert!(
        stderr(&out).contains("'Done' is not a valid deployment status"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn list_follows_every_page() {
    let stack = Stack::start();
    // More deployments than one page of ListDeployments holds (100), made quickly by
    // `cutover local deploy` on the server's state directory.
    let webapp = repo_root().join("examples/webapp");
    for _ in 0..101 {
        let out = Command::new(binary("cutover"))
            .args(["local", "deploy"])
            .arg(&webapp)
            .arg("--state-dir")
            .arg(&stack.serve.state)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = stack.cutover(&["list", "--application-name", "LocalApp"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 101, "{text}");
    assert!(rows.iter().all(|r| r.contains(" Succeeded ")), "{text}");
}

#[test]
fn stop_ends_a_slow_deployment_and_continue_is_refused_clearly() {
    let stack = Stack::start();
    // A first success gives the group a revision to roll back to.
    assert!(stack.deploy("good.zip", &[]).status.success());
    let id = stack.start_deploy("slow.zip");
    stack.wait_for_status(&id, "InProgress");

    // Only blue/green deployments wait to be continued.
    let out = stack.cutover(&["continue", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "error: deployment {id} cannot be continued: ContinueDeployment failed: UnsupportedActionForDeploymentTypeException: The deployment {id} is an in-place deployment; only a blue/green deployment to instances waits to be continued."
        )
    );

    let out = stack.cutover(&["stop", &id, "--auto-rollback-enabled"]);
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{text}\n{err}");
    assert!(err.starts_with(&format!("Stopping {id}: ")), "{err}");
    assert_eq!(summary_id(&text, "Stopped"), id);
    assert!(text.contains("Error: MANUAL_STOP: "), "{text}");
    // The rollback it asked for is followed too, under its own heading, and shown after.
    let rollback = stack.info(&id)["rollbackInfo"]["rollbackDeploymentId"]
        .as_str()
        .unwrap_or_else(|| panic!("no rollback: {}", stack.info(&id)))
        .to_owned();
    assert!(
        err.contains(&format!("Rolling back with {rollback}")),
        "{err}"
    );
    assert_eq!(summary_id(&text, "Succeeded"), rollback);
    assert!(
        text.find(&format!("{rollback} Succeeded")) > text.find(&format!("{id} Stopped")),
        "{text}"
    );

    let out = stack.cutover(&["status", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("deployment {id} is Stopped: MANUAL_STOP: ")),
        "{}",
        stderr(&out)
    );
    let out = stack.cutover(&["stop", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(&format!(
            "error: StopDeployment failed: DeploymentAlreadyCompletedException: The deployment {id} has already completed (Stopped)."
        )),
        "{}",
        stderr(&out)
    );
    let out = stack.cutover(&["continue", &id]);
    assert!(
        stderr(&out).contains("DeploymentAlreadyCompletedException"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn stop_no_wait_returns_at_once() {
    let stack = Stack::start();
    let id = stack.start_deploy("slow.zip");
    stack.wait_for_status(&id, "InProgress");
    let out = stack.cutover(&["stop", &id, "--no-wait"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).starts_with(&format!("Stopping {id}: ")),
        "{}",
        stderr(&out)
    );
    stack.wait_for_status(&id, "Stopped");
}

/// Writes `text` to `dir/name`; its path.
fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn profiles_sign_with_their_keys_and_a_wrong_secret_is_refused_clearly() {
    let stack = Stack::start();
    let id = stack.start_deploy("good.zip");
    stack.wait_for_status(&id, "Succeeded");
    let files = tempfile::tempdir().unwrap();
    let credentials = write(
        files.path(),
        "credentials",
        &format!(
            "[cutover]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n\n\
             [wrong]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = not-the-secret\n"
        ),
    );
    let config = write(
        files.path(),
        "config",
        "[profile cutover]\nregion = eu-west-1\n",
    );
    let env = [
        ("CUTOVER_ENDPOINT", stack.serve.url.as_str()),
        ("AWS_SHARED_CREDENTIALS_FILE", credentials.as_str()),
        ("AWS_CONFIG_FILE", config.as_str()),
    ];

    let out = stack.cutover_with(&["status", &id, "--profile", "cutover"], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(summary_id(&stdout(&out), "Succeeded"), id);
    // AWS_PROFILE names it just as well.
    let mut with_profile = env.to_vec();
    with_profile.push(("AWS_PROFILE", "cutover"));
    let out = stack.cutover_with(&["status", &id], &with_profile);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = stack.cutover_with(&["status", &id, "--profile", "wrong"], &env);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "error: {} refused the signature of access key {KEY_ID} from profile 'wrong' in {credentials}: the secret access key is not the one that goes with it",
            stack.serve.url
        )),
        "{err}"
    );

    let out = stack.cutover_with(&["status", &id, "--profile", "missing"], &env);
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "error: profile 'missing' (from --profile) is in neither {credentials} nor {config}"
        )
    );

    // The default profile of ~/.aws/credentials, when the environment has no keys.
    let home = tempfile::tempdir().unwrap();
    write(
        home.path(),
        ".aws/credentials",
        &format!("[default]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n"),
    );
    let out = Command::new(binary("cutover"))
        .args(["status", &id, "--endpoint", &stack.serve.url])
        .env_clear()
        .env("HOME", home.path())
        .env("NO_PROXY", "127.0.0.1,localhost")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    // A key the server does not know.
    let out = stack.cutover_with(
        &["list"],
        &[
            ("CUTOVER_ENDPOINT", stack.serve.url.as_str()),
            ("AWS_ACCESS_KEY_ID", "AKUNKNOWN"),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
    );
    assert!(
        stderr(&out).starts_with(&format!(
            "error: {} does not accept access key AKUNKNOWN from the environment",
            stack.serve.url
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn missing_settings_and_resources_get_clear_errors() {
    let stack = Stack::start();
    let keys = [
        ("AWS_ACCESS_KEY_ID", KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
    ];

    // No endpoint.
    let out = stack.cutover_with(&["list"], &keys);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "error: no CodeDeploy endpoint to call: pass --endpoint URL or set CUTOVER_ENDPOINT (http://127.0.0.1:7447 for `cutover serve`, or your stack's API URL)"
    );
    // The aws CLI's variables name it too.
    let mut env = keys.to_vec();
    env.push(("AWS_ENDPOINT_URL_CODEDEPLOY", stack.serve.url.as_str()));
    assert!(stack.cutover_with(&["list"], &env).status.success());

    // No credentials.
    let out = stack.cutover_with(&["list", "--endpoint", &stack.serve.url], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(
            "error: no credentials to sign with: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --profile NAME"
        ),
        "{}",
        stderr(&out)
    );

    // Nothing listening.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let out = stack.cutover_with(&["list", "--endpoint", &closed], &keys);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("error: cannot reach {closed}: ")),
        "{err}"
    );
    assert!(err.contains("--endpoint or CUTOVER_ENDPOINT"), "{err}");

    // An application that does not exist.
    let location = stack.location("good.zip");
    let out = stack.cutover(&[
        "deploy",
        "--application-name",
        "Nope",
        "--deployment-group-name",
        "Web",
        "--s3-location",
        &location,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "error: CreateDeployment failed: ApplicationDoesNotExistException: No application found for name: Nope"
    );
    let out = stack.deploy("good.zip", &["--deployment-config-name", "Nope"]);
    assert_eq!(
        stderr(&out).trim(),
        "error: CreateDeployment failed: DeploymentConfigDoesNotExistException: No deployment configuration found for name: Nope"
    );

    // A malformed --s3-location never reaches the server.
    let out = stack.cutover(&[
        "deploy",
        "--application-name",
        "Shop",
        "--deployment-group-name",
        "Web",
        "--s3-location",
        "bucket=b,bundleType=zip",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the key is missing; expected bucket=BUCKET,key=KEY"),
        "{}",
        stderr(&out)
    );
    let listed = stack.serve.ok(&["list-deployments"]);
    assert_eq!(listed["deployments"], serde_json::json!([]));
}
