//! CreateDeploymentGroup, GetDeploymentGroup, UpdateDeploymentGroup, DeleteDeploymentGroup,
//! ListDeploymentGroups and BatchGetDeploymentGroups.
//!
//! A group's input is read field by field: every field CodeDeploy defines is either one cutover
//! implements, checked and kept, or one it refuses with a message saying so. Nothing is
//! accepted and then ignored.

use cutover_core::config;
use cutover_core::model::{
    BlueGreenDeploymentConfiguration, ComputePlatform, DeploymentGroupInfo, DeploymentOption,
    DeploymentStyle, DeploymentType, GroupError, OutdatedInstancesStrategy,
};
use cutover_engine::ids;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::tags::{Tag, Tagged};
use super::{
    application_name, batch, existing_application, existing_group, group_does_not_exist,
    group_name, internal, page,
};
use crate::registry::{Registry, Rename};
use crate::wire::ApiError;

/// The most names one BatchGetDeploymentGroups takes.
const MAX_BATCH: usize = 100;

/// The group settings cutover implements, by their input names.
const SETTINGS: &[&str] = &[
    "deploymentConfigName",
    "ec2TagFilters",
    "onPremisesInstanceTagFilters",
    "autoScalingGroups",
    "serviceRoleArn",
    "triggerConfigurations",
    "alarmConfiguration",
    "autoRollbackConfiguration",
    "outdatedInstancesStrategy",
    "deploymentStyle",
    "loadBalancerInfo",
    "ec2TagSet",
    "onPremisesTagSet",
    "blueGreenDeploymentConfiguration",
];

/// Settings CodeDeploy has and cutover does not implement yet, with what to do instead.
const NOT_YET: &[(&str, &str)] = &[
    ("ecsServices", "cutover does not deploy to ECS services yet"),
    (
        "terminationHookEnabled",
        "cutover does not run deployments on Auto Scaling scale-in yet; leave out terminationHookEnabled",
    ),
];

/// The application, which must exist, and its platform.
async fn platform_of(registry: &impl Registry, app: &str) -> Result<ComputePlatform, ApiError> {
    Ok(existing_application(registry, app).await?.compute_platform)
}

/// A group check, as the exception CodeDeploy answers with.
fn refused(e: GroupError) -> ApiError {
    let name = match &e {
        GroupError::InvalidName { what, .. } if what.starts_with("application") => {
            "InvalidApplicationNameException"
        }
        GroupError::InvalidName { .. } => "InvalidDeploymentGroupNameException",
        GroupError::TagFiltersAndTagSet { .. } => "InvalidInputException",
        GroupError::TooManyAlarms { .. } | GroupError::AlarmsEnabledWithoutAlarms { .. } => {
            "InvalidAlarmConfigException"
        }
        GroupError::WaitTooLong { .. } | GroupError::MissingBlueGreenConfiguration { .. } => {
            "InvalidBlueGreenDeploymentConfigurationException"
        }
        GroupError::MissingLoadBalancerInfo { .. } => "InvalidLoadBalancerInfoException",
        GroupError::PlatformNeedsBlueGreen { .. }
        | GroupError::BlueGreenWithoutTrafficControl { .. } => "InvalidDeploymentStyleException",
        GroupError::RollbackWithoutEvents { .. } => "InvalidAutoRollbackConfigException",
        GroupError::DuplicateTrigger { .. } => "InvalidTriggerConfigException",
    };
    ApiError::codedeploy(name, e.to_string())
}

/// Lays the settings of `input` over `group` (a group as JSON), refusing what cutover does not
/// implement. A setting given replaces the group's; an empty list clears one.
fn overlay(group: &mut Map<String, Value>, input: &Map<String, Value>) -> Result<(), ApiError> {
    for (key, value) in input {
        if let Some((_, why)) = NOT_YET.iter().find(|(k, _)| k == key) {
            let empty = value.is_null()
                || value == &json!([])
                || value == &json!(false)
                || value == &json!({});
            if !empty {
                return Err(ApiError::codedeploy(
                    "InvalidInputException",
                    format!("{key}: {why}"),
                ));
            }
            continue;
        }
        if !SETTINGS.contains(&key.as_str()) {
            continue;
        }
        let value = match key.as_str() {
            // The input names Auto Scaling groups; the group describes each as {name, hook}.
            "autoScalingGroups" => {
                let names: Vec<String> = serde_json::from_value(value.clone()).map_err(|e| {
                    ApiError::codedeploy(
                        "InvalidAutoScalingGroupException",
                        format!(
                            "autoScalingGroups must be a list of Auto Scaling group names: {e}"
                        ),
                    )
                })?;
                json!(
                    names
                        .iter()
                        .map(|n| json!({ "name": n }))
                        .collect::<Vec<_>>()
                )
            }
            // Read here, so that a malformed one is refused with the exception CodeDeploy uses.
            "blueGreenDeploymentConfiguration" if !value.is_null() => {
                serde_json::from_value::<BlueGreenDeploymentConfiguration>(value.clone()).map_err(
                    |e| {
                        ApiError::codedeploy(
                            "InvalidBlueGreenDeploymentConfigurationException",
                            format!("blueGreenDeploymentConfiguration is not valid: {e}"),
                        )
                    },
                )?;
                value.clone()
            }
            _ => value.clone(),
        };
        group.insert(key.clone(), value);
    }
    Ok(())
}

/// The input's keys that CodeDeploy does not define for this operation.
fn unknown_keys(input: &Map<String, Value>, own: &[&str]) -> Vec<String> {
    input
        .keys()
        .filter(|k| {
            !own.contains(&k.as_str())
                && !SETTINGS.contains(&k.as_str())
                && !NOT_YET.iter().any(|(n, _)| n == k)
        })
        .cloned()
        .collect()
}

fn object(input: Value, own: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(input) = input else {
        return Err(ApiError::new(
            crate::wire::ErrorKind::Validation,
            "the request body must be a JSON object",
        ));
    };
    let unknown = unknown_keys(&input, own);
    if !unknown.is_empty() {
        return Err(ApiError::new(
            crate::wire::ErrorKind::Validation,
            format!(
                "unknown field(s) {}: not part of this operation's input",
                unknown.join(", ")
            ),
        ));
    }
    Ok(input)
}

fn text<'a>(input: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    input.get(key).and_then(Value::as_str)
}

/// What a Server group may not have yet. Blue/green groups are checked by the core
/// ([`DeploymentGroupInfo::validate`]): traffic control and a blueGreenDeploymentConfiguration.
fn check_server_group(group: &DeploymentGroupInfo) -> Result<(), ApiError> {
    if group.outdated_instances_strategy == OutdatedInstancesStrategy::Ignore {
        return Err(ApiError::codedeploy(
            "InvalidInputException",
            "outdatedInstancesStrategy IGNORE: cutover does not watch for instances launched during a deployment yet; leave it out",
        ));
    }
    if let Some(lb) = &group.load_balancer_info {
        if !lb.elb_info_list.is_empty() {
            return Err(ApiError::codedeploy(
                "InvalidLoadBalancerInfoException",
                "Classic Load Balancers (elbInfoList) are not supported; name an Application or Network Load Balancer target group in targetGroupInfoList",
            ));
        }
        if !lb.target_group_pair_info_list.is_empty() {
            return Err(ApiError::codedeploy(
                "InvalidLoadBalancerInfoException",
                "targetGroupPairInfoList is for ECS deployments, which cutover does not run yet",
            ));
        }
    }
    Ok(())
}

/// A Lambda group names no hosts; its function is in each revision's AppSpec. Its deployment
/// style is CodeDeploy's for Lambda: BLUE_GREEN with traffic control.
fn check_lambda_group(group: &mut DeploymentGroupInfo, style_given: bool) -> Result<(), ApiError> {
    let lambda_style = DeploymentStyle {
        deployment_type: DeploymentType::BlueGreen,
        deployment_option: DeploymentOption::WithTrafficControl,
    };
    if style_given && group.deployment_style != lambda_style {
        return Err(ApiError::codedeploy(
            "InvalidDeploymentStyleException",
            "a Lambda deployment group's deploymentStyle is deploymentType BLUE_GREEN with deploymentOption WITH_TRAFFIC_CONTROL; leave it out or give exactly that",
        ));
    }
    group.deployment_style = lambda_style;
    let hosts = [
        ("ec2TagFilters", !group.ec2_tag_filters.is_empty()),
        ("ec2TagSet", group.ec2_tag_set.is_some()),
        (
            "onPremisesInstanceTagFilters",
            !group.on_premises_instance_tag_filters.is_empty(),
        ),
        ("onPremisesTagSet", group.on_premises_tag_set.is_some()),
        ("autoScalingGroups", !group.auto_scaling_groups.is_empty()),
        ("loadBalancerInfo", group.load_balancer_info.is_some()),
        (
            "blueGreenDeploymentConfiguration",
            group.blue_green_deployment_configuration.is_some(),
        ),
        ("ecsServices", !group.ecs_services.is_empty()),
    ];
    if let Some((field, _)) = hosts.iter().find(|(_, given)| *given) {
        return Err(ApiError::codedeploy(
            "InvalidInputException",
            format!(
                "{field} does not apply to a Lambda deployment group: its function and alias are named by each revision's AppSpec"
            ),
        ));
    }
    Ok(())
}

/// Reads the group that `fields` describe, and checks it as CreateDeploymentGroup does.
async fn checked(
    registry: &impl Registry,
    fields: Map<String, Value>,
    platform: ComputePlatform,
) -> Result<DeploymentGroupInfo, ApiError> {
    let style_given = fields.contains_key("deploymentStyle");
    let mut group: DeploymentGroupInfo =
        serde_json::from_value(Value::Object(fields)).map_err(|e| {
            ApiError::codedeploy(
                "InvalidInputException",
                format!("the group's settings are not valid: {e}"),
            )
        })?;
    match platform {
        ComputePlatform::Server => check_server_group(&group)?,
        ComputePlatform::Lambda => check_lambda_group(&mut group, style_given)?,
        ComputePlatform::Ecs => {
            return Err(ApiError::codedeploy(
                "InvalidComputePlatformException",
                format!(
                    "application {} is an ECS application; cutover deploys to servers and Lambda functions for now",
                    group.application_name
                ),
            ));
        }
    }
    group.validate().map_err(refused)?;
    let config_name = &group.deployment_config_name;
    let known = match config::predefined(config_name) {
        Some(c) => Some(c),
        None => registry
            .config(config_name)
            .await
            .map_err(internal("reading the deployment configuration"))?,
    };
    match known {
        None => Err(ApiError::codedeploy(
            "DeploymentConfigDoesNotExistException",
            format!("No deployment configuration found for name: {config_name}"),
        )),
        Some(c) if c.compute_platform != platform => Err(ApiError::codedeploy(
            "InvalidDeploymentConfigNameException",
            format!(
                "{config_name} is a {} configuration; a {platform} group needs a {platform} configuration",
                c.compute_platform
            ),
        )),
        Some(_) => Ok(group),
    }
}

pub async fn create(registry: &impl Registry, input: Value) -> Result<Value, ApiError> {
    let input = object(input, &["applicationName", "deploymentGroupName", "tags"])?;
    let tags: Vec<Tag> = match input.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(t) => serde_json::from_value(t.clone())
            .map_err(|e| ApiError::codedeploy("InvalidTagsToAddException", format!("tags: {e}")))?,
    };
    // Checked before anything is saved.
    super::tags::merged(Vec::new(), tags.clone())?;
    let app = application_name(text(&input, "applicationName"))?.to_owned();
    let name = group_name(text(&input, "deploymentGroupName"))?.to_owned();
    if text(&input, "serviceRoleArn").is_none_or(str::is_empty) {
        return Err(ApiError::codedeploy(
            "RoleRequiredException",
            "The service role ARN must be specified (cutover keeps it with the group, as CodeDeploy does).",
        ));
    }
    let platform = platform_of(registry, &app).await?;
    let mut fields = Map::new();
    fields.insert("applicationName".into(), json!(app));
    fields.insert("deploymentGroupName".into(), json!(name));
    fields.insert("deploymentGroupId".into(), json!(ids::uuid()));
    fields.insert("computePlatform".into(), json!(platform));
    overlay(&mut fields, &input)?;
    let group = checked(registry, fields, platform).await?;
    let created = registry
        .create_group(&group)
        .await
        .map_err(internal("saving the deployment group"))?;
    if !created {
        return Err(ApiError::codedeploy(
            "DeploymentGroupAlreadyExistsException",
            format!("The deployment group {name} already exists with the application {app}."),
        ));
    }
    if !tags.is_empty() {
        let resource = Tagged::Group {
            application: app.clone(),
            group: name.clone(),
        };
        super::tags::add(registry, &resource, tags).await?;
    }
    Ok(json!({ "deploymentGroupId": group.deployment_group_id }))
}

pub async fn update(registry: &impl Registry, input: Value) -> Result<Value, ApiError> {
    let input = object(
        input,
        &[
            "applicationName",
            "currentDeploymentGroupName",
            "newDeploymentGroupName",
        ],
    )?;
    let app = application_name(text(&input, "applicationName"))?.to_owned();
    let current = group_name(text(&input, "currentDeploymentGroupName"))?.to_owned();
    let platform = platform_of(registry, &app).await?;
    let existing = existing_group(registry, &app, &current).await?;
    let Value::Object(mut fields) = serde_json::to_value(&existing)
        .map_err(|e| ApiError::new(crate::wire::ErrorKind::Internal, e.to_string()))?
    else {
        return Err(ApiError::new(
            crate::wire::ErrorKind::Internal,
            "a saved group is not a JSON object",
        ));
    };
    // The group's history is the store's, not the caller's.
    fields.remove("lastSuccessfulDeployment");
    fields.remove("lastAttemptedDeployment");
    if let Some(new_name) = input.get("newDeploymentGroupName").and_then(Value::as_str) {
        fields.insert(
            "deploymentGroupName".into(),
            json!(group_name(Some(new_name))?),
        );
    }
    overlay(&mut fields, &input)?;
    let group = checked(registry, fields, platform).await?;
    match registry
        .update_group(&current, &group)
        .await
        .map_err(internal("saving the deployment group"))?
    {
        Rename::Renamed => Ok(json!({ "hooksNotCleanedUp": [] })),
        Rename::Missing => Err(group_does_not_exist(&app, &current)),
        Rename::NameTaken => Err(ApiError::codedeploy(
            "DeploymentGroupAlreadyExistsException",
            format!(
                "The deployment group {} already exists with the application {app}.",
                group.deployment_group_name
            ),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NameInput {
    application_name: Option<String>,
    deployment_group_name: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetOutput {
    deployment_group_info: DeploymentGroupInfo,
}

pub async fn get(registry: &impl Registry, input: NameInput) -> Result<GetOutput, ApiError> {
    let app = application_name(input.application_name.as_deref())?;
    let name = group_name(input.deployment_group_name.as_deref())?;
    platform_of(registry, app).await?;
    let deployment_group_info = existing_group(registry, app, name).await?;
    Ok(GetOutput {
        deployment_group_info,
    })
}

pub async fn delete(registry: &impl Registry, input: NameInput) -> Result<Value, ApiError> {
    let app = application_name(input.application_name.as_deref())?;
    let name = group_name(input.deployment_group_name.as_deref())?;
    platform_of(registry, app).await?;
    registry
        .delete_group(app, name)
        .await
        .map_err(internal("deleting the deployment group"))?;
    Ok(json!({ "hooksNotCleanedUp": [] }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    application_name: Option<String>,
    next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListOutput {
    application_name: String,
    deployment_groups: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub async fn list(registry: &impl Registry, input: ListInput) -> Result<ListOutput, ApiError> {
    let app = application_name(input.application_name.as_deref())?;
    platform_of(registry, app).await?;
    let names = registry
        .group_names(app)
        .await
        .map_err(internal("listing the deployment groups"))?;
    let (deployment_groups, next_token) = page(names, input.next_token.as_deref())?;
    Ok(ListOutput {
        application_name: app.to_owned(),
        deployment_groups,
        next_token,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchGetInput {
    application_name: Option<String>,
    deployment_group_names: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetOutput {
    deployment_groups_info: Vec<DeploymentGroupInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
}

pub async fn batch_get(
    registry: &impl Registry,
    input: BatchGetInput,
) -> Result<BatchGetOutput, ApiError> {
    let app = application_name(input.application_name.as_deref())?;
    let names = batch(
        input.deployment_group_names,
        "deployment group names",
        MAX_BATCH,
        "DeploymentGroupNameRequiredException",
    )?;
    platform_of(registry, app).await?;
    let mut deployment_groups_info = Vec::new();
    let mut missing = Vec::new();
    for n in &names {
        let n = group_name(Some(n))?;
        match registry
            .group(app, n)
            .await
            .map_err(internal("reading the deployment group"))?
        {
            Some(g) => deployment_groups_info.push(g),
            None => missing.push(n.to_owned()),
        }
    }
    let error_message = (!missing.is_empty()).then(|| {
        format!(
            "No deployment group found in application {app} for: {}",
            missing.join(", ")
        )
    });
    Ok(BatchGetOutput {
        deployment_groups_info,
        error_message,
    })
}

#[cfg(test)]
mod tests {
    use cutover_core::Timestamp;
    use cutover_core::model::ApplicationInfo;

    use super::*;
    use crate::testing::MemoryRegistry;

    async fn shop() -> MemoryRegistry {
        let r = MemoryRegistry::default();
        let app = ApplicationInfo {
            application_id: "shop".into(),
            application_name: "Shop".into(),
            create_time: Timestamp::EPOCH,
            linked_to_git_hub: false,
            git_hub_account_name: None,
            compute_platform: ComputePlatform::Server,
        };
        assert!(r.create_application(&app).await.unwrap());
        r
    }

    fn settings() -> Value {
        json!({
            "terminateBlueInstancesOnDeploymentSuccess": {
                "action": "TERMINATE",
                "terminationWaitTimeInMinutes": 5
            },
            "deploymentReadyOption": {
                "actionOnTimeout": "STOP_DEPLOYMENT",
                "waitTimeInMinutes": 60
            },
            "greenFleetProvisioningOption": {"action": "COPY_AUTO_SCALING_GROUP"}
        })
    }

    /// CreateDeploymentGroup's input for a blue/green group Web, with `changes` laid over it
    /// (a null removes a field).
    fn blue_green(changes: Value) -> Value {
        let mut input = json!({
            "applicationName": "Shop",
            "deploymentGroupName": "Web",
            "serviceRoleArn": "arn:aws:iam::123456789012:role/CodeDeploy",
            "autoScalingGroups": ["web"],
            "deploymentStyle": {
                "deploymentType": "BLUE_GREEN",
                "deploymentOption": "WITH_TRAFFIC_CONTROL"
            },
            "loadBalancerInfo": {"targetGroupInfoList": [{"name": "web"}]},
            "blueGreenDeploymentConfiguration": settings(),
        });
        for (key, value) in changes.as_object().unwrap() {
            if value.is_null() {
                input.as_object_mut().unwrap().remove(key);
            } else {
                input[key] = value.clone();
            }
        }
        input
    }

    async fn described(r: &MemoryRegistry) -> Value {
        let input = serde_json::from_value(json!({
            "applicationName": "Shop",
            "deploymentGroupName": "Web"
        }))
        .unwrap();
        let out = get(r, input).await.unwrap();
        serde_json::to_value(out).unwrap()["deploymentGroupInfo"].clone()
    }

    #[tokio::test]
    async fn blue_green_server_groups_are_kept_and_described_as_codedeploy_does() {
        let r = shop().await;
        create(&r, blue_green(json!({}))).await.unwrap();
        let info = described(&r).await;
        assert_eq!(
            info["blueGreenDeploymentConfiguration"],
            settings(),
            "{info}"
        );
        assert_eq!(
            info["deploymentStyle"],
            json!({"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"})
        );

        let changed = json!({
            "terminateBlueInstancesOnDeploymentSuccess": {
                "action": "KEEP_ALIVE",
                "terminationWaitTimeInMinutes": 0
            },
            "deploymentReadyOption": {
                "actionOnTimeout": "CONTINUE_DEPLOYMENT",
                "waitTimeInMinutes": 0
            },
            "greenFleetProvisioningOption": {"action": "DISCOVER_EXISTING"}
        });
        update(
            &r,
            json!({
                "applicationName": "Shop",
                "currentDeploymentGroupName": "Web",
                "blueGreenDeploymentConfiguration": changed,
            }),
        )
        .await
        .unwrap();
        let info = described(&r).await;
        assert_eq!(info["blueGreenDeploymentConfiguration"], changed, "{info}");
        assert_eq!(info["deploymentStyle"]["deploymentType"], "BLUE_GREEN");

        // Back to in place: the group keeps its blue/green settings for when it goes back.
        update(
            &r,
            json!({
                "applicationName": "Shop",
                "currentDeploymentGroupName": "Web",
                "deploymentStyle": {
                    "deploymentType": "IN_PLACE",
                    "deploymentOption": "WITH_TRAFFIC_CONTROL"
                },
            }),
        )
        .await
        .unwrap();
        assert_eq!(
            described(&r).await["deploymentStyle"]["deploymentType"],
            "IN_PLACE"
        );
    }

    #[tokio::test]
    async fn blue_green_groups_are_checked_as_codedeploy_checks_them() {
        let r = shop().await;
        let refused = [
            (
                json!({"deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITHOUT_TRAFFIC_CONTROL"}}),
                "InvalidDeploymentStyleException",
                "WITH_TRAFFIC_CONTROL",
            ),
            (
                json!({"blueGreenDeploymentConfiguration": null}),
                "InvalidBlueGreenDeploymentConfigurationException",
                "needs a blueGreenDeploymentConfiguration",
            ),
            (
                json!({"blueGreenDeploymentConfiguration": {"deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 2881}}}),
                "InvalidBlueGreenDeploymentConfigurationException",
                "waitTimeInMinutes is 2881 minutes",
            ),
            (
                json!({"blueGreenDeploymentConfiguration": {"deploymentReadyOption": {"actionOnTimeout": "LATER"}}}),
                "InvalidBlueGreenDeploymentConfigurationException",
                "LATER",
            ),
            (
                json!({"loadBalancerInfo": null}),
                "InvalidLoadBalancerInfoException",
                "loadBalancerInfo",
            ),
        ];
        for (changes, exception, says) in refused {
            let e = create(&r, blue_green(changes.clone())).await.unwrap_err();
            assert_eq!(e.kind.name(), exception, "{changes}: {}", e.message);
            assert!(e.message.contains(says), "{changes}: {}", e.message);
        }
        assert!(r.group("Shop", "Web").await.unwrap().is_none());

        // An update is checked the same way, and leaves the group as it was when refused.
        create(&r, blue_green(json!({}))).await.unwrap();
        let e = update(
            &r,
            json!({
                "applicationName": "Shop",
                "currentDeploymentGroupName": "Web",
                "blueGreenDeploymentConfiguration": {"terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 3000}},
            }),
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.kind.name(),
            "InvalidBlueGreenDeploymentConfigurationException"
        );
        assert_eq!(
            described(&r).await["blueGreenDeploymentConfiguration"],
            settings()
        );
    }
}
