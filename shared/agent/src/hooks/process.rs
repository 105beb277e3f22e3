//! Runs one script as a child in its own process group, pumps its stdout and stderr line by line
//! while it runs, and enforces its deadline on the whole group: SIGTERM, then SIGKILL after a
//! grace period.
//!
//! Like the CodeDeploy agent, the deadline covers both the script's exit and the closing of its
//! output pipes, so a background process that keeps them open cannot hold the event forever.

use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::log::Stream;
use super::runas::RunAs;

/// Longer lines are passed on in pieces of this size, so one endless line cannot exhaust memory.
const MAX_LINE: u64 = 64 * 1024;
/// Lines in flight between the pipe readers and the log writer.
const LINES_IN_FLIGHT: usize = 256;
/// How often to look whether a signalled process group has gone.
const GROUP_POLL: Duration = Duration::from_millis(20);
/// How long to wait for a SIGKILLed group's pipes and exit before giving up on them; only a
/// process stuck in the kernel, or one that left the group, outlives SIGKILL.
const ABANDON_AFTER: Duration = Duration::from_secs(2);

/// One script to run.
#[derive(Debug)]
pub(crate) struct Launch<'a> {
    pub script: &'a Path,
    pub cwd: &'a Path,
    pub env: &'a [(String, String)],
    pub run_as: &'a RunAs,
    pub timeout: Duration,
    pub kill_grace: Duration,
    /// Where the script's process group is recorded while it runs (see [`stop_left_behind`]).
    pub record: Option<&'a Path>,
}

/// How a script's run ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    Exited(ExitStatus),
    /// It was still running at its deadline.
    TimedOut,
    /// It had exited, but something it started still held this output open at the deadline.
    OutputLeftOpen(Stream),
    /// It could not be started.
    NotStarted(io::Error),
    /// The agent could not follow it (waiting on it failed).
    Lost(io::Error),
}

/// Where a running script's output lines go.
pub(crate) trait Output {
    fn line(&mut self, stream: Stream, line: &[u8]);
    /// Called when no output is waiting, before the agent blocks.
    fn pause(&mut self);
}

enum Event {
    Line(Stream, Vec<u8>),
    Closed(Stream),
    Exited(io::Result<ExitStatus>),
}

/// Runs `launch` to its end, passing its output to `out` as it comes.
pub(crate) fn run(launch: &Launch<'_>, out: &mut dyn Output) -> Outcome {
    let child = match spawn(launch) {
        Ok(child) => child,
        Err(err) => return Outcome::NotStarted(err),
    };
    // The script leads its own group, whose id is its pid.
    let group = Pid::from_raw(child.id() as i32);
    if let Some(record) = launch.record {
        // Best effort: without the record, only the stop of a script left behind by a crash
        // is lost, not this run.
        let _ = fs::write(record, format!("{}\n", RunningGroup::of(group)));
    }
    let (tx, rx) = mpsc::sync_channel(LINES_IN_FLIGHT);
    let outcome = match watch(child, tx) {
        Ok(()) => supervise(&rx, group, launch, out),
        Err(err) => {
            signal(group, Signal::SIGKILL);
            Outcome::Lost(err)
        }
    };
    if let Some(record) = launch.record {
        let _ = fs::remove_file(record);
    }
    outcome
}

/// A script's process group as it is recorded: its id and its leader's start time (in clock
/// ticks since boot), so that an id the system has handed to another process is not mistaken
/// for the script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RunningGroup {
    group: i32,
    start: u64,
}

impl RunningGroup {
    fn of(group: Pid) -> Self {
        RunningGroup {
            group: group.as_raw(),
            start: start_time(group.as_raw()).unwrap_or(0),
        }
    }

    fn parse(text: &str) -> Option<Self> {
        let mut words = text.split_whitespace();
        Some(RunningGroup {
            group: words.next()?.parse().ok()?,
            start: words.next()?.parse().ok()?,
        })
    }

    /// True while the recorded leader still runs (a zombie has stopped running).
    fn is_running(&self) -> bool {
        self.group > 1
            && proc_stat(self.group)
                .is_some_and(|(state, start)| state != 'Z' && start == self.start)
    }
}

impl std::fmt::Display for RunningGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.group, self.start)
    }
}

/// A process's start time in clock ticks since boot, from `/proc/<pid>/stat` (field 22).
pub fn start_time(pid: i32) -> Option<u64> {
    proc_stat(pid).map(|(_, start)| start)
}

/// A process's state letter (field 3) and start time (field 22) from `/proc/<pid>/stat`.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces; count after it.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Stops a script that an earlier run recorded at `record` and that still runs because the
/// process that ran it died (it was killed, or the machine's agent crashed): SIGTERM to its
/// group, then, once the script has exited or `grace` has passed, SIGKILL to what is left. Returns the group's id if there was one to stop. The record is
/// removed either way.
pub fn stop_left_behind(record: &Path, grace: Duration) -> Option<i32> {
    let text = fs::read_to_string(record).ok()?;
    let _ = fs::remove_file(record);
    let running = RunningGroup::parse(&text).filter(RunningGroup::is_running)?;
    let group = Pid::from_raw(running.group);
    signal(group, Signal::SIGTERM);
    // The leader's exit is what is watched: its exited processes may wait, as zombies, for a
    // parent that is gone to be replaced, and still count as members of the group.
    let deadline = Instant::now() + grace;
    while running.is_running() && Instant::now() < deadline {
        thread::sleep(GROUP_POLL);
    }
    // Whatever of the group is left, including what the script started, goes too.
    signal(group, Signal::SIGKILL);
    Some(running.group)
}

fn spawn(launch: &Launch<'_>) -> io::Result<Child> {
    match spawn_with(launch, launch.run_as.command(launch.script)) {
        // Like the agent (Ruby's spawn), run a file the kernel cannot exec, such as a script
        // without a `#!` line, with /bin/sh. Under runas, setpriv's execvp does the same.
        Err(err) if err.raw_os_error() == Some(Errno::ENOEXEC as i32) => {
            let mut sh = Command::new("/bin/sh");
            sh.arg0("sh").arg(launch.script);
            spawn_with(launch, sh)
        }
        result => result,
    }
}

fn spawn_with(launch: &Launch<'_>, mut command: Command) -> io::Result<Child> {
    command
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(launch.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
}

/// Starts the threads that read the pipes and wait for the exit; each reports on `tx`.
fn watch(mut child: Child, tx: SyncSender<Event>) -> io::Result<()> {
    if let Some(stdout) = child.stdout.take() {
        pump(Stream::Stdout, stdout, tx.clone())?;
    }
    if let Some(stderr) = child.stderr.take() {
        pump(Stream::Stderr, stderr, tx.clone())?;
    }
    // The waiter owns the child: if the agent gives up on a stuck script, the thread still
    // reaps it when it finally dies.
    thread::Builder::new()
        .name("hook-wait".into())
        .spawn(move || {
            let _ = tx.send(Event::Exited(child.wait()));
        })
        .map(drop)
}

fn pump(stream: Stream, pipe: impl Read + Send + 'static, tx: SyncSender<Event>) -> io::Result<()> {
    thread::Builder::new()
        .name(format!("hook-{stream}"))
        .spawn(move || {
            let mut reader = BufReader::new(pipe);
            loop {
                let mut line = Vec::new();
                match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(Event::Line(stream, line)).is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = tx.send(Event::Closed(stream));
        })
        .map(drop)
}

/// What has been heard from a running script so far.
struct Progress {
    exit: Option<io::Result<ExitStatus>>,
    stdout_open: bool,
    stderr_open: bool,
}

impl Progress {
    fn new() -> Self {
        Progress {
            exit: None,
            stdout_open: true,
            stderr_open: true,
        }
    }

    fn finished(&self) -> bool {
        self.exit.is_some() && !self.stdout_open && !self.stderr_open
    }

    fn apply(&mut self, event: Event, out: &mut dyn Output) {
        match event {
            Event::Line(stream, line) => out.line(stream, &line),
            Event::Closed(Stream::Stdout) => self.stdout_open = false,
            Event::Closed(Stream::Stderr) => self.stderr_open = false,
            Event::Exited(exit) => self.exit = Some(exit),
        }
    }

    /// The outcome when the deadline passes before the script is finished. As in the agent, a
    /// script that exited but left an output open is told apart from one still running.
    fn verdict_at_deadline(&self) -> Outcome {
        match (&self.exit, self.stdout_open) {
            (None, _) => Outcome::TimedOut,
            (Some(_), true) => Outcome::OutputLeftOpen(Stream::Stdout),
            (Some(_), false) => Outcome::OutputLeftOpen(Stream::Stderr),
        }
    }

    fn outcome(self) -> Outcome {
        match self.exit {
            Some(Ok(status)) => Outcome::Exited(status),
            Some(Err(err)) => Outcome::Lost(err),
            None => Outcome::Lost(io::Error::other("the script's exit was never reported")),
        }
    }
}

/// Pumps events until the script is finished or its deadline passes; then stops the group.
fn supervise(
    rx: &Receiver<Event>,
    group: Pid,
    launch: &Launch<'_>,
    out: &mut dyn Output,
) -> Outcome {
    let mut progress = Progress::new();
    if pump_until(rx, &mut progress, out, Instant::now() + launch.timeout) {
        return progress.outcome();
    }
    let verdict = progress.verdict_at_deadline();
    signal(group, Signal::SIGTERM);
    if !wait_for_group(rx, &mut progress, out, group, launch.kill_grace) {
        signal(group, Signal::SIGKILL);
        pump_until(rx, &mut progress, out, Instant::now() + ABANDON_AFTER);
    }
    verdict
}

/// Pumps events until the script is finished (true) or `until` passes (false).
fn pump_until(
    rx: &Receiver<Event>,
    progress: &mut Progress,
    out: &mut dyn Output,
    until: Instant,
) -> bool {
    while !progress.finished() {
        // Checked on every event, so that a script flooding its output still meets its deadline.
        if Instant::now() >= until {
            return false;
        }
        let event = match rx.try_recv() {
            Ok(event) => event,
            // Every sender is gone, so everything has been heard.
            Err(TryRecvError::Disconnected) => return true,
            Err(TryRecvError::Empty) => {
                out.pause();
                match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                    Ok(event) => event,
                    Err(RecvTimeoutError::Timeout) => return false,
                    Err(RecvTimeoutError::Disconnected) => return true,
                }
            }
        };
        progress.apply(event, out);
    }
    true
}

/// Waits up to `grace` for the script to finish and every process of its group to go.
fn wait_for_group(
    rx: &Receiver<Event>,
    progress: &mut Progress,
    out: &mut dyn Output,
    group: Pid,
    grace: Duration,
) -> bool {
    let end = Instant::now() + grace;
    loop {
        let tick = (Instant::now() + GROUP_POLL).min(end);
        if pump_until(rx, progress, out, tick) {
            if group_gone(group) {
                return true;
            }
            thread::sleep(tick.saturating_duration_since(Instant::now()));
        }
        if Instant::now() >= end {
            return false;
        }
    }
}

fn signal(group: Pid, signal: Signal) {
    // ESRCH (the group is gone) is what we want; nothing else can be done about other errors.
    let _ = killpg(group, signal);
}

fn group_gone(group: Pid) -> bool {
    killpg(group, None) == Err(Errno::ESRCH)
}
