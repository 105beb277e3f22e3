//! Where scripts' output goes: every line to the deployment's `logs/scripts.log`, and the last
//! few KB of an event to its diagnostics, in the CodeDeploy agent's `[stdout]line` form.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use cutover_core::lifecycle::LifecycleEventName;
use cutover_core::model::{LOG_TAIL_LIMIT, log_tail};

/// Which of a script's outputs a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        })
    }
}

/// A deployment's `scripts.log`, appended to by every event of the deployment.
///
/// Each line is tagged so that one file can be read or grepped across events and scripts:
///
/// ```text
/// [2026-11-26 13:30:52.123] [d-ABCDEFGHI] [AfterInstall] LifecycleEvent - AfterInstall
/// [2026-11-26 13:30:52.124] [d-ABCDEFGHI] [AfterInstall] [scripts/after.sh] Script - scripts/after.sh
/// [2026-11-26 13:30:52.130] [d-ABCDEFGHI] [AfterInstall] [scripts/after.sh] [stdout] hello
/// ```
///
/// Times are UTC. A write that fails is remembered rather than raised mid-script, so the script
/// is not left with a full pipe; the event then fails as `UnknownError`.
#[derive(Debug)]
pub struct ScriptLog {
    path: PathBuf,
    deployment_id: String,
    file: BufWriter<File>,
    error: Option<io::Error>,
}

impl ScriptLog {
    /// Opens `path` for appending, creating it and its parent directories.
    pub fn open(path: &Path, deployment_id: &str) -> io::Result<ScriptLog> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(ScriptLog {
            path: path.to_owned(),
            deployment_id: deployment_id.to_owned(),
            file: BufWriter::new(file),
            error: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn event_started(&mut self, event: LifecycleEventName) {
        self.write_line(format_args!("[{event}] LifecycleEvent - {event}"));
    }

    pub(crate) fn script_started(&mut self, event: LifecycleEventName, script: &str) {
        self.write_line(format_args!("[{event}] [{script}] Script - {script}"));
    }

    pub(crate) fn output(
        &mut self,
        event: LifecycleEventName,
        script: &str,
        stream: Stream,
        text: &str,
    ) {
        self.write_line(format_args!("[{event}] [{script}] [{stream}] {text}"));
    }

    /// Makes what was written visible to readers of the file (`tail -f`).
    pub(crate) fn flush(&mut self) {
        if let Err(err) = self.file.flush() {
            self.error.get_or_insert(err);
        }
    }

    /// The first write error since the last call, if any.
    pub(crate) fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    fn write_line(&mut self, rest: fmt::Arguments<'_>) {
        let stamp = timestamp(SystemTime::now());
        let written = writeln!(self.file, "[{stamp}] [{}] {rest}", self.deployment_id);
        if let Err(err) = written {
            self.error.get_or_insert(err);
        }
    }
}

/// `2026-11-26 13:30:52.123`, in UTC.
fn timestamp(time: SystemTime) -> String {
    let rfc3339 = humantime::format_rfc3339_millis(time).to_string();
    rfc3339.trim_end_matches('Z').replacen('T', " ", 1)
}

/// The end of an event's output as the agent reports it: `LifecycleEvent - X`, `Script - path`
/// and `[stdout]line` / `[stderr]line` entries, one per line, of which the diagnostics keep the
/// last [`LOG_TAIL_LIMIT`] bytes.
#[derive(Debug, Default)]
pub(crate) struct Tail(String);

impl Tail {
    pub(crate) fn event_started(&mut self, event: LifecycleEventName) {
        self.push(format_args!("LifecycleEvent - {event}"));
    }

    pub(crate) fn script_started(&mut self, script: &str) {
        self.push(format_args!("Script - {script}"));
    }

    pub(crate) fn output(&mut self, stream: Stream, text: &str) {
        self.push(format_args!("[{stream}]{text}"));
    }

    pub(crate) fn as_str(&self) -> &str {
        log_tail(&self.0)
    }

    fn push(&mut self, entry: fmt::Arguments<'_>) {
        use fmt::Write as _;
        // Writing to a String cannot fail.
        let _ = writeln!(self.0, "{entry}");
        // Trim now and then rather than on every line, so a long output costs linear time.
        if self.0.len() > 2 * LOG_TAIL_LIMIT {
            self.0 = log_tail(&self.0).to_owned();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn diagnostics_times_are_utc_to_the_millisecond() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_699_852_123);
        assert_eq!(timestamp(t), "2026-11-26 13:30:52.123");
    }

    #[test]
    fn diagnostics_tail_uses_the_agents_entries_and_keeps_the_last_4kb() {
        let mut tail = Tail::default();
        tail.event_started(LifecycleEventName::AfterInstall);
        tail.script_started("scripts/after.sh");
        tail.output(Stream::Stdout, "hello");
        tail.output(Stream::Stderr, "oops");
        assert_eq!(
            tail.as_str(),
            "LifecycleEvent - AfterInstall\nScript - scripts/after.sh\n[stdout]hello\n[stderr]oops\n"
        );
        for n in 0..10_000 {
            tail.output(Stream::Stdout, &format!("line {n}"));
        }
        assert_eq!(tail.as_str().len(), LOG_TAIL_LIMIT);
        assert!(tail.as_str().ends_with("[stdout]line 9999\n"));
        assert!(tail.0.len() <= 2 * LOG_TAIL_LIMIT);
    }
}
