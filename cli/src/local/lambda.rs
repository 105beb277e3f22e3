//! `cutover local deploy` of a Lambda AppSpec: the function's alias moves in the Lambda API the
//! environment or `--endpoint` names (an emulator's, for a rehearsal), step by step as the
//! configuration says, in real time or `--time-scale` times faster, and its hook functions are
//! invoked and report through `cutover serve` on the same state directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use cutover_agent::bundle::find_appspec;
use cutover_core::DeploymentId;
use cutover_core::appspec::{
    LambdaAppSpec, MAX_LAMBDA_APPSPEC_BYTES, detect_platform, parse_lambda,
};
use cutover_core::machine::CreateDeployment;
use cutover_core::model::{
    AppSpecContent, ComputePlatform, DeploymentCreator, DeploymentOption, DeploymentStyle,
    DeploymentType, RevisionLocation,
};
use cutover_engine::ids;

use super::Local;
use super::deploy::{
    DeployArgs, alarms, create_and_drive, find_config, finish, register_application, saved_group,
};
use crate::Outcome;

/// The configuration of a Lambda deployment when `--config` does not name one.
const DEFAULT_LAMBDA_CONFIG: &str = "CodeDeployDefault.LambdaAllAtOnce";

/// The options of `cutover local deploy` that only Lambda AppSpecs take.
#[derive(Debug, Default, Args)]
pub struct LambdaArgs {
    /// Lambda AppSpecs: the Lambda API to move the alias in and invoke hooks through, such as
    /// an emulator's [default: $AWS_ENDPOINT_URL_LAMBDA, else $AWS_ENDPOINT_URL, else AWS's]
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// Lambda AppSpecs: pass every wait (traffic intervals, the hooks' hour, the bake time) N
    /// times faster than real time, to rehearse a canary.
    #[arg(long, value_name = "N")]
    time_scale: Option<u32>,
    /// Lambda AppSpecs: after all traffic has moved, watch the alarms this many minutes more,
    /// and move the traffic back if one goes off.
    #[arg(long, value_name = "MINUTES")]
    bake_time: Option<u32>,
}

impl LambdaArgs {
    /// Refuses these options for a Server revision, which has no alias to move; a blue/green
    /// deployment has waits, so it takes `--time-scale`.
    pub fn refuse_for_servers(&self, blue_green: bool) -> anyhow::Result<()> {
        let given = [
            ("--endpoint", self.endpoint.is_some()),
            ("--time-scale", self.time_scale.is_some() && !blue_green),
            ("--bake-time", self.bake_time.is_some()),
        ];
        if let Some((option, _)) = given.iter().find(|(_, given)| *given) {
            bail!("{option} is for Lambda AppSpecs; this revision deploys to hosts");
        }
        if self.time_scale == Some(0) {
            bail!("--time-scale must be at least 1");
        }
        Ok(())
    }

    /// How much faster than real time the waits pass, when they are faster.
    pub fn time_scale(&self) -> Option<u32> {
        self.time_scale.filter(|&n| n > 1)
    }
}

/// The Lambda AppSpec that `revision` is (a file) or holds (a directory): its file and text.
/// `None` when it is anything else, such as a bundle for hosts.
pub fn lambda_appspec(revision: &Path) -> anyhow::Result<Option<(PathBuf, String)>> {
    let file = if revision.is_dir() {
        match find_appspec(revision, None).or_else(|_| find_appspec(revision, Some("appspec.json")))
        {
            Ok(file) => file,
            Err(_) => return Ok(None),
        }
    } else {
        let extension = revision
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        if !matches!(extension.as_deref(), Some("yml" | "yaml" | "json")) {
            return Ok(None);
        }
        revision.to_owned()
    };
    let size = std::fs::metadata(&file)
        .with_context(|| format!("revision {}", file.display()))?
        .len();
    if size > MAX_LAMBDA_APPSPEC_BYTES {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    Ok((detect_platform(&text) == Some(ComputePlatform::Lambda)).then_some((file, text)))
}

/// Deploys the Lambda AppSpec `text`, read from `file`.
pub fn deploy(args: DeployArgs, (file, text): (PathBuf, String)) -> anyhow::Result<Outcome> {
    let server_only = [
        ("--hosts", args.hosts.is_some()),
        ("--host", !args.host.is_empty()),
        ("--traffic-control", args.traffic_control),
        (
            "--file-exists-behavior",
            args.file_exists_behavior.is_some(),
        ),
        (
            "--ignore-application-stop-failures",
            args.ignore_application_stop_failures,
        ),
        ("--auto-rollback", args.auto_rollback),
    ];
    if let Some((option, _)) = server_only.iter().find(|(_, given)| *given) {
        let also = if *option == "--auto-rollback" {
            " (a Lambda deployment always moves its traffic back when it fails or stops)"
        } else {
            ""
        };
        bail!(
            "{option} is for revisions that deploy to hosts; {} is a Lambda AppSpec{also}",
            file.display()
        );
    }
    if args.lambda.time_scale == Some(0) {
        bail!("--time-scale must be 1 or more: how many times faster than real time waits pass");
    }
    let name = file
        .file_name()
        .map_or("appspec.yml".into(), |n| n.to_string_lossy().into_owned());
    let spec = parse_lambda(&text, &name)?;

    let state_dir = args.state.path()?;
    let local = Local::open_with(&state_dir, args.lambda.endpoint.as_deref())?;
    local.resume_interrupted()?;
    let store = local.store();
    let application = args
        .application
        .clone()
        .unwrap_or_else(|| "LocalFunctions".into());
    let group_name = args.group.clone().unwrap_or_else(|| default_group(&spec));
    let config_name = args
        .config
        .clone()
        .unwrap_or_else(|| DEFAULT_LAMBDA_CONFIG.into());
    let config = find_config(store, &config_name)?;
    if config.compute_platform != ComputePlatform::Lambda {
        bail!(
            "deployment configuration {config_name} is for {} deployments; a Lambda AppSpec needs a Lambda configuration, such as CodeDeployDefault.LambdaCanary10Percent5Minutes",
            config.compute_platform
        );
    }
    if let Some(app) = store.application(&application)?
        && app.compute_platform != ComputePlatform::Lambda
    {
        bail!(
            "application {application} deploys to {}; give a Lambda AppSpec an application of its own with --application",
            app.compute_platform
        );
    }
    register_application(store, &application, ComputePlatform::Lambda)?;
    let mut group = saved_group(&local, &application, &group_name)?;
    group.compute_platform = ComputePlatform::Lambda;
    group.deployment_config_name = config.deployment_config_name.clone();
    group.deployment_style = DeploymentStyle {
        deployment_type: DeploymentType::BlueGreen,
        deployment_option: DeploymentOption::WithTrafficControl,
    };
    group.validate()?;
    store.put_group(&group)?;

    let id = DeploymentId::from_entropy(ids::entropy());
    let content = AppSpecContent {
        sha256: Some(cutover_core::digest::sha256_hex(text.as_bytes())),
        content: text,
    };
    let mut req = CreateDeployment::new(
        id.clone(),
        group,
        config,
        RevisionLocation::AppSpecContent(content),
    );
    req.creator = DeploymentCreator::User;
    req.description = Some(format!("cutover local deploy {}", file.display()));
    req.override_alarm_configuration = alarms(&args.alarm);
    req.time_scale = args.lambda.time_scale();
    req.bake_time_in_minutes = args.lambda.bake_time.filter(|&m| m > 0);

    if !args.json {
        let f = &spec.function;
        let faster = req
            .time_scale
            .map(|n| format!(", waits {n} times faster"))
            .unwrap_or_default();
        eprintln!(
            "Deploying alias {} of {} from version {} to {} with {config_name}{faster}: {id}",
            f.alias, f.name, f.current_version, f.target_version
        );
        if !spec.hooks.is_empty() {
            eprintln!(
                "note: hook functions report with PutLifecycleEventHookExecutionStatus; point them at `cutover serve --state-dir {}`",
                state_dir.display()
            );
        }
    }
    let id = create_and_drive(&local, req)?;
    finish(&local, &id, args.json)
}

/// `<function>-<alias>`: one group per alias, so that deployments of one alias take turns.
fn default_group(spec: &LambdaAppSpec) -> String {
    let function = spec.function.name.rsplit(':').next().unwrap_or_default();
    format!("{function}-{}", spec.function.alias)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}
