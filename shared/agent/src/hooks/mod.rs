//! Running one lifecycle event's hook scripts the way the CodeDeploy agent does, and reporting
//! the outcome as CodeDeploy's diagnostics.
//!
//! The scripts run in the order listed, each from the bundle root, with stdin from `/dev/null`,
//! in its own process group, with CodeDeploy's environment ([`HookEnv`]) and as its `runas` user.
//! The first script that does not succeed ends the event. Each output line goes to
//! `scripts.log` ([`ScriptLog`]); the diagnostics keep the event's last 4 KB.
//!
//! **Timeouts.** Each script has its own `timeout`, counted from its start, and it covers both
//! the script's exit and the closing of its stdout and stderr (the agent's
//! `ThreadJoiner.new(script.timeout)` in `hook_executor.rb`, shared by the joins on the process
//! and on both output threads). The time an event can take is therefore at most the sum of its
//! scripts' timeouts, which is the limit CodeDeploy itself sets on the event
//! ([`ServerAppSpec::event_timeout`](cutover_core::appspec::ServerAppSpec::event_timeout)). When
//! a script's time is up its whole process group gets SIGTERM, and SIGKILL after
//! [`HookContext::kill_grace`] (the agent sends only SIGTERM, and then waits for the script for
//! as long as it takes).
//!
//! **Outcomes**, with the agent's messages:
//!
//! | case | error code | message |
//! |---|---|---|
//! | all scripts exit 0 (or there are none) | `Success` | `Succeeded` |
//! | the location is not in the bundle | `ScriptMissing` | `Script does not exist at specified location: /abs/path` |
//! | not executable, and `chmod +x` fails | `ScriptNotExecutable` | `Unable to set script at specified location: L as executable: why` |
//! | non-zero exit | `ScriptFailed` | `Script at specified location: L [run as user U] failed with exit code N` |
//! | killed by a signal | `ScriptFailed` | `... failed: it was killed by signal SIGSEGV` |
//! | cannot be started, or `runas` names no user | `ScriptFailed` | `... failed with error: why` |
//! | still running at its deadline | `ScriptTimedOut` | `Script at specified location: L failed to complete in N seconds` |
//! | exited, but a process it started holds its output open at the deadline | `UnknownError` | `Script at specified location: L failed to close STDOUT ...` |
//! | `runas` while the agent is not root, `scripts.log` not writable, ... | `UnknownError` | what went wrong |
//!
//! The agent reports an output left open with its own code 6, which CodeDeploy's API has no name
//! for; cutover says `UnknownError`, and kills the group as for a timeout.
//!
//! A file without a `#!` line runs with `/bin/sh`, as the agent (Ruby's `spawn`) runs it. The
//! AppSpec's `sudo` flag is ignored, as the agent ignores it on Linux.

mod env;
mod log;
mod process;
mod runas;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use cutover_core::appspec::HookScript;
use cutover_core::lifecycle::LifecycleEventName;
use cutover_core::model::{Diagnostics, LifecycleErrorCode};
use nix::sys::signal::Signal;
use nix::unistd::{AccessFlags, access};

pub use env::{HookEnv, RevisionEnv, SCRIPT_PATH};
pub use log::ScriptLog;

use log::{Stream, Tail};
use process::{Launch, Outcome, Output};
pub use process::{start_time, stop_left_behind};
use runas::{RunAs, RunAsError};

/// How long a timed-out script's process group has between SIGTERM and SIGKILL.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(10);

/// What a lifecycle event's scripts run with.
#[derive(Debug)]
pub struct HookContext<'a> {
    pub event: LifecycleEventName,
    pub scripts: &'a [HookScript],
    /// The revision's unpacked bundle root; `location` is relative to it, and scripts run with it
    /// as their working directory.
    pub bundle_root: &'a Path,
    /// The deployment's variables, given to every script on top of a fixed base (`PATH`, `HOME`,
    /// `USER`, `LOGNAME`, and the agent's locale, time zone and proxy settings).
    pub env: &'a HookEnv,
    pub log: &'a mut ScriptLog,
    /// How long to wait after SIGTERM before SIGKILL ([`DEFAULT_KILL_GRACE`]; tests use less).
    pub kill_grace: Duration,
    /// Where the running script's process group is recorded while it runs, so that a later run
    /// can stop a script left behind by a process that died ([`stop_left_behind`]).
    pub record: Option<&'a Path>,
}

/// Runs the event's scripts in order and returns CodeDeploy's diagnostics for the event.
pub fn run_event(ctx: HookContext<'_>) -> Diagnostics {
    let HookContext {
        event,
        scripts,
        bundle_root,
        env,
        log,
        kill_grace,
        record,
    } = ctx;
    // A write error left over from an earlier event belongs to that event, which failed anyway.
    log.take_error();
    let mut run = EventRun {
        event,
        bundle_root,
        env,
        log,
        kill_grace,
        record,
        tail: Tail::default(),
    };
    let result = if scripts.is_empty() {
        Ok(())
    } else {
        run.all(scripts)
    };
    let tail = run.tail.as_str();
    match result {
        Ok(()) => Diagnostics::new(LifecycleErrorCode::Success, None, "Succeeded", tail),
        Err(f) => Diagnostics::new(f.code, f.script, f.message, tail),
    }
}

/// Why an event stopped.
#[derive(Debug)]
struct Failure {
    code: LifecycleErrorCode,
    script: Option<String>,
    message: String,
}

impl Failure {
    fn of(code: LifecycleErrorCode, script: &HookScript, message: String) -> Self {
        Failure {
            code,
            script: Some(script.location.clone()),
            message,
        }
    }
}

struct EventRun<'a> {
    event: LifecycleEventName,
    bundle_root: &'a Path,
    env: &'a HookEnv,
    log: &'a mut ScriptLog,
    kill_grace: Duration,
    record: Option<&'a Path>,
    tail: Tail,
}

impl EventRun<'_> {
    fn all(&mut self, scripts: &[HookScript]) -> Result<(), Failure> {
        self.log.event_started(self.event);
        self.tail.event_started(self.event);
        for script in scripts {
            let result = self.one(script);
            self.log.flush();
            result?;
            self.check_log()?;
        }
        Ok(())
    }

    fn one(&mut self, script: &HookScript) -> Result<(), Failure> {
        let path = locate(self.bundle_root, script)?;
        make_executable(&path, script)?;
        self.log.script_started(self.event, &script.location);
        self.tail.script_started(&script.location);
        let run_as =
            RunAs::resolve(script.runas.as_deref()).map_err(|err| runas_failure(script, err))?;
        let env = env::script_env(run_as.account(), self.env, self.event);
        let launch = Launch {
            script: &path,
            cwd: self.bundle_root,
            env: &env,
            run_as: &run_as,
            timeout: script.timeout,
            kill_grace: self.kill_grace,
            record: self.record,
        };
        let mut sink = Sink {
            log: self.log,
            tail: &mut self.tail,
            event: self.event,
            script: &script.location,
        };
        judge(script, process::run(&launch, &mut sink))
    }

    fn check_log(&mut self) -> Result<(), Failure> {
        match self.log.take_error() {
            None => Ok(()),
            Some(err) => Err(Failure {
                code: LifecycleErrorCode::UnknownError,
                script: None,
                message: format!(
                    "could not write the scripts' log {}: {err}",
                    self.log.path().display()
                ),
            }),
        }
    }
}

/// Sends a script's output lines to `scripts.log` and to the event's tail.
struct Sink<'a> {
    log: &'a mut ScriptLog,
    tail: &'a mut Tail,
    event: LifecycleEventName,
    script: &'a str,
}

impl Output for Sink<'_> {
    fn line(&mut self, stream: Stream, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        self.log.output(self.event, self.script, stream, text);
        self.tail.output(stream, text);
    }

    fn pause(&mut self) {
        self.log.flush();
    }
}

/// The script's file on this machine, which must exist.
fn locate(bundle_root: &Path, script: &HookScript) -> Result<PathBuf, Failure> {
    let relative = script.bundle_path();
    // The AppSpec parser refuses `..`; this guards scripts built some other way.
    if relative.split('/').any(|part| part == "..") {
        return Err(Failure::of(
            LifecycleErrorCode::UnknownError,
            script,
            format!(
                "Script location {} leaves the bundle; a location is relative to the bundle root",
                script.location
            ),
        ));
    }
    let path = bundle_root.join(relative);
    if path.exists() {
        Ok(path)
    } else {
        Err(Failure::of(
            LifecycleErrorCode::ScriptMissing,
            script,
            format!(
                "Script does not exist at specified location: {}",
                path.display()
            ),
        ))
    }
}

/// Like the agent, makes a script that the agent cannot execute executable for everyone
/// (`chmod +x`).
fn make_executable(path: &Path, script: &HookScript) -> Result<(), Failure> {
    if access(path, AccessFlags::X_OK).is_ok() {
        return Ok(());
    }
    let chmod = fs::metadata(path).and_then(|meta| {
        let mode = meta.permissions().mode() & 0o7777;
        fs::set_permissions(path, fs::Permissions::from_mode(mode | 0o111))
    });
    chmod.map_err(|err| {
        Failure::of(
            LifecycleErrorCode::ScriptNotExecutable,
            script,
            format!(
                "Unable to set script at specified location: {} as executable: {err}",
                script.location
            ),
        )
    })
}

/// `Script at specified location: L`, and ` run as user U` under runas, as the agent says it.
fn prefix(script: &HookScript) -> String {
    match &script.runas {
        Some(user) => format!(
            "Script at specified location: {} run as user {user}",
            script.location
        ),
        None => format!("Script at specified location: {}", script.location),
    }
}

fn runas_failure(script: &HookScript, err: RunAsError) -> Failure {
    match err {
        // The revision names a user this host lacks: the agent's `su` fails, and so does the
        // script.
        RunAsError::UnknownUser(_) => Failure::of(
            LifecycleErrorCode::ScriptFailed,
            script,
            format!("{} failed with error: {err}", prefix(script)),
        ),
        _ => Failure::of(
            LifecycleErrorCode::UnknownError,
            script,
            format!("{} could not be started: {err}", prefix(script)),
        ),
    }
}

/// The event's verdict on one script's run.
fn judge(script: &HookScript, outcome: Outcome) -> Result<(), Failure> {
    use LifecycleErrorCode::{ScriptFailed, ScriptTimedOut, UnknownError};
    let (code, message) = match outcome {
        Outcome::Exited(status) if status.success() => return Ok(()),
        Outcome::Exited(status) => (ScriptFailed, exit_message(script, status)),
        Outcome::TimedOut => (
            ScriptTimedOut,
            format!(
                "Script at specified location: {} failed to complete in {} seconds",
                script.location,
                script.timeout.as_secs()
            ),
        ),
        Outcome::OutputLeftOpen(stream) => (
            UnknownError,
            format!(
                "Script at specified location: {} failed to close {} within {} seconds: a process \
                 it started still holds it open; send that process's output elsewhere, for \
                 example `command > /dev/null 2>&1 &`",
                script.location,
                stream.to_string().to_uppercase(),
                script.timeout.as_secs()
            ),
        ),
        Outcome::NotStarted(err) => (
            ScriptFailed,
            format!("{} failed with error: {err}", prefix(script)),
        ),
        Outcome::Lost(err) => (
            UnknownError,
            format!("{}: the agent lost track of it: {err}", prefix(script)),
        ),
    };
    Err(Failure::of(code, script, message))
}

fn exit_message(script: &HookScript, status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("{} failed with exit code {code}", prefix(script)),
        (None, Some(signal)) => format!(
            "{} failed: it was killed by signal {}",
            prefix(script),
            signal_name(signal)
        ),
        (None, None) => format!("{} failed: {status}", prefix(script)),
    }
}

fn signal_name(signal: i32) -> String {
    Signal::try_from(signal).map_or_else(|_| signal.to_string(), |s| s.as_str().to_owned())
}
