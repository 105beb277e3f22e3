//! Tar and gzip-compressed tar bundles, read as a stream.
//!
//! The `tar` crate reads GNU long names and PAX records into memory before handing out the entry
//! they describe, so a hostile archive could name a file with gigabytes of zeros. A [`Meter`]
//! under the archive reader caps what is read between two entries outside their contents.

use std::cell::Cell;
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use tar::EntryType;

use super::tree::{MAX_LINK_TARGET, Meta, Tree};
use super::{BundleError, BundleFormat};

/// Headers, long names and PAX records between two entries: real ones take a few KiB.
const MAX_METADATA: u64 = 1024 * 1024;

/// Unpacks the tar stream `reader` (already decompressed) from the bundle at `path` into `tree`.
pub(super) fn unpack(
    path: &Path,
    format: BundleFormat,
    reader: impl Read,
    tree: &mut Tree,
) -> Result<(), BundleError> {
    let meter = Meter::new(reader);
    let state = Rc::clone(&meter.state);
    let mut archive = tar::Archive::new(meter);
    let corrupt = |e: io::Error| BundleError::Corrupt {
        path: path.to_owned(),
        format,
        reason: e.to_string(),
    };
    let mut last = None::<String>;
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(|e| {
            if state.overflowed.get() {
                BundleError::MetadataTooLarge {
                    after: last
                        .as_ref()
                        .map_or("the start".into(), |name| format!("entry '{name}'")),
                    limit: MAX_METADATA,
                }
            } else {
                corrupt(e)
            }
        })?;
        state.since_entry.set(0);
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        add_entry(&name, &mut entry, &state, tree)?;
        last = Some(name);
    }
    Ok(())
}

fn add_entry<R: Read>(
    name: &str,
    entry: &mut tar::Entry<R>,
    state: &MeterState,
    tree: &mut Tree,
) -> Result<(), BundleError> {
    let path = path_from_bytes(&entry.path_bytes());
    let header = entry.header();
    let kind = header.entry_type();
    let meta = Meta {
        mode: header.mode().ok(),
        mtime: header
            .mtime()
            .ok()
            .and_then(|secs| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))),
    };
    match kind {
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
            state.in_content.set(true);
            let result = tree.add_file(name, &path, meta, entry);
            state.in_content.set(false);
            result
        }
        EntryType::Directory => tree.add_dir(name, &path, meta),
        EntryType::Symlink => tree.add_symlink(name, &path, &link_target(name, entry)?),
        EntryType::Link => tree.add_hard_link(name, &path, &link_target(name, entry)?),
        // Records about other entries (or the whole archive) that the reader has applied.
        EntryType::XGlobalHeader
        | EntryType::XHeader
        | EntryType::GNULongName
        | EntryType::GNULongLink => Ok(()),
        EntryType::Char => special(name, "character device"),
        EntryType::Block => special(name, "block device"),
        EntryType::Fifo => special(name, "FIFO (named pipe)"),
        other => Err(BundleError::Unsupported {
            entry: name.to_owned(),
            reason: format!(
                "tar entry type '{}' is not a file, directory or link; \
                 rebuild the archive with plain tar",
                other.as_byte().escape_ascii()
            ),
        }),
    }
}

fn special(name: &str, kind: &'static str) -> Result<(), BundleError> {
    Err(BundleError::SpecialFile {
        entry: name.to_owned(),
        kind,
    })
}

fn link_target<R: Read>(name: &str, entry: &tar::Entry<R>) -> Result<PathBuf, BundleError> {
    let unsupported = |reason: &str| BundleError::Unsupported {
        entry: name.to_owned(),
        reason: reason.to_owned(),
    };
    let target = entry
        .link_name_bytes()
        .ok_or_else(|| unsupported("it is a link without a target"))?;
    if target.len() > MAX_LINK_TARGET {
        return Err(unsupported("its link target is longer than 4096 bytes"));
    }
    Ok(path_from_bytes(&target))
}

fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(bytes))
}

#[derive(Debug, Default)]
struct MeterState {
    /// Bytes read since the last entry was handed out, outside entry contents.
    since_entry: Cell<u64>,
    /// Set while an entry's contents are being copied: those are counted by the tree instead.
    in_content: Cell<bool>,
    overflowed: Cell<bool>,
}

/// Counts what the tar reader reads on its own, between entries.
struct Meter<R> {
    inner: R,
    state: Rc<MeterState>,
}

impl<R> Meter<R> {
    fn new(inner: R) -> Self {
        Meter {
            inner,
            state: Rc::default(),
        }
    }
}

impl<R: Read> Read for Meter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if !self.state.in_content.get() {
            let since = self.state.since_entry.get() + n as u64;
            self.state.since_entry.set(since);
            if since > MAX_METADATA {
                self.state.overflowed.set(true);
                return Err(io::Error::other("tar metadata over the limit"));
            }
        }
        Ok(n)
    }
}
