//! Unpacking a revision bundle into a deployment's `deployment-archive/` directory, laid out as
//! the CodeDeploy agent lays it out ("bundle layout" and "appspec lookup" in the conformance
//! table), while refusing what a hostile archive could do to the host.
//!
//! A bundle is unpacked into a hidden staging directory beside `deployment-archive/` and moved
//! into place only once every entry has passed, so a refused bundle leaves nothing behind and a
//! half-unpacked one is never seen. The rules, checked for every format in `tree`:
//!
//! - entry paths are relative and have no `..` (in zips, `\` counts as a separator);
//! - links stay inside the bundle, by name and once more by following them in the finished
//!   tree; nothing is ever written through a link;
//! - devices, FIFOs, sockets and other special files are refused;
//! - the bytes really written and the entries made are counted against [`BundleLimits`];
//! - modes keep their permission bits only (no setuid, setgid or sticky), and nothing is
//!   chowned to the archive's owners;
//! - a later entry for the same path replaces an earlier file or link, as with tar.

mod error;
mod format;
mod from_dir;
mod from_tar;
mod from_zip;
mod tree;

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Component, Path, PathBuf};

pub use error::BundleError;
pub use format::BundleFormat;
use tree::Tree;

/// 4 GiB of unpacked content: above the largest revisions seen in practice, well below a full disk.
pub const DEFAULT_MAX_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// 100,000 entries (files, directories and links): room for an application with its
/// dependencies vendored, far from what it takes to exhaust a file system's inodes.
pub const DEFAULT_MAX_ENTRIES: u64 = 100_000;

/// What a bundle may unpack to, counted as it is written (an archive's own headers are never
/// trusted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BundleLimits {
    /// Bytes of file content, summed over every file written.
    pub max_bytes: u64,
    /// Files, directories and links made.
    pub max_entries: u64,
}

/// [`DEFAULT_MAX_BYTES`] (4 GiB) and [`DEFAULT_MAX_ENTRIES`] (100,000).
impl Default for BundleLimits {
    fn default() -> Self {
        BundleLimits {
            max_bytes: DEFAULT_MAX_BYTES,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

/// What [`unpack`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unpacked {
    /// Files, directories and links made, including any in a stripped top-level directory.
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// The single top-level directory whose contents became the archive root, if any.
    pub stripped_top_level: Option<String>,
}

/// Unpacks (or, for a directory, copies) `bundle` into `archive_dir`, which must not exist yet
/// or be empty; its parent directories are created if missing.
///
/// Writes nothing outside `archive_dir` but a hidden staging directory beside it, which is gone
/// when this returns. On any error, `archive_dir` is left absent.
///
/// When the result holds exactly one top-level directory and that directory has an entry whose
/// name contains "appspec" (in any case, as the official agent checks), that directory's contents
/// become the archive root.
pub fn unpack(
    bundle: &Path,
    format: BundleFormat,
    archive_dir: &Path,
    limits: &BundleLimits,
) -> Result<Unpacked, BundleError> {
    let parent = prepare_archive_dir(archive_dir)?;
    let result = unpack_via_staging(bundle, format, archive_dir, &parent, limits);
    if result.is_err() {
        // Only an empty directory that was there before can be left; remove it too.
        let _ = fs::remove_dir(archive_dir);
    }
    result
}

/// The AppSpec at the bundle root: `name` when given (it must exist), else `appspec.yaml`, else
/// `appspec.yml`. Names are case-sensitive, as with the official agent on Linux. When none is
/// found, the error lists what the root holds.
pub fn find_appspec(archive_dir: &Path, name: Option<&str>) -> Result<PathBuf, BundleError> {
    let wanted = match name {
        Some(name) => {
            check_appspec_name(name)?;
            vec![name]
        }
        None => vec!["appspec.yaml", "appspec.yml"],
    };
    for candidate in &wanted {
        let path = archive_dir.join(candidate);
        if path.is_file() {
            return Ok(path);
        }
    }
    let found = root_names(archive_dir);
    Err(BundleError::AppSpecMissing {
        dir: archive_dir.to_owned(),
        wanted: wanted.join(" or "),
        found: describe_names(&found),
        hint: appspec_hint(&wanted, &found, name.is_some()),
    })
}

fn unpack_via_staging(
    bundle: &Path,
    format: BundleFormat,
    archive_dir: &Path,
    parent: &Path,
    limits: &BundleLimits,
) -> Result<Unpacked, BundleError> {
    let finish = |path: &Path| {
        let path = path.to_owned();
        move |source| BundleError::Finish { path, source }
    };
    // Dropped (and so removed, with whatever is left in it) on every way out.
    let staging = tempfile::Builder::new()
        .prefix(".deployment-archive.")
        .suffix(".unpacking")
        .tempdir_in(parent)
        .map_err(finish(parent))?;
    let mut tree = Tree::new(staging.path(), limits);
    read_bundle(bundle, format, parent, &mut tree)?;

    let top = top_level_to_strip(staging.path()).map_err(finish(staging.path()))?;
    let strip = top.as_deref().map(Path::new);
    let root = strip.map_or_else(|| staging.path().to_owned(), |t| staging.path().join(t));
    tree.check_links(&root, strip)?;
    fs::rename(&root, archive_dir).map_err(finish(archive_dir))?;
    if let Err(source) = tree.apply_dir_modes(archive_dir, strip) {
        let _ = fs::remove_dir_all(archive_dir);
        return Err(BundleError::Finish {
            path: archive_dir.to_owned(),
            source,
        });
    }
    Ok(Unpacked {
        entries: tree.entries(),
        bytes: tree.bytes(),
        stripped_top_level: top.map(|t| t.to_string_lossy().into_owned()),
    })
}

fn read_bundle(
    bundle: &Path,
    format: BundleFormat,
    parent: &Path,
    tree: &mut Tree,
) -> Result<(), BundleError> {
    let open = || {
        File::open(bundle)
            .map(BufReader::new)
            .map_err(|source| BundleError::ReadBundle {
                path: bundle.to_owned(),
                source,
            })
    };
    match format {
        BundleFormat::Directory => {
            refuse_archive_inside(bundle, parent)?;
            from_dir::copy(bundle, tree)
        }
        BundleFormat::Zip => from_zip::unpack(bundle, tree),
        BundleFormat::Tar => from_tar::unpack(bundle, format, open()?, tree),
        BundleFormat::Tgz => {
            // Multi-member, like gzip and GNU tar: `cat a.gz b.gz` is one valid stream.
            let stream = flate2::read::MultiGzDecoder::new(open()?);
            from_tar::unpack(bundle, format, stream, tree)
        }
    }
}

/// Copying a directory into itself would only stop at the size limit.
fn refuse_archive_inside(bundle: &Path, parent: &Path) -> Result<(), BundleError> {
    let bundle = fs::canonicalize(bundle).map_err(|source| BundleError::ReadBundle {
        path: bundle.to_owned(),
        source,
    })?;
    let parent = fs::canonicalize(parent).unwrap_or_else(|_| parent.to_owned());
    if parent.starts_with(&bundle) {
        return Err(BundleError::ArchiveDir {
            path: parent,
            reason: format!(
                "it is inside the bundle directory {}, which would copy into itself",
                bundle.display()
            ),
        });
    }
    Ok(())
}

/// Checks that `archive_dir` is new or empty and makes its parent; returns the parent.
fn prepare_archive_dir(archive_dir: &Path) -> Result<PathBuf, BundleError> {
    let refuse = |reason: &str| BundleError::ArchiveDir {
        path: archive_dir.to_owned(),
        reason: reason.to_owned(),
    };
    let finish = |source| BundleError::Finish {
        path: archive_dir.to_owned(),
        source,
    };
    match fs::symlink_metadata(archive_dir) {
        Ok(meta) if meta.is_dir() => {
            if fs::read_dir(archive_dir).map_err(finish)?.next().is_some() {
                return Err(refuse("it already holds files"));
            }
        }
        Ok(_) => return Err(refuse("it exists and is not a directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(finish(e)),
    }
    let parent = match archive_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        Some(_) => PathBuf::from("."),
        None => return Err(refuse("it is the file system root")),
    };
    fs::create_dir_all(&parent).map_err(finish)?;
    Ok(parent)
}

/// The single top-level directory to strip, as the official agent decides it: the only entry at
/// the root, a real directory, holding something named like an appspec.
fn top_level_to_strip(dir: &Path) -> io::Result<Option<OsString>> {
    let mut children = fs::read_dir(dir)?;
    let only = match (children.next(), children.next()) {
        (Some(only), None) => only?,
        _ => return Ok(None),
    };
    if !only.file_type()?.is_dir() {
        return Ok(None);
    }
    for child in fs::read_dir(only.path())? {
        let name = child?.file_name();
        if name.to_string_lossy().to_lowercase().contains("appspec") {
            return Ok(Some(only.file_name()));
        }
    }
    Ok(None)
}

fn check_appspec_name(name: &str) -> Result<(), BundleError> {
    let refuse = |reason| BundleError::AppSpecName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(refuse("is empty"));
    }
    for component in Path::new(name).components() {
        match component {
            Component::RootDir | Component::Prefix(_) => return Err(refuse("is an absolute path")),
            Component::ParentDir => return Err(refuse("climbs out with '..'")),
            Component::CurDir | Component::Normal(_) => {}
        }
    }
    Ok(())
}

/// The names at the root, directories marked with a trailing `/`, sorted.
fn root_names(dir: &Path) -> Vec<String> {
    let Ok(children) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = children
        .filter_map(Result::ok)
        .map(|child| {
            let mut name = child.file_name().to_string_lossy().into_owned();
            if child.file_type().is_ok_and(|t| t.is_dir()) {
                name.push('/');
            }
            name
        })
        .collect();
    names.sort();
    names
}

fn describe_names(names: &[String]) -> String {
    const SHOWN: usize = 20;
    if names.is_empty() {
        return "nothing (the bundle is empty)".into();
    }
    let mut text = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

fn appspec_hint(wanted: &[&str], found: &[String], named: bool) -> String {
    for want in wanted {
        if let Some(near) = found.iter().find(|f| f.eq_ignore_ascii_case(want)) {
            return format!("; names are case-sensitive: rename '{near}' to '{want}'");
        }
    }
    if named {
        "; check the AppSpec file name given for this deployment".into()
    } else {
        "; add an appspec.yml at the root of the revision".into()
    }
}
