//! What the store and driver tests share: a deployment of a local revision that is not there.

use cutover_core::config;
use cutover_core::machine::{CreateDeployment, Deployment};
use cutover_core::model::{DeploymentGroupInfo, LocalLocation, RevisionLocation};
use cutover_core::{DeploymentId, Timestamp};

/// Deployment number `n` of revision `v<n>` to the group App/Fleet, just created.
pub fn deployment(n: u64) -> Deployment {
    let group = DeploymentGroupInfo {
        application_name: "App".into(),
        deployment_group_name: "Fleet".into(),
        deployment_group_id: "4f1c2d3e-0000-4000-8000-000000000001".into(),
        ..Default::default()
    };
    let req = CreateDeployment::new(
        DeploymentId::from_entropy(n),
        group,
        config::predefined(config::DEFAULT_SERVER_CONFIG).unwrap(),
        RevisionLocation::Local(LocalLocation {
            path: format!("/nonexistent/revisions/v{n}"),
            bundle_type: None,
        }),
    );
    Deployment::create(req, Timestamp::from_secs(1_700_000_000)).unwrap()
}
