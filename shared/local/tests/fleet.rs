//! The local fleet: a group with on-premises tags deploys to the registered instances they
//! select, each a host folder of its name; other groups keep their hosts.

mod support;

use std::sync::Arc;

use cutover_core::TargetId;
use cutover_core::Timestamp;
use cutover_core::machine::Deployment;
use cutover_core::model::{
    ErrorCode, InstanceInfo, OnPremisesTagSet, Tag, TagFilter, TagFilterType, TagSet,
};
use cutover_engine::{Fleet, Ports, Resolution};
use cutover_local::{LocalPorts, LocalStore};
use support::deployment;

fn instance(name: &str, tags: &[(&str, &str)]) -> InstanceInfo {
    InstanceInfo {
        instance_name: name.into(),
        iam_session_arn: None,
        iam_user_arn: Some(format!("arn:aws:iam::123456789012:user/{name}")),
        instance_arn: format!("arn:aws:codedeploy:us-east-1:123456789012:instance/{name}"),
        register_time: Timestamp::from_secs(1_700_000_000),
        deregister_time: None,
        tags: tags
            .iter()
            .map(|(k, v)| Tag {
                key: (*k).into(),
                value: (*v).into(),
            })
            .collect(),
    }
}

fn filter(key: &str, value: &str, filter_type: TagFilterType) -> TagFilter {
    TagFilter {
        key: Some(key.into()),
        value: Some(value.into()),
        filter_type,
    }
}

fn resolve(ports: &LocalPorts, d: &Deployment) -> Resolution {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(ports.fleet().resolve(d))
        .unwrap()
}

fn targets(names: &[&str]) -> Resolution {
    Resolution::Targets(names.iter().map(|n| TargetId::new(*n)).collect())
}

#[test]
fn on_premises_tags_select_the_registered_instances_that_match() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::open(dir.path()).unwrap());
    for i in [
        instance("web-b", &[("Role", "web"), ("Env", "prod")]),
        instance("web-a", &[("Role", "web"), ("Env", "staging")]),
        instance("db-1", &[("Role", "db"), ("Env", "prod")]),
        instance("web-gone", &[("Role", "web"), ("Env", "prod")]),
    ] {
        assert!(store.register_instance(&i).unwrap());
    }
    let mut gone = instance("web-gone", &[("Role", "web"), ("Env", "prod")]);
    gone.deregister_time = Some(Timestamp::from_secs(1_700_000_100));
    assert!(store.update_instance(&gone).unwrap());
    let ports = LocalPorts::new(store.clone(), dir.path());

    let mut d = deployment(1);
    d.group.on_premises_instance_tag_filters = vec![
        filter("Role", "web", TagFilterType::KeyAndValue),
        filter("", "db-only", TagFilterType::ValueOnly),
    ];
    assert_eq!(resolve(&ports, &d), targets(&["web-a", "web-b"]));
    // Each is a host of the group, rooted at a folder of its name.
    let hosts = store.hosts("App", "Fleet").unwrap();
    assert_eq!(hosts.len(), 2);
    assert_eq!(hosts[0].name, "web-a");
    assert_eq!(hosts[0].root, dir.path().join("hosts/web-a"));

    let mut d = deployment(2);
    d.group.on_premises_tag_set = Some(OnPremisesTagSet {
        on_premises_tag_set_list: TagSet(vec![
            vec![filter("Env", "prod", TagFilterType::KeyAndValue)],
            vec![
                filter("Role", "web", TagFilterType::KeyAndValue),
                filter("Role", "db", TagFilterType::KeyAndValue),
            ],
        ]),
    });
    assert_eq!(resolve(&ports, &d), targets(&["db-1", "web-b"]));
    assert_eq!(store.hosts("App", "Fleet").unwrap().len(), 2);

    // Nothing matching fails the deployment as CodeDeploy does: NO_INSTANCES.
    let mut d = deployment(3);
    d.group.on_premises_instance_tag_filters =
        vec![filter("Role", "cache", TagFilterType::KeyAndValue)];
    let Resolution::Unresolved(error) = resolve(&ports, &d) else {
        panic!("a filter that matches nothing resolves no targets");
    };
    assert_eq!(error.code, ErrorCode::NoInstances);
    assert!(
        error.message.contains("onPremisesInstanceTagFilters"),
        "{}",
        error.message
    );
}

#[test]
fn a_group_without_on_premises_tags_keeps_its_simulated_host() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::open(dir.path()).unwrap());
    assert!(
        store
            .register_instance(&instance("web-1", &[("Role", "web")]))
            .unwrap()
    );
    let ports = LocalPorts::new(store.clone(), dir.path());
    assert_eq!(resolve(&ports, &deployment(1)), targets(&["host-1"]));
    assert_eq!(
        store.hosts("App", "Fleet").unwrap()[0].root,
        dir.path().join("hosts/host-1")
    );
}
