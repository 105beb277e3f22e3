//! Deployment targets and their lifecycle events, with the diagnostics a host reports.

use serde::{Deserialize, Serialize};

use super::wire_enum;
use crate::ids::{DeploymentId, TargetId};
use crate::lifecycle::LifecycleEventName;
use crate::time::Timestamp;

wire_enum! {
    /// A target's status within one deployment.
    pub enum TargetStatus as "target status" {
        Pending = "Pending",
        InProgress = "InProgress",
        Succeeded = "Succeeded",
        Failed = "Failed",
        Skipped = "Skipped",
        Unknown = "Unknown",
        Ready = "Ready",
    }
}

impl TargetStatus {
    /// True once the target can change no more in this deployment.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            TargetStatus::Succeeded | TargetStatus::Failed | TargetStatus::Skipped
        )
    }
}

wire_enum! {
    /// One lifecycle event's status on one target.
    pub enum LifecycleEventStatus as "lifecycle event status" {
        Pending = "Pending",
        InProgress = "InProgress",
        Succeeded = "Succeeded",
        Failed = "Failed",
        Skipped = "Skipped",
        Unknown = "Unknown",
    }
}

impl LifecycleEventStatus {
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            LifecycleEventStatus::Succeeded
                | LifecycleEventStatus::Failed
                | LifecycleEventStatus::Skipped
        )
    }
}

wire_enum! {
    /// The outcome code of a lifecycle event's scripts (`diagnostics.errorCode`).
    pub enum LifecycleErrorCode as "lifecycle error code" {
        Success = "Success",
        ScriptMissing = "ScriptMissing",
        ScriptNotExecutable = "ScriptNotExecutable",
        ScriptTimedOut = "ScriptTimedOut",
        ScriptFailed = "ScriptFailed",
        UnknownError = "UnknownError",
    }
}

/// The most output a diagnostics record keeps: the last 4 KB.
pub const LOG_TAIL_LIMIT: usize = 4096;

/// What a host says about one lifecycle event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnostics {
    pub error_code: LifecycleErrorCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_name: Option<String>,
    #[serde(default)]
    pub message: String,
    #[serde(default, deserialize_with = "deserialize_log_tail")]
    pub log_tail: String,
}

impl Diagnostics {
    pub fn new(
        error_code: LifecycleErrorCode,
        script_name: Option<String>,
        message: impl Into<String>,
        log: &str,
    ) -> Self {
        Diagnostics {
            error_code,
            script_name,
            message: message.into(),
            log_tail: log_tail(log).to_owned(),
        }
    }
}

/// The last [`LOG_TAIL_LIMIT`] bytes of `log`, cut at a character boundary.
pub fn log_tail(log: &str) -> &str {
    if log.len() <= LOG_TAIL_LIMIT {
        return log;
    }
    let mut start = log.len() - LOG_TAIL_LIMIT;
    while !log.is_char_boundary(start) {
        start += 1;
    }
    &log[start..]
}

fn deserialize_log_tail<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let log = String::deserialize(d)?;
    Ok(log_tail(&log).to_owned())
}

/// One lifecycle event on one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleEvent {
    pub lifecycle_event_name: LifecycleEventName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Diagnostics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
    pub status: LifecycleEventStatus,
}

impl LifecycleEvent {
    pub fn pending(name: LifecycleEventName) -> Self {
        LifecycleEvent {
            lifecycle_event_name: name,
            diagnostics: None,
            start_time: None,
            end_time: None,
            status: LifecycleEventStatus::Pending,
        }
    }
}

wire_enum! {
    /// Which fleet of a blue/green deployment a host belongs to.
    pub enum TargetLabel as "target label" {
        Blue = "Blue",
        Green = "Green",
    }
}

wire_enum! {
    pub enum DeploymentTargetType as "deployment target type" {
        InstanceTarget = "InstanceTarget",
        LambdaTarget = "LambdaTarget",
        EcsTarget = "ECSTarget",
        CloudFormationTarget = "CloudFormationTarget",
    }
}

/// CodeDeploy's `instanceTarget`: one host of a deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceTarget {
    pub deployment_id: DeploymentId,
    pub target_id: TargetId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_arn: Option<String>,
    pub status: TargetStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_at: Option<Timestamp>,
    pub lifecycle_events: Vec<LifecycleEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_label: Option<TargetLabel>,
}

/// CodeDeploy's `lambdaTarget`: the alias a Lambda deployment moves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LambdaTarget {
    pub deployment_id: DeploymentId,
    pub target_id: TargetId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_arn: Option<String>,
    pub status: TargetStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_at: Option<Timestamp>,
    pub lifecycle_events: Vec<LifecycleEvent>,
    pub lambda_function_info: LambdaFunctionInfo,
}

/// CodeDeploy's `lambdaFunctionInfo`: the function, its alias, both versions, and the share of
/// traffic the target version has.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LambdaFunctionInfo {
    pub function_name: String,
    pub function_alias: String,
    pub current_version: String,
    pub target_version: String,
    pub target_version_weight: f64,
}

/// CodeDeploy's `deploymentTarget`, as `GetDeploymentTarget` returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentTarget {
    pub deployment_target_type: DeploymentTargetType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_target: Option<InstanceTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_target: Option<LambdaTarget>,
}

/// CodeDeploy's older `instanceSummary`, as `GetDeploymentInstance` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceSummary {
    pub deployment_id: DeploymentId,
    pub instance_id: TargetId,
    pub status: TargetStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_at: Option<Timestamp>,
    pub lifecycle_events: Vec<LifecycleEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<TargetLabel>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tails_keep_the_last_4kb_on_a_char_boundary() {
        let short = "hello";
        assert_eq!(log_tail(short), short);
        let long = format!("{}{}", "é".repeat(3000), "end");
        let tail = log_tail(&long);
        assert!(tail.len() <= LOG_TAIL_LIMIT && tail.len() >= LOG_TAIL_LIMIT - 1);
        assert!(tail.ends_with("end"));
        let d = Diagnostics::new(
            LifecycleErrorCode::ScriptFailed,
            Some("s.sh".into()),
            "m",
            &long,
        );
        assert_eq!(d.log_tail, tail);
        // Stored or received diagnostics are bounded too.
        let json = serde_json::json!({"errorCode": "ScriptFailed", "message": "m", "logTail": "x".repeat(10_000)});
        let d: Diagnostics = serde_json::from_value(json).unwrap();
        assert_eq!(d.log_tail.len(), LOG_TAIL_LIMIT);
    }

    #[test]
    fn lifecycle_events_use_codedeploys_wire_form() {
        let json = r#"{"lifecycleEventName":"AfterInstall","diagnostics":{"errorCode":"ScriptFailed","scriptName":"scripts/after.sh","message":"Script at specified location: scripts/after.sh run as user root failed with exit code 3","logTail":"boom\n"},"startTime":1700000000.0,"endTime":1700000001.5,"status":"Failed"}"#;
        let e: LifecycleEvent = serde_json::from_str(json).unwrap();
        assert_eq!(e.lifecycle_event_name, LifecycleEventName::AfterInstall);
        assert_eq!(e.status, LifecycleEventStatus::Failed);
        assert_eq!(serde_json::to_string(&e).unwrap(), json);
    }
}
