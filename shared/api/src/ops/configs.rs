//! CreateDeploymentConfig, GetDeploymentConfig, ListDeploymentConfigs and
//! DeleteDeploymentConfig. The predefined configurations are always there and cannot change.

use cutover_core::Timestamp;
use cutover_core::config::{
    self, ConfigError, DeploymentConfigInfo, MinimumHealthyHosts, TrafficRoutingConfig,
};
use cutover_core::model::ComputePlatform;
use cutover_engine::ids;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{internal, name, page};
use crate::registry::{ConfigDeletion, Registry};
use crate::wire::ApiError;

/// CodeDeploy's longest configuration name.
const MAX_NAME: usize = 100;

fn config_name(value: Option<&str>) -> Result<&str, ApiError> {
    name(
        value,
        "deployment configuration",
        MAX_NAME,
        "DeploymentConfigNameRequiredException",
        "InvalidDeploymentConfigNameException",
    )
}

/// A configuration's check, as the exception CodeDeploy answers with.
fn refused(e: ConfigError) -> ApiError {
    let name = match &e {
        ConfigError::InvalidName(_)
        | ConfigError::ReservedName(_)
        | ConfigError::UnknownPredefined(_) => "InvalidDeploymentConfigNameException",
        ConfigError::MissingSetting { platform, .. }
        | ConfigError::SettingNotAllowed { platform, .. }
            if *platform != ComputePlatform::Server =>
        {
            "InvalidTrafficRoutingConfigurationException"
        }
        ConfigError::MissingSetting { .. }
        | ConfigError::SettingNotAllowed { .. }
        | ConfigError::InvalidMinimumHealthyHosts { .. } => {
            "InvalidMinimumHealthyHostValueException"
        }
        ConfigError::InvalidTrafficRouting { .. } => "InvalidTrafficRoutingConfigurationException",
    };
    ApiError::codedeploy(name, e.to_string())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateInput {
    deployment_config_name: Option<String>,
    minimum_healthy_hosts: Option<MinimumHealthyHosts>,
    traffic_routing_config: Option<TrafficRoutingConfig>,
    compute_platform: Option<ComputePlatform>,
    zonal_config: Option<Value>,
}

pub async fn create(
    registry: &impl Registry,
    input: CreateInput,
    now: Timestamp,
) -> Result<Value, ApiError> {
    let name = config_name(input.deployment_config_name.as_deref())?;
    if input.zonal_config.is_some() {
        return Err(ApiError::codedeploy(
            "InvalidZonalDeploymentConfigurationException",
            "cutover does not deploy zone by zone yet; create the configuration without zonalConfig",
        ));
    }
    let config = DeploymentConfigInfo {
        deployment_config_id: Some(ids::uuid()),
        deployment_config_name: name.to_owned(),
        minimum_healthy_hosts: input.minimum_healthy_hosts,
        create_time: Some(now),
        compute_platform: input.compute_platform.unwrap_or_default(),
        traffic_routing_config: input.traffic_routing_config,
    };
    config.validate_custom().map_err(refused)?;
    let created = registry
        .create_config(&config)
        .await
        .map_err(internal("saving the deployment configuration"))?;
    if !created {
        return Err(ApiError::codedeploy(
            "DeploymentConfigAlreadyExistsException",
            format!("A deployment configuration named {name} already exists."),
        ));
    }
    Ok(json!({ "deploymentConfigId": config.deployment_config_id }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NameInput {
    deployment_config_name: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetOutput {
    deployment_config_info: DeploymentConfigInfo,
}

pub async fn get(registry: &impl Registry, input: NameInput) -> Result<GetOutput, ApiError> {
    let name = config_name(input.deployment_config_name.as_deref())?;
    let found = match config::predefined(name) {
        Some(predefined) => Some(predefined),
        None => registry
            .config(name)
            .await
            .map_err(internal("reading the deployment configuration"))?,
    };
    let deployment_config_info = found.ok_or_else(|| {
        ApiError::codedeploy(
            "DeploymentConfigDoesNotExistException",
            format!("No deployment configuration found for name: {name}"),
        )
    })?;
    Ok(GetOutput {
        deployment_config_info,
    })
}

pub async fn delete(registry: &impl Registry, input: NameInput) -> Result<Value, ApiError> {
    let name = config_name(input.deployment_config_name.as_deref())?;
    if config::predefined(name).is_some() {
        return Err(ApiError::codedeploy(
            "InvalidOperationException",
            format!("{name} is a predefined deployment configuration; it cannot be deleted."),
        ));
    }
    match registry
        .delete_config(name)
        .await
        .map_err(internal("deleting the deployment configuration"))?
    {
        ConfigDeletion::Deleted | ConfigDeletion::Missing => Ok(json!({})),
        ConfigDeletion::InUse(groups) => {
            let groups: Vec<String> = groups.iter().map(|(a, g)| format!("{a}/{g}")).collect();
            Err(ApiError::codedeploy(
                "DeploymentConfigInUseException",
                format!(
                    "The deployment configuration {name} is in use by {}; change those groups' configuration first.",
                    groups.join(", ")
                ),
            ))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListOutput {
    deployment_configs_list: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub async fn list(registry: &impl Registry, input: ListInput) -> Result<ListOutput, ApiError> {
    let mut names: Vec<String> = config::predefined_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    names.extend(
        registry
            .config_names()
            .await
            .map_err(internal("listing the deployment configurations"))?,
    );
    let (deployment_configs_list, next_token) = page(names, input.next_token.as_deref())?;
    Ok(ListOutput {
        deployment_configs_list,
        next_token,
    })
}
