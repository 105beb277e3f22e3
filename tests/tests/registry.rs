//! The state table keeps the registry's contract: applications, groups, configurations,
//! revisions and tags in DynamoDB (the emulator's), as the api function uses them.

use cutover_tests::cloud::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_table_keeps_the_registrys_contract() {
    let stack = Stack::start(&[]).await;
    cutover_api::contract::check(&stack.store).await;
}

/// A group deleted while its deployment runs stays deleted when the deployment succeeds: the
/// record of its last success does not bring back an item without settings, which would list
/// as a group and stop its application from being renamed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_in_a_deleted_group_does_not_bring_it_back() {
    use cutover_api::Registry;
    use cutover_aws::engine::Store;
    use cutover_aws::engine::core::machine::{CreateDeployment, Deployment, FinalStatus};
    use cutover_aws::engine::core::model::{DeploymentGroupInfo, LocalLocation, RevisionLocation};
    use cutover_aws::engine::core::{DeploymentId, Timestamp, config};

    let stack = Stack::start(&[]).await;
    stack.store.put_application("Shop").await.unwrap();
    let group = DeploymentGroupInfo {
        application_name: "Shop".into(),
        deployment_group_name: "Web".into(),
        deployment_group_id: "web".into(),
        deployment_config_name: config::DEFAULT_SERVER_CONFIG.into(),
        ..Default::default()
    };
    assert!(stack.store.create_group(&group).await.unwrap());
    let request = CreateDeployment::new(
        DeploymentId::from_entropy(7),
        group,
        config::predefined(config::DEFAULT_SERVER_CONFIG).unwrap(),
        RevisionLocation::Local(LocalLocation {
            path: "/revision".into(),
            bundle_type: None,
        }),
    );
    let d = Deployment::create(request, Timestamp::from_secs(1_700_000_000)).unwrap();

    stack.store.delete_group("Shop", "Web").await.unwrap();
    stack
        .store
        .finish(&d, FinalStatus::Succeeded, None)
        .await
        .unwrap();
    assert_eq!(
        stack.store.group_names("Shop").await.unwrap(),
        [] as [String; 0]
    );
    assert_eq!(
        stack
            .store
            .rename_application("Shop", "Store")
            .await
            .unwrap(),
        cutover_api::Rename::Renamed
    );
}
