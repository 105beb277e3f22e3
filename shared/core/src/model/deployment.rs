//! What users see of a deployment: CodeDeploy's `deploymentInfo` and the enums inside it.
//!
//! The state machine's own record of a deployment is `machine::Deployment`; `deploymentInfo` is
//! a view of it (see `Deployment::info`).

use serde::{Deserialize, Serialize};

use super::{
    AlarmConfiguration, AutoRollbackConfiguration, BlueGreenDeploymentConfiguration,
    ComputePlatform, DeploymentStyle, Ec2TagSet, LoadBalancerInfo, RevisionLocation, TagFilter,
    TargetStatus, wire_enum,
};
use crate::ids::DeploymentId;
use crate::time::Timestamp;

wire_enum! {
    /// A deployment's status.
    pub enum DeploymentStatus as "deployment status" {
        Created = "Created",
        Queued = "Queued",
        InProgress = "InProgress",
        Baking = "Baking",
        Ready = "Ready",
        Succeeded = "Succeeded",
        Failed = "Failed",
        Stopped = "Stopped",
    }
}

impl DeploymentStatus {
    /// True once the deployment can change no more.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            DeploymentStatus::Succeeded | DeploymentStatus::Failed | DeploymentStatus::Stopped
        )
    }
}

wire_enum! {
    /// The wait a `ContinueDeployment` call ends: a blue/green deployment's wait before it
    /// reroutes traffic, or its wait before it terminates the original hosts.
    pub enum DeploymentWaitType as "deployment wait type" {
        ReadyWait = "READY_WAIT",
        TerminationWait = "TERMINATION_WAIT",
    }
}

wire_enum! {
    /// Who or what started a deployment.
    pub enum DeploymentCreator as "deployment creator" {
        User = "user",
        Autoscaling = "autoscaling",
        CodeDeployRollback = "codeDeployRollback",
        CodeDeploy = "CodeDeploy",
        CodeDeployAutoUpdate = "CodeDeployAutoUpdate",
        CloudFormation = "CloudFormation",
        CloudFormationRollback = "CloudFormationRollback",
        AutoscalingTermination = "autoscalingTermination",
    }
}

wire_enum! {
    /// CodeDeploy's deployment error codes (`errorInformation.code`).
    pub enum ErrorCode as "error code" {
        AgentIssue = "AGENT_ISSUE",
        AlarmActive = "ALARM_ACTIVE",
        ApplicationMissing = "APPLICATION_MISSING",
        AutoscalingValidationError = "AUTOSCALING_VALIDATION_ERROR",
        AutoScalingConfiguration = "AUTO_SCALING_CONFIGURATION",
        AutoScalingIamRolePermissions = "AUTO_SCALING_IAM_ROLE_PERMISSIONS",
        CodedeployResourceCannotBeFound = "CODEDEPLOY_RESOURCE_CANNOT_BE_FOUND",
        CustomerApplicationUnhealthy = "CUSTOMER_APPLICATION_UNHEALTHY",
        DeploymentGroupMissing = "DEPLOYMENT_GROUP_MISSING",
        EcsUpdateError = "ECS_UPDATE_ERROR",
        ElasticLoadBalancingInvalid = "ELASTIC_LOAD_BALANCING_INVALID",
        ElbInvalidInstance = "ELB_INVALID_INSTANCE",
        HealthConstraints = "HEALTH_CONSTRAINTS",
        HealthConstraintsInvalid = "HEALTH_CONSTRAINTS_INVALID",
        HookExecutionFailure = "HOOK_EXECUTION_FAILURE",
        IamRoleMissing = "IAM_ROLE_MISSING",
        IamRolePermissions = "IAM_ROLE_PERMISSIONS",
        InternalError = "INTERNAL_ERROR",
        InvalidEcsService = "INVALID_ECS_SERVICE",
        InvalidLambdaConfiguration = "INVALID_LAMBDA_CONFIGURATION",
        InvalidLambdaFunction = "INVALID_LAMBDA_FUNCTION",
        InvalidRevision = "INVALID_REVISION",
        ManualStop = "MANUAL_STOP",
        MissingBlueGreenDeploymentConfiguration = "MISSING_BLUE_GREEN_DEPLOYMENT_CONFIGURATION",
        MissingElbInformation = "MISSING_ELB_INFORMATION",
        NoInstances = "NO_INSTANCES",
        OverMaxInstances = "OVER_MAX_INSTANCES",
        ResourceLimitExceeded = "RESOURCE_LIMIT_EXCEEDED",
        RevisionMissing = "REVISION_MISSING",
        Throttled = "THROTTLED",
        Timeout = "TIMEOUT",
    }
}

/// Why a deployment failed or stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInformation {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorInformation {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorInformation {
            code,
            message: message.into(),
        }
    }
}

/// How many targets are in each status. CodeDeploy spells these in PascalCase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeploymentOverview {
    pub pending: u64,
    pub in_progress: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub skipped: u64,
    pub ready: u64,
}

impl DeploymentOverview {
    /// Counts targets by status; CodeDeploy counts an `Unknown` target as `Pending`.
    pub fn count(statuses: impl IntoIterator<Item = TargetStatus>) -> Self {
        let mut o = DeploymentOverview::default();
        for status in statuses {
            match status {
                TargetStatus::Pending | TargetStatus::Unknown => o.pending += 1,
                TargetStatus::InProgress => o.in_progress += 1,
                TargetStatus::Succeeded => o.succeeded += 1,
                TargetStatus::Failed => o.failed += 1,
                TargetStatus::Skipped => o.skipped += 1,
                TargetStatus::Ready => o.ready += 1,
            }
        }
        o
    }

    /// How many targets were counted.
    pub fn total(&self) -> u64 {
        self.pending + self.in_progress + self.succeeded + self.failed + self.skipped + self.ready
    }
}

/// Links a deployment and its automatic rollback, in both directions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_deployment_id: Option<DeploymentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_triggering_deployment_id: Option<DeploymentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_message: Option<String>,
}

wire_enum! {
    /// What the install does with a file that is already at a destination.
    #[derive(Default)]
    pub enum FileExistsBehavior as "file exists behavior" {
        #[default]
        Disallow = "DISALLOW",
        Overwrite = "OVERWRITE",
        Retain = "RETAIN",
    }
}

/// A deployment's own choice of targets, instead of the group's (CodeDeploy's `targetInstances`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetInstances {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tag_filters: Vec<TagFilter>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auto_scaling_groups: Vec<String>,
    #[serde(rename = "ec2TagSet", default, skip_serializing_if = "Option::is_none")]
    pub ec2_tag_set: Option<Ec2TagSet>,
}

/// CodeDeploy's `deploymentInfo`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentInfo {
    pub application_name: String,
    pub deployment_group_name: String,
    pub deployment_config_name: String,
    pub deployment_id: DeploymentId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_revision: Option<RevisionLocation>,
    pub revision: RevisionLocation,
    pub status: DeploymentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_information: Option<ErrorInformation>,
    pub create_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete_time: Option<Timestamp>,
    pub deployment_overview: DeploymentOverview,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub creator: DeploymentCreator,
    #[serde(default)]
    pub ignore_application_stop_failures: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_rollback_configuration: Option<AutoRollbackConfiguration>,
    #[serde(default)]
    pub update_outdated_instances_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_info: Option<RollbackInfo>,
    pub deployment_style: DeploymentStyle,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_instances: Option<TargetInstances>,
    #[serde(default)]
    pub instance_termination_wait_time_started: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_green_deployment_configuration: Option<BlueGreenDeploymentConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_info: Option<LoadBalancerInfo>,
    pub file_exists_behavior: FileExistsBehavior,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deployment_status_messages: Vec<String>,
    pub compute_platform: ComputePlatform,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_alarm_configuration: Option<AlarmConfiguration>,
}
