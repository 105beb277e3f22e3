//! What a Server configuration means for a fleet: how many hosts may be out of service at once,
//! and how many must succeed.
//!
//! CodeDeploy's rule: a host is healthy unless a deployment to it is in progress or has failed.
//! The deployment never takes more hosts out of service than keeps the minimum healthy, and it
//! succeeds if at least the minimum (and at least one host) succeed. `FLEET_PERCENT` rounds the
//! minimum up. `CodeDeployDefault.OneAtATime` keeps all hosts but one healthy, so a failure on
//! the very last host still lets the deployment succeed.

use serde::{Deserialize, Serialize};

use super::{DeploymentConfigInfo, MinimumHealthyHostsType};

/// The batch rule and the success rule of one configuration on one fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostPlan {
    pub fleet_size: u32,
    /// The fewest hosts that must stay healthy (neither in progress nor failed) at any time.
    pub minimum_healthy_hosts: u32,
    /// The most hosts that may be in progress or failed at once.
    pub max_out_of_service: u32,
    /// The fewest hosts that must succeed for the deployment to succeed.
    pub minimum_successful: u32,
}

/// The configuration leaves no host that may be taken out of service.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "deployment configuration {config} needs {minimum} of {fleet_size} hosts healthy at all times, which leaves none to deploy to; add hosts or use a configuration with a lower minimum, such as CodeDeployDefault.OneAtATime"
)]
pub struct HealthConstraintsInvalid {
    pub config: String,
    pub fleet_size: u32,
    pub minimum: u32,
}

impl HostPlan {
    pub fn new(
        config: &DeploymentConfigInfo,
        fleet_size: u32,
    ) -> Result<Self, HealthConstraintsInvalid> {
        let minimum = match config.minimum_healthy_hosts {
            None => 0,
            Some(m) => {
                let value = u32::try_from(m.value.max(0)).unwrap_or(u32::MAX);
                match m.kind {
                    MinimumHealthyHostsType::MostConcurrency => fleet_size.saturating_sub(1),
                    MinimumHealthyHostsType::HostCount => value,
                    MinimumHealthyHostsType::FleetPercent => {
                        let percent = u64::from(value.min(100));
                        (u64::from(fleet_size) * percent).div_ceil(100) as u32
                    }
                }
            }
        };
        if fleet_size == 0 || minimum >= fleet_size {
            return Err(HealthConstraintsInvalid {
                config: config.deployment_config_name.clone(),
                fleet_size,
                minimum,
            });
        }
        Ok(HostPlan {
            fleet_size,
            minimum_healthy_hosts: minimum,
            max_out_of_service: fleet_size - minimum,
            minimum_successful: minimum.max(1),
        })
    }

    /// The batch sizes when every host succeeds: the fleet cut into runs of
    /// `max_out_of_service`. When hosts fail, fewer run at once (see `may_start`).
    pub fn batch_sizes(&self) -> Vec<u32> {
        let mut left = self.fleet_size;
        let mut batches = Vec::new();
        while left > 0 {
            let batch = left.min(self.max_out_of_service);
            batches.push(batch);
            left -= batch;
        }
        batches
    }

    /// True if one more host may start, given how many are in progress and how many failed.
    pub fn may_start(&self, in_progress: u32, failed: u32) -> bool {
        in_progress + failed < self.max_out_of_service
    }

    /// True if `succeeded` hosts are enough for the deployment to succeed.
    pub fn is_success(&self, succeeded: u32) -> bool {
        succeeded >= self.minimum_successful
    }
}

#[cfg(test)]
mod tests {
    use super::super::{MinimumHealthyHosts, predefined};
    use super::*;

    fn custom(kind: MinimumHealthyHostsType, value: i64) -> DeploymentConfigInfo {
        DeploymentConfigInfo::server("Custom", MinimumHealthyHosts { kind, value })
    }

    fn plan(config: &DeploymentConfigInfo, n: u32) -> HostPlan {
        config.host_plan(n).unwrap()
    }

    #[test]
    fn nine_hosts_with_host_count_six_deploy_three_at_a_time_and_need_six() {
        let p = plan(&custom(MinimumHealthyHostsType::HostCount, 6), 9);
        assert_eq!(p.batch_sizes(), [3, 3, 3]);
        assert_eq!(p.max_out_of_service, 3);
        assert!(p.is_success(6));
        assert!(!p.is_success(5));
    }

    #[test]
    fn nine_hosts_with_fleet_percent_forty_deploy_five_at_a_time_and_need_four() {
        let p = plan(&custom(MinimumHealthyHostsType::FleetPercent, 40), 9);
        assert_eq!(p.minimum_healthy_hosts, 4, "40% of 9 is 3.6, rounded up");
        assert_eq!(p.batch_sizes(), [5, 4]);
        assert!(p.is_success(4));
        assert!(!p.is_success(3));
    }

    #[test]
    fn nine_hosts_half_at_a_time_deploy_four_at_a_time_and_need_five() {
        let p = plan(&predefined("CodeDeployDefault.HalfAtATime").unwrap(), 9);
        assert_eq!(p.batch_sizes(), [4, 4, 1]);
        assert!(p.is_success(5));
        assert!(!p.is_success(4));
    }

    #[test]
    fn nine_hosts_all_at_once_deploy_together_and_need_one() {
        let p = plan(&predefined("CodeDeployDefault.AllAtOnce").unwrap(), 9);
        assert_eq!(p.batch_sizes(), [9]);
        assert!(p.is_success(1));
        assert!(!p.is_success(0));
    }

    #[test]
    fn nine_hosts_one_at_a_time_forgive_only_the_last_host() {
        let p = plan(&predefined("CodeDeployDefault.OneAtATime").unwrap(), 9);
        assert_eq!(p.batch_sizes(), [1; 9]);
        assert_eq!(p.minimum_healthy_hosts, 8);
        assert!(p.is_success(8), "a failure on the last host still succeeds");
        assert!(!p.is_success(7));
        // After one failure nothing more may start: the first failure ends the deployment.
        assert!(p.may_start(0, 0));
        assert!(!p.may_start(0, 1));
    }

    #[test]
    fn one_host_one_at_a_time_must_succeed() {
        let p = plan(&predefined("CodeDeployDefault.OneAtATime").unwrap(), 1);
        assert_eq!(p.batch_sizes(), [1]);
        assert!(p.is_success(1));
        assert!(!p.is_success(0));
    }

    #[test]
    fn a_minimum_that_leaves_no_host_to_deploy_is_refused() {
        let err = predefined("CodeDeployDefault.HalfAtATime")
            .unwrap()
            .host_plan(1)
            .unwrap_err();
        assert_eq!(err.minimum, 1);
        assert!(
            err.to_string().contains("needs 1 of 1 hosts healthy"),
            "{err}"
        );
        assert!(
            custom(MinimumHealthyHostsType::HostCount, 9)
                .host_plan(9)
                .is_err()
        );
        assert!(
            custom(MinimumHealthyHostsType::FleetPercent, 99)
                .host_plan(9)
                .is_err()
        );
        assert!(
            custom(MinimumHealthyHostsType::FleetPercent, 99)
                .host_plan(200)
                .is_ok()
        );
        assert!(
            predefined("CodeDeployDefault.AllAtOnce")
                .unwrap()
                .host_plan(0)
                .is_err()
        );
    }

    #[test]
    fn failures_shrink_the_window() {
        let p = plan(&custom(MinimumHealthyHostsType::HostCount, 6), 9);
        assert!(p.may_start(2, 0));
        assert!(!p.may_start(3, 0));
        assert!(!p.may_start(2, 1));
        assert!(p.may_start(1, 1));
    }
}
