//! The `cutover-agent` binary, run as SSM Run Command runs it: real bundles built with the usual
//! tools (a directory, `tar czf`, Python's zipfile), a download over loopback HTTP, and the JSON
//! lines and exit status the engine reads back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cutover_tests::{binary, repo_root, stderr, stdout};
use serde_json::Value;

const EVENTS: &str = "ApplicationStop,DownloadBundle,BeforeInstall,Install,AfterInstall,ApplicationStart,ValidateService";

fn agent(host_root: &Path, deployment: &str, bundle: &str, extra: &[&str]) -> Output {
    Command::new(binary("cutover-agent"))
        .args([
            "run",
            "--deployment-id",
            deployment,
            "--application",
            "WebApp",
            "--group",
            "Fleet",
        ])
        .args([
            "--group-id",
            "4f1c2d3e-0000-4000-8000-000000000001",
            "--bundle",
            bundle,
        ])
        .args(["--events", EVENTS, "--host-root"])
        .arg(host_root)
        .args(extra)
        .output()
        .expect("cutover-agent runs")
}

/// The JSON lines the agent printed.
fn events(out: &Output) -> Vec<Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn statuses(out: &Output) -> Vec<String> {
    events(out)
        .iter()
        .map(|e| e["status"].as_str().unwrap().to_owned())
        .collect()
}

fn web_app() -> PathBuf {
    repo_root().join("examples/webapp")
}

#[test]
fn the_example_revision_deploys_from_a_directory_and_prints_one_line_per_event() {
    let host = tempfile::tempdir().unwrap();
    let out = agent(host.path(), "d-E2E000001", web_app().to_str().unwrap(), &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let lines = events(&out);
    assert_eq!(lines.len(), 7);
    assert_eq!(lines[2]["lifecycleEventName"], "BeforeInstall");
    assert_eq!(lines[2]["diagnostics"]["errorCode"], "Success");
    assert!(
        lines[6]["diagnostics"]["logTail"]
            .as_str()
            .unwrap()
            .contains("is running")
    );
    assert!(
        lines
            .iter()
            .all(|l| l["startTime"].is_f64() && l["endTime"].is_f64())
    );
    assert!(host.path().join("srv/webapp/index.html").is_file());
    assert!(
        host.path()
            .join("opt/cutover/deployment-root/4f1c2d3e-0000-4000-8000-000000000001/d-E2E000001/logs/scripts.log")
            .is_file()
    );
}

#[test]
fn bundles_made_with_tar_and_zip_tools_install_unchanged() {
    let work = tempfile::tempdir().unwrap();
    let tgz = work.path().join("webapp.tgz");
    let status = Command::new("tar")
        .arg("czf")
        .arg(&tgz)
        .arg("-C")
        .arg(web_app())
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    // A zip whose single top-level folder holds the AppSpec, as "Compress" tools make them.
    let zip = work.path().join("webapp.zip");
    let status = Command::new("python3")
        .args(["-m", "zipfile", "-c"])
        .arg(&zip)
        .arg(web_app())
        .status()
        .unwrap();
    assert!(status.success());

    let host = tempfile::tempdir().unwrap();
    let out = agent(host.path(), "d-E2E000002", tgz.to_str().unwrap(), &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let out = agent(host.path(), "d-E2E000003", zip.to_str().unwrap(), &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(statuses(&out), vec!["Succeeded"; 7]);
}

/// Serves `body` to every request on a loopback port; returns the URL.
fn serve(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream
                .write_all(head.as_bytes())
                .and_then(|()| stream.write_all(&body));
        }
    });
    format!("http://127.0.0.1:{port}/bundles/webapp.tgz?X-Amz-Signature=secret")
}

#[test]
fn a_bundle_is_downloaded_and_checked_against_its_sha256() {
    let work = tempfile::tempdir().unwrap();
    let tgz = work.path().join("webapp.tgz");
    assert!(
        Command::new("tar")
            .arg("czf")
            .arg(&tgz)
            .arg("-C")
            .arg(web_app())
            .arg(".")
            .status()
            .unwrap()
            .success()
    );
    let mut bytes = Vec::new();
    std::fs::File::open(&tgz)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    let sha = cutover_core::digest::sha256_hex(&bytes);
    let url = serve(bytes);

    let host = tempfile::tempdir().unwrap();
    let out = agent(host.path(), "d-E2E000004", &url, &["--sha256", &sha]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    let wrong = "0".repeat(64);
    let out = agent(host.path(), "d-E2E000005", &url, &["--sha256", &wrong]);
    assert_eq!(out.status.code(), Some(1));
    let lines = events(&out);
    assert_eq!(lines[1]["status"], "Failed");
    let message = lines[1]["diagnostics"]["message"].as_str().unwrap();
    assert!(
        message.contains(&sha) && message.contains(&wrong),
        "{message}"
    );
    assert!(
        !message.contains("secret"),
        "presigned credentials stay out of messages: {message}"
    );
    assert_eq!(statuses(&out)[2..], vec!["Skipped"; 5]);
}

#[test]
fn a_failing_hook_fails_the_visit_with_the_scripts_diagnostics() {
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("bundle");
    std::fs::create_dir_all(bundle.join("scripts")).unwrap();
    std::fs::write(
        bundle.join("appspec.yml"),
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: scripts/check.sh\n",
    )
    .unwrap();
    std::fs::write(
        bundle.join("scripts/check.sh"),
        "#!/bin/sh\necho 'disk full' >&2\nexit 4\n",
    )
    .unwrap();
    let host = tempfile::tempdir().unwrap();
    let out = agent(host.path(), "d-E2E000006", bundle.to_str().unwrap(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let lines = events(&out);
    assert_eq!(
        statuses(&out),
        [
            "Succeeded",
            "Succeeded",
            "Succeeded",
            "Succeeded",
            "Failed",
            "Skipped",
            "Skipped"
        ]
    );
    assert_eq!(lines[4]["diagnostics"]["errorCode"], "ScriptFailed");
    assert_eq!(lines[4]["diagnostics"]["scriptName"], "scripts/check.sh");
    assert!(
        lines[4]["diagnostics"]["logTail"]
            .as_str()
            .unwrap()
            .contains("[stderr]disk full")
    );
}

#[test]
fn wrong_arguments_are_refused_with_a_clear_message() {
    let host = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(binary("cutover-agent"))
            .args([
                "run",
                "--deployment-id",
                "d-E2E000007",
                "--application",
                "A",
                "--group",
                "G",
            ])
            .args(["--group-id", "g", "--host-root"])
            .arg(host.path())
            .args(args)
            .output()
            .unwrap()
    };
    let web = web_app();
    let out = run(&["--bundle", web.to_str().unwrap(), "--events", "AfterInstal"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("'AfterInstal' is not a lifecycle event the agent runs"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "--bundle",
        web.to_str().unwrap(),
        "--events",
        "BlockTraffic",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("performed by cutover's traffic router"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "--bundle",
        "/nowhere/bundle.zip",
        "--events",
        "DownloadBundle",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nowhere/bundle.zip does not exist"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "--bundle",
        "http://example.com/b.zip",
        "--events",
        "DownloadBundle",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        events(&out)[0]["diagnostics"]["message"]
            .as_str()
            .unwrap()
            .contains("https")
    );
    assert!(!host.path().join("srv").exists());

    let help = Command::new(binary("cutover-agent"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    for flag in [
        "--deployment-id",
        "--bundle",
        "--events",
        "--host-root",
        "--sha256",
        "--ignore-application-stop-failures",
    ] {
        assert!(stdout(&help).contains(flag), "{flag}");
    }
}
