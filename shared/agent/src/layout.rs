//! The deployment root, laid out as the CodeDeploy agent lays it out, so that operators and
//! scripts that look there find what they expect:
//!
//! ```text
//! <root>/<group-id>/<deployment-id>/deployment-archive/   the unpacked revision
//! <root>/<group-id>/<deployment-id>/logs/scripts.log      the hooks' output
//! <root>/deployment-instructions/<group-id>-cleanup       what the last install created
//! <root>/deployment-instructions/<group-id>-install.json  what the last install did
//! <root>/deployment-instructions/<group-id>_last_successful_install
//! <root>/deployment-instructions/<group-id>_most_recent_install
//! ```
//!
//! The two markers hold the deployment directory in the host's terms (as a path under `/`), so a
//! simulated host's folder can move without breaking them.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::host::{HostPathError, HostRoot};

/// Where the CodeDeploy agent keeps its deployment root, under cutover's name.
pub const DEFAULT_ROOT: &str = "/opt/cutover/deployment-root";
/// How many revisions a group keeps on a host, like the agent's `max_revisions`.
pub const REVISIONS_TO_KEEP: usize = 5;

/// An id that is used as a directory name and so must be one plain path component.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} '{value}' cannot name a directory: use letters, digits, '.', '_' and '-' only")]
pub struct UnsafeId {
    pub what: &'static str,
    pub value: String,
}

/// Checks that `value` is safe as a single directory name.
pub fn check_id(what: &'static str, value: &str) -> Result<(), UnsafeId> {
    let plain = !value.is_empty()
        && value != "."
        && value != ".."
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if plain {
        Ok(())
    } else {
        Err(UnsafeId {
            what,
            value: value.to_owned(),
        })
    }
}

/// One host's deployment root.
#[derive(Clone, Debug)]
pub struct DeploymentRoot {
    host: HostRoot,
    /// The root in the host's terms, e.g. `/opt/cutover/deployment-root`.
    root: PathBuf,
    /// The root on this machine.
    dir: PathBuf,
}

impl DeploymentRoot {
    /// The deployment root at host path `root` on `host`.
    pub fn new(host: HostRoot, root: impl Into<PathBuf>) -> Result<Self, HostPathError> {
        let root = root.into();
        let dir = host.resolve(&root)?;
        Ok(DeploymentRoot { host, root, dir })
    }

    pub fn host(&self) -> &HostRoot {
        &self.host
    }

    /// The root on this machine.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn group_dir(&self, group_id: &str) -> PathBuf {
        self.dir.join(group_id)
    }

    pub fn deployment_dir(&self, group_id: &str, deployment_id: &str) -> PathBuf {
        self.group_dir(group_id).join(deployment_id)
    }

    pub fn archive_dir(&self, group_id: &str, deployment_id: &str) -> PathBuf {
        self.deployment_dir(group_id, deployment_id)
            .join("deployment-archive")
    }

    pub fn scripts_log(&self, group_id: &str, deployment_id: &str) -> PathBuf {
        self.deployment_dir(group_id, deployment_id)
            .join("logs")
            .join("scripts.log")
    }

    pub fn instructions_dir(&self) -> PathBuf {
        self.dir.join("deployment-instructions")
    }

    pub fn cleanup_file(&self, group_id: &str) -> PathBuf {
        self.instructions_dir().join(format!("{group_id}-cleanup"))
    }

    /// Where the group's running hook script is recorded while it runs.
    pub fn running_script_file(&self, group_id: &str) -> PathBuf {
        self.instructions_dir()
            .join(format!("{group_id}-running-script"))
    }

    pub fn install_file(&self, group_id: &str) -> PathBuf {
        self.instructions_dir()
            .join(format!("{group_id}-install.json"))
    }

    fn last_successful_marker(&self, group_id: &str) -> PathBuf {
        self.instructions_dir()
            .join(format!("{group_id}_last_successful_install"))
    }

    fn most_recent_marker(&self, group_id: &str) -> PathBuf {
        self.instructions_dir()
            .join(format!("{group_id}_most_recent_install"))
    }

    /// The deployment directory of the group's last successful install, if any.
    pub fn last_successful_install(&self, group_id: &str) -> io::Result<Option<PathBuf>> {
        self.read_marker(&self.last_successful_marker(group_id))
    }

    /// The deployment directory of the group's most recent download, if any.
    pub fn most_recent_install(&self, group_id: &str) -> io::Result<Option<PathBuf>> {
        self.read_marker(&self.most_recent_marker(group_id))
    }

    pub fn set_last_successful_install(
        &self,
        group_id: &str,
        deployment_id: &str,
    ) -> io::Result<()> {
        self.write_marker(
            &self.last_successful_marker(group_id),
            group_id,
            deployment_id,
        )
    }

    pub fn set_most_recent_install(&self, group_id: &str, deployment_id: &str) -> io::Result<()> {
        self.write_marker(&self.most_recent_marker(group_id), group_id, deployment_id)
    }

    fn write_marker(&self, marker: &Path, group_id: &str, deployment_id: &str) -> io::Result<()> {
        fs::create_dir_all(self.instructions_dir())?;
        let host_dir = self.root.join(group_id).join(deployment_id);
        write_atomically(marker, host_dir.display().to_string().as_bytes())
    }

    fn read_marker(&self, marker: &Path) -> io::Result<Option<PathBuf>> {
        let text = match fs::read_to_string(marker) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let host_dir = text.trim_end_matches('\n');
        if host_dir.is_empty() {
            return Ok(None);
        }
        self.host.resolve(host_dir).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", marker.display()),
            )
        })
    }

    /// Removes the group's oldest deployment directories so that at most `keep` remain,
    /// counting `current`, and never removing `current` or the last successful install.
    /// Returns what was removed.
    pub fn prune(&self, group_id: &str, current: &Path, keep: usize) -> io::Result<Vec<PathBuf>> {
        let group_dir = self.group_dir(group_id);
        let entries = match fs::read_dir(&group_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut others = Vec::new();
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            if path != current && entry.file_type()?.is_dir() {
                others.push((entry.metadata()?.modified()?, path));
            }
        }
        let extra = (others.len() + 1).saturating_sub(keep.max(1));
        if extra == 0 {
            return Ok(Vec::new());
        }
        let last_success = self.last_successful_install(group_id)?;
        others.retain(|(_, path)| Some(path) != last_success.as_ref());
        others.sort();
        let mut removed = Vec::new();
        for (_, path) in others.into_iter().take(extra) {
            fs::remove_dir_all(&path)?;
            removed.push(path);
        }
        Ok(removed)
    }
}

/// Writes `contents` to `path` through a temporary file and a rename, so that a crash leaves
/// either the old contents or the new.
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, contents)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn root(dir: &Path) -> DeploymentRoot {
        DeploymentRoot::new(HostRoot::new(dir), DEFAULT_ROOT).unwrap()
    }

    #[test]
    fn the_layout_is_the_agents() {
        let tmp = tempfile::tempdir().unwrap();
        let r = root(tmp.path());
        let base = tmp.path().join("opt/cutover/deployment-root");
        assert_eq!(r.dir(), base);
        assert_eq!(
            r.archive_dir("g-1", "d-1"),
            base.join("g-1/d-1/deployment-archive")
        );
        assert_eq!(
            r.scripts_log("g-1", "d-1"),
            base.join("g-1/d-1/logs/scripts.log")
        );
        assert_eq!(
            r.cleanup_file("g-1"),
            base.join("deployment-instructions/g-1-cleanup")
        );
        assert_eq!(
            r.install_file("g-1"),
            base.join("deployment-instructions/g-1-install.json")
        );
    }

    #[test]
    fn markers_record_deployments_in_host_terms() {
        let tmp = tempfile::tempdir().unwrap();
        let r = root(tmp.path());
        assert_eq!(r.last_successful_install("g").unwrap(), None);
        r.set_most_recent_install("g", "d-2").unwrap();
        r.set_last_successful_install("g", "d-1").unwrap();
        assert_eq!(
            r.most_recent_install("g").unwrap(),
            Some(r.deployment_dir("g", "d-2"))
        );
        assert_eq!(
            r.last_successful_install("g").unwrap(),
            Some(r.deployment_dir("g", "d-1"))
        );
        let marker =
            fs::read_to_string(r.instructions_dir().join("g_last_successful_install")).unwrap();
        assert_eq!(marker, "/opt/cutover/deployment-root/g/d-1");
    }

    fn make_deployment(r: &DeploymentRoot, id: &str, age_secs: u64) -> PathBuf {
        let dir = r.deployment_dir("g", id);
        fs::create_dir_all(dir.join("deployment-archive")).unwrap();
        let mtime = SystemTime::now() - Duration::from_secs(age_secs);
        fs::File::open(&dir).unwrap().set_modified(mtime).unwrap();
        dir
    }

    #[test]
    fn pruning_keeps_the_newest_five_and_the_last_success() {
        let tmp = tempfile::tempdir().unwrap();
        let r = root(tmp.path());
        // d-0 is the oldest and the last success; d-1 .. d-6 are newer.
        for i in 0..7 {
            make_deployment(&r, &format!("d-{i}"), 1000 - i * 10);
        }
        r.set_last_successful_install("g", "d-0").unwrap();
        let current = make_deployment(&r, "d-7", 0);
        let removed = r.prune("g", &current, REVISIONS_TO_KEEP).unwrap();
        let mut names: Vec<_> = removed
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["d-1", "d-2", "d-3"]);
        let mut left: Vec<_> = fs::read_dir(r.group_dir("g"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["d-0", "d-4", "d-5", "d-6", "d-7"]);
        // Nothing more to do the second time.
        assert!(
            r.prune("g", &current, REVISIONS_TO_KEEP)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn ids_must_be_plain_directory_names() {
        for good in [
            "d-ABCDEFGHI",
            "4f1c2d3e-0000-4000-8000-000000000001",
            "LocalFleet",
            "a.b_c",
        ] {
            check_id("group id", good).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "x\0"] {
            let err = check_id("deployment id", bad).unwrap_err();
            assert!(err.to_string().contains("cannot name a directory"), "{err}");
        }
    }
}
