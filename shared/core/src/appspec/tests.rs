//! Behaviour shared by every platform: formats, empty and broken texts, wrong platforms, and
//! the sample revisions under `examples/`, which must always parse.

use std::time::Duration;

use super::AppSpecErrorKind as Kind;
use super::*;
use crate::lifecycle::LifecycleEventName::*;

const SERVER: &str = "version: 0.0\nos: linux\n";
const LAMBDA: &str = "version: 0.0\nResources:\n  - fn:\n      Type: AWS::Lambda::Function\n      \
                      Properties: {Name: f, Alias: live, CurrentVersion: 1, TargetVersion: 2}\n";
const ECS: &str = "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      \
                   Properties:\n        TaskDefinition: web:1\n        LoadBalancerInfo: \
                   {ContainerName: web, ContainerPort: 80}\n";

#[test]
fn parse_reads_the_applications_platform() {
    for (text, platform) in [
        (SERVER, ComputePlatform::Server),
        (LAMBDA, ComputePlatform::Lambda),
        (ECS, ComputePlatform::Ecs),
    ] {
        let spec = parse(text, "appspec.yml", platform).unwrap();
        assert_eq!(spec.platform(), platform);
    }
}

#[test]
fn empty_texts() {
    for text in ["", "   \n\t\n", "\u{feff}"] {
        let err = parse_server(text, "appspec.yml").unwrap_err();
        assert_eq!((err.kind, err.line), (Kind::Empty, None));
        assert_eq!(err.to_string(), "appspec.yml: the AppSpec is empty");
    }
    for platform in [
        ComputePlatform::Server,
        ComputePlatform::Lambda,
        ComputePlatform::Ecs,
    ] {
        let err = parse("# nothing yet\n", "appspec.yml", platform).unwrap_err();
        assert_eq!(err.kind, Kind::Empty, "{platform}: {err}");
        assert!(err.message.starts_with("the AppSpec is empty"), "{err}");
    }
}

#[test]
fn syntax_errors_keep_the_parsers_position() {
    let err = parse_server(
        "version: 0.0\nos: linux\nfiles:\n  - source: a\n destination: /b\n",
        "appspec.yml",
    )
    .unwrap_err();
    assert_eq!((err.kind, err.line), (Kind::Syntax, Some(5)), "{err}");
    assert_eq!(
        err.message,
        "not valid YAML: did not find expected key (check the indentation of this line and \
         the one before)"
    );
    let err = parse_server("version: 0.0\nos: linux\n\tfiles: []\n", "appspec.yml").unwrap_err();
    assert_eq!((err.kind, err.line), (Kind::Syntax, Some(3)), "{err}");
    assert!(err.message.ends_with("never tabs)"), "{err}");
    let err = parse_server("version: 0.0\nos: linux\nfiles: *x\n", "appspec.yml").unwrap_err();
    assert_eq!((err.kind, err.line), (Kind::Syntax, Some(3)), "{err}");
    let err =
        parse_server("{\"version\": 0.0,\n \"os\": \"linux\",\n}", "appspec.json").unwrap_err();
    assert_eq!((err.kind, err.line), (Kind::Syntax, Some(3)), "{err}");
    assert_eq!(
        err.message,
        "not valid JSON: key must be a string (JSON keys are quoted, and no comma comes before \
         '}')"
    );
    let err = parse_server(
        "{\"version\": 0.0, \"os\": \"linux\"} extra",
        "appspec.json",
    )
    .unwrap_err();
    assert_eq!(err.kind, Kind::Syntax, "{err}");
    let err = parse_server(
        "version: 0.0\nos: linux\n---\nversion: 0.0\n",
        "appspec.yml",
    )
    .unwrap_err();
    assert_eq!(err.kind, Kind::Syntax, "{err}");
}

#[test]
fn server_appspec_in_json() {
    let json = r#"{
  "version": 0.0,
  "os": "linux",
  "files": [{"source": "/", "destination": "/srv/app"}],
  "file_exists_behavior": "RETAIN",
  "permissions": [{"object": "/srv/app", "mode": 750, "type": ["directory"]}],
  "hooks": {
    "ApplicationStart": [
      {"location": "start.sh", "timeout": 30, "runas": "app"},
      {"location": "warm.sh", "timeout": "45"}
    ]
  }
}"#;
    let spec = parse_server(json, "appspec.json").unwrap();
    assert!(spec.files[0].is_whole_bundle());
    assert_eq!(spec.permissions[0].mode.map(Mode::bits), Some(0o750));
    assert_eq!(
        spec.scripts(ApplicationStart)[0].runas.as_deref(),
        Some("app")
    );
    assert_eq!(
        spec.event_timeout(ApplicationStart),
        Duration::from_secs(75)
    );
    assert_eq!(
        spec.file_exists_behavior,
        Some(crate::model::FileExistsBehavior::Retain)
    );
}

#[test]
fn json_errors_have_lines_too() {
    let json = "{\n  \"version\": 0.0,\n  \"os\": \"linux\",\n  \"hooks\": {\n    \"AfterInstal\": []\n  }\n}";
    let err = parse_server(json, "appspec.json").unwrap_err();
    assert_eq!(
        err.to_string(),
        "appspec.json line 5: hook 'AfterInstal' is not a lifecycle event (did you mean AfterInstall?)"
    );
    let json = "{\n  \"version\": 0.0,\n  \"os\": \"linux\",\n  \"files\": [\n    {\"source\": \"a\"}\n  ]\n}";
    let err = parse_server(json, "appspec.json").unwrap_err();
    assert_eq!((err.kind, err.line), (Kind::MissingKey, Some(5)));
    assert_eq!(
        err.message,
        "files[0]: missing 'destination' for source 'a'"
    );
    let json = "{\"version\": \"1.0\", \"os\": \"linux\"}";
    let err = parse_server(json, "appspec.json").unwrap_err();
    assert_eq!((err.kind, err.line), (Kind::UnsupportedVersion, Some(1)));
    let json = "{\"version\": 0.0, \"os\": \"linux\", \"os\": \"linux\"}";
    let err = parse_server(json, "appspec.json").unwrap_err();
    assert_eq!(err.kind, Kind::DuplicateKey);
}

#[test]
fn wrong_platform_is_named() {
    let err = parse(LAMBDA, "appspec.yml", ComputePlatform::Server).unwrap_err();
    assert_eq!((err.kind, err.line), (Kind::WrongPlatform, Some(4)));
    assert_eq!(
        err.message,
        "this AppSpec describes a Lambda function (Resources of Type AWS::Lambda::Function) but \
         the application's compute platform is Server"
    );
    let err = parse(ECS, "AppSpecContent", ComputePlatform::Lambda).unwrap_err();
    assert_eq!(err.kind, Kind::WrongPlatform);
    assert_eq!(
        err.to_string(),
        "AppSpecContent line 4: this AppSpec describes an ECS service (Resources of Type \
         AWS::ECS::Service) but the application's compute platform is Lambda"
    );
    let err = parse(SERVER, "AppSpecContent", ComputePlatform::Ecs).unwrap_err();
    assert_eq!((err.kind, err.line), (Kind::WrongPlatform, Some(2)));
    assert_eq!(
        err.message,
        "this AppSpec describes an EC2/on-premises revision (it has 'os') but the \
         application's compute platform is ECS, whose AppSpec names an ECS service under \
         Resources"
    );
    let json =
        "{\"version\": 0.0, \"Resources\": [{\"f\": {\"Type\": \"AWS::Lambda::Function\"}}]}";
    let err = parse(json, "AppSpecContent", ComputePlatform::Ecs).unwrap_err();
    assert_eq!(err.kind, Kind::WrongPlatform);
}

#[test]
fn errors_display_with_and_without_a_line() {
    let mut err = AppSpecError::without_line("appspec.yml", Kind::InvalidValue, "bad");
    assert_eq!(err.to_string(), "appspec.yml: bad");
    err.line = Some(12);
    assert_eq!(err.to_string(), "appspec.yml line 12: bad");
    assert_eq!(Kind::DuplicateDestination.as_str(), "DuplicateDestination");
}

#[test]
fn byte_order_marks_are_skipped() {
    let text = format!("\u{feff}{SERVER}");
    assert_eq!(parse_server(&text, "appspec.yml").unwrap().os, Os::Linux);
}

#[test]
fn fixtures_round_trip_to_json() {
    let spec = parse_server(
        include_str!("../../tests/fixtures/appspec/permissions.yml"),
        "appspec.yml",
    )
    .unwrap();
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["permissions"][0]["mode"], "0644");
    assert_eq!(json["permissions"][0]["type"][0], "file");
    assert_eq!(
        json["permissions"][1]["context"]["type"],
        "httpd_sys_content_t"
    );
    assert_eq!(json["hooks"][0][0], "AfterInstall");
    assert_eq!(json["hooks"][0][1][0]["timeout"], 180);
}

#[test]
fn example_web_app() {
    let spec = parse_server(
        include_str!("../../../../examples/webapp/appspec.yml"),
        "appspec.yml",
    )
    .unwrap();
    let files: Vec<_> = spec
        .files
        .iter()
        .map(|f| (f.bundle_path(), f.destination.as_str()))
        .collect();
    assert_eq!(
        files,
        [
            ("src".to_owned(), "/srv/webapp"),
            ("config/webapp.conf".to_owned(), "/etc/webapp")
        ]
    );
    assert_eq!(spec.files[1].file_target(), "/etc/webapp/webapp.conf");
    assert_eq!(
        spec.file_exists_behavior,
        Some(crate::model::FileExistsBehavior::Overwrite)
    );
    assert_eq!(spec.permissions.len(), 2);
    assert_eq!(spec.permissions[1].mode.map(Mode::bits), Some(0o755));
    let hooks: Vec<_> = spec
        .hooks
        .iter()
        .map(|(event, scripts)| (*event, scripts[0].location.as_str()))
        .collect();
    assert_eq!(
        hooks,
        [
            (ApplicationStop, "scripts/stop.sh"),
            (BeforeInstall, "scripts/before_install.sh"),
            (AfterInstall, "scripts/after_install.sh"),
            (ApplicationStart, "scripts/start.sh"),
            (ValidateService, "scripts/validate.sh"),
        ]
    );
    assert_eq!(spec.event_timeout(ValidateService), Duration::from_secs(30));
}

#[test]
fn example_lambda_alias_in_yaml_and_json() {
    let yaml = parse_lambda(
        include_str!("../../../../examples/lambda-alias/appspec.yml"),
        "appspec.yml",
    )
    .unwrap();
    let json = parse_lambda(
        include_str!("../../../../examples/lambda-alias/appspec.json"),
        "appspec.json",
    )
    .unwrap();
    assert_eq!(yaml, json);
    assert_eq!(yaml.resource_name, "MyFunction");
    assert_eq!(yaml.function.name, "my-function");
    assert_eq!(yaml.function.alias, "live");
    assert_eq!(
        (
            yaml.function.current_version.as_str(),
            yaml.function.target_version.as_str()
        ),
        ("3", "4")
    );
    assert_eq!(
        yaml.hook(BeforeAllowTraffic),
        Some("my-function-smoke-test")
    );
    assert_eq!(
        yaml.hook(AfterAllowTraffic),
        Some("my-function-error-check")
    );
}

#[test]
fn example_ecs_task_set() {
    let spec = parse_ecs(
        include_str!("../../../../examples/ecs-task-set/appspec.yaml"),
        "appspec.yaml",
    )
    .unwrap();
    assert_eq!(spec.resource_name, "TargetService");
    assert!(spec.task_definition.ends_with("task-definition/web:7"));
    assert_eq!(
        (spec.container_name.as_str(), spec.container_port),
        ("web", 8080)
    );
    let network = spec.network_configuration.as_ref().unwrap();
    assert_eq!(network.subnets.len(), 2);
    assert_eq!(network.assign_public_ip, Some(AssignPublicIp::Disabled));
    assert_eq!(spec.capacity_provider_strategy.len(), 2);
    assert_eq!(spec.capacity_provider_strategy[1].base, None);
    assert_eq!(spec.capacity_provider_strategy[1].weight, Some(3));
    assert_eq!(spec.hooks.len(), 3);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Lines of AppSpecs, right and wrong, so that generated texts often parse far enough to
    /// reach the checks.
    const LINES: &[&str] = &[
        "version: 0.0",
        "version: 1",
        "os: linux",
        "files:",
        "  - source: a",
        "    destination: /b",
        "  - source: ../a",
        "hooks:",
        "  AfterInstall:",
        "  AfterInstal:",
        "    - location: a.sh",
        "      timeout: 0",
        "      runas: ''",
        "permissions:",
        "  - object: /b",
        "    mode: 0648",
        "    context: {type: t}",
        "Resources:",
        "  - f:",
        "      Type: AWS::Lambda::Function",
        "      Type: AWS::ECS::Service",
        "      Properties: {Name: f, Alias: a, CurrentVersion: 1, TargetVersion: 2}",
        "Hooks:",
        "  - BeforeAllowTraffic: f",
        "{",
        "}",
        "\"os\": \"linux\",",
        "  ",
        "\t",
    ];

    fn platform() -> impl Strategy<Value = ComputePlatform> {
        prop::sample::select(ComputePlatform::ALL.to_vec())
    }

    fn check_error(text: &str, err: &AppSpecError) -> Result<(), TestCaseError> {
        prop_assert!(!err.message.is_empty());
        prop_assert!(!err.message.contains('\u{1f}'), "{}", err.message);
        if let Some(line) = err.line {
            // Counted as the parser counts them, which the error's line must lie within.
            let lines = yaml_line_count(text);
            prop_assert!(line >= 1 && line <= lines, "{err}");
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn mixed_lines_give_a_value_or_a_located_error(
            lines in prop::collection::vec(prop::sample::select(LINES), 0..14),
            platform in platform(),
        ) {
            let text = lines.join("\n");
            if let Err(err) = parse(&text, "appspec.yml", platform) {
                check_error(&text, &err)?;
            }
        }

        #[test]
        fn any_text_gives_a_value_or_an_error(text in "\\PC{0,120}", platform in platform()) {
            if let Err(err) = parse(&text, "appspec.yml", platform) {
                check_error(&text, &err)?;
            }
        }

        #[test]
        fn modes_read_back_as_written(bits in 0u16..=Mode::MAX) {
            let mode = Mode::from_bits(bits).unwrap();
            let text = format!("{SERVER}permissions:\n  - object: /srv\n    mode: {mode}\n");
            let spec = parse_server(&text, "appspec.yml").unwrap();
            prop_assert_eq!(spec.permissions[0].mode, Some(mode));
        }
    }
}

#[test]
fn the_platform_is_detected_from_the_top_level_keys() {
    assert_eq!(detect_platform(SERVER), Some(ComputePlatform::Server));
    assert_eq!(detect_platform(LAMBDA), Some(ComputePlatform::Lambda));
    assert_eq!(detect_platform(ECS), Some(ComputePlatform::Ecs));
    let json = r#"{"version": 0.0, "Resources": [{"f": {"Type": "AWS::Lambda::Function"}}]}"#;
    assert_eq!(detect_platform(json), Some(ComputePlatform::Lambda));
    assert_eq!(detect_platform("version: 0.0\n"), None);
    assert_eq!(detect_platform("version: [\n"), None);
}

#[test]
fn an_error_at_the_end_of_the_input_points_at_the_last_line() {
    // A line separator (U+2028) is a line break to the YAML parser, which placed this error on
    // a third line that the text does not have.
    let err = parse_server("0:\u{2028}\u{fffc}", "appspec.yml").unwrap_err();
    assert_eq!((err.kind, err.line), (Kind::Syntax, Some(2)), "{err}");
}
