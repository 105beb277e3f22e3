//! Applications: a name and the compute platform that every deployment group under it uses.

use serde::{Deserialize, Serialize};

use super::wire_enum;
use crate::time::Timestamp;

wire_enum! {
    /// What an application deploys to.
    #[derive(Default)]
    pub enum ComputePlatform as "compute platform" {
        #[default]
        Server = "Server",
        Lambda = "Lambda",
        Ecs = "ECS",
    }
}

/// CodeDeploy's `applicationInfo`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationInfo {
    pub application_id: String,
    pub application_name: String,
    pub create_time: Timestamp,
    #[serde(default)]
    pub linked_to_git_hub: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_hub_account_name: Option<String>,
    #[serde(default)]
    pub compute_platform: ComputePlatform,
}
