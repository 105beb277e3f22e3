//! `cutover local`: deployments on this machine, to hosts that are directories (or this machine
//! itself), through the same engine as the cloud, with an embedded store in a state directory.

mod deploy;
mod lambda;
mod report;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use cutover_core::DeploymentId;
use cutover_core::config::{DeploymentConfigInfo, MinimumHealthyHosts, MinimumHealthyHostsType};
use cutover_core::machine::Deployment;
use cutover_core::model::DeploymentWaitType;
use cutover_engine::Engine;
use cutover_local::driver::DriveEvents;
use cutover_local::{LocalPorts, LocalStore};

use crate::Outcome;
use crate::render::Progress;

/// Where state lives when neither `--state-dir` nor `$CUTOVER_STATE_DIR` says.
const DEFAULT_STATE_DIR: &str = ".cutover";

#[derive(Debug, Subcommand)]
pub enum LocalCommand {
    /// Deploy a revision (a directory, or a .zip, .tar, .tgz or .tar.gz bundle) to local hosts.
    Deploy(deploy::DeployArgs),
    /// Show a deployment: the latest one when no id is given.
    Status {
        deployment_id: Option<String>,
        /// Print {"deploymentInfo": ..., "targets": [...]} in CodeDeploy's shapes.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        state: StateDir,
    },
    /// List the deployments, oldest first.
    List {
        /// Print {"deployments": [deploymentInfo, ...]}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        state: StateDir,
    },
    /// Stop a deployment at its next safe point (it ends Stopped, with MANUAL_STOP).
    Stop {
        deployment_id: String,
        #[command(flatten)]
        state: StateDir,
    },
    /// End the wait of a blue/green deployment: move traffic to its replacement hosts now (a
    /// --ready-wait), or let its original hosts go now (a --terminate-after wait).
    Continue {
        deployment_id: String,
        #[command(flatten)]
        state: StateDir,
    },
    /// Set an alarm's state; deployments watching it (--alarm) stop when it is ALARM.
    Alarm {
        name: String,
        #[arg(long, value_parser = ["ALARM", "OK"])]
        state: String,
        #[command(flatten)]
        state_dir: StateDir,
    },
    /// Custom deployment configurations.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Create a custom Server deployment configuration.
    Create {
        name: String,
        /// HOST_COUNT:N or FLEET_PERCENT:N, the hosts that must stay healthy.
        #[arg(long, value_parser = parse_minimum)]
        minimum_healthy_hosts: MinimumHealthyHosts,
        #[command(flatten)]
        state: StateDir,
    },
}

/// The state directory option shared by every `cutover local` command.
#[derive(Debug, Clone, Args)]
pub struct StateDir {
    /// Where cutover keeps its state and the simulated hosts [default: $CUTOVER_STATE_DIR, else ./.cutover]
    #[arg(long = "state-dir", value_name = "DIR")]
    dir: Option<PathBuf>,
}

impl StateDir {
    pub fn path(&self) -> anyhow::Result<PathBuf> {
        let dir = match (&self.dir, std::env::var_os("CUTOVER_STATE_DIR")) {
            (Some(dir), _) => dir.clone(),
            (None, Some(env)) if !env.is_empty() => PathBuf::from(env),
            _ => PathBuf::from(DEFAULT_STATE_DIR),
        };
        std::path::absolute(&dir).with_context(|| format!("state directory {}", dir.display()))
    }
}

pub fn run(cmd: LocalCommand) -> anyhow::Result<Outcome> {
    match cmd {
        LocalCommand::Deploy(args) => deploy::run(args),
        LocalCommand::Status {
            deployment_id,
            json,
            state,
        } => {
            let local = Local::open(&state)?;
            local.resume_interrupted()?;
            let id = match deployment_id {
                Some(id) => parse_deployment_id(&id)?,
                None => local
                    .store()
                    .latest_deployment()?
                    .context("there are no deployments in this state directory yet")?,
            };
            let d = local.deployment(&id)?;
            report::print_deployment(local.store(), &d, json)?;
            Ok(crate::render::outcome(&d))
        }
        LocalCommand::List { json, state } => {
            let local = Local::open(&state)?;
            local.resume_interrupted()?;
            report::print_list(&local.store().deployments()?, json);
            Ok(Outcome::Done)
        }
        LocalCommand::Stop {
            deployment_id,
            state,
        } => {
            let local = Local::open(&state)?;
            let id = parse_deployment_id(&deployment_id)?;
            let d = local.deployment(&id)?;
            if d.is_finished() {
                bail!(
                    "deployment {id} has already finished ({}); there is nothing to stop",
                    d.status()
                );
            }
            local.block_on(local.engine.stop(&id, None))?;
            eprintln!("Stopping {id} at its next safe point...");
            let d = local.wait_until_finished(&id)?;
            report::print_deployment(local.store(), &d, false)?;
            Ok(Outcome::Done)
        }
        LocalCommand::Continue {
            deployment_id,
            state,
        } => {
            let local = Local::open(&state)?;
            let id = parse_deployment_id(&deployment_id)?;
            let d = local.deployment(&id)?;
            let (wait, doing) = match d.waiting_for() {
                Some(wait @ DeploymentWaitType::ReadyWait) => {
                    (wait, "Moving traffic to the replacement hosts")
                }
                Some(wait @ DeploymentWaitType::TerminationWait) => {
                    (wait, "Letting the original hosts go")
                }
                None => bail!(
                    "deployment {id} is not waiting ({}); `cutover local continue` ends a blue/green deployment's wait before traffic moves or before its original hosts are let go",
                    d.status()
                ),
            };
            local.block_on(local.engine.continue_deployment(&id, wait))?;
            eprintln!("{doing} of {id}...");
            let d = local.wait_until(&id, |d| {
                d.is_finished() || d.waiting_for() == Some(DeploymentWaitType::TerminationWait)
            })?;
            report::print_deployment(local.store(), &d, false)?;
            Ok(crate::render::outcome(&d))
        }
        LocalCommand::Alarm {
            name,
            state,
            state_dir,
        } => {
            if name.trim().is_empty() {
                bail!("an alarm needs a name");
            }
            let local = Local::open(&state_dir)?;
            local.store().set_alarm(&name, state == "ALARM")?;
            println!("alarm {name} is {state}");
            Ok(Outcome::Done)
        }
        LocalCommand::Config(ConfigCommand::Create {
            name,
            minimum_healthy_hosts,
            state,
        }) => {
            let config = DeploymentConfigInfo::server(name.clone(), minimum_healthy_hosts);
            config.validate_custom()?;
            let local = Local::open(&state)?;
            if !local.store().create_config(&config)? {
                bail!("deployment configuration {name} already exists; pick another name");
            }
            println!(
                "created deployment configuration {name} (minimum healthy hosts {}:{})",
                minimum_healthy_hosts.kind, minimum_healthy_hosts.value
            );
            Ok(Outcome::Done)
        }
    }
}

fn parse_minimum(s: &str) -> Result<MinimumHealthyHosts, String> {
    let usage = "expected HOST_COUNT:N or FLEET_PERCENT:N, for example HOST_COUNT:2";
    let (kind, value) = s.split_once(':').ok_or(usage)?;
    let kind: MinimumHealthyHostsType = kind.parse().map_err(|e| format!("{e}; {usage}"))?;
    let value = value
        .parse()
        .map_err(|_| format!("'{value}' is not a whole number; {usage}"))?;
    Ok(MinimumHealthyHosts { kind, value })
}

pub(crate) fn parse_deployment_id(s: &str) -> anyhow::Result<DeploymentId> {
    s.parse()
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("'{s}' is not a deployment id (they look like d-ABCDEF123)"))
}

/// An opened state directory: the store, the engine over it, and a runtime to drive it.
struct Local {
    state_dir: PathBuf,
    engine: Engine<LocalPorts>,
    runtime: tokio::runtime::Runtime,
    /// Shown for every deployment this process drives, as the store saves it (the store leaves
    /// out deployments that other processes drive).
    progress: Arc<Mutex<Option<Progress>>>,
}

impl Local {
    fn open(state: &StateDir) -> anyhow::Result<Self> {
        let state_dir = state.path()?;
        Self::open_dir(&state_dir)
    }

    fn open_dir(state_dir: &Path) -> anyhow::Result<Self> {
        Self::open_with(state_dir, None)
    }

    /// The state directory, with Lambda deployments going to the Lambda API at
    /// `lambda_endpoint` when given (else where the environment says).
    fn open_with(state_dir: &Path, lambda_endpoint: Option<&str>) -> anyhow::Result<Self> {
        let store = Arc::new(LocalStore::open(state_dir)?);
        let progress: Arc<Mutex<Option<Progress>>> = Arc::default();
        let observer = progress.clone();
        store.on_commit(move |d| {
            if let Some(p) = observer.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                p.observe(d);
            }
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the runtime")?;
        Ok(Local {
            state_dir: state_dir.to_owned(),
            engine: Engine::new(match lambda_endpoint {
                Some(endpoint) => LocalPorts::new(store, state_dir).with_lambda_endpoint(endpoint),
                None => LocalPorts::new(store, state_dir),
            }),
            runtime,
            progress,
        })
    }

    fn store(&self) -> &LocalStore {
        self.engine.ports().local_store()
    }

    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    fn deployment(&self, id: &DeploymentId) -> anyhow::Result<Deployment> {
        self.store().load_deployment(id)?.with_context(|| {
            format!(
                "deployment {id} does not exist in {}",
                self.state_dir.display()
            )
        })
    }

    /// Shows on stderr how the deployments this process drives progress.
    fn show_progress(&self) {
        let live = std::io::stderr().is_terminal();
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(|| Progress::new(live));
    }

    fn end_progress(&self) {
        if let Some(p) = self
            .progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            p.finish();
        }
    }

    /// Drives whatever this process drives, and whatever was left behind by a process that
    /// died, to the end.
    ///
    /// Ctrl-C stops the deployments this process drives at their next safe point, as
    /// `cutover local stop` would; a second Ctrl-C leaves them as they are, for the next
    /// `cutover local` command to resume, and exits.
    fn drive(&self) -> anyhow::Result<()> {
        let mut events = Narrator;
        let result = self.block_on(async {
            let drive = cutover_local::drive(&self.engine, &mut events);
            tokio::pin!(drive);
            let mut stopping = false;
            loop {
                tokio::select! {
                    result = &mut drive => return result.map_err(anyhow::Error::from),
                    interrupted = tokio::signal::ctrl_c() => {
                        interrupted.context("cannot listen for Ctrl-C")?;
                        if stopping {
                            return Err(anyhow::anyhow!(
                                "interrupted again: the deployment was left as it is; the next `cutover local` command resumes it"
                            ));
                        }
                        stopping = true;
                        self.stop_driven().await?;
                    }
                }
            }
        });
        self.end_progress();
        result
    }

    /// Stops every unfinished deployment this process drives.
    async fn stop_driven(&self) -> anyhow::Result<()> {
        for id in self.store().driven()? {
            eprintln!(
                "Stopping {id} at its next safe point; Ctrl-C again exits without waiting for the scripts that still run"
            );
            self.engine.stop(&id, None).await?;
        }
        Ok(())
    }

    /// Finishes deployments whose process was killed, before doing anything else.
    fn resume_interrupted(&self) -> anyhow::Result<()> {
        let adopted = self.store().adopt_orphans()?;
        if adopted.is_empty() {
            return Ok(());
        }
        for id in &adopted {
            Narrator.adopted(id);
        }
        self.show_progress();
        self.drive()
    }

    /// Waits for a deployment that another process drives (or drives it, if that process is
    /// gone) until it finishes.
    fn wait_until_finished(&self, id: &DeploymentId) -> anyhow::Result<Deployment> {
        self.wait_until(id, Deployment::is_finished)
    }

    /// [`Local::wait_until_finished`], until `done` holds of the deployment.
    fn wait_until(
        &self,
        id: &DeploymentId,
        done: impl Fn(&Deployment) -> bool,
    ) -> anyhow::Result<Deployment> {
        loop {
            self.resume_interrupted()?;
            let d = self.deployment(id)?;
            if done(&d) {
                return Ok(d);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// Says on stderr what the driver loop does on its own.
struct Narrator;

impl DriveEvents for Narrator {
    fn adopted(&mut self, id: &DeploymentId) {
        eprintln!("Resuming {id}: the process that ran it is gone");
    }

    fn step_failed(&mut self, id: &DeploymentId, message: &str) {
        eprintln!("error: deployment {id}: {message}");
    }
}
