//! Zip bundles. Names are taken as the zip tools on Linux take them: a backslash is a path
//! separator (archives made on Windows use it), so `..\x` is as refused as `../x`. Sizes in the
//! headers are never trusted; the tree counts what is really written. The one number read ahead
//! is how many entries the zip lists, because the zip reader loads that many into memory.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use zip::read::ZipFile;
use zip::result::ZipError;
use zip::{DateTime, System, ZipArchive};

use super::tree::{MAX_LINK_TARGET, Meta, Tree};
use super::{BundleError, BundleFormat};

const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;
const S_IFBLK: u32 = 0o060000;
const S_IFIFO: u32 = 0o010000;
const S_IFSOCK: u32 = 0o140000;

pub(super) fn unpack(path: &Path, tree: &mut Tree) -> Result<(), BundleError> {
    let mut archive = open(path, tree.max_entries())?;
    for index in 0..archive.len() {
        let name = entry_name(&archive, index);
        let mut file = archive.by_index(index).map_err(|e| entry_error(&name, e))?;
        add_entry(&name, &mut file, tree)?;
    }
    Ok(())
}

fn open(path: &Path, max_entries: u64) -> Result<ZipArchive<BufReader<File>>, BundleError> {
    let read_error = |source| BundleError::ReadBundle {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(read_error)?;
    if let Some(listed) = listed_entries(&mut file).map_err(read_error)?
        && listed > max_entries
    {
        return Err(BundleError::TooManyListed {
            listed,
            limit: max_entries,
        });
    }
    file.rewind().map_err(read_error)?;
    ZipArchive::new(BufReader::new(file)).map_err(|e| BundleError::Corrupt {
        path: path.to_owned(),
        format: BundleFormat::Zip,
        reason: e.to_string(),
    })
}

fn add_entry<R: Read>(
    name: &str,
    file: &mut ZipFile<'_, R>,
    tree: &mut Tree,
) -> Result<(), BundleError> {
    let rel = PathBuf::from(name.replace('\\', "/"));
    let mode = match file.system() {
        System::Unix => file.unix_mode(),
        _ => None,
    };
    let meta = Meta {
        mode,
        mtime: file.last_modified().and_then(to_system_time),
    };
    let file_type = mode.map_or(0, |m| m & S_IFMT);
    if name.ends_with('/') || name.ends_with('\\') || file_type == S_IFDIR {
        return tree.add_dir(name, &rel, meta);
    }
    match file_type {
        0 | S_IFREG => tree.add_file(name, &rel, meta, file),
        S_IFLNK => {
            let target = read_link_target(name, file)?;
            tree.add_symlink(name, &rel, &target)
        }
        other => Err(BundleError::SpecialFile {
            entry: name.to_owned(),
            kind: special_kind(other),
        }),
    }
}

/// The entry's name as the zip stores it (UTF-8, or CP437 in old archives), for paths and
/// messages alike.
fn entry_name<R: Read + Seek>(archive: &ZipArchive<R>, index: usize) -> String {
    match archive.name_for_index(index) {
        Some(Ok(name)) => name.into_owned(),
        _ => format!("#{index}"),
    }
}

/// The entry count in the zip's end-of-central-directory record (or its zip64 form), if found.
fn listed_entries(file: &mut File) -> io::Result<Option<u64>> {
    const EOCD: usize = 22;
    const LOCATOR: usize = 20;
    let len = file.metadata()?.len();
    let tail_len = len.min((EOCD + usize::from(u16::MAX) + LOCATOR) as u64);
    file.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0; tail_len as usize];
    file.read_exact(&mut tail)?;
    let Some(at) = tail.windows(4).rposition(|w| w == b"PK\x05\x06") else {
        return Ok(None);
    };
    let Some(count) = tail.get(at + 10..at + 12) else {
        return Ok(None);
    };
    let count = u16::from_le_bytes([count[0], count[1]]);
    if count != u16::MAX {
        return Ok(Some(u64::from(count)));
    }
    let Some(locator) = at.checked_sub(LOCATOR).map(|start| &tail[start..at]) else {
        return Ok(None);
    };
    if &locator[..4] != b"PK\x06\x07" {
        return Ok(None);
    }
    let offset = u64::from_le_bytes(locator[8..16].try_into().unwrap_or_default());
    let mut record = [0; 40];
    file.seek(SeekFrom::Start(offset))?;
    if file.read_exact(&mut record).is_err() || &record[..4] != b"PK\x06\x06" {
        return Ok(None);
    }
    Ok(Some(u64::from_le_bytes(
        record[32..40].try_into().unwrap_or_default(),
    )))
}

fn read_link_target(name: &str, file: &mut dyn Read) -> Result<PathBuf, BundleError> {
    let mut target = Vec::new();
    file.take(MAX_LINK_TARGET as u64 + 1)
        .read_to_end(&mut target)
        .map_err(|e| BundleError::EntryCorrupt {
            entry: name.to_owned(),
            reason: e.to_string(),
        })?;
    if target.len() > MAX_LINK_TARGET {
        return Err(BundleError::Unsupported {
            entry: name.to_owned(),
            reason: "its link target is longer than 4096 bytes".into(),
        });
    }
    Ok(PathBuf::from(OsStr::from_bytes(&target)))
}

fn entry_error(name: &str, error: ZipError) -> BundleError {
    let entry = name.to_owned();
    match error {
        ZipError::UnsupportedArchive(what) if what.contains("assword") => {
            BundleError::Unsupported {
                entry,
                reason: format!("{what}; rebuild the zip without a password"),
            }
        }
        ZipError::UnsupportedArchive(what) => BundleError::Unsupported {
            entry,
            reason: format!("{what}; rebuild the zip with a standard zip tool"),
        },
        ZipError::CompressionMethodNotSupported(method) => BundleError::Unsupported {
            entry,
            reason: format!(
                "compression method {method} is not supported; \
                 rebuild the zip with deflate (the default) or no compression"
            ),
        },
        other => BundleError::EntryCorrupt {
            entry,
            reason: other.to_string(),
        },
    }
}

fn special_kind(file_type: u32) -> &'static str {
    match file_type {
        S_IFCHR => "character device",
        S_IFBLK => "block device",
        S_IFIFO => "FIFO (named pipe)",
        S_IFSOCK => "socket",
        _ => "special file",
    }
}

/// Zip times have no zone; like most unzip tools on servers (which run in UTC), take them as UTC.
fn to_system_time(time: DateTime) -> Option<SystemTime> {
    let days = days_from_civil(
        i64::from(time.year()),
        i64::from(time.month()),
        i64::from(time.day()),
    );
    let secs = days * 86_400
        + i64::from(time.hour()) * 3600
        + i64::from(time.minute()) * 60
        + i64::from(time.second());
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_dates_count_days_from_the_epoch() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
    }
}
