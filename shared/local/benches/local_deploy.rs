//! A benchmark of `cutover local deploy`, run by hand (it is not a test and asserts no timing).
//!
//! It measures three things and prints them as one Markdown table:
//!
//! - **(a) one host**: the release `cutover local deploy` process deploying a revision of 20
//!   application files (plus `appspec.yml` and five hook scripts, `#!/bin/sh` / `exit 0`, for
//!   ApplicationStop, BeforeInstall, AfterInstall, ApplicationStart and ValidateService) to one
//!   simulated host, with a fresh state directory each run: wall time (median and p90) and peak
//!   memory (max RSS, from `getrusage(RUSAGE_CHILDREN)`).
//! - **(b1) fleets, real hooks**: the same command with `--hosts 100` and `--hosts 1000`, under
//!   `CodeDeployDefault.AllAtOnce` and `CodeDeployDefault.OneAtATime`: total wall time and time
//!   per host.
//! - **(b2) fleets, orchestration only**: the same engine, `LocalStore` and driver loop in this
//!   process, with a hook runner that starts no process and reports every lifecycle event as
//!   succeeded at once, so the time per host is store commits, the queue and the state machine
//!   alone. (b1) minus (b2) is what the agent and the scripts cost.
//!
//! (a) and (b1) run `target/release/cutover`, which has to be built first:
//!
//! ```sh
//! cargo build --release -p cutover
//! cargo bench -p cutover-local --bench local_deploy
//! ```
//!
//! Adding `-- a`, `-- b1` or `-- b2` runs only those parts; `CUTOVER_BIN=/path/to/cutover` runs
//! another binary. Everything takes a few minutes: run nothing else on the machine meanwhile, and
//! not right after deleting many files (see `main`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cutover_core::config;
use cutover_core::lifecycle::LifecycleEventName;
use cutover_core::machine::{CreateDeployment, Deployment, LifecycleOutcome};
use cutover_core::model::{
    ComputePlatform, DeploymentGroupInfo, DeploymentOption, DeploymentStatus, LocalLocation,
    RevisionLocation,
};
use cutover_core::{DeploymentId, TargetId};
use cutover_engine::{Engine, HookRunner, HostRun, Polled, PortError};
use cutover_local::driver::DriveEvents;
use cutover_local::{LocalHost, LocalPorts, LocalStore};

const ONE_HOST_RUNS: usize = 20;
const FLEETS: [usize; 2] = [100, 1_000];
const CONFIGS: [&str; 2] = [
    "CodeDeployDefault.AllAtOnce",
    "CodeDeployDefault.OneAtATime",
];
/// A peak RSS is only measurable per process, so each run of the CLI is started by a child of
/// this program that reports it: this argument makes the child.
const MEASURE: &str = "--measure-child";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(MEASURE) {
        return measure_child(&args[1..]);
    }
    // `cargo bench` passes `--bench`; any other word picks the parts to run.
    let parts: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let part = |name: &str| parts.is_empty() || parts.contains(&name);
    let cutover = if part("a") || part("b1") {
        let Some(bin) = locate_cutover() else {
            eprintln!(
                "error: target/release/cutover is missing: build it first with `cargo build --release -p cutover` (or point CUTOVER_BIN at a cutover binary)"
            );
            return ExitCode::FAILURE;
        };
        eprintln!("cutover: {}", bin.display());
        bin
    } else {
        PathBuf::new()
    };
    // Every run's state stays until the end: ext4 without a journal (as on many VMs) creates
    // files much more slowly for a while after many were deleted, which would slow the runs
    // that follow a cleanup.
    let work = tempfile::tempdir().expect("a temporary directory");
    let revision = work.path().join("revision");
    write_revision(&revision);
    let state = |name: String| work.path().join(name);
    let mut rows = Vec::new();

    if part("a") {
        eprintln!("(a) one host, {ONE_HOST_RUNS} runs...");
        run_cli(&cutover, &revision, &state("warm-up".into()), &[]);
        let runs: Vec<Run> = (0..ONE_HOST_RUNS)
            .map(|i| run_cli(&cutover, &revision, &state(format!("a-{i}")), &[]))
            .collect();
        rows.push(Row::new(
            "(a) CLI, real hooks",
            1,
            config::DEFAULT_SERVER_CONFIG,
            &runs,
        ));
    }

    for &hosts in FLEETS.iter().filter(|_| part("b1")) {
        for config in CONFIGS {
            let n = fleet_runs(hosts);
            eprintln!("(b1) {hosts} hosts, {config}, {n} runs...");
            let args = ["--hosts", &hosts.to_string(), "--config", config].map(String::from);
            let runs: Vec<Run> = (0..n)
                .map(|i| {
                    run_cli(
                        &cutover,
                        &revision,
                        &state(format!("b1-{hosts}-{config}-{i}")),
                        &args,
                    )
                })
                .collect();
            rows.push(Row::new("(b1) CLI, real hooks", hosts, config, &runs));
        }
    }

    for &hosts in FLEETS.iter().filter(|_| part("b2")) {
        for config in CONFIGS {
            let n = fleet_runs(hosts);
            eprintln!("(b2) {hosts} hosts, {config}, {n} runs...");
            let runs: Vec<Run> = (0..n)
                .map(|i| {
                    orchestrate(
                        &revision,
                        &state(format!("b2-{hosts}-{config}-{i}")),
                        hosts,
                        config,
                    )
                })
                .collect();
            rows.push(Row::new("(b2) orchestration only", hosts, config, &runs));
        }
    }

    print_table(&rows);
    ExitCode::SUCCESS
}

/// Large fleets take seconds a run, and vary less.
fn fleet_runs(hosts: usize) -> usize {
    if hosts >= 1_000 { 3 } else { 5 }
}

fn locate_cutover() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("CUTOVER_BIN") {
        return Some(PathBuf::from(bin));
    }
    // This program is target/release/deps/local_deploy-<hash>, whatever the target directory.
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("cutover");
    bin.is_file().then_some(bin)
}

/// The revision: 20 application files installed to /srv/app, and five hooks that do nothing.
fn write_revision(dir: &Path) {
    let hooks = [
        ("ApplicationStop", "stop.sh"),
        ("BeforeInstall", "before_install.sh"),
        ("AfterInstall", "after_install.sh"),
        ("ApplicationStart", "start.sh"),
        ("ValidateService", "validate.sh"),
    ];
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::create_dir_all(dir.join("scripts")).unwrap();
    for i in 1..=20 {
        let body = format!("file {i} of the benchmark revision\n").repeat(32);
        std::fs::write(dir.join("app").join(format!("file-{i:02}.txt")), body).unwrap();
    }
    let mut appspec = String::from(
        "version: 0.0\nos: linux\nfiles:\n  - source: app/\n    destination: /srv/app\nhooks:\n",
    );
    for (event, script) in hooks {
        let path = dir.join("scripts").join(script);
        std::fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
        let mut mode = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut mode, 0o755);
        std::fs::set_permissions(&path, mode).unwrap();
        appspec.push_str(&format!("  {event}:\n    - location: scripts/{script}\n"));
    }
    std::fs::write(dir.join("appspec.yml"), appspec).unwrap();
}

/// One measured run.
#[derive(Clone, Copy, Debug)]
struct Run {
    wall: Duration,
    /// Peak resident memory in KiB, when measured.
    max_rss_kib: Option<u64>,
}

/// Runs `cutover local deploy` through a measuring child.
fn run_cli(cutover: &Path, revision: &Path, state: &Path, extra: &[String]) -> Run {
    let me = std::env::current_exe().expect("the path of this program");
    let out = Command::new(me)
        .arg(MEASURE)
        .arg(cutover)
        .args(["local", "deploy"])
        .arg(revision)
        .arg("--state-dir")
        .arg(state)
        .args(extra)
        .stderr(Stdio::inherit())
        .output()
        .expect("the measuring child starts");
    if !out.status.success() {
        panic!("cutover local deploy {extra:?} failed; see above");
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().unwrap());
    let (Some(nanos), Some(kib)) = (fields.next(), fields.next()) else {
        panic!("the measuring child printed {text:?}");
    };
    Run {
        wall: Duration::from_nanos(nanos),
        max_rss_kib: Some(kib),
    }
}

/// In the measuring child: runs the command once and prints its wall time in nanoseconds and
/// its peak RSS in KiB. Its only child is the command (and what the command starts), so
/// `RUSAGE_CHILDREN` holds that command's figure alone.
fn measure_child(command: &[String]) -> ExitCode {
    let started = Instant::now();
    let out = Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("the command starts");
    let wall = started.elapsed();
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        return ExitCode::FAILURE;
    }
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    println!("{} {}", wall.as_nanos(), usage.max_rss());
    ExitCode::SUCCESS
}

/// A hook runner that runs nothing: every lifecycle event succeeds at once. Like local hosts,
/// it reports one event per call, so that the engine saves each outcome on its own.
#[derive(Debug)]
struct NullHosts;

impl HookRunner for NullHosts {
    async fn run(
        &self,
        _d: &Deployment,
        _target: &TargetId,
        events: &[LifecycleEventName],
        _claim: Option<&str>,
    ) -> Result<HostRun, PortError> {
        let now = cutover_agent::run::now();
        let mut outcome = LifecycleOutcome::succeeded();
        outcome.start_time = Some(now);
        outcome.end_time = Some(now);
        Ok(HostRun::Finished(vec![(events[0], outcome)]))
    }

    async fn poll(
        &self,
        target: &TargetId,
        command_id: &str,
        _events: &[LifecycleEventName],
        _attempt: u32,
    ) -> Result<Polled, PortError> {
        Err(PortError::permanent(format!(
            "{target} finishes its events at once; it has no command {command_id}"
        )))
    }

    async fn stop(&self, _d: &Deployment, _targets: &[TargetId]) -> Result<(), PortError> {
        Ok(())
    }
}

/// Fails the benchmark on anything the driver loop reports: every run must succeed cleanly.
struct Strict;

impl DriveEvents for Strict {
    fn adopted(&mut self, id: &DeploymentId) {
        panic!("adopted {id}: no other driver should exist");
    }

    fn step_failed(&mut self, id: &DeploymentId, message: &str) {
        panic!("deployment {id}: {message}");
    }
}

/// What `cutover local deploy` does after its checks, on the runtime it uses, but with
/// [`NullHosts`]: opens a fresh store, registers the group and its hosts, creates the deployment
/// and drives it to the end.
fn orchestrate(revision: &Path, state: &Path, hosts: usize, config_name: &str) -> Run {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let started = Instant::now();
    let store = Arc::new(LocalStore::open(state).expect("the store opens"));
    let engine = Engine::new(LocalPorts::with_hosts(store.clone(), state, NullHosts));
    let mut group = DeploymentGroupInfo {
        application_name: "BenchApp".into(),
        deployment_group_name: "BenchFleet".into(),
        deployment_group_id: "4f1c2d3e-0000-4000-8000-000000000001".into(),
        deployment_config_name: config_name.into(),
        compute_platform: ComputePlatform::Server,
        ..Default::default()
    };
    group.deployment_style.deployment_option = DeploymentOption::WithoutTrafficControl;
    store.put_group(&group).unwrap();
    let fleet: Vec<LocalHost> = (1..=hosts)
        .map(|i| LocalHost {
            name: format!("host-{i}"),
            root: state.join("hosts").join(format!("host-{i}")),
        })
        .collect();
    store.set_hosts("BenchApp", "BenchFleet", &fleet).unwrap();
    let req = CreateDeployment::new(
        // Each run has a store of its own, so one id serves them all.
        DeploymentId::from_entropy(1),
        group,
        config::predefined(config_name).expect("a predefined configuration"),
        RevisionLocation::Local(LocalLocation {
            path: revision.to_string_lossy().into_owned(),
            bundle_type: None,
        }),
    );
    let d = runtime.block_on(async {
        let created = engine.create(req).await.expect("the deployment is created");
        cutover_local::drive(&engine, &mut Strict)
            .await
            .expect("the driver loop ends");
        engine.load(&created.deployment_id).await.unwrap()
    });
    let wall = started.elapsed();
    assert_eq!(d.status(), DeploymentStatus::Succeeded, "{d:?}");
    assert_eq!(d.targets.len(), hosts);
    Run {
        wall,
        max_rss_kib: None,
    }
}

/// One line of the results.
struct Row {
    what: &'static str,
    hosts: usize,
    config: &'static str,
    runs: usize,
    median: Duration,
    p90: Duration,
    max_rss_kib: Option<u64>,
}

impl Row {
    fn new(what: &'static str, hosts: usize, config: &'static str, runs: &[Run]) -> Self {
        let mut walls: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
        walls.sort();
        let mid = walls.len() / 2;
        let median = if walls.len().is_multiple_of(2) {
            (walls[mid - 1] + walls[mid]) / 2
        } else {
            walls[mid]
        };
        // Nearest rank: the smallest time that at least 90% of the runs did not exceed.
        let p90 = walls[(walls.len() * 9).div_ceil(10) - 1];
        Row {
            what,
            hosts,
            config,
            runs: runs.len(),
            median,
            p90,
            max_rss_kib: runs.iter().filter_map(|r| r.max_rss_kib).max(),
        }
    }
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| measure | hosts | configuration | runs | median | p90 | per host (median) | peak RSS |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|");
    for r in rows {
        let per_host = r.median / r.hosts as u32;
        let rss = r
            .max_rss_kib
            .map_or("-".to_owned(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.what,
            r.hosts,
            r.config.trim_start_matches("CodeDeployDefault."),
            r.runs,
            ms(r.median),
            ms(r.p90),
            ms(per_host),
            rss
        );
    }
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.2} ms")
    }
}
