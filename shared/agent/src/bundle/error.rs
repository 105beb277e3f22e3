//! Why a bundle was refused, in words that name the entry, say what is wrong with it and what to
//! change.

use std::io;
use std::path::PathBuf;

use super::BundleFormat;

/// A bundle that could not be unpacked, or an AppSpec that could not be found in it.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read the bundle {path}: {source}")]
    ReadBundle { path: PathBuf, source: io::Error },

    #[error(
        "{path} is not a bundle cutover can unpack: {reason}; \
         use a directory, a zip, a tar or a gzip-compressed tar (tgz)"
    )]
    UnknownFormat { path: PathBuf, reason: String },

    #[error(
        "{path} is not a readable {format} archive: {reason}; \
         check that the upload finished and that the bundle type is right"
    )]
    Corrupt {
        path: PathBuf,
        format: BundleFormat,
        reason: String,
    },

    #[error(
        "cannot unpack into {path}: {reason}; \
         each deployment needs a new (or empty) deployment-archive directory"
    )]
    ArchiveDir { path: PathBuf, reason: String },

    #[error(
        "bundle entry '{entry}' {reason}; bundle paths must be relative and stay inside \
         the bundle, so rebuild the archive from inside the revision's folder"
    )]
    UnsafePath { entry: String, reason: &'static str },

    #[error(
        "bundle entry '{entry}' is a link to '{target}', which is outside the bundle; \
         make the link relative and pointing inside the bundle, or put the file itself in it"
    )]
    LinkOutside { entry: String, target: String },

    #[error(
        "bundle entry '{entry}' is a hard link to '{target}', {reason}; \
         store the file itself instead of the link"
    )]
    BadHardLink {
        entry: String,
        target: String,
        reason: &'static str,
    },

    #[error(
        "bundle entry '{entry}' is a {kind}; a bundle may hold only files, directories and \
         links, so leave it out of the bundle"
    )]
    SpecialFile { entry: String, kind: &'static str },

    #[error(
        "bundle entry '{entry}' would be written through the link '{link}'; \
         cutover never writes through a link, so store the files under their real directory"
    )]
    ThroughLink { entry: String, link: String },

    #[error("bundle entry '{entry}' conflicts with '{other}': {reason}")]
    Conflict {
        entry: String,
        other: String,
        reason: &'static str,
    },

    #[error(
        "bundle entry '{entry}' is one entry too many: the limit is {limit} entries; \
         raise max_entries if the bundle really holds that many files"
    )]
    TooManyEntries { entry: String, limit: u64 },

    #[error(
        "the zip lists {listed} entries, over the limit of {limit}; \
         raise max_entries if the bundle really holds that many files"
    )]
    TooManyListed { listed: u64, limit: u64 },

    #[error(
        "bundle entry '{entry}' takes the unpacked size over the limit of {limit} bytes; \
         raise max_bytes if the bundle really is that large"
    )]
    TooLarge { entry: String, limit: u64 },

    #[error(
        "the tar headers after {after} take more than {limit} bytes (no real file name is \
         that long); the archive is damaged or hostile"
    )]
    MetadataTooLarge { after: String, limit: u64 },

    #[error("bundle entry '{entry}' cannot be unpacked: {reason}")]
    Unsupported { entry: String, reason: String },

    #[error("bundle entry '{entry}' is damaged: {reason}; rebuild and upload the bundle again")]
    EntryCorrupt { entry: String, reason: String },

    #[error("cannot write bundle entry '{entry}': {source}")]
    Write { entry: String, source: io::Error },

    #[error("cannot finish unpacking into {path}: {source}")]
    Finish { path: PathBuf, source: io::Error },

    #[error("the AppSpec name '{name}' {reason}; give a file name at the bundle root")]
    AppSpecName { name: String, reason: &'static str },

    #[error("no {wanted} at the root of the bundle in {dir}; the root holds {found}{hint}")]
    AppSpecMissing {
        dir: PathBuf,
        wanted: String,
        found: String,
        hint: String,
    },
}

impl BundleError {
    pub(crate) fn write(entry: &str, source: io::Error) -> Self {
        BundleError::Write {
            entry: entry.to_owned(),
            source,
        }
    }
}
