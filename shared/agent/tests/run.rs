//! Whole visits of the agent to a simulated host, with real revisions and scripts: the rows of
//! the agent conformance table that span events (the previous revision's scripts, event order,
//! AppSpec checks before anything is installed, the deployment root across deployments).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cutover_agent::bundle::BundleLimits;
use cutover_agent::fetch::FetchOptions;
use cutover_agent::host::HostRoot;
use cutover_agent::layout::{DEFAULT_ROOT, DeploymentRoot};
use cutover_agent::permissions::Tools;
use cutover_agent::run::{BundleSource, EventReport, RunRequest, run};
use cutover_core::lifecycle::LifecycleEventName::{self, *};
use cutover_core::model::{FileExistsBehavior, LifecycleErrorCode, LifecycleEventStatus};

const GROUP_ID: &str = "4f1c2d3e-0000-4000-8000-000000000001";
const ALL: [LifecycleEventName; 7] = [
    ApplicationStop,
    DownloadBundle,
    BeforeInstall,
    Install,
    AfterInstall,
    ApplicationStart,
    ValidateService,
];

struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new() -> Host {
        Host {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> DeploymentRoot {
        DeploymentRoot::new(HostRoot::new(self.dir.path().join("host")), DEFAULT_ROOT).unwrap()
    }

    fn path(&self, host_path: &str) -> PathBuf {
        self.root().host().resolve(host_path).unwrap()
    }

    fn request(&self, deployment_id: &str, bundle: &Path) -> RunRequest {
        RunRequest {
            deployment_id: deployment_id.into(),
            application_name: "WebApp".into(),
            group_name: "Fleet".into(),
            group_id: GROUP_ID.into(),
            bundle: BundleSource::Path(bundle.to_path_buf()),
            sha256: None,
            appspec_name: None,
            revision: None,
            file_exists_behavior: None,
            ignore_application_stop_failures: false,
            root: self.root(),
            limits: BundleLimits::default(),
            fetch: FetchOptions::default(),
            kill_grace: Duration::from_millis(200),
            tools: Tools::default(),
        }
    }

    fn deploy(
        &self,
        deployment_id: &str,
        bundle: &Path,
        events: &[LifecycleEventName],
    ) -> Vec<EventReport> {
        run(&self.request(deployment_id, bundle), events, |_| {})
    }
}

/// A revision in a temp dir: an AppSpec and files, with scripts made executable.
fn revision(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, contents) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
        if path.extension().is_some_and(|e| e == "sh") {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    dir
}

/// An AppSpec installing `app/` to /srv/app with one script per hook that appends
/// "<event> <revision>" to /var/log/app/events.
fn app_revision(name: &str, extra: &[(&str, &str)]) -> tempfile::TempDir {
    let appspec = "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: /srv/app\nhooks:\n  \
                   ApplicationStop:\n    - location: hook.sh\n  BeforeInstall:\n    - location: hook.sh\n  \
                   AfterInstall:\n    - location: hook.sh\n  ApplicationStart:\n    - location: hook.sh\n  \
                   ValidateService:\n    - location: hook.sh\n";
    let hook = format!(
        "#!/bin/sh\nmkdir -p \"$CUTOVER_HOST_ROOT/var/log/app\"\necho \"$LIFECYCLE_EVENT {name} $DEPLOYMENT_ID\" >> \"$CUTOVER_HOST_ROOT/var/log/app/events\"\n"
    );
    let mut files = vec![
        ("appspec.yml", appspec.to_owned()),
        ("hook.sh", hook),
        ("app/version", format!("{name}\n")),
    ];
    files.extend(extra.iter().map(|(p, c)| (*p, c.to_string())));
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    revision(&files)
}

fn statuses(reports: &[EventReport]) -> Vec<(LifecycleEventName, LifecycleEventStatus)> {
    reports
        .iter()
        .map(|r| (r.lifecycle_event_name, r.status))
        .collect()
}

#[test]
fn a_whole_deployment_installs_and_runs_every_hook_in_order() {
    let host = Host::new();
    let v1 = app_revision("v1", &[]);
    let reports = host.deploy("d-AAAAAAAA1", v1.path(), &ALL);
    assert_eq!(
        statuses(&reports),
        ALL.map(|e| (e, LifecycleEventStatus::Succeeded))
    );
    assert_eq!(
        fs::read_to_string(host.path("/srv/app/version")).unwrap(),
        "v1\n"
    );
    let log = fs::read_to_string(host.path("/var/log/app/events")).unwrap();
    assert_eq!(
        log,
        "BeforeInstall v1 d-AAAAAAAA1\nAfterInstall v1 d-AAAAAAAA1\nApplicationStart v1 d-AAAAAAAA1\nValidateService v1 d-AAAAAAAA1\n",
        "no ApplicationStop on the group's first deployment"
    );
    for r in &reports {
        assert!(r.start_time.is_some() && r.end_time >= r.start_time);
    }
}

#[test]
fn application_stop_runs_the_last_successful_revisions_scripts() {
    // conformance: hooks: previous revision
    let host = Host::new();
    let v1 = app_revision("v1", &[]);
    host.deploy("d-AAAAAAAA1", v1.path(), &ALL);
    let v2 = app_revision("v2", &[]);
    let reports = host.deploy("d-AAAAAAAA2", v2.path(), &ALL);
    assert!(
        reports
            .iter()
            .all(|r| r.status == LifecycleEventStatus::Succeeded)
    );
    let log = fs::read_to_string(host.path("/var/log/app/events")).unwrap();
    let second: Vec<&str> = log.lines().skip(4).collect();
    assert_eq!(
        second[0], "ApplicationStop v1 d-AAAAAAAA2",
        "v1's script, told about the new deployment"
    );
    assert_eq!(second[1], "BeforeInstall v2 d-AAAAAAAA2");
    assert_eq!(
        fs::read_to_string(host.path("/srv/app/version")).unwrap(),
        "v2\n"
    );
}

#[test]
fn block_traffic_hooks_also_run_the_previous_revision() {
    // conformance: hooks: previous revision (BeforeBlockTraffic, AfterBlockTraffic)
    let host = Host::new();
    let appspec = "version: 0.0\nos: linux\nhooks:\n  BeforeBlockTraffic:\n    - location: hook.sh\n  AfterBlockTraffic:\n    - location: hook.sh\n";
    let hook = |name: &str| {
        format!("#!/bin/sh\necho \"$LIFECYCLE_EVENT {name}\" >> \"$CUTOVER_HOST_ROOT/events\"\n")
    };
    let v1 = revision(&[("appspec.yml", appspec), ("hook.sh", &hook("v1"))]);
    let v2 = revision(&[("appspec.yml", appspec), ("hook.sh", &hook("v2"))]);
    let first = host.deploy(
        "d-AAAAAAAA1",
        v1.path(),
        &[
            BeforeBlockTraffic,
            AfterBlockTraffic,
            DownloadBundle,
            Install,
        ],
    );
    assert!(
        first
            .iter()
            .all(|r| r.status == LifecycleEventStatus::Succeeded)
    );
    assert!(!host.path("/events").exists());
    host.deploy(
        "d-AAAAAAAA2",
        v2.path(),
        &[
            BeforeBlockTraffic,
            AfterBlockTraffic,
            DownloadBundle,
            Install,
        ],
    );
    assert_eq!(
        fs::read_to_string(host.path("/events")).unwrap(),
        "BeforeBlockTraffic v1\nAfterBlockTraffic v1\n"
    );
}

#[test]
fn a_failed_event_stops_the_hosts_remaining_events() {
    // conformance: event order
    let host = Host::new();
    let v1 = app_revision("v1", &[]);
    fs::write(
        v1.path().join("hook.sh"),
        "#!/bin/sh\n[ \"$LIFECYCLE_EVENT\" = AfterInstall ] && exit 3\nexit 0\n",
    )
    .unwrap();
    let reports = host.deploy("d-AAAAAAAA1", v1.path(), &ALL);
    assert_eq!(
        statuses(&reports),
        [
            (ApplicationStop, LifecycleEventStatus::Succeeded),
            (DownloadBundle, LifecycleEventStatus::Succeeded),
            (BeforeInstall, LifecycleEventStatus::Succeeded),
            (Install, LifecycleEventStatus::Succeeded),
            (AfterInstall, LifecycleEventStatus::Failed),
            (ApplicationStart, LifecycleEventStatus::Skipped),
            (ValidateService, LifecycleEventStatus::Skipped),
        ]
    );
    let diag = reports[4].diagnostics.as_ref().unwrap();
    assert_eq!(diag.error_code, LifecycleErrorCode::ScriptFailed);
    assert_eq!(
        diag.message,
        "Script at specified location: hook.sh failed with exit code 3"
    );
}

#[test]
fn ignored_stop_failures_are_reported_and_the_visit_goes_on() {
    let host = Host::new();
    let failing_stop = revision(&[
        (
            "appspec.yml",
            "version: 0.0\nos: linux\nhooks:\n  ApplicationStop:\n    - location: stop.sh\n",
        ),
        ("stop.sh", "#!/bin/sh\necho cannot stop >&2\nexit 1\n"),
    ]);
    host.deploy(
        "d-AAAAAAAA1",
        failing_stop.path(),
        &[DownloadBundle, Install],
    );
    let v2 = app_revision("v2", &[]);

    let reports = host.deploy("d-AAAAAAAA2", v2.path(), &ALL);
    assert_eq!(reports[0].status, LifecycleEventStatus::Failed);
    assert_eq!(reports[1].status, LifecycleEventStatus::Skipped);

    let mut req = host.request("d-AAAAAAAA3", v2.path());
    req.ignore_application_stop_failures = true;
    let reports = run(&req, &ALL, |_| {});
    assert!(
        reports
            .iter()
            .all(|r| r.status == LifecycleEventStatus::Succeeded),
        "{reports:?}"
    );
    let stop = reports[0].diagnostics.as_ref().unwrap();
    assert_eq!(stop.error_code, LifecycleErrorCode::ScriptFailed);
    assert!(
        stop.message
            .starts_with("ignored because ignoreApplicationStopFailures is set: ")
    );
    assert!(stop.log_tail.contains("[stderr]cannot stop"));
}

#[test]
fn a_bad_appspec_fails_download_bundle_before_anything_is_installed() {
    // conformance: empty appspec, version, os, files: bad entries, hooks: order (unknown names)
    for (appspec, expected) in [
        ("  \n", "the AppSpec is empty"),
        (
            "version: 1.0\nos: linux\n",
            "version '1.0' is not supported; 0.0 is the only AppSpec version",
        ),
        ("version: 0.0\nos: windows\n", "windows"),
        (
            "version: 0.0\nos: linux\nfiles:\n  - source: app\n",
            "files[0]: missing 'destination'",
        ),
        (
            "version: 0.0\nos: linux\nhooks:\n  AfterInstal:\n    - location: x.sh\n",
            "appspec.yml line 4: hook 'AfterInstal' is not a lifecycle event (did you mean AfterInstall?)",
        ),
    ] {
        let host = Host::new();
        let bad = revision(&[("appspec.yml", appspec), ("app/version", "x")]);
        let reports = host.deploy("d-AAAAAAAA1", bad.path(), &ALL);
        assert_eq!(reports[1].status, LifecycleEventStatus::Failed, "{appspec}");
        let diag = reports[1].diagnostics.as_ref().unwrap();
        assert_eq!(diag.error_code, LifecycleErrorCode::UnknownError);
        assert!(
            diag.message.contains(expected),
            "{appspec:?}: {}",
            diag.message
        );
        assert!(
            reports[2..]
                .iter()
                .all(|r| r.status == LifecycleEventStatus::Skipped)
        );
        assert!(!host.path("/srv").exists());
        assert_eq!(host.root().most_recent_install(GROUP_ID).unwrap(), None);
    }
}

#[test]
fn the_appspecs_file_exists_behavior_wins_over_the_deployments() {
    // conformance: file_exists_behavior (the AppSpec's value wins)
    let host = Host::new();
    fs::create_dir_all(host.path("/srv/app")).unwrap();
    fs::write(host.path("/srv/app/version"), "theirs\n").unwrap();
    let retain = revision(&[
        (
            "appspec.yml",
            "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: /srv/app\nfile_exists_behavior: RETAIN\n",
        ),
        ("app/version", "ours\n"),
    ]);
    let mut req = host.request("d-AAAAAAAA1", retain.path());
    req.file_exists_behavior = Some(FileExistsBehavior::Overwrite);
    let reports = run(&req, &[DownloadBundle, Install], |_| {});
    assert!(
        reports
            .iter()
            .all(|r| r.status == LifecycleEventStatus::Succeeded)
    );
    assert_eq!(
        fs::read_to_string(host.path("/srv/app/version")).unwrap(),
        "theirs\n"
    );

    // Without one in the AppSpec, the deployment's choice applies.
    let plain = app_revision("v2", &[]);
    let mut req = host.request("d-AAAAAAAA2", plain.path());
    req.file_exists_behavior = Some(FileExistsBehavior::Overwrite);
    let reports = run(&req, &[DownloadBundle, Install], |_| {});
    assert!(
        reports
            .iter()
            .all(|r| r.status == LifecycleEventStatus::Succeeded),
        "{reports:?}"
    );
    assert_eq!(
        fs::read_to_string(host.path("/srv/app/version")).unwrap(),
        "v2\n"
    );
}

#[test]
fn hooks_before_download_bundle_say_the_revision_is_missing() {
    let host = Host::new();
    let v1 = app_revision("v1", &[]);
    let reports = host.deploy("d-AAAAAAAA1", v1.path(), &[BeforeInstall]);
    let diag = reports[0].diagnostics.as_ref().unwrap();
    assert_eq!(diag.error_code, LifecycleErrorCode::UnknownError);
    assert!(
        diag.message.contains("is not on this host"),
        "{}",
        diag.message
    );
}

#[test]
fn traffic_events_are_not_the_agents() {
    let host = Host::new();
    let v1 = app_revision("v1", &[]);
    let reports = host.deploy("d-AAAAAAAA1", v1.path(), &[BlockTraffic]);
    assert_eq!(reports[0].status, LifecycleEventStatus::Failed);
    assert!(
        reports[0]
            .diagnostics
            .as_ref()
            .unwrap()
            .message
            .contains("traffic router")
    );
}

#[test]
fn unsafe_ids_are_refused_before_touching_the_disk() {
    let host = Host::new();
    let v1 = app_revision("v1", &[]);
    let mut req = host.request("../../etc", v1.path());
    req.group_id = "g".into();
    let reports = run(&req, &[DownloadBundle], |_| {});
    assert!(
        reports[0]
            .diagnostics
            .as_ref()
            .unwrap()
            .message
            .contains("cannot name a directory")
    );
    assert!(!host.dir.path().join("host").exists());
}

#[test]
fn the_deployment_root_keeps_five_revisions_and_the_last_success() {
    // conformance: deployment root
    let host = Host::new();
    let good = app_revision("good", &[]);
    host.deploy("d-AAAAAAAA0", good.path(), &ALL);
    let broken = revision(&[(
        "appspec.yml",
        "version: 0.0\nos: linux\nfiles:\n  - source: missing\n    destination: /srv/x\n",
    )]);
    for i in 1..=6 {
        // Each of these fails at Install, so d-AAAAAAAA0 stays the last successful install.
        let id = format!("d-AAAAAAAB{i}");
        let reports = host.deploy(&id, broken.path(), &[DownloadBundle, Install]);
        assert_eq!(reports[1].status, LifecycleEventStatus::Failed);
        std::thread::sleep(Duration::from_millis(20));
    }
    let root = host.root();
    let mut kept: Vec<String> = fs::read_dir(root.group_dir(GROUP_ID))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        [
            "d-AAAAAAAA0",
            "d-AAAAAAAB3",
            "d-AAAAAAAB4",
            "d-AAAAAAAB5",
            "d-AAAAAAAB6"
        ]
    );
    assert_eq!(
        root.last_successful_install(GROUP_ID).unwrap(),
        Some(root.deployment_dir(GROUP_ID, "d-AAAAAAAA0"))
    );
    assert_eq!(
        root.most_recent_install(GROUP_ID).unwrap(),
        Some(root.deployment_dir(GROUP_ID, "d-AAAAAAAB6"))
    );
    let log = fs::read_to_string(root.scripts_log(GROUP_ID, "d-AAAAAAAA0")).unwrap();
    assert!(
        log.contains("[d-AAAAAAAA0] [ValidateService] [hook.sh] Script - hook.sh"),
        "{log}"
    );
}

#[test]
fn a_local_archive_is_checked_against_its_sha256() {
    let host = Host::new();
    let v1 = app_revision("v1", &[]);
    let archive = host.dir.path().join("v1.tar");
    let mut builder = tar::Builder::new(fs::File::create(&archive).unwrap());
    builder.append_dir_all(".", v1.path()).unwrap();
    builder.finish().unwrap();
    drop(builder);
    let mut req = host.request("d-AAAAAAAA1", &archive);
    req.sha256 = Some("00".repeat(32));
    let reports = run(&req, &[DownloadBundle], |_| {});
    assert!(
        reports[0]
            .diagnostics
            .as_ref()
            .unwrap()
            .message
            .contains("SHA-256"),
        "{reports:?}"
    );

    req.sha256 = Some(cutover_core::digest::sha256_hex(
        &fs::read(&archive).unwrap(),
    ));
    let reports = run(&req, &[DownloadBundle, Install], |_| {});
    assert!(
        reports
            .iter()
            .all(|r| r.status == LifecycleEventStatus::Succeeded),
        "{reports:?}"
    );
    assert_eq!(
        fs::read_to_string(host.path("/srv/app/version")).unwrap(),
        "v1\n"
    );
}

#[test]
fn the_example_web_app_installs_unchanged() {
    let host = Host::new();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/webapp");
    let reports = host.deploy("d-AAAAAAAA1", &example, &ALL);
    assert!(
        reports
            .iter()
            .all(|r| r.status == LifecycleEventStatus::Succeeded),
        "{reports:?}"
    );
    assert!(host.path("/srv/webapp/index.html").is_file());
    assert!(host.path("/etc/webapp/webapp.conf").is_file());
    let mode = fs::metadata(host.path("/srv/webapp/index.html"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o644);
    // And again, as the next deployment of the group.
    let reports = host.deploy("d-AAAAAAAA2", &example, &ALL);
    assert!(
        reports
            .iter()
            .all(|r| r.status == LifecycleEventStatus::Succeeded),
        "{reports:?}"
    );
}
