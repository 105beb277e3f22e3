//! The AppSpec's `permissions`, applied as the CodeDeploy agent applies them: only to what this
//! install creates, matched by `object`, `pattern` and `except`, then mode, ACLs, SELinux
//! context and ownership, in that order.
//!
//! `pattern` and `except` are the agent's simple globs: `*` is the only wildcard, and a pattern
//! other than `**` matches names directly under `object`, never in its subfolders. A glob crate
//! would accept more (`?`, `[...]`, `**/x`) than revisions written for CodeDeploy mean.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use cutover_core::appspec::{Permission, PermissionType, SeLinuxContext};
use nix::unistd::{Group, User};

use crate::host::HostRoot;

/// A permission that cannot be applied, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum PermissionError {
    #[error(
        "permissions for '{object}': pattern '{pattern}' and except {except:?} cannot apply to a single file; remove them or point object at a directory"
    )]
    PatternOnFile {
        object: String,
        pattern: String,
        except: Vec<String>,
    },
    #[error("permissions for '{0}' are given more than once in the AppSpec; merge the entries")]
    Repeated(String),
    #[error("permissions for '{path}': default ACL entries (d:...) apply to directories only")]
    DefaultAclOnFile { path: String },
    #[error("permissions for '{path}': there is no user '{user}' on this host")]
    UnknownUser { path: String, user: String },
    #[error("permissions for '{path}': there is no group '{group}' on this host")]
    UnknownGroup { path: String, group: String },
    #[error(
        "permissions for '{path}': '{setting}' needs {tool}, which is not installed on this host ({hint})"
    )]
    MissingTool {
        path: String,
        setting: &'static str,
        tool: &'static str,
        hint: &'static str,
    },
    #[error("permissions for '{path}': {command} failed ({status}): {output}")]
    ToolFailed {
        path: String,
        command: String,
        status: String,
        output: String,
    },
    #[error("permissions for '{path}': cannot {action}: {source}")]
    Io {
        path: String,
        action: &'static str,
        source: std::io::Error,
    },
}

/// One permission entry applied to one installed path (in the host's terms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermissionStep<'a> {
    pub path: PathBuf,
    pub is_dir: bool,
    pub permission: &'a Permission,
}

/// Which installed paths each permission entry applies to. `copies` and `dirs` are the files and
/// directories this install creates; an `object` that is an existing directory on the host is
/// searched too, but only for what this install creates in it.
pub fn plan<'a>(
    permissions: &'a [Permission],
    copies: &BTreeSet<PathBuf>,
    dirs: &BTreeSet<PathBuf>,
    host: &HostRoot,
) -> Result<Vec<PermissionStep<'a>>, PermissionError> {
    let mut steps = Vec::new();
    let mut seen = BTreeSet::new();
    let mut add = |path: &Path, is_dir: bool, permission: &'a Permission| {
        if !seen.insert(path.to_path_buf()) {
            return Err(PermissionError::Repeated(path.display().to_string()));
        }
        steps.push(PermissionStep {
            path: path.to_path_buf(),
            is_dir,
            permission,
        });
        Ok(())
    };
    for permission in permissions {
        let object = clean(&permission.object);
        if copies.contains(&object) {
            if permission.applies_to(PermissionType::File) {
                if permission.pattern != Permission::ALL || !permission.except.is_empty() {
                    return Err(PermissionError::PatternOnFile {
                        object: permission.object.clone(),
                        pattern: permission.pattern.clone(),
                        except: permission.except.clone(),
                    });
                }
                add(&object, false, permission)?;
            }
            continue;
        }
        let existing_dir = host.resolve(&object).is_ok_and(|p| p.is_dir());
        if !dirs.contains(&object) && !existing_dir {
            continue;
        }
        if permission.applies_to(PermissionType::File) {
            for path in copies.iter().filter(|p| selects(permission, &object, p)) {
                add(path, false, permission)?;
            }
        }
        if permission.applies_to(PermissionType::Directory) {
            for path in dirs.iter().filter(|p| selects(permission, &object, p)) {
                add(path, true, permission)?;
            }
        }
    }
    Ok(steps)
}

/// A host path in plain form, as the agent's `File.expand_path` gives it.
fn clean(path: &str) -> PathBuf {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    PathBuf::from(format!("/{}", parts.join("/")))
}

/// True if `path` lies under `object` and matches the entry's pattern but not its exceptions.
fn selects(permission: &Permission, object: &Path, path: &Path) -> bool {
    let Ok(relative) = path.strip_prefix(object) else {
        return false;
    };
    let Some(relative) = relative.to_str().filter(|r| !r.is_empty()) else {
        return false;
    };
    let matches =
        permission.pattern == Permission::ALL || simple_glob(&permission.pattern, relative);
    matches && !permission.except.iter().any(|e| simple_glob(e, relative))
}

/// The agent's glob: `*` matches any run of characters, everything else matches itself, and a
/// name with a `/` (anything below a subfolder) never matches.
pub fn simple_glob(pattern: &str, name: &str) -> bool {
    if name.contains('/') {
        return false;
    }
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Classic wildcard matching with one backtrack point for the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && p[i] != '*' && p[i] == n[j] {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// Where the tools that permissions need are looked for: the `PATH` the agent runs with.
#[derive(Clone, Debug)]
pub struct Tools {
    search_path: OsString,
}

impl Default for Tools {
    fn default() -> Self {
        Tools {
            search_path: std::env::var_os("PATH")
                .unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into()),
        }
    }
}

impl Tools {
    /// Tools found on `search_path` instead of `PATH`.
    pub fn on_path(search_path: impl Into<OsString>) -> Self {
        Tools {
            search_path: search_path.into(),
        }
    }

    fn find(&self, name: &str) -> Option<PathBuf> {
        std::env::split_paths(&self.search_path)
            .map(|dir| dir.join(name))
            .find(|p| {
                p.metadata()
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    }
}

/// Applies one step. Returns a cleanup-list line when the step registered something outside the
/// file system that the next install must undo (an SELinux file context).
pub fn apply(
    step: &PermissionStep<'_>,
    host: &HostRoot,
    tools: &Tools,
) -> Result<Option<String>, PermissionError> {
    let shown = step.path.display().to_string();
    let real = host.resolve(&step.path).map_err(|e| PermissionError::Io {
        path: shown.clone(),
        action: "place the path on this host",
        source: std::io::Error::other(e.to_string()),
    })?;
    let p = step.permission;
    if let Some(mode) = p.mode {
        fs::set_permissions(&real, fs::Permissions::from_mode(u32::from(mode.bits()))).map_err(
            |source| PermissionError::Io {
                path: shown.clone(),
                action: "set the mode",
                source,
            },
        )?;
    }
    if !p.acls.is_empty() {
        set_acl(&shown, &real, &p.acls, step.is_dir, tools)?;
    }
    let mut cleanup = None;
    if let Some(context) = &p.context {
        set_context(&shown, &real, context, tools)?;
        cleanup = Some(format!("{SEMANAGE_PREFIX}{}", real.display()));
    }
    if p.owner.is_some() || p.group.is_some() {
        set_owner(&shown, &real, p.owner.as_deref(), p.group.as_deref())?;
    }
    Ok(cleanup)
}

/// How a cleanup list marks an SELinux file context to remove, as the agent writes it.
pub const SEMANAGE_PREFIX: &str = "semanage\0";

fn set_owner(
    shown: &str,
    real: &Path,
    owner: Option<&str>,
    group: Option<&str>,
) -> Result<(), PermissionError> {
    let uid = match owner {
        Some(name) => Some(
            User::from_name(name)
                .ok()
                .flatten()
                .ok_or_else(|| PermissionError::UnknownUser {
                    path: shown.to_owned(),
                    user: name.to_owned(),
                })?
                .uid
                .as_raw(),
        ),
        None => None,
    };
    let gid = match group {
        Some(name) => Some(
            Group::from_name(name)
                .ok()
                .flatten()
                .ok_or_else(|| PermissionError::UnknownGroup {
                    path: shown.to_owned(),
                    group: name.to_owned(),
                })?
                .gid
                .as_raw(),
        ),
        None => None,
    };
    std::os::unix::fs::chown(real, uid, gid).map_err(|source| PermissionError::Io {
        path: shown.to_owned(),
        action: "change the owner (changing owners needs the agent to run as root)",
        source,
    })
}

/// The full ACL for `setfacl --set`: the AppSpec's entries plus the base entries the file's mode
/// implies, which `--set` would otherwise drop (the agent does the same).
pub fn full_acl(entries: &[String], mode: u32) -> String {
    let digit = |shift: u32| ((mode >> shift) & 0o7).to_string();
    let (user, group, other) = (digit(6), digit(3), digit(0));
    let kind = |e: &str| -> (bool, char, bool) {
        // (is default, tag initial, is named)
        let (default, rest) = match e.strip_prefix("d:").or_else(|| e.strip_prefix("default:")) {
            Some(rest) => (true, rest),
            None => (false, e),
        };
        let mut parts = rest.splitn(3, ':');
        let tag = parts
            .next()
            .unwrap_or_default()
            .chars()
            .next()
            .unwrap_or(' ');
        let qualifier = parts.next().unwrap_or_default();
        (default, tag, !qualifier.is_empty())
    };
    let has = |default: bool, tag: char, named: Option<bool>| {
        entries
            .iter()
            .map(|e| kind(e))
            .any(|(d, t, n)| d == default && t == tag && named.is_none_or(|want| want == n))
    };
    let mut acl: Vec<String> = entries.to_vec();
    acl.push(format!("u::{user}"));
    acl.push(format!("g::{group}"));
    acl.push(format!("o::{other}"));
    let named = has(false, 'u', Some(true)) || has(false, 'g', Some(true));
    if named && !has(false, 'm', None) {
        acl.push(format!("m::{group}"));
    }
    if entries.iter().any(|e| kind(e).0) {
        if !has(true, 'u', Some(false)) {
            acl.push(format!("d:u::{user}"));
        }
        if !has(true, 'g', Some(false)) {
            acl.push(format!("d:g::{group}"));
        }
        if !has(true, 'o', None) {
            acl.push(format!("d:o::{other}"));
        }
        let default_named = has(true, 'u', Some(true)) || has(true, 'g', Some(true));
        if default_named && !has(true, 'm', None) {
            acl.push(format!("d:m::{group}"));
        }
    }
    acl.join(",")
}

fn set_acl(
    shown: &str,
    real: &Path,
    entries: &[String],
    is_dir: bool,
    tools: &Tools,
) -> Result<(), PermissionError> {
    if !is_dir
        && entries
            .iter()
            .any(|e| e.starts_with("d:") || e.starts_with("default:"))
    {
        return Err(PermissionError::DefaultAclOnFile {
            path: shown.to_owned(),
        });
    }
    let setfacl = tools
        .find("setfacl")
        .ok_or_else(|| PermissionError::MissingTool {
            path: shown.to_owned(),
            setting: "acls",
            tool: "setfacl",
            hint: "install the acl package",
        })?;
    let mode = real
        .metadata()
        .map_err(|source| PermissionError::Io {
            path: shown.to_owned(),
            action: "read the mode",
            source,
        })?
        .permissions()
        .mode();
    let acl = full_acl(entries, mode);
    run(
        shown,
        Command::new(setfacl).arg("--set").arg(&acl).arg(real),
    )
}

fn set_context(
    shown: &str,
    real: &Path,
    context: &SeLinuxContext,
    tools: &Tools,
) -> Result<(), PermissionError> {
    let missing = |tool, hint| PermissionError::MissingTool {
        path: shown.to_owned(),
        setting: "context",
        tool,
        hint,
    };
    let semanage = tools.find("semanage").ok_or_else(|| {
        missing(
            "semanage",
            "install policycoreutils-python-utils and enable SELinux",
        )
    })?;
    let restorecon = tools
        .find("restorecon")
        .ok_or_else(|| missing("restorecon", "install policycoreutils and enable SELinux"))?;
    let mut semanage = Command::new(semanage);
    semanage.args(["fcontext", "-a"]);
    if let Some(user) = &context.user {
        semanage.arg("-s").arg(user);
    }
    semanage.arg("-t").arg(&context.type_);
    if let Some(range) = &context.range {
        semanage.arg("-r").arg(range);
    }
    run(shown, semanage.arg(real))?;
    run(shown, Command::new(restorecon).arg("-v").arg(real))
}

/// Removes an SELinux file context that an earlier install registered (a cleanup-list line).
pub fn remove_context(real: &Path, tools: &Tools) {
    // Best effort, as the agent does: the context may already be gone, or SELinux disabled.
    if let Some(semanage) = tools.find("semanage") {
        let _ = Command::new(semanage)
            .args(["fcontext", "-d"])
            .arg(real)
            .output();
    }
}

fn run(shown: &str, command: &mut Command) -> Result<(), PermissionError> {
    let described = format!("{command:?}");
    let output = command.output().map_err(|source| PermissionError::Io {
        path: shown.to_owned(),
        action: "run a permission tool",
        source,
    })?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if text.is_empty() {
        text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    }
    Err(PermissionError::ToolFailed {
        path: shown.to_owned(),
        command: described,
        status: output.status.to_string(),
        output: text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_globs_match_like_the_agents() {
        assert!(simple_glob("*", "anything"));
        assert!(simple_glob("*.sh", "start.sh"));
        assert!(!simple_glob("*.sh", "start.shx"));
        assert!(simple_glob("log*", "log"));
        assert!(simple_glob("a*b*c", "aXXbYYc"));
        assert!(!simple_glob("a*b*c", "aXXbYY"));
        assert!(simple_glob("exact", "exact"));
        assert!(!simple_glob("exact", "exactly"));
        // `?` is not special to the agent.
        assert!(!simple_glob("a?", "ab"));
        assert!(simple_glob("a?", "a?"));
        // Nothing below a subfolder matches.
        assert!(!simple_glob("*", "sub/file"));
    }

    fn permission(
        object: &str,
        pattern: &str,
        except: &[&str],
        types: &[PermissionType],
    ) -> Permission {
        Permission {
            object: object.into(),
            pattern: pattern.into(),
            except: except.iter().map(|s| s.to_string()).collect(),
            owner: None,
            group: None,
            mode: None,
            acls: vec![],
            context: None,
            types: types.to_vec(),
        }
    }

    fn set(paths: &[&str]) -> BTreeSet<PathBuf> {
        paths.iter().map(PathBuf::from).collect()
    }

    fn planned(steps: &[PermissionStep<'_>]) -> Vec<String> {
        steps.iter().map(|s| s.path.display().to_string()).collect()
    }

    #[test]
    fn a_pattern_selects_names_directly_under_the_object() {
        // conformance: permissions
        let host = HostRoot::new("/nonexistent-host");
        let copies = set(&["/srv/app/run.sh", "/srv/app/lib/util.sh", "/srv/app/README"]);
        let dirs = set(&["/srv/app", "/srv/app/lib"]);
        let perms = [permission("/srv/app", "*.sh", &[], &[])];
        let steps = plan(&perms, &copies, &dirs, &host).unwrap();
        assert_eq!(planned(&steps), ["/srv/app/run.sh"]);

        let perms = [permission("/srv/app", "**", &["README"], &[])];
        let steps = plan(&perms, &copies, &dirs, &host).unwrap();
        assert_eq!(
            planned(&steps),
            ["/srv/app/lib/util.sh", "/srv/app/run.sh", "/srv/app/lib"]
        );

        let perms = [permission(
            "/srv/app/",
            "**",
            &[],
            &[PermissionType::Directory],
        )];
        let steps = plan(&perms, &copies, &dirs, &host).unwrap();
        assert_eq!(
            planned(&steps),
            ["/srv/app/lib"],
            "the object itself is not selected"
        );
    }

    #[test]
    fn a_single_file_object_takes_no_pattern_or_except() {
        let host = HostRoot::new("/nonexistent-host");
        let copies = set(&["/etc/app.conf"]);
        let ok = [permission("/etc/app.conf", "**", &[], &[])];
        assert_eq!(
            planned(&plan(&ok, &copies, &BTreeSet::new(), &host).unwrap()),
            ["/etc/app.conf"]
        );
        let bad = [permission("/etc/app.conf", "*.conf", &[], &[])];
        let err = plan(&bad, &copies, &BTreeSet::new(), &host).unwrap_err();
        assert!(
            matches!(err, PermissionError::PatternOnFile { .. }),
            "{err}"
        );
        let bad = [permission("/etc/app.conf", "**", &["x"], &[])];
        assert!(plan(&bad, &copies, &BTreeSet::new(), &host).is_err());
        // A directory-only entry on a file object does nothing.
        let dir_only = [permission(
            "/etc/app.conf",
            "*.conf",
            &[],
            &[PermissionType::Directory],
        )];
        assert!(
            plan(&dir_only, &copies, &BTreeSet::new(), &host)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_path_given_permissions_twice_is_refused() {
        let host = HostRoot::new("/nonexistent-host");
        let copies = set(&["/srv/app/run.sh"]);
        let dirs = set(&["/srv/app"]);
        let perms = [
            permission("/srv/app", "**", &[], &[]),
            permission("/srv/app", "*.sh", &[], &[]),
        ];
        let err = plan(&perms, &copies, &dirs, &host).unwrap_err();
        assert_eq!(
            err.to_string(),
            "permissions for '/srv/app/run.sh' are given more than once in the AppSpec; merge the entries"
        );
    }

    #[test]
    fn objects_that_this_install_does_not_touch_are_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("var/www")).unwrap();
        let host = HostRoot::new(tmp.path());
        let copies = set(&["/var/www/index.html"]);
        let perms = [
            permission("/var/www", "**", &[], &[]),
            permission("/opt/other", "**", &[], &[]),
        ];
        // /var/www exists on the host, so what this install puts in it is selected.
        assert_eq!(
            planned(&plan(&perms, &copies, &BTreeSet::new(), &host).unwrap()),
            ["/var/www/index.html"]
        );
    }

    #[test]
    fn full_acls_add_the_base_entries_from_the_mode() {
        assert_eq!(
            full_acl(&["u:bob:rw".into()], 0o640),
            "u:bob:rw,u::6,g::4,o::0,m::4"
        );
        assert_eq!(
            full_acl(&["u:bob:rw".into(), "m::r".into()], 0o640),
            "u:bob:rw,m::r,u::6,g::4,o::0"
        );
        assert_eq!(
            full_acl(&["d:g:dev:rwx".into()], 0o750),
            "d:g:dev:rwx,u::7,g::5,o::0,d:u::7,d:g::5,d:o::0,d:m::5"
        );
    }
}
