//! Unpacking bundles: the "bundle layout" and "appspec lookup" rows of the conformance table, and
//! the safety rules, each shown with a real archive (zip, tar and tgz, and a directory where it
//! applies) built here, hostile entries included.

use std::fs;
use std::io::{Cursor, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cutover_agent::bundle::{
    BundleError, BundleFormat, BundleLimits, Unpacked, find_appspec, unpack,
};
use flate2::Compression;
use flate2::write::GzEncoder;
use tar::EntryType;
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

const ARCHIVES: [BundleFormat; 3] = [BundleFormat::Zip, BundleFormat::Tar, BundleFormat::Tgz];
const S_IFIFO: u32 = 0o010000;
const S_IFCHR: u32 = 0o020000;
const S_IFSOCK: u32 = 0o140000;

/// One entry of an archive built for a test, hostile or not.
#[derive(Clone, Debug)]
enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32),
    Symlink(&'a str, &'a str),
    /// Tar only.
    HardLink(&'a str, &'a str),
    /// A zip entry with these file type bits; in tar, a FIFO or device of that type.
    Special(&'a str, u32),
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> E<'a> {
    E::File(name, data, 0o644)
}

/// A tar built from raw headers, because `tar::Header::set_path` refuses the names under test.
fn tar_bytes(entries: &[E]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let (header, data): (tar::Header, &[u8]) = match *entry {
            E::Dir(name, mode) => (raw_header(name, EntryType::Directory, 0, mode, ""), b""),
            E::File(name, data, mode) => (
                raw_header(name, EntryType::Regular, data.len() as u64, mode, ""),
                data,
            ),
            E::Symlink(name, target) => {
                (raw_header(name, EntryType::Symlink, 0, 0o777, target), b"")
            }
            E::HardLink(name, target) => (raw_header(name, EntryType::Link, 0, 0o644, target), b""),
            E::Special(name, bits) => {
                let kind = match bits {
                    S_IFCHR => EntryType::Char,
                    _ => EntryType::Fifo,
                };
                (raw_header(name, kind, 0, 0o644, ""), b"")
            }
        };
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn raw_header(name: &str, kind: EntryType, size: u64, mode: u32, link: &str) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    let old = header.as_old_mut();
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(12345);
    header.set_gid(12345);
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    header
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn zip_bytes(entries: &[E]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default();
    for entry in entries {
        match *entry {
            E::Dir(name, mode) => zip
                .add_directory(name, opts.unix_permissions(mode))
                .unwrap(),
            E::File(name, data, mode) => {
                zip.start_file(name, opts.unix_permissions(mode)).unwrap();
                zip.write_all(data).unwrap();
            }
            E::Symlink(name, target) => zip.add_symlink(name, target, opts).unwrap(),
            E::HardLink(..) => panic!("zip has no hard links"),
            E::Special(name, bits) => {
                let attributes = (bits | 0o644) << 16;
                zip.start_file(name, opts.external_attributes(attributes))
                    .unwrap();
            }
        }
    }
    zip.finish().unwrap().into_inner()
}

fn archive_bytes(format: BundleFormat, entries: &[E]) -> Vec<u8> {
    match format {
        BundleFormat::Zip => zip_bytes(entries),
        BundleFormat::Tar => tar_bytes(entries),
        BundleFormat::Tgz => gzip(&tar_bytes(entries)),
        BundleFormat::Directory => panic!("use make_dir_bundle"),
    }
}

/// A test's folder: the bundle is written in it, and the archive goes to
/// `deploy/deployment-archive` so that `deploy/` shows anything written beside it.
struct Case {
    tmp: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        Case {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    fn archive_dir(&self) -> PathBuf {
        self.path().join("deploy/deployment-archive")
    }

    fn write_archive(&self, format: BundleFormat, bytes: &[u8]) -> PathBuf {
        let path = self.path().join(format!("bundle.{format}"));
        fs::write(&path, bytes).unwrap();
        path
    }

    fn unpack(&self, format: BundleFormat, entries: &[E]) -> Result<Unpacked, BundleError> {
        self.unpack_with(format, entries, &BundleLimits::default())
    }

    fn unpack_with(
        &self,
        format: BundleFormat,
        entries: &[E],
        limits: &BundleLimits,
    ) -> Result<Unpacked, BundleError> {
        let bundle = self.write_archive(format, &archive_bytes(format, entries));
        unpack(&bundle, format, &self.archive_dir(), limits)
    }

    fn unpack_bytes(&self, format: BundleFormat, bytes: &[u8]) -> Result<Unpacked, BundleError> {
        let bundle = self.write_archive(format, bytes);
        unpack(
            &bundle,
            format,
            &self.archive_dir(),
            &BundleLimits::default(),
        )
    }

    /// Unpacks the directory `src` (made with [`make_dir_bundle`]).
    fn unpack_dir(&self, src: &Path, limits: &BundleLimits) -> Result<Unpacked, BundleError> {
        unpack(src, BundleFormat::Directory, &self.archive_dir(), limits)
    }

    fn archived(&self, rel: &str) -> PathBuf {
        self.archive_dir().join(rel)
    }

    /// The error, after checking that nothing is left: no archive directory and nothing beside
    /// it (no staging directory either).
    fn refused(&self, result: Result<Unpacked, BundleError>, entry: &str) -> BundleError {
        let err = match result {
            Ok(unpacked) => panic!("expected a refusal naming '{entry}', got {unpacked:?}"),
            Err(err) => err,
        };
        assert!(
            err.to_string().contains(&format!("'{entry}'")),
            "the message should name '{entry}': {err}"
        );
        assert!(!self.archive_dir().exists(), "{err}");
        let left: Vec<_> = fs::read_dir(self.path().join("deploy"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        err
    }
}

/// Lays out a directory bundle under `case/src`.
fn make_dir_bundle(case: &Case, files: &[(&str, &[u8], u32)], links: &[(&str, &str)]) -> PathBuf {
    let src = case.path().join("src");
    fs::create_dir_all(&src).unwrap();
    for (name, data, mode) in files {
        let path = src.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, data).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(*mode)).unwrap();
    }
    for (name, target) in links {
        let path = src.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, path).unwrap();
    }
    src
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

// ---- bundle layout --------------------------------------------------------------------------

#[test]
fn bundle_layout_zip_tar_and_tgz_unpack_files_directories_modes_and_links() {
    for format in ARCHIVES {
        let case = Case::new();
        let unpacked = case
            .unpack(
                format,
                &[
                    file("appspec.yml", b"version: 0.0\n"),
                    E::Dir("scripts/", 0o755),
                    E::File("scripts/start.sh", b"#!/bin/sh\n", 0o755),
                    E::File("config/app.conf", b"port=80\n", 0o640),
                    E::Symlink("current.conf", "config/app.conf"),
                    E::Symlink("scripts/conf", "../config"),
                ],
            )
            .unwrap();
        assert_eq!(unpacked.stripped_top_level, None, "{format}");
        assert_eq!(unpacked.entries, 6, "{format}");
        assert_eq!(unpacked.bytes, 31, "{format}");
        assert_eq!(read(&case.archived("appspec.yml")), "version: 0.0\n");
        assert_eq!(
            mode_of(&case.archived("scripts/start.sh")),
            0o755,
            "{format}"
        );
        assert_eq!(
            mode_of(&case.archived("config/app.conf")),
            0o640,
            "{format}"
        );
        assert_eq!(mode_of(&case.archived("appspec.yml")), 0o644, "{format}");
        assert_eq!(
            fs::read_link(case.archived("current.conf")).unwrap(),
            Path::new("config/app.conf")
        );
        assert_eq!(read(&case.archived("scripts/conf/app.conf")), "port=80\n");
        assert_eq!(mode_of(&case.archive_dir()), 0o755, "{format}");
    }
}

#[test]
fn bundle_layout_a_single_top_level_folder_holding_the_appspec_becomes_the_root() {
    for format in ARCHIVES {
        for appspec in ["myapp/appspec.yml", "myapp/AppSpec.YAML"] {
            let case = Case::new();
            let unpacked = case
                .unpack(
                    format,
                    &[
                        E::Dir("myapp/", 0o755),
                        file(appspec, b"version: 0.0\n"),
                        E::File("myapp/scripts/start.sh", b"#!/bin/sh\n", 0o755),
                        E::Symlink("myapp/start", "scripts/start.sh"),
                    ],
                )
                .unwrap();
            assert_eq!(unpacked.stripped_top_level.as_deref(), Some("myapp"));
            let name = appspec.strip_prefix("myapp/").unwrap();
            assert!(case.archived(name).is_file(), "{format} {appspec}");
            assert!(case.archived("scripts/start.sh").is_file());
            assert_eq!(read(&case.archived("start")), "#!/bin/sh\n");
            assert!(!case.archived("myapp").exists());
            assert_eq!(mode_of(&case.archive_dir()), 0o755);
        }
    }
}

#[test]
fn bundle_layout_a_directory_bundle_with_a_single_folder_holding_the_appspec_is_stripped_too() {
    let case = Case::new();
    let src = make_dir_bundle(&case, &[("app/appspec.yml", b"version: 0.0\n", 0o644)], &[]);
    let unpacked = case.unpack_dir(&src, &BundleLimits::default()).unwrap();
    assert_eq!(unpacked.stripped_top_level.as_deref(), Some("app"));
    assert!(case.archived("appspec.yml").is_file());
}

#[test]
fn bundle_layout_a_single_top_level_folder_without_an_appspec_is_kept() {
    for format in ARCHIVES {
        let case = Case::new();
        let unpacked = case
            .unpack(format, &[file("site/index.html", b"<html/>")])
            .unwrap();
        assert_eq!(unpacked.stripped_top_level, None);
        assert!(case.archived("site/index.html").is_file(), "{format}");
    }
}

#[test]
fn bundle_layout_a_folder_with_an_appspec_beside_other_entries_is_kept() {
    for format in ARCHIVES {
        let case = Case::new();
        let unpacked = case
            .unpack(
                format,
                &[file("app/appspec.yml", b"x"), file("README", b"y")],
            )
            .unwrap();
        assert_eq!(unpacked.stripped_top_level, None);
        assert!(case.archived("app/appspec.yml").is_file(), "{format}");
        assert!(case.archived("README").is_file(), "{format}");
    }
}

#[test]
fn bundle_layout_long_names_from_gnu_and_pax_headers_unpack() {
    let deep = format!("{}/file.txt", "very-long-directory-name".repeat(8));
    let pax_name = format!("{}/pax.txt", "p".repeat(150));
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, &deep, &b"gnu"[..])
        .unwrap();
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(EntryType::Symlink);
    link.set_size(0);
    link.set_mode(0o777);
    builder.append_link(&mut link, "link", &deep).unwrap();
    // A PAX record, "<length> path=<value>\n", where the length counts the whole record.
    let record_tail = format!(" path={pax_name}\n");
    let mut len = record_tail.len() + 1;
    while format!("{len}{record_tail}").len() != len {
        len += 1;
    }
    let record = format!("{len}{record_tail}");
    let pax = raw_header(
        "PaxHeader",
        EntryType::XHeader,
        record.len() as u64,
        0o644,
        "",
    );
    builder.append(&pax, record.as_bytes()).unwrap();
    let short = raw_header("truncated", EntryType::Regular, 3, 0o644, "");
    builder.append(&short, &b"pax"[..]).unwrap();
    let tar = builder.into_inner().unwrap();

    for (format, bytes) in [
        (BundleFormat::Tar, tar.clone()),
        (BundleFormat::Tgz, gzip(&tar)),
    ] {
        let case = Case::new();
        case.unpack_bytes(format, &bytes).unwrap();
        assert_eq!(read(&case.archived(&deep)), "gnu");
        assert_eq!(read(&case.archived("link")), "gnu");
        assert_eq!(read(&case.archived(&pax_name)), "pax");
        assert!(!case.archived("truncated").exists());
    }
}

#[test]
fn bundle_layout_directory_bundles_are_copied_not_linked() {
    let case = Case::new();
    let src = make_dir_bundle(
        &case,
        &[
            ("appspec.yml", b"version: 0.0\n", 0o644),
            ("scripts/start.sh", b"#!/bin/sh\n", 0o755),
        ],
        &[("start", "scripts/start.sh")],
    );
    let unpacked = case.unpack_dir(&src, &BundleLimits::default()).unwrap();
    assert_eq!(unpacked.entries, 4); // appspec.yml, scripts/, scripts/start.sh, start
    let copy = case.archived("scripts/start.sh");
    assert_eq!(mode_of(&copy), 0o755);
    assert_ne!(
        fs::metadata(&copy).unwrap().ino(),
        fs::metadata(src.join("scripts/start.sh")).unwrap().ino()
    );
    fs::write(src.join("scripts/start.sh"), "changed").unwrap();
    assert_eq!(read(&copy), "#!/bin/sh\n");
    assert_eq!(
        fs::read_link(case.archived("start")).unwrap(),
        Path::new("scripts/start.sh")
    );
}

#[test]
fn bundle_layout_a_zip_made_on_windows_with_backslashes_unpacks_into_folders() {
    let case = Case::new();
    case.unpack(
        BundleFormat::Zip,
        &[file("appspec.yml", b"x"), file("scripts\\start.sh", b"y")],
    )
    .unwrap();
    assert_eq!(read(&case.archived("scripts/start.sh")), "y");
}

#[test]
fn an_empty_existing_archive_dir_is_used_and_a_non_empty_one_refused() {
    let case = Case::new();
    fs::create_dir_all(case.archive_dir()).unwrap();
    case.unpack(BundleFormat::Tar, &[file("appspec.yml", b"x")])
        .unwrap();
    assert!(case.archived("appspec.yml").is_file());

    let err = case
        .unpack(BundleFormat::Tar, &[file("other", b"y")])
        .unwrap_err();
    assert!(matches!(err, BundleError::ArchiveDir { .. }), "{err}");
    assert!(err.to_string().contains("already holds files"), "{err}");
    assert!(case.archived("appspec.yml").is_file(), "left as it was");
    assert!(!case.archived("other").exists());
}

// ---- paths ----------------------------------------------------------------------------------

#[test]
fn absolute_entry_paths_are_refused() {
    for format in ARCHIVES {
        let case = Case::new();
        let target = case.path().join("outside/evil");
        let name = target.to_str().unwrap().to_owned();
        let err = case.refused(
            case.unpack(format, &[file("ok", b"x"), file(&name, b"pwned")]),
            &name,
        );
        assert!(matches!(err, BundleError::UnsafePath { .. }), "{err}");
        assert!(err.to_string().contains("absolute"), "{err}");
        assert!(!target.exists(), "{format}");
    }
}

#[test]
fn entry_paths_with_parent_components_are_refused() {
    for format in ARCHIVES {
        for name in ["../evil", "a/../../evil", "a/../b"] {
            let case = Case::new();
            let err = case.refused(case.unpack(format, &[file(name, b"pwned")]), name);
            assert!(matches!(err, BundleError::UnsafePath { .. }), "{err}");
            assert!(err.to_string().contains(".."), "{err}");
            assert!(!case.path().join("deploy/evil").exists());
            assert!(!case.path().join("evil").exists());
        }
    }
}

#[test]
fn zip_backslashes_cannot_sneak_in_parent_components() {
    for name in ["..\\evil", "a\\..\\..\\evil", "\\evil"] {
        let case = Case::new();
        let err = case.refused(case.unpack(BundleFormat::Zip, &[file(name, b"x")]), name);
        assert!(matches!(err, BundleError::UnsafePath { .. }), "{err}");
        assert!(!case.path().join("deploy/evil").exists());
    }
}

// ---- links ----------------------------------------------------------------------------------

#[test]
fn symlinks_pointing_outside_the_bundle_are_refused() {
    for format in ARCHIVES {
        // The link is in sub/, so one ".." is still inside and two are not.
        for target in [
            "/etc/passwd",
            "../../outside",
            "../sub/../../x",
            "./.././..",
        ] {
            let case = Case::new();
            let err = case.refused(
                case.unpack(
                    format,
                    &[E::Dir("sub/", 0o755), E::Symlink("sub/link", target)],
                ),
                "sub/link",
            );
            assert!(matches!(err, BundleError::LinkOutside { .. }), "{err}");
            assert!(err.to_string().contains(target), "{err}");
        }
    }
}

#[test]
fn symlinks_in_a_directory_bundle_pointing_outside_it_are_refused() {
    for target in ["/etc/passwd", "../../outside"] {
        let case = Case::new();
        let src = make_dir_bundle(
            &case,
            &[("appspec.yml", b"x", 0o644)],
            &[("a/link", target)],
        );
        let err = case.refused(case.unpack_dir(&src, &BundleLimits::default()), "a/link");
        assert!(matches!(err, BundleError::LinkOutside { .. }), "{err}");
    }
}

#[test]
fn a_chain_of_links_that_climbs_out_is_refused() {
    // x/y/up points at the bundle root, so "x/y/up/.." is its parent, although by name alone it
    // is x/y, inside.
    let entries = [
        E::Dir("x/y/", 0o755),
        E::Symlink("x/y/up", "../.."),
        E::Symlink("esc", "x/y/up/.."),
    ];
    for format in ARCHIVES {
        let case = Case::new();
        let err = case.refused(case.unpack(format, &entries), "esc");
        assert!(matches!(err, BundleError::LinkOutside { .. }), "{err}");
    }
    let case = Case::new();
    let src = make_dir_bundle(
        &case,
        &[("x/y/f", b"", 0o644)],
        &[("x/y/up", "../.."), ("esc", "x/y/up/..")],
    );
    case.refused(case.unpack_dir(&src, &BundleLimits::default()), "esc");
}

#[test]
fn a_link_that_only_stays_inside_through_the_stripped_folder_is_refused() {
    for format in ARCHIVES {
        let case = Case::new();
        let err = case.refused(
            case.unpack(
                format,
                &[
                    file("app/appspec.yml", b"x"),
                    E::Symlink("app/spec", "../app/appspec.yml"),
                ],
            ),
            "app/spec",
        );
        assert!(matches!(err, BundleError::LinkOutside { .. }), "{err}");
    }
}

#[test]
fn hard_links_inside_the_bundle_are_kept_as_links() {
    for format in [BundleFormat::Tar, BundleFormat::Tgz] {
        let case = Case::new();
        case.unpack(
            format,
            &[
                E::File("bin/tool", b"#!/bin/sh\n", 0o755),
                E::HardLink("bin/tool-alias", "bin/tool"),
            ],
        )
        .unwrap();
        let a = fs::metadata(case.archived("bin/tool")).unwrap();
        let b = fs::metadata(case.archived("bin/tool-alias")).unwrap();
        assert_eq!(a.ino(), b.ino(), "{format}");
    }
}

#[test]
fn hard_links_pointing_outside_the_bundle_are_refused() {
    for format in [BundleFormat::Tar, BundleFormat::Tgz] {
        for target in ["/etc/passwd", "../outside"] {
            let case = Case::new();
            fs::write(case.path().join("outside"), "secret").unwrap();
            let err = case.refused(
                case.unpack(format, &[E::HardLink("passwd", target)]),
                "passwd",
            );
            assert!(matches!(err, BundleError::LinkOutside { .. }), "{err}");
        }
    }
}

#[test]
fn a_hard_link_to_a_file_not_yet_in_the_bundle_is_refused() {
    let case = Case::new();
    let err = case.refused(
        case.unpack(BundleFormat::Tar, &[E::HardLink("alias", "missing")]),
        "alias",
    );
    assert!(matches!(err, BundleError::BadHardLink { .. }), "{err}");
}

// ---- never through a link -------------------------------------------------------------------

#[test]
fn entries_are_never_written_through_a_symlink() {
    for format in ARCHIVES {
        // Even a link that points inside cannot be written through: "a/x" must not land in "b".
        let case = Case::new();
        let err = case.refused(
            case.unpack(
                format,
                &[
                    E::Dir("b/", 0o755),
                    E::Symlink("a", "b"),
                    file("a/x", b"through"),
                ],
            ),
            "a/x",
        );
        assert!(matches!(err, BundleError::ThroughLink { .. }), "{err}");

        // A link to /etc is refused before anything could be written through it.
        let case = Case::new();
        let err = case.refused(
            case.unpack(format, &[E::Symlink("a", "/etc"), file("a/x", b"pwned")]),
            "a",
        );
        assert!(matches!(err, BundleError::LinkOutside { .. }), "{err}");
    }
}

#[test]
fn a_later_entry_replaces_an_earlier_one_as_tar_does() {
    for format in [BundleFormat::Tar, BundleFormat::Tgz] {
        let case = Case::new();
        case.unpack(
            format,
            &[file("conf", b"one"), E::File("conf", b"two", 0o600)],
        )
        .unwrap();
        assert_eq!(read(&case.archived("conf")), "two");
        assert_eq!(mode_of(&case.archived("conf")), 0o600);
    }
}

#[test]
fn a_later_entry_replaces_a_link_without_writing_through_it() {
    for format in [BundleFormat::Tar, BundleFormat::Tgz] {
        let case = Case::new();
        case.unpack(
            format,
            &[
                file("secret", b"keep"),
                E::Symlink("conf", "secret"),
                file("conf", b"new"),
            ],
        )
        .unwrap();
        assert!(
            fs::symlink_metadata(case.archived("conf"))
                .unwrap()
                .is_file()
        );
        assert_eq!(read(&case.archived("conf")), "new");
        assert_eq!(read(&case.archived("secret")), "keep");
    }
}

#[test]
fn a_zip_with_duplicate_names_is_unpacked_last_wins_without_writing_through_a_link() {
    // The zip writer refuses duplicate names, so equal-length placeholders are renamed in the
    // bytes, in both the local headers and the central directory.
    let bytes = zip_bytes(&[
        file("secret", b"keep"),
        E::Symlink("confA", "secret"),
        file("confB", b"new"),
    ]);
    let bytes = replace_all(&replace_all(&bytes, b"confA", b"conf1"), b"confB", b"conf1");
    let case = Case::new();
    case.unpack_bytes(BundleFormat::Zip, &bytes).unwrap();
    assert!(
        fs::symlink_metadata(case.archived("conf1"))
            .unwrap()
            .is_file()
    );
    assert_eq!(read(&case.archived("conf1")), "new");
    assert_eq!(read(&case.archived("secret")), "keep");
}

#[test]
fn a_directory_is_not_replaced_by_a_later_file() {
    let case = Case::new();
    let err = case.refused(
        case.unpack(
            BundleFormat::Tar,
            &[file("d/inner", b"x"), file("d", b"file now")],
        ),
        "d",
    );
    assert!(matches!(err, BundleError::Conflict { .. }), "{err}");
}

// ---- special files --------------------------------------------------------------------------

#[test]
fn devices_and_fifos_are_refused() {
    for format in ARCHIVES {
        for (bits, kind) in [(S_IFIFO, "FIFO"), (S_IFCHR, "character device")] {
            let case = Case::new();
            let err = case.refused(
                case.unpack(format, &[file("ok", b"x"), E::Special("dev/thing", bits)]),
                "dev/thing",
            );
            assert!(matches!(err, BundleError::SpecialFile { .. }), "{err}");
            assert!(err.to_string().contains(kind), "{err}");
        }
    }
}

#[test]
fn a_zip_socket_entry_is_refused() {
    let case = Case::new();
    let err = case.refused(
        case.unpack(BundleFormat::Zip, &[E::Special("sock", S_IFSOCK)]),
        "sock",
    );
    assert!(err.to_string().contains("socket"), "{err}");
}

#[test]
fn fifos_and_sockets_in_a_directory_bundle_are_refused() {
    let case = Case::new();
    let src = make_dir_bundle(&case, &[("appspec.yml", b"x", 0o644)], &[]);
    nix::unistd::mkfifo(&src.join("pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let err = case.refused(case.unpack_dir(&src, &BundleLimits::default()), "pipe");
    assert!(err.to_string().contains("FIFO"), "{err}");

    fs::remove_file(src.join("pipe")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap();
    let err = case.refused(case.unpack_dir(&src, &BundleLimits::default()), "sock");
    assert!(err.to_string().contains("socket"), "{err}");
}

// ---- modes and owners -----------------------------------------------------------------------

#[test]
fn setuid_setgid_and_sticky_bits_and_owners_are_not_applied() {
    for format in ARCHIVES {
        let case = Case::new();
        case.unpack(
            format,
            &[
                E::Dir("shared/", 0o1777),
                E::File("shared/tool", b"x", 0o6755),
                E::File("readonly", b"y", 0o444),
            ],
        )
        .unwrap();
        assert_eq!(mode_of(&case.archived("shared/tool")), 0o755, "{format}");
        assert_eq!(mode_of(&case.archived("shared")), 0o777, "{format}");
        assert_eq!(mode_of(&case.archived("readonly")), 0o444, "{format}");
        let owner = fs::metadata(case.archived("shared/tool")).unwrap().uid();
        assert_eq!(owner, nix::unistd::getuid().as_raw(), "{format}");
    }
}

#[test]
fn a_read_only_directory_still_gets_its_contents_and_stays_usable_by_its_owner() {
    for format in ARCHIVES {
        let case = Case::new();
        case.unpack(format, &[E::Dir("ro/", 0o555), file("ro/f", b"x")])
            .unwrap();
        assert_eq!(read(&case.archived("ro/f")), "x");
        assert_eq!(mode_of(&case.archived("ro")), 0o755, "{format}");
    }
}

// ---- limits ---------------------------------------------------------------------------------

#[test]
fn too_many_entries_are_refused_naming_the_entry_that_crossed_the_limit() {
    let limits = BundleLimits {
        max_entries: 3,
        ..BundleLimits::default()
    };
    let entries = [
        file("f1", b""),
        file("f2", b""),
        file("f3", b""),
        file("f4", b""),
    ];
    // A zip is refused from the count it lists, before anything is written (next test).
    for format in [BundleFormat::Tar, BundleFormat::Tgz] {
        let case = Case::new();
        let err = case.refused(case.unpack_with(format, &entries, &limits), "f4");
        assert!(
            matches!(err, BundleError::TooManyEntries { limit: 3, .. }),
            "{err}"
        );
    }
    let case = Case::new();
    let src = make_dir_bundle(
        &case,
        &[
            ("f1", b"", 0o644),
            ("f2", b"", 0o644),
            ("f3", b"", 0o644),
            ("f4", b"", 0o644),
        ],
        &[],
    );
    case.refused(case.unpack_dir(&src, &limits), "f4");
}

#[test]
fn a_zip_listing_too_many_entries_is_refused_before_its_directory_is_loaded() {
    let limits = BundleLimits {
        max_entries: 3,
        ..BundleLimits::default()
    };
    let entries = [
        file("f1", b""),
        file("f2", b""),
        file("f3", b""),
        file("f4", b""),
    ];
    let case = Case::new();
    let err = case
        .unpack_with(BundleFormat::Zip, &entries, &limits)
        .unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::TooManyListed {
                listed: 4,
                limit: 3
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("max_entries"), "{err}");
    assert!(!case.archive_dir().exists());

    // Exactly at the limit is fine.
    let case = Case::new();
    let unpacked = case
        .unpack_with(BundleFormat::Zip, &entries[..3], &limits)
        .unwrap();
    assert_eq!(unpacked.entries, 3);
}

#[test]
fn a_zip64_listing_too_many_entries_is_refused_too() {
    // Past 65,535 entries the count moves to the zip64 end-of-directory record, found through a
    // locator just before the classic record, which says 0xffff. Only these three records are
    // needed for the count: the refusal comes before the rest is read.
    let listed: u64 = 5_000_000;
    let mut bytes = Vec::new();
    bytes.extend(b"PK\x06\x06");
    bytes.extend(44u64.to_le_bytes());
    bytes.extend([45, 3, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    bytes.extend(listed.to_le_bytes()); // on this disk
    bytes.extend(listed.to_le_bytes()); // in all
    bytes.extend(0u64.to_le_bytes()); // directory size
    bytes.extend(0u64.to_le_bytes()); // directory offset
    bytes.extend(b"PK\x06\x07");
    bytes.extend(0u32.to_le_bytes());
    bytes.extend(0u64.to_le_bytes()); // where the zip64 record is
    bytes.extend(1u32.to_le_bytes());
    bytes.extend(b"PK\x05\x06");
    bytes.extend([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    bytes.extend([0xff; 8]);
    bytes.extend([0, 0]);
    let case = Case::new();
    let err = case.unpack_bytes(BundleFormat::Zip, &bytes).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::TooManyListed {
                listed: 5_000_000,
                limit: 100_000
            }
        ),
        "{err}"
    );
}

#[test]
fn too_many_bytes_are_refused_naming_the_entry_that_crossed_the_limit() {
    let limits = BundleLimits {
        max_bytes: 1000,
        ..BundleLimits::default()
    };
    let entries = [file("small", &[7; 600]), file("big", &[7; 600])];
    for format in ARCHIVES {
        let case = Case::new();
        let err = case.refused(case.unpack_with(format, &entries, &limits), "big");
        assert!(
            matches!(err, BundleError::TooLarge { limit: 1000, .. }),
            "{err}"
        );
    }
    let case = Case::new();
    let src = make_dir_bundle(
        &case,
        &[("small", &[7; 600], 0o644), ("z", &[7; 600], 0o644)],
        &[],
    );
    case.refused(case.unpack_dir(&src, &limits), "z");
}

#[test]
fn a_compression_bomb_is_stopped_at_the_limit() {
    static ZEROS: [u8; 16 << 20] = [0; 16 << 20];
    let limits = BundleLimits {
        max_bytes: 1 << 20,
        ..BundleLimits::default()
    };
    for format in [BundleFormat::Zip, BundleFormat::Tgz] {
        let case = Case::new();
        let bytes = archive_bytes(format, &[file("bomb.bin", &ZEROS)]);
        assert!(bytes.len() < 200_000, "{format}: {}", bytes.len());
        let bundle = case.write_archive(format, &bytes);
        let err = case.refused(
            unpack(&bundle, format, &case.archive_dir(), &limits),
            "bomb.bin",
        );
        assert!(matches!(err, BundleError::TooLarge { .. }), "{err}");
    }
}

#[test]
fn a_zip_that_lies_about_its_sizes_is_still_stopped() {
    static ZEROS: [u8; 4 << 20] = [0; 4 << 20];
    let limits = BundleLimits {
        max_bytes: 1 << 20,
        ..BundleLimits::default()
    };
    // Whatever the headers claim, the data decides: a claim too small is caught where the data
    // runs past it, and under a claim too large the limit still counts the bytes really written.
    for claimed in [100u32, 0x7fff_0000] {
        let mut bytes = zip_bytes(&[file("liar.bin", &ZEROS)]);
        // The uncompressed size, in the local header (offset 22) and the central directory
        // header (offset 24 from its signature).
        bytes[22..26].copy_from_slice(&claimed.to_le_bytes());
        let central = find(&bytes, b"PK\x01\x02").unwrap();
        bytes[central + 24..central + 28].copy_from_slice(&claimed.to_le_bytes());
        let case = Case::new();
        let bundle = case.write_archive(BundleFormat::Zip, &bytes);
        let err = case.refused(
            unpack(&bundle, BundleFormat::Zip, &case.archive_dir(), &limits),
            "liar.bin",
        );
        if claimed == 100 {
            assert!(matches!(err, BundleError::EntryCorrupt { .. }), "{err}");
        } else {
            assert!(matches!(err, BundleError::TooLarge { .. }), "{err}");
        }
    }
}

#[test]
fn a_tar_long_name_too_large_to_be_real_is_refused_before_it_is_read_into_memory() {
    let mut builder = tar::Builder::new(Vec::new());
    let long = vec![b'a'; 2 << 20];
    let mut header = raw_header(
        "././@LongLink",
        EntryType::GNULongName,
        long.len() as u64,
        0o644,
        "",
    );
    header.set_cksum();
    builder.append(&header, &long[..]).unwrap();
    builder
        .append(
            &raw_header("short", EntryType::Regular, 1, 0o644, ""),
            &b"x"[..],
        )
        .unwrap();
    let tar = builder.into_inner().unwrap();
    for (format, bytes) in [
        (BundleFormat::Tar, tar.clone()),
        (BundleFormat::Tgz, gzip(&tar)),
    ] {
        let case = Case::new();
        let result = case.unpack_bytes(format, &bytes);
        let err = result.unwrap_err();
        assert!(matches!(err, BundleError::MetadataTooLarge { .. }), "{err}");
        assert!(err.to_string().contains("the start"), "{err}");
        assert!(!case.archive_dir().exists());
    }
}

// ---- formats --------------------------------------------------------------------------------

#[test]
fn detect_goes_by_the_bytes_not_the_name() {
    let case = Case::new();
    let write = |name: &str, bytes: &[u8]| {
        let path = case.path().join(name);
        fs::write(&path, bytes).unwrap();
        path
    };
    let zip = zip_bytes(&[file("a", b"x")]);
    let tar = tar_bytes(&[file("a", b"x")]);
    assert_eq!(
        BundleFormat::detect(&write("b.zip", &zip)).unwrap(),
        BundleFormat::Zip
    );
    assert_eq!(
        BundleFormat::detect(&write("bundle.tar", &zip)).unwrap(),
        BundleFormat::Zip
    );
    assert_eq!(
        BundleFormat::detect(&write("b.tar", &tar)).unwrap(),
        BundleFormat::Tar
    );
    assert_eq!(
        BundleFormat::detect(&write("b.tgz", &gzip(&tar))).unwrap(),
        BundleFormat::Tgz
    );
    assert_eq!(
        BundleFormat::detect(&write("b.bin", &gzip(&tar))).unwrap(),
        BundleFormat::Tgz
    );
    assert_eq!(
        BundleFormat::detect(case.path()).unwrap(),
        BundleFormat::Directory
    );

    let empty_zip = ZipWriter::new(Cursor::new(Vec::new()))
        .finish()
        .unwrap()
        .into_inner();
    assert_eq!(
        BundleFormat::detect(&write("e.zip", &empty_zip)).unwrap(),
        BundleFormat::Zip
    );

    // A pre-POSIX tar has no magic, only a checksum.
    let mut old = tar::Header::new_old();
    old.set_path("a").unwrap();
    old.set_size(0);
    old.set_cksum();
    let mut v7 = old.as_bytes().to_vec();
    v7.extend([0; 1024]);
    assert_eq!(
        BundleFormat::detect(&write("old", &v7)).unwrap(),
        BundleFormat::Tar
    );

    // An empty tar is all zeros: only its name says what it is.
    let empty_tar = write("empty.tar", &[0; 10240]);
    assert_eq!(BundleFormat::detect(&empty_tar).unwrap(), BundleFormat::Tar);
    let unpacked = unpack(
        &empty_tar,
        BundleFormat::Tar,
        &case.archive_dir(),
        &BundleLimits::default(),
    )
    .unwrap();
    assert_eq!(unpacked.entries, 0);
}

#[test]
fn detect_explains_what_is_not_a_bundle() {
    let case = Case::new();
    let page = case.path().join("bundle.zip");
    fs::write(
        &page,
        "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code></Error>",
    )
    .unwrap();
    let err = BundleFormat::detect(&page).unwrap_err().to_string();
    assert!(
        err.contains("bundle.zip") && err.contains("its name says zip"),
        "{err}"
    );
    assert!(err.contains("error page"), "{err}");

    let empty = case.path().join("empty.tgz");
    fs::write(&empty, "").unwrap();
    let err = BundleFormat::detect(&empty).unwrap_err().to_string();
    assert!(err.contains("empty"), "{err}");

    let missing = BundleFormat::detect(&case.path().join("nope")).unwrap_err();
    assert!(
        matches!(missing, BundleError::ReadBundle { .. }),
        "{missing}"
    );
}

#[test]
fn a_damaged_archive_is_refused_as_damaged_and_leaves_nothing() {
    let zip = zip_bytes(&[file("appspec.yml", b"version: 0.0\n")]);
    let tgz = gzip(&tar_bytes(&[file("appspec.yml", &[b'x'; 5000])]));
    for (format, bytes) in [
        (BundleFormat::Zip, &zip[..zip.len() / 2]),
        (BundleFormat::Tgz, &tgz[..tgz.len() / 2]),
        (BundleFormat::Zip, &tgz[..]),
    ] {
        let case = Case::new();
        let err = case.unpack_bytes(format, bytes).unwrap_err();
        assert!(
            matches!(
                err,
                BundleError::Corrupt { .. } | BundleError::EntryCorrupt { .. }
            ),
            "{format}: {err}"
        );
        assert!(!case.archive_dir().exists());
    }
}

#[test]
fn a_directory_bundle_cannot_be_unpacked_into_itself() {
    let case = Case::new();
    fs::create_dir_all(case.path().join("deploy")).unwrap();
    let err = unpack(
        case.path(),
        BundleFormat::Directory,
        &case.archive_dir(),
        &BundleLimits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, BundleError::ArchiveDir { .. }), "{err}");
    assert!(!case.archive_dir().exists());
}

#[test]
fn bundle_types_parse_from_codedeploys_names() {
    for (name, format) in [
        ("zip", BundleFormat::Zip),
        ("tar", BundleFormat::Tar),
        ("tgz", BundleFormat::Tgz),
        ("TGZ", BundleFormat::Tgz),
        ("directory", BundleFormat::Directory),
    ] {
        assert_eq!(name.parse::<BundleFormat>().unwrap(), format);
    }
    assert!(
        "rar"
            .parse::<BundleFormat>()
            .unwrap_err()
            .contains("zip, tar, tgz")
    );
}

// ---- appspec lookup -------------------------------------------------------------------------

#[test]
fn appspec_lookup_prefers_yaml_then_yml() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("appspec.yml"), "a").unwrap();
    assert_eq!(
        find_appspec(tmp.path(), None).unwrap(),
        tmp.path().join("appspec.yml")
    );
    fs::write(tmp.path().join("appspec.yaml"), "b").unwrap();
    assert_eq!(
        find_appspec(tmp.path(), None).unwrap(),
        tmp.path().join("appspec.yaml")
    );
}

#[test]
fn appspec_lookup_uses_the_name_given_which_must_exist() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("appspec.yml"), "a").unwrap();
    fs::write(tmp.path().join("deploy-spec.yml"), "b").unwrap();
    assert_eq!(
        find_appspec(tmp.path(), Some("deploy-spec.yml")).unwrap(),
        tmp.path().join("deploy-spec.yml")
    );
    let err = find_appspec(tmp.path(), Some("other.yml")).unwrap_err();
    assert!(matches!(err, BundleError::AppSpecMissing { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("other.yml") && msg.contains("'appspec.yml', 'deploy-spec.yml'"),
        "{msg}"
    );

    for bad in ["/etc/appspec.yml", "../appspec.yml", ""] {
        let err = find_appspec(tmp.path(), Some(bad)).unwrap_err();
        assert!(matches!(err, BundleError::AppSpecName { .. }), "{err}");
    }
}

#[test]
fn appspec_lookup_lists_the_root_when_there_is_no_appspec() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("AppSpec.yml"), "a").unwrap();
    fs::create_dir(tmp.path().join("scripts")).unwrap();
    let msg = find_appspec(tmp.path(), None).unwrap_err().to_string();
    assert!(msg.contains("appspec.yaml or appspec.yml"), "{msg}");
    assert!(msg.contains("'AppSpec.yml', 'scripts/'"), "{msg}");
    assert!(
        msg.contains("rename 'AppSpec.yml' to 'appspec.yml'"),
        "{msg}"
    );

    let empty = tempfile::tempdir().unwrap();
    let msg = find_appspec(empty.path(), None).unwrap_err().to_string();
    assert!(msg.contains("the bundle is empty"), "{msg}");
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = haystack.to_vec();
    let mut start = 0;
    while let Some(at) = find(&out[start..], from) {
        out[start + at..start + at + to.len()].copy_from_slice(to);
        start += at + to.len();
    }
    out
}
