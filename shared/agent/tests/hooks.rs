//! Real hook scripts in temp dirs, run through `hooks::run_event`: one test per behaviour of the
//! conformance rows "hooks: order/location/timeout/failures/runas/environment", "diagnostics" and
//! the deployment root's `scripts.log`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cutover_agent::appspec::HookScript;
use cutover_agent::hooks::{HookContext, HookEnv, RevisionEnv, ScriptLog, run_event};
use cutover_agent::host::HostRoot;
use cutover_core::lifecycle::LifecycleEventName::{self, AfterInstall, ApplicationStart};
use cutover_core::model::{Diagnostics, LOG_TAIL_LIMIT, LifecycleErrorCode};
use tempfile::TempDir;

const GRACE: Duration = Duration::from_millis(300);

/// A deployment directory: the bundle under `deployment-archive/`, the log under `logs/`.
struct Deployment {
    _dir: TempDir,
    root: PathBuf,
    log: PathBuf,
}

impl Deployment {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Readable by everyone, so that a script run as another user can reach its bundle.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().join("deployment-archive");
        fs::create_dir(&root).unwrap();
        let log = dir.path().join("logs/scripts.log");
        Deployment {
            _dir: dir,
            root,
            log,
        }
    }

    /// Writes a script at `location` with `mode`.
    fn script(&self, location: &str, body: &str, mode: u32) {
        let path = self.root.join(location);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, body).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn sh(&self, location: &str, body: &str) {
        self.script(location, &format!("#!/bin/sh\n{body}\n"), 0o755);
    }

    fn run(&self, event: LifecycleEventName, scripts: &[HookScript]) -> Diagnostics {
        self.run_with(event, scripts, &hook_env())
    }

    fn run_with(
        &self,
        event: LifecycleEventName,
        scripts: &[HookScript],
        env: &HookEnv,
    ) -> Diagnostics {
        let mut log = ScriptLog::open(&self.log, "d-ABCDEFGHI").unwrap();
        run_event(HookContext {
            event,
            scripts,
            bundle_root: &self.root,
            env,
            log: &mut log,
            kill_grace: GRACE,
            record: None,
        })
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.root.join(name)).unwrap_or_default()
    }

    fn log_lines(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn script(location: &str) -> HookScript {
    timed(location, 60)
}

fn timed(location: &str, seconds: u64) -> HookScript {
    HookScript {
        location: location.into(),
        timeout: Duration::from_secs(seconds),
        runas: None,
        sudo: false,
    }
}

fn run_as(location: &str, user: &str) -> HookScript {
    HookScript {
        runas: Some(user.into()),
        ..script(location)
    }
}

fn hook_env() -> HookEnv {
    HookEnv {
        deployment_id: "d-ABCDEFGHI".into(),
        application_name: "webapp".into(),
        deployment_group_name: "prod".into(),
        deployment_group_id: "1a2b3c4d-group".into(),
        revision: Some(RevisionEnv::S3 {
            bucket: "releases".into(),
            key: "web/app.zip".into(),
            etag: Some("\"9f86d081\"".into()),
            version: Some("v3".into()),
        }),
        host_root: HostRoot::real().env_value(),
    }
}

fn assert_diagnostics(d: &Diagnostics, code: LifecycleErrorCode, script: Option<&str>, msg: &str) {
    assert_eq!(d.error_code, code, "{d:?}");
    assert_eq!(d.script_name.as_deref(), script, "{d:?}");
    assert_eq!(d.message, msg, "{d:?}");
}

/// True once `pid` has exited (a zombie waiting for its reaper counts as exited).
fn is_dead(pid: &str) -> bool {
    match fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn wait_dead(pid: &str) -> bool {
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        if is_dead(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn env_of(output: &str) -> BTreeMap<String, String> {
    output
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

// hooks: order

#[test]
fn hooks_order_scripts_run_in_the_order_listed() {
    let d = Deployment::new();
    for name in ["a", "b", "c"] {
        d.sh(
            &format!("scripts/{name}.sh"),
            &format!("echo {name} >> order.txt"),
        );
    }
    let scripts = [
        script("scripts/c.sh"),
        script("scripts/a.sh"),
        script("scripts/b.sh"),
    ];
    let diag = d.run(AfterInstall, &scripts);
    assert_diagnostics(&diag, LifecycleErrorCode::Success, None, "Succeeded");
    assert_eq!(d.read("order.txt"), "c\na\nb\n");
}

#[test]
fn hooks_order_the_first_failure_stops_the_event() {
    let d = Deployment::new();
    d.sh("scripts/a.sh", "echo a >> order.txt");
    d.sh("scripts/b.sh", "echo b >> order.txt; exit 3");
    d.sh("scripts/c.sh", "echo c >> order.txt");
    let scripts = [
        script("scripts/a.sh"),
        script("scripts/b.sh"),
        script("scripts/c.sh"),
    ];
    let diag = d.run(AfterInstall, &scripts);
    assert_diagnostics(
        &diag,
        LifecycleErrorCode::ScriptFailed,
        Some("scripts/b.sh"),
        "Script at specified location: scripts/b.sh failed with exit code 3",
    );
    assert_eq!(d.read("order.txt"), "a\nb\n");
}

#[test]
fn hooks_order_an_event_without_scripts_succeeds_and_logs_nothing() {
    let d = Deployment::new();
    let diag = d.run(AfterInstall, &[]);
    assert_eq!(
        diag,
        Diagnostics::new(LifecycleErrorCode::Success, None, "Succeeded", "")
    );
    assert!(d.log_lines().is_empty());
}

// hooks: location

#[test]
fn hooks_location_is_relative_to_the_bundle_root_which_is_the_working_directory() {
    let d = Deployment::new();
    d.sh("scripts/where.sh", "pwd");
    let diag = d.run(AfterInstall, &[script("/scripts/where.sh")]);
    assert_eq!(diag.error_code, LifecycleErrorCode::Success, "{diag:?}");
    let root = d.root.canonicalize().unwrap();
    assert!(
        diag.log_tail
            .ends_with(&format!("[stdout]{}\n", root.display())),
        "{diag:?}"
    );
}

// hooks: failures

#[test]
fn hooks_failures_a_missing_script_is_script_missing_naming_the_location() {
    let d = Deployment::new();
    d.sh("scripts/a.sh", "echo a >> order.txt");
    let diag = d.run(
        AfterInstall,
        &[script("scripts/a.sh"), script("scripts/gone.sh")],
    );
    let expected = format!(
        "Script does not exist at specified location: {}",
        d.root.join("scripts/gone.sh").display()
    );
    assert_diagnostics(
        &diag,
        LifecycleErrorCode::ScriptMissing,
        Some("scripts/gone.sh"),
        &expected,
    );
    assert_eq!(d.read("order.txt"), "a\n");
}

#[test]
fn hooks_failures_a_script_that_is_not_executable_is_made_executable() {
    let d = Deployment::new();
    d.script("scripts/plain.sh", "#!/bin/sh\necho ran\n", 0o644);
    let diag = d.run(AfterInstall, &[script("scripts/plain.sh")]);
    assert_eq!(diag.error_code, LifecycleErrorCode::Success, "{diag:?}");
    assert!(diag.log_tail.ends_with("[stdout]ran\n"), "{diag:?}");
    let mode = fs::metadata(d.root.join("scripts/plain.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
}

#[test]
fn hooks_failures_a_script_that_cannot_be_made_executable_is_script_not_executable() {
    // A sysctl file: mode 0644, and nobody, root included, may chmod it.
    let target = Path::new("/proc/sys/kernel/hostname");
    let d = Deployment::new();
    fs::create_dir_all(d.root.join("scripts")).unwrap();
    symlink(target, d.root.join("scripts/locked.sh")).unwrap();
    let diag = d.run(AfterInstall, &[script("scripts/locked.sh")]);
    assert_eq!(diag.error_code, LifecycleErrorCode::ScriptNotExecutable);
    assert_eq!(diag.script_name.as_deref(), Some("scripts/locked.sh"));
    assert!(
        diag.message.starts_with(
            "Unable to set script at specified location: scripts/locked.sh as executable: "
        ),
        "{diag:?}"
    );
}

#[test]
fn hooks_failures_a_script_without_a_shebang_runs_with_sh_as_on_the_agent() {
    let d = Deployment::new();
    d.script("scripts/bare.sh", "echo \"no shebang in $0\"\n", 0o755);
    let diag = d.run(AfterInstall, &[script("scripts/bare.sh")]);
    assert_eq!(diag.error_code, LifecycleErrorCode::Success, "{diag:?}");
    assert!(diag.log_tail.contains("[stdout]no shebang in "), "{diag:?}");
}

#[test]
fn hooks_failures_a_non_zero_exit_is_script_failed_with_the_exit_code_and_the_output() {
    let d = Deployment::new();
    d.sh("scripts/x.sh", "echo 'db migration failed' >&2; exit 3");
    let diag = d.run(AfterInstall, &[script("scripts/x.sh")]);
    assert_diagnostics(
        &diag,
        LifecycleErrorCode::ScriptFailed,
        Some("scripts/x.sh"),
        "Script at specified location: scripts/x.sh failed with exit code 3",
    );
    assert!(diag.log_tail.ends_with("[stderr]db migration failed\n"));
}

#[test]
fn hooks_failures_a_script_killed_by_a_signal_says_which() {
    let d = Deployment::new();
    d.sh("scripts/x.sh", "kill -USR1 $$");
    let diag = d.run(AfterInstall, &[script("scripts/x.sh")]);
    assert_diagnostics(
        &diag,
        LifecycleErrorCode::ScriptFailed,
        Some("scripts/x.sh"),
        "Script at specified location: scripts/x.sh failed: it was killed by signal SIGUSR1",
    );
}

#[test]
fn hooks_failures_a_script_that_cannot_be_started_is_script_failed_with_the_reason() {
    let d = Deployment::new();
    fs::create_dir_all(d.root.join("scripts/dir.sh")).unwrap();
    let diag = d.run(AfterInstall, &[script("scripts/dir.sh")]);
    assert_eq!(
        diag.error_code,
        LifecycleErrorCode::ScriptFailed,
        "{diag:?}"
    );
    assert!(
        diag.message.starts_with(
            "Script at specified location: scripts/dir.sh failed with error: Permission denied"
        ),
        "{diag:?}"
    );
}

// hooks: timeout

#[test]
fn hooks_timeout_kills_the_scripts_whole_process_group_and_returns_promptly() {
    let d = Deployment::new();
    d.sh(
        "scripts/hang.sh",
        "sleep 1000 &\necho $! > bg.pid\necho started\nsleep 1000",
    );
    let started = Instant::now();
    let diag = d.run(ApplicationStart, &[timed("scripts/hang.sh", 1)]);
    let took = started.elapsed();
    assert_diagnostics(
        &diag,
        LifecycleErrorCode::ScriptTimedOut,
        Some("scripts/hang.sh"),
        "Script at specified location: scripts/hang.sh failed to complete in 1 seconds",
    );
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(
        wait_dead(&d.read("bg.pid")),
        "the background sleep survived"
    );
    assert!(diag.log_tail.ends_with("[stdout]started\n"), "{diag:?}");
}

#[test]
fn hooks_timeout_a_group_that_ignores_sigterm_gets_sigkill_after_the_grace() {
    let d = Deployment::new();
    d.sh(
        "scripts/stubborn.sh",
        "trap '' TERM\nsleep 1000 &\necho $! > bg.pid\nwhile :; do sleep 1; done",
    );
    let started = Instant::now();
    let diag = d.run(ApplicationStart, &[timed("scripts/stubborn.sh", 1)]);
    let took = started.elapsed();
    assert_eq!(
        diag.error_code,
        LifecycleErrorCode::ScriptTimedOut,
        "{diag:?}"
    );
    assert!(took >= Duration::from_secs(1) + GRACE, "took {took:?}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(
        wait_dead(&d.read("bg.pid")),
        "the background sleep survived"
    );
}

#[test]
fn hooks_timeout_each_script_has_its_own_timeout() {
    // Together they take longer than either timeout, but each finishes within its own.
    let d = Deployment::new();
    d.sh("scripts/a.sh", "sleep 0.7");
    d.sh("scripts/b.sh", "sleep 0.7");
    let scripts = [timed("scripts/a.sh", 1), timed("scripts/b.sh", 1)];
    let diag = d.run(AfterInstall, &scripts);
    assert_eq!(diag.error_code, LifecycleErrorCode::Success, "{diag:?}");
}

#[test]
fn hooks_timeout_covers_output_left_open_by_a_background_process() {
    let d = Deployment::new();
    d.sh(
        "scripts/start.sh",
        "sleep 1000 &\necho $! > bg.pid\necho launched",
    );
    let started = Instant::now();
    let diag = d.run(ApplicationStart, &[timed("scripts/start.sh", 1)]);
    let took = started.elapsed();
    assert_eq!(
        diag.error_code,
        LifecycleErrorCode::UnknownError,
        "{diag:?}"
    );
    assert_eq!(diag.script_name.as_deref(), Some("scripts/start.sh"));
    assert!(
        diag.message
            .starts_with("Script at specified location: scripts/start.sh failed to close STDOUT"),
        "{diag:?}"
    );
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(
        wait_dead(&d.read("bg.pid")),
        "the background sleep survived"
    );
    assert!(diag.log_tail.ends_with("[stdout]launched\n"), "{diag:?}");
}

#[test]
fn hooks_timeout_a_background_process_with_its_output_redirected_keeps_running() {
    // The way CodeDeploy's docs start a long-running process from a hook.
    let d = Deployment::new();
    d.sh(
        "scripts/start.sh",
        "sleep 1000 > /dev/null 2>&1 &\necho $! > bg.pid",
    );
    let started = Instant::now();
    let diag = d.run(ApplicationStart, &[timed("scripts/start.sh", 5)]);
    assert_eq!(diag.error_code, LifecycleErrorCode::Success, "{diag:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    let pid = d.read("bg.pid");
    assert!(!is_dead(&pid), "the server was killed");
    let _ = std::process::Command::new("kill").arg(pid.trim()).status();
}

// hooks: runas

#[test]
fn hooks_runas_runs_the_script_as_that_user() {
    let d = Deployment::new();
    d.sh(
        "scripts/who.sh",
        "id -un\necho \"HOME=$HOME USER=$USER LOGNAME=$LOGNAME\"",
    );
    if !nix::unistd::geteuid().is_root() {
        // Only root can switch users: a non-root agent refuses, and says why.
        let diag = d.run(AfterInstall, &[run_as("scripts/who.sh", "root")]);
        assert_eq!(
            diag.error_code,
            LifecycleErrorCode::UnknownError,
            "{diag:?}"
        );
        assert!(
            diag.message.starts_with(
                "Script at specified location: scripts/who.sh run as user root could not be \
                 started: runas needs the agent to run as root"
            ),
            "{diag:?}"
        );
        return;
    }
    let diag = d.run(AfterInstall, &[run_as("scripts/who.sh", "nobody")]);
    assert_eq!(diag.error_code, LifecycleErrorCode::Success, "{diag:?}");
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let expected = format!(
        "[stdout]nobody\n[stdout]HOME={} USER=nobody LOGNAME=nobody\n",
        nobody.dir.display()
    );
    assert!(diag.log_tail.ends_with(&expected), "{diag:?}");
}

#[test]
fn hooks_runas_a_failure_names_the_user() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let d = Deployment::new();
    d.sh("scripts/x.sh", "exit 4");
    let diag = d.run(AfterInstall, &[run_as("scripts/x.sh", "nobody")]);
    assert_diagnostics(
        &diag,
        LifecycleErrorCode::ScriptFailed,
        Some("scripts/x.sh"),
        "Script at specified location: scripts/x.sh run as user nobody failed with exit code 4",
    );
}

#[test]
fn hooks_runas_an_unknown_user_is_named() {
    let d = Deployment::new();
    d.sh("scripts/x.sh", "echo a >> order.txt");
    let diag = d.run(AfterInstall, &[run_as("scripts/x.sh", "no-such-user-42")]);
    assert_diagnostics(
        &diag,
        LifecycleErrorCode::ScriptFailed,
        Some("scripts/x.sh"),
        "Script at specified location: scripts/x.sh run as user no-such-user-42 failed with \
         error: there is no user 'no-such-user-42' on this host",
    );
    assert_eq!(d.read("order.txt"), "");
}

// hooks: environment

#[test]
fn hooks_environment_has_codedeploys_variables_and_a_clean_base() {
    let d = Deployment::new();
    d.sh("scripts/env.sh", "env");
    let diag = d.run(AfterInstall, &[script("scripts/env.sh")]);
    assert_eq!(diag.error_code, LifecycleErrorCode::Success, "{diag:?}");
    let output: String = fs::read_to_string(&d.log)
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.split_once("[stdout] ")
                .map(|(_, text)| format!("{text}\n"))
        })
        .collect();
    let env = env_of(&output);
    let expected = [
        ("LIFECYCLE_EVENT", "AfterInstall"),
        ("DEPLOYMENT_ID", "d-ABCDEFGHI"),
        ("APPLICATION_NAME", "webapp"),
        ("DEPLOYMENT_GROUP_NAME", "prod"),
        ("DEPLOYMENT_GROUP_ID", "1a2b3c4d-group"),
        ("BUNDLE_BUCKET", "releases"),
        ("BUNDLE_KEY", "web/app.zip"),
        ("BUNDLE_ETAG", "\"9f86d081\""),
        ("BUNDLE_VERSION", "v3"),
        ("CUTOVER_HOST_ROOT", ""),
        ("PATH", cutover_agent::hooks::SCRIPT_PATH),
    ];
    for (name, value) in expected {
        assert_eq!(env.get(name).map(String::as_str), Some(value), "{name}");
    }
    assert!(env.contains_key("HOME") && env.contains_key("USER"));
    assert!(!env.contains_key("BUNDLE_COMMIT"));
    // The agent's own environment (here, cargo's) does not leak into scripts.
    assert!(!env.keys().any(|k| k.starts_with("CARGO")), "{env:?}");
}

#[test]
fn hooks_environment_gives_a_simulated_hosts_root_and_a_commit() {
    let d = Deployment::new();
    d.sh(
        "scripts/env.sh",
        "echo \"root=$CUTOVER_HOST_ROOT commit=$BUNDLE_COMMIT bucket=${BUNDLE_BUCKET-unset}\"",
    );
    let env = HookEnv {
        revision: Some(RevisionEnv::GitHub {
            commit: "0123abc".into(),
        }),
        host_root: HostRoot::new("/tmp/hosts/h1").env_value(),
        ..hook_env()
    };
    let diag = d.run_with(AfterInstall, &[script("scripts/env.sh")], &env);
    assert!(
        diag.log_tail
            .ends_with("[stdout]root=/tmp/hosts/h1 commit=0123abc bucket=unset\n"),
        "{diag:?}"
    );
}

#[test]
fn hooks_environment_stdin_is_dev_null() {
    let d = Deployment::new();
    d.sh(
        "scripts/read.sh",
        "if read line; then echo \"got $line\"; else echo eof; fi",
    );
    let diag = d.run(AfterInstall, &[timed("scripts/read.sh", 5)]);
    assert_eq!(diag.error_code, LifecycleErrorCode::Success, "{diag:?}");
    assert!(diag.log_tail.ends_with("[stdout]eof\n"), "{diag:?}");
}

// diagnostics and scripts.log

#[test]
fn diagnostics_large_output_on_both_streams_does_not_deadlock_and_keeps_the_last_4kb() {
    let d = Deployment::new();
    let pad = "x".repeat(100);
    let body = format!(
        r#"i=0
while [ $i -lt 12000 ]; do
  echo "out $i {pad}"
  echo "err $i {pad}" >&2
  i=$((i+1))
done
echo last"#
    );
    d.sh("scripts/loud.sh", &body);
    let diag = d.run(AfterInstall, &[timed("scripts/loud.sh", 60)]);
    assert_eq!(diag.error_code, LifecycleErrorCode::Success, "{diag:?}");
    assert!(diag.log_tail.len() <= LOG_TAIL_LIMIT);
    assert!(diag.log_tail.len() > LOG_TAIL_LIMIT - 200);
    // The streams are read concurrently, so the tail ends with the last line of either.
    let last_err = format!("[stderr]err 11999 {pad}\n");
    assert!(
        diag.log_tail.ends_with("[stdout]last\n") || diag.log_tail.ends_with(&last_err),
        "{:?}",
        &diag.log_tail
    );
    let lines = d.log_lines();
    let count = |tag: &str| lines.iter().filter(|l| l.contains(tag)).count();
    assert_eq!(count("[stdout] out "), 12000);
    assert_eq!(count("[stderr] err "), 12000);
    let bytes = fs::metadata(&d.log).unwrap().len();
    assert!(bytes > 2 * 1024 * 1024, "{bytes}");
}

#[test]
fn diagnostics_log_tail_is_in_the_agents_format() {
    let d = Deployment::new();
    d.sh("scripts/after.sh", "echo hello\necho world");
    let diag = d.run(AfterInstall, &[script("scripts/after.sh")]);
    assert_eq!(
        diag.log_tail,
        "LifecycleEvent - AfterInstall\nScript - scripts/after.sh\n[stdout]hello\n[stdout]world\n"
    );
}

#[test]
fn deployment_root_scripts_log_tags_each_line_with_time_deployment_event_script_and_stream() {
    let d = Deployment::new();
    d.sh("scripts/after.sh", "echo hello\necho oops >&2");
    d.sh("scripts/start.sh", "echo up");
    d.run(AfterInstall, &[script("scripts/after.sh")]);
    d.run(ApplicationStart, &[script("scripts/start.sh")]);
    let lines = d.log_lines();
    let rest: Vec<&str> = lines
        .iter()
        .map(|line| {
            let (stamp, rest) = line.split_at(26);
            // [2026-11-26 13:30:52.123] and a space
            assert_eq!(stamp.len(), 26, "{line}");
            assert!(stamp.starts_with('[') && stamp.ends_with("] "), "{line}");
            assert_eq!(&stamp[11..12], " ", "{line}");
            assert_eq!(&stamp[20..21], ".", "{line}");
            rest
        })
        .collect();
    let mut expected = vec![
        "[d-ABCDEFGHI] [AfterInstall] LifecycleEvent - AfterInstall",
        "[d-ABCDEFGHI] [AfterInstall] [scripts/after.sh] Script - scripts/after.sh",
        "[d-ABCDEFGHI] [AfterInstall] [scripts/after.sh] [stdout] hello",
        "[d-ABCDEFGHI] [AfterInstall] [scripts/after.sh] [stderr] oops",
        "[d-ABCDEFGHI] [ApplicationStart] LifecycleEvent - ApplicationStart",
        "[d-ABCDEFGHI] [ApplicationStart] [scripts/start.sh] Script - scripts/start.sh",
        "[d-ABCDEFGHI] [ApplicationStart] [scripts/start.sh] [stdout] up",
    ];
    // stdout and stderr are read concurrently, so their relative order is not fixed.
    let mut got = rest.clone();
    got[2..4].sort();
    expected[2..4].sort();
    assert_eq!(got, expected);
}

#[test]
fn diagnostics_a_scripts_log_that_cannot_be_written_is_unknown_error() {
    let d = Deployment::new();
    d.sh("scripts/a.sh", "echo a >> order.txt; echo hello");
    d.sh("scripts/b.sh", "echo b >> order.txt");
    let mut log = ScriptLog::open(Path::new("/dev/full"), "d-ABCDEFGHI").unwrap();
    let scripts = [script("scripts/a.sh"), script("scripts/b.sh")];
    let diag = run_event(HookContext {
        event: AfterInstall,
        scripts: &scripts,
        bundle_root: &d.root,
        env: &hook_env(),
        log: &mut log,
        kill_grace: GRACE,
        record: None,
    });
    assert_eq!(
        diag.error_code,
        LifecycleErrorCode::UnknownError,
        "{diag:?}"
    );
    assert!(
        diag.message
            .starts_with("could not write the scripts' log /dev/full: "),
        "{diag:?}"
    );
    assert_eq!(d.read("order.txt"), "a\n");
}

/// A process in its own group, as a script left behind by a run whose process died would be.
fn orphan_group() -> std::process::Child {
    use std::os::unix::process::CommandExt;
    std::process::Command::new("sh")
        .args(["-c", "while :; do sleep 1; done"])
        .process_group(0)
        .spawn()
        .unwrap()
}

fn gone(pid: u32) -> bool {
    cutover_agent::hooks::start_time(pid as i32).is_none()
}

#[test]
fn hooks_left_behind_a_running_script_is_recorded_while_it_runs_and_the_record_removed_after() {
    let d = Deployment::new();
    let record = d.root.parent().unwrap().join("running-script");
    // The record is written just after the script starts: the script waits for it (up to 5 s).
    d.sh(
        "scripts/look.sh",
        &format!(
            "for i in $(seq 500); do [ -s '{r}' ] && break; sleep 0.01; done; cat '{r}' > seen",
            r = record.display()
        ),
    );
    let mut log = ScriptLog::open(&d.log, "d-ABCDEFGHI").unwrap();
    let diag = run_event(HookContext {
        event: AfterInstall,
        scripts: &[script("scripts/look.sh")],
        bundle_root: &d.root,
        env: &hook_env(),
        log: &mut log,
        kill_grace: GRACE,
        record: Some(&record),
    });
    assert_eq!(diag.error_code, LifecycleErrorCode::Success, "{diag:?}");
    let seen = d.read("seen");
    let words: Vec<u64> = seen
        .split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect();
    assert_eq!(words.len(), 2, "{seen:?}");
    assert!(words[0] > 1 && words[1] > 0, "{seen:?}");
    assert!(!record.exists(), "the record goes when the script ends");
}

#[test]
fn hooks_left_behind_a_script_whose_runner_died_is_stopped_before_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut orphan = orphan_group();
    let pid = orphan.id();
    let start = cutover_agent::hooks::start_time(pid as i32).unwrap();
    let record = dir.path().join("running-script");
    fs::write(&record, format!("{pid} {start}\n")).unwrap();

    let stopped = cutover_agent::hooks::stop_left_behind(&record, GRACE);
    assert_eq!(stopped, Some(pid as i32));
    orphan.wait().unwrap();
    assert!(gone(pid));
    assert!(!record.exists());
}

#[test]
fn hooks_left_behind_a_record_naming_another_process_stops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut other = orphan_group();
    let pid = other.id();
    let start = cutover_agent::hooks::start_time(pid as i32).unwrap();
    let record = dir.path().join("running-script");
    // The same pid with another start time is a process that reused the id.
    fs::write(&record, format!("{pid} {}\n", start + 1)).unwrap();
    assert_eq!(cutover_agent::hooks::stop_left_behind(&record, GRACE), None);
    assert!(!gone(pid), "an unrelated process is left alone");
    assert!(!record.exists());
    // Neither garbage nor a missing record stops anything.
    fs::write(&record, "not a record").unwrap();
    assert_eq!(cutover_agent::hooks::stop_left_behind(&record, GRACE), None);
    assert_eq!(cutover_agent::hooks::stop_left_behind(&record, GRACE), None);
    other.kill().unwrap();
    other.wait().unwrap();
}
