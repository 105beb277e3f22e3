//! The `cutover` binary, run as users run it.

use cutover_tests::{cutover, stderr, stdout};

#[test]
fn config_list_names_the_seventeen_predefined_configurations() {
    let out = cutover(&["config", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names = json["deploymentConfigsList"].as_array().unwrap();
    assert_eq!(names.len(), 17);
    assert_eq!(names[0], "CodeDeployDefault.OneAtATime");
}

#[test]
fn config_show_plans_nine_hosts_half_at_a_time() {
    let out = cutover(&[
        "config",
        "show",
        "CodeDeployDefault.HalfAtATime",
        "--hosts",
        "9",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["deploymentConfigInfo"]["minimumHealthyHosts"]["type"],
        "FLEET_PERCENT"
    );
    assert_eq!(json["hostPlan"]["batchSizes"], serde_json::json!([4, 4, 1]));
    assert_eq!(json["hostPlan"]["minimumSuccessful"], 5);

    let text = stdout(&cutover(&[
        "config",
        "show",
        "CodeDeployDefault.OneAtATime",
        "--hosts",
        "3",
    ]));
    assert!(
        text.contains("on 3 hosts: keeps 2 healthy, deploys up to 1 at a time (batches 1, 1, 1)"),
        "{text}"
    );
}

#[test]
fn config_show_refuses_a_fleet_the_configuration_cannot_deploy() {
    let out = cutover(&[
        "config",
        "show",
        "CodeDeployDefault.HalfAtATime",
        "--hosts",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("cannot deploy"), "{}", stdout(&out));
}

#[test]
fn config_show_prints_a_canary_schedule() {
    let out = cutover(&[
        "config",
        "show",
        "CodeDeployDefault.LambdaCanary10Percent5Minutes",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["trafficSchedule"],
        serde_json::json!([{"after": 0, "percent": 10}, {"after": 5, "percent": 100}])
    );
}

#[test]
fn an_unknown_configuration_gets_a_suggestion() {
    let out = cutover(&["config", "show", "CodeDeployDefault.OneAtTime"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("did you mean CodeDeployDefault.OneAtATime?"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn appspec_validate_accepts_every_example_revision() {
    for (path, platform) in [
        ("examples/webapp", "Server"),
        ("examples/lambda-alias/appspec.yml", "Lambda"),
        ("examples/lambda-alias/appspec.json", "Lambda"),
        ("examples/ecs-task-set", "ECS"),
    ] {
        let out = cutover(&["appspec", "validate", path, "--json"]);
        assert!(
            out.status.success(),
            "{path}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["platform"], platform, "{path}");
    }
    let text = stdout(&cutover(&["appspec", "validate", "examples/webapp"]));
    assert!(
        text.starts_with("examples/webapp/appspec.yml: a valid Server AppSpec"),
        "{text}"
    );
}

#[test]
fn appspec_validate_points_at_the_line_and_suggests_the_name() {
    let dir = std::env::temp_dir().join(format!("cutover-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("appspec.yml");
    std::fs::write(
        &file,
        "version: 0.0\nos: linux\nhooks:\n  AfterInstal:\n    - location: x.sh\n",
    )
    .unwrap();
    let out = cutover(&["appspec", "validate", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("appspec.yml line 4: hook 'AfterInstal' is not a lifecycle event (did you mean AfterInstall?)"),
        "{err}"
    );
    let out = cutover(&["appspec", "validate", file.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["error"]["kind"], "UnknownLifecycleEvent");
    assert_eq!(json["error"]["line"], 4);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn appspec_validate_names_a_platform_mismatch_and_a_missing_file() {
    let out = cutover(&[
        "appspec",
        "validate",
        "examples/webapp",
        "--platform",
        "Lambda",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the application's compute platform is Lambda"),
        "{}",
        stderr(&out)
    );
    let out = cutover(&["appspec", "validate", "examples/nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("examples/nowhere does not exist"),
        "{}",
        stderr(&out)
    );
    let out = cutover(&["appspec", "validate", "examples"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("has no appspec.yaml or appspec.yml"),
        "{}",
        stderr(&out)
    );
}
