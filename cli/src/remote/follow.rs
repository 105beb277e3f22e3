//! A deployment as the API shows it (`deploymentInfo` and its `instanceTarget`s, or a Lambda
//! deployment's `lambdaTarget`), fetched again
//! about once a second while someone watches it; only what can still change is asked for.

use std::thread;
use std::time::{Duration, Instant};

use cutover_core::model::{
    DeploymentInfo, DeploymentStatus, DeploymentTarget, ErrorInformation, InstanceTarget,
    LambdaFunctionInfo, RollbackInfo,
};
use cutover_core::{DeploymentId, Timestamp};
use serde::Deserialize;
use serde_json::json;

use super::client::{CallError, Client};
use crate::render::{DeploymentView, Progress, TargetView, TrafficView};

/// Between two looks at a deployment.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Failed looks in a row that following puts up with (a server restarting, say).
const MISSES_TOLERATED: u32 = 5;

/// How long a rollback that its deployment names may take to be created: the step that creates
/// it runs after the one that decided on it.
const ROLLBACK_APPEARS_WITHIN: Duration = Duration::from_secs(120);

/// The most targets one `BatchGetDeploymentTargets` takes.
const TARGETS_PER_BATCH: usize = 25;

/// One look at a deployment.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub info: DeploymentInfo,
    /// In the order the API lists them; a Lambda deployment's alias in the same shape.
    pub targets: Vec<InstanceTarget>,
    /// A Lambda deployment's function, alias, versions and weight, as last seen.
    pub lambda: Option<LambdaFunctionInfo>,
    /// Counts the looks that found a change.
    version: u64,
}

impl DeploymentView for Snapshot {
    fn deployment_id(&self) -> &DeploymentId {
        &self.info.deployment_id
    }

    fn status(&self) -> DeploymentStatus {
        self.info.status
    }

    fn version(&self) -> u64 {
        self.version
    }

    fn queued_behind(&self) -> Option<(&DeploymentId, &str)> {
        None
    }

    fn create_time(&self) -> Timestamp {
        self.info.create_time
    }

    fn start_time(&self) -> Option<Timestamp> {
        self.info.start_time
    }

    fn complete_time(&self) -> Option<Timestamp> {
        self.info.complete_time
    }

    fn error_information(&self) -> Option<&ErrorInformation> {
        self.info.error_information.as_ref()
    }

    fn rollback_info(&self) -> Option<&RollbackInfo> {
        self.info.rollback_info.as_ref()
    }

    fn target_count(&self) -> usize {
        self.targets.len()
    }

    fn target(&self, i: usize) -> TargetView<'_> {
        let t = &self.targets[i];
        TargetView {
            target_id: &t.target_id,
            status: t.status,
            lifecycle_events: &t.lifecycle_events,
            label: t.instance_label,
        }
    }

    fn deploys_aliases(&self) -> bool {
        self.info.compute_platform == cutover_core::model::ComputePlatform::Lambda
    }

    fn traffic(&self) -> Option<TrafficView<'_>> {
        let f = self.lambda.as_ref()?;
        Some(TrafficView {
            target: &self.targets.first()?.target_id,
            current_version: &f.current_version,
            target_version: &f.target_version,
            percent: (f.target_version_weight * 100.0).round().clamp(0.0, 100.0) as u8,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetDeploymentOutput {
    deployment_info: DeploymentInfo,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListTargetsOutput {
    #[serde(default)]
    target_ids: Vec<String>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchGetTargetsOutput {
    #[serde(default)]
    deployment_targets: Vec<DeploymentTarget>,
}

/// Looks at one deployment, again and again.
#[derive(Debug)]
pub struct Follower<'c> {
    client: &'c Client,
    id: DeploymentId,
    latest: Option<Snapshot>,
}

impl<'c> Follower<'c> {
    pub fn new(client: &'c Client, id: DeploymentId) -> Self {
        Follower {
            client,
            id,
            latest: None,
        }
    }

    /// Looks again; true if anything changed since the last look.
    pub fn refresh(&mut self) -> Result<bool, CallError> {
        let got: GetDeploymentOutput = self
            .client
            .call("GetDeployment", &json!({ "deploymentId": self.id }))?;
        let info = got.deployment_info;
        let total = usize::try_from(info.deployment_overview.total()).unwrap_or(usize::MAX);
        let mut lambda = self.latest.as_ref().and_then(|s| s.lambda.clone());
        let targets = match &self.latest {
            // The same targets as before: only those still running can have changed.
            Some(s) if s.targets.len() == total => {
                let unsettled: Vec<String> = s
                    .targets
                    .iter()
                    .filter(|t| !t.status.is_final())
                    .map(|t| t.target_id.to_string())
                    .collect();
                let mut targets = s.targets.clone();
                let (fresh, seen) = self.targets(&unsettled)?;
                lambda = seen.or(lambda);
                for fresh in fresh {
                    if let Some(t) = targets.iter_mut().find(|t| t.target_id == fresh.target_id) {
                        *t = fresh;
                    }
                }
                targets
            }
            _ if total == 0 => Vec::new(),
            _ => {
                let ids = self.target_ids()?;
                let (targets, seen) = self.targets(&ids)?;
                lambda = seen.or(lambda);
                targets
            }
        };
        let changed = self
            .latest
            .as_ref()
            .is_none_or(|s| s.info != info || s.targets != targets || s.lambda != lambda);
        let version = self.latest.as_ref().map_or(0, |s| s.version) + u64::from(changed);
        self.latest = Some(Snapshot {
            info,
            targets,
            lambda,
            version,
        });
        Ok(changed)
    }

    /// The latest look; call [`Follower::refresh`] first.
    pub fn latest(&self) -> Option<&Snapshot> {
        self.latest.as_ref()
    }

    fn target_ids(&self) -> Result<Vec<String>, CallError> {
        let mut ids = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let mut input = json!({ "deploymentId": self.id });
            if let Some(token) = &next_token {
                input["nextToken"] = json!(token);
            }
            let page: ListTargetsOutput = self.client.call("ListDeploymentTargets", &input)?;
            ids.extend(page.target_ids);
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(token) => next_token = Some(token),
                None => return Ok(ids),
            }
        }
    }

    /// The targets `ids`, in that order, and a Lambda deployment's function as they show it.
    fn targets(
        &self,
        ids: &[String],
    ) -> Result<(Vec<InstanceTarget>, Option<LambdaFunctionInfo>), CallError> {
        let mut targets = Vec::with_capacity(ids.len());
        let mut lambda = None;
        for chunk in ids.chunks(TARGETS_PER_BATCH) {
            let got: BatchGetTargetsOutput = self.client.call(
                "BatchGetDeploymentTargets",
                &json!({ "deploymentId": self.id, "targetIds": chunk }),
            )?;
            let mut found: Vec<InstanceTarget> = got
                .deployment_targets
                .into_iter()
                .filter_map(|t| match (t.instance_target, t.lambda_target) {
                    (Some(instance), _) => Some(instance),
                    (None, Some(alias)) => {
                        lambda = Some(alias.lambda_function_info);
                        Some(InstanceTarget {
                            deployment_id: alias.deployment_id,
                            target_id: alias.target_id,
                            target_arn: alias.target_arn,
                            status: alias.status,
                            last_updated_at: alias.last_updated_at,
                            lifecycle_events: alias.lifecycle_events,
                            instance_label: None,
                        })
                    }
                    (None, None) => None,
                })
                .collect();
            for id in chunk {
                if let Some(at) = found.iter().position(|t| t.target_id.as_str() == id) {
                    targets.push(found.swap_remove(at));
                }
            }
        }
        Ok((targets, lambda))
    }
}

/// Follows deployment `id` until it ends, showing its progress, and then the rollback it
/// started, if any; the deployment as it ended, and its rollback.
pub fn until_finished(
    client: &Client,
    id: DeploymentId,
    progress: &mut Progress,
) -> Result<(Snapshot, Option<Snapshot>), CallError> {
    let ended = follow(client, id, Duration::ZERO, progress)?;
    let rollback = match ended
        .info
        .rollback_info
        .as_ref()
        .and_then(|r| r.rollback_deployment_id.clone())
    {
        Some(rollback) => Some(follow(client, rollback, ROLLBACK_APPEARS_WITHIN, progress)?),
        None => None,
    };
    progress.finish();
    Ok((ended, rollback))
}

/// Follows one deployment until it ends; one that does not exist yet is waited for during
/// `appears_within`.
fn follow(
    client: &Client,
    id: DeploymentId,
    appears_within: Duration,
    progress: &mut Progress,
) -> Result<Snapshot, CallError> {
    let mut follower = Follower::new(client, id);
    let mut misses = 0;
    let started = Instant::now();
    loop {
        match follower.refresh() {
            Ok(changed) => {
                misses = 0;
                let latest = follower.latest().expect("a look was just taken");
                if changed {
                    progress.observe(latest);
                }
                if latest.is_finished() {
                    return Ok(latest.clone());
                }
            }
            Err(e @ CallError::Unreachable { .. }) => {
                misses += 1;
                if misses > MISSES_TOLERATED {
                    return Err(e);
                }
            }
            Err(CallError::Exception { name, .. })
                if name == "DeploymentDoesNotExistException"
                    && follower.latest().is_none()
                    && started.elapsed() < appears_within => {}
            Err(e) => return Err(e),
        }
        thread::sleep(POLL_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use cutover_core::lifecycle::LifecycleEventName;
    use cutover_core::machine::Deployment;

    use super::*;
    use crate::render::summary_table;
    use crate::render::tests::{Sim, plain};

    /// What the API answers about `d`, read back from its JSON as the client reads it.
    fn answered(d: &Deployment) -> Snapshot {
        let info = serde_json::to_string(&d.info()).unwrap();
        let targets: Vec<InstanceTarget> = d
            .targets
            .iter()
            .map(|t| {
                let json = serde_json::to_string(&t.instance_target(&d.deployment_id)).unwrap();
                serde_json::from_str(&json).unwrap()
            })
            .collect();
        Snapshot {
            info: serde_json::from_str(&info).unwrap(),
            targets,
            lambda: None,
            version: d.version,
        }
    }

    #[test]
    fn the_apis_answers_show_as_the_deployment_itself() {
        let mut sim = Sim::new("CodeDeployDefault.OneAtATime", false, true);
        sim.fail("host-2", LifecycleEventName::AfterInstall);
        let (mut direct, direct_out) = plain();
        let (mut remote, remote_out) = plain();
        sim.run(3, |d| {
            direct.observe(d);
            remote.observe(&answered(d));
        });
        let mut rollback = Sim::of(sim.rollback.take().expect("a rollback"), sim.now);
        rollback.run(3, |d| {
            direct.observe(d);
            remote.observe(&answered(d));
        });
        direct.finish();
        remote.finish();

        let progress = remote_out.text();
        assert!(progress.contains("Rolling back with "), "{progress}");
        assert_eq!(progress, direct_out.text());
        for d in [&sim.d, &rollback.d] {
            assert_eq!(summary_table(&answered(d)), summary_table(d));
        }
        assert!(summary_table(&answered(&sim.d)).contains("host-2: AfterInstall Failed"));
    }
}
