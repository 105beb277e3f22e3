//! The registry's contract as one check that every implementation runs: what the API's
//! operations rely on a [`Registry`] to do. The local store runs it on SQLite, and the cloud
//! tests on DynamoDB in the emulator. Built with the `contract` feature only.

use cutover_core::Timestamp;
use cutover_core::config::{DeploymentConfigInfo, predefined};
use cutover_core::model::{
    ApplicationInfo, ComputePlatform, DeploymentGroupInfo, GenericRevisionInfo, InstanceInfo,
    RevisionLocation, S3Location,
};

use crate::ops::tags::{Tag, Tagged};
use crate::registry::{ConfigDeletion, Registry, Rename};

const ANSWERS: &str = "the registry answers";

fn app(name: &str) -> ApplicationInfo {
    ApplicationInfo {
        application_id: format!("id-of-{name}"),
        application_name: name.to_owned(),
        create_time: Timestamp::from_millis(1_000),
        linked_to_git_hub: false,
        git_hub_account_name: None,
        compute_platform: ComputePlatform::Server,
    }
}

fn group(app: &str, name: &str, config: &str) -> DeploymentGroupInfo {
    DeploymentGroupInfo {
        application_name: app.to_owned(),
        deployment_group_name: name.to_owned(),
        deployment_group_id: format!("id-of-{app}-{name}"),
        deployment_config_name: config.to_owned(),
        ..Default::default()
    }
}

fn config(name: &str) -> DeploymentConfigInfo {
    let mut config = predefined("CodeDeployDefault.HalfAtATime").expect("a predefined config");
    config.deployment_config_name = name.to_owned();
    config.deployment_config_id = Some(format!("id-of-{name}"));
    config
}

fn revision(key: &str) -> RevisionLocation {
    RevisionLocation::S3(S3Location {
        bucket: "revisions".into(),
        // Longer than a key of most stores may be, as an S3 key may be.
        key: format!("{key}/{}", "k".repeat(900)),
        bundle_type: None,
        version: None,
        e_tag: None,
    })
}

fn tags(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs
        .iter()
        .map(|(k, v)| Tag {
            key: (*k).into(),
            value: (*v).into(),
        })
        .collect()
}

fn instance(name: &str) -> InstanceInfo {
    InstanceInfo {
        instance_name: name.into(),
        iam_session_arn: None,
        iam_user_arn: Some(format!("arn:aws:iam::123456789012:user/{name}")),
        instance_arn: format!("arn:aws:codedeploy:us-east-1:123456789012:instance/{name}"),
        register_time: Timestamp::from_secs(1_700_000_000),
        deregister_time: None,
        tags: Vec::new(),
    }
}

fn group_key(app: &str, group: &str) -> String {
    Tagged::Group {
        application: app.into(),
        group: group.into(),
    }
    .key()
}

fn app_key(app: &str) -> String {
    Tagged::Application(app.into()).key()
}

/// Checks `registry`, which must hold nothing yet; panics at the first broken promise.
pub async fn check(registry: &impl Registry) {
    let at = Timestamp::from_millis;

    // Applications.
    assert!(
        registry
            .create_application(&app("Shop"))
            .await
            .expect(ANSWERS)
    );
    assert!(
        !registry
            .create_application(&app("Shop"))
            .await
            .expect(ANSWERS)
    );
    assert!(
        registry
            .create_application(&app("Blog"))
            .await
            .expect(ANSWERS)
    );
    assert_eq!(
        registry.application_names().await.expect(ANSWERS),
        ["Blog", "Shop"]
    );
    assert_eq!(
        registry.application("Shop").await.expect(ANSWERS),
        Some(app("Shop"))
    );
    assert_eq!(registry.application("Nope").await.expect(ANSWERS), None);

    // Groups, with a lookalike name that must stay apart.
    for name in ["Web", "Web#LOCK", "Api"] {
        let created = registry
            .create_group(&group("Shop", name, "CodeDeployDefault.OneAtATime"))
            .await
            .expect(ANSWERS);
        assert!(created, "{name}");
    }
    assert!(
        !registry
            .create_group(&group("Shop", "Web", "CodeDeployDefault.AllAtOnce"))
            .await
            .expect(ANSWERS)
    );
    assert_eq!(
        registry.group_names("Shop").await.expect(ANSWERS),
        ["Api", "Web", "Web#LOCK"]
    );
    assert_eq!(
        registry.group("Shop", "Web").await.expect(ANSWERS),
        Some(group("Shop", "Web", "CodeDeployDefault.OneAtATime"))
    );

    // Group updates: in place, renamed, onto a taken name, of a missing group.
    let half = group("Shop", "Web", "CodeDeployDefault.HalfAtATime");
    assert_eq!(
        registry.update_group("Web", &half).await.expect(ANSWERS),
        Rename::Renamed
    );
    assert_eq!(
        registry.group("Shop", "Web").await.expect(ANSWERS),
        Some(half)
    );
    registry
        .set_tags(&group_key("Shop", "Web"), &tags(&[("team", "web")]))
        .await
        .expect(ANSWERS);
    let front = group("Shop", "Front", "CodeDeployDefault.HalfAtATime");
    assert_eq!(
        registry.update_group("Web", &front).await.expect(ANSWERS),
        Rename::Renamed
    );
    assert_eq!(registry.group("Shop", "Web").await.expect(ANSWERS), None);
    assert_eq!(
        registry.group("Shop", "Front").await.expect(ANSWERS),
        Some(front)
    );
    assert_eq!(
        registry
            .tags(&group_key("Shop", "Front"))
            .await
            .expect(ANSWERS),
        tags(&[("team", "web")]),
        "a group's tags follow its new name"
    );
    assert_eq!(
        registry
            .tags(&group_key("Shop", "Web"))
            .await
            .expect(ANSWERS),
        []
    );
    assert_eq!(
        registry
            .update_group(
                "Front",
                &group("Shop", "Api", "CodeDeployDefault.AllAtOnce")
            )
            .await
            .expect(ANSWERS),
        Rename::NameTaken
    );
    assert_eq!(
        registry
            .update_group(
                "Gone",
                &group("Shop", "Gone", "CodeDeployDefault.AllAtOnce")
            )
            .await
            .expect(ANSWERS),
        Rename::Missing
    );

    // Configurations: one in use cannot go.
    assert!(
        registry
            .create_config(&config("Half"))
            .await
            .expect(ANSWERS)
    );
    assert!(
        !registry
            .create_config(&config("Half"))
            .await
            .expect(ANSWERS)
    );
    assert!(
        registry
            .create_config(&config("Spare"))
            .await
            .expect(ANSWERS)
    );
    assert_eq!(
        registry.config_names().await.expect(ANSWERS),
        ["Half", "Spare"]
    );
    assert_eq!(
        registry.config("Half").await.expect(ANSWERS),
        Some(config("Half"))
    );
    assert_eq!(
        registry
            .config("CodeDeployDefault.OneAtATime")
            .await
            .expect(ANSWERS),
        None,
        "the registry holds custom configurations only"
    );
    registry
        .create_group(&group("Blog", "Posts", "Half"))
        .await
        .expect(ANSWERS);
    assert_eq!(
        registry.delete_config("Half").await.expect(ANSWERS),
        ConfigDeletion::InUse(vec![("Blog".into(), "Posts".into())])
    );
    assert_eq!(
        registry.delete_config("Spare").await.expect(ANSWERS),
        ConfigDeletion::Deleted
    );
    assert_eq!(
        registry.delete_config("Spare").await.expect(ANSWERS),
        ConfigDeletion::Missing
    );

    // Revisions: registered, described, used, listed in the order they were registered.
    let first = registry
        .register_revision("Shop", &revision("b"), Some("first"), at(2_000))
        .await
        .expect(ANSWERS);
    assert_eq!(
        first,
        GenericRevisionInfo::registered(Some("first".into()), at(2_000))
    );
    registry
        .revision_used("Shop", &revision("a"), "Front", at(3_000))
        .await
        .expect(ANSWERS);
    registry
        .revision_used("Shop", &revision("b"), "Front", at(4_000))
        .await
        .expect(ANSWERS);
    let again = registry
        .register_revision("Shop", &revision("b"), None, at(5_000))
        .await
        .expect(ANSWERS);
    assert_eq!(again.description.as_deref(), Some("first"));
    assert_eq!(again.register_time, at(2_000));
    assert_eq!(again.deployment_groups, ["Front"]);
    assert_eq!(again.first_used_time, Some(at(4_000)));
    let listed = registry.revisions("Shop").await.expect(ANSWERS);
    let order: Vec<_> = listed
        .iter()
        .map(|(location, _)| location.clone())
        .collect();
    assert_eq!(order, [revision("b"), revision("a")]);
    assert_eq!(
        registry
            .revision("Shop", &revision("a"))
            .await
            .expect(ANSWERS)
            .map(|r| r.last_used_time),
        Some(Some(at(3_000)))
    );
    assert_eq!(
        registry
            .revision("Blog", &revision("a"))
            .await
            .expect(ANSWERS),
        None
    );

    // Renaming an application takes its groups, their tags and its revisions along.
    registry
        .set_tags(&app_key("Shop"), &tags(&[("cost", "7"), ("env", "prod")]))
        .await
        .expect(ANSWERS);
    assert_eq!(
        registry
            .rename_application("Shop", "Blog")
            .await
            .expect(ANSWERS),
        Rename::NameTaken
    );
    assert_eq!(
        registry
            .rename_application("Nope", "Other")
            .await
            .expect(ANSWERS),
        Rename::Missing
    );
    assert_eq!(
        registry
            .rename_application("Shop", "Store")
            .await
            .expect(ANSWERS),
        Rename::Renamed
    );
    assert_eq!(
        registry.application_names().await.expect(ANSWERS),
        ["Blog", "Store"]
    );
    assert_eq!(
        registry
            .application("Store")
            .await
            .expect(ANSWERS)
            .map(|a| a.application_id),
        Some("id-of-Shop".to_owned())
    );
    assert_eq!(registry.application("Shop").await.expect(ANSWERS), None);
    assert_eq!(
        registry.group_names("Store").await.expect(ANSWERS),
        ["Api", "Front", "Web#LOCK"]
    );
    assert_eq!(
        registry
            .group("Store", "Front")
            .await
            .expect(ANSWERS)
            .map(|g| g.application_name),
        Some("Store".to_owned())
    );
    assert_eq!(
        registry.group_names("Shop").await.expect(ANSWERS),
        [] as [String; 0]
    );
    assert_eq!(
        registry.tags(&app_key("Store")).await.expect(ANSWERS),
        tags(&[("cost", "7"), ("env", "prod")])
    );
    assert_eq!(
        registry
            .tags(&group_key("Store", "Front"))
            .await
            .expect(ANSWERS),
        tags(&[("team", "web")])
    );
    assert_eq!(registry.tags(&app_key("Shop")).await.expect(ANSWERS), []);
    assert_eq!(registry.revisions("Store").await.expect(ANSWERS).len(), 2);

    // Deleting a group or an application takes its tags along.
    registry
        .delete_group("Store", "Front")
        .await
        .expect(ANSWERS);
    registry
        .delete_group("Store", "Front")
        .await
        .expect(ANSWERS);
    assert_eq!(
        registry.group_names("Store").await.expect(ANSWERS),
        ["Api", "Web#LOCK"]
    );
    assert_eq!(
        registry
            .tags(&group_key("Store", "Front"))
            .await
            .expect(ANSWERS),
        []
    );
    registry
        .set_tags(&group_key("Store", "Api"), &tags(&[("team", "api")]))
        .await
        .expect(ANSWERS);
    registry.delete_application("Store").await.expect(ANSWERS);
    registry.delete_application("Store").await.expect(ANSWERS);
    assert_eq!(registry.application_names().await.expect(ANSWERS), ["Blog"]);
    assert_eq!(
        registry.group_names("Store").await.expect(ANSWERS),
        [] as [String; 0]
    );
    assert_eq!(registry.tags(&app_key("Store")).await.expect(ANSWERS), []);
    assert_eq!(
        registry
            .tags(&group_key("Store", "Api"))
            .await
            .expect(ANSWERS),
        []
    );
    // On-premises instances: a name is registered once at a time; a deregistered one is kept
    // until its name is registered again.
    assert!(
        registry
            .register_instance(&instance("rack-2"))
            .await
            .expect(ANSWERS)
    );
    assert!(
        registry
            .register_instance(&instance("rack-1"))
            .await
            .expect(ANSWERS)
    );
    let mut again = instance("rack-2");
    again.iam_user_arn = Some("arn:aws:iam::123456789012:user/other".into());
    assert!(!registry.register_instance(&again).await.expect(ANSWERS));
    assert_eq!(
        registry.instance("rack-2").await.expect(ANSWERS),
        Some(instance("rack-2"))
    );
    let mut tagged = instance("rack-2");
    tagged.tags = tags(&[("Env", "prod")]);
    tagged.deregister_time = Some(Timestamp::from_secs(1_700_000_100));
    assert!(registry.update_instance(&tagged).await.expect(ANSWERS));
    assert!(
        !registry
            .update_instance(&instance("rack-9"))
            .await
            .expect(ANSWERS)
    );
    assert_eq!(
        registry.instances().await.expect(ANSWERS),
        [instance("rack-1"), tagged]
    );
    assert!(registry.register_instance(&again).await.expect(ANSWERS));
    assert_eq!(
        registry.instance("rack-2").await.expect(ANSWERS),
        Some(again)
    );
    assert_eq!(registry.instance("rack-9").await.expect(ANSWERS), None);

    // A new application of the old name starts empty.
    assert!(
        registry
            .create_application(&app("Store"))
            .await
            .expect(ANSWERS)
    );
    assert_eq!(registry.revisions("Store").await.expect(ANSWERS), []);
    assert_eq!(
        registry.group_names("Store").await.expect(ANSWERS),
        [] as [String; 0]
    );
}
