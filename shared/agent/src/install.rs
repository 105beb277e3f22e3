//! The `Install` lifecycle event: the AppSpec's `files` copied onto the host and its
//! `permissions` applied, with the CodeDeploy agent's semantics, as one transaction.
//!
//! The agent first removes what the group's previous install created (its cleanup list), then
//! copies: a source directory's contents are merged into the destination, a source file lands at
//! `destination/<name>`, missing parents are created, and `file_exists_behavior` decides about
//! files that are already there. Unlike the agent, cutover journals every change it makes (in
//! the deployment's directory, as it goes) and undoes them all if the install fails or was
//! interrupted, so a failed install leaves the host's files as they were.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use cutover_core::appspec::ServerAppSpec;
use cutover_core::model::FileExistsBehavior;
use serde::{Deserialize, Serialize};

use crate::host::{HostPathError, HostRoot};
use crate::layout::{DeploymentRoot, write_atomically};
use crate::permissions::{self, PermissionError, SEMANAGE_PREFIX, Tools};

/// What to install, and where.
#[derive(Debug)]
pub struct Install<'a> {
    pub spec: &'a ServerAppSpec,
    /// The unpacked revision (the bundle root).
    pub bundle_root: &'a Path,
    pub root: &'a DeploymentRoot,
    pub group_id: &'a str,
    pub deployment_id: &'a str,
    /// The behaviour in force: the AppSpec's when it names one, else the deployment's.
    pub file_exists_behavior: FileExistsBehavior,
    pub tools: &'a Tools,
}

/// What an install did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstallReport {
    /// Paths the previous install created that were removed first.
    pub removed: usize,
    pub files: usize,
    pub directories: usize,
    /// Files that were already there and were replaced (OVERWRITE).
    pub overwritten: Vec<PathBuf>,
    /// Files that were already there and were kept (RETAIN).
    pub retained: Vec<PathBuf>,
}

/// Why an install failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(
        "a file already exists at {0} and file_exists_behavior is DISALLOW; remove it, or set file_exists_behavior to OVERWRITE or RETAIN"
    )]
    FileExists(PathBuf),
    #[error("files[{index}]: source '{source_path}' is not in the revision")]
    MissingSource { index: usize, source_path: String },
    #[error(
        "two sources install to the same destination {destination}: {first} and {second}; remove one from the AppSpec's files"
    )]
    DuplicateTarget {
        destination: PathBuf,
        first: String,
        second: String,
    },
    #[error(
        "{path} is a directory, or the AppSpec makes it one, so {source_path} cannot be installed as a file there"
    )]
    FileWhereDirectoryGoes { path: PathBuf, source_path: String },
    #[error(
        "the AppSpec installs a file at {path} and also needs a directory there for {source_path}"
    )]
    DirectoryWhereFileGoes { path: PathBuf, source_path: String },
    #[error(
        "{0} is not a directory, but the revision installs files into it; remove it or change the destination"
    )]
    NotADirectory(PathBuf),
    #[error(transparent)]
    Permission(#[from] PermissionError),
    #[error(transparent)]
    HostPath(#[from] HostPathError),
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// An install that failed, and whether the host was restored.
#[derive(Debug, thiserror::Error)]
#[error("{cause}{}", restored_note(.not_restored))]
pub struct InstallFailure {
    pub cause: InstallError,
    /// Changes that could not be undone, described; empty when the host was fully restored.
    pub not_restored: Vec<String>,
}

fn restored_note(not_restored: &[String]) -> String {
    if not_restored.is_empty() {
        " (the host's files were restored as they were before the install)".to_owned()
    } else {
        format!(
            " (restoring the host's files also failed; these changes remain: {})",
            not_restored.join("; ")
        )
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> InstallError + use<> {
    let path = path.to_path_buf();
    move |source| InstallError::Io {
        action,
        path,
        source,
    }
}

/// One change to the host, journaled before it is made so that it can be undone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "camelCase")]
enum Change {
    /// A file or link was moved aside to `backup`.
    MovedAside { path: PathBuf, backup: PathBuf },
    /// An empty directory was removed.
    RemovedDir { path: PathBuf, mode: u32 },
    /// A file or link was created.
    Created { path: PathBuf },
    /// A directory was created.
    CreatedDir { path: PathBuf },
}

/// The journal of an install in progress: a file of JSON lines next to the backups.
struct Journal {
    file: File,
    changes: Vec<Change>,
    backups: PathBuf,
    next_backup: usize,
}

impl Journal {
    fn journal_path(deployment_dir: &Path) -> PathBuf {
        deployment_dir.join("install-journal")
    }

    fn backups_dir(deployment_dir: &Path) -> PathBuf {
        deployment_dir.join("install-backup")
    }

    fn start(deployment_dir: &Path) -> Result<Journal, InstallError> {
        let backups = Self::backups_dir(deployment_dir);
        fs::create_dir_all(&backups).map_err(io_error("create", &backups))?;
        let path = Self::journal_path(deployment_dir);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_error("create", &path))?;
        Ok(Journal {
            file,
            changes: Vec::new(),
            backups,
            next_backup: 0,
        })
    }

    fn record(&mut self, change: Change) -> Result<(), InstallError> {
        let mut line = serde_json::to_string(&change).map_err(|e| InstallError::Io {
            action: "journal",
            path: self.backups.clone(),
            source: io::Error::other(e),
        })?;
        line.push('\n');
        // Written before each change, without an fsync per line: the journal must survive the
        // agent dying (the page cache keeps it), and an fsync per file would make large
        // revisions slow to install.
        self.file
            .write_all(line.as_bytes())
            .map_err(io_error("write the install journal in", &self.backups))?;
        self.changes.push(change);
        Ok(())
    }

    fn backup_path(&mut self) -> PathBuf {
        self.next_backup += 1;
        self.backups.join(self.next_backup.to_string())
    }

    /// Moves `path` aside, journaled.
    fn move_aside(&mut self, path: &Path) -> Result<(), InstallError> {
        let backup = self.backup_path();
        self.record(Change::MovedAside {
            path: path.to_path_buf(),
            backup: backup.clone(),
        })?;
        move_path(path, &backup).map_err(io_error("move aside", path))
    }
}

/// Undoes journaled changes, newest first; returns what could not be undone.
fn undo(changes: &[Change]) -> Vec<String> {
    let mut left = Vec::new();
    for change in changes.iter().rev() {
        let result = match change {
            Change::Created { path } => remove_entry(path),
            Change::CreatedDir { path } => match fs::remove_dir(path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                other => other,
            },
            Change::MovedAside { path, backup } => {
                if backup.symlink_metadata().is_err() {
                    // Journaled but never moved (interrupted in between): nothing to restore.
                    Ok(())
                } else {
                    remove_entry(path).and_then(|()| move_path(backup, path))
                }
            }
            Change::RemovedDir { path, mode } => match fs::create_dir(path) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                Ok(()) => fs::set_permissions(path, fs::Permissions::from_mode(*mode)),
                Err(e) => Err(e),
            },
        };
        if let Err(e) = result {
            left.push(format!("{change:?}: {e}"));
        }
    }
    left
}

/// Removes a file or link if it is there.
fn remove_entry(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Renames, or copies and removes when the two paths are on different file systems.
fn move_path(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {
            copy_entry(from, to)?;
            fs::remove_file(from)
        }
        other => other,
    }
}

/// Copies a file (keeping its mode and modification time) or recreates a symbolic link.
fn copy_entry(from: &Path, to: &Path) -> io::Result<()> {
    let meta = from.symlink_metadata()?;
    if meta.file_type().is_symlink() {
        return symlink(fs::read_link(from)?, to);
    }
    fs::copy(from, to)?;
    File::options()
        .write(true)
        .open(to)?
        .set_modified(meta.modified()?)
}

/// Undoes an install that was interrupted (the journal is still there), if any.
pub fn recover(deployment_dir: &Path) -> Result<(), InstallFailure> {
    let journal = Journal::journal_path(deployment_dir);
    let file = match File::open(&journal) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(InstallFailure {
                cause: io_error("read", &journal)(e),
                not_restored: vec![],
            });
        }
    };
    // A torn last line (a crash mid-write) describes a change that was never made.
    let changes: Vec<Change> = BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str(&line).ok())
        .collect();
    let not_restored = undo(&changes);
    if !not_restored.is_empty() {
        return Err(InstallFailure {
            cause: InstallError::Io {
                action: "undo the interrupted install recorded in",
                path: journal,
                source: io::Error::other("some changes could not be undone"),
            },
            not_restored,
        });
    }
    finish_journal(deployment_dir);
    Ok(())
}

fn finish_journal(deployment_dir: &Path) {
    // Leftovers here only take space; the journal's removal is what marks the install done.
    let _ = fs::remove_file(Journal::journal_path(deployment_dir));
    let _ = fs::remove_dir_all(Journal::backups_dir(deployment_dir));
}

/// A step of the install plan, in the host's terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Step {
    Mkdir {
        directory: PathBuf,
    },
    Copy {
        source: PathBuf,
        destination: PathBuf,
    },
}

/// The plan: what to create, built as the agent builds its instructions.
struct Planner<'a> {
    host: &'a HostRoot,
    behavior: FileExistsBehavior,
    steps: Vec<Step>,
    copies: BTreeMap<PathBuf, PathBuf>,
    dirs: BTreeSet<PathBuf>,
    retained: Vec<PathBuf>,
    overwritten: Vec<PathBuf>,
}

impl Planner<'_> {
    fn exists(&self, host_path: &Path) -> Result<bool, InstallError> {
        Ok(self.host.resolve(host_path)?.symlink_metadata().is_ok())
    }

    fn is_dir(&self, host_path: &Path) -> Result<bool, InstallError> {
        Ok(self
            .host
            .resolve(host_path)?
            .symlink_metadata()
            .is_ok_and(|m| m.is_dir()))
    }

    fn mkdir(&mut self, dir: &Path, source: &Path) -> Result<(), InstallError> {
        if self.copies.contains_key(dir) {
            return Err(InstallError::DirectoryWhereFileGoes {
                path: dir.to_path_buf(),
                source_path: source.display().to_string(),
            });
        }
        if self.dirs.insert(dir.to_path_buf()) {
            self.steps.push(Step::Mkdir {
                directory: dir.to_path_buf(),
            });
        }
        Ok(())
    }

    /// Creates the missing parents of `path`, top down.
    fn parents(&mut self, path: &Path, source: &Path) -> Result<(), InstallError> {
        let mut missing = Vec::new();
        let mut parent = path.parent();
        while let Some(dir) = parent.filter(|d| *d != Path::new("/")) {
            if self.dirs.contains(dir) || self.exists(dir)? {
                break;
            }
            missing.push(dir.to_path_buf());
            parent = dir.parent();
        }
        for dir in missing.iter().rev() {
            self.mkdir(dir, source)?;
        }
        Ok(())
    }

    fn copy_dir(&mut self, source: &Path, destination: &Path) -> Result<(), InstallError> {
        if !self.is_dir(destination)? {
            self.mkdir(destination, source)?;
        }
        let mut entries: Vec<_> = fs::read_dir(source)
            .map_err(io_error("read", source))?
            .collect::<Result<_, _>>()
            .map_err(io_error("read", source))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let target = destination.join(entry.file_name());
            let kind = entry.file_type().map_err(io_error("read", &path))?;
            if kind.is_dir() {
                self.copy_dir(&path, &target)?;
            } else {
                self.copy_file(&path, &target)?;
            }
        }
        Ok(())
    }

    fn copy_file(&mut self, source: &Path, destination: &Path) -> Result<(), InstallError> {
        if let Some(first) = self.copies.get(destination) {
            return Err(InstallError::DuplicateTarget {
                destination: destination.to_path_buf(),
                first: first.display().to_string(),
                second: source.display().to_string(),
            });
        }
        if self.dirs.contains(destination) || self.is_dir(destination)? {
            return Err(InstallError::FileWhereDirectoryGoes {
                path: destination.to_path_buf(),
                source_path: source.display().to_string(),
            });
        }
        if self.exists(destination)? {
            match self.behavior {
                FileExistsBehavior::Disallow => {
                    return Err(InstallError::FileExists(destination.to_path_buf()));
                }
                FileExistsBehavior::Retain => {
                    self.retained.push(destination.to_path_buf());
                    return Ok(());
                }
                FileExistsBehavior::Overwrite => self.overwritten.push(destination.to_path_buf()),
            }
        }
        self.copies
            .insert(destination.to_path_buf(), source.to_path_buf());
        self.steps.push(Step::Copy {
            source: source.to_path_buf(),
            destination: destination.to_path_buf(),
        });
        Ok(())
    }
}

/// Runs the install: undoes an interrupted one, removes the previous install's files, copies,
/// applies permissions and records the new cleanup list; or undoes everything it did.
pub fn install(req: &Install<'_>) -> Result<InstallReport, InstallFailure> {
    let deployment_dir = req.root.deployment_dir(req.group_id, req.deployment_id);
    recover(&deployment_dir)?;
    let fail = |cause| InstallFailure {
        cause,
        not_restored: vec![],
    };
    let mut journal = Journal::start(&deployment_dir).map_err(fail)?;
    match run_install(req, &mut journal) {
        Ok(report) => {
            finish_journal(&deployment_dir);
            Ok(report)
        }
        Err(cause) => {
            let not_restored = undo(&journal.changes);
            if not_restored.is_empty() {
                finish_journal(&deployment_dir);
            }
            Err(InstallFailure {
                cause,
                not_restored,
            })
        }
    }
}

fn run_install(req: &Install<'_>, journal: &mut Journal) -> Result<InstallReport, InstallError> {
    let host = req.root.host();
    let cleanup_file = req.root.cleanup_file(req.group_id);
    let removed = remove_previous(&cleanup_file, host, req.tools, journal)?;

    let mut planner = Planner {
        host,
        behavior: req.file_exists_behavior,
        steps: Vec::new(),
        copies: BTreeMap::new(),
        dirs: BTreeSet::new(),
        retained: Vec::new(),
        overwritten: Vec::new(),
    };
    for (index, file) in req.spec.files.iter().enumerate() {
        let source = req.bundle_root.join(file.bundle_path());
        let meta = source
            .symlink_metadata()
            .map_err(|_| InstallError::MissingSource {
                index,
                source_path: file.source.clone(),
            })?;
        if meta.is_dir() {
            let destination = PathBuf::from(file.destination_path());
            planner.parents(&destination, &source)?;
            planner.copy_dir(&source, &destination)?;
        } else {
            let destination = PathBuf::from(file.file_target());
            planner.parents(&destination, &source)?;
            planner.copy_file(&source, &destination)?;
        }
    }
    let copies: BTreeSet<PathBuf> = planner.copies.keys().cloned().collect();
    let permission_steps = permissions::plan(&req.spec.permissions, &copies, &planner.dirs, host)?;

    let mut cleanup = Vec::new();
    for step in &planner.steps {
        match step {
            Step::Mkdir { directory } => {
                let real = host.resolve(directory)?;
                match real.symlink_metadata() {
                    Ok(m) if m.is_dir() => continue,
                    Ok(_) => return Err(InstallError::NotADirectory(directory.clone())),
                    Err(_) => {}
                }
                journal.record(Change::CreatedDir { path: real.clone() })?;
                fs::create_dir(&real).map_err(io_error("create the directory", &real))?;
                cleanup.push(directory.display().to_string());
            }
            Step::Copy {
                source,
                destination,
            } => {
                let real = host.resolve(destination)?;
                if real.symlink_metadata().is_ok() {
                    journal.move_aside(&real)?;
                }
                journal.record(Change::Created { path: real.clone() })?;
                copy_entry(source, &real).map_err(io_error("install", &real))?;
                cleanup.push(destination.display().to_string());
            }
        }
    }
    for step in &permission_steps {
        if let Some(line) = permissions::apply(step, host, req.tools)? {
            cleanup.push(line);
        }
    }

    let instructions_dir = req.root.instructions_dir();
    fs::create_dir_all(&instructions_dir).map_err(io_error("create", &instructions_dir))?;
    let instructions = serde_json::json!({ "instructions": planner.steps });
    let install_file = req.root.install_file(req.group_id);
    write_atomically(&install_file, instructions.to_string().as_bytes())
        .map_err(io_error("write", &install_file))?;
    let mut list = cleanup.join("\n");
    if !list.is_empty() {
        list.push('\n');
    }
    write_atomically(&cleanup_file, list.as_bytes()).map_err(io_error("write", &cleanup_file))?;

    Ok(InstallReport {
        removed,
        files: planner.copies.len(),
        directories: planner.dirs.len(),
        overwritten: planner.overwritten,
        retained: planner.retained,
    })
}

/// Removes what the previous install created, newest first: files and links, and directories
/// that are empty (a directory someone put files in is left in place). Journaled, so that a
/// failed install puts them back.
fn remove_previous(
    cleanup_file: &Path,
    host: &HostRoot,
    tools: &Tools,
    journal: &mut Journal,
) -> Result<usize, InstallError> {
    let text = match fs::read_to_string(cleanup_file) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_error("read", cleanup_file)(e)),
    };
    let mut lines: Vec<&str> = text.split('\n').collect();
    // The last line is complete only if the list ends with a newline (a torn write otherwise).
    lines.pop();
    let mut removed = 0;
    for line in lines.into_iter().rev().filter(|l| !l.is_empty()) {
        if let Some(path) = line.strip_prefix(SEMANAGE_PREFIX) {
            permissions::remove_context(Path::new(path), tools);
            continue;
        }
        let Ok(real) = host.resolve(line) else {
            continue;
        };
        let Ok(meta) = real.symlink_metadata() else {
            continue;
        };
        if meta.is_dir() {
            let empty = fs::read_dir(&real)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            if empty {
                journal.record(Change::RemovedDir {
                    path: real.clone(),
                    mode: meta.permissions().mode(),
                })?;
                fs::remove_dir(&real).map_err(io_error("remove", &real))?;
                removed += 1;
            }
        } else {
            journal.move_aside(&real)?;
            removed += 1;
        }
    }
    Ok(removed)
}
