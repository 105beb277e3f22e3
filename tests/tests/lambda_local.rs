//! `cutover local deploy` of Lambda AppSpecs against the AWS emulator's Lambda, with time
//! compressed by `--time-scale`: the alias's weights at each step of a canary and of a linear
//! configuration, an alarm mid-shift, and hook functions that report through `cutover serve`
//! on the same state directory, or never report.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cutover_tests::emulator::{Emulator, unique};
use cutover_tests::functions::{Functions, alias_appspec};
use cutover_tests::serve::{KEY_ID, SECRET, Serve};
use cutover_tests::{binary, stderr, stdout};
use serde_json::json;

/// `cutover local deploy <appspec> --endpoint <emulator>` with `extra`, started.
fn deploy(state: &Path, appspec: &str, extra: &[&str]) -> Child {
    let file = state.join(format!("{}.yml", unique("appspec")));
    std::fs::write(&file, appspec).unwrap();
    Command::new(binary("cutover"))
        .args(["local", "deploy"])
        .arg(&file)
        .args(["--endpoint", &Emulator::url(), "--state-dir"])
        .arg(state)
        .args(extra)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cutover runs")
}

fn finished(child: Child) -> Output {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.code().is_some(),
        "cutover was killed: {}",
        stderr(&out)
    );
    out
}

/// Polls the alias until it is at `wanted` (version, weights), for at most `within`.
fn until_alias(
    lambda: &Functions,
    name: &str,
    wanted: (&str, serde_json::Value),
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        let (version, weights) = lambda.alias(name, "live");
        if version == wanted.0 && serde_json::Value::Object(weights.clone()) == wanted.1 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "alias live of {name} never reached {wanted:?}; it is at {version} {weights:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_canary_moves_ten_percent_then_the_rest_and_shows_each_step() {
    let lambda = Functions::new(&Emulator::url());
    let name = lambda.versioned("canary");
    let state = tempfile::tempdir().unwrap();
    let run = deploy(
        state.path(),
        &alias_appspec(&name, "1", "2", None),
        &[
            "--config",
            "CodeDeployDefault.LambdaCanary10Percent5Minutes",
            "--time-scale",
            "60",
        ],
    );
    // Five minutes pass in five seconds: the canary's 10% is there to be seen meanwhile.
    until_alias(
        &lambda,
        &name,
        ("1", json!({"2": 0.1})),
        Duration::from_secs(30),
    );
    let started = Instant::now();
    let out = finished(run);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "the canary's interval was not waited"
    );
    assert_eq!(
        lambda.alias(&name, "live"),
        ("2".into(), Default::default())
    );
    let progress = stderr(&out);
    let target = format!("{name}:live");
    let ten = progress
        .find(&format!(
            "{target}  10% of traffic on version 2, 90% on version 1"
        ))
        .unwrap_or_else(|| panic!("{progress}"));
    let all = progress
        .find(&format!("{target}  all traffic on version 2"))
        .unwrap_or_else(|| panic!("{progress}"));
    assert!(ten < all, "{progress}");
    assert!(progress.contains("(1 of 1 alias done)"), "{progress}");
    let summary = stdout(&out);
    assert!(summary.contains("1 alias: 1 Succeeded"), "{summary}");

    // The deployment is in the state directory, as CodeDeploy shows it.
    let status = Command::new(binary("cutover"))
        .args(["local", "status", "--json", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(shown["deploymentInfo"]["computePlatform"], "Lambda");
    assert_eq!(shown["deploymentInfo"]["status"], "Succeeded");
    let info = &shown["targets"][0]["lambdaFunctionInfo"];
    assert_eq!(info["targetVersionWeight"], 1.0, "{shown}");
    assert_eq!(info["functionAlias"], "live");
}

#[test]
fn a_linear_configuration_moves_ten_percent_at_a_time() {
    let lambda = Functions::new(&Emulator::url());
    let name = lambda.versioned("linear");
    let state = tempfile::tempdir().unwrap();
    let run = deploy(
        state.path(),
        &alias_appspec(&name, "1", "2", None),
        &[
            "--config",
            "CodeDeployDefault.LambdaLinear10PercentEvery1Minute",
            "--time-scale",
            "120",
        ],
    );
    let out = finished(run);
    assert!(out.status.success(), "{}", stderr(&out));
    let progress = stderr(&out);
    let mut last = 0;
    for percent in (10..=90).step_by(10) {
        let line = format!(
            "{percent}% of traffic on version 2, {}% on version 1",
            100 - percent
        );
        let at = progress
            .find(&line)
            .unwrap_or_else(|| panic!("no '{line}' in:\n{progress}"));
        assert!(at > last, "{percent}% came out of order:\n{progress}");
        last = at;
    }
    assert!(
        progress[last..].contains("all traffic on version 2"),
        "{progress}"
    );
    assert_eq!(
        lambda.alias(&name, "live"),
        ("2".into(), Default::default())
    );
}

#[test]
fn an_alarm_mid_shift_moves_the_traffic_back() {
    let lambda = Functions::new(&Emulator::url());
    let name = lambda.versioned("alarmed");
    let state = tempfile::tempdir().unwrap();
    let run = deploy(
        state.path(),
        &alias_appspec(&name, "1", "2", None),
        &[
            "--config",
            "CodeDeployDefault.LambdaCanary10Percent10Minutes",
            "--time-scale",
            "30",
            "--alarm",
            "Errors",
        ],
    );
    until_alias(
        &lambda,
        &name,
        ("1", json!({"2": 0.1})),
        Duration::from_secs(30),
    );
    let alarm = Command::new(binary("cutover"))
        .args([
            "local",
            "alarm",
            "Errors",
            "--state",
            "ALARM",
            "--state-dir",
        ])
        .arg(state.path())
        .output()
        .unwrap();
    assert!(alarm.status.success(), "{}", stderr(&alarm));
    let out = finished(run);
    assert!(!out.status.success());
    assert_eq!(
        lambda.alias(&name, "live"),
        ("1".into(), Default::default())
    );
    let progress = stderr(&out);
    assert!(
        progress.contains("all traffic back on version 1"),
        "{progress}"
    );
    assert!(progress.contains("ALARM_ACTIVE"), "{progress}");
}

#[test]
fn hooks_report_through_serve_and_one_that_never_reports_fails_the_deployment() {
    let emulator = Emulator::url();
    let lambda = Functions::new(&emulator);
    let state = tempfile::tempdir().unwrap();
    let serve = Serve::start_in(
        state.path(),
        &[
            ("CUTOVER_ACCESS_KEY_ID", KEY_ID),
            ("CUTOVER_SECRET_ACCESS_KEY", SECRET),
        ],
    );
    let name = lambda.versioned("hooked");
    let hook = unique("hooked-check");
    lambda.create_example_hook(&hook, &serve.url, &[]);
    let out = finished(deploy(
        state.path(),
        &alias_appspec(&name, "1", "2", Some(&hook)),
        &[],
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        lambda.alias(&name, "live"),
        ("2".into(), Default::default())
    );
    assert_eq!(lambda.finished_invocations(&hook)[0]["status"], "succeeded");

    // A hook function that never reports: an hour passes in a second.
    let silent = unique("silent-hook");
    lambda.create(
        &silent,
        "def handler(event, context):\n    return 'busy'\n",
        &[],
    );
    let other = lambda.versioned("unheard");
    let started = Instant::now();
    let out = finished(deploy(
        state.path(),
        &alias_appspec(&other, "1", "2", Some(&silent)),
        &["--time-scale", "3600"],
    ));
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(60));
    let progress = stderr(&out);
    assert!(progress.contains("TIMEOUT"), "{progress}");
    assert!(progress.contains("did not report"), "{progress}");
    assert_eq!(
        lambda.alias(&other, "live"),
        ("1".into(), Default::default())
    );
}

#[test]
fn server_options_are_refused_for_a_lambda_appspec_and_lambda_ones_for_a_bundle() {
    let state = tempfile::tempdir().unwrap();
    let out = finished(deploy(
        state.path(),
        &alias_appspec("anything", "1", "2", None),
        &["--hosts", "3"],
    ));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--hosts is for revisions that deploy to hosts"),
        "{}",
        stderr(&out)
    );
    let out = Command::new(binary("cutover"))
        .args(["local", "deploy"])
        .arg(cutover_tests::webapp())
        .args(["--time-scale", "10", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--time-scale is for Lambda AppSpecs"),
        "{}",
        stderr(&out)
    );
}
