//! `cutover local deploy --blue-green`, run as users run it: replacement hosts made as folders
//! in the state directory, the web app installed there, traffic moved in the local registry,
//! the originals terminated; a failing revision, a ready wait continued from another process
//! or run out, an alarm during the termination wait, and a deploy killed while it waits.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cutover_tests::{binary, failing_webapp, stderr, stdout, webapp};
use serde_json::Value;
use tempfile::TempDir;

/// Long enough for anything a test waits for; a test that gets there has failed.
const PATIENCE: Duration = Duration::from_secs(60);

struct Local {
    state: TempDir,
}

impl Local {
    fn new() -> Self {
        Local {
            state: tempfile::tempdir().unwrap(),
        }
    }

    fn host(&self, name: &str) -> PathBuf {
        self.state.path().join("hosts").join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(binary("cutover"));
        c.arg("local")
            .args(args)
            .arg("--state-dir")
            .arg(self.state.path())
            .current_dir(self.state.path())
            .env_remove("CUTOVER_STATE_DIR");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("cutover runs")
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cutover starts")
    }

    /// `deploy REVISION ARGS --json`, and what it printed.
    fn deploy(&self, revision: &Path, args: &[&str]) -> (Output, Value) {
        let revision = revision.to_str().unwrap();
        let out = self.run(&[&["deploy", revision, "--json"], args].concat());
        let json = serde_json::from_str(stdout(&out).trim()).unwrap_or_else(|e| {
            panic!("{e}: {}\n{}", stdout(&out), stderr(&out));
        });
        (out, json)
    }

    fn status(&self) -> Value {
        let out = self.run(&["status", "--json"]);
        serde_json::from_str(stdout(&out).trim()).unwrap_or(Value::Null)
    }

    /// Polls `status --json` until `done` holds of it.
    fn wait_for(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let status = self.status();
            if done(&status) {
                return status;
            }
            assert!(Instant::now() < deadline, "never {what}: {status:#}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The traffic registry's line of `status`.
    fn traffic(&self) -> String {
        let out = self.run(&["status"]);
        stdout(&out)
            .lines()
            .find(|l| l.starts_with("traffic:"))
            .unwrap_or_default()
            .to_owned()
    }
}

/// Each target's id, label and status.
fn targets(json: &Value) -> Vec<(String, String, String)> {
    json["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["targetId"].as_str().unwrap().to_owned(),
                t["instanceLabel"].as_str().unwrap_or("").to_owned(),
                t["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn status_of(json: &Value) -> &str {
    json["deploymentInfo"]["status"].as_str().unwrap_or("")
}

fn events_of(json: &Value, target: &str) -> Vec<(String, String)> {
    json["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["targetId"] == target)
        .unwrap()["lifecycleEvents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["lifecycleEventName"].as_str().unwrap().to_owned(),
                e["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn installed(root: &Path) -> bool {
    root.join("srv/webapp/index.html").is_file()
}

/// Two original hosts with the web app, in service.
fn with_originals() -> Local {
    let local = Local::new();
    let (out, _) = local.deploy(&webapp(), &["--hosts", "2", "--traffic-control"]);
    assert!(out.status.success(), "{}", stderr(&out));
    local
}

#[test]
fn traffic_moves_to_new_hosts_and_the_originals_are_terminated() {
    let local = with_originals();
    let (out, json) = local.deploy(&webapp(), &["--blue-green", "--green-hosts", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(status_of(&json), "Succeeded");
    let t = targets(&json);
    let labelled = |label: &str| t.iter().filter(|t| t.1 == label).count();
    assert_eq!((labelled("Blue"), labelled("Green")), (2, 3), "{t:?}");
    assert!(t.iter().all(|t| t.2 == "Succeeded"), "{t:?}");
    assert_eq!(
        events_of(&json, "host-1"),
        [
            ("BeforeBlockTraffic".into(), "Succeeded".into()),
            ("BlockTraffic".into(), "Succeeded".into()),
            ("AfterBlockTraffic".into(), "Succeeded".into())
        ]
    );
    for i in 1..=3 {
        assert!(installed(&local.host(&format!("LocalFleet-green-{i}"))));
    }
    // Terminated: the originals' folders are gone.
    assert!(!local.host("host-1").exists() && !local.host("host-2").exists());
    assert_eq!(
        local.traffic(),
        "traffic: LocalFleet-green-1 in service, LocalFleet-green-2 in service, LocalFleet-green-3 in service"
    );
    let text = stdout(&local.run(&["status"]));
    assert!(text.contains("LocalFleet-green-1 (Green)"), "{text}");

    // The group is the replacements now: the next deployment replaces them in turn.
    let (out, json) = local.deploy(&webapp(), &["--blue-green", "--keep-blue"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let blue: Vec<_> = targets(&json)
        .into_iter()
        .filter(|t| t.1 == "Blue")
        .map(|t| t.0)
        .collect();
    assert_eq!(
        blue,
        [
            "LocalFleet-green-1",
            "LocalFleet-green-2",
            "LocalFleet-green-3"
        ]
    );
    // Kept alive, out of service.
    assert!(installed(&local.host("LocalFleet-green-1")));
    assert!(
        local
            .traffic()
            .contains("LocalFleet-green-1 out of service")
    );
    assert!(local.traffic().contains("LocalFleet-green-6 in service"));
}

#[test]
fn a_failure_on_green_leaves_blue_serving_and_removes_green() {
    let local = with_originals();
    let failing = failing_webapp();
    let (out, json) = local.deploy(failing.path(), &["--blue-green"]);
    assert!(!out.status.success());
    assert_eq!(status_of(&json), "Failed");
    assert_eq!(
        json["deploymentInfo"]["errorInformation"]["code"],
        "HEALTH_CONSTRAINTS"
    );
    assert!(!local.host("LocalFleet-green-1").exists());
    assert!(!local.host("LocalFleet-green-2").exists());
    assert!(installed(&local.host("host-1")) && installed(&local.host("host-2")));
    assert_eq!(
        local.traffic(),
        "traffic: host-1 in service, host-2 in service"
    );
    // Blue never left service: no rollback deployment was needed.
    let list = local.run(&["list", "--json"]);
    let list: Value = serde_json::from_str(stdout(&list).trim()).unwrap();
    assert_eq!(list["deployments"].as_array().unwrap().len(), 2);
    // The group's hosts are still the originals.
    let (out, json) = local.deploy(&webapp(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ids: Vec<_> = targets(&json).into_iter().map(|t| t.0).collect();
    assert_eq!(ids, ["host-1", "host-2"]);
}

#[test]
fn a_stop_wait_is_released_by_continue_or_stops_the_deployment_when_it_runs_out() {
    let local = with_originals();
    let webapp = webapp();
    let revision = webapp.to_str().unwrap();
    let child = local.spawn(&["deploy", revision, "--blue-green", "--ready-action", "STOP"]);
    let ready = local.wait_for("Ready", |s| status_of(s) == "Ready");
    let green: Vec<_> = targets(&ready)
        .into_iter()
        .filter(|t| t.1 == "Green")
        .collect();
    assert_eq!(green.len(), 2);
    assert!(green.iter().all(|t| t.2 == "Ready"), "{green:?}");
    assert_eq!(
        local.traffic(),
        "traffic: host-1 in service, host-2 in service"
    );
    let id = ready["deploymentInfo"]["deploymentId"].as_str().unwrap();
    let out = local.run(&["continue", id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let deployed = child.wait_with_output().unwrap();
    assert!(deployed.status.success(), "{}", stderr(&deployed));
    assert_eq!(status_of(&local.status()), "Succeeded");
    assert!(local.traffic().contains("LocalFleet-green-1 in service"));

    // A wait that runs out stops the deployment; a second continue has nothing to continue.
    let (out, json) = local.deploy(
        &webapp,
        &[
            "--blue-green",
            "--ready-action",
            "STOP",
            "--ready-wait",
            "60",
            "--time-scale",
            "3600",
        ],
    );
    assert!(!out.status.success());
    assert_eq!(status_of(&json), "Stopped");
    assert_eq!(
        json["deploymentInfo"]["errorInformation"]["code"],
        "TIMEOUT"
    );
    assert!(!local.host("LocalFleet-green-3").exists());
    assert!(local.traffic().contains("LocalFleet-green-1 in service"));
    let id = json["deploymentInfo"]["deploymentId"].as_str().unwrap();
    let out = local.run(&["continue", id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is not waiting"), "{}", stderr(&out));
}

#[test]
fn an_alarm_during_the_termination_wait_routes_traffic_back_to_blue() {
    let local = with_originals();
    let webapp = webapp();
    let revision = webapp.to_str().unwrap();
    let child = local.spawn(&[
        "deploy",
        revision,
        "--blue-green",
        "--terminate-after",
        "60",
        "--alarm",
        "errors",
    ]);
    local.wait_for("waiting to terminate", |s| {
        s["deploymentInfo"]["instanceTerminationWaitTimeStarted"] == true
    });
    assert!(local.traffic().contains("LocalFleet-green-1 in service"));
    assert!(local.traffic().contains("host-1 out of service"));
    let out = local.run(&["alarm", "errors", "--state", "ALARM"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let deployed = child.wait_with_output().unwrap();
    assert!(!deployed.status.success());
    let json = local.status();
    assert_eq!(status_of(&json), "Stopped");
    assert_eq!(
        json["deploymentInfo"]["errorInformation"]["code"],
        "ALARM_ACTIVE"
    );
    assert_eq!(
        events_of(&json, "host-1")[3..],
        [
            ("BeforeAllowTraffic".into(), "Succeeded".into()),
            ("AllowTraffic".into(), "Succeeded".into()),
            ("AfterAllowTraffic".into(), "Succeeded".into())
        ]
    );
    assert_eq!(
        local.traffic(),
        "traffic: host-1 in service, host-2 in service"
    );
    assert!(!local.host("LocalFleet-green-1").exists());
    assert!(installed(&local.host("host-1")));
    let message = json["deploymentInfo"]["rollbackInfo"]["rollbackMessage"]
        .as_str()
        .unwrap();
    assert!(message.contains("routed back"), "{message}");
}

#[test]
fn a_deploy_killed_while_it_waits_is_resumed_by_continue() {
    let local = with_originals();
    let webapp = webapp();
    let revision = webapp.to_str().unwrap();
    let mut child = local.spawn(&["deploy", revision, "--blue-green", "--ready-action", "STOP"]);
    let ready = local.wait_for("Ready", |s| status_of(s) == "Ready");
    child.kill().unwrap();
    child.wait().unwrap();
    let id = ready["deploymentInfo"]["deploymentId"].as_str().unwrap();
    let out = local.run(&["continue", id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json = local.status();
    assert_eq!(status_of(&json), "Succeeded");
    assert!(local.traffic().contains("LocalFleet-green-2 in service"));
    assert!(!local.host("host-1").exists());
}
