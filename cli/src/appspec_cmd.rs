//! `cutover appspec validate`: check a revision's AppSpec before deploying it, with the same
//! parser and messages a deployment would give.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use cutover_core::appspec::{self, AppSpec};
use cutover_core::model::ComputePlatform;
use serde_json::json;

use crate::{Outcome, plural};

#[derive(Debug, Subcommand)]
pub enum AppSpecCommand {
    /// Check an AppSpec file, or the appspec.yaml / appspec.yml of a revision directory.
    Validate {
        /// An AppSpec file or a revision directory.
        path: PathBuf,
        /// The application's compute platform (Server, Lambda or ECS); detected from the file
        /// when not given.
        #[arg(long)]
        platform: Option<ComputePlatform>,
        /// Print JSON: the parsed AppSpec, or the error with its line.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: AppSpecCommand) -> anyhow::Result<Outcome> {
    let AppSpecCommand::Validate {
        path,
        platform,
        json,
    } = cmd;
    let file = appspec_file(&path)?;
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let platform = platform
        .or_else(|| appspec::detect_platform(&text))
        .unwrap_or(ComputePlatform::Server);
    let name = file.display().to_string();
    match appspec::parse(&text, &name, platform) {
        Ok(spec) => {
            if json {
                println!("{}", json!({ "platform": platform, "appSpec": spec }));
            } else {
                println!("{name}: a valid {platform} AppSpec");
                for line in summary(&spec) {
                    println!("  {line}");
                }
            }
            Ok(Outcome::Done)
        }
        Err(e) => {
            if json {
                println!("{}", json!({ "platform": platform, "error": e }));
            } else {
                eprintln!("error: {e}");
            }
            Ok(Outcome::Failed)
        }
    }
}

/// The file itself, or a revision directory's AppSpec, looked up as the agent does.
fn appspec_file(path: &Path) -> anyhow::Result<PathBuf> {
    if !path.is_dir() {
        if !path.exists() {
            bail!("{} does not exist", path.display());
        }
        return Ok(path.to_path_buf());
    }
    ["appspec.yaml", "appspec.yml"]
        .iter()
        .map(|name| path.join(name))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "{} has no appspec.yaml or appspec.yml at its top",
                path.display()
            )
        })
}

fn summary(spec: &AppSpec) -> Vec<String> {
    let hooks = |hooks: Vec<String>| {
        if hooks.is_empty() {
            "hooks: none".to_owned()
        } else {
            format!("hooks: {}", hooks.join(", "))
        }
    };
    match spec {
        AppSpec::Server(s) => vec![
            format!("files: {}", s.files.len()),
            format!("permissions: {}", s.permissions.len()),
            hooks(
                s.hooks
                    .iter()
                    .map(|(event, scripts)| {
                        format!(
                            "{event} ({} {})",
                            scripts.len(),
                            plural(scripts.len(), "script")
                        )
                    })
                    .collect(),
            ),
        ],
        AppSpec::Lambda(l) => vec![
            format!(
                "function {} alias {}: version {} -> {}",
                l.function.name,
                l.function.alias,
                l.function.current_version,
                l.function.target_version
            ),
            hooks(
                l.hooks
                    .iter()
                    .map(|(event, f)| format!("{event} -> {f}"))
                    .collect(),
            ),
        ],
        AppSpec::Ecs(e) => vec![
            format!("task definition {}", e.task_definition),
            format!("container {} port {}", e.container_name, e.container_port),
            hooks(
                e.hooks
                    .iter()
                    .map(|(event, f)| format!("{event} -> {f}"))
                    .collect(),
            ),
        ],
    }
}
