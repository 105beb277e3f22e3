//! Crash safety of `cutover local`: a deploy killed with SIGKILL at any moment is resumed by the
//! next `cutover local` command from its saved state, and lifecycle events that had finished
//! are not run again.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cutover_tests::{binary, repo_root, stderr, stdout};
use serde_json::Value;

/// A revision whose hooks log `start EVENT` and `end EVENT` to `/var/log/events.log` on their
/// host. On host-2, the first AfterInstall hangs (after writing its pid) until it is stopped.
fn logging_revision(dir: &Path) -> PathBuf {
    let rev = dir.join("rev");
    fs::create_dir_all(rev.join("scripts")).unwrap();
    fs::create_dir_all(rev.join("site")).unwrap();
    fs::write(rev.join("site/index.html"), "<h1>v1</h1>\n").unwrap();
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
    fs::write(
        rev.join("appspec.yml"),
        format!(
            "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /srv/site\nhooks:\n{hooks}"
        ),
    )
    .unwrap();
    let script = r#"#!/bin/sh
set -eu
log="$CUTOVER_HOST_ROOT/var/log"
mkdir -p "$log"
echo "start $LIFECYCLE_EVENT" >>"$log/events.log"
case "$CUTOVER_HOST_ROOT" in
*/host-2)
    if [ "$LIFECYCLE_EVENT" = AfterInstall ] && [ ! -e "$log/hung-once" ]; then
        touch "$log/hung-once"
        echo $$ >"$log/hung.pid"
        while :; do sleep 1; done
    fi
    ;;
esac
echo "end $LIFECYCLE_EVENT" >>"$log/events.log"
"#;
    fs::write(rev.join("scripts/hook.sh"), script).unwrap();
    rev
}

fn spawn_deploy(state: &Path, revision: &Path, extra: &[&str]) -> Child {
    Command::new(binary("cutover"))
        .args(["local", "deploy"])
        .arg(revision)
        .arg("--state-dir")
        .arg(state)
        .args(extra)
        .current_dir(repo_root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cutover runs")
}

fn cutover_in(state: &Path, args: &[&str]) -> std::process::Output {
    Command::new(binary("cutover"))
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .current_dir(repo_root())
        .output()
        .expect("cutover runs")
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn host_log(state: &Path, host: &str) -> Vec<String> {
    fs::read_to_string(state.join("hosts").join(host).join("var/log/events.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// True while the process runs (a zombie waiting for its parent counts as gone).
fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
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

fn status_json(state: &Path) -> Value {
    let out = cutover_in(state, &["local", "status", "--json"]);
    serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("status --json: {e}\n{}\n{}", stdout(&out), stderr(&out)))
}

#[test]
fn a_killed_deploy_resumes_without_running_finished_lifecycle_events_again() {
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("state");
    let rev = logging_revision(work.path());

    let mut deploy = spawn_deploy(&state, &rev, &["--hosts", "3"]);
    let pid_file = state.join("hosts/host-2/var/log/hung.pid");
    wait_for(
        "host-2's AfterInstall to start",
        Duration::from_secs(30),
        || fs::read_to_string(&pid_file).is_ok_and(|p| p.ends_with('\n')),
    );
    deploy.kill().unwrap();
    deploy.wait().unwrap();
    // The hook outlives the process that ran it, as scripts do when their runner is killed.
    let hung: u32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(hung), "the interrupted hook still runs");

    // The next command, whatever it is, finishes the deployment first.
    let out = cutover_in(&state, &["local", "status"]);
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

    let status = status_json(&state);
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
    for host in ["host-1", "host-3"] {
        let log = host_log(&state, host);
        for event in events {
            assert_eq!(count(&log, &format!("end {event}")), 1, "{host}: {log:?}");
            assert_eq!(count(&log, &format!("start {event}")), 1, "{host}: {log:?}");
        }
    }
    let log = host_log(&state, "host-2");
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
    assert!(state.join("hosts/host-3/srv/site/index.html").is_file());
}

#[test]
fn deploys_killed_at_random_moments_always_resume_to_success() {
    let work = tempfile::tempdir().unwrap();
    let rev = work.path().join("rev");
    let copy = Command::new("cp")
        .arg("-R")
        .arg(repo_root().join("examples/webapp"))
        .arg(&rev)
        .status()
        .unwrap();
    assert!(copy.success());
    // Kill points spread over the whole run: creating, queueing, hooks, commits, the end.
    for (round, delay_ms) in [5u64, 30, 60, 90, 120, 180, 250].into_iter().enumerate() {
        let state = work.path().join(format!("state-{round}"));
        let mut deploy = spawn_deploy(&state, &rev, &["--hosts", "3"]);
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = deploy.kill();
        deploy.wait().unwrap();

        let out = cutover_in(&state, &["local", "list", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
        let deployments = list["deployments"].as_array().unwrap();
        if deployments.is_empty() {
            // Killed before the deployment was saved: nothing happened to any host.
            assert!(!state.join("hosts/host-1/srv").exists(), "round {round}");
            continue;
        }
        assert_eq!(deployments.len(), 1, "round {round}");
        assert_eq!(
            deployments[0]["status"], "Succeeded",
            "round {round} (killed after {delay_ms} ms): {list}"
        );
        let status = status_json(&state);
        for target in status["targets"].as_array().unwrap() {
            for event in target["lifecycleEvents"].as_array().unwrap() {
                assert_eq!(event["status"], "Succeeded", "round {round}: {target}");
            }
        }
        for host in ["host-1", "host-2", "host-3"] {
            let root = state.join("hosts").join(host);
            assert!(root.join("srv/webapp/index.html").is_file(), "{host}");
            let running = fs::read_to_string(root.join("var/lib/webapp/running")).unwrap();
            assert_eq!(
                running.trim(),
                deployments[0]["deploymentId"].as_str().unwrap()
            );
        }
    }
}
