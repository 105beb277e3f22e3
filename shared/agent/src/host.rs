//! The host's file system as the agent sees it: `/` on a real host, or a folder that stands in
//! for `/` of a simulated host, so that many hosts can share one machine in `cutover local`.

use std::path::{Component, Path, PathBuf};

/// Where a host's file system starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRoot(PathBuf);

/// A path that cannot be placed on the host.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostPathError {
    #[error("'{0}' is not an absolute path; host paths start with /")]
    NotAbsolute(String),
    #[error("'{0}' climbs out with '..'; host paths may not contain '..'")]
    ClimbsOut(String),
}

impl HostRoot {
    /// This machine, for real.
    pub fn real() -> Self {
        HostRoot(PathBuf::from("/"))
    }

    /// A simulated host whose `/` is `dir`. `/` itself means this machine.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        HostRoot(dir.into())
    }

    pub fn is_real(&self) -> bool {
        self.0 == Path::new("/")
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The value of `CUTOVER_HOST_ROOT` for hook scripts: empty on a real host, so that
    /// `"$CUTOVER_HOST_ROOT/srv/app"` is `/srv/app` there.
    pub fn env_value(&self) -> String {
        if self.is_real() {
            String::new()
        } else {
            self.0.display().to_string()
        }
    }

    /// Where the host path `path` (absolute, in the host's terms) is on this machine.
    pub fn resolve(&self, path: impl AsRef<Path>) -> Result<PathBuf, HostPathError> {
        let path = path.as_ref();
        if !path.is_absolute() {
            return Err(HostPathError::NotAbsolute(path.display().to_string()));
        }
        let mut resolved = self.0.clone();
        for component in path.components() {
            match component {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(part) => resolved.push(part),
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(HostPathError::ClimbsOut(path.display().to_string()));
                }
            }
        }
        Ok(resolved)
    }

    /// The host path of a path on this machine that lies under the root, if it does.
    pub fn host_path(&self, real: &Path) -> Option<PathBuf> {
        let rest = real.strip_prefix(&self.0).ok()?;
        Some(Path::new("/").join(rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths_land_under_a_simulated_hosts_folder() {
        let host = HostRoot::new("/tmp/hosts/host-1");
        assert!(!host.is_real());
        assert_eq!(
            host.resolve("/srv/app").unwrap(),
            Path::new("/tmp/hosts/host-1/srv/app")
        );
        assert_eq!(
            host.resolve("/srv/./app/").unwrap(),
            Path::new("/tmp/hosts/host-1/srv/app")
        );
        assert_eq!(host.resolve("/").unwrap(), Path::new("/tmp/hosts/host-1"));
        assert_eq!(host.env_value(), "/tmp/hosts/host-1");
        assert_eq!(
            host.host_path(Path::new("/tmp/hosts/host-1/srv/app")),
            Some(PathBuf::from("/srv/app"))
        );
        assert_eq!(host.host_path(Path::new("/etc")), None);
    }

    #[test]
    fn the_real_host_is_this_machine() {
        let host = HostRoot::real();
        assert!(host.is_real());
        assert_eq!(host.resolve("/srv/app").unwrap(), Path::new("/srv/app"));
        assert_eq!(host.env_value(), "");
        assert!(HostRoot::new("/").is_real());
    }

    #[test]
    fn paths_that_are_relative_or_climb_out_are_refused() {
        let host = HostRoot::new("/tmp/h");
        assert_eq!(
            host.resolve("srv/app"),
            Err(HostPathError::NotAbsolute("srv/app".into()))
        );
        assert_eq!(
            host.resolve("/srv/../../etc"),
            Err(HostPathError::ClimbsOut("/srv/../../etc".into()))
        );
    }
}
