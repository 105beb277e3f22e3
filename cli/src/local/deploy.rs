//! `cutover local deploy`: check the revision and the request before any host is touched, keep
//! a copy of the revision, register the group and its hosts, then create the deployment and
//! drive it (and any rollback it starts) to the end.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use cutover_agent::bundle::{self, BundleFormat, BundleLimits};
use cutover_core::DeploymentId;
use cutover_core::appspec::{ServerAppSpec, parse_server};
use cutover_core::config::{self, DeploymentConfigInfo};
use cutover_core::machine::CreateDeployment;
use cutover_core::model::{
    Alarm, AlarmConfiguration, ApplicationInfo, AutoRollbackConfiguration, AutoRollbackEvent,
    BlueGreenDeploymentConfiguration, BlueInstanceTerminationOption, ComputePlatform,
    DeploymentCreator, DeploymentGroupInfo, DeploymentOption, DeploymentReadyAction,
    DeploymentReadyOption, DeploymentType, FileExistsBehavior, GreenFleetProvisioningAction,
    GreenFleetProvisioningOption, InstanceAction, LoadBalancerInfo, LocalLocation,
    MAX_WAIT_MINUTES, NamedResource, RevisionLocation,
};
use cutover_engine::{Clock, SystemClock, ids};
use cutover_local::replacements::MAX_REPLACEMENTS;
use cutover_local::{LocalHost, LocalStore};

use super::{Local, StateDir, report};
use crate::Outcome;

/// The most simulated hosts one command makes.
const MAX_HOSTS: u32 = 10_000;

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// A revision: a directory, or a .zip, .tar, .tgz or .tar.gz bundle, with an appspec.yml;
    /// or a Lambda AppSpec (a .yml, .yaml or .json file, or a directory holding one).
    pub(super) revision: PathBuf,
    /// Simulate N hosts, host-1 ... host-N, each rooted at <state-dir>/hosts/host-<i>/ [default: the group's hosts, else 1]
    #[arg(long, value_name = "N", conflicts_with = "host")]
    pub(super) hosts: Option<u32>,
    /// A host by name and root directory; ROOT `/` is this machine, for real. Repeatable.
    #[arg(long, value_name = "NAME=ROOT")]
    pub(super) host: Vec<String>,
    /// [default: LocalApp, or LocalFunctions for a Lambda AppSpec]
    #[arg(long)]
    pub(super) application: Option<String>,
    /// [default: LocalFleet, or <function>-<alias> for a Lambda AppSpec]
    #[arg(long)]
    pub(super) group: Option<String>,
    /// A predefined configuration, or one made with `cutover local config create`
    /// [default: CodeDeployDefault.OneAtATime, or CodeDeployDefault.LambdaAllAtOnce]
    #[arg(long)]
    pub(super) config: Option<String>,
    /// What to do with files already at a destination (the AppSpec's choice wins).
    #[arg(long, value_name = "DISALLOW|OVERWRITE|RETAIN")]
    pub(super) file_exists_behavior: Option<FileExistsBehavior>,
    /// A failing ApplicationStop, BeforeBlockTraffic or AfterBlockTraffic does not fail the host.
    #[arg(long)]
    pub(super) ignore_application_stop_failures: bool,
    /// Take each host out of service (BlockTraffic) before it is updated and put it back
    /// (AllowTraffic) after; `status` shows which hosts are in service.
    #[arg(long)]
    pub(super) traffic_control: bool,
    /// If the deployment fails or is stopped, deploy the group's last successful revision again.
    #[arg(long)]
    pub(super) auto_rollback: bool,
    /// Stop the deployment when this alarm is in ALARM (see `cutover local alarm`). Repeatable.
    #[arg(long, value_name = "NAME")]
    pub(super) alarm: Vec<String>,
    #[command(flatten)]
    pub(super) blue_green: BlueGreenArgs,
    #[command(flatten)]
    pub(super) lambda: super::lambda::LambdaArgs,
    #[command(flatten)]
    pub(super) state: StateDir,
    /// Print {"deploymentInfo": ..., "targets": [...]} instead of the summary.
    #[arg(long)]
    pub(super) json: bool,
}

/// The options of a blue/green deployment to hosts.
#[derive(Debug, Default, Args)]
pub struct BlueGreenArgs {
    /// Deploy blue/green: install on new hosts (<group>-green-<i>), move traffic to them, then
    /// let the original hosts go. Implies --traffic-control.
    #[arg(long)]
    pub(super) blue_green: bool,
    /// How many replacement hosts to make [default: as many as the original hosts]
    #[arg(long, value_name = "N", requires = "blue_green")]
    pub(super) green_hosts: Option<u32>,
    /// Once the replacements are ready, wait this many minutes before the --ready-action
    /// [default: 0; 60 with --ready-action STOP]
    #[arg(long, value_name = "MIN", requires = "blue_green")]
    pub(super) ready_wait: Option<u32>,
    /// When the ready wait ends: CONTINUE moves traffic; STOP stops the deployment, unless
    /// `cutover local continue` moved traffic first [default: CONTINUE]
    #[arg(long, value_name = "CONTINUE|STOP", requires = "blue_green", value_parser = parse_ready_action)]
    pub(super) ready_action: Option<DeploymentReadyAction>,
    /// Terminate the original hosts this many minutes after traffic moved: they leave the group,
    /// and simulated ones lose their folders [default: 0]
    #[arg(
        long,
        value_name = "MIN",
        requires = "blue_green",
        conflicts_with = "keep_blue"
    )]
    pub(super) terminate_after: Option<u32>,
    /// Keep the original hosts, out of the group and out of service, instead of terminating them.
    #[arg(long, requires = "blue_green")]
    pub(super) keep_blue: bool,
}

fn parse_ready_action(s: &str) -> Result<DeploymentReadyAction, String> {
    match s.to_ascii_uppercase().as_str() {
        "CONTINUE" | "CONTINUE_DEPLOYMENT" => Ok(DeploymentReadyAction::ContinueDeployment),
        "STOP" | "STOP_DEPLOYMENT" => Ok(DeploymentReadyAction::StopDeployment),
        _ => Err(format!("expected CONTINUE or STOP, not '{s}'")),
    }
}

impl BlueGreenArgs {
    /// The group's blue/green settings, as these options give them.
    fn configuration(&self) -> anyhow::Result<Option<BlueGreenDeploymentConfiguration>> {
        if !self.blue_green {
            return Ok(None);
        }
        if let Some(n) = self.green_hosts
            && !(1..=MAX_REPLACEMENTS).contains(&n)
        {
            bail!("--green-hosts must be between 1 and {MAX_REPLACEMENTS}, not {n}");
        }
        let action = self
            .ready_action
            .unwrap_or(DeploymentReadyAction::ContinueDeployment);
        let wait = self.ready_wait.unwrap_or(match action {
            DeploymentReadyAction::StopDeployment => 60,
            DeploymentReadyAction::ContinueDeployment => 0,
        });
        for (option, minutes) in [
            ("--ready-wait", Some(wait)),
            ("--terminate-after", self.terminate_after),
        ] {
            if let Some(m) = minutes
                && m > MAX_WAIT_MINUTES
            {
                bail!("{option} is at most {MAX_WAIT_MINUTES} minutes (two days), not {m}");
            }
        }
        let terminate = if self.keep_blue {
            BlueInstanceTerminationOption {
                action: InstanceAction::KeepAlive,
                termination_wait_time_in_minutes: 0,
            }
        } else {
            BlueInstanceTerminationOption {
                action: InstanceAction::Terminate,
                termination_wait_time_in_minutes: self.terminate_after.unwrap_or(0),
            }
        };
        Ok(Some(BlueGreenDeploymentConfiguration {
            terminate_blue_instances_on_deployment_success: Some(terminate),
            deployment_ready_option: Some(DeploymentReadyOption {
                action_on_timeout: action,
                wait_time_in_minutes: wait,
            }),
            green_fleet_provisioning_option: Some(GreenFleetProvisioningOption {
                action: GreenFleetProvisioningAction::CopyAutoScalingGroup,
            }),
        }))
    }
}

pub fn run(mut args: DeployArgs) -> anyhow::Result<Outcome> {
    let state_dir = args.state.path()?;
    let revision_path = std::path::absolute(&args.revision)
        .with_context(|| format!("revision {}", args.revision.display()))?;
    if let Some(appspec) = super::lambda::lambda_appspec(&revision_path)? {
        return super::lambda::deploy(args, appspec);
    }
    args.lambda.refuse_for_servers(args.blue_green.blue_green)?;
    let application = args.application.take().unwrap_or_else(|| "LocalApp".into());
    let group_name = args.group.take().unwrap_or_else(|| "LocalFleet".into());
    let config_name = args
        .config
        .take()
        .unwrap_or_else(|| config::DEFAULT_SERVER_CONFIG.into());
    let explicit_hosts = explicit_hosts(&args.host)?;
    if let Some(n) = args.hosts
        && !(1..=MAX_HOSTS).contains(&n)
    {
        bail!("--hosts must be between 1 and {MAX_HOSTS}, not {n}");
    }
    for alarm in &args.alarm {
        if alarm.trim().is_empty() {
            bail!("--alarm needs an alarm name");
        }
    }

    let local = Local::open_dir(&state_dir)?;
    local.resume_interrupted()?;
    let store = local.store();
    let config = find_config(store, &config_name)?;
    if config.compute_platform != ComputePlatform::Server {
        bail!(
            "deployment configuration {} is for {} deployments; local hosts need a Server configuration",
            config.deployment_config_name,
            config.compute_platform
        );
    }

    let group = group_info(&local, &args, &application, &group_name, &config)?;

    let id = DeploymentId::from_entropy(ids::entropy());
    let snapshot = state_dir.join("revisions").join(id.as_str());
    let spec = match snapshot_revision(&revision_path, &snapshot) {
        Ok(spec) => spec,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&snapshot);
            return Err(e);
        }
    };

    let hosts = match (explicit_hosts, args.hosts) {
        (Some(hosts), _) => hosts,
        (None, Some(n)) => simulated_hosts(&state_dir, n),
        (None, None) => {
            let known = store.hosts(&application, &group_name)?;
            if known.is_empty() {
                simulated_hosts(&state_dir, 1)
            } else {
                known
            }
        }
    };
    register_application(store, &application, ComputePlatform::Server)?;
    store.put_group(&group)?;
    store.set_hosts(&application, &group_name, &hosts)?;

    let mut req = CreateDeployment::new(
        id.clone(),
        group,
        config,
        RevisionLocation::Local(LocalLocation {
            path: snapshot.to_string_lossy().into_owned(),
            bundle_type: None,
        }),
    );
    req.creator = DeploymentCreator::User;
    req.description = Some(format!("cutover local deploy {}", revision_path.display()));
    req.ignore_application_stop_failures = args.ignore_application_stop_failures;
    req.file_exists_behavior = args.file_exists_behavior;
    if args.auto_rollback {
        req.auto_rollback_configuration = Some(AutoRollbackConfiguration {
            enabled: true,
            events: vec![
                AutoRollbackEvent::DeploymentFailure,
                AutoRollbackEvent::DeploymentStopOnAlarm,
                AutoRollbackEvent::DeploymentStopOnRequest,
            ],
        });
    }
    req.override_alarm_configuration = alarms(&args.alarm);
    req.replacement_hosts = args.blue_green.green_hosts;
    req.time_scale = args.lambda.time_scale();

    if !args.json {
        eprintln!(
            "Deploying {}{} to {} ({} {}) with {}: {id}",
            args.revision.display(),
            if args.blue_green.blue_green {
                " blue/green"
            } else {
                ""
            },
            group_name,
            hosts.len(),
            crate::plural(hosts.len(), "host"),
            req.config.deployment_config_name,
        );
        if spec.hooks.is_empty() {
            eprintln!("note: the AppSpec hooks no lifecycle events; only files are installed");
        }
    }
    let created = create_and_drive(&local, req);
    if created.is_err() {
        let _ = std::fs::remove_dir_all(&snapshot);
    }
    finish(&local, &created?, args.json)
}

/// Creates the deployment and drives it, and any rollback it starts, to the end.
pub(super) fn create_and_drive(
    local: &Local,
    req: CreateDeployment,
) -> anyhow::Result<DeploymentId> {
    local.show_progress();
    let created = local.block_on(local.engine.create(req))?;
    local.drive()?;
    Ok(created.deployment_id)
}

/// Prints how the deployment ended, and its rollback's, and tells the command's outcome.
pub(super) fn finish(local: &Local, id: &DeploymentId, json: bool) -> anyhow::Result<Outcome> {
    let store = local.store();
    let d = local.deployment(id)?;
    report::print_deployment(store, &d, json)?;
    if !json
        && let Some(rollback) = d
            .rollback_info
            .as_ref()
            .and_then(|r| r.rollback_deployment_id.clone())
        && let Some(r) = store.load_deployment(&rollback)?
    {
        println!();
        report::print_deployment(store, &r, false)?;
    }
    Ok(crate::render::outcome(&d))
}

/// Copies (or unpacks) the revision into the state directory, refusing hostile archives, and
/// checks its AppSpec and everything the AppSpec names. Deployments and rollbacks install this
/// copy, so editing the revision afterwards changes neither.
fn snapshot_revision(revision: &Path, snapshot: &Path) -> anyhow::Result<ServerAppSpec> {
    if !revision.exists() {
        bail!("revision {} does not exist", revision.display());
    }
    let format = BundleFormat::detect(revision)
        .with_context(|| format!("revision {}", revision.display()))?;
    bundle::unpack(revision, format, snapshot, &BundleLimits::default())
        .with_context(|| format!("revision {} was refused", revision.display()))?;
    let appspec = bundle::find_appspec(snapshot, None)
        .with_context(|| format!("revision {}", revision.display()))?;
    let name = appspec
        .file_name()
        .map_or("appspec.yml".into(), |n| n.to_string_lossy().into_owned());
    let text = std::fs::read_to_string(&appspec)
        .with_context(|| format!("cannot read {name} in {}", revision.display()))?;
    let spec = parse_server(&text, &name)?;
    for file in &spec.files {
        let source = file.source.trim_start_matches('/');
        if !source.is_empty() && !snapshot.join(source).exists() {
            bail!(
                "{name}: files source '{}' is not in the revision {}",
                file.source,
                revision.display()
            );
        }
    }
    for (event, scripts) in &spec.hooks {
        for script in scripts {
            let location = script.location.trim_start_matches('/');
            if !snapshot.join(location).is_file() {
                bail!(
                    "{name}: the {event} hook's script '{}' is not in the revision {}",
                    script.location,
                    revision.display()
                );
            }
        }
    }
    Ok(spec)
}

fn explicit_hosts(specs: &[String]) -> anyhow::Result<Option<Vec<LocalHost>>> {
    if specs.is_empty() {
        return Ok(None);
    }
    let mut seen = HashSet::new();
    let mut hosts = Vec::with_capacity(specs.len());
    for spec in specs {
        let Some((name, root)) = spec.split_once('=') else {
            bail!("--host {spec}: expected NAME=ROOT, for example --host web-1=/tmp/web-1");
        };
        let name_ok = !name.is_empty()
            && name.len() <= 255
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !name_ok {
            bail!("--host {spec}: a host name is letters, digits, '-', '_' and '.', not '{name}'");
        }
        if root.is_empty() {
            bail!("--host {spec}: the root directory is missing");
        }
        if !seen.insert(name.to_owned()) {
            bail!("--host {name} is given twice");
        }
        hosts.push(LocalHost {
            name: name.to_owned(),
            root: std::path::absolute(root).with_context(|| format!("--host {spec}"))?,
        });
    }
    Ok(Some(hosts))
}

fn simulated_hosts(state_dir: &Path, n: u32) -> Vec<LocalHost> {
    (1..=n)
        .map(|i| LocalHost::simulated(state_dir, i))
        .collect()
}

/// Registers the application, unless it is already, so that the API (`cutover serve`) lists it.
pub(super) fn register_application(
    store: &LocalStore,
    name: &str,
    platform: ComputePlatform,
) -> anyhow::Result<()> {
    store.create_application(&ApplicationInfo {
        application_id: ids::uuid(),
        application_name: name.to_owned(),
        create_time: SystemClock.now(),
        linked_to_git_hub: false,
        git_hub_account_name: None,
        compute_platform: platform,
    })?;
    Ok(())
}

/// A predefined configuration, or one made with `cutover local config create`.
pub(super) fn find_config(store: &LocalStore, name: &str) -> anyhow::Result<DeploymentConfigInfo> {
    match config::predefined(name) {
        Some(c) => Ok(c),
        None => store.config(name)?.with_context(|| {
            format!(
                "deployment configuration {name} does not exist; use a predefined one (`cutover config list`) or create it with `cutover local config create`"
            )
        }),
    }
}

/// The alarms `--alarm` names, as the deployment's alarm configuration.
pub(super) fn alarms(names: &[String]) -> Option<AlarmConfiguration> {
    (!names.is_empty()).then(|| AlarmConfiguration {
        enabled: true,
        ignore_poll_alarm_failure: false,
        alarms: names
            .iter()
            .map(|name| Alarm { name: name.clone() })
            .collect(),
    })
}

/// The group `application`/`name` as it is saved, or a new one with its own id.
pub(super) fn saved_group(
    local: &Local,
    application: &str,
    name: &str,
) -> anyhow::Result<DeploymentGroupInfo> {
    Ok(local
        .store()
        .group(application, name)?
        .unwrap_or_else(|| DeploymentGroupInfo {
            application_name: application.to_owned(),
            deployment_group_name: name.to_owned(),
            deployment_group_id: ids::uuid(),
            ..Default::default()
        }))
}

/// The group as this deployment wants it, keeping the id it was given the first time.
fn group_info(
    local: &Local,
    args: &DeployArgs,
    application: &str,
    name: &str,
    config: &DeploymentConfigInfo,
) -> anyhow::Result<DeploymentGroupInfo> {
    let mut group = saved_group(local, application, name)?;
    group.deployment_config_name = config.deployment_config_name.clone();
    group.compute_platform = ComputePlatform::Server;
    group.blue_green_deployment_configuration = args.blue_green.configuration()?;
    group.deployment_style.deployment_type = if args.blue_green.blue_green {
        DeploymentType::BlueGreen
    } else {
        DeploymentType::InPlace
    };
    if args.traffic_control || args.blue_green.blue_green {
        group.deployment_style.deployment_option = DeploymentOption::WithTrafficControl;
        group.load_balancer_info = Some(LoadBalancerInfo {
            target_group_info_list: vec![NamedResource {
                name: format!("{name}-local"),
            }],
            ..Default::default()
        });
    } else {
        group.deployment_style.deployment_option = DeploymentOption::WithoutTrafficControl;
        group.load_balancer_info = None;
    }
    group.validate()?;
    Ok(group)
}
