//! What kind of bundle a file is: told by its first bytes, because a downloaded bundle's name
//! (often `bundle.tar` whatever it holds, as the official agent saves it) cannot be trusted.

use std::fmt;
use std::fs::{self, File};
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use super::BundleError;

/// The kinds of bundle CodeDeploy knows (its `bundleType`), plus a plain directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BundleFormat {
    Directory,
    Zip,
    Tar,
    Tgz,
}

impl BundleFormat {
    /// From the file: a directory, else by magic bytes (zip `PK\x03\x04` or an empty zip,
    /// gzip `1f 8b`, a ustar header, or an old tar header with a valid checksum). The extension
    /// (.zip, .tar, .tgz, .tar.gz) is only a hint: it lets an empty tar (all zero blocks)
    /// through and makes the error clearer; the bytes win when they disagree with it.
    pub fn detect(path: &Path) -> Result<BundleFormat, BundleError> {
        let read_error = |source| BundleError::ReadBundle {
            path: path.to_owned(),
            source,
        };
        let meta = fs::metadata(path).map_err(read_error)?;
        if meta.is_dir() {
            return Ok(BundleFormat::Directory);
        }
        if !meta.is_file() {
            return Err(BundleError::UnknownFormat {
                path: path.to_owned(),
                reason: "it is neither a regular file nor a directory".into(),
            });
        }
        let mut head = Vec::with_capacity(512);
        File::open(path)
            .and_then(|f| f.take(512).read_to_end(&mut head))
            .map_err(read_error)?;
        let hint = Self::from_extension(path);
        if let Some(format) = Self::from_magic(&head) {
            return Ok(format);
        }
        if hint == Some(BundleFormat::Tar) && !head.is_empty() && head.iter().all(|&b| b == 0) {
            return Ok(BundleFormat::Tar);
        }
        Err(BundleError::UnknownFormat {
            path: path.to_owned(),
            reason: describe_unknown(&head, hint),
        })
    }

    /// CodeDeploy's name for the bundle type, as in a revision's `bundleType`.
    pub fn as_str(self) -> &'static str {
        match self {
            BundleFormat::Directory => "directory",
            BundleFormat::Zip => "zip",
            BundleFormat::Tar => "tar",
            BundleFormat::Tgz => "tgz",
        }
    }

    fn from_magic(head: &[u8]) -> Option<BundleFormat> {
        let zip_magic: [&[u8]; 3] = [b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"];
        if zip_magic.iter().any(|magic| head.starts_with(magic)) {
            Some(BundleFormat::Zip)
        } else if head.starts_with(&[0x1f, 0x8b]) {
            Some(BundleFormat::Tgz)
        } else if head.get(257..262) == Some(b"ustar") || is_old_tar_header(head) {
            Some(BundleFormat::Tar)
        } else {
            None
        }
    }

    fn from_extension(path: &Path) -> Option<BundleFormat> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".zip") {
            Some(BundleFormat::Zip)
        } else if name.ends_with(".tgz") || name.ends_with(".tar.gz") {
            Some(BundleFormat::Tgz)
        } else if name.ends_with(".tar") {
            Some(BundleFormat::Tar)
        } else {
            None
        }
    }
}

/// A pre-POSIX tar header has no magic, only a checksum: the sum of its bytes with the checksum
/// field counted as spaces.
fn is_old_tar_header(head: &[u8]) -> bool {
    let Some(block) = head.get(..512) else {
        return false;
    };
    let field = String::from_utf8_lossy(&block[148..156]);
    let Ok(stored) = u32::from_str_radix(field.trim_matches(|c| c == ' ' || c == '\0'), 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    block[0] != 0 && sum == stored
}

fn describe_unknown(head: &[u8], hint: Option<BundleFormat>) -> String {
    if head.is_empty() {
        return "the file is empty".into();
    }
    let first: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let mut reason = format!(
        "its first bytes ({}) are not those of a zip, gzip or tar file",
        first.join(" ")
    );
    if let Some(format) = hint {
        reason.push_str(&format!(", although its name says {format}"));
    }
    if head.trim_ascii_start().starts_with(b"<") {
        reason.push_str(
            "; it looks like an XML or HTML document, such as an error page saved in place \
             of the bundle",
        );
    }
    reason
}

impl fmt::Display for BundleFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// CodeDeploy's `bundleType` values, plus `directory`.
impl FromStr for BundleFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "directory" => Ok(BundleFormat::Directory),
            "zip" => Ok(BundleFormat::Zip),
            "tar" => Ok(BundleFormat::Tar),
            "tgz" | "tar.gz" => Ok(BundleFormat::Tgz),
            _ => Err(format!(
                "'{s}' is not a bundle type: use zip, tar, tgz or directory"
            )),
        }
    }
}
