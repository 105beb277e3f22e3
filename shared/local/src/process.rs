//! Which process drives a deployment, in a form that survives the process: its pid and its start
//! time, so that a pid the system has handed to another program is not mistaken for the driver.

use std::fmt;

/// A running (or once running) process on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessId {
    pub pid: u32,
    /// The process's start time in clock ticks since boot (`/proc/<pid>/stat`, field 22), or 0
    /// where `/proc` is not available.
    pub start: u64,
}

impl ProcessId {
    pub fn current() -> Self {
        let pid = std::process::id();
        ProcessId {
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    }

    /// Reads the `pid:start` form that [`fmt::Display`] writes.
    pub fn parse(s: &str) -> Option<Self> {
        let (pid, start) = s.split_once(':')?;
        Some(ProcessId {
            pid: pid.parse().ok()?,
            start: start.parse().ok()?,
        })
    }

    /// True while this very process runs.
    pub fn is_alive(&self) -> bool {
        let Ok(pid) = i32::try_from(self.pid) else {
            return false;
        };
        let exists = match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
            Ok(()) => true,
            Err(nix::errno::Errno::EPERM) => true,
            Err(_) => false,
        };
        exists && (self.start == 0 || start_time(self.pid) == Some(self.start))
    }
}

impl fmt::Display for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.pid, self.start)
    }
}

fn start_time(pid: u32) -> Option<u64> {
    cutover_agent::hooks::start_time(i32::try_from(pid).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_round_trips() {
        let me = ProcessId::current();
        assert!(me.is_alive());
        assert_eq!(ProcessId::parse(&me.to_string()), Some(me));
    }

    #[test]
    fn a_finished_process_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let id = ProcessId {
            pid,
            start: start_time(pid).unwrap_or(0),
        };
        child.wait().unwrap();
        assert!(!id.is_alive());
    }

    #[test]
    fn a_reused_pid_is_not_the_same_process() {
        let me = ProcessId::current();
        let other = ProcessId {
            start: me.start + 1,
            ..me
        };
        assert!(!other.is_alive() || me.start == 0);
    }
}
