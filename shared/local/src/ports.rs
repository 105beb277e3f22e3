//! The engine's ports on this machine: the SQLite store, local hosts that run the agent library
//! in-process, a revision check on local paths, the traffic registry, alarms set from the
//! command line, and trigger notifications written to a file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cutover_agent::bundle::{BundleLimits, find_appspec};
use cutover_agent::fetch::FetchOptions;
use cutover_agent::hooks::RevisionEnv;
use cutover_agent::host::HostRoot;
use cutover_agent::layout::{DEFAULT_ROOT, DeploymentRoot};
use cutover_agent::permissions::Tools;
use cutover_agent::run::{BundleSource, RunRequest, now};
use cutover_core::appspec::LambdaFunction;
use cutover_core::appspec::{MAX_LAMBDA_APPSPEC_BYTES, parse_server};
use cutover_core::lifecycle::LifecycleEventName;
use cutover_core::lock::LockDecision;
use cutover_core::machine::{
    Deployment, FinalStatus, LifecycleOutcome, OutcomeStatus, PreviousDeployment,
};
use cutover_core::model::{
    ComputePlatform, ErrorCode, ErrorInformation, LifecycleEventStatus, RevisionLocation,
    S3Location, TriggerEventType,
};
use cutover_core::{DeploymentId, TargetId};
use cutover_engine::{
    Alarms, Commit, Fleet, HookFunctions, HookRunner, HostRun, LambdaTraffic, Notifier, Polled,
    PortError, Ports, Resolution, RevisionSource, Step, StepQueue, Store, SystemClock,
    TrafficRouter, Validation,
};
use tokio::sync::Semaphore;

use crate::lambda::LambdaApi;
use crate::replacements::LocalReplacements;
use crate::s3::{S3Access, URL_LIFETIME};
use crate::store::{LocalHost, LocalStore};

/// How many hosts run lifecycle events at the same time, at most.
pub const DEFAULT_PARALLEL_HOSTS: usize = 16;

/// Every port on this machine, over one state directory. `H` runs the lifecycle events:
/// [`LocalHosts`] normally.
#[derive(Debug)]
pub struct LocalPorts<H = LocalHosts> {
    store: Arc<LocalStore>,
    hosts: H,
    fleet: LocalFleet,
    revisions: LocalRevisions,
    notifier: FileNotifier,
    lambda: LocalLambda,
    replacements: LocalReplacements,
}

impl LocalPorts<LocalHosts> {
    pub fn new(store: Arc<LocalStore>, state_dir: &Path) -> Self {
        let hosts = LocalHosts::new(store.clone(), DEFAULT_PARALLEL_HOSTS);
        LocalPorts::with_hosts(store, state_dir, hosts)
    }
}

impl<H: HookRunner> LocalPorts<H> {
    pub fn with_hosts(store: Arc<LocalStore>, state_dir: &Path, hosts: H) -> Self {
        LocalPorts {
            fleet: LocalFleet {
                store: store.clone(),
                state_dir: state_dir.to_owned(),
            },
            revisions: LocalRevisions {
                s3: S3Access::from_env(),
            },
            notifier: FileNotifier(state_dir.join(NOTIFICATIONS_FILE)),
            lambda: LocalLambda(LambdaApi::from_env()),
            replacements: LocalReplacements::new(store.clone(), state_dir),
            store,
            hosts,
        }
    }

    /// Lambda deployments move aliases and invoke hook functions through the Lambda API at
    /// `endpoint` (an emulator's, for example) instead of the one the environment names.
    pub fn with_lambda_endpoint(mut self, endpoint: &str) -> Self {
        self.lambda = LocalLambda(LambdaApi::from_env().map(|api| api.with_endpoint(endpoint)));
        self
    }

    pub fn local_store(&self) -> &Arc<LocalStore> {
        &self.store
    }
}

impl<H: HookRunner> Ports for LocalPorts<H> {
    type Store = LocalStore;
    type Queue = LocalStore;
    type Revisions = LocalRevisions;
    type Fleet = LocalFleet;
    type Hosts = H;
    type Traffic = LocalStore;
    type Replacements = LocalReplacements;
    type Lambda = LocalLambda;
    type HookFunctions = LocalLambda;
    type Alarms = LocalStore;
    type Notifier = FileNotifier;
    type Clock = SystemClock;

    fn store(&self) -> &LocalStore {
        &self.store
    }
    fn queue(&self) -> &LocalStore {
        &self.store
    }
    fn revisions(&self) -> &LocalRevisions {
        &self.revisions
    }
    fn fleet(&self) -> &LocalFleet {
        &self.fleet
    }
    fn hosts(&self) -> &H {
        &self.hosts
    }
    fn traffic(&self) -> &LocalStore {
        &self.store
    }
    fn replacements(&self) -> &LocalReplacements {
        &self.replacements
    }
    fn lambda(&self) -> &LocalLambda {
        &self.lambda
    }
    fn hook_functions(&self) -> &LocalLambda {
        &self.lambda
    }
    fn alarms(&self) -> &LocalStore {
        &self.store
    }
    fn notifier(&self) -> &FileNotifier {
        &self.notifier
    }
    fn clock(&self) -> &SystemClock {
        &SystemClock
    }
}

impl Store for LocalStore {
    async fn load(&self, id: &DeploymentId) -> Result<Option<Deployment>, PortError> {
        Ok(self.load_deployment(id)?)
    }

    async fn commit(
        &self,
        deployment: &Deployment,
        expected: Option<u64>,
        next: Vec<Step>,
    ) -> Result<Commit, PortError> {
        Ok(self.commit_deployment(deployment, expected, next)?)
    }

    async fn acquire_group_lock(&self, deployment: &Deployment) -> Result<LockDecision, PortError> {
        Ok(LocalStore::acquire_group_lock(self, deployment)?)
    }

    async fn finish(
        &self,
        deployment: &Deployment,
        status: FinalStatus,
        hand_to: Option<&DeploymentId>,
    ) -> Result<Option<DeploymentId>, PortError> {
        Ok(LocalStore::finish(self, deployment, status, hand_to)?)
    }

    async fn last_successful(
        &self,
        application: &str,
        group: &str,
    ) -> Result<Option<PreviousDeployment>, PortError> {
        Ok(LocalStore::last_successful(self, application, group)?)
    }
}

/// Steps queued apart from a commit. They are claimed as soon as they are queued: `not_before`
/// only spaces out the polls of remote host commands, which local hosts never send.
impl StepQueue for LocalStore {
    async fn send(&self, steps: Vec<Step>) -> Result<(), PortError> {
        Ok(self.enqueue(&steps)?)
    }
}

/// The traffic registry: which hosts of a group are in service.
impl TrafficRouter for LocalStore {
    async fn block(
        &self,
        deployment: &Deployment,
        targets: &[TargetId],
    ) -> Result<Vec<(TargetId, LifecycleOutcome)>, PortError> {
        route(self, deployment, targets, false)
    }

    async fn allow(
        &self,
        deployment: &Deployment,
        targets: &[TargetId],
    ) -> Result<Vec<(TargetId, LifecycleOutcome)>, PortError> {
        route(self, deployment, targets, true)
    }
}

fn route(
    store: &LocalStore,
    deployment: &Deployment,
    targets: &[TargetId],
    in_service: bool,
) -> Result<Vec<(TargetId, LifecycleOutcome)>, PortError> {
    let start = now();
    let names: Vec<String> = targets.iter().map(|t| t.as_str().to_owned()).collect();
    store.set_in_service(deployment, &names, in_service)?;
    let end = now();
    Ok(targets
        .iter()
        .map(|t| {
            let mut outcome = LifecycleOutcome::succeeded();
            outcome.start_time = Some(start);
            outcome.end_time = Some(end);
            (t.clone(), outcome)
        })
        .collect())
}

/// Alarms, set with `cutover local alarm`.
impl Alarms for LocalStore {
    async fn first_in_alarm(&self, names: &[String]) -> Result<Option<String>, PortError> {
        Ok(LocalStore::first_in_alarm(self, names)?)
    }
}

/// The group's hosts: the registered on-premises instances its on-premises tags select, or
/// the hosts `cutover local deploy` gave it.
#[derive(Debug)]
pub struct LocalFleet {
    store: Arc<LocalStore>,
    state_dir: PathBuf,
}

impl LocalFleet {
    /// The registered on-premises instances the group's `onPremisesInstanceTagFilters` or
    /// `onPremisesTagSet` select, each a simulated host of its name.
    fn on_premises_hosts(&self, d: &Deployment) -> Result<Vec<LocalHost>, PortError> {
        self.store
            .instances()?
            .into_iter()
            .filter(|i| i.is_selected_by(&d.group))
            .map(|i| {
                LocalHost::on_premises(&self.state_dir, &i.instance_name).ok_or_else(|| {
                    PortError::permanent(format!(
                        "on-premises instance '{}' cannot be a local host: its name is not a folder's name",
                        i.instance_name
                    ))
                })
            })
            .collect()
    }
}

impl Fleet for LocalFleet {
    /// A group that selects on-premises instances by their tags deploys to the registered ones
    /// that match, each rooted at `<state dir>/hosts/<instance name>/`; none matching fails the
    /// deployment with NO_INSTANCES. Any other group deploys to its hosts; one that has none yet
    /// (one made through the API) gets one simulated host, `host-1`, as `cutover local deploy`
    /// gives it.
    async fn resolve(&self, d: &Deployment) -> Result<Resolution, PortError> {
        let (app, group) = (&d.application_name, &d.group.deployment_group_name);
        if d.group.selects_on_premises_instances() {
            let hosts = self.on_premises_hosts(d)?;
            if hosts.is_empty() {
                return Ok(Resolution::Unresolved(ErrorInformation::new(
                    ErrorCode::NoInstances,
                    format!(
                        "No instances were found for deployment group '{group}': no registered on-premises instance has tags that match its onPremisesInstanceTagFilters or onPremisesTagSet. Register instances (aws deploy register-on-premises-instance) and tag them (aws deploy add-tags-to-on-premises-instances)."
                    ),
                )));
            }
            self.store.set_hosts(app, group, &hosts)?;
            return Ok(Resolution::Targets(
                hosts.into_iter().map(|h| TargetId::new(h.name)).collect(),
            ));
        }
        let mut hosts = self.store.hosts(app, group)?;
        if hosts.is_empty() {
            hosts = vec![LocalHost::simulated(&self.state_dir, 1)];
            self.store.set_hosts(app, group, &hosts)?;
        }
        Ok(Resolution::Targets(
            hosts.into_iter().map(|h| TargetId::new(h.name)).collect(),
        ))
    }
}

/// The Lambda API as this machine reaches it, or why it cannot: a Lambda deployment then fails
/// its check with that reason.
#[derive(Debug)]
pub struct LocalLambda(Result<LambdaApi, String>);

impl LocalLambda {
    fn api(&self) -> Result<&LambdaApi, PortError> {
        self.0.as_ref().map_err(|why| {
            PortError::permanent(format!("cutover cannot reach the Lambda API: {why}"))
        })
    }
}

impl LambdaTraffic for LocalLambda {
    async fn check(
        &self,
        function: &LambdaFunction,
    ) -> Result<Option<ErrorInformation>, PortError> {
        match &self.0 {
            Ok(api) => api.check(function).await,
            Err(why) => Ok(Some(ErrorInformation::new(
                ErrorCode::InvalidLambdaConfiguration,
                format!("cutover cannot reach the Lambda API: {why}"),
            ))),
        }
    }

    async fn shift(&self, function: &LambdaFunction, percent: u8) -> Result<(), PortError> {
        self.api()?.shift(function, percent).await
    }

    async fn restore(&self, function: &LambdaFunction) -> Result<(), PortError> {
        self.api()?.restore(function).await
    }
}

impl HookFunctions for LocalLambda {
    async fn invoke(
        &self,
        function: &str,
        deployment_id: &DeploymentId,
        execution_id: &str,
    ) -> Result<(), PortError> {
        self.api()?
            .invoke(function, deployment_id, execution_id)
            .await
    }
}

/// Checks that a local revision is still there and that its AppSpec reads, or that an S3
/// revision can be read (pinning its ETag and version).
#[derive(Debug)]
pub struct LocalRevisions {
    /// Access to S3, or why there is none.
    s3: Result<S3Access, String>,
}

impl LocalRevisions {
    async fn validate_s3(&self, loc: &S3Location) -> Validation {
        let s3 = match &self.s3 {
            Ok(s3) => s3.clone(),
            Err(why) => {
                return Validation::Invalid(ErrorInformation::new(
                    ErrorCode::RevisionMissing,
                    format!("s3://{}/{} cannot be read: {why}", loc.bucket, loc.key),
                ));
            }
        };
        let wanted = loc.clone();
        let head = tokio::task::spawn_blocking(move || s3.head(&wanted))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        match head {
            Err(message) => {
                Validation::Invalid(ErrorInformation::new(ErrorCode::RevisionMissing, message))
            }
            Ok(head) => match (&loc.e_tag, &head.e_tag) {
                (Some(wanted), Some(found))
                    if wanted.trim_matches('"') != found.trim_matches('"') =>
                {
                    Validation::Invalid(ErrorInformation::new(
                        ErrorCode::InvalidRevision,
                        format!(
                            "s3://{}/{} has ETag {found}, not the {wanted} the deployment names: it changed since",
                            loc.bucket, loc.key
                        ),
                    ))
                }
                _ => Validation::pinned(RevisionLocation::S3(S3Location {
                    e_tag: head.e_tag.or_else(|| loc.e_tag.clone()),
                    version: loc.version.clone().or(head.version),
                    ..loc.clone()
                })),
            },
        }
    }
}

impl LocalRevisions {
    /// A Lambda revision: inline, checked when the deployment was created; a local AppSpec file
    /// (or a folder holding `appspec.yml`), read here.
    async fn validate_lambda(&self, revision: &RevisionLocation) -> Validation {
        let invalid =
            |code, message: String| Validation::Invalid(ErrorInformation::new(code, message));
        match revision {
            RevisionLocation::AppSpecContent(_) | RevisionLocation::String(_) => {
                Validation::valid()
            }
            RevisionLocation::Local(local) => {
                let path = PathBuf::from(&local.path);
                let file = if path.is_dir() {
                    match find_appspec(&path, None) {
                        Ok(file) => file,
                        Err(e) => return invalid(ErrorCode::InvalidRevision, e.to_string()),
                    }
                } else {
                    path
                };
                match read_appspec_file(&file) {
                    Ok(text) => Validation::Valid {
                        pinned: None,
                        appspec: Some(text),
                    },
                    Err(message) if !file.exists() => invalid(ErrorCode::RevisionMissing, message),
                    Err(message) => invalid(ErrorCode::InvalidRevision, message),
                }
            }
            RevisionLocation::S3(loc) => self.lambda_appspec_in_s3(loc).await,
            other => invalid(
                ErrorCode::InvalidRevision,
                format!(
                    "a Lambda deployment's revision is an AppSpec file, in S3 or inline; this one is a {} revision",
                    other.revision_type()
                ),
            ),
        }
    }
}

impl LocalRevisions {
    /// A Lambda AppSpec in S3: checked and pinned as any S3 revision is, then read.
    async fn lambda_appspec_in_s3(&self, loc: &S3Location) -> Validation {
        let pinned = match self.validate_s3(loc).await {
            Validation::Valid {
                pinned: Some(RevisionLocation::S3(pinned)),
                ..
            } => pinned,
            other => return other,
        };
        let Ok(s3) = self.s3.clone() else {
            return Validation::valid();
        };
        let wanted = pinned.clone();
        let read =
            tokio::task::spawn_blocking(move || s3.get_text(&wanted, MAX_LAMBDA_APPSPEC_BYTES))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
        match read {
            Ok((_, text)) => Validation::Valid {
                pinned: Some(RevisionLocation::S3(pinned)),
                appspec: Some(text),
            },
            Err(message) => {
                Validation::Invalid(ErrorInformation::new(ErrorCode::InvalidRevision, message))
            }
        }
    }
}

/// The text of an AppSpec file, refusing one too large to be an AppSpec.
fn read_appspec_file(file: &Path) -> Result<String, String> {
    let size = std::fs::metadata(file)
        .map_err(|e| format!("{}: {e}", file.display()))?
        .len();
    if size > MAX_LAMBDA_APPSPEC_BYTES {
        return Err(format!(
            "{} is {size} bytes; an AppSpec is a short YAML or JSON file",
            file.display()
        ));
    }
    std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))
}

impl RevisionSource for LocalRevisions {
    async fn validate(&self, d: &Deployment) -> Result<Validation, PortError> {
        if d.group.compute_platform == ComputePlatform::Lambda {
            return Ok(self.validate_lambda(&d.revision).await);
        }
        let local = match &d.revision {
            RevisionLocation::Local(local) => local,
            RevisionLocation::S3(loc) => return Ok(self.validate_s3(loc).await),
            other => {
                return Ok(Validation::Invalid(ErrorInformation::new(
                    ErrorCode::InvalidRevision,
                    format!(
                        "cutover deploys revisions on this machine or in S3 to local hosts; this deployment's revision is a {} revision",
                        other.revision_type()
                    ),
                )));
            }
        };
        let dir = PathBuf::from(&local.path);
        let checked = find_appspec(&dir, None)
            .map_err(|e| e.to_string())
            .and_then(|path| {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                parse_server(&text, "appspec.yml").map_err(|e| e.to_string())
            });
        Ok(match checked {
            Ok(_) => Validation::valid(),
            Err(message) if !dir.exists() => Validation::Invalid(ErrorInformation::new(
                ErrorCode::RevisionMissing,
                format!("The revision {} is gone: {message}", dir.display()),
            )),
            Err(message) => {
                Validation::Invalid(ErrorInformation::new(ErrorCode::InvalidRevision, message))
            }
        })
    }
}

/// Hosts on this machine: each a directory that is its `/` (or `/` itself), running the agent
/// library in-process on a blocking thread.
#[derive(Debug)]
pub struct LocalHosts {
    store: Arc<LocalStore>,
    parallel: Arc<Semaphore>,
    kill_grace: Duration,
    /// Access to S3, for hosts to download S3 revisions, or why there is none.
    s3: Result<S3Access, String>,
}

impl LocalHosts {
    pub fn new(store: Arc<LocalStore>, parallel_hosts: usize) -> Self {
        LocalHosts {
            store,
            parallel: Arc::new(Semaphore::new(parallel_hosts.max(1))),
            kill_grace: Duration::from_secs(10),
            s3: S3Access::from_env(),
        }
    }

    fn request(&self, d: &Deployment, target: &TargetId) -> Result<RunRequest, PortError> {
        let host = self
            .store
            .host(
                &d.application_name,
                &d.group.deployment_group_name,
                target.as_str(),
            )?
            .ok_or_else(|| {
                PortError::permanent(format!(
                    "{target} is no longer a host of deployment group {}",
                    d.group.deployment_group_name
                ))
            })?;
        let bundle = match &d.revision {
            RevisionLocation::Local(local) => BundleSource::Path(PathBuf::from(&local.path)),
            RevisionLocation::S3(loc) => {
                let s3 = self.s3.as_ref().map_err(|why| {
                    PortError::permanent(format!(
                        "{target} cannot download s3://{}/{}: {why}",
                        loc.bucket, loc.key
                    ))
                })?;
                let url = s3
                    .presign("GET", loc, std::time::SystemTime::now(), URL_LIFETIME)
                    .map_err(PortError::permanent)?;
                BundleSource::Url(url)
            }
            other => {
                return Err(PortError::permanent(format!(
                    "{target} cannot install a {} revision",
                    other.revision_type()
                )));
            }
        };
        let root = DeploymentRoot::new(HostRoot::new(&host.root), DEFAULT_ROOT)
            .map_err(|e| PortError::permanent(format!("{target}: {e}")))?;
        Ok(RunRequest {
            deployment_id: d.deployment_id.to_string(),
            application_name: d.application_name.clone(),
            group_name: d.group.deployment_group_name.clone(),
            group_id: d.group.deployment_group_id.clone(),
            bundle,
            sha256: None,
            appspec_name: None,
            revision: RevisionEnv::from_location(&d.revision),
            file_exists_behavior: Some(d.options.file_exists_behavior),
            ignore_application_stop_failures: d.options.ignore_application_stop_failures,
            root,
            limits: BundleLimits::default(),
            fetch: FetchOptions::default(),
            kill_grace: self.kill_grace,
            tools: Tools::default(),
        })
    }
}

impl HookRunner for LocalHosts {
    /// Runs the first of `events` while the engine waits, so that each outcome is saved before
    /// the next event starts.
    async fn run(
        &self,
        d: &Deployment,
        target: &TargetId,
        events: &[LifecycleEventName],
        _claim: Option<&str>,
    ) -> Result<HostRun, PortError> {
        let &[event, ..] = events else {
            return Ok(HostRun::Finished(Vec::new()));
        };
        let req = self.request(d, target)?;
        let _turn = self
            .parallel
            .acquire()
            .await
            .map_err(|e| PortError::permanent(e.to_string()))?;
        let report = tokio::task::spawn_blocking(move || {
            cutover_agent::run::run(&req, &[event], |_| {}).pop()
        })
        .await
        .map_err(|e| PortError::permanent(format!("{target} {event}: {e}")))?
        .ok_or_else(|| PortError::permanent(format!("{target} did not report {event}")))?;
        let status = match report.status {
            LifecycleEventStatus::Succeeded => OutcomeStatus::Succeeded,
            LifecycleEventStatus::Skipped => OutcomeStatus::Skipped,
            _ => OutcomeStatus::Failed,
        };
        let outcome = LifecycleOutcome {
            status,
            diagnostics: report.diagnostics,
            start_time: report.start_time,
            end_time: report.end_time,
        };
        Ok(HostRun::Finished(vec![(event, outcome)]))
    }

    /// Local hosts finish their events before `run` returns, so there is never a command to
    /// poll.
    async fn poll(
        &self,
        target: &TargetId,
        command_id: &str,
        _events: &[LifecycleEventName],
        _attempt: u32,
    ) -> Result<Polled, PortError> {
        Err(PortError::permanent(format!(
            "{target} is a local host: it has no command {command_id} to look at"
        )))
    }

    /// Scripts already running are let finish: the engine starts nothing more on these hosts
    /// once the deployment is over, which is the next safe point.
    async fn stop(&self, _d: &Deployment, _targets: &[TargetId]) -> Result<(), PortError> {
        Ok(())
    }
}

/// Where trigger notifications go, one JSON object per line, as a topic would receive them.
pub const NOTIFICATIONS_FILE: &str = "notifications.jsonl";

/// Appends trigger notifications to a file in the state directory.
#[derive(Debug)]
pub struct FileNotifier(PathBuf);

impl Notifier for FileNotifier {
    async fn notify(
        &self,
        d: &Deployment,
        event: TriggerEventType,
        target: Option<&TargetId>,
    ) -> Result<(), PortError> {
        let line = serde_json::json!({
            "eventTriggerName": event,
            "applicationName": d.application_name,
            "deploymentGroupName": d.group.deployment_group_name,
            "deploymentId": d.deployment_id,
            "instanceId": target,
            "status": d.status(),
            "time": now(),
        });
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.0)?;
            writeln!(f, "{line}")
        };
        write().map_err(|e| PortError::transient(format!("{}: {e}", self.0.display())))
    }
}
