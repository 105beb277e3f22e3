//! One visit of the agent to a host: the lifecycle events the engine asked for, run in order,
//! each reported as CodeDeploy reports it.
//!
//! Visits are independent processes (SSM starts the agent once per run of events), so everything
//! a later event needs is on disk, where the CodeDeploy agent keeps it: `DownloadBundle` unpacks
//! the revision into the deployment's `deployment-archive/` and marks it the group's most recent;
//! `Install` installs it and marks it the last successful install; hook events find their
//! scripts there. `ApplicationStop`, `BeforeBlockTraffic` and `AfterBlockTraffic` run the scripts
//! of the last successful install, since the new revision is not installed when they run.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use cutover_core::Timestamp;
use cutover_core::appspec::{ServerAppSpec, parse_server};
use cutover_core::lifecycle::LifecycleEventName;
use cutover_core::model::{
    Diagnostics, FileExistsBehavior, LifecycleErrorCode, LifecycleEventStatus,
};
use serde::Serialize;

use crate::bundle::{self, BundleFormat, BundleLimits};
use crate::fetch::{self, FetchOptions};
use crate::hooks::{self, HookContext, HookEnv, RevisionEnv, ScriptLog};
use crate::install::{self, Install};
use crate::layout::{DeploymentRoot, REVISIONS_TO_KEEP, check_id};
use crate::permissions::Tools;

/// Where the revision's bundle is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BundleSource {
    /// A directory or an archive on this machine.
    Path(PathBuf),
    /// An `https://` URL (a presigned S3 URL), or `http://` on a loopback address.
    Url(String),
}

/// Everything a visit needs to know.
#[derive(Clone, Debug)]
pub struct RunRequest {
    pub deployment_id: String,
    pub application_name: String,
    pub group_name: String,
    pub group_id: String,
    pub bundle: BundleSource,
    /// The bundle file's SHA-256, checked when given.
    pub sha256: Option<String>,
    /// The AppSpec's file name when it is not `appspec.yaml` or `appspec.yml`.
    pub appspec_name: Option<String>,
    /// What `BUNDLE_*` tell scripts about the revision.
    pub revision: Option<RevisionEnv>,
    /// The deployment's choice; the AppSpec's `file_exists_behavior` wins over it.
    pub file_exists_behavior: Option<FileExistsBehavior>,
    pub ignore_application_stop_failures: bool,
    pub root: DeploymentRoot,
    pub limits: BundleLimits,
    pub fetch: FetchOptions,
    pub kill_grace: Duration,
    pub tools: Tools,
}

/// One lifecycle event's outcome, in the shape of CodeDeploy's `lifecycleEvents` entries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventReport {
    pub lifecycle_event_name: LifecycleEventName,
    pub status: LifecycleEventStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Diagnostics>,
}

/// Runs `events` in order, calling `on_event` as each one ends. After a failure the rest are
/// reported `Skipped`, except that a failure of `ApplicationStop`, `BeforeBlockTraffic` or
/// `AfterBlockTraffic` is reported as ignored and the visit goes on when the deployment says so.
pub fn run(
    req: &RunRequest,
    events: &[LifecycleEventName],
    mut on_event: impl FnMut(&EventReport),
) -> Vec<EventReport> {
    // A script still running from a visit whose process died would run beside this one's.
    hooks::stop_left_behind(&req.root.running_script_file(&req.group_id), req.kill_grace);
    let mut reports = Vec::with_capacity(events.len());
    let mut failed = false;
    for &event in events {
        let report = if failed {
            EventReport {
                lifecycle_event_name: event,
                status: LifecycleEventStatus::Skipped,
                start_time: None,
                end_time: None,
                diagnostics: None,
            }
        } else {
            let start = now();
            let mut diagnostics = run_event(req, event);
            let mut status = if diagnostics.error_code == LifecycleErrorCode::Success {
                LifecycleEventStatus::Succeeded
            } else {
                LifecycleEventStatus::Failed
            };
            if status == LifecycleEventStatus::Failed
                && req.ignore_application_stop_failures
                && event.is_ignorable_stop_event()
            {
                status = LifecycleEventStatus::Succeeded;
                diagnostics.message = format!(
                    "ignored because ignoreApplicationStopFailures is set: {}",
                    diagnostics.message
                );
            }
            failed = status == LifecycleEventStatus::Failed;
            EventReport {
                lifecycle_event_name: event,
                status,
                start_time: Some(start),
                end_time: Some(now()),
                diagnostics: Some(diagnostics),
            }
        };
        on_event(&report);
        reports.push(report);
    }
    reports
}

/// The time now, as lifecycle events are stamped with it.
pub fn now() -> Timestamp {
    SystemTime::now().into()
}

fn success() -> Diagnostics {
    Diagnostics::new(LifecycleErrorCode::Success, None, "Succeeded", "")
}

fn unknown_error(message: impl Into<String>) -> Diagnostics {
    Diagnostics::new(LifecycleErrorCode::UnknownError, None, message, "")
}

fn run_event(req: &RunRequest, event: LifecycleEventName) -> Diagnostics {
    if let Err(e) = check_id("deployment group id", &req.group_id)
        .and(check_id("deployment id", &req.deployment_id))
    {
        return unknown_error(e.to_string());
    }
    let result = match event {
        LifecycleEventName::DownloadBundle => download_bundle(req).map(|()| success()),
        LifecycleEventName::Install => install_revision(req).map(|()| success()),
        e if e.is_system_event() => Err(format!(
            "{e} is performed by cutover's traffic router, not by the agent on the host"
        )),
        e if e.runs_previous_revision() => run_previous_revision_hooks(req, e),
        e => {
            let archive = req.root.archive_dir(&req.group_id, &req.deployment_id);
            // An original host that takes traffic back when a blue/green deployment is undone
            // never installed this deployment's revision: it runs the scripts of the one it has.
            let takes_traffic_back = matches!(
                e,
                LifecycleEventName::BeforeAllowTraffic | LifecycleEventName::AfterAllowTraffic
            ) && !archive.is_dir();
            if takes_traffic_back {
                run_previous_revision_hooks(req, e)
            } else {
                run_hooks(req, e, &archive)
            }
        }
    };
    result.unwrap_or_else(unknown_error)
}

fn download_bundle(req: &RunRequest) -> Result<(), String> {
    let deployment_dir = req.root.deployment_dir(&req.group_id, &req.deployment_id);
    req.root
        .prune(&req.group_id, &deployment_dir, REVISIONS_TO_KEEP)
        .map_err(|e| {
            format!(
                "cannot prune old revisions in {}: {e}",
                req.root.group_dir(&req.group_id).display()
            )
        })?;
    std::fs::create_dir_all(&deployment_dir)
        .map_err(|e| format!("cannot create {}: {e}", deployment_dir.display()))?;
    let archive = req.root.archive_dir(&req.group_id, &req.deployment_id);
    if archive.exists() {
        // A second visit for the same deployment starts from a fresh copy of the revision.
        std::fs::remove_dir_all(&archive)
            .map_err(|e| format!("cannot remove {}: {e}", archive.display()))?;
    }
    match &req.bundle {
        BundleSource::Path(path) => {
            if let Some(expected) = &req.sha256 {
                check_file_sha256(path, expected)?;
            }
            let format = BundleFormat::detect(path).map_err(|e| e.to_string())?;
            bundle::unpack(path, format, &archive, &req.limits).map_err(|e| e.to_string())?;
        }
        BundleSource::Url(url) => {
            let file = deployment_dir.join("bundle");
            let opts = FetchOptions {
                max_bytes: req.fetch.max_bytes.min(req.limits.max_bytes),
                ..req.fetch.clone()
            };
            fetch::download(url, &file, req.sha256.as_deref(), &opts).map_err(|e| e.to_string())?;
            let unpacked = BundleFormat::detect(&file)
                .and_then(|format| bundle::unpack(&file, format, &archive, &req.limits))
                .map_err(|e| e.to_string());
            let _ = std::fs::remove_file(&file);
            unpacked?;
        }
    }
    // An AppSpec that cannot be installed fails here, before anything on the host changes.
    load_appspec(&archive, req.appspec_name.as_deref())?;
    req.root
        .set_most_recent_install(&req.group_id, &req.deployment_id)
        .map_err(|e| format!("cannot record the most recent install: {e}"))
}

fn check_file_sha256(path: &Path, expected: &str) -> Result<(), String> {
    let actual = fetch::file_sha256(path)
        .map_err(|e| format!("cannot read {} to check its SHA-256: {e}", path.display()))?;
    if actual.eq_ignore_ascii_case(expected.trim()) {
        Ok(())
    } else {
        Err(format!(
            "the bundle {}'s SHA-256 is {actual}, not {expected} as the deployment says",
            path.display()
        ))
    }
}

/// The AppSpec of an unpacked revision.
fn load_appspec(archive: &Path, name: Option<&str>) -> Result<ServerAppSpec, String> {
    let path = bundle::find_appspec(archive, name).map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file_name = path.file_name().map_or_else(
        || "appspec.yml".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    parse_server(&text, &file_name).map_err(|e| e.to_string())
}

fn install_revision(req: &RunRequest) -> Result<(), String> {
    let archive = downloaded_archive(req)?;
    let spec = load_appspec(&archive, req.appspec_name.as_deref())?;
    let behavior = spec
        .file_exists_behavior
        .or(req.file_exists_behavior)
        .unwrap_or_default();
    install::install(&Install {
        spec: &spec,
        bundle_root: &archive,
        root: &req.root,
        group_id: &req.group_id,
        deployment_id: &req.deployment_id,
        file_exists_behavior: behavior,
        tools: &req.tools,
    })
    .map_err(|e| e.to_string())?;
    req.root
        .set_last_successful_install(&req.group_id, &req.deployment_id)
        .map_err(|e| format!("cannot record the last successful install: {e}"))
}

fn downloaded_archive(req: &RunRequest) -> Result<PathBuf, String> {
    let archive = req.root.archive_dir(&req.group_id, &req.deployment_id);
    if archive.is_dir() {
        Ok(archive)
    } else {
        Err(format!(
            "the revision of deployment {} is not on this host ({} is missing); DownloadBundle must run first",
            req.deployment_id,
            archive.display()
        ))
    }
}

fn run_previous_revision_hooks(
    req: &RunRequest,
    event: LifecycleEventName,
) -> Result<Diagnostics, String> {
    let last = req
        .root
        .last_successful_install(&req.group_id)
        .map_err(|e| format!("cannot read the last successful install: {e}"))?;
    match last {
        // The group's first deployment on this host: there is nothing to stop yet.
        None => Ok(success()),
        Some(dir) => run_hooks(req, event, &dir.join("deployment-archive")),
    }
}

fn run_hooks(
    req: &RunRequest,
    event: LifecycleEventName,
    archive: &Path,
) -> Result<Diagnostics, String> {
    if !archive.is_dir() {
        return Err(format!(
            "the revision whose {event} scripts should run is not on this host ({} is missing)",
            archive.display()
        ));
    }
    let spec = load_appspec(archive, req.appspec_name.as_deref()).or_else(|e| {
        if req.appspec_name.is_some() {
            load_appspec(archive, None)
        } else {
            Err(e)
        }
    })?;
    let log_path = req.root.scripts_log(&req.group_id, &req.deployment_id);
    let mut log = ScriptLog::open(&log_path, &req.deployment_id)
        .map_err(|e| format!("cannot open the scripts log {}: {e}", log_path.display()))?;
    let env = HookEnv {
        deployment_id: req.deployment_id.clone(),
        application_name: req.application_name.clone(),
        deployment_group_name: req.group_name.clone(),
        deployment_group_id: req.group_id.clone(),
        revision: req.revision.clone(),
        host_root: req.root.host().env_value(),
    };
    let record = req.root.running_script_file(&req.group_id);
    if let Some(parent) = record.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    Ok(hooks::run_event(HookContext {
        event,
        scripts: spec.scripts(event),
        bundle_root: archive,
        env: &env,
        log: &mut log,
        kill_grace: req.kill_grace,
        record: Some(&record),
    }))
}
