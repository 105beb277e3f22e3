//! Deployment groups: which targets a deployment reaches, how it routes traffic, and what it does
//! on failure, with CodeDeploy's field names and limits.

use serde::{Deserialize, Serialize};

use super::{ComputePlatform, RevisionLocation, wire_enum};
use crate::time::Timestamp;

wire_enum! {
    /// How a tag filter compares a target's tags.
    pub enum TagFilterType as "tag filter type" {
        KeyOnly = "KEY_ONLY",
        ValueOnly = "VALUE_ONLY",
        KeyAndValue = "KEY_AND_VALUE",
    }
}

/// One tag filter. CodeDeploy spells these fields in PascalCase (`Key`, `Value`, `Type`), for EC2
/// (`EC2TagFilter`) and on-premises (`TagFilter`) alike.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagFilter {
    #[serde(rename = "Key", default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(rename = "Value", default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(rename = "Type")]
    pub filter_type: TagFilterType,
}

impl TagFilter {
    /// True if any of `tags` (key, value) satisfies this filter.
    pub fn matches<'a>(&self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
        let key = self.key.as_deref().unwrap_or_default();
        let value = self.value.as_deref().unwrap_or_default();
        tags.into_iter().any(|(k, v)| match self.filter_type {
            TagFilterType::KeyOnly => k == key,
            TagFilterType::ValueOnly => v == value,
            TagFilterType::KeyAndValue => k == key && v == value,
        })
    }
}

/// A list of filter groups: a target belongs if it matches at least one filter of every group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagSet(pub Vec<Vec<TagFilter>>);

impl TagSet {
    pub fn matches(&self, tags: &[(String, String)]) -> bool {
        !self.0.is_empty() && self.0.iter().all(|group| matches_any(group, tags))
    }
}

/// A target matched by a plain filter list (`ec2TagFilters`) matches any one of the filters.
pub fn matches_any(filters: &[TagFilter], tags: &[(String, String)]) -> bool {
    filters
        .iter()
        .any(|f| f.matches(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
}

/// CodeDeploy's `ec2TagSet`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ec2TagSet {
    #[serde(default)]
    pub ec2_tag_set_list: TagSet,
}

/// CodeDeploy's `onPremisesTagSet`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnPremisesTagSet {
    #[serde(default)]
    pub on_premises_tag_set_list: TagSet,
}

/// An Auto Scaling group whose members are targets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoScalingGroup {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_hook: Option<String>,
}

wire_enum! {
    pub enum DeploymentType as "deployment type" {
        InPlace = "IN_PLACE",
        BlueGreen = "BLUE_GREEN",
    }
}

wire_enum! {
    pub enum DeploymentOption as "deployment option" {
        WithTrafficControl = "WITH_TRAFFIC_CONTROL",
        WithoutTrafficControl = "WITHOUT_TRAFFIC_CONTROL",
    }
}

/// CodeDeploy's `deploymentStyle`. Both fields default to an in-place deployment without a load
/// balancer, as in CodeDeploy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStyle {
    #[serde(default = "in_place")]
    pub deployment_type: DeploymentType,
    #[serde(default = "without_traffic_control")]
    pub deployment_option: DeploymentOption,
}

fn in_place() -> DeploymentType {
    DeploymentType::InPlace
}

fn without_traffic_control() -> DeploymentOption {
    DeploymentOption::WithoutTrafficControl
}

impl Default for DeploymentStyle {
    fn default() -> Self {
        DeploymentStyle {
            deployment_type: DeploymentType::InPlace,
            deployment_option: DeploymentOption::WithoutTrafficControl,
        }
    }
}

impl DeploymentStyle {
    pub fn with_traffic_control(&self) -> bool {
        self.deployment_option == DeploymentOption::WithTrafficControl
    }
}

/// A named load balancer or target group (`elbInfo`, `targetGroupInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedResource {
    pub name: String,
}

/// The listeners that carry production or test traffic for an ECS deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficRoute {
    #[serde(default)]
    pub listener_arns: Vec<String>,
}

/// The two target groups of an ECS blue/green deployment and the listeners in front of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupPairInfo {
    #[serde(default)]
    pub target_groups: Vec<NamedResource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prod_traffic_route: Option<TrafficRoute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_traffic_route: Option<TrafficRoute>,
}

/// CodeDeploy's `loadBalancerInfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerInfo {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elb_info_list: Vec<NamedResource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_group_info_list: Vec<NamedResource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_group_pair_info_list: Vec<TargetGroupPairInfo>,
}

impl LoadBalancerInfo {
    pub fn is_empty(&self) -> bool {
        self.elb_info_list.is_empty()
            && self.target_group_info_list.is_empty()
            && self.target_group_pair_info_list.is_empty()
    }
}

wire_enum! {
    pub enum InstanceAction as "instance action" {
        Terminate = "TERMINATE",
        KeepAlive = "KEEP_ALIVE",
    }
}

wire_enum! {
    pub enum DeploymentReadyAction as "deployment ready action" {
        ContinueDeployment = "CONTINUE_DEPLOYMENT",
        StopDeployment = "STOP_DEPLOYMENT",
    }
}

wire_enum! {
    pub enum GreenFleetProvisioningAction as "green fleet provisioning action" {
        DiscoverExisting = "DISCOVER_EXISTING",
        CopyAutoScalingGroup = "COPY_AUTO_SCALING_GROUP",
    }
}

/// What happens to the original (blue) fleet after a successful blue/green deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlueInstanceTerminationOption {
    pub action: InstanceAction,
    #[serde(default)]
    pub termination_wait_time_in_minutes: u32,
}

/// When a blue/green deployment reroutes traffic to the replacement fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentReadyOption {
    pub action_on_timeout: DeploymentReadyAction,
    #[serde(default)]
    pub wait_time_in_minutes: u32,
}

/// How the replacement (green) fleet comes to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GreenFleetProvisioningOption {
    pub action: GreenFleetProvisioningAction,
}

/// CodeDeploy's `blueGreenDeploymentConfiguration`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenDeploymentConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminate_blue_instances_on_deployment_success: Option<BlueInstanceTerminationOption>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_ready_option: Option<DeploymentReadyOption>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub green_fleet_provisioning_option: Option<GreenFleetProvisioningOption>,
}

wire_enum! {
    /// What makes a deployment roll back automatically.
    pub enum AutoRollbackEvent as "auto rollback event" {
        DeploymentFailure = "DEPLOYMENT_FAILURE",
        DeploymentStopOnAlarm = "DEPLOYMENT_STOP_ON_ALARM",
        DeploymentStopOnRequest = "DEPLOYMENT_STOP_ON_REQUEST",
    }
}

/// CodeDeploy's `autoRollbackConfiguration`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoRollbackConfiguration {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub events: Vec<AutoRollbackEvent>,
}

impl AutoRollbackConfiguration {
    pub fn rolls_back_on(&self, event: AutoRollbackEvent) -> bool {
        self.enabled && self.events.contains(&event)
    }
}

/// A CloudWatch alarm (or, in local mode, a local alarm) by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    pub name: String,
}

/// The longest application or deployment group name CodeDeploy accepts, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// An application or deployment group name as CodeDeploy accepts it.
fn check_name(what: &'static str, name: &str) -> Result<(), GroupError> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(GroupError::InvalidName {
            what,
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// CodeDeploy's `alarmConfiguration`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmConfiguration {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub ignore_poll_alarm_failure: bool,
    #[serde(default)]
    pub alarms: Vec<Alarm>,
}

impl AlarmConfiguration {
    /// True if an alarm of this name stops the deployment when it goes into ALARM.
    pub fn watches(&self, alarm: &str) -> bool {
        self.enabled && self.alarms.iter().any(|a| a.name == alarm)
    }
}

wire_enum! {
    /// The events a trigger can publish.
    pub enum TriggerEventType as "trigger event type" {
        DeploymentStart = "DeploymentStart",
        DeploymentSuccess = "DeploymentSuccess",
        DeploymentFailure = "DeploymentFailure",
        DeploymentStop = "DeploymentStop",
        DeploymentRollback = "DeploymentRollback",
        DeploymentReady = "DeploymentReady",
        InstanceStart = "InstanceStart",
        InstanceSuccess = "InstanceSuccess",
        InstanceFailure = "InstanceFailure",
        InstanceReady = "InstanceReady",
    }
}

/// CodeDeploy's `triggerConfig`: where to publish which state changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerConfig {
    pub trigger_name: String,
    pub trigger_target_arn: String,
    #[serde(default)]
    pub trigger_events: Vec<TriggerEventType>,
}

wire_enum! {
    /// What happens to targets that join the group while a deployment runs (for example, new
    /// Auto Scaling instances).
    #[derive(Default)]
    pub enum OutdatedInstancesStrategy as "outdated instances strategy" {
        #[default]
        Update = "UPDATE",
        Ignore = "IGNORE",
    }
}

/// An ECS service that a deployment group deploys to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcsService {
    pub service_name: String,
    pub cluster_name: String,
}

/// A summary of a group's last attempted or last successful deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastDeploymentInfo {
    pub deployment_id: crate::ids::DeploymentId,
    pub status: super::DeploymentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
    pub create_time: Timestamp,
}

/// CodeDeploy's `deploymentGroupInfo`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentGroupInfo {
    pub application_name: String,
    pub deployment_group_id: String,
    pub deployment_group_name: String,
    #[serde(default = "default_config_name")]
    pub deployment_config_name: String,
    #[serde(
        rename = "ec2TagFilters",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ec2_tag_filters: Vec<TagFilter>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_premises_instance_tag_filters: Vec<TagFilter>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auto_scaling_groups: Vec<AutoScalingGroup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_revision: Option<RevisionLocation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trigger_configurations: Vec<TriggerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_configuration: Option<AlarmConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_rollback_configuration: Option<AutoRollbackConfiguration>,
    #[serde(default)]
    pub deployment_style: DeploymentStyle,
    #[serde(default)]
    pub outdated_instances_strategy: OutdatedInstancesStrategy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_green_deployment_configuration: Option<BlueGreenDeploymentConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_info: Option<LoadBalancerInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_deployment: Option<LastDeploymentInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_deployment: Option<LastDeploymentInfo>,
    #[serde(rename = "ec2TagSet", default, skip_serializing_if = "Option::is_none")]
    pub ec2_tag_set: Option<Ec2TagSet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_premises_tag_set: Option<OnPremisesTagSet>,
    #[serde(default)]
    pub compute_platform: ComputePlatform,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ecs_services: Vec<EcsService>,
    #[serde(default)]
    pub termination_hook_enabled: bool,
}

fn default_config_name() -> String {
    crate::config::DEFAULT_SERVER_CONFIG.to_owned()
}

/// The most alarms a group may watch, as in CodeDeploy.
pub const MAX_ALARMS: usize = 10;
/// The longest blue/green wait, in minutes, as in CodeDeploy.
pub const MAX_WAIT_MINUTES: u32 = 2880;

/// A deployment group's settings contradict each other or exceed CodeDeploy's limits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error(
        "{what} '{name}' is not a valid name: use 1 to {MAX_NAME_CHARS} characters, without control characters"
    )]
    InvalidName { what: &'static str, name: String },
    #[error("deployment group '{group}': use either {plain} or {set}, not both")]
    TagFiltersAndTagSet {
        group: String,
        plain: &'static str,
        set: &'static str,
    },
    #[error(
        "deployment group '{group}': {count} alarms given; a group may watch at most {MAX_ALARMS}"
    )]
    TooManyAlarms { group: String, count: usize },
    #[error(
        "deployment group '{group}': {field} is {minutes} minutes; the most allowed is {MAX_WAIT_MINUTES}"
    )]
    WaitTooLong {
        group: String,
        field: &'static str,
        minutes: u32,
    },
    #[error(
        "deployment group '{group}': a BLUE_GREEN deployment style needs a blueGreenDeploymentConfiguration"
    )]
    MissingBlueGreenConfiguration { group: String },
    #[error(
        "deployment group '{group}': a BLUE_GREEN deployment reroutes traffic through a load balancer; set deploymentOption WITH_TRAFFIC_CONTROL and name its target groups in loadBalancerInfo"
    )]
    BlueGreenWithoutTrafficControl { group: String },
    #[error(
        "deployment group '{group}': WITH_TRAFFIC_CONTROL needs loadBalancerInfo naming at least one target group or load balancer"
    )]
    MissingLoadBalancerInfo { group: String },
    #[error(
        "deployment group '{group}': {platform} deployment groups must use the BLUE_GREEN deployment type WITH_TRAFFIC_CONTROL"
    )]
    PlatformNeedsBlueGreen {
        group: String,
        platform: ComputePlatform,
    },
    #[error(
        "deployment group '{group}': automatic rollback is enabled but no rollback events are listed (use DEPLOYMENT_FAILURE, DEPLOYMENT_STOP_ON_ALARM or DEPLOYMENT_STOP_ON_REQUEST)"
    )]
    RollbackWithoutEvents { group: String },
    #[error("deployment group '{group}': alarm monitoring is enabled but no alarms are listed")]
    AlarmsEnabledWithoutAlarms { group: String },
    #[error("deployment group '{group}': two triggers are named '{name}'")]
    DuplicateTrigger { group: String, name: String },
}

impl DeploymentGroupInfo {
    /// Checks the settings against each other and against CodeDeploy's limits.
    pub fn validate(&self) -> Result<(), GroupError> {
        let group = || self.deployment_group_name.clone();
        check_name("application name", &self.application_name)?;
        check_name("deployment group name", &self.deployment_group_name)?;
        if !self.ec2_tag_filters.is_empty() && self.ec2_tag_set.is_some() {
            return Err(GroupError::TagFiltersAndTagSet {
                group: group(),
                plain: "ec2TagFilters",
                set: "ec2TagSet",
            });
        }
        if !self.on_premises_instance_tag_filters.is_empty() && self.on_premises_tag_set.is_some() {
            return Err(GroupError::TagFiltersAndTagSet {
                group: group(),
                plain: "onPremisesInstanceTagFilters",
                set: "onPremisesTagSet",
            });
        }
        if let Some(alarms) = &self.alarm_configuration {
            if alarms.alarms.len() > MAX_ALARMS {
                return Err(GroupError::TooManyAlarms {
                    group: group(),
                    count: alarms.alarms.len(),
                });
            }
            if alarms.enabled && alarms.alarms.is_empty() {
                return Err(GroupError::AlarmsEnabledWithoutAlarms { group: group() });
            }
        }
        if let Some(rollback) = &self.auto_rollback_configuration
            && rollback.enabled
            && rollback.events.is_empty()
        {
            return Err(GroupError::RollbackWithoutEvents { group: group() });
        }
        let mut names: Vec<&str> = self
            .trigger_configurations
            .iter()
            .map(|t| t.trigger_name.as_str())
            .collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(GroupError::DuplicateTrigger {
                group: group(),
                name: pair[0].to_owned(),
            });
        }
        if let Some(bg) = &self.blue_green_deployment_configuration {
            if let Some(t) = bg.terminate_blue_instances_on_deployment_success
                && t.termination_wait_time_in_minutes > MAX_WAIT_MINUTES
            {
                return Err(GroupError::WaitTooLong {
                    group: group(),
                    field: "terminationWaitTimeInMinutes",
                    minutes: t.termination_wait_time_in_minutes,
                });
            }
            if let Some(r) = bg.deployment_ready_option
                && r.wait_time_in_minutes > MAX_WAIT_MINUTES
            {
                return Err(GroupError::WaitTooLong {
                    group: group(),
                    field: "waitTimeInMinutes",
                    minutes: r.wait_time_in_minutes,
                });
            }
        }
        let style = self.deployment_style;
        if self.compute_platform != ComputePlatform::Server
            && (style.deployment_type != DeploymentType::BlueGreen || !style.with_traffic_control())
        {
            return Err(GroupError::PlatformNeedsBlueGreen {
                group: group(),
                platform: self.compute_platform,
            });
        }
        if self.compute_platform == ComputePlatform::Server {
            if style.deployment_type == DeploymentType::BlueGreen
                && self.blue_green_deployment_configuration.is_none()
            {
                return Err(GroupError::MissingBlueGreenConfiguration { group: group() });
            }
            if style.deployment_type == DeploymentType::BlueGreen && !style.with_traffic_control() {
                return Err(GroupError::BlueGreenWithoutTrafficControl { group: group() });
            }
            if style.with_traffic_control()
                && self
                    .load_balancer_info
                    .as_ref()
                    .is_none_or(|lb| lb.is_empty())
            {
                return Err(GroupError::MissingLoadBalancerInfo { group: group() });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn filter(key: &str, value: &str, filter_type: TagFilterType) -> TagFilter {
        TagFilter {
            key: Some(key.into()),
            value: Some(value.into()),
            filter_type,
        }
    }

    #[test]
    fn names_are_one_to_a_hundred_characters_without_control_characters() {
        let group = |app: &str, name: &str| DeploymentGroupInfo {
            application_name: app.into(),
            deployment_group_name: name.into(),
            ..Default::default()
        };
        assert_eq!(group("App", "Fleet").validate(), Ok(()));
        assert_eq!(group(&"é".repeat(100), "Fleet").validate(), Ok(()));
        for (app, name) in [
            ("", "Fleet"),
            ("App", ""),
            (&"a".repeat(101) as &str, "Fleet"),
            ("App", "line\nbreak"),
        ] {
            assert!(
                matches!(
                    group(app, name).validate(),
                    Err(GroupError::InvalidName { .. })
                ),
                "{app:?} / {name:?}"
            );
        }
    }

    #[test]
    fn tag_filters_match_as_codedeploy_does() {
        let host = tags(&[("Name", "web-1"), ("Env", "prod")]);
        assert!(
            filter("Env", "", TagFilterType::KeyOnly)
                .matches(host.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        );
        assert!(matches_any(
            &[filter("", "prod", TagFilterType::ValueOnly)],
            &host
        ));
        assert!(matches_any(
            &[filter("Env", "prod", TagFilterType::KeyAndValue)],
            &host
        ));
        assert!(!matches_any(
            &[filter("Env", "staging", TagFilterType::KeyAndValue)],
            &host
        ));
        // A plain list matches if any filter matches.
        assert!(matches_any(
            &[
                filter("Env", "staging", TagFilterType::KeyAndValue),
                filter("Name", "web-1", TagFilterType::KeyAndValue)
            ],
            &host
        ));
        // A tag set needs every group to match.
        let set = TagSet(vec![
            vec![filter("Env", "prod", TagFilterType::KeyAndValue)],
            vec![filter("Role", "", TagFilterType::KeyOnly)],
        ]);
        assert!(!set.matches(&host));
        assert!(set.matches(&tags(&[("Env", "prod"), ("Role", "web")])));
        assert!(!TagSet::default().matches(&host));
    }

    #[test]
    fn tag_filters_use_codedeploys_pascal_case() {
        let json = r#"{"Key":"Env","Value":"prod","Type":"KEY_AND_VALUE"}"#;
        let f: TagFilter = serde_json::from_str(json).unwrap();
        assert_eq!(f, filter("Env", "prod", TagFilterType::KeyAndValue));
        assert_eq!(serde_json::to_string(&f).unwrap(), json);
    }

    fn group() -> DeploymentGroupInfo {
        DeploymentGroupInfo {
            application_name: "app".into(),
            deployment_group_id: "g-1".into(),
            deployment_group_name: "fleet".into(),
            deployment_config_name: crate::config::DEFAULT_SERVER_CONFIG.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_minimal_group_is_valid_and_round_trips() {
        let g = group();
        g.validate().unwrap();
        let json = serde_json::to_value(&g).unwrap();
        assert_eq!(json["deploymentStyle"]["deploymentType"], "IN_PLACE");
        assert_eq!(
            json["deploymentStyle"]["deploymentOption"],
            "WITHOUT_TRAFFIC_CONTROL"
        );
        assert_eq!(json["computePlatform"], "Server");
        let back: DeploymentGroupInfo = serde_json::from_value(json).unwrap();
        assert_eq!(back, g);
    }

    #[test]
    fn contradictions_and_limits_are_refused_with_the_field_named() {
        let mut g = group();
        g.ec2_tag_filters = vec![filter("Env", "prod", TagFilterType::KeyAndValue)];
        g.ec2_tag_set = Some(Ec2TagSet::default());
        assert!(
            g.validate()
                .unwrap_err()
                .to_string()
                .contains("ec2TagFilters or ec2TagSet")
        );

        let mut g = group();
        g.alarm_configuration = Some(AlarmConfiguration {
            enabled: true,
            ignore_poll_alarm_failure: false,
            alarms: (0..11)
                .map(|i| Alarm {
                    name: format!("a{i}"),
                })
                .collect(),
        });
        assert_eq!(
            g.validate(),
            Err(GroupError::TooManyAlarms {
                group: "fleet".into(),
                count: 11
            })
        );

        let mut g = group();
        g.deployment_style.deployment_option = DeploymentOption::WithTrafficControl;
        assert_eq!(
            g.validate(),
            Err(GroupError::MissingLoadBalancerInfo {
                group: "fleet".into()
            })
        );
        g.load_balancer_info = Some(LoadBalancerInfo {
            target_group_info_list: vec![NamedResource { name: "tg".into() }],
            ..Default::default()
        });
        g.validate().unwrap();

        let mut g = group();
        g.deployment_style.deployment_type = DeploymentType::BlueGreen;
        assert_eq!(
            g.validate(),
            Err(GroupError::MissingBlueGreenConfiguration {
                group: "fleet".into()
            })
        );
        g.blue_green_deployment_configuration = Some(BlueGreenDeploymentConfiguration {
            terminate_blue_instances_on_deployment_success: Some(BlueInstanceTerminationOption {
                action: InstanceAction::Terminate,
                termination_wait_time_in_minutes: 2881,
            }),
            ..Default::default()
        });
        assert!(
            g.validate()
                .unwrap_err()
                .to_string()
                .contains("terminationWaitTimeInMinutes is 2881")
        );

        let mut g = group();
        g.compute_platform = ComputePlatform::Lambda;
        assert!(matches!(
            g.validate(),
            Err(GroupError::PlatformNeedsBlueGreen { .. })
        ));

        let mut g = group();
        g.auto_rollback_configuration = Some(AutoRollbackConfiguration {
            enabled: true,
            events: vec![],
        });
        assert!(matches!(
            g.validate(),
            Err(GroupError::RollbackWithoutEvents { .. })
        ));

        let mut g = group();
        let trigger = TriggerConfig {
            trigger_name: "t".into(),
            trigger_target_arn: "arn:aws:sns:us-east-1:1:t".into(),
            trigger_events: vec![TriggerEventType::DeploymentFailure],
        };
        g.trigger_configurations = vec![trigger.clone(), trigger];
        assert!(matches!(
            g.validate(),
            Err(GroupError::DuplicateTrigger { .. })
        ));
    }

    #[test]
    fn a_full_codedeploy_group_document_parses() {
        let json = r#"{
            "applicationName": "WordPress_App",
            "deploymentGroupId": "3b29a2a7-3f4f-4a53-9d0b-2a1d0d1e2f3a",
            "deploymentGroupName": "WordPress_DG",
            "deploymentConfigName": "CodeDeployDefault.HalfAtATime",
            "ec2TagFilters": [{"Key": "Name", "Value": "CodeDeployDemo", "Type": "KEY_AND_VALUE"}],
            "autoScalingGroups": [{"name": "asg-1", "hook": "CodeDeploy-managed-automatic-launch-deployment-hook-x"}],
            "serviceRoleArn": "arn:aws:iam::111122223333:role/CodeDeployDemoRole",
            "triggerConfigurations": [{"triggerName": "t", "triggerTargetArn": "arn:aws:sns:us-east-2:111122223333:t", "triggerEvents": ["DeploymentFailure", "InstanceFailure"]}],
            "alarmConfiguration": {"enabled": true, "ignorePollAlarmFailure": false, "alarms": [{"name": "HighCPU"}]},
            "autoRollbackConfiguration": {"enabled": true, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]},
            "deploymentStyle": {"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
            "loadBalancerInfo": {"targetGroupInfoList": [{"name": "tg-web"}]},
            "outdatedInstancesStrategy": "IGNORE",
            "computePlatform": "Server"
        }"#;
        let g: DeploymentGroupInfo = serde_json::from_str(json).unwrap();
        g.validate().unwrap();
        assert!(g.alarm_configuration.as_ref().unwrap().watches("HighCPU"));
        assert!(!g.alarm_configuration.as_ref().unwrap().watches("LowCPU"));
        assert!(
            g.auto_rollback_configuration
                .as_ref()
                .unwrap()
                .rolls_back_on(AutoRollbackEvent::DeploymentStopOnAlarm)
        );
        assert_eq!(
            g.outdated_instances_strategy,
            OutdatedInstancesStrategy::Ignore
        );
        let again: DeploymentGroupInfo =
            serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
        assert_eq!(again, g);
    }
}
