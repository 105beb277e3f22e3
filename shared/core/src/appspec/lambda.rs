//! Lambda AppSpecs: the function whose alias a deployment moves from one published version to
//! another, and the hook functions to invoke before and after traffic shifts.
//!
//! Keys are matched whatever their letter case (`Resources`, `resources`; `CurrentVersion`,
//! `currentVersion`, `currentversion`): revisions in the wild use all of these forms.

use serde::{Deserialize, Serialize};

use super::AppSpecErrorKind;
use super::read::{Problem, Record, record};
use super::resource::{Hooks, LAMBDA_FUNCTION, ResourcePlatform, Resources};
use super::scalar::{LambdaVersion, Version};
use crate::lifecycle::LifecycleEventName;
use crate::model::{ComputePlatform, ErrorCode, ErrorInformation};

/// A checked Lambda AppSpec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LambdaAppSpec {
    /// The name the AppSpec gives the resource (the key under `Resources`).
    pub resource_name: String,
    pub function: LambdaFunction,
    /// Each hooked event with the function to invoke, in the order the AppSpec lists them.
    pub hooks: Vec<(LifecycleEventName, String)>,
}

impl LambdaAppSpec {
    /// The function to invoke for `event`, if it is hooked.
    pub fn hook(&self, event: LifecycleEventName) -> Option<&str> {
        self.hooks
            .iter()
            .find(|(e, _)| *e == event)
            .map(|(_, f)| f.as_str())
    }
}

/// The function and alias a Lambda deployment shifts, and the two published versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LambdaFunction {
    /// The function's name or ARN.
    pub name: String,
    pub alias: String,
    /// The version the alias points to now, as decimal digits.
    pub current_version: String,
    /// The version the alias is moved to.
    pub target_version: String,
}

/// The largest Lambda AppSpec file read, in bytes: an AppSpec is a short YAML or JSON file.
pub const MAX_LAMBDA_APPSPEC_BYTES: u64 = 1 << 20;

/// The names the AppSpec gives a function's two versions, with the versions.
type NamedVersions<'a> = [(&'static str, &'a str); 2];

/// What a Lambda deployment checks before it moves any traffic, and what it says when a check
/// fails: the same from every client of the Lambda API. The client asks, in this order, whether
/// the versions are numbers, the function exists, each version exists, the alias exists, and
/// where the alias sends its traffic.
impl LambdaFunction {
    /// `CurrentVersion` and `TargetVersion`, named.
    pub fn versions(&self) -> NamedVersions<'_> {
        [
            ("CurrentVersion", &self.current_version),
            ("TargetVersion", &self.target_version),
        ]
    }

    /// Why the versions cannot be shifted between, if they are not published versions' numbers.
    pub fn versions_problem(&self) -> Option<ErrorInformation> {
        let (field, version) = self
            .versions()
            .into_iter()
            .find(|(_, v)| !is_version_number(v))?;
        Some(configuration_error(format!(
            "{field} '{version}' of Lambda function '{}' is not the number of a published version: an alias shifts traffic between published versions",
            self.name
        )))
    }

    pub fn missing_function(&self) -> ErrorInformation {
        ErrorInformation::new(
            ErrorCode::InvalidLambdaFunction,
            format!("Lambda function '{}' does not exist", self.name),
        )
    }

    /// `version`, named `field` in the AppSpec, does not exist.
    pub fn missing_version(&self, field: &str, version: &str) -> ErrorInformation {
        configuration_error(format!(
            "Lambda function '{}' has no version {version} (its {field})",
            self.name
        ))
    }

    pub fn missing_alias(&self) -> ErrorInformation {
        configuration_error(format!(
            "Lambda function '{}' has no alias '{}'",
            self.name, self.alias
        ))
    }

    /// Why the alias, sending its traffic along `route`, cannot be deployed from: it must send
    /// all of it to `CurrentVersion`.
    pub fn route_problem(&self, route: &AliasRoute) -> Option<ErrorInformation> {
        if route.version == self.current_version && route.weights.is_empty() {
            return None;
        }
        let alone = if route.version == self.current_version {
            " alone"
        } else {
            ""
        };
        Some(configuration_error(format!(
            "alias '{}' of Lambda function '{}' points at {route}, not at CurrentVersion {}{alone}",
            self.alias, self.name, self.current_version
        )))
    }
}

/// Where an alias sends its traffic: its version, and other versions with their shares.
#[derive(Clone, Debug, PartialEq)]
pub struct AliasRoute {
    pub version: String,
    /// Sorted by version.
    pub weights: Vec<(String, f64)>,
}

impl AliasRoute {
    pub fn new(
        version: impl Into<String>,
        weights: impl IntoIterator<Item = (String, f64)>,
    ) -> Self {
        let mut weights: Vec<(String, f64)> = weights.into_iter().collect();
        weights.sort_by(|a, b| a.0.cmp(&b.0));
        AliasRoute {
            version: version.into(),
            weights,
        }
    }
}

impl std::fmt::Display for AliasRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "version {}", self.version)?;
        for (i, (version, weight)) in self.weights.iter().enumerate() {
            let percent = (weight * 10_000.0).round() / 100.0;
            let joint = if i == 0 { " (with " } else { ", " };
            write!(f, "{joint}{percent}% on version {version}")?;
        }
        if !self.weights.is_empty() {
            write!(f, ")")?;
        }
        Ok(())
    }
}

/// Whether `version` is a published version's number (not `$LATEST`, not an alias).
fn is_version_number(version: &str) -> bool {
    !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit())
}

fn configuration_error(message: String) -> ErrorInformation {
    ErrorInformation::new(ErrorCode::InvalidLambdaConfiguration, message)
}

record! {
    /// A Lambda AppSpec's top level.
    struct LambdaDoc -> LambdaAppSpec, any_case {
        version: Version = "version",
        resources: Resources<Lambda> = "Resources",
        hooks: Hooks<Lambda> = "Hooks",
    }
}

impl Record for LambdaDoc {
    type Output = LambdaAppSpec;
    const WHAT: &'static str = "a Lambda AppSpec";

    fn finish(self, _path: &str) -> Result<LambdaAppSpec, Problem> {
        Version::require(self.version)?;
        let Some(resources) = self.resources else {
            return Err(Problem::new(
                AppSpecErrorKind::MissingKey,
                "missing 'Resources'; a Lambda AppSpec names its function under Resources, \
                 with Type AWS::Lambda::Function",
            ));
        };
        Ok(LambdaAppSpec {
            resource_name: resources.name,
            function: resources.properties,
            hooks: self.hooks.map(|h| h.entries).unwrap_or_default(),
        })
    }
}

/// The platform whose AppSpec this is, for the readers of `Resources` and `Hooks`.
struct Lambda;

impl ResourcePlatform for Lambda {
    const PLATFORM: ComputePlatform = ComputePlatform::Lambda;
    const TYPE: &'static str = LAMBDA_FUNCTION;
    type Properties = LambdaFunction;
}

record! {
    /// A Lambda resource's `Properties`.
    struct FunctionProperties -> LambdaFunction, any_case {
        name: String = "Name",
        alias: String = "Alias",
        current_version: LambdaVersion = "CurrentVersion",
        target_version: LambdaVersion = "TargetVersion",
    }
}

impl Record for FunctionProperties {
    type Output = LambdaFunction;
    const WHAT: &'static str = "the function's Name, Alias, CurrentVersion and TargetVersion";

    fn finish(self, path: &str) -> Result<LambdaFunction, Problem> {
        let name = self.name.ok_or_else(|| Problem::missing(path, "Name"))?;
        let alias = self.alias.ok_or_else(|| Problem::missing(path, "Alias"))?;
        let current = self
            .current_version
            .ok_or_else(|| Problem::missing(path, "CurrentVersion"))?;
        let target = self
            .target_version
            .ok_or_else(|| Problem::missing(path, "TargetVersion"))?;
        if current == target {
            return Err(Problem::invalid(format!(
                "{path}: CurrentVersion and TargetVersion are both {}; a deployment moves the \
                 alias to a different version",
                current.0
            )));
        }
        Ok(LambdaFunction {
            name,
            alias,
            current_version: current.0,
            target_version: target.0,
        })
    }
}

#[cfg(test)]
mod check_tests {
    use super::*;

    #[test]
    fn routes_say_where_an_alias_sends_its_traffic() {
        let route = AliasRoute::new("3", [("4".to_owned(), 0.1)]);
        assert_eq!(route.to_string(), "version 3 (with 10% on version 4)");
        let route = AliasRoute::new("2", [("5".to_owned(), 0.025), ("4".to_owned(), 0.5)]);
        assert_eq!(
            route.to_string(),
            "version 2 (with 50% on version 4, 2.5% on version 5)"
        );
        assert_eq!(AliasRoute::new("2", []).to_string(), "version 2");
    }

    #[test]
    fn only_numbers_are_published_versions() {
        assert!(is_version_number("12"));
        for v in ["", "$LATEST", "live", "1.0", "-1"] {
            assert!(!is_version_number(v), "{v}");
        }
    }

    #[test]
    fn only_an_alias_on_current_version_alone_can_be_deployed_from() {
        let f = LambdaFunction {
            name: "shop".into(),
            alias: "live".into(),
            current_version: "1".into(),
            target_version: "2".into(),
        };
        assert_eq!(f.versions_problem(), None);
        assert_eq!(f.route_problem(&AliasRoute::new("1", [])), None);
        let weighted = f
            .route_problem(&AliasRoute::new("1", [("2".to_owned(), 0.1)]))
            .unwrap();
        assert_eq!(
            weighted.message,
            "alias 'live' of Lambda function 'shop' points at version 1 (with 10% on version 2), not at CurrentVersion 1 alone"
        );
        let elsewhere = f.route_problem(&AliasRoute::new("2", [])).unwrap();
        assert_eq!(
            elsewhere.message,
            "alias 'live' of Lambda function 'shop' points at version 2, not at CurrentVersion 1"
        );
        let latest = LambdaFunction {
            target_version: "$LATEST".into(),
            ..f
        };
        let problem = latest.versions_problem().unwrap();
        assert_eq!(problem.code, ErrorCode::InvalidLambdaConfiguration);
        assert!(
            problem.message.contains("TargetVersion '$LATEST'"),
            "{problem:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Parser;
    use super::super::{AppSpecErrorKind as Kind, parse_lambda};
    use super::*;
    use LifecycleEventName::*;

    const LAMBDA: Parser<LambdaAppSpec> = Parser {
        function: parse_lambda,
        source_name: "appspec.yml",
    };

    /// A Lambda AppSpec with `properties` (indented under Properties) and `rest` appended.
    fn lambda(properties: &str, rest: &str) -> String {
        format!(
            "version: 0.0\nResources:\n  - myFunction:\n      Type: AWS::Lambda::Function\n      \
             Properties:\n{properties}{rest}"
        )
    }

    const PROPERTIES: &str = "        Name: my-function\n        Alias: live\n        \
                              CurrentVersion: 1\n        TargetVersion: 2\n";

    #[test]
    fn pascal_case_as_in_codedeploys_documentation() {
        let spec = LAMBDA.parse(&lambda(
            PROPERTIES,
            "Hooks:\n  - BeforeAllowTraffic: pre-check\n  - AfterAllowTraffic: post-check\n",
        ));
        assert_eq!(spec.resource_name, "myFunction");
        assert_eq!(
            spec.function,
            LambdaFunction {
                name: "my-function".to_owned(),
                alias: "live".to_owned(),
                current_version: "1".to_owned(),
                target_version: "2".to_owned(),
            }
        );
        assert_eq!(
            spec.hooks,
            [
                (BeforeAllowTraffic, "pre-check".to_owned()),
                (AfterAllowTraffic, "post-check".to_owned())
            ]
        );
        assert_eq!(spec.hook(AfterAllowTraffic), Some("post-check"));
        assert!(LAMBDA.parse(&lambda(PROPERTIES, "")).hooks.is_empty());
    }

    #[test]
    fn lowercase_and_camel_case_keys() {
        let spec = LAMBDA.parse(include_str!(
            "../../tests/fixtures/appspec/lambda-lowercase.yaml"
        ));
        assert_eq!(spec.resource_name, "myLambdaFunction");
        assert_eq!(spec.function.alias, "myLambdaFunctionAlias");
        assert_eq!(spec.function.current_version, "1");
        assert_eq!(spec.function.target_version, "2");
        assert_eq!(spec.hooks.len(), 2);
        let camel = [
            "version: 0.0",
            "resources:",
            "  - fn:",
            "      type: AWS::Lambda::Function",
            "      properties:",
            "        name: f",
            "        alias: a",
            "        currentVersion: 7",
            "        targetVersion: \"08\"",
        ]
        .join("\n");
        let spec = LAMBDA.parse(&camel);
        assert_eq!(spec.function.current_version, "7");
        assert_eq!(spec.function.target_version, "8");
    }

    #[test]
    fn json_form() {
        let json = r#"{
  "version": 0.0,
  "Resources": [{"fn": {"Type": "AWS::Lambda::Function",
    "Properties": {"Name": "f", "Alias": "live", "CurrentVersion": 3, "TargetVersion": "4"}}}],
  "Hooks": [{"BeforeAllowTraffic": "check"}]
}"#;
        let spec = LAMBDA.parse(json);
        assert_eq!(spec.function.current_version, "3");
        assert_eq!(spec.function.target_version, "4");
        assert_eq!(spec.hook(BeforeAllowTraffic), Some("check"));
    }

    #[test]
    fn properties_name_what_is_missing() {
        LAMBDA.assert_refused(
            &lambda(
                "        Name: f\n        Alias: live\n        CurrentVersion: 1\n",
                "",
            ),
            Kind::MissingKey,
            6,
            "Resources[0].myFunction.Properties: missing 'TargetVersion'",
        );
        let err = LAMBDA.refuse(&lambda(
            "        Alias: live\n        CurrentVersion: 1\n        TargetVersion: 2\n",
            "",
        ));
        assert_eq!(
            err.message,
            "Resources[0].myFunction.Properties: missing 'Name'"
        );
        let err = LAMBDA.refuse("version: 0.0\nHooks: []\n");
        assert_eq!(err.kind, Kind::MissingKey);
        assert!(err.message.starts_with("missing 'Resources'"), "{err}");
    }

    #[test]
    fn versions_are_distinct_published_versions() {
        LAMBDA.assert_refused(
            &lambda(
                "        Name: f\n        Alias: live\n        CurrentVersion: 1\n        \
                 TargetVersion: $LATEST\n",
                "",
            ),
            Kind::InvalidValue,
            9,
            "Resources[0].myFunction.Properties.TargetVersion: $LATEST cannot be deployed: an \
             alias shifts traffic between published versions, so give a version number \
             (publish one with `aws lambda publish-version`)",
        );
        LAMBDA.assert_refused(
            &lambda(
                "        Name: f\n        Alias: live\n        CurrentVersion: 2\n        \
                 TargetVersion: \"2\"\n",
                "",
            ),
            Kind::InvalidValue,
            6,
            "Resources[0].myFunction.Properties: CurrentVersion and TargetVersion are both 2; a \
             deployment moves the alias to a different version",
        );
        let err = LAMBDA.refuse(&lambda(
            "        Name: f\n        Alias: live\n        CurrentVersion: v1\n        \
             TargetVersion: 2\n",
            "",
        ));
        assert_eq!((err.kind, err.line), (Kind::InvalidValue, Some(8)));
    }

    #[test]
    fn exactly_one_function_resource() {
        let two = format!(
            "{}  - other:\n      Type: AWS::Lambda::Function\n",
            lambda(PROPERTIES, "")
        );
        LAMBDA.assert_refused(
            &two,
            Kind::InvalidValue,
            10,
            "Resources[1]: 'other' is a second resource; a Lambda AppSpec names exactly one, so \
             deploy each with its own AppSpec",
        );
        LAMBDA.assert_refused(
            "version: 0.0\nResources: []\n",
            Kind::MissingKey,
            2,
            "Resources lists no resource; a Lambda AppSpec names a Lambda function",
        );
        let err = LAMBDA
            .refuse(&lambda(PROPERTIES, "").replace("AWS::Lambda::Function", "AWS::Lambda::Alias"));
        assert_eq!((err.kind, err.line), (Kind::InvalidValue, Some(4)));
        assert_eq!(
            err.message,
            "Resources[0].myFunction.Type: resource type 'AWS::Lambda::Alias' is not \
             AWS::Lambda::Function; a Lambda AppSpec deploys a Lambda function"
        );
        let err = LAMBDA
            .refuse(&lambda(PROPERTIES, "").replace("      Type: AWS::Lambda::Function\n", ""));
        assert_eq!(err.kind, Kind::MissingKey);
        assert!(err.message.contains("missing 'Type'"), "{err}");
    }

    #[test]
    fn hooks_are_lambda_events_given_once() {
        LAMBDA.assert_refused(
            &lambda(
                PROPERTIES,
                "Hooks:\n  - BeforeAllowTraffic: a\n  - BeforeAllowTraffic: b\n",
            ),
            Kind::DuplicateHook,
            12,
            "hook 'BeforeAllowTraffic' is given twice; an event takes one hook function",
        );
        LAMBDA.assert_refused(
            &lambda(PROPERTIES, "Hooks:\n  - AfterInstall: a\n"),
            Kind::UnknownLifecycleEvent,
            11,
            "AfterInstall is not an event of Lambda deployments; the events that take a hook \
             function are: BeforeAllowTraffic, AfterAllowTraffic",
        );
        LAMBDA.assert_refused(
            &lambda(PROPERTIES, "Hooks:\n  - BeforeAllowTrafic: a\n"),
            Kind::UnknownLifecycleEvent,
            11,
            "hook 'BeforeAllowTrafic' is not a lifecycle event (did you mean BeforeAllowTraffic?)",
        );
        let err = LAMBDA.refuse(&lambda(PROPERTIES, "Hooks:\n  BeforeAllowTraffic: a\n"));
        assert_eq!((err.kind, err.line), (Kind::InvalidValue, Some(11)));
        let err = LAMBDA.refuse(&lambda(
            PROPERTIES,
            "Hooks:\n  - BeforeAllowTraffic: a\n    AfterAllowTraffic: b\n",
        ));
        assert_eq!(err.kind, Kind::InvalidValue);
        assert!(err.message.contains("its own entry"), "{err}");
    }

    #[test]
    fn unknown_keys_get_suggestions() {
        LAMBDA.assert_refused(
            &lambda(
                "        Name: f\n        Aliass: live\n        CurrentVersion: 1\n        \
                 TargetVersion: 2\n",
                "",
            ),
            Kind::UnknownKey,
            7,
            "Resources[0].myFunction.Properties: unknown key 'Aliass' (did you mean 'Alias'?); \
             the keys allowed here are: Name, Alias, CurrentVersion, TargetVersion",
        );
        let err = LAMBDA.refuse(&lambda(PROPERTIES, "Hoks: []\n"));
        assert_eq!((err.kind, err.line), (Kind::UnknownKey, Some(10)));
        assert!(err.message.contains("did you mean 'Hooks'"), "{err}");
    }
}
