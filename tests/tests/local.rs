//! `cutover local`, run as users run it: real revisions with real hook scripts deployed to hosts
//! that are temporary directories, each test with its own state directory, and other processes
//! (a second deploy, `stop`, `alarm`) acting on a deployment while it runs. A deploy killed with
//! SIGKILL at any moment is resumed by the next command without running a finished lifecycle
//! event again.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cutover_tests::{binary, copy_dir, repo_root, stderr, stdout};
use serde_json::Value;
use tempfile::TempDir;

const IN_PLACE_EVENTS: [&str; 7] = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
];

/// Long enough for anything a test waits for; a test that gets there has failed.
const PATIENCE: Duration = Duration::from_secs(30);

/// One test's world: a state directory, and a scratch directory for revisions and explicit
/// host roots (also the working directory of every command, so that a stray default state
/// directory would land there rather than in the repository).
struct Local {
    state: TempDir,
    scratch: TempDir,
}

impl Local {
    fn new() -> Self {
        Local {
            state: tempfile::tempdir().unwrap(),
            scratch: tempfile::tempdir().unwrap(),
        }
    }

    fn state(&self) -> &Path {
        self.state.path()
    }

    fn scratch(&self) -> &Path {
        self.scratch.path()
    }

    /// The root of a simulated host, `host-<i>`.
    fn host(&self, i: u32) -> PathBuf {
        self.state().join("hosts").join(format!("host-{i}"))
    }

    /// `cutover local ARGS --state-dir STATE`, not started yet.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(binary("cutover"));
        c.arg("local")
            .args(args)
            .arg("--state-dir")
            .arg(self.state())
            .current_dir(self.scratch())
            .env_remove("CUTOVER_STATE_DIR");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("cutover runs")
    }

    /// `deploy REVISION ARGS --json`: the output, and what it printed as JSON.
    fn deploy(&self, revision: &Path, args: &[&str]) -> (Output, Value) {
        let out = self
            .command(&[&["deploy", path(revision), "--json"], args].concat())
            .output()
            .expect("cutover runs");
        let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "deploy printed no JSON ({e}):\n{}\n{}",
                stdout(&out),
                stderr(&out)
            )
        });
        (out, json)
    }

    /// Starts `deploy REVISION ARGS --json` in the background.
    fn spawn_deploy(&self, revision: &Path, args: &[&str]) -> Running {
        let child = self
            .command(&[&["deploy", path(revision), "--json"], args].concat())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cutover starts");
        Running(Some(child))
    }

    /// `status ID --json` (the latest deployment without an id).
    fn status(&self, id: Option<&str>) -> Value {
        let out = self.run(&[&["status", "--json"], id.as_slice()].concat());
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("status printed no JSON ({e}): {}", stderr(&out)))
    }

    /// `list --json`: every deployment's deploymentInfo, oldest first.
    fn list(&self) -> Vec<Value> {
        let out = self.run(&["list", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        json["deployments"].as_array().unwrap().clone()
    }

    /// Waits until `list` shows `n` deployments and returns them.
    fn wait_for_deployments(&self, n: usize) -> Vec<Value> {
        wait_for(&format!("{n} deployments"), || {
            Some(self.list()).filter(|l| l.len() >= n)
        })
    }

    /// Waits until the deployment runs lifecycle events on `host`.
    fn wait_until_running_on(&self, id: &str, host: &str) {
        wait_for(&format!("{id} to run on {host}"), || {
            let status = self.status(Some(id));
            let started = status["targets"]
                .as_array()?
                .iter()
                .any(|t| t["targetId"] == host && t["status"] == "InProgress");
            started.then_some(())
        });
    }

    /// A copy of `examples/webapp` in the scratch directory, to change as a test needs.
    fn webapp(&self, name: &str) -> PathBuf {
        let dir = self.scratch().join(name);
        copy_dir(&repo_root().join("examples/webapp"), &dir);
        dir
    }

    /// A small revision of its own kind: `app/version.txt` (holding `name`) goes to `/srv/app`;
    /// BeforeInstall sleeps `probe.sleep` seconds, AfterInstall appends `$DEPLOYMENT_GROUP_ID`
    /// to `/var/lib/probe/group-ids`, and ValidateService fails on `probe.fail_on`.
    fn probe(&self, name: &str, probe: Probe) -> PathBuf {
        let dir = self.scratch().join(name);
        std::fs::create_dir_all(dir.join("app")).unwrap();
        std::fs::write(dir.join("app/version.txt"), format!("{name}\n")).unwrap();
        std::fs::write(
            dir.join("appspec.yml"),
            "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: /srv/app\n\
             file_exists_behavior: OVERWRITE\nhooks:\n\
             \x20 BeforeInstall:\n    - location: hooks/before_install.sh\n      timeout: 60\n\
             \x20 AfterInstall:\n    - location: hooks/after_install.sh\n\
             \x20 ValidateService:\n    - location: hooks/validate.sh\n",
        )
        .unwrap();
        let sleep = if probe.sleep > 0.0 {
            format!("sleep {}\n", probe.sleep)
        } else {
            String::new()
        };
        write_script(
            &dir.join("hooks/before_install.sh"),
            &format!("{sleep}echo \"BeforeInstall done on $(basename \"$root\")\"\n"),
        );
        write_script(
            &dir.join("hooks/after_install.sh"),
            "mkdir -p \"$root/var/lib/probe\"\n\
             echo \"$DEPLOYMENT_GROUP_ID\" >>\"$root/var/lib/probe/group-ids\"\n",
        );
        let fail = probe.fail_on.map_or(String::new(), |host| {
            format!(
                "case \"$root\" in */{host}) echo \"{host}: /health answered 503\"; \
                 echo \"{host} is unhealthy\" >&2; exit 3 ;; esac\n"
            )
        });
        write_script(
            &dir.join("hooks/validate.sh"),
            &format!("{fail}echo \"healthy on $(basename \"$root\")\"\n"),
        );
        dir
    }
}

/// What a [`Local::probe`] revision's hooks do.
#[derive(Clone, Copy, Debug, Default)]
struct Probe<'a> {
    /// Seconds that BeforeInstall sleeps on every host.
    sleep: f32,
    /// The host whose ValidateService fails.
    fail_on: Option<&'a str>,
}

/// A deploy running in the background; killed if the test ends before it does.
struct Running(Option<Child>);

impl Running {
    /// Sends SIGINT, as Ctrl-C in the deploy's terminal would.
    fn interrupt(&self) {
        let pid = self.0.as_ref().expect("still running").id();
        let sent = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Kills the deploy with SIGKILL, as a crash would end it, and waits for it to go.
    fn kill(&mut self) {
        let child = self.0.as_mut().expect("still running");
        // It may have ended on its own just before; either way it is gone after the wait.
        let _ = child.kill();
        child.wait().unwrap();
    }

    /// Waits for the deploy to end and returns its output.
    fn finish(mut self) -> Output {
        let child = self.0.take().expect("not finished yet");
        child.wait_with_output().expect("cutover ends")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Writes a hook script that runs under `sh -eu` with `$root` set to the host root.
fn write_script(file: &Path, body: &str) {
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        file,
        format!("#!/bin/sh\nset -eu\nroot=\"${{CUTOVER_HOST_ROOT%/}}\"\n{body}"),
    )
    .unwrap();
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Puts `lines` at the top of a script, just after its `set -eu`.
fn prepend_to_script(file: &Path, lines: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    let (head, rest) = text.split_once("set -eu\n").expect("the script sets -eu");
    std::fs::write(file, format!("{head}set -eu\n{lines}{rest}")).unwrap();
}

/// The ValidateService of a webapp copy fails on `host`, saying why on stdout and stderr.
fn fail_webapp_health_check_on(revision: &Path, host: &str) {
    prepend_to_script(
        &revision.join("scripts/validate.sh"),
        &format!(
            "case \"${{CUTOVER_HOST_ROOT%/}}\" in */{host}) \
             echo \"{host}: /health answered 503\"; echo \"webapp is unhealthy on {host}\" >&2; \
             exit 1 ;; esac\n"
        ),
    );
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// Calls `f` until it returns something, every 50 ms, for at most [`PATIENCE`].
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The id of a deployment, given as `{"deploymentInfo": ...}` or as a deploymentInfo.
fn id_of(deployment: &Value) -> &str {
    deployment["deploymentInfo"]["deploymentId"]
        .as_str()
        .or_else(|| deployment["deploymentId"].as_str())
        .expect("a deployment id")
}

fn target<'a>(deployment: &'a Value, host: &str) -> &'a Value {
    deployment["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["targetId"] == host)
        .unwrap_or_else(|| panic!("no target {host} in {deployment:#}"))
}

fn event<'a>(target: &'a Value, name: &str) -> &'a Value {
    target["lifecycleEvents"]
        .as_array()
        .expect("lifecycleEvents")
        .iter()
        .find(|e| e["lifecycleEventName"] == name)
        .unwrap_or_else(|| panic!("no {name} in {target:#}"))
}

fn event_names(target: &Value) -> Vec<&str> {
    target["lifecycleEvents"]
        .as_array()
        .expect("lifecycleEvents")
        .iter()
        .map(|e| e["lifecycleEventName"].as_str().unwrap())
        .collect()
}

fn time(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a time"))
}

/// When each host that ran anything was busy: its first event's start to its last event's end.
fn host_spans(deployment: &Value) -> Vec<(f64, f64)> {
    deployment["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| {
            let events = t["lifecycleEvents"].as_array()?;
            let start = events.iter().filter_map(|e| e["startTime"].as_f64());
            let end = events.iter().filter_map(|e| e["endTime"].as_f64());
            Some((start.reduce(f64::min)?, end.reduce(f64::max)?))
        })
        .collect()
}

/// The most hosts that were busy at one moment.
fn most_hosts_at_once(deployment: &Value) -> usize {
    let spans = host_spans(deployment);
    spans
        .iter()
        .map(|&(start, _)| {
            spans
                .iter()
                .filter(|&&(s, e)| s <= start && start < e)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Files and directories under `root`, relative to it; empty if it does not exist.
fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if p.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn the_webapp_deploys_to_three_hosts_one_at_a_time() {
    let local = Local::new();
    let revision = local.webapp("webapp");
    // The appspec's permissions must be what makes these 644 and 755.
    std::fs::set_permissions(
        revision.join("src/index.html"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::set_permissions(
        revision.join("src/static"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();

    let (out, json) = local.deploy(&revision, &["--hosts", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = id_of(&json);

    let info = &json["deploymentInfo"];
    assert!(
        id.len() == 11 && id.starts_with("d-"),
        "{id} is not a deployment id"
    );
    assert_eq!(info["status"], "Succeeded");
    assert_eq!(info["applicationName"], "LocalApp");
    assert_eq!(info["deploymentGroupName"], "LocalFleet");
    assert_eq!(info["deploymentConfigName"], "CodeDeployDefault.OneAtATime");
    assert_eq!(info["creator"], "user");
    assert_eq!(info["computePlatform"], "Server");
    assert_eq!(
        info["deploymentOverview"],
        serde_json::json!({"Pending": 0, "InProgress": 0, "Succeeded": 3, "Failed": 0, "Skipped": 0, "Ready": 0})
    );
    // CodeDeploy leaves these out of a deployment that neither failed nor rolled back.
    assert!(info.get("errorInformation").is_none(), "{info:#}");
    assert!(info.get("rollbackInfo").is_none(), "{info:#}");
    let (create, start, complete) = (
        time(&info["createTime"]),
        time(&info["startTime"]),
        time(&info["completeTime"]),
    );
    assert!(create <= start && start <= complete, "{info:#}");

    let targets = json["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 3);
    for (i, t) in targets.iter().enumerate() {
        assert_eq!(t["targetId"], format!("host-{}", i + 1));
        assert_eq!(t["deploymentId"], id);
        assert_eq!(t["status"], "Succeeded");
        assert_eq!(event_names(t), IN_PLACE_EVENTS);
        for e in t["lifecycleEvents"].as_array().unwrap() {
            assert_eq!(e["status"], "Succeeded", "{e:#}");
            let (s, end) = (time(&e["startTime"]), time(&e["endTime"]));
            assert!(start <= s && s <= end && end <= complete, "{e:#}");
            assert_eq!(e["diagnostics"]["errorCode"], "Success", "{e:#}");
        }
    }
    let validate = event(&targets[0], "ValidateService");
    assert!(
        validate["diagnostics"]["logTail"]
            .as_str()
            .unwrap()
            .contains(&format!("deployment {id} is running")),
        "{validate:#}"
    );
    assert_eq!(most_hosts_at_once(&json), 1, "OneAtATime overlapped hosts");

    for i in 1..=3 {
        let root = local.host(i);
        assert_eq!(
            read(&root.join("srv/webapp/index.html")),
            read(&revision.join("src/index.html"))
        );
        assert!(root.join("srv/webapp/static/site.css").is_file());
        assert!(
            read(&root.join("etc/webapp/webapp.conf")).contains("listen = "),
            "host-{i}"
        );
        assert_eq!(mode(&root.join("srv/webapp/index.html")), 0o644);
        assert_eq!(mode(&root.join("srv/webapp/static/site.css")), 0o644);
        assert_eq!(mode(&root.join("srv/webapp")), 0o755);
        assert_eq!(mode(&root.join("srv/webapp/static")), 0o755);
        let health = read(&root.join("var/lib/webapp/health"));
        assert!(health.contains("status=ok\n"), "{health}");
        assert!(health.contains(&format!("deployment={id}\n")), "{health}");
        assert_eq!(read(&root.join("var/lib/webapp/installed")).trim(), id);
        let deployment_root = root.join("opt/cutover/deployment-root");
        assert!(
            !tree(&deployment_root).is_empty(),
            "host-{i} has no deployment root"
        );
    }

    // `status` tells the same story as `deploy` did.
    let status = local.status(Some(id));
    assert_eq!(status["deploymentInfo"]["status"], "Succeeded");
    assert_eq!(status["targets"], json["targets"]);
}

#[test]
fn a_failed_health_check_on_host_2_fails_one_at_a_time_and_leaves_host_3_alone() {
    let local = Local::new();
    let revision = local.webapp("webapp");
    fail_webapp_health_check_on(&revision, "host-2");

    let (out, json) = local.deploy(&revision, &["--hosts", "3"]);
    assert!(!out.status.success());
    let id = id_of(&json);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("deployment {id} is Failed: HEALTH_CONSTRAINTS")),
        "{err}"
    );

    let info = &json["deploymentInfo"];
    assert_eq!(info["status"], "Failed");
    assert_eq!(info["errorInformation"]["code"], "HEALTH_CONSTRAINTS");
    assert!(
        !info["errorInformation"]["message"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    assert_eq!(info["deploymentOverview"]["Succeeded"], 1);
    assert_eq!(info["deploymentOverview"]["Failed"], 1);
    assert_eq!(info["deploymentOverview"]["Skipped"], 1);

    assert_eq!(target(&json, "host-1")["status"], "Succeeded");
    let host2 = target(&json, "host-2");
    assert_eq!(host2["status"], "Failed");
    let validate = event(host2, "ValidateService");
    assert_eq!(validate["status"], "Failed");
    let diagnostics = &validate["diagnostics"];
    assert_eq!(diagnostics["errorCode"], "ScriptFailed", "{diagnostics:#}");
    assert_eq!(diagnostics["scriptName"], "scripts/validate.sh");
    assert!(!diagnostics["message"].as_str().unwrap().is_empty());
    let log = diagnostics["logTail"].as_str().unwrap();
    assert!(log.contains("host-2: /health answered 503"), "{log}");
    assert!(log.contains("webapp is unhealthy on host-2"), "{log}");

    let host3 = target(&json, "host-3");
    assert_eq!(host3["status"], "Skipped");
    for e in host3["lifecycleEvents"].as_array().unwrap() {
        assert_ne!(e["status"], "Succeeded", "{e:#}");
    }
    assert_eq!(tree(&local.host(3)), Vec::<String>::new());
    assert!(local.host(1).join("srv/webapp/index.html").is_file());
}

#[test]
fn custom_configurations_are_created_checked_and_used() {
    let local = Local::new();
    for (name, minimum) in [
        ("KeepOne", "HOST_COUNT:1"),
        ("HalfFleet", "FLEET_PERCENT:50"),
    ] {
        let out = local.run(&["config", "create", name, "--minimum-healthy-hosts", minimum]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains(name), "{}", stdout(&out));
    }
    let out = local.run(&[
        "config",
        "create",
        "KeepOne",
        "--minimum-healthy-hosts",
        "HOST_COUNT:2",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));

    // One healthy host of three is enough: two run at a time, and a failure does not stop
    // the third, where OneAtATime would.
    let failing = local.probe(
        "failing",
        Probe {
            sleep: 0.3,
            fail_on: Some("host-2"),
        },
    );
    let (out, json) = local.deploy(
        &failing,
        &["--hosts", "3", "--config", "KeepOne", "--group", "Keep"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json["deploymentInfo"]["deploymentConfigName"], "KeepOne");
    assert_eq!(target(&json, "host-2")["status"], "Failed");
    assert_eq!(target(&json, "host-3")["status"], "Succeeded");
    assert_eq!(most_hosts_at_once(&json), 2);

    let slow = local.probe(
        "slow",
        Probe {
            sleep: 0.3,
            fail_on: None,
        },
    );
    let (out, json) = local.deploy(
        &slow,
        &["--hosts", "4", "--config", "HalfFleet", "--group", "Half"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json["deploymentInfo"]["deploymentConfigName"], "HalfFleet");
    assert_eq!(json["deploymentInfo"]["deploymentOverview"]["Succeeded"], 4);
    assert_eq!(most_hosts_at_once(&json), 2);
}

#[test]
fn bad_configurations_are_refused_before_anything_is_deployed() {
    let local = Local::new();
    for (value, expected) in [
        ("HOST_COUNT", "expected HOST_COUNT:N or FLEET_PERCENT:N"),
        ("HOST_COUNT:two", "'two' is not a whole number"),
        ("SOME_HOSTS:2", "expected HOST_COUNT:N or FLEET_PERCENT:N"),
        ("FLEET_PERCENT:100", "between 0 and 99"),
        ("HOST_COUNT:-1", "cannot be negative"),
    ] {
        let out = local.run(&["config", "create", "Bad", "--minimum-healthy-hosts", value]);
        assert!(!out.status.success(), "{value} was accepted");
        assert!(stderr(&out).contains(expected), "{value}: {}", stderr(&out));
    }
    let out = local.run(&[
        "config",
        "create",
        "CodeDeployDefault.Mine",
        "--minimum-healthy-hosts",
        "HOST_COUNT:1",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("reserved"), "{}", stderr(&out));

    let revision = local.webapp("webapp");
    let out = local.run(&["deploy", path(&revision), "--hosts", "2", "--config", "Bad"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("deployment configuration Bad does not exist"),
        "{err}"
    );
    assert!(err.contains("cutover local config create"), "{err}");
    assert!(!local.state().join("hosts").exists());
    assert!(local.list().is_empty());
}

#[test]
fn predefined_configurations_batch_as_codedeploy_does() {
    let local = Local::new();
    // AllAtOnce needs only one host to succeed, and runs them all together.
    let failing = local.probe(
        "failing",
        Probe {
            sleep: 0.3,
            fail_on: Some("host-2"),
        },
    );
    let (out, json) = local.deploy(
        &failing,
        &[
            "--hosts",
            "3",
            "--config",
            "CodeDeployDefault.AllAtOnce",
            "--group",
            "All",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json["deploymentInfo"]["status"], "Succeeded");
    assert_eq!(target(&json, "host-2")["status"], "Failed");
    assert_eq!(json["deploymentInfo"]["deploymentOverview"]["Succeeded"], 2);
    assert_eq!(most_hosts_at_once(&json), 3);

    // HalfAtATime on four hosts keeps two healthy: two at a time.
    let slow = local.probe(
        "slow",
        Probe {
            sleep: 0.3,
            fail_on: None,
        },
    );
    let (out, json) = local.deploy(
        &slow,
        &[
            "--hosts",
            "4",
            "--config",
            "CodeDeployDefault.HalfAtATime",
            "--group",
            "Half",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json["deploymentInfo"]["deploymentOverview"]["Succeeded"], 4);
    assert_eq!(most_hosts_at_once(&json), 2);

    // OneAtATime forgives a failure on the very last host.
    let last_fails = local.probe(
        "last-fails",
        Probe {
            sleep: 0.0,
            fail_on: Some("host-2"),
        },
    );
    let (out, json) = local.deploy(&last_fails, &["--hosts", "2", "--group", "One"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json["deploymentInfo"]["status"], "Succeeded");
    assert_eq!(target(&json, "host-2")["status"], "Failed");

    // HalfAtATime cannot deploy to one host and keep one healthy.
    let (out, json) = local.deploy(
        &slow,
        &[
            "--hosts",
            "1",
            "--config",
            "CodeDeployDefault.HalfAtATime",
            "--group",
            "Single",
        ],
    );
    assert!(!out.status.success());
    assert_eq!(json["deploymentInfo"]["status"], "Failed");
    assert_eq!(
        json["deploymentInfo"]["errorInformation"]["code"],
        "HEALTH_CONSTRAINTS_INVALID"
    );
    assert!(
        stderr(&out).contains("HEALTH_CONSTRAINTS_INVALID"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn traffic_control_takes_hosts_out_of_service_and_back() {
    let local = Local::new();
    let revision = local.webapp("webapp");
    let (out, json) = local.deploy(&revision, &["--hosts", "3", "--traffic-control"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        json["deploymentInfo"]["deploymentStyle"]["deploymentOption"],
        "WITH_TRAFFIC_CONTROL"
    );
    let mut expected = vec!["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"];
    expected.extend(IN_PLACE_EVENTS);
    expected.extend(["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]);
    for host in ["host-1", "host-2", "host-3"] {
        let t = target(&json, host);
        assert_eq!(event_names(t), expected, "{host}");
        for e in t["lifecycleEvents"].as_array().unwrap() {
            assert_eq!(e["status"], "Succeeded", "{host}: {e:#}");
            assert!(time(&e["startTime"]) <= time(&e["endTime"]), "{e:#}");
        }
    }

    let out = local.run(&["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("traffic: host-1 in service, host-2 in service, host-3 in service"),
        "{text}"
    );

    // A host that fails after it was blocked stays out of service; one never reached keeps
    // serving the revision it has.
    let failing = local.webapp("failing");
    fail_webapp_health_check_on(&failing, "host-2");
    let (out, json) = local.deploy(&failing, &["--traffic-control"]);
    assert!(!out.status.success());
    let host2 = target(&json, "host-2");
    assert_eq!(event(host2, "BlockTraffic")["status"], "Succeeded");
    assert_eq!(event(host2, "AllowTraffic")["status"], "Skipped");
    let out = local.run(&["status"]);
    let text = stdout(&out);
    assert!(
        text.contains("traffic: host-1 in service, host-2 out of service, host-3 in service"),
        "{text}"
    );
}

#[test]
fn a_failed_deployment_rolls_back_to_the_last_good_revision() {
    let local = Local::new();
    let good = local.webapp("good");
    std::fs::write(good.join("src/index.html"), "<h1>good</h1>\n").unwrap();
    let (out, first) = local.deploy(&good, &["--hosts", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let good_id = id_of(&first).to_owned();

    let bad = local.webapp("bad");
    std::fs::write(bad.join("src/index.html"), "<h1>bad</h1>\n").unwrap();
    fail_webapp_health_check_on(&bad, "host-1");
    let (out, failed) = local.deploy(&bad, &["--auto-rollback"]);
    assert!(!out.status.success());
    let failed_id = id_of(&failed).to_owned();
    assert!(
        stderr(&out).contains("HEALTH_CONSTRAINTS"),
        "{}",
        stderr(&out)
    );

    let list = local.list();
    assert_eq!(list.len(), 3, "{list:#?}");
    assert_eq!(list[0]["deploymentId"], good_id.as_str());
    assert_eq!(list[1]["deploymentId"], failed_id.as_str());
    let failed_info = &list[1];
    assert_eq!(failed_info["status"], "Failed");
    let rollback_id = failed_info["rollbackInfo"]["rollbackDeploymentId"]
        .as_str()
        .unwrap_or_else(|| panic!("no rollback named in {failed_info:#}"));
    assert_eq!(list[2]["deploymentId"], rollback_id);
    assert_eq!(
        failed["deploymentInfo"]["rollbackInfo"],
        failed_info["rollbackInfo"]
    );

    let rollback = local.status(Some(rollback_id));
    let info = &rollback["deploymentInfo"];
    assert_eq!(info["status"], "Succeeded");
    assert_eq!(info["creator"], "codeDeployRollback");
    assert_eq!(
        info["rollbackInfo"]["rollbackTriggeringDeploymentId"],
        failed_id.as_str()
    );
    assert_eq!(info["deploymentOverview"]["Succeeded"], 3);
    for i in 1..=3 {
        assert_eq!(
            read(&local.host(i).join("srv/webapp/index.html")),
            "<h1>good</h1>\n",
            "host-{i}"
        );
        let health = read(&local.host(i).join("var/lib/webapp/health"));
        assert!(
            health.contains(&format!("deployment={rollback_id}\n")),
            "{health}"
        );
    }

    let text = stdout(&local.run(&["list"]));
    assert!(
        text.contains(&format!("rolled back by {rollback_id}")),
        "{text}"
    );
    assert!(text.contains(&format!("rollback of {failed_id}")), "{text}");
    let text = stdout(&local.run(&["status", &failed_id]));
    assert!(text.contains(rollback_id), "{text}");
}

#[test]
fn stop_from_another_process_halts_the_deployment_at_a_safe_point() {
    let local = Local::new();
    let slow = local.probe(
        "slow",
        Probe {
            sleep: 1.0,
            fail_on: None,
        },
    );
    let deploy = local.spawn_deploy(&slow, &["--hosts", "3"]);
    let id = id_of(&local.wait_for_deployments(1)[0]).to_owned();
    local.wait_until_running_on(&id, "host-1");

    let out = local.run(&["stop", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Stopped"), "{}", stdout(&out));

    let out = deploy.finish();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("deployment {id} is Stopped: MANUAL_STOP")),
        "{}",
        stderr(&out)
    );
    let status = local.status(Some(&id));
    assert_eq!(status["deploymentInfo"]["status"], "Stopped");
    assert_eq!(
        status["deploymentInfo"]["errorInformation"]["code"],
        "MANUAL_STOP"
    );
    assert_eq!(target(&status, "host-3")["status"], "Skipped");
    assert_eq!(tree(&local.host(3)), Vec::<String>::new());

    let out = local.run(&["stop", &id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("has already finished"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn ctrl_c_stops_the_deployment_at_a_safe_point() {
    let local = Local::new();
    let slow = local.probe(
        "slow",
        Probe {
            sleep: 1.0,
            fail_on: None,
        },
    );
    let deploy = local.spawn_deploy(&slow, &["--hosts", "3"]);
    let id = id_of(&local.wait_for_deployments(1)[0]).to_owned();
    local.wait_until_running_on(&id, "host-1");

    deploy.interrupt();
    let out = deploy.finish();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("Stopping {id} at its next safe point")),
        "{err}"
    );
    assert!(
        err.contains(&format!("deployment {id} is Stopped: MANUAL_STOP")),
        "{err}"
    );
    let status = local.status(Some(&id));
    assert_eq!(status["deploymentInfo"]["status"], "Stopped");
    assert_eq!(target(&status, "host-3")["status"], "Skipped");
    assert_eq!(tree(&local.host(3)), Vec::<String>::new());
    // Nothing is left for another command to resume.
    let out = local.run(&["list"]);
    assert!(!stderr(&out).contains("Resuming"), "{}", stderr(&out));
}

#[test]
fn an_alarm_stops_the_deployment_that_watches_it() {
    let local = Local::new();
    let slow = local.probe(
        "slow",
        Probe {
            sleep: 1.0,
            fail_on: None,
        },
    );
    let deploy = local.spawn_deploy(&slow, &["--hosts", "3", "--alarm", "HighErrors"]);
    let id = id_of(&local.wait_for_deployments(1)[0]).to_owned();
    local.wait_until_running_on(&id, "host-1");

    let out = local.run(&["alarm", "HighErrors", "--state", "ALARM"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = deploy.finish();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("deployment {id} is Stopped: ALARM_ACTIVE")),
        "{}",
        stderr(&out)
    );
    let status = local.status(Some(&id));
    assert_eq!(status["deploymentInfo"]["status"], "Stopped");
    assert_eq!(
        status["deploymentInfo"]["errorInformation"]["code"],
        "ALARM_ACTIVE"
    );
    assert_eq!(tree(&local.host(3)), Vec::<String>::new());
}

#[test]
fn an_alarm_rolls_back_a_deployment_with_auto_rollback() {
    let local = Local::new();
    let good = local.probe("good", Probe::default());
    let (out, _) = local.deploy(&good, &["--hosts", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let slow = local.probe(
        "slow",
        Probe {
            sleep: 1.0,
            fail_on: None,
        },
    );
    let deploy = local.spawn_deploy(&slow, &["--alarm", "HighErrors", "--auto-rollback"]);
    let id = id_of(&local.wait_for_deployments(2)[1]).to_owned();
    local.wait_until_running_on(&id, "host-1");
    let out = local.run(&["alarm", "HighErrors", "--state", "ALARM"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = deploy.finish();
    assert!(!out.status.success());
    let list = local.list();
    assert_eq!(list.len(), 3, "{list:#?}");
    assert_eq!(list[1]["status"], "Stopped");
    assert_eq!(list[1]["errorInformation"]["code"], "ALARM_ACTIVE");
    let rollback_id = list[1]["rollbackInfo"]["rollbackDeploymentId"]
        .as_str()
        .unwrap_or_else(|| panic!("no rollback named in {:#}", list[1]));
    let rollback = &list[2];
    assert_eq!(rollback["deploymentId"], rollback_id);
    // The rollback does not watch the alarm that is still ringing.
    assert_eq!(rollback["status"], "Succeeded", "{rollback:#}");
    assert_eq!(
        rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"],
        id.as_str()
    );
    for i in 1..=2 {
        assert_eq!(read(&local.host(i).join("srv/app/version.txt")), "good\n");
    }
}

#[test]
fn deployments_to_one_group_queue_and_different_groups_run_together() {
    let local = Local::new();
    let slow = local.probe(
        "slow",
        Probe {
            sleep: 0.6,
            fail_on: None,
        },
    );
    let first = local.spawn_deploy(&slow, &["--hosts", "1"]);
    let first_id = id_of(&local.wait_for_deployments(1)[0]).to_owned();
    local.wait_until_running_on(&first_id, "host-1");
    let second = local.spawn_deploy(&slow, &["--hosts", "1"]);
    let second_id = id_of(&local.wait_for_deployments(2)[1]).to_owned();
    wait_for(&format!("{second_id} to queue"), || {
        (local.status(Some(&second_id))["deploymentInfo"]["status"] == "Queued").then_some(())
    });
    let third = local.spawn_deploy(&slow, &["--hosts", "1"]);
    let third_id = id_of(&local.wait_for_deployments(3)[2]).to_owned();

    let (first, second, third) = (first.finish(), second.finish(), third.finish());
    for out in [&first, &second, &third] {
        assert!(out.status.success(), "{}", stderr(out));
    }
    for (out, id) in [(&second, &second_id), (&third, &third_id)] {
        let waited = stderr(out);
        assert!(waited.contains(&format!("{id} Queued")), "{waited}");
    }
    // Handing the group over is the first deploy's last act, but the second is not its to show.
    assert!(!stderr(&first).contains(&second_id), "{}", stderr(&first));
    let mut previous: Option<(String, f64)> = None;
    for id in [&first_id, &second_id, &third_id] {
        let status = local.status(Some(id));
        let began = host_spans(&status)[0].0;
        if let Some((before, done)) = &previous {
            assert!(
                *done <= began,
                "{id} ran on host-1 at {began}, before {before} completed at {done}"
            );
        }
        previous = Some((id.clone(), time(&status["deploymentInfo"]["completeTime"])));
    }

    let one = local.spawn_deploy(
        &slow,
        &[
            "--group",
            "Blue",
            "--host",
            &format!("blue={}", path(&local.scratch().join("blue"))),
        ],
    );
    let two = local.spawn_deploy(
        &slow,
        &[
            "--group",
            "Green",
            "--host",
            &format!("green={}", path(&local.scratch().join("green"))),
        ],
    );
    let (one, two) = (one.finish(), two.finish());
    assert!(one.status.success(), "{}", stderr(&one));
    assert!(two.status.success(), "{}", stderr(&two));
    let one: Value = serde_json::from_slice(&one.stdout).unwrap();
    let two: Value = serde_json::from_slice(&two.stdout).unwrap();
    let (s1, e1) = host_spans(&one)[0];
    let (s2, e2) = host_spans(&two)[0];
    assert!(
        s1 < e2 && s2 < e1,
        "groups Blue ({s1}..{e1}) and Green ({s2}..{e2}) did not run at the same time"
    );
}

#[test]
fn invalid_input_is_refused_before_any_host_is_touched() {
    let local = Local::new();
    let webapp = local.webapp("webapp");

    let typo = local.webapp("typo");
    let appspec = read(&typo.join("appspec.yml"));
    std::fs::write(
        typo.join("appspec.yml"),
        appspec.replace("  AfterInstall:", "  AfterInstal:"),
    )
    .unwrap();
    let line = appspec
        .lines()
        .position(|l| l == "  AfterInstall:")
        .unwrap()
        + 1;

    let missing_script = local.webapp("missing-script");
    std::fs::remove_file(missing_script.join("scripts/after_install.sh")).unwrap();

    let dotdot = local.scratch().join("evil.zip");
    // An absolute entry that would land outside the state directory if it were unpacked.
    let escaped = local.scratch().join("escaped");
    let tar = local.scratch().join("absolute.tar");
    let script = format!(
        "import io, tarfile, zipfile\n\
         z = zipfile.ZipFile({zip:?}, 'w')\n\
         z.write({appspec:?}, 'appspec.yml')\n\
         z.writestr('../evil', 'gotcha')\n\
         z.close()\n\
         t = tarfile.open({tar:?}, 'w')\n\
         t.add({appspec:?}, 'appspec.yml')\n\
         info = tarfile.TarInfo({escaped:?})\n\
         info.size = 6\n\
         t.addfile(info, io.BytesIO(b'gotcha'))\n\
         t.close()\n",
        zip = path(&dotdot),
        tar = path(&tar),
        appspec = path(&webapp.join("appspec.yml")),
        escaped = path(&escaped),
    );
    let status = Command::new("python3")
        .args(["-c", &script])
        .status()
        .expect("python3 runs");
    assert!(status.success());

    let nowhere = local.scratch().join("nowhere");
    let long_name = "a".repeat(101);
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec![path(&typo)],
            format!(
                "appspec.yml line {line}: hook 'AfterInstal' is not a lifecycle event (did you mean AfterInstall?)"
            ),
        ),
        (
            vec![path(&dotdot)],
            "was refused: bundle entry '../evil' has a '..' component".to_owned(),
        ),
        (
            vec![path(&tar)],
            format!(
                "was refused: bundle entry '{}' is an absolute path",
                path(&escaped)
            ),
        ),
        (
            vec![path(&missing_script)],
            "the AfterInstall hook's script 'scripts/after_install.sh' is not in the revision"
                .to_owned(),
        ),
        (vec![path(&nowhere)], "does not exist".to_owned()),
        (
            vec![path(&webapp), "--hosts", "0"],
            "--hosts must be between 1 and".to_owned(),
        ),
        (
            vec![path(&webapp), "--host", "bad"],
            "--host bad: expected NAME=ROOT".to_owned(),
        ),
        (
            vec![path(&webapp), "--group", ""],
            "deployment group name '' is not a valid name".to_owned(),
        ),
        (
            vec![path(&webapp), "--application", &long_name],
            "is not a valid name: use 1 to 100 characters".to_owned(),
        ),
    ];
    for (args, expected) in cases {
        let out = local.run(&[&["deploy"], &args[..]].concat());
        assert!(!out.status.success(), "{args:?} was accepted");
        let err = stderr(&out);
        assert!(err.contains(&expected), "{args:?}: {err}");
        assert!(
            !local.state().join("hosts").exists(),
            "{args:?} touched hosts: {:?}",
            tree(local.state())
        );
        assert!(local.list().is_empty(), "{args:?} created a deployment");
    }
    assert!(!escaped.exists());
    // `../evil` would have landed here, next to the unpacked revision.
    assert!(tree(&local.state().join("revisions")).is_empty());
}

#[test]
fn zip_tgz_and_tar_revisions_deploy_like_the_directory() {
    let webapp = repo_root().join("examples/webapp");
    for (file, tool) in [
        ("webapp.zip", "zip"),
        ("webapp.tgz", "tgz"),
        ("webapp.tar", "tar"),
    ] {
        let local = Local::new();
        let bundle = local.scratch().join(file);
        let status = match tool {
            "zip" => Command::new("python3")
                .args(["-m", "zipfile", "-c"])
                .arg(&bundle)
                .args(["appspec.yml", "config", "scripts", "src"].map(|entry| webapp.join(entry)))
                .status(),
            "tgz" => Command::new("tar")
                .arg("-czf")
                .arg(&bundle)
                .arg("-C")
                .arg(&webapp)
                .arg(".")
                .status(),
            _ => Command::new("tar")
                .arg("-cf")
                .arg(&bundle)
                .arg("-C")
                .arg(&webapp)
                .arg(".")
                .status(),
        };
        assert!(status.expect("the archiver runs").success(), "{file}");

        let (out, json) = local.deploy(&bundle, &["--hosts", "2"]);
        assert!(out.status.success(), "{file}: {}", stderr(&out));
        assert_eq!(json["deploymentInfo"]["deploymentOverview"]["Succeeded"], 2);
        for i in 1..=2 {
            let root = local.host(i);
            assert_eq!(
                read(&root.join("srv/webapp/index.html")),
                read(&webapp.join("src/index.html")),
                "{file}"
            );
            assert!(root.join("etc/webapp/webapp.conf").is_file(), "{file}");
            assert!(root.join("var/lib/webapp/health").is_file(), "{file}");
        }
    }
}

#[test]
fn explicit_hosts_are_deployed_at_their_roots() {
    let local = Local::new();
    let revision = local.webapp("webapp");
    let a = local.scratch().join("roots/web-a");
    let b = local.scratch().join("roots/web-b");
    let (out, json) = local.deploy(
        &revision,
        &[
            "--host",
            &format!("web-a={}", path(&a)),
            "--host",
            &format!("web-b={}", path(&b)),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let names: Vec<_> = json["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["targetId"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web-a", "web-b"]);
    for root in [&a, &b] {
        assert!(root.join("srv/webapp/index.html").is_file());
        assert!(root.join("etc/webapp/webapp.conf").is_file());
        let health = read(&root.join("var/lib/webapp/health"));
        assert!(health.contains("status=ok"), "{health}");
    }
    assert!(!local.state().join("hosts").exists());

    // Without host options the group deploys to the hosts it has.
    let (out, json) = local.deploy(&revision, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json["targets"].as_array().unwrap().len(), 2);
    assert_eq!(target(&json, "web-b")["status"], "Succeeded");
}

#[test]
fn a_group_keeps_its_id_across_deployments() {
    let local = Local::new();
    let probe = local.probe("probe", Probe::default());
    for _ in 0..2 {
        let (out, _) = local.deploy(&probe, &["--hosts", "1"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let recorded = read(&local.host(1).join("var/lib/probe/group-ids"));
    let ids: Vec<&str> = recorded.lines().collect();
    assert_eq!(ids.len(), 2, "{recorded}");
    assert_eq!(ids[0], ids[1], "the group id changed between deployments");
    assert_eq!(ids[0].len(), 36, "{} is not a UUID", ids[0]);
    assert!(
        local
            .host(1)
            .join("opt/cutover/deployment-root")
            .join(ids[0])
            .is_dir()
    );

    let other = local.scratch().join("other");
    let (out, _) = local.deploy(
        &probe,
        &["--group", "Other", "--host", &format!("h={}", path(&other))],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let other_id = read(&other.join("var/lib/probe/group-ids"));
    assert_ne!(other_id.trim(), ids[0], "two groups share an id");
}

#[test]
fn status_shows_the_latest_or_the_one_asked_for_and_list_shows_all() {
    let local = Local::new();
    let out = local.run(&["status"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("there are no deployments"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&local.run(&["list"])).contains("no deployments yet"));

    let good = local.probe("good", Probe::default());
    let (out, first) = local.deploy(&good, &["--hosts", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first_id = id_of(&first).to_owned();
    let bad = local.probe(
        "bad",
        Probe {
            sleep: 0.0,
            fail_on: Some("host-1"),
        },
    );
    let (out, second) = local.deploy(&bad, &[]);
    assert!(!out.status.success());
    let second_id = id_of(&second).to_owned();

    assert_eq!(
        local.status(None)["deploymentInfo"]["deploymentId"],
        second_id.as_str()
    );
    let out = local.run(&["status"]);
    assert!(!out.status.success(), "the latest deployment failed");
    assert!(stdout(&out).contains(&second_id), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(&format!("deployment {second_id} is Failed")),
        "{}",
        stderr(&out)
    );
    let out = local.run(&["status", &first_id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&first_id), "{}", stdout(&out));

    let out = local.run(&["status", "d-AAAAAAAAA"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("deployment d-AAAAAAAAA does not exist"),
        "{}",
        stderr(&out)
    );
    let out = local.run(&["status", "banana"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("'banana' is not a deployment id"),
        "{}",
        stderr(&out)
    );

    let out = local.run(&["list"]);
    assert!(out.status.success());
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[1].contains(&first_id) && lines[1].contains("Succeeded"),
        "{text}"
    );
    assert!(
        lines[2].contains(&second_id) && lines[2].contains("Failed"),
        "{text}"
    );
}

#[test]
fn the_state_dir_comes_from_the_environment_or_defaults_to_dot_cutover() {
    let local = Local::new();
    let revision = local.probe("probe", Probe::default());
    let cwd = tempfile::tempdir().unwrap();
    let run = |env: Option<&Path>, args: &[&str]| {
        let mut c = Command::new(binary("cutover"));
        c.arg("local").args(args).current_dir(cwd.path());
        match env {
            Some(dir) => c.env("CUTOVER_STATE_DIR", dir),
            None => c.env_remove("CUTOVER_STATE_DIR"),
        };
        c.output().expect("cutover runs")
    };

    let out = run(Some(local.state()), &["deploy", path(&revision)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(local.host(1).join("srv/app/version.txt").is_file());
    assert!(!cwd.path().join(".cutover").exists());
    let out = run(Some(local.state()), &["list", "--json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["deployments"].as_array().unwrap().len(), 1);
    assert_eq!(local.list().len(), 1);

    let out = run(None, &["deploy", path(&revision)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let default = cwd.path().join(".cutover");
    assert!(default.join("hosts/host-1/srv/app/version.txt").is_file());
    assert_eq!(
        local.list().len(),
        1,
        "without $CUTOVER_STATE_DIR the deployment belongs in ./.cutover"
    );
}

#[test]
fn file_exists_behavior_decides_what_happens_to_files_already_there() {
    let local = Local::new();
    let revision = local.probe("probe", Probe::default());
    let appspec = revision.join("appspec.yml");
    let text = read(&appspec).replace("file_exists_behavior: OVERWRITE\n", "");
    std::fs::write(&appspec, text).unwrap();

    for (i, behavior, left) in [
        (1, "DISALLOW", "put there by hand\n"),
        (2, "OVERWRITE", "probe\n"),
        (3, "RETAIN", "put there by hand\n"),
    ] {
        let root = local.scratch().join(format!("host-{behavior}"));
        std::fs::create_dir_all(root.join("srv/app")).unwrap();
        std::fs::write(root.join("srv/app/version.txt"), "put there by hand\n").unwrap();
        let (out, json) = local.deploy(
            &revision,
            &[
                "--group",
                behavior,
                "--host",
                &format!("h{i}={}", path(&root)),
                "--file-exists-behavior",
                behavior,
            ],
        );
        assert_eq!(
            out.status.success(),
            behavior != "DISALLOW",
            "{behavior}: {}",
            stderr(&out)
        );
        assert_eq!(read(&root.join("srv/app/version.txt")), left, "{behavior}");
        if behavior == "DISALLOW" {
            let install = event(&json["targets"][0], "Install");
            assert_eq!(install["status"], "Failed");
            let message = install["diagnostics"]["message"].as_str().unwrap();
            assert!(message.contains("/srv/app/version.txt"), "{message}");
        }
    }
}

#[test]
fn application_stop_failures_fail_the_host_unless_ignored() {
    let local = Local::new();
    let broken_stop = local.webapp("broken-stop");
    prepend_to_script(
        &broken_stop.join("scripts/stop.sh"),
        "echo 'webapp would not stop' >&2\nexit 1\n",
    );
    let (out, _) = local.deploy(&broken_stop, &["--hosts", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // ApplicationStop runs the copy of the revision that is installed: the broken one.
    let next = local.webapp("next");
    let (out, json) = local.deploy(&next, &[]);
    assert!(!out.status.success());
    let stop = event(&json["targets"][0], "ApplicationStop");
    assert_eq!(stop["status"], "Failed");
    assert_eq!(stop["diagnostics"]["scriptName"], "scripts/stop.sh");
    assert!(
        stop["diagnostics"]["logTail"]
            .as_str()
            .unwrap()
            .contains("webapp would not stop"),
        "{stop:#}"
    );

    let (out, json) = local.deploy(&next, &["--ignore-application-stop-failures"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        json["deploymentInfo"]["ignoreApplicationStopFailures"],
        true
    );
    let health = read(&local.host(1).join("var/lib/webapp/health"));
    assert!(
        health.contains(&format!("deployment={}\n", id_of(&json))),
        "{health}"
    );
}

#[test]
fn a_deployment_whose_process_was_killed_is_finished_by_the_next_command() {
    let local = Local::new();
    let slow = local.probe(
        "slow",
        Probe {
            sleep: 1.0,
            fail_on: None,
        },
    );
    let mut deploy = local.spawn_deploy(&slow, &["--hosts", "1"]);
    let id = id_of(&local.wait_for_deployments(1)[0]).to_owned();
    local.wait_until_running_on(&id, "host-1");
    deploy.kill();

    let out = local.run(&["status", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("Resuming {id}: the process that ran it is gone")),
        "{}",
        stderr(&out)
    );
    let status = local.status(Some(&id));
    assert_eq!(status["deploymentInfo"]["status"], "Succeeded");
    assert_eq!(read(&local.host(1).join("srv/app/version.txt")), "slow\n");
}

#[test]
fn commands_that_open_a_new_state_directory_together_all_work() {
    // The race is on creating the database, so every round needs a new state directory. Each
    // command waits for a line on its stdin before it starts, so that all start at once rather
    // than as fast as they can be spawned one by one.
    for _ in 0..15 {
        let local = Local::new();
        let mut started: Vec<Child> = (0..6)
            .map(|_| {
                let command = local.command(&["list"]);
                Command::new("sh")
                    .args(["-c", "read -r _ && exec \"$0\" \"$@\""])
                    .arg(command.get_program())
                    .args(command.get_args())
                    .current_dir(local.scratch())
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("sh starts")
            })
            .collect();
        for child in &mut started {
            child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        }
        for child in started {
            let out = child.wait_with_output().expect("cutover ends");
            assert!(out.status.success(), "{}", stderr(&out));
        }
    }
}

/// A revision whose hooks log `start EVENT` and `end EVENT` to `/var/log/events.log` on their
/// host. On host-2, the first AfterInstall hangs (after writing its pid) until it is stopped.
fn logging_revision(dir: &Path) -> PathBuf {
    let rev = dir.join("logging");
    std::fs::create_dir_all(rev.join("site")).unwrap();
    std::fs::write(rev.join("site/index.html"), "<h1>v1</h1>\n").unwrap();
    let mut hooks = String::new();
    for event in [
        "ApplicationStop",
        "BeforeInstall",
        "AfterInstall",
        "ApplicationStart",
        "ValidateService",
    ] {
        hooks += &format!("  {event}:\n    - location: scripts/hook.sh\n      timeout: 120\n");
    }
    std::fs::write(
        rev.join("appspec.yml"),
        format!(
            "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /srv/site\nhooks:\n{hooks}"
        ),
    )
    .unwrap();
    write_script(
        &rev.join("scripts/hook.sh"),
        r#"log="$root/var/log"
mkdir -p "$log"
echo "start $LIFECYCLE_EVENT" >>"$log/events.log"
case "$root" in
*/host-2)
    if [ "$LIFECYCLE_EVENT" = AfterInstall ] && [ ! -e "$log/hung-once" ]; then
        touch "$log/hung-once"
        echo $$ >"$log/hung.pid"
        while :; do sleep 1; done
    fi
    ;;
esac
echo "end $LIFECYCLE_EVENT" >>"$log/events.log"
"#,
    );
    rev
}

/// The lines a host's hooks logged, in order.
fn host_log(local: &Local, i: u32) -> Vec<String> {
    std::fs::read_to_string(local.host(i).join("var/log/events.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// True while the process runs (a zombie waiting for its parent counts as gone).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

fn count(lines: &[String], line: &str) -> usize {
    lines.iter().filter(|l| *l == line).count()
}

#[test]
fn a_killed_deploy_resumes_without_running_finished_lifecycle_events_again() {
    let local = Local::new();
    let rev = logging_revision(local.scratch());

    let mut deploy = local.spawn_deploy(&rev, &["--hosts", "3"]);
    let pid_file = local.host(2).join("var/log/hung.pid");
    let hung = wait_for("host-2's AfterInstall to start", || {
        let pid = std::fs::read_to_string(&pid_file).ok()?;
        pid.ends_with('\n')
            .then(|| pid.trim().parse::<u32>().unwrap())
    });
    deploy.kill();
    // The hook outlives the process that ran it, as scripts do when their runner is killed.
    assert!(alive(hung), "the interrupted hook still runs");

    // The next command, whatever it is, finishes the deployment first.
    let out = local.run(&["status"]);
    assert!(
        stderr(&out).contains("Resuming d-"),
        "status says it resumes: {}",
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !alive(hung),
        "the hook left running by the killed process was stopped before AfterInstall ran again"
    );

    let status = local.status(None);
    assert_eq!(status["deploymentInfo"]["status"], "Succeeded");
    for target in status["targets"].as_array().unwrap() {
        assert_eq!(target["status"], "Succeeded", "{target}");
    }

    // ApplicationStop runs the previous revision's scripts; a first deployment has none.
    let events = [
        "BeforeInstall",
        "AfterInstall",
        "ApplicationStart",
        "ValidateService",
    ];
    for host in [1, 3] {
        let log = host_log(&local, host);
        for event in events {
            assert_eq!(
                count(&log, &format!("end {event}")),
                1,
                "host-{host}: {log:?}"
            );
            assert_eq!(
                count(&log, &format!("start {event}")),
                1,
                "host-{host}: {log:?}"
            );
        }
    }
    let log = host_log(&local, 2);
    assert_eq!(count(&log, "start ApplicationStop"), 0, "{log:?}");
    assert_eq!(
        count(&log, "start BeforeInstall"),
        1,
        "host-2 finished BeforeInstall before the crash and must not run it again: {log:?}"
    );
    assert_eq!(
        count(&log, "start AfterInstall"),
        2,
        "the interrupted event runs again: {log:?}"
    );
    assert_eq!(count(&log, "end AfterInstall"), 1, "{log:?}");
    for event in ["ApplicationStart", "ValidateService"] {
        assert_eq!(count(&log, &format!("end {event}")), 1, "{log:?}");
    }
    assert!(local.host(3).join("srv/site/index.html").is_file());
}

#[test]
fn deploys_killed_at_random_moments_always_resume_to_success() {
    // Kill points spread over the whole run: creating, queueing, hooks, commits, the end.
    for (round, delay_ms) in [5u64, 30, 60, 90, 120, 180, 250].into_iter().enumerate() {
        let local = Local::new();
        let rev = local.webapp("rev");
        let mut deploy = local.spawn_deploy(&rev, &["--hosts", "3"]);
        std::thread::sleep(Duration::from_millis(delay_ms));
        deploy.kill();

        let deployments = local.list();
        if deployments.is_empty() {
            // Killed before the deployment was saved: nothing happened to any host.
            assert!(!local.host(1).join("srv").exists(), "round {round}");
            continue;
        }
        assert_eq!(deployments.len(), 1, "round {round}");
        assert_eq!(
            deployments[0]["status"], "Succeeded",
            "round {round} (killed after {delay_ms} ms): {deployments:?}"
        );
        let status = local.status(None);
        for target in status["targets"].as_array().unwrap() {
            for event in target["lifecycleEvents"].as_array().unwrap() {
                assert_eq!(event["status"], "Succeeded", "round {round}: {target}");
            }
        }
        for host in 1..=3 {
            let root = local.host(host);
            assert!(root.join("srv/webapp/index.html").is_file(), "host-{host}");
            let running = read(&root.join("var/lib/webapp/running"));
            assert_eq!(running.trim(), id_of(&deployments[0]));
        }
    }
}
