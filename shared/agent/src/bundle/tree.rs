//! The unpacked tree being built. Every bundle format feeds its entries through here, so the
//! rules on paths, links, special files and limits are checked once, in one place.
//!
//! Nothing here follows a link while writing: parent directories are checked one by one, a file
//! is created only where nothing is (`O_EXCL`), and an existing file or link is removed first
//! rather than opened. Links are checked lexically when they arrive, and once more against the
//! finished tree, because a chain of links inside the bundle can climb out where no single
//! link does.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use super::{BundleError, BundleLimits};

/// What the kernel allows when resolving one path; a chain longer than this cannot be followed
/// by anyone, so it cannot lead anywhere either.
const MAX_LINK_HOPS: usize = 40;
/// Longer link targets are not real paths (Linux's PATH_MAX).
pub(super) const MAX_LINK_TARGET: usize = 4096;
const DEFAULT_FILE_MODE: u32 = 0o644;
const DEFAULT_DIR_MODE: u32 = 0o755;
const COPY_CHUNK: usize = 64 * 1024;

/// What an archive says about an entry beyond its path.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Meta {
    /// Permission bits; the file type bits, setuid, setgid and sticky are ignored.
    pub mode: Option<u32>,
    pub mtime: Option<SystemTime>,
}

#[derive(Debug)]
pub(super) struct Tree<'a> {
    root: PathBuf,
    limits: &'a BundleLimits,
    entries: u64,
    bytes: u64,
    /// Paths (relative to the root) known to be real directories made here. A directory is never
    /// replaced by anything else, so this stays true.
    dirs: HashSet<PathBuf>,
    /// Directory modes, applied once everything is written so that a read-only directory in the
    /// archive does not stop its own contents from being unpacked.
    dir_modes: HashMap<PathBuf, u32>,
    /// Symbolic links made, with the entry that made each.
    links: Vec<(String, PathBuf)>,
}

impl<'a> Tree<'a> {
    pub fn new(root: &Path, limits: &'a BundleLimits) -> Self {
        Tree {
            root: root.to_owned(),
            limits,
            entries: 0,
            bytes: 0,
            dirs: HashSet::new(),
            dir_modes: HashMap::new(),
            links: Vec::new(),
        }
    }

    pub fn max_entries(&self) -> u64 {
        self.limits.max_entries
    }

    /// How many entries were written.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// How many bytes of file content were written, counting every write.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn add_dir(&mut self, entry: &str, path: &Path, meta: Meta) -> Result<(), BundleError> {
        let Some(rel) = relative_path(entry, path)? else {
            return Ok(()); // the archive's own root, "./"
        };
        self.count_entry(entry)?;
        self.make_parents(entry, &rel)?;
        let full = self.root.join(&rel);
        if !self.dirs.contains(&rel) {
            match fs::symlink_metadata(&full) {
                Ok(existing) if existing.is_dir() => {}
                Ok(_) => {
                    // A later entry wins, as with tar: the link or file goes, and is not followed.
                    fs::remove_file(&full).map_err(|e| BundleError::write(entry, e))?;
                    make_dir(&full).map_err(|e| BundleError::write(entry, e))?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    make_dir(&full).map_err(|e| BundleError::write(entry, e))?;
                }
                Err(e) => return Err(BundleError::write(entry, e)),
            }
            self.dirs.insert(rel.clone());
        }
        self.dir_modes
            .insert(rel, meta.mode.map_or(DEFAULT_DIR_MODE, dir_mode));
        Ok(())
    }

    pub fn add_file(
        &mut self,
        entry: &str,
        path: &Path,
        meta: Meta,
        data: &mut dyn Read,
    ) -> Result<(), BundleError> {
        let rel = self.non_root(entry, path)?;
        self.count_entry(entry)?;
        self.make_parents(entry, &rel)?;
        let full = self.root.join(&rel);
        self.clear_for(entry, &rel, &full)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&full)
            .map_err(|e| BundleError::write(entry, e))?;
        self.copy_content(entry, data, &mut file)?;
        // Through the open file, so that no path is followed; and after writing, so that a
        // read-only file in the archive could still be filled.
        let mode = meta.mode.map_or(DEFAULT_FILE_MODE, |m| m & 0o777);
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(|e| BundleError::write(entry, e))?;
        if let Some(mtime) = meta.mtime {
            // A time the file system cannot hold is not worth failing a deployment over.
            let _ = file.set_modified(mtime);
        }
        Ok(())
    }

    pub fn add_symlink(
        &mut self,
        entry: &str,
        path: &Path,
        target: &Path,
    ) -> Result<(), BundleError> {
        let rel = self.non_root(entry, path)?;
        self.count_entry(entry)?;
        let outside = || BundleError::LinkOutside {
            entry: entry.to_owned(),
            target: target.display().to_string(),
        };
        let target_bytes = target.as_os_str().as_encoded_bytes();
        if target_bytes.is_empty() || target_bytes.contains(&0) {
            return Err(BundleError::Unsupported {
                entry: entry.to_owned(),
                reason: "its link target is empty or holds a NUL byte".into(),
            });
        }
        let parent = rel.parent().unwrap_or(Path::new(""));
        if !stays_inside_lexically(parent, target) {
            return Err(outside());
        }
        self.make_parents(entry, &rel)?;
        let full = self.root.join(&rel);
        self.clear_for(entry, &rel, &full)?;
        std::os::unix::fs::symlink(target, &full).map_err(|e| BundleError::write(entry, e))?;
        self.links.push((entry.to_owned(), rel));
        Ok(())
    }

    /// A tar hard link: `target` is a path in the archive, not relative to the link.
    pub fn add_hard_link(
        &mut self,
        entry: &str,
        path: &Path,
        target: &Path,
    ) -> Result<(), BundleError> {
        let rel = self.non_root(entry, path)?;
        self.count_entry(entry)?;
        let bad = |reason| BundleError::BadHardLink {
            entry: entry.to_owned(),
            target: target.display().to_string(),
            reason,
        };
        let target_rel = match relative_path(entry, target) {
            Ok(Some(t)) => t,
            Ok(None) => return Err(bad("which is the bundle's root directory")),
            Err(_) => {
                return Err(BundleError::LinkOutside {
                    entry: entry.to_owned(),
                    target: target.display().to_string(),
                });
            }
        };
        if target_rel == rel {
            return Ok(()); // a link to itself: the file is already there
        }
        self.make_parents(entry, &rel)?;
        self.check_existing_file(entry, &target_rel, &bad)?;
        let full = self.root.join(&rel);
        self.clear_for(entry, &rel, &full)?;
        fs::hard_link(self.root.join(&target_rel), &full).map_err(|e| BundleError::write(entry, e))
    }

    /// Checks every symbolic link against the finished tree, rooted at `root` (the staging
    /// directory, or the top-level directory that is about to become the archive root), following
    /// the chain of links as the kernel would.
    pub fn check_links(&self, root: &Path, strip: Option<&Path>) -> Result<(), BundleError> {
        for (entry, rel) in &self.links {
            let rel = match strip {
                Some(top) => match rel.strip_prefix(top) {
                    Ok(rest) => rest,
                    Err(_) => continue, // not in the part that is kept
                },
                None => rel.as_path(),
            };
            let is_link = fs::symlink_metadata(root.join(rel))
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(false);
            if !is_link {
                continue; // replaced by a later entry
            }
            if !resolves_inside(root, rel).map_err(|e| BundleError::write(entry, e))? {
                let target = fs::read_link(root.join(rel))
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                return Err(BundleError::LinkOutside {
                    entry: entry.clone(),
                    target,
                });
            }
        }
        Ok(())
    }

    /// Gives directories their modes from the archive, now that nothing more is written in them.
    pub fn apply_dir_modes(&self, root: &Path, strip: Option<&Path>) -> io::Result<()> {
        fs::set_permissions(root, Permissions::from_mode(DEFAULT_DIR_MODE))?;
        for (rel, &mode) in &self.dir_modes {
            let rel = match strip {
                Some(top) => match rel.strip_prefix(top) {
                    Ok(rest) if !rest.as_os_str().is_empty() => rest,
                    _ => continue,
                },
                None => rel.as_path(),
            };
            let path = root.join(rel);
            if fs::symlink_metadata(&path)?.is_dir() {
                fs::set_permissions(&path, Permissions::from_mode(mode))?;
            }
        }
        Ok(())
    }

    fn non_root(&self, entry: &str, path: &Path) -> Result<PathBuf, BundleError> {
        relative_path(entry, path)?.ok_or_else(|| BundleError::UnsafePath {
            entry: entry.to_owned(),
            reason: "names the bundle root itself, which can only be a directory",
        })
    }

    fn count_entry(&mut self, entry: &str) -> Result<(), BundleError> {
        if self.entries >= self.limits.max_entries {
            return Err(BundleError::TooManyEntries {
                entry: entry.to_owned(),
                limit: self.limits.max_entries,
            });
        }
        self.entries += 1;
        Ok(())
    }

    /// Copies content, counting what is really written (never what a header claims) and stopping
    /// before the write that would cross the limit.
    fn copy_content(
        &mut self,
        entry: &str,
        data: &mut dyn Read,
        out: &mut fs::File,
    ) -> Result<(), BundleError> {
        let mut buf = vec![0; COPY_CHUNK];
        loop {
            let n = match data.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(BundleError::EntryCorrupt {
                        entry: entry.to_owned(),
                        reason: e.to_string(),
                    });
                }
            };
            let total = self.bytes.saturating_add(n as u64);
            if total > self.limits.max_bytes {
                return Err(BundleError::TooLarge {
                    entry: entry.to_owned(),
                    limit: self.limits.max_bytes,
                });
            }
            out.write_all(&buf[..n])
                .map_err(|e| BundleError::write(entry, e))?;
            self.bytes = total;
        }
    }

    /// Makes the directories above `rel`, refusing to pass through a link or a file.
    fn make_parents(&mut self, entry: &str, rel: &Path) -> Result<(), BundleError> {
        let Some(parent) = rel.parent() else {
            return Ok(());
        };
        let mut at = PathBuf::new();
        for part in parent.components() {
            at.push(part);
            if self.dirs.contains(&at) {
                continue;
            }
            let full = self.root.join(&at);
            match fs::symlink_metadata(&full) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(BundleError::ThroughLink {
                        entry: entry.to_owned(),
                        link: at.display().to_string(),
                    });
                }
                Ok(_) => {
                    return Err(BundleError::Conflict {
                        entry: entry.to_owned(),
                        other: at.display().to_string(),
                        reason: "that is a file, so nothing can be put under it",
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    make_dir(&full).map_err(|e| BundleError::write(entry, e))?;
                    self.dir_modes.entry(at.clone()).or_insert(DEFAULT_DIR_MODE);
                }
                Err(e) => return Err(BundleError::write(entry, e)),
            }
            self.dirs.insert(at.clone());
        }
        Ok(())
    }

    /// Removes what an earlier entry left at `full` (a file or a link, never followed) so that a
    /// later entry for the same path replaces it; a directory is never replaced.
    fn clear_for(&self, entry: &str, rel: &Path, full: &Path) -> Result<(), BundleError> {
        if self.dirs.contains(rel) {
            return Err(BundleError::Conflict {
                entry: entry.to_owned(),
                other: rel.display().to_string(),
                reason: "an earlier entry made it a directory, and a directory is not replaced",
            });
        }
        match fs::remove_file(full) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BundleError::write(entry, e)),
        }
    }

    /// Checks that `target` is a regular file already unpacked, reached through real directories.
    fn check_existing_file(
        &self,
        entry: &str,
        target: &Path,
        bad: &dyn Fn(&'static str) -> BundleError,
    ) -> Result<(), BundleError> {
        let mut at = PathBuf::new();
        for part in target.parent().into_iter().flat_map(Path::components) {
            at.push(part);
            if !self.dirs.contains(&at) {
                return match fs::symlink_metadata(self.root.join(&at)) {
                    Ok(m) if m.file_type().is_symlink() => Err(BundleError::ThroughLink {
                        entry: entry.to_owned(),
                        link: at.display().to_string(),
                    }),
                    _ => Err(bad("which is not in the bundle before it")),
                };
            }
        }
        match fs::symlink_metadata(self.root.join(target)) {
            Ok(m) if m.is_file() => Ok(()),
            Ok(m) if m.is_dir() => Err(bad("which is a directory")),
            Ok(_) => Err(bad("which is a link, not a file")),
            Err(_) => Err(bad("which is not in the bundle before it")),
        }
    }
}

/// An archive path as a relative path of plain components, or `None` for the root itself.
pub(super) fn relative_path(entry: &str, path: &Path) -> Result<Option<PathBuf>, BundleError> {
    let unsafe_path = |reason| BundleError::UnsafePath {
        entry: entry.to_owned(),
        reason,
    };
    if path.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(unsafe_path("holds a NUL byte"));
    }
    let mut rel = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => rel.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_path("is an absolute path"));
            }
            Component::ParentDir => return Err(unsafe_path("has a '..' component")),
        }
    }
    Ok((!rel.as_os_str().is_empty()).then_some(rel))
}

/// Whether a link in directory `parent` (relative to the root) pointing at `target` stays inside
/// the root, by the names alone.
fn stays_inside_lexically(parent: &Path, target: &Path) -> bool {
    let mut depth = parent.components().count();
    for component in target.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir if depth > 0 => depth -= 1,
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Whether the link at `rel` resolves inside `root`, following links found on the way. Parts that
/// do not exist are taken by name, as they would be if they were created later.
fn resolves_inside(root: &Path, rel: &Path) -> io::Result<bool> {
    let mut at: Vec<OsString> = rel
        .parent()
        .into_iter()
        .flat_map(Path::components)
        .map(|c| c.as_os_str().to_owned())
        .collect();
    let mut pending: VecDeque<OsString> = VecDeque::new();
    let mut hops = 0;
    push_front_target(&mut pending, &fs::read_link(root.join(rel))?);
    while let Some(part) = pending.pop_front() {
        match part.to_str() {
            Some("/") => return Ok(false),
            Some(".") => continue,
            Some("..") => {
                if at.pop().is_none() {
                    return Ok(false);
                }
                continue;
            }
            _ => {}
        }
        at.push(part);
        let here: PathBuf = std::iter::once(root.as_os_str().to_owned())
            .chain(at.iter().cloned())
            .collect();
        let is_link = fs::symlink_metadata(&here)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false);
        if is_link {
            hops += 1;
            if hops > MAX_LINK_HOPS {
                return Ok(true); // a loop: nothing can follow it, so it leads nowhere
            }
            at.pop();
            push_front_target(&mut pending, &fs::read_link(&here)?);
        }
    }
    Ok(true)
}

fn push_front_target(pending: &mut VecDeque<OsString>, target: &Path) {
    for component in target.components().rev() {
        let part = match component {
            Component::RootDir | Component::Prefix(_) => OsString::from("/"),
            other => other.as_os_str().to_owned(),
        };
        pending.push_front(part);
    }
}

/// Directories are made owner-only while unpacking; their real modes come at the end.
fn make_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().mode(0o700).create(path)
}

/// A directory's mode from the archive, always usable by its owner: the agent must be able to
/// read the revision and later prune it.
fn dir_mode(mode: u32) -> u32 {
    (mode & 0o777) | 0o700
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_become_plain_relative_paths() {
        let ok = |p: &str| relative_path(p, Path::new(p)).unwrap();
        assert_eq!(ok("a/b.txt"), Some(PathBuf::from("a/b.txt")));
        assert_eq!(ok("./a//b/"), Some(PathBuf::from("a/b")));
        assert_eq!(ok("./"), None);
        assert_eq!(ok("."), None);
        for bad in ["/etc/passwd", "../x", "a/../../x", "a/.."] {
            let err = relative_path(bad, Path::new(bad)).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn link_targets_are_judged_from_the_links_directory() {
        assert!(stays_inside_lexically(Path::new("a/b"), Path::new("../c")));
        assert!(stays_inside_lexically(Path::new("a"), Path::new("..")));
        assert!(stays_inside_lexically(Path::new(""), Path::new("./x/../y")));
        assert!(!stays_inside_lexically(Path::new("a"), Path::new("../..")));
        assert!(!stays_inside_lexically(Path::new(""), Path::new("..")));
        assert!(!stays_inside_lexically(Path::new("a"), Path::new("/etc")));
    }

    #[test]
    fn a_chain_of_links_that_climbs_out_is_caught() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs::create_dir_all(root.join("x/y")).unwrap();
        // x/y/up points at the root; "x/y/up/.." is then the root's parent, although by name
        // alone it is x/y.
        std::os::unix::fs::symlink("../..", root.join("x/y/up")).unwrap();
        std::os::unix::fs::symlink("x/y/up/..", root.join("esc")).unwrap();
        std::os::unix::fs::symlink("x/y/up/x", root.join("fine")).unwrap();
        std::os::unix::fs::symlink("loop2", root.join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", root.join("loop2")).unwrap();
        assert!(stays_inside_lexically(
            Path::new(""),
            Path::new("x/y/up/..")
        ));
        assert!(!resolves_inside(&root, Path::new("esc")).unwrap());
        assert!(resolves_inside(&root, Path::new("fine")).unwrap());
        assert!(resolves_inside(&root, Path::new("x/y/up")).unwrap());
        assert!(resolves_inside(&root, Path::new("loop1")).unwrap());
    }
}
