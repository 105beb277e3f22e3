//! The `Install` event with real files in temp dirs: the `files`, `file_exists_behavior`,
//! cleanup, duplicate and `permissions` rows of the agent conformance table, and the
//! transaction that leaves a host as it was when an install fails.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use cutover_agent::host::HostRoot;
use cutover_agent::install::{Install, InstallError, InstallFailure, InstallReport, install};
use cutover_agent::layout::{DEFAULT_ROOT, DeploymentRoot};
use cutover_agent::permissions::{PermissionError, Tools};
use cutover_core::appspec::{ServerAppSpec, parse_server};
use cutover_core::model::FileExistsBehavior;

const GROUP: &str = "g-1";

/// A simulated host with its deployment root, and revisions unpacked under it.
struct Host {
    dir: tempfile::TempDir,
    root: DeploymentRoot,
    tools: Tools,
}

impl Host {
    fn new() -> Host {
        let dir = tempfile::tempdir().unwrap();
        let root =
            DeploymentRoot::new(HostRoot::new(dir.path().join("host")), DEFAULT_ROOT).unwrap();
        Host {
            dir,
            root,
            tools: Tools::default(),
        }
    }

    /// A path on the host.
    fn path(&self, host_path: &str) -> PathBuf {
        self.root.host().resolve(host_path).unwrap()
    }

    fn write(&self, host_path: &str, contents: &str) {
        let path = self.path(host_path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }

    fn read(&self, host_path: &str) -> String {
        fs::read_to_string(self.path(host_path)).unwrap()
    }

    fn exists(&self, host_path: &str) -> bool {
        self.path(host_path).symlink_metadata().is_ok()
    }

    /// Unpacks a revision for `deployment`: `files` are (path in bundle, contents).
    fn revision(&self, deployment: &str, files: &[(&str, &str)]) -> PathBuf {
        let archive = self.root.archive_dir(GROUP, deployment);
        for (path, contents) in files {
            let path = archive.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, contents).unwrap();
        }
        fs::create_dir_all(&archive).unwrap();
        archive
    }

    fn install(
        &self,
        deployment: &str,
        appspec: &str,
        behavior: FileExistsBehavior,
    ) -> Result<InstallReport, InstallFailure> {
        let spec: ServerAppSpec = parse_server(appspec, "appspec.yml").unwrap();
        let bundle_root = self.root.archive_dir(GROUP, deployment);
        install(&Install {
            spec: &spec,
            bundle_root: &bundle_root,
            root: &self.root,
            group_id: GROUP,
            deployment_id: deployment,
            file_exists_behavior: behavior,
            tools: &self.tools,
        })
    }

    /// Every path under the host's folder except the deployment root, with file contents.
    fn snapshot(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        walk(&self.dir.path().join("host"), self.root.dir(), &mut out);
        out.sort();
        out
    }
}

fn walk(dir: &Path, skip: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.starts_with(skip) {
            continue;
        }
        let meta = path.symlink_metadata().unwrap();
        let contents = if meta.is_dir() {
            walk(&path, skip, out);
            format!("dir {:o}", meta.permissions().mode() & 0o7777)
        } else if meta.file_type().is_symlink() {
            format!("link {}", fs::read_link(&path).unwrap().display())
        } else {
            format!(
                "{:o} {}",
                meta.permissions().mode() & 0o7777,
                fs::read_to_string(&path).unwrap()
            )
        };
        out.push((path.display().to_string(), contents));
    }
}

const HEAD: &str = "version: 0.0\nos: linux\n";

fn spec(files: &str) -> String {
    format!("{HEAD}files:\n{files}")
}

#[test]
fn a_source_file_lands_at_destination_slash_its_name() {
    // conformance: files: source file
    let host = Host::new();
    host.revision("d-1", &[("config/app.conf", "port=80\n")]);
    let report = host
        .install(
            "d-1",
            &spec("  - source: config/app.conf\n    destination: /etc/webapp\n"),
            FileExistsBehavior::Disallow,
        )
        .unwrap();
    assert_eq!(host.read("/etc/webapp/app.conf"), "port=80\n");
    assert_eq!(
        (report.files, report.directories),
        (1, 2),
        "/etc and /etc/webapp were created"
    );
}

#[test]
fn a_source_directory_is_copied_recursively_creating_parents() {
    // conformance: files: source dir
    let host = Host::new();
    host.revision(
        "d-1",
        &[
            ("src/index.html", "<h1>hi</h1>"),
            ("src/css/site.css", "body{}"),
            ("appspec.yml", HEAD),
        ],
    );
    host.write("/srv/keep.txt", "theirs");
    host.install(
        "d-1",
        &spec("  - source: src\n    destination: /srv/web/app\n"),
        FileExistsBehavior::Disallow,
    )
    .unwrap();
    assert_eq!(host.read("/srv/web/app/index.html"), "<h1>hi</h1>");
    assert_eq!(host.read("/srv/web/app/css/site.css"), "body{}");
    assert!(
        !host.exists("/srv/web/app/src"),
        "the directory's contents go in, not the directory"
    );
    assert_eq!(host.read("/srv/keep.txt"), "theirs");
}

#[test]
fn source_slash_installs_the_whole_bundle() {
    let host = Host::new();
    host.revision("d-1", &[("appspec.yml", HEAD), ("bin/run", "#!/bin/sh\n")]);
    host.install(
        "d-1",
        &spec("  - source: /\n    destination: /opt/app\n"),
        FileExistsBehavior::Disallow,
    )
    .unwrap();
    assert!(host.exists("/opt/app/appspec.yml"));
    assert_eq!(host.read("/opt/app/bin/run"), "#!/bin/sh\n");
}

#[test]
fn modes_and_links_in_the_bundle_are_kept() {
    let host = Host::new();
    let archive = host.revision("d-1", &[("app/run.sh", "#!/bin/sh\n")]);
    fs::set_permissions(
        archive.join("app/run.sh"),
        fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    symlink("run.sh", archive.join("app/start")).unwrap();
    host.install(
        "d-1",
        &spec("  - source: app\n    destination: /opt/app\n"),
        FileExistsBehavior::Disallow,
    )
    .unwrap();
    assert_eq!(
        fs::metadata(host.path("/opt/app/run.sh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o750
    );
    assert_eq!(
        fs::read_link(host.path("/opt/app/start")).unwrap(),
        Path::new("run.sh")
    );
}

#[test]
fn disallow_refuses_an_existing_file_by_name_and_changes_nothing() {
    // conformance: file_exists_behavior (DISALLOW)
    let host = Host::new();
    host.revision("d-1", &[("src/a.txt", "new"), ("src/b.txt", "new")]);
    host.write("/srv/app/b.txt", "old");
    let before = host.snapshot();
    let err = host
        .install(
            "d-1",
            &spec("  - source: src\n    destination: /srv/app\n"),
            FileExistsBehavior::Disallow,
        )
        .unwrap_err();
    assert!(
        matches!(err.cause, InstallError::FileExists(ref p) if p == Path::new("/srv/app/b.txt")),
        "{err}"
    );
    assert!(
        err.to_string().contains(
            "a file already exists at /srv/app/b.txt and file_exists_behavior is DISALLOW"
        )
    );
    assert_eq!(host.snapshot(), before);
}

#[test]
fn overwrite_replaces_and_retain_keeps() {
    // conformance: file_exists_behavior (OVERWRITE, RETAIN)
    let host = Host::new();
    host.revision("d-1", &[("src/a.txt", "new")]);
    host.write("/srv/app/a.txt", "old");
    let report = host
        .install(
            "d-1",
            &spec("  - source: src\n    destination: /srv/app\n"),
            FileExistsBehavior::Retain,
        )
        .unwrap();
    assert_eq!(host.read("/srv/app/a.txt"), "old");
    assert_eq!(report.retained, [PathBuf::from("/srv/app/a.txt")]);

    let host = Host::new();
    host.revision("d-1", &[("src/a.txt", "new")]);
    host.write("/srv/app/a.txt", "old");
    let report = host
        .install(
            "d-1",
            &spec("  - source: src\n    destination: /srv/app\n"),
            FileExistsBehavior::Overwrite,
        )
        .unwrap();
    assert_eq!(host.read("/srv/app/a.txt"), "new");
    assert_eq!(report.overwritten, [PathBuf::from("/srv/app/a.txt")]);
}

#[test]
fn the_previous_installs_files_are_removed_first() {
    // conformance: previous revision's files
    let host = Host::new();
    let files = spec("  - source: src\n    destination: /srv/app\n");
    host.revision(
        "d-1",
        &[
            ("src/a.txt", "v1"),
            ("src/old-only.txt", "v1"),
            ("src/logs/.keep", ""),
        ],
    );
    host.install("d-1", &files, FileExistsBehavior::Disallow)
        .unwrap();
    // Someone writes into a directory the install created.
    host.write("/srv/app/logs/today.log", "busy");

    host.revision("d-2", &[("src/a.txt", "v2")]);
    let report = host
        .install("d-2", &files, FileExistsBehavior::Disallow)
        .unwrap();
    assert_eq!(
        host.read("/srv/app/a.txt"),
        "v2",
        "not refused as already present"
    );
    assert!(!host.exists("/srv/app/old-only.txt"));
    assert!(!host.exists("/srv/app/logs/.keep"));
    assert_eq!(
        host.read("/srv/app/logs/today.log"),
        "busy",
        "a non-empty directory is left in place"
    );
    assert_eq!(
        report.removed, 3,
        "a.txt, old-only.txt and logs/.keep; the busy directories stay"
    );
    let cleanup = fs::read_to_string(host.root.cleanup_file(GROUP)).unwrap();
    assert_eq!(cleanup, "/srv/app/a.txt\n");
}

#[test]
fn duplicate_targets_are_refused() {
    // conformance: duplicate targets
    let host = Host::new();
    host.revision("d-1", &[("a/app.conf", "a"), ("b/app.conf", "b")]);
    let err = host
        .install(
            "d-1",
            &spec("  - source: a/app.conf\n    destination: /etc/app\n  - source: b/app.conf\n    destination: /etc/app\n"),
            FileExistsBehavior::Overwrite,
        )
        .unwrap_err();
    assert!(
        matches!(err.cause, InstallError::DuplicateTarget { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("two sources install to the same destination /etc/app/app.conf"),
        "{err}"
    );
    assert!(!host.exists("/etc/app"));

    // Two directories whose contents collide are refused too.
    let host = Host::new();
    host.revision("d-1", &[("one/x.txt", "1"), ("two/x.txt", "2")]);
    let err = host
        .install(
            "d-1",
            &spec(
                "  - source: one\n    destination: /srv\n  - source: two\n    destination: /srv\n",
            ),
            FileExistsBehavior::Overwrite,
        )
        .unwrap_err();
    assert!(
        matches!(err.cause, InstallError::DuplicateTarget { .. }),
        "{err}"
    );
}

#[test]
fn a_missing_source_is_named() {
    let host = Host::new();
    host.revision("d-1", &[("src/a.txt", "x")]);
    let err = host
        .install(
            "d-1",
            &spec("  - source: dist\n    destination: /srv\n"),
            FileExistsBehavior::Disallow,
        )
        .unwrap_err();
    assert_eq!(
        err.cause.to_string(),
        "files[0]: source 'dist' is not in the revision"
    );
}

#[test]
fn a_failed_install_puts_the_previous_revision_back() {
    // conformance: a failed install leaves the host's previous files as they were
    let host = Host::new();
    let files = spec("  - source: src\n    destination: /srv/app\n");
    host.revision("d-1", &[("src/a.txt", "v1"), ("src/b.txt", "v1")]);
    host.install("d-1", &files, FileExistsBehavior::Disallow)
        .unwrap();
    host.write("/srv/app/c.txt", "someone else's");
    let before = host.snapshot();
    let cleanup_before = fs::read_to_string(host.root.cleanup_file(GROUP)).unwrap();

    // The new revision collides with a file that is not the previous install's.
    host.revision("d-2", &[("src/a.txt", "v2"), ("src/c.txt", "v2")]);
    let err = host
        .install("d-2", &files, FileExistsBehavior::Disallow)
        .unwrap_err();
    assert!(err.not_restored.is_empty(), "{err}");
    assert!(
        err.to_string()
            .ends_with("(the host's files were restored as they were before the install)")
    );
    assert_eq!(host.snapshot(), before);
    assert_eq!(
        fs::read_to_string(host.root.cleanup_file(GROUP)).unwrap(),
        cleanup_before
    );
    assert!(
        !host
            .root
            .deployment_dir(GROUP, "d-2")
            .join("install-journal")
            .exists()
    );
}

#[test]
fn a_permission_failure_after_copying_is_undone_too() {
    let host = Host::new();
    host.revision("d-1", &[("src/a.txt", "v1")]);
    let yaml = format!(
        "{}permissions:\n  - object: /srv/app\n    owner: no-such-user-here\n",
        spec("  - source: src\n    destination: /srv/app\n")
    );
    let before = host.snapshot();
    let err = host
        .install("d-1", &yaml, FileExistsBehavior::Disallow)
        .unwrap_err();
    assert!(
        matches!(
            err.cause,
            InstallError::Permission(PermissionError::UnknownUser { .. })
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("there is no user 'no-such-user-here' on this host")
    );
    assert_eq!(host.snapshot(), before);
}

#[test]
fn an_interrupted_install_is_undone_before_the_next_one() {
    let host = Host::new();
    host.revision("d-1", &[("src/a.txt", "v1")]);
    // What a killed agent leaves behind: a journal naming a file it had created.
    host.write("/srv/app/half.txt", "partial");
    let dir = host.root.deployment_dir(GROUP, "d-1");
    let created = host.path("/srv/app/half.txt");
    fs::write(
        dir.join("install-journal"),
        format!(
            "{{\"change\":\"created\",\"path\":\"{}\"}}\n{{\"change\":\"crea",
            created.display()
        ),
    )
    .unwrap();
    host.install(
        "d-1",
        &spec("  - source: src\n    destination: /srv/app\n"),
        FileExistsBehavior::Disallow,
    )
    .unwrap();
    assert!(!host.exists("/srv/app/half.txt"));
    assert_eq!(host.read("/srv/app/a.txt"), "v1");
}

#[test]
fn modes_apply_to_what_the_pattern_selects() {
    // conformance: permissions (pattern, except, mode, type)
    let host = Host::new();
    host.revision(
        "d-1",
        &[
            ("app/run.sh", "x"),
            ("app/lib/util.sh", "x"),
            ("app/README", "x"),
        ],
    );
    let yaml = format!(
        "{}permissions:\n  - object: /opt/app\n    pattern: \"*.sh\"\n    mode: 750\n    type: [file]\n  - object: /opt/app\n    pattern: \"**\"\n    except: [README, \"*.sh\"]\n    mode: 700\n    type: [directory]\n",
        spec("  - source: app\n    destination: /opt/app\n")
    );
    host.install("d-1", &yaml, FileExistsBehavior::Disallow)
        .unwrap();
    let mode = |p: &str| {
        fs::symlink_metadata(host.path(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("/opt/app/run.sh"), 0o750);
    assert_ne!(
        mode("/opt/app/lib/util.sh"),
        0o750,
        "the pattern does not descend into subfolders"
    );
    assert_ne!(mode("/opt/app/README"), 0o750);
    assert_eq!(mode("/opt/app/lib"), 0o700);
}

#[test]
fn owner_and_group_are_set_when_running_as_root() {
    // conformance: permissions (owner, group)
    let host = Host::new();
    host.revision("d-1", &[("conf/app.conf", "x")]);
    let yaml = format!(
        "{}permissions:\n  - object: /etc/app/app.conf\n    owner: nobody\n    group: nogroup\n",
        spec("  - source: conf/app.conf\n    destination: /etc/app\n")
    );
    let result = host.install("d-1", &yaml, FileExistsBehavior::Disallow);
    if nix::unistd::geteuid().is_root() {
        result.unwrap();
        let meta = fs::metadata(host.path("/etc/app/app.conf")).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
    } else {
        let err = result.unwrap_err();
        assert!(
            err.to_string()
                .contains("changing owners needs the agent to run as root"),
            "{err}"
        );
    }
}

/// A directory holding a fake tool that records its arguments, one call per line.
fn fake_tool(dir: &Path, name: &str) -> PathBuf {
    let log = dir.join(format!("{name}.calls"));
    let script = dir.join(name);
    fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display()),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    log
}

#[test]
fn acls_are_set_with_setfacl_including_the_base_entries() {
    // conformance: permissions (acls)
    let mut host = Host::new();
    let bin = host.dir.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    let calls = fake_tool(&bin, "setfacl");
    host.tools = Tools::on_path(&bin);
    host.revision("d-1", &[("conf/app.conf", "x")]);
    let archive = host.root.archive_dir(GROUP, "d-1");
    fs::set_permissions(
        archive.join("conf/app.conf"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let yaml = format!(
        "{}permissions:\n  - object: /etc/app/app.conf\n    acls: [\"u:nobody:rw\"]\n",
        spec("  - source: conf/app.conf\n    destination: /etc/app\n")
    );
    host.install("d-1", &yaml, FileExistsBehavior::Disallow)
        .unwrap();
    let call = fs::read_to_string(calls).unwrap();
    assert_eq!(
        call.trim(),
        format!(
            "--set u:nobody:rw,u::6,g::4,o::0,m::4 {}",
            host.path("/etc/app/app.conf").display()
        )
    );
}

#[test]
fn acls_and_contexts_without_their_tools_say_what_is_missing() {
    // conformance: permissions (acls, context) where the host's tools do not exist
    let mut host = Host::new();
    let empty = host.dir.path().join("empty-bin");
    fs::create_dir_all(&empty).unwrap();
    host.tools = Tools::on_path(&empty);
    host.revision("d-1", &[("conf/app.conf", "x")]);
    let files = spec("  - source: conf/app.conf\n    destination: /etc/app\n");
    let before = host.snapshot();

    let yaml = format!(
        "{files}permissions:\n  - object: /etc/app/app.conf\n    acls: [\"u:nobody:rw\"]\n"
    );
    let err = host
        .install("d-1", &yaml, FileExistsBehavior::Disallow)
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "'acls' needs setfacl, which is not installed on this host (install the acl package)"
        ),
        "{err}"
    );
    assert_eq!(host.snapshot(), before);

    let yaml = format!(
        "{files}permissions:\n  - object: /etc/app/app.conf\n    context:\n      type: httpd_sys_content_t\n"
    );
    let err = host
        .install("d-1", &yaml, FileExistsBehavior::Disallow)
        .unwrap_err();
    assert!(
        err.to_string().contains("'context' needs semanage"),
        "{err}"
    );
    assert_eq!(host.snapshot(), before);
}

#[test]
fn contexts_are_registered_and_removed_by_the_next_install() {
    let mut host = Host::new();
    let bin = host.dir.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    let semanage = fake_tool(&bin, "semanage");
    let restorecon = fake_tool(&bin, "restorecon");
    host.tools = Tools::on_path(&bin);
    let files = spec("  - source: www\n    destination: /var/www\n");
    host.revision("d-1", &[("www/index.html", "x")]);
    let yaml = format!(
        "{files}permissions:\n  - object: /var/www/index.html\n    context:\n      user: system_u\n      type: httpd_sys_content_t\n      range: s0\n"
    );
    host.install("d-1", &yaml, FileExistsBehavior::Disallow)
        .unwrap();
    let target = host.path("/var/www/index.html");
    assert_eq!(
        fs::read_to_string(&semanage).unwrap(),
        format!(
            "fcontext -a -s system_u -t httpd_sys_content_t -r s0 {}\n",
            target.display()
        )
    );
    assert_eq!(
        fs::read_to_string(&restorecon).unwrap(),
        format!("-v {}\n", target.display())
    );

    host.revision("d-2", &[("www/index.html", "y")]);
    host.install("d-2", &files, FileExistsBehavior::Disallow)
        .unwrap();
    assert!(
        fs::read_to_string(&semanage)
            .unwrap()
            .ends_with(&format!("fcontext -d {}\n", target.display()))
    );
}

#[test]
fn installs_stay_inside_a_simulated_hosts_folder() {
    let host = Host::new();
    host.revision("d-1", &[("src/a.txt", "x")]);
    host.install(
        "d-1",
        &spec("  - source: src\n    destination: /\n"),
        FileExistsBehavior::Disallow,
    )
    .unwrap();
    assert!(host.path("/a.txt").starts_with(host.dir.path()));
    assert_eq!(host.read("/a.txt"), "x");
}
