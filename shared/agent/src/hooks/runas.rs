//! Who a script runs as: the agent's own user, or the AppSpec's `runas: USER`.
//!
//! The CodeDeploy agent runs `su USER -c SCRIPT`. cutover switches with util-linux's `setpriv`
//! instead: it sets the user's uid, gid and supplementary groups and then execs the script
//! itself, so the script keeps its process group (for the timeout) and its environment, and a
//! user whose shell is `nologin` can still run scripts. Doing the switch in-process would need
//! `pre_exec` (unsafe, which the workspace forbids) or std's unstable `groups`.

use std::path::{Path, PathBuf};
use std::process::Command;

use nix::unistd::{Gid, Uid, User, getegid, geteuid};

/// Where `setpriv` is looked for; a fixed list, so that `PATH` cannot choose what runs as root.
const SETPRIV_PATHS: [&str; 4] = [
    "/usr/bin/setpriv",
    "/bin/setpriv",
    "/usr/sbin/setpriv",
    "/sbin/setpriv",
];

/// A user account on the host, as far as a script's identity and environment need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Account {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
    pub home: PathBuf,
}

impl Account {
    fn from_user(user: User) -> Self {
        Account {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
            home: user.dir,
        }
    }

    /// The account the agent runs as; a uid without a passwd entry still gets a usable one.
    pub(crate) fn agent() -> Self {
        let uid = geteuid();
        match User::from_uid(uid) {
            Ok(Some(user)) => Account::from_user(user),
            _ => Account {
                name: uid.to_string(),
                uid,
                gid: getegid(),
                home: PathBuf::from("/"),
            },
        }
    }
}

/// How to start a script so that it runs as the right user.
#[derive(Debug)]
pub(crate) enum RunAs {
    /// As the agent's own uid (no `runas`, or `runas` naming that same user).
    Agent(Account),
    /// As another user, through `setpriv`.
    Switch { account: Account, setpriv: PathBuf },
}

/// Why a script cannot run as the user its `runas` names.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunAsError {
    #[error("there is no user '{0}' on this host")]
    UnknownUser(String),
    #[error(
        "runas needs the agent to run as root, and it runs as '{agent}'; run the agent as root or remove runas"
    )]
    NotRoot { agent: String },
    #[error(
        "switching to another user needs setpriv (from util-linux), which this host does not have; install util-linux"
    )]
    NoSetpriv,
    #[error("could not look up user '{user}': {source}")]
    Lookup { user: String, source: nix::Error },
}

impl RunAs {
    /// Resolves a script's `runas` on this host.
    pub(crate) fn resolve(runas: Option<&str>) -> Result<RunAs, RunAsError> {
        let agent = Account::agent();
        let Some(name) = runas else {
            return Ok(RunAs::Agent(agent));
        };
        let target = match User::from_name(name) {
            Ok(Some(user)) => Account::from_user(user),
            Ok(None) => return Err(RunAsError::UnknownUser(name.to_owned())),
            Err(source) => {
                return Err(RunAsError::Lookup {
                    user: name.to_owned(),
                    source,
                });
            }
        };
        plan(&agent, target, find_setpriv)
    }

    /// The user the script runs as.
    pub(crate) fn account(&self) -> &Account {
        match self {
            RunAs::Agent(account) | RunAs::Switch { account, .. } => account,
        }
    }

    /// The command that starts `script` as this user.
    pub(crate) fn command(&self, script: &Path) -> Command {
        match self {
            RunAs::Agent(_) => Command::new(script),
            RunAs::Switch { account, setpriv } => {
                let mut command = Command::new(setpriv);
                command
                    .arg(format!("--reuid={}", account.uid))
                    .arg(format!("--regid={}", account.gid))
                    .arg("--init-groups")
                    .arg("--")
                    .arg(script);
                command
            }
        }
    }
}

/// Decides how the agent (`agent`) can run a script as `target`.
fn plan(
    agent: &Account,
    target: Account,
    setpriv: impl FnOnce() -> Option<PathBuf>,
) -> Result<RunAs, RunAsError> {
    if target.uid == agent.uid {
        return Ok(RunAs::Agent(target));
    }
    if !agent.uid.is_root() {
        return Err(RunAsError::NotRoot {
            agent: agent.name.clone(),
        });
    }
    let setpriv = setpriv().ok_or(RunAsError::NoSetpriv)?;
    Ok(RunAs::Switch {
        account: target,
        setpriv,
    })
}

fn find_setpriv() -> Option<PathBuf> {
    SETPRIV_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str, uid: u32) -> Account {
        Account {
            name: name.into(),
            uid: Uid::from_raw(uid),
            gid: Gid::from_raw(uid),
            home: PathBuf::from(format!("/home/{name}")),
        }
    }

    fn setpriv() -> Option<PathBuf> {
        Some(PathBuf::from("/usr/bin/setpriv"))
    }

    #[test]
    fn hooks_runas_another_user_needs_the_agent_to_run_as_root() {
        let err = plan(&account("bob", 1000), account("alice", 1001), setpriv).unwrap_err();
        assert!(matches!(err, RunAsError::NotRoot { .. }));
        assert_eq!(
            err.to_string(),
            "runas needs the agent to run as root, and it runs as 'bob'; run the agent as root \
             or remove runas"
        );
    }

    #[test]
    fn hooks_runas_the_agents_own_user_needs_no_switch() {
        let run_as = plan(&account("bob", 1000), account("bob", 1000), setpriv).unwrap();
        assert!(matches!(run_as, RunAs::Agent(_)));
        assert_eq!(run_as.account().name, "bob");
    }

    #[test]
    fn hooks_runas_from_root_switches_with_setpriv_and_says_so_when_it_is_missing() {
        let run_as = plan(&account("root", 0), account("alice", 1001), setpriv).unwrap();
        assert!(matches!(run_as, RunAs::Switch { .. }));
        let command = run_as.command(Path::new("/b/s.sh"));
        let args: Vec<_> = command.get_args().map(|a| a.to_string_lossy()).collect();
        assert_eq!(
            args,
            [
                "--reuid=1001",
                "--regid=1001",
                "--init-groups",
                "--",
                "/b/s.sh"
            ]
        );
        let err = plan(&account("root", 0), account("alice", 1001), || None).unwrap_err();
        assert!(matches!(err, RunAsError::NoSetpriv));
    }
}
