//! ECS AppSpecs: the task definition and container a blue/green deployment puts behind the
//! load balancer, how its replacement task set is networked and placed, and the hook functions
//! to invoke around the install and traffic shifts.
//!
//! As for Lambda, keys are matched whatever their letter case.

use serde::Serialize;

use super::AppSpecErrorKind;
use super::read::{Problem, Record, record};
use super::resource::{ECS_SERVICE, Hooks, ResourcePlatform, Resources};
use super::scalar::{AssignPublicIp, Port, Version};
use crate::lifecycle::LifecycleEventName;
use crate::model::ComputePlatform;

/// ECS's limits on an `awsvpc` network configuration.
const MAX_SUBNETS: usize = 16;
const MAX_SECURITY_GROUPS: usize = 5;
/// ECS's limits on a capacity provider strategy item.
const MAX_BASE: u32 = 100_000;
const MAX_WEIGHT: u32 = 1_000;

/// A checked ECS AppSpec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EcsAppSpec {
    /// The name the AppSpec gives the resource; CodeDeploy's examples use `TargetService`.
    pub resource_name: String,
    /// The task definition the replacement task set runs (an ARN or `family:revision`).
    pub task_definition: String,
    /// The container that receives traffic from the load balancer.
    pub container_name: String,
    pub container_port: u16,
    pub platform_version: Option<String>,
    pub network_configuration: Option<AwsvpcConfiguration>,
    pub capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    /// Each hooked event with the function to invoke, in the order the AppSpec lists them.
    pub hooks: Vec<(LifecycleEventName, String)>,
}

impl EcsAppSpec {
    /// The function to invoke for `event`, if it is hooked.
    pub fn hook(&self, event: LifecycleEventName) -> Option<&str> {
        self.hooks
            .iter()
            .find(|(e, _)| *e == event)
            .map(|(_, f)| f.as_str())
    }
}

/// `NetworkConfiguration.AwsvpcConfiguration`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AwsvpcConfiguration {
    /// One to sixteen subnet ids.
    pub subnets: Vec<String>,
    /// Up to five security group ids.
    pub security_groups: Vec<String>,
    pub assign_public_ip: Option<AssignPublicIp>,
}

/// An item of `CapacityProviderStrategy`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CapacityProviderStrategyItem {
    pub capacity_provider: String,
    /// Tasks placed on this provider before weights apply (0 to 100000).
    pub base: Option<u32>,
    /// This provider's share of the remaining tasks (0 to 1000).
    pub weight: Option<u32>,
}

record! {
    /// An ECS AppSpec's top level.
    struct EcsDoc -> EcsAppSpec, any_case {
        version: Version = "version",
        resources: Resources<Ecs> = "Resources",
        hooks: Hooks<Ecs> = "Hooks",
    }
}

impl Record for EcsDoc {
    type Output = EcsAppSpec;
    const WHAT: &'static str = "an ECS AppSpec";

    fn finish(self, _path: &str) -> Result<EcsAppSpec, Problem> {
        Version::require(self.version)?;
        let Some(resources) = self.resources else {
            return Err(Problem::new(
                AppSpecErrorKind::MissingKey,
                "missing 'Resources'; an ECS AppSpec names its service under Resources \
                 (- TargetService:), with Type AWS::ECS::Service",
            ));
        };
        let service = resources.properties;
        Ok(EcsAppSpec {
            resource_name: resources.name,
            task_definition: service.task_definition,
            container_name: service.target.container_name,
            container_port: service.target.container_port,
            platform_version: service.platform_version,
            network_configuration: service.network_configuration,
            capacity_provider_strategy: service.capacity_provider_strategy,
            hooks: self.hooks.map(|h| h.entries).unwrap_or_default(),
        })
    }
}

/// The platform whose AppSpec this is, for the readers of `Resources` and `Hooks`.
struct Ecs;

impl ResourcePlatform for Ecs {
    const PLATFORM: ComputePlatform = ComputePlatform::Ecs;
    const TYPE: &'static str = ECS_SERVICE;
    type Properties = ServiceProperties;
}

/// An ECS resource's `Properties`, checked.
struct ServiceProperties {
    task_definition: String,
    target: LoadBalancerTarget,
    platform_version: Option<String>,
    network_configuration: Option<AwsvpcConfiguration>,
    capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
}

record! {
    /// An ECS resource's `Properties`.
    struct ServicePropertiesDoc -> ServiceProperties, any_case {
        task_definition: String = "TaskDefinition",
        load_balancer_info: LoadBalancerTarget = "LoadBalancerInfo",
        platform_version: Option<String> = "PlatformVersion",
        network_configuration: NetworkConfiguration = "NetworkConfiguration",
        capacity_provider_strategy: Vec<CapacityProviderStrategyItem> = "CapacityProviderStrategy",
    }
}

impl Record for ServicePropertiesDoc {
    type Output = ServiceProperties;
    const WHAT: &'static str = "the service's TaskDefinition and LoadBalancerInfo";

    fn finish(self, path: &str) -> Result<ServiceProperties, Problem> {
        Ok(ServiceProperties {
            task_definition: self
                .task_definition
                .ok_or_else(|| Problem::missing(path, "TaskDefinition"))?,
            target: self
                .load_balancer_info
                .ok_or_else(|| Problem::missing(path, "LoadBalancerInfo"))?,
            platform_version: self.platform_version.flatten(),
            network_configuration: self.network_configuration.map(|n| n.0),
            capacity_provider_strategy: self.capacity_provider_strategy.unwrap_or_default(),
        })
    }
}

/// `LoadBalancerInfo`: the container and port that receive the load balancer's traffic.
struct LoadBalancerTarget {
    container_name: String,
    container_port: u16,
}

record! {
    /// `LoadBalancerInfo`.
    struct LoadBalancerInfoDoc -> LoadBalancerTarget, any_case {
        container_name: String = "ContainerName",
        container_port: Port = "ContainerPort",
    }
}

impl Record for LoadBalancerInfoDoc {
    type Output = LoadBalancerTarget;
    const WHAT: &'static str = "the ContainerName and ContainerPort";

    fn finish(self, path: &str) -> Result<LoadBalancerTarget, Problem> {
        Ok(LoadBalancerTarget {
            container_name: self
                .container_name
                .ok_or_else(|| Problem::missing(path, "ContainerName"))?,
            container_port: self
                .container_port
                .ok_or_else(|| Problem::missing(path, "ContainerPort"))?
                .0,
        })
    }
}

/// `NetworkConfiguration`, which holds only `AwsvpcConfiguration`.
struct NetworkConfiguration(AwsvpcConfiguration);

record! {
    /// `NetworkConfiguration`.
    struct NetworkConfigurationDoc -> NetworkConfiguration, any_case {
        awsvpc: AwsvpcConfiguration = "AwsvpcConfiguration",
    }
}

impl Record for NetworkConfigurationDoc {
    type Output = NetworkConfiguration;
    const WHAT: &'static str = "an AwsvpcConfiguration";

    fn finish(self, path: &str) -> Result<NetworkConfiguration, Problem> {
        self.awsvpc
            .map(NetworkConfiguration)
            .ok_or_else(|| Problem::missing(path, "AwsvpcConfiguration"))
    }
}

record! {
    /// `AwsvpcConfiguration`.
    struct AwsvpcDoc -> AwsvpcConfiguration, any_case {
        subnets: Vec<String> = "Subnets",
        security_groups: Vec<String> = "SecurityGroups",
        assign_public_ip: Option<AssignPublicIp> = "AssignPublicIp",
    }
}

impl Record for AwsvpcDoc {
    type Output = AwsvpcConfiguration;
    const WHAT: &'static str = "the Subnets, SecurityGroups and AssignPublicIp";

    fn finish(self, path: &str) -> Result<AwsvpcConfiguration, Problem> {
        let subnets = self.subnets.unwrap_or_default();
        if subnets.is_empty() {
            return Err(Problem::new(
                AppSpecErrorKind::MissingKey,
                format!("{path}: 'Subnets' must list at least one subnet"),
            ));
        }
        if subnets.len() > MAX_SUBNETS {
            return Err(Problem::invalid(format!(
                "{path}: 'Subnets' lists {} subnets; ECS takes at most {MAX_SUBNETS}",
                subnets.len()
            )));
        }
        let security_groups = self.security_groups.unwrap_or_default();
        if security_groups.len() > MAX_SECURITY_GROUPS {
            return Err(Problem::invalid(format!(
                "{path}: 'SecurityGroups' lists {} groups; ECS takes at most {MAX_SECURITY_GROUPS}",
                security_groups.len()
            )));
        }
        Ok(AwsvpcConfiguration {
            subnets,
            security_groups,
            assign_public_ip: self.assign_public_ip.flatten(),
        })
    }
}

record! {
    /// An item of `CapacityProviderStrategy`.
    struct CapacityProviderDoc -> CapacityProviderStrategyItem, any_case {
        base: u32 = "Base",
        capacity_provider: String = "CapacityProvider",
        weight: u32 = "Weight",
    }
}

impl Record for CapacityProviderDoc {
    type Output = CapacityProviderStrategyItem;
    const WHAT: &'static str = "a capacity provider with Base and Weight";

    fn finish(self, path: &str) -> Result<CapacityProviderStrategyItem, Problem> {
        let capacity_provider = self
            .capacity_provider
            .ok_or_else(|| Problem::missing(path, "CapacityProvider"))?;
        if let Some(base) = self.base.filter(|b| *b > MAX_BASE) {
            return Err(Problem::invalid(format!(
                "{path}: Base {base} is more than ECS allows ({MAX_BASE})"
            )));
        }
        if let Some(weight) = self.weight.filter(|w| *w > MAX_WEIGHT) {
            return Err(Problem::invalid(format!(
                "{path}: Weight {weight} is more than ECS allows ({MAX_WEIGHT})"
            )));
        }
        Ok(CapacityProviderStrategyItem {
            capacity_provider,
            base: self.base,
            weight: self.weight,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Parser;
    use super::super::{AppSpecErrorKind as Kind, parse_ecs};
    use super::*;
    use LifecycleEventName::*;

    const ECS: Parser<EcsAppSpec> = Parser {
        function: parse_ecs,
        source_name: "appspec.yaml",
    };

    /// An ECS AppSpec whose Properties hold `properties` (lines indented by eight spaces); the
    /// first property is on line 6.
    fn ecs(properties: &[&str], rest: &str) -> String {
        let mut text = String::from(
            "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      \
             Properties:\n",
        );
        for line in properties {
            text.push_str("        ");
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(rest);
        text
    }

    const TASK: &str = "TaskDefinition: web:3";
    const TARGET: [&str; 3] = [
        "LoadBalancerInfo:",
        "  ContainerName: web",
        "  ContainerPort: 80",
    ];

    fn minimal(more: &[&str]) -> String {
        let mut properties = vec![TASK];
        properties.extend(TARGET);
        properties.extend(more);
        ecs(&properties, "")
    }

    #[test]
    fn minimal_service() {
        let spec = ECS.parse(&minimal(&[]));
        assert_eq!(spec.resource_name, "TargetService");
        assert_eq!(spec.task_definition, "web:3");
        assert_eq!(spec.container_name, "web");
        assert_eq!(spec.container_port, 80);
        assert_eq!(spec.platform_version, None);
        assert_eq!(spec.network_configuration, None);
        assert!(spec.capacity_provider_strategy.is_empty() && spec.hooks.is_empty());
    }

    #[test]
    fn network_configuration_and_capacity_providers_in_json() {
        let spec = ECS.parse(include_str!("../../tests/fixtures/appspec/ecs.json"));
        assert_eq!(spec.container_name, "SampleApplicationName");
        assert_eq!(spec.container_port, 80);
        assert_eq!(spec.platform_version.as_deref(), Some("LATEST"));
        assert_eq!(
            spec.network_configuration,
            Some(AwsvpcConfiguration {
                subnets: vec!["subnet-1234abcd".to_owned(), "subnet-5678abcd".to_owned()],
                security_groups: vec!["sg-12345678".to_owned()],
                assign_public_ip: Some(AssignPublicIp::Enabled),
            })
        );
        assert_eq!(
            spec.capacity_provider_strategy,
            [
                CapacityProviderStrategyItem {
                    capacity_provider: "FARGATE_SPOT".to_owned(),
                    base: Some(1),
                    weight: Some(2),
                },
                CapacityProviderStrategyItem {
                    capacity_provider: "FARGATE".to_owned(),
                    base: Some(0),
                    weight: Some(1),
                }
            ]
        );
        let events: Vec<_> = spec.hooks.iter().map(|(e, _)| *e).collect();
        assert_eq!(events, LifecycleEventName::ECS_HOOKS);
        assert_eq!(
            spec.hook(AfterAllowTestTraffic),
            Some("LambdaFunctionToValidateAfterTestTrafficStarts")
        );
    }

    #[test]
    fn required_properties() {
        ECS.assert_refused(
            &ecs(&TARGET, ""),
            Kind::MissingKey,
            6,
            "Resources[0].TargetService.Properties: missing 'TaskDefinition'",
        );
        ECS.assert_refused(
            &ecs(&[TASK], ""),
            Kind::MissingKey,
            6,
            "Resources[0].TargetService.Properties: missing 'LoadBalancerInfo'",
        );
        ECS.assert_refused(
            &ecs(&[TASK, "LoadBalancerInfo:", "  ContainerName: web"], ""),
            Kind::MissingKey,
            8,
            "Resources[0].TargetService.Properties.LoadBalancerInfo: missing 'ContainerPort'",
        );
    }

    #[test]
    fn container_ports() {
        let port = |value: &str| {
            let line = format!("  ContainerPort: {value}");
            let text = ecs(
                &[TASK, "LoadBalancerInfo:", "  ContainerName: web", &line],
                "",
            );
            parse_ecs(&text, "appspec.yaml").map(|spec| spec.container_port)
        };
        assert_eq!(port("8080"), Ok(8080));
        assert_eq!(port("\"443\""), Ok(443));
        for bad in ["0", "65536", "-1", "http"] {
            let err = port(bad).unwrap_err();
            assert_eq!((err.kind, err.line), (Kind::InvalidValue, Some(9)), "{bad}");
            assert_eq!(
                err.message,
                format!(
                    "Resources[0].TargetService.Properties.LoadBalancerInfo.ContainerPort: '{}' \
                     is not a port number (1 to 65535)",
                    bad.trim_matches('"')
                )
            );
        }
    }

    #[test]
    fn network_configuration_rules() {
        let spec = ECS.parse(&minimal(&[
            "NetworkConfiguration:",
            "  AwsvpcConfiguration:",
            "    Subnets: [subnet-1]",
        ]));
        let network = spec.network_configuration.unwrap();
        assert_eq!(network.subnets, ["subnet-1"]);
        assert!(network.security_groups.is_empty());
        assert_eq!(network.assign_public_ip, None);
        ECS.assert_refused(
            &minimal(&[
                "NetworkConfiguration:",
                "  AwsvpcConfiguration:",
                "    Subnets: []",
                "    AssignPublicIp: ENABLED",
            ]),
            Kind::MissingKey,
            12,
            "Resources[0].TargetService.Properties.NetworkConfiguration.AwsvpcConfiguration: \
             'Subnets' must list at least one subnet",
        );
        ECS.assert_refused(
            &minimal(&[
                "NetworkConfiguration:",
                "  AwsvpcConfiguration:",
                "    Subnets: [subnet-1]",
                "    AssignPublicIp: enabled",
            ]),
            Kind::InvalidValue,
            13,
            "Resources[0].TargetService.Properties.NetworkConfiguration.AwsvpcConfiguration.\
             AssignPublicIp: 'enabled' is not a valid AssignPublicIp value; expected one of: \
             ENABLED, DISABLED (did you mean ENABLED?)",
        );
        let err = ECS.refuse(&minimal(&[
            "NetworkConfiguration:",
            "  Subnets: [subnet-1]",
        ]));
        assert_eq!((err.kind, err.line), (Kind::UnknownKey, Some(11)));
        assert!(
            err.message
                .contains("keys allowed here are: AwsvpcConfiguration"),
            "{err}"
        );
    }

    #[test]
    fn capacity_provider_rules() {
        ECS.assert_refused(
            &minimal(&["CapacityProviderStrategy:", "  - Base: 1", "    Weight: 1"]),
            Kind::MissingKey,
            11,
            "Resources[0].TargetService.Properties.CapacityProviderStrategy[0]: missing \
             'CapacityProvider'",
        );
        ECS.assert_refused(
            &minimal(&[
                "CapacityProviderStrategy:",
                "  - CapacityProvider: FARGATE",
                "    Weight: 1001",
            ]),
            Kind::InvalidValue,
            11,
            "Resources[0].TargetService.Properties.CapacityProviderStrategy[0]: Weight 1001 is \
             more than ECS allows (1000)",
        );
        let err = ECS.refuse(&minimal(&[
            "CapacityProviderStrategy:",
            "  - CapacityProvider: FARGATE",
            "    Base: -1",
        ]));
        assert_eq!((err.kind, err.line), (Kind::InvalidValue, Some(12)));
    }

    #[test]
    fn hooks_are_ecs_events() {
        let spec = ECS.parse(&format!(
            "{}Hooks:\n  - AfterAllowTestTraffic: check\n",
            minimal(&[])
        ));
        assert_eq!(spec.hook(AfterAllowTestTraffic), Some("check"));
        ECS.assert_refused(
            &format!("{}Hooks:\n  - ApplicationStart: go\n", minimal(&[])),
            Kind::UnknownLifecycleEvent,
            11,
            "ApplicationStart is not an event of ECS deployments; the events that take a hook \
             function are: BeforeInstall, AfterInstall, AfterAllowTestTraffic, \
             BeforeAllowTraffic, AfterAllowTraffic",
        );
        let err = ECS.refuse(&format!(
            "{}Hooks:\n  - AllowTestTraffic: go\n",
            minimal(&[])
        ));
        assert!(
            err.message.starts_with(
                "AllowTestTraffic is performed by cutover itself and cannot run a hook function"
            ),
            "{err}"
        );
    }

    #[test]
    fn resource_type_and_keys() {
        let lambda = minimal(&[]).replace("AWS::ECS::Service", "AWS::Lambda::Function");
        let err = parse_ecs(&lambda, "AppSpecContent").unwrap_err();
        assert_eq!((err.kind, err.line), (Kind::WrongPlatform, Some(4)));
        let err = ECS.refuse(&minimal(&[]).replace("AWS::ECS::Service", "AWS::ECS::TaskSet"));
        assert_eq!((err.kind, err.line), (Kind::InvalidValue, Some(4)));
        let err = ECS.refuse(&minimal(&["LaunchType: FARGATE"]));
        assert_eq!((err.kind, err.line), (Kind::UnknownKey, Some(10)));
        // Keys in any letter case, as for Lambda.
        let lower = minimal(&[])
            .replace("TaskDefinition", "taskdefinition")
            .replace("ContainerPort", "containerPort");
        assert_eq!(ECS.parse(&lower).container_port, 80);
    }
}
