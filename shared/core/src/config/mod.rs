//! Deployment configurations: the 17 predefined ones, custom ones within CodeDeploy's limits, and
//! what a configuration means in practice, either for a fleet of hosts ([`HostPlan`]: batch
//! sizes and the success rule) or for traffic ([`TrafficSchedule`]: when each weight is set).

mod hosts;
mod traffic;

pub use hosts::{HealthConstraintsInvalid, HostPlan};
pub use traffic::{TrafficSchedule, TrafficStep};

use serde::{Deserialize, Serialize};

use crate::model::{ComputePlatform, wire_enum};
use crate::time::Timestamp;

/// The configuration a Server deployment uses when none is named.
pub const DEFAULT_SERVER_CONFIG: &str = "CodeDeployDefault.OneAtATime";
/// The prefix reserved for predefined configurations.
pub const PREDEFINED_PREFIX: &str = "CodeDeployDefault.";
/// The longest a traffic shift may take from the first step to the last, in minutes.
pub const MAX_TRAFFIC_ROUTING_MINUTES: u32 = 2880;
/// The longest configuration name, as in CodeDeploy.
pub const MAX_NAME_LEN: usize = 100;

wire_enum! {
    /// How `minimumHealthyHosts.value` is read. `MOST_CONCURRENCY` is what CodeDeploy reports for
    /// `CodeDeployDefault.OneAtATime`; users cannot choose it.
    pub enum MinimumHealthyHostsType as "minimum healthy hosts type" {
        HostCount = "HOST_COUNT",
        FleetPercent = "FLEET_PERCENT",
        MostConcurrency = "MOST_CONCURRENCY",
    }
}

/// CodeDeploy's `minimumHealthyHosts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinimumHealthyHosts {
    #[serde(rename = "type")]
    pub kind: MinimumHealthyHostsType,
    pub value: i64,
}

wire_enum! {
    /// How traffic moves to the new version of a Lambda function or ECS service.
    pub enum TrafficRoutingType as "traffic routing type" {
        TimeBasedCanary = "TimeBasedCanary",
        TimeBasedLinear = "TimeBasedLinear",
        AllAtOnce = "AllAtOnce",
    }
}

/// A canary: `canaryPercentage` first, the rest after `canaryInterval` minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeBasedCanary {
    pub canary_percentage: i64,
    pub canary_interval: i64,
}

/// Linear: `linearPercentage` more every `linearInterval` minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeBasedLinear {
    pub linear_percentage: i64,
    pub linear_interval: i64,
}

/// CodeDeploy's `trafficRoutingConfig`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficRoutingConfig {
    #[serde(rename = "type")]
    pub kind: TrafficRoutingType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_based_canary: Option<TimeBasedCanary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_based_linear: Option<TimeBasedLinear>,
}

/// CodeDeploy's `deploymentConfigInfo`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfigInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_config_id: Option<String>,
    pub deployment_config_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_healthy_hosts: Option<MinimumHealthyHosts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<Timestamp>,
    #[serde(default)]
    pub compute_platform: ComputePlatform,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_routing_config: Option<TrafficRoutingConfig>,
}

/// A configuration that CodeDeploy would refuse, with the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "deployment configuration name '{0}' is invalid: names are 1 to {MAX_NAME_LEN} characters"
    )]
    InvalidName(String),
    #[error(
        "deployment configuration name '{0}' is reserved: names starting with '{PREDEFINED_PREFIX}' are predefined"
    )]
    ReservedName(String),
    #[error("'{0}' is not a predefined deployment configuration{hint}", hint = unknown_hint(.0))]
    UnknownPredefined(String),
    #[error("deployment configuration '{name}': {platform} configurations need {needed}")]
    MissingSetting {
        name: String,
        platform: ComputePlatform,
        needed: &'static str,
    },
    #[error(
        "deployment configuration '{name}': {setting} does not apply to {platform} deployments"
    )]
    SettingNotAllowed {
        name: String,
        platform: ComputePlatform,
        setting: &'static str,
    },
    #[error(
        "deployment configuration '{name}': minimum healthy hosts {kind} {value} is invalid: {why}"
    )]
    InvalidMinimumHealthyHosts {
        name: String,
        kind: MinimumHealthyHostsType,
        value: i64,
        why: &'static str,
    },
    #[error("deployment configuration '{name}': {kind} traffic routing is invalid: {why}")]
    InvalidTrafficRouting {
        name: String,
        kind: TrafficRoutingType,
        why: String,
    },
}

impl DeploymentConfigInfo {
    /// A custom Server configuration that keeps `minimum` hosts healthy.
    pub fn server(name: impl Into<String>, minimum: MinimumHealthyHosts) -> Self {
        DeploymentConfigInfo {
            deployment_config_id: None,
            deployment_config_name: name.into(),
            minimum_healthy_hosts: Some(minimum),
            create_time: None,
            compute_platform: ComputePlatform::Server,
            traffic_routing_config: None,
        }
    }

    /// A custom Lambda or ECS configuration that routes traffic by `routing`.
    pub fn traffic(
        name: impl Into<String>,
        platform: ComputePlatform,
        routing: TrafficRoutingConfig,
    ) -> Self {
        DeploymentConfigInfo {
            deployment_config_id: None,
            deployment_config_name: name.into(),
            minimum_healthy_hosts: None,
            create_time: None,
            compute_platform: platform,
            traffic_routing_config: Some(routing),
        }
    }

    pub fn is_predefined(&self) -> bool {
        self.deployment_config_name.starts_with(PREDEFINED_PREFIX)
    }

    /// Checks a configuration a user wants to create, as `CreateDeploymentConfig` does.
    pub fn validate_custom(&self) -> Result<(), ConfigError> {
        let name = &self.deployment_config_name;
        if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
            return Err(ConfigError::InvalidName(name.clone()));
        }
        if self.is_predefined() {
            return Err(ConfigError::ReservedName(name.clone()));
        }
        if let Some(m) = self.minimum_healthy_hosts
            && m.kind == MinimumHealthyHostsType::MostConcurrency
        {
            return Err(ConfigError::InvalidMinimumHealthyHosts {
                name: name.clone(),
                kind: m.kind,
                value: m.value,
                why: "MOST_CONCURRENCY is reserved for CodeDeployDefault.OneAtATime; use HOST_COUNT or FLEET_PERCENT",
            });
        }
        self.validate()
    }

    /// Checks that the settings fit the platform and CodeDeploy's limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let name = || self.deployment_config_name.clone();
        let platform = self.compute_platform;
        match platform {
            ComputePlatform::Server => {
                if self.traffic_routing_config.is_some() {
                    return Err(ConfigError::SettingNotAllowed {
                        name: name(),
                        platform,
                        setting: "trafficRoutingConfig",
                    });
                }
                let Some(m) = self.minimum_healthy_hosts else {
                    return Err(ConfigError::MissingSetting {
                        name: name(),
                        platform,
                        needed: "minimumHealthyHosts (HOST_COUNT or FLEET_PERCENT)",
                    });
                };
                validate_minimum(&name(), m)
            }
            ComputePlatform::Lambda | ComputePlatform::Ecs => {
                if self.minimum_healthy_hosts.is_some() {
                    return Err(ConfigError::SettingNotAllowed {
                        name: name(),
                        platform,
                        setting: "minimumHealthyHosts",
                    });
                }
                let Some(routing) = self.traffic_routing_config else {
                    return Err(ConfigError::MissingSetting {
                        name: name(),
                        platform,
                        needed: "trafficRoutingConfig (TimeBasedCanary, TimeBasedLinear or AllAtOnce)",
                    });
                };
                TrafficSchedule::new(&routing).map(drop).map_err(|why| {
                    ConfigError::InvalidTrafficRouting {
                        name: name(),
                        kind: routing.kind,
                        why,
                    }
                })
            }
        }
    }

    /// What this configuration means for a fleet of `fleet_size` hosts.
    pub fn host_plan(&self, fleet_size: u32) -> Result<HostPlan, HealthConstraintsInvalid> {
        HostPlan::new(self, fleet_size)
    }
}

fn validate_minimum(name: &str, m: MinimumHealthyHosts) -> Result<(), ConfigError> {
    let why = match m.kind {
        MinimumHealthyHostsType::HostCount if m.value < 0 => "a host count cannot be negative",
        MinimumHealthyHostsType::FleetPercent if !(0..=99).contains(&m.value) => {
            "a fleet percentage must be between 0 and 99"
        }
        MinimumHealthyHostsType::MostConcurrency if m.value != 1 => "MOST_CONCURRENCY is always 1",
        _ => return Ok(()),
    };
    Err(ConfigError::InvalidMinimumHealthyHosts {
        name: name.to_owned(),
        kind: m.kind,
        value: m.value,
        why,
    })
}

/// " (did you mean X?)" for a near miss, else the list of predefined names.
fn unknown_hint(name: &str) -> String {
    let nearest = PREDEFINED
        .iter()
        .map(|p| {
            (
                strsim::damerau_levenshtein(&name.to_ascii_lowercase(), &p.0.to_ascii_lowercase()),
                p.0,
            )
        })
        .min_by_key(|(distance, _)| *distance);
    match nearest {
        Some((distance, candidate)) if distance <= 4 => format!(" (did you mean {candidate}?)"),
        _ => format!(
            "; the predefined ones are: {}",
            predefined_names().join(", ")
        ),
    }
}

/// The names of the predefined configurations, Server first, then Lambda, then ECS.
pub fn predefined_names() -> Vec<&'static str> {
    PREDEFINED.iter().map(|p| p.0).collect()
}

/// A predefined configuration by name.
pub fn predefined(name: &str) -> Option<DeploymentConfigInfo> {
    PREDEFINED
        .iter()
        .find(|p| p.0 == name)
        .map(|&(name, platform, setting)| {
            let mut config = match setting {
                Setting::Hosts(kind, value) => {
                    DeploymentConfigInfo::server(name, MinimumHealthyHosts { kind, value })
                }
                Setting::Traffic(routing) => DeploymentConfigInfo::traffic(name, platform, routing),
            };
            config.compute_platform = platform;
            config.create_time = Some(Timestamp::EPOCH);
            config
        })
}

#[derive(Clone, Copy)]
enum Setting {
    Hosts(MinimumHealthyHostsType, i64),
    Traffic(TrafficRoutingConfig),
}

const fn canary(percentage: i64, interval: i64) -> Setting {
    Setting::Traffic(TrafficRoutingConfig {
        kind: TrafficRoutingType::TimeBasedCanary,
        time_based_canary: Some(TimeBasedCanary {
            canary_percentage: percentage,
            canary_interval: interval,
        }),
        time_based_linear: None,
    })
}

const fn linear(percentage: i64, interval: i64) -> Setting {
    Setting::Traffic(TrafficRoutingConfig {
        kind: TrafficRoutingType::TimeBasedLinear,
        time_based_canary: None,
        time_based_linear: Some(TimeBasedLinear {
            linear_percentage: percentage,
            linear_interval: interval,
        }),
    })
}

const ALL_AT_ONCE: Setting = Setting::Traffic(TrafficRoutingConfig {
    kind: TrafficRoutingType::AllAtOnce,
    time_based_canary: None,
    time_based_linear: None,
});

use ComputePlatform as P;
use MinimumHealthyHostsType as M;

/// CodeDeploy's predefined configurations, as `GetDeploymentConfig` describes them.
const PREDEFINED: [(&str, ComputePlatform, Setting); 17] = [
    (
        "CodeDeployDefault.OneAtATime",
        P::Server,
        Setting::Hosts(M::MostConcurrency, 1),
    ),
    (
        "CodeDeployDefault.HalfAtATime",
        P::Server,
        Setting::Hosts(M::FleetPercent, 50),
    ),
    (
        "CodeDeployDefault.AllAtOnce",
        P::Server,
        Setting::Hosts(M::HostCount, 0),
    ),
    (
        "CodeDeployDefault.LambdaCanary10Percent5Minutes",
        P::Lambda,
        canary(10, 5),
    ),
    (
        "CodeDeployDefault.LambdaCanary10Percent10Minutes",
        P::Lambda,
        canary(10, 10),
    ),
    (
        "CodeDeployDefault.LambdaCanary10Percent15Minutes",
        P::Lambda,
        canary(10, 15),
    ),
    (
        "CodeDeployDefault.LambdaCanary10Percent30Minutes",
        P::Lambda,
        canary(10, 30),
    ),
    (
        "CodeDeployDefault.LambdaLinear10PercentEvery1Minute",
        P::Lambda,
        linear(10, 1),
    ),
    (
        "CodeDeployDefault.LambdaLinear10PercentEvery2Minutes",
        P::Lambda,
        linear(10, 2),
    ),
    (
        "CodeDeployDefault.LambdaLinear10PercentEvery3Minutes",
        P::Lambda,
        linear(10, 3),
    ),
    (
        "CodeDeployDefault.LambdaLinear10PercentEvery10Minutes",
        P::Lambda,
        linear(10, 10),
    ),
    ("CodeDeployDefault.LambdaAllAtOnce", P::Lambda, ALL_AT_ONCE),
    (
        "CodeDeployDefault.ECSCanary10Percent5Minutes",
        P::Ecs,
        canary(10, 5),
    ),
    (
        "CodeDeployDefault.ECSCanary10Percent15Minutes",
        P::Ecs,
        canary(10, 15),
    ),
    (
        "CodeDeployDefault.ECSLinear10PercentEvery1Minutes",
        P::Ecs,
        linear(10, 1),
    ),
    (
        "CodeDeployDefault.ECSLinear10PercentEvery3Minutes",
        P::Ecs,
        linear(10, 3),
    ),
    ("CodeDeployDefault.ECSAllAtOnce", P::Ecs, ALL_AT_ONCE),
];

#[cfg(test)]
mod tests {
    use super::*;
    use ComputePlatform::{Ecs, Lambda, Server};
    use MinimumHealthyHostsType::{FleetPercent, HostCount, MostConcurrency};

    #[test]
    fn there_are_seventeen_predefined_configurations_and_all_are_valid() {
        let names = predefined_names();
        assert_eq!(names.len(), 17);
        for name in names {
            let config = predefined(name).unwrap();
            assert!(config.is_predefined());
            config.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
            // Users cannot create them again.
            assert!(matches!(
                config.validate_custom(),
                Err(ConfigError::ReservedName(_))
            ));
        }
        assert_eq!(
            predefined("CodeDeployDefault.OneAtATime")
                .unwrap()
                .compute_platform,
            Server
        );
        assert_eq!(
            predefined("CodeDeployDefault.LambdaAllAtOnce")
                .unwrap()
                .compute_platform,
            Lambda
        );
        assert_eq!(
            predefined("CodeDeployDefault.ECSAllAtOnce")
                .unwrap()
                .compute_platform,
            Ecs
        );
        // ECS linear names use the plural "Minutes" even for one minute; Lambda's do not.
        assert!(predefined("CodeDeployDefault.ECSLinear10PercentEvery1Minute").is_none());
        assert!(predefined("CodeDeployDefault.LambdaLinear10PercentEvery1Minutes").is_none());
    }

    #[test]
    fn unknown_names_get_a_suggestion_or_the_list() {
        let near = ConfigError::UnknownPredefined("CodeDeployDefault.OneAtTime".into());
        assert_eq!(
            near.to_string(),
            "'CodeDeployDefault.OneAtTime' is not a predefined deployment configuration (did you mean CodeDeployDefault.OneAtATime?)"
        );
        let far = ConfigError::UnknownPredefined("Fast".into()).to_string();
        assert!(
            far.contains("the predefined ones are: CodeDeployDefault.OneAtATime,"),
            "{far}"
        );
        assert!(far.ends_with("CodeDeployDefault.ECSAllAtOnce"), "{far}");
    }

    #[test]
    fn predefined_configurations_use_codedeploys_wire_form() {
        let one =
            serde_json::to_value(predefined("CodeDeployDefault.OneAtATime").unwrap()).unwrap();
        assert_eq!(
            one["minimumHealthyHosts"],
            serde_json::json!({"type": "MOST_CONCURRENCY", "value": 1})
        );
        assert_eq!(one["computePlatform"], "Server");
        let canary = serde_json::to_value(
            predefined("CodeDeployDefault.LambdaCanary10Percent30Minutes").unwrap(),
        )
        .unwrap();
        assert_eq!(
            canary["trafficRoutingConfig"],
            serde_json::json!({"type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 30}})
        );
    }

    fn hosts(kind: MinimumHealthyHostsType, value: i64) -> DeploymentConfigInfo {
        DeploymentConfigInfo::server("Custom", MinimumHealthyHosts { kind, value })
    }

    #[test]
    fn custom_host_configurations_are_checked_against_codedeploys_limits() {
        hosts(HostCount, 0).validate_custom().unwrap();
        hosts(HostCount, 500).validate_custom().unwrap();
        hosts(FleetPercent, 0).validate_custom().unwrap();
        hosts(FleetPercent, 99).validate_custom().unwrap();
        let err = hosts(FleetPercent, 100).validate_custom().unwrap_err();
        assert_eq!(
            err.to_string(),
            "deployment configuration 'Custom': minimum healthy hosts FLEET_PERCENT 100 is invalid: a fleet percentage must be between 0 and 99"
        );
        assert!(hosts(HostCount, -1).validate_custom().is_err());
        assert!(hosts(MostConcurrency, 1).validate_custom().is_err());

        let mut no_minimum = hosts(HostCount, 1);
        no_minimum.minimum_healthy_hosts = None;
        assert!(matches!(
            no_minimum.validate_custom(),
            Err(ConfigError::MissingSetting { .. })
        ));

        let mut reserved = hosts(HostCount, 1);
        reserved.deployment_config_name = "CodeDeployDefault.Mine".into();
        assert!(matches!(
            reserved.validate_custom(),
            Err(ConfigError::ReservedName(_))
        ));
        reserved.deployment_config_name = String::new();
        assert!(matches!(
            reserved.validate_custom(),
            Err(ConfigError::InvalidName(_))
        ));
        reserved.deployment_config_name = "x".repeat(101);
        assert!(matches!(
            reserved.validate_custom(),
            Err(ConfigError::InvalidName(_))
        ));
    }

    fn routing(kind: TrafficRoutingType, percentage: i64, interval: i64) -> DeploymentConfigInfo {
        let routing = TrafficRoutingConfig {
            kind,
            time_based_canary: (kind == TrafficRoutingType::TimeBasedCanary).then_some(
                TimeBasedCanary {
                    canary_percentage: percentage,
                    canary_interval: interval,
                },
            ),
            time_based_linear: (kind == TrafficRoutingType::TimeBasedLinear).then_some(
                TimeBasedLinear {
                    linear_percentage: percentage,
                    linear_interval: interval,
                },
            ),
        };
        DeploymentConfigInfo::traffic("Custom", Lambda, routing)
    }

    #[test]
    fn custom_traffic_configurations_are_checked_against_codedeploys_limits() {
        use TrafficRoutingType::*;
        routing(TimeBasedCanary, 1, 1).validate_custom().unwrap();
        routing(TimeBasedCanary, 99, 2880)
            .validate_custom()
            .unwrap();
        routing(TimeBasedLinear, 50, 2880)
            .validate_custom()
            .unwrap();
        routing(AllAtOnce, 0, 0).validate_custom().unwrap();
        for (kind, p, i) in [
            (TimeBasedCanary, 0, 5),
            (TimeBasedCanary, 100, 5),
            (TimeBasedCanary, 10, 0),
            (TimeBasedCanary, 10, 2881),
            (TimeBasedLinear, 0, 5),
            (TimeBasedLinear, 100, 1),
            (TimeBasedLinear, 10, 0),
            // 10% every 321 minutes reaches 100% after 9 * 321 = 2889 minutes.
            (TimeBasedLinear, 10, 321),
        ] {
            let err = routing(kind, p, i).validate_custom().unwrap_err();
            assert!(
                matches!(err, ConfigError::InvalidTrafficRouting { .. }),
                "{kind} {p} {i}: {err}"
            );
        }
        routing(TimeBasedLinear, 10, 320).validate_custom().unwrap();

        let mut hosts_on_lambda = routing(AllAtOnce, 0, 0);
        hosts_on_lambda.minimum_healthy_hosts = Some(MinimumHealthyHosts {
            kind: HostCount,
            value: 1,
        });
        assert!(matches!(
            hosts_on_lambda.validate(),
            Err(ConfigError::SettingNotAllowed { .. })
        ));
        let mut missing_parameters = routing(TimeBasedCanary, 10, 5);
        missing_parameters
            .traffic_routing_config
            .as_mut()
            .unwrap()
            .time_based_canary = None;
        let err = missing_parameters.validate().unwrap_err();
        assert!(err.to_string().contains("timeBasedCanary"), "{err}");
    }
}
