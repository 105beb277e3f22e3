//! The machine's record of a deployment: everything a decision needs, snapshotted when the
//! deployment is created, plus its phase and its targets. `info()` and `Target::instance_target`
//! give CodeDeploy's views of it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{CoreError, Phase};
use crate::appspec::{LambdaAppSpec, parse_lambda};
use crate::config::DeploymentConfigInfo;
use crate::ids::{DeploymentId, TargetId};
use crate::lifecycle::LifecycleEventName;
use crate::model::{
    AlarmConfiguration, AutoRollbackConfiguration, ComputePlatform, DeploymentCreator,
    DeploymentGroupInfo, DeploymentInfo, DeploymentOverview, DeploymentStatus, DeploymentTarget,
    DeploymentTargetType, DeploymentType, DeploymentWaitType, ErrorInformation, FileExistsBehavior,
    InstanceTarget, LambdaFunctionInfo, LambdaTarget, LifecycleEvent, RevisionLocation,
    RollbackInfo, TargetInstances, TargetLabel, TargetStatus,
};
use crate::time::Timestamp;

/// A deployment as the state machine keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub deployment_id: DeploymentId,
    /// One more on every change; stores write conditionally on the version they read.
    pub version: u64,
    pub application_name: String,
    /// The group's settings when the deployment was created.
    pub group: DeploymentGroupInfo,
    /// The deployment configuration, resolved when the deployment was created.
    pub config: DeploymentConfigInfo,
    pub revision: RevisionLocation,
    /// The group's last successful deployment when this one was created: what a rollback
    /// restores, and where `ApplicationStop` scripts come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<PreviousDeployment>,
    pub creator: DeploymentCreator,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub options: DeploymentOptions,
    pub create_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete_time: Option<Timestamp>,
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_information: Option<ErrorInformation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_info: Option<RollbackInfo>,
    /// Shared, so that a step pays only for the targets it changes: cloning a deployment copies
    /// pointers, and comparing it with its clone skips the targets both still share. Change one
    /// with `Arc::make_mut`, and only when it really changes.
    #[serde(default)]
    pub targets: Vec<Arc<Target>>,
    /// A Lambda deployment's AppSpec, read when its revision is validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda: Option<LambdaAppSpec>,
}

/// A group's last successful deployment, as a later deployment remembers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviousDeployment {
    pub deployment_id: DeploymentId,
    pub revision: RevisionLocation,
}

/// The settings in force for this deployment: the group's, with the deployment's overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentOptions {
    pub ignore_application_stop_failures: bool,
    pub file_exists_behavior: FileExistsBehavior,
    pub auto_rollback_configuration: AutoRollbackConfiguration,
    /// True when the deployment's request replaced the group's rollback settings.
    pub auto_rollback_overridden: bool,
    pub alarm_configuration: AlarmConfiguration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_alarm_configuration: Option<AlarmConfiguration>,
    pub update_outdated_instances_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_instances: Option<TargetInstances>,
    /// How much faster than real time the deployment's waits pass (traffic intervals, hook
    /// deadlines, bake time): for rehearsals. `None` is real time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_scale: Option<u32>,
    /// How long a Lambda deployment keeps watching its alarms after all traffic has moved,
    /// ready to move it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_time_in_minutes: Option<u32>,
    /// How many replacement hosts a blue/green deployment provisions where the fleet does not
    /// say (simulated local hosts): by default as many as the original hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_hosts: Option<u32>,
}

/// One target of a deployment and its lifecycle events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub target_id: TargetId,
    pub status: TargetStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_at: Option<Timestamp>,
    pub lifecycle_events: Vec<LifecycleEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_label: Option<TargetLabel>,
    /// How many of `lifecycle_events`, from the first, have been handed to a host or to the
    /// traffic router. Outcomes are accepted only for those.
    #[serde(default)]
    pub dispatched: usize,
    /// The remote command running the target's current run, when a host runs its events as one
    /// command whose outcome arrives later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_command: Option<HostCommand>,
    /// The hook functions invoked for this target, with the execution ids they were given.
    /// The ids authorise their reports, so they are never shown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hook_executions: Vec<HookExecution>,
}

/// One invocation of a hook function, waiting for its report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookExecution {
    pub event: LifecycleEventName,
    pub execution_id: String,
    /// When the deployment fails if the function has not reported.
    pub deadline: Timestamp,
}

impl HookExecution {
    /// Whether `id` is this execution's id, compared in time that does not depend on where
    /// they differ.
    pub fn is(&self, id: &str) -> bool {
        let (a, b) = (self.execution_id.as_bytes(), id.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// A remote command that runs one run of a target's lifecycle events: claimed by one step,
/// then sent by it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostCommand {
    /// Names the step that sends the command. The command carries it, so that a step finding
    /// the claim without a command can look for one sent before its sender died.
    pub claim: String,
    /// When another step may take the run over if no command has been recorded.
    pub expires_at: Timestamp,
    /// Set once the command is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    /// The target's `dispatched` when the command was claimed: the command belongs to the run
    /// that ends there.
    pub run_end: usize,
}

impl HostCommand {
    /// The claim has run out without a command being recorded: its step died or gave up, and
    /// another may take over.
    pub fn expired(&self, now: Timestamp) -> bool {
        self.command_id.is_none() && self.expires_at <= now
    }
}

impl Target {
    /// The command claimed or sent for the target's current run, if the run has not finished.
    pub fn running_command(&self) -> Option<&HostCommand> {
        let command = self.host_command.as_ref()?;
        let running = command.run_end == self.dispatched
            && self.lifecycle_events[..self.dispatched]
                .iter()
                .any(|e| !e.status.is_final());
        running.then_some(command)
    }
}

impl Target {
    pub fn new(target_id: TargetId, events: &[LifecycleEventName]) -> Self {
        Target {
            target_id,
            status: TargetStatus::Pending,
            last_updated_at: None,
            lifecycle_events: events
                .iter()
                .copied()
                .map(LifecycleEvent::pending)
                .collect(),
            instance_label: None,
            dispatched: 0,
            host_command: None,
            hook_executions: Vec::new(),
        }
    }

    /// CodeDeploy's `instanceTarget` view of this target.
    pub fn instance_target(&self, deployment_id: &DeploymentId) -> InstanceTarget {
        InstanceTarget {
            deployment_id: deployment_id.clone(),
            target_id: self.target_id.clone(),
            target_arn: None,
            status: self.status,
            last_updated_at: self.last_updated_at,
            lifecycle_events: self.lifecycle_events.clone(),
            instance_label: self.instance_label,
        }
    }
}

/// Everything needed to create a deployment: what `CreateDeployment` and `cutover local deploy`
/// gather, with the group and configuration already looked up.
#[derive(Clone, Debug, PartialEq)]
pub struct CreateDeployment {
    pub deployment_id: DeploymentId,
    pub group: DeploymentGroupInfo,
    pub config: DeploymentConfigInfo,
    pub revision: RevisionLocation,
    pub previous: Option<PreviousDeployment>,
    pub creator: DeploymentCreator,
    pub description: Option<String>,
    pub ignore_application_stop_failures: bool,
    pub file_exists_behavior: Option<FileExistsBehavior>,
    /// Replaces the group's rollback settings when given.
    pub auto_rollback_configuration: Option<AutoRollbackConfiguration>,
    /// Replaces the group's alarm settings when given.
    pub override_alarm_configuration: Option<AlarmConfiguration>,
    pub update_outdated_instances_only: bool,
    pub target_instances: Option<TargetInstances>,
    /// See [`DeploymentOptions::time_scale`].
    pub time_scale: Option<u32>,
    /// See [`DeploymentOptions::bake_time_in_minutes`].
    pub bake_time_in_minutes: Option<u32>,
    /// See [`DeploymentOptions::replacement_hosts`].
    pub replacement_hosts: Option<u32>,
}

impl CreateDeployment {
    /// A request with CodeDeploy's defaults for everything but the essentials.
    pub fn new(
        deployment_id: DeploymentId,
        group: DeploymentGroupInfo,
        config: DeploymentConfigInfo,
        revision: RevisionLocation,
    ) -> Self {
        CreateDeployment {
            deployment_id,
            group,
            config,
            revision,
            previous: None,
            creator: DeploymentCreator::User,
            description: None,
            ignore_application_stop_failures: false,
            file_exists_behavior: None,
            auto_rollback_configuration: None,
            override_alarm_configuration: None,
            update_outdated_instances_only: false,
            target_instances: None,
            time_scale: None,
            bake_time_in_minutes: None,
            replacement_hosts: None,
        }
    }
}

impl Deployment {
    /// A new deployment in the `Created` phase, after checking that the request makes sense.
    pub fn create(req: CreateDeployment, now: Timestamp) -> Result<Deployment, CoreError> {
        req.group.validate()?;
        req.config.validate()?;
        if req.config.compute_platform != req.group.compute_platform {
            return Err(CoreError::PlatformMismatch {
                config: req.config.deployment_config_name.clone(),
                config_platform: req.config.compute_platform,
                group: req.group.deployment_group_name.clone(),
                group_platform: req.group.compute_platform,
            });
        }
        match req.group.compute_platform {
            ComputePlatform::Server => check_server_request(&req)?,
            ComputePlatform::Lambda => check_lambda_revision(&req.revision)?,
            ComputePlatform::Ecs => {
                return Err(CoreError::Unsupported(
                    "deploying to the ECS compute platform".into(),
                ));
            }
        }
        let overridden = req.auto_rollback_configuration.is_some();
        let auto_rollback_configuration = req
            .auto_rollback_configuration
            .or_else(|| req.group.auto_rollback_configuration.clone())
            .unwrap_or_default();
        let alarm_configuration = req
            .override_alarm_configuration
            .clone()
            .or_else(|| req.group.alarm_configuration.clone())
            .unwrap_or_default();
        Ok(Deployment {
            deployment_id: req.deployment_id,
            version: 0,
            application_name: req.group.application_name.clone(),
            options: DeploymentOptions {
                ignore_application_stop_failures: req.ignore_application_stop_failures,
                file_exists_behavior: req.file_exists_behavior.unwrap_or_default(),
                auto_rollback_configuration,
                auto_rollback_overridden: overridden,
                alarm_configuration,
                override_alarm_configuration: req.override_alarm_configuration,
                update_outdated_instances_only: req.update_outdated_instances_only,
                target_instances: req.target_instances,
                time_scale: req.time_scale,
                bake_time_in_minutes: req.bake_time_in_minutes,
                replacement_hosts: req.replacement_hosts,
            },
            group: req.group,
            config: req.config,
            revision: req.revision,
            previous: req.previous,
            creator: req.creator,
            description: req.description,
            create_time: now,
            start_time: None,
            complete_time: None,
            phase: Phase::Created,
            error_information: None,
            rollback_info: None,
            targets: Vec::new(),
            lambda: None,
        })
    }

    pub fn status(&self) -> DeploymentStatus {
        self.phase.status()
    }

    /// The execution of the hook of `event`, once its function has been given an id.
    pub fn hook_execution(&self, event: LifecycleEventName) -> Option<&HookExecution> {
        self.targets
            .iter()
            .flat_map(|t| &t.hook_executions)
            .find(|e| e.event == event)
    }

    pub fn is_finished(&self) -> bool {
        self.phase.is_finished()
    }

    /// A blue/green deployment to hosts: it replaces them rather than updating them.
    pub fn is_blue_green(&self) -> bool {
        self.group.compute_platform == ComputePlatform::Server
            && self.group.deployment_style.deployment_type == DeploymentType::BlueGreen
    }

    /// The wait a blue/green deployment is in, which `ContinueDeployment` may end.
    pub fn waiting_for(&self) -> Option<DeploymentWaitType> {
        match self.phase {
            Phase::WaitingForReroute { .. } => Some(DeploymentWaitType::ReadyWait),
            Phase::WaitingToTerminate { .. } => Some(DeploymentWaitType::TerminationWait),
            _ => None,
        }
    }

    /// Whether the wait before a blue/green deployment terminates its original hosts has begun.
    pub fn termination_wait_started(&self) -> bool {
        match self.phase {
            Phase::WaitingToTerminate { .. } => true,
            Phase::ReleasingOriginals
            | Phase::Finished {
                status: super::FinalStatus::Succeeded,
            } => self.is_blue_green() && super::blue_green::termination(self).is_some(),
            _ => false,
        }
    }

    pub fn with_traffic_control(&self) -> bool {
        self.group.deployment_style.with_traffic_control()
    }

    pub fn target(&self, id: &TargetId) -> Option<&Target> {
        self.targets
            .iter()
            .map(Arc::as_ref)
            .find(|t| &t.target_id == id)
    }

    /// How many targets are in each status.
    pub fn overview(&self) -> DeploymentOverview {
        DeploymentOverview::count(self.targets.iter().map(|t| t.status))
    }

    /// For a Lambda deployment, the share of its alias's traffic, in percent, given to the
    /// target version so far.
    pub fn target_version_percent(&self) -> Option<u8> {
        self.lambda
            .as_ref()
            .map(|_| super::lambda::target_percent(self))
    }

    /// CodeDeploy's `deploymentTarget` view of one of this deployment's targets.
    pub fn deployment_target(&self, t: &Target) -> DeploymentTarget {
        let Some(spec) = &self.lambda else {
            return DeploymentTarget {
                deployment_target_type: DeploymentTargetType::InstanceTarget,
                instance_target: Some(t.instance_target(&self.deployment_id)),
                lambda_target: None,
            };
        };
        let f = &spec.function;
        DeploymentTarget {
            deployment_target_type: DeploymentTargetType::LambdaTarget,
            instance_target: None,
            lambda_target: Some(LambdaTarget {
                deployment_id: self.deployment_id.clone(),
                target_id: t.target_id.clone(),
                target_arn: None,
                status: t.status,
                last_updated_at: t.last_updated_at,
                lifecycle_events: t.lifecycle_events.clone(),
                lambda_function_info: LambdaFunctionInfo {
                    function_name: f.name.clone(),
                    function_alias: f.alias.clone(),
                    current_version: f.current_version.clone(),
                    target_version: f.target_version.clone(),
                    target_version_weight: f64::from(super::lambda::target_percent(self)) / 100.0,
                },
            }),
        }
    }

    /// CodeDeploy's `deploymentInfo` view of this deployment.
    pub fn info(&self) -> DeploymentInfo {
        DeploymentInfo {
            application_name: self.application_name.clone(),
            deployment_group_name: self.group.deployment_group_name.clone(),
            deployment_config_name: self.config.deployment_config_name.clone(),
            deployment_id: self.deployment_id.clone(),
            previous_revision: self.previous.as_ref().map(|p| p.revision.clone()),
            revision: self.revision.clone(),
            status: self.status(),
            error_information: self.error_information.clone(),
            create_time: self.create_time,
            start_time: self.start_time,
            complete_time: self.complete_time,
            deployment_overview: self.overview(),
            description: self.description.clone(),
            creator: self.creator,
            ignore_application_stop_failures: self.options.ignore_application_stop_failures,
            auto_rollback_configuration: Some(self.options.auto_rollback_configuration.clone()),
            update_outdated_instances_only: self.options.update_outdated_instances_only,
            rollback_info: self.rollback_info.clone(),
            deployment_style: self.group.deployment_style,
            target_instances: self.options.target_instances.clone(),
            instance_termination_wait_time_started: self.termination_wait_started(),
            blue_green_deployment_configuration: self.group.blue_green_deployment_configuration,
            load_balancer_info: self.group.load_balancer_info.clone(),
            file_exists_behavior: self.options.file_exists_behavior,
            deployment_status_messages: Vec::new(),
            compute_platform: self.group.compute_platform,
            override_alarm_configuration: self.options.override_alarm_configuration.clone(),
        }
    }

    /// Replaces the revision with the exact object the validator found, after checking that it
    /// is the same revision.
    pub(super) fn pin_revision(&mut self, pinned: RevisionLocation) -> Result<(), CoreError> {
        let same = match (&self.revision, &pinned) {
            (RevisionLocation::S3(a), RevisionLocation::S3(b)) => {
                a.bucket == b.bucket && a.key == b.key
            }
            (RevisionLocation::GitHub(a), RevisionLocation::GitHub(b)) => {
                a.repository == b.repository
            }
            (RevisionLocation::Local(a), RevisionLocation::Local(b)) => a.path == b.path,
            (a, b) => a == b,
        };
        if !same {
            return Err(CoreError::InvalidEvent {
                event: "RevisionValidated",
                reason: format!(
                    "the validated revision ({:?}) is not the deployment's revision ({:?})",
                    pinned, self.revision
                ),
            });
        }
        self.revision = pinned;
        Ok(())
    }
}

fn check_server_request(req: &CreateDeployment) -> Result<(), CoreError> {
    if let Some(content) = req.revision.inline_content() {
        return Err(CoreError::InvalidRevision(format!(
            "Server deployments install a bundle (S3, GitHub or a local path); an inline AppSpec ({} characters) can only deploy Lambda functions or ECS services",
            content.content.len()
        )));
    }
    Ok(())
}

/// A Lambda revision is an AppSpec: inline (checked here, whole), in S3 or in a local file.
fn check_lambda_revision(revision: &RevisionLocation) -> Result<(), CoreError> {
    match revision {
        RevisionLocation::AppSpecContent(_) | RevisionLocation::String(_) => {
            lambda_appspec(revision, None).map(drop)
        }
        RevisionLocation::S3(_) | RevisionLocation::Local(_) => Ok(()),
        RevisionLocation::GitHub(_) => Err(CoreError::InvalidRevision(
            "a Lambda revision is an AppSpec file in S3 or given inline (AppSpecContent); GitHub revisions can only deploy to servers".into(),
        )),
    }
}

/// The Lambda AppSpec of a revision: its inline content, checked against its sha256, or
/// `fetched`, the text of the file the revision names.
pub fn lambda_appspec(
    revision: &RevisionLocation,
    fetched: Option<&str>,
) -> Result<LambdaAppSpec, CoreError> {
    let text = match (revision.inline_content(), fetched) {
        (Some(content), _) => {
            content
                .verify()
                .map_err(|e| CoreError::InvalidRevision(e.to_string()))?;
            content.content.as_str()
        }
        (None, Some(text)) => text,
        (None, None) => {
            return Err(CoreError::InvalidRevision(
                "the Lambda AppSpec of the revision was not read".into(),
            ));
        }
    };
    parse_lambda(text, "appspec").map_err(|e| CoreError::InvalidRevision(e.to_string()))
}
