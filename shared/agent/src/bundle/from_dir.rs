//! Directory bundles (CodeDeploy's "Local Directory" revisions): copied, never linked, under
//! the same rules as archives.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

use super::BundleError;
use super::tree::{Meta, Tree};

pub(super) fn copy(src: &Path, tree: &mut Tree) -> Result<(), BundleError> {
    let mut pending = vec![PathBuf::new()];
    while let Some(dir) = pending.pop() {
        for rel in sorted_children(src, &dir)? {
            let entry = rel.display().to_string();
            let full = src.join(&rel);
            let meta = fs::symlink_metadata(&full).map_err(|e| read_error(&full, e))?;
            let info = Meta {
                mode: Some(meta.mode()),
                mtime: meta.modified().ok(),
            };
            let file_type = meta.file_type();
            if file_type.is_dir() {
                tree.add_dir(&entry, &rel, info)?;
                pending.push(rel);
            } else if file_type.is_file() {
                let mut file = open_no_follow(&full)?;
                tree.add_file(&entry, &rel, info, &mut file)?;
            } else if file_type.is_symlink() {
                let target = fs::read_link(&full).map_err(|e| read_error(&full, e))?;
                tree.add_symlink(&entry, &rel, &target)?;
            } else {
                return Err(BundleError::SpecialFile {
                    entry,
                    kind: special_kind(&file_type),
                });
            }
        }
    }
    Ok(())
}

fn sorted_children(src: &Path, dir: &Path) -> Result<Vec<PathBuf>, BundleError> {
    let full = src.join(dir);
    let mut children = Vec::new();
    for child in fs::read_dir(&full).map_err(|e| read_error(&full, e))? {
        let child = child.map_err(|e| read_error(&full, e))?;
        children.push(dir.join(child.file_name()));
    }
    children.sort();
    Ok(children)
}

/// Opens a file that was a regular file a moment ago, without following a link (or blocking on
/// a FIFO) that might have taken its place since.
fn open_no_follow(path: &Path) -> Result<File, BundleError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits())
        .open(path)
        .map_err(|e| read_error(path, e))?;
    let is_file = file.metadata().map(|m| m.is_file()).unwrap_or(false);
    if !is_file {
        return Err(read_error(
            path,
            std::io::Error::other("it changed while being copied"),
        ));
    }
    Ok(file)
}

fn special_kind(file_type: &fs::FileType) -> &'static str {
    if file_type.is_char_device() {
        "character device"
    } else if file_type.is_block_device() {
        "block device"
    } else if file_type.is_fifo() {
        "FIFO (named pipe)"
    } else if file_type.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

fn read_error(path: &Path, source: std::io::Error) -> BundleError {
    BundleError::ReadBundle {
        path: path.to_owned(),
        source,
    }
}
