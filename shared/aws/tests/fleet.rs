//! The AWS fleet against the emulator: EC2 tag filters and tag sets, Auto Scaling group members,
//! NO_INSTANCES, and (through a stand-in, as the emulator has no DescribeInstanceInformation)
//! SSM-managed on-premises instances by tag.

mod support;

use cutover_aws::fleet::Ec2Fleet;
use cutover_aws::{autoscaling, ec2, ssm};
use cutover_core::TargetId;
use cutover_core::model::{
    AutoScalingGroup, Ec2TagSet, ErrorCode, OnPremisesTagSet, TagFilterType, TagSet,
    TargetInstances,
};
use cutover_engine::{Fleet, Resolution};
use serde_json::{Value, json};
use support::{Request, StandIn, deployment, filter, group, launch, unique};

use TagFilterType::{KeyAndValue as KV, KeyOnly as K, ValueOnly as V};

async fn fleet() -> (Ec2Fleet, ec2::Client, autoscaling::Client) {
    let config = support::sdk_config().await;
    (
        Ec2Fleet::new(&config),
        ec2::Client::new(&config),
        autoscaling::Client::new(&config),
    )
}

fn targets(mut ids: Vec<String>) -> Resolution {
    ids.sort();
    Resolution::Targets(ids.into_iter().map(TargetId::new).collect())
}

#[tokio::test]
async fn each_tag_filter_type_selects_running_instances() {
    let (fleet, ec2, _) = fleet().await;
    let key = unique("Env");
    let role = unique("web");
    let other = unique("prod");
    let a = launch(&ec2, &[(&key, "prod"), ("Role", &role)]).await;
    let b = launch(&ec2, &[(&key, "beta")]).await;
    let c = launch(&ec2, &[("Other", &other)]).await;

    let resolve = |filters| {
        let mut g = group("Filters");
        g.ec2_tag_filters = filters;
        let d = deployment(g, None);
        let fleet = &fleet;
        async move { fleet.resolve(&d).await.unwrap() }
    };
    assert_eq!(
        resolve(vec![filter(K, &key, "")]).await,
        targets(vec![a.clone(), b.clone()])
    );
    assert_eq!(
        resolve(vec![filter(KV, &key, "prod")]).await,
        targets(vec![a.clone()])
    );
    assert_eq!(
        resolve(vec![filter(V, "", &role)]).await,
        targets(vec![a.clone()])
    );
    // A filter list matches an instance that matches any one of its filters.
    assert_eq!(
        resolve(vec![filter(KV, &key, "beta"), filter(V, "", &other)]).await,
        targets(vec![b.clone(), c.clone()])
    );
    // EC2's wildcards do not widen a CodeDeploy filter: `pr*` is a value like any other.
    let Resolution::Unresolved(error) = resolve(vec![filter(KV, &key, "pr*")]).await else {
        panic!("a literal 'pr*' matched an instance");
    };
    assert_eq!(error.code, ErrorCode::NoInstances);
}

#[tokio::test]
async fn a_tag_set_needs_every_group_and_any_filter_within_one() {
    let (fleet, ec2, _) = fleet().await;
    let env = unique("Env");
    let role = unique("Role");
    let both_prod = launch(&ec2, &[(&env, "prod"), (&role, "web")]).await;
    let both_beta = launch(&ec2, &[(&env, "beta"), (&role, "api")]).await;
    let env_only = launch(&ec2, &[(&env, "prod")]).await;
    let role_only = launch(&ec2, &[(&role, "web")]).await;

    let mut g = group("TagSet");
    g.ec2_tag_set = Some(Ec2TagSet {
        ec2_tag_set_list: TagSet(vec![
            vec![filter(KV, &env, "prod"), filter(KV, &env, "beta")],
            vec![filter(K, &role, "")],
        ]),
    });
    let got = fleet.resolve(&deployment(g, None)).await.unwrap();
    assert_eq!(got, targets(vec![both_prod, both_beta]));
    for lone in [env_only, role_only] {
        assert!(!matches!(&got, Resolution::Targets(t) if t.contains(&TargetId::new(&lone))));
    }
}

#[tokio::test]
async fn stopped_instances_are_not_targets() {
    let (fleet, ec2, _) = fleet().await;
    let key = unique("Stopped");
    let running = launch(&ec2, &[(&key, "x")]).await;
    let stopped = launch(&ec2, &[(&key, "x")]).await;
    support::stop(&ec2, &stopped).await;

    let mut g = group("Stopped");
    g.ec2_tag_filters = vec![filter(K, &key, "")];
    assert_eq!(
        fleet.resolve(&deployment(g, None)).await.unwrap(),
        targets(vec![running])
    );
}

#[tokio::test]
async fn nothing_matching_is_no_instances_naming_the_filters() {
    let (fleet, _, _) = fleet().await;
    let value = unique("nobody");
    let mut g = group("Empty");
    g.ec2_tag_filters = vec![filter(KV, "Name", &value)];
    let Resolution::Unresolved(error) = fleet.resolve(&deployment(g, None)).await.unwrap() else {
        panic!("found instances for a unique tag");
    };
    assert_eq!(error.code, ErrorCode::NoInstances);
    assert!(
        error.message.contains("deployment group 'Empty'"),
        "{}",
        error.message
    );
    assert!(
        error
            .message
            .contains(&format!("ec2TagFilters (Name={value})")),
        "{}",
        error.message
    );

    // A group that names no targets at all says what to set.
    let Resolution::Unresolved(error) = fleet
        .resolve(&deployment(group("Nothing"), None))
        .await
        .unwrap()
    else {
        panic!("a group without targets resolved");
    };
    assert_eq!(error.code, ErrorCode::NoInstances);
    assert!(
        error.message.contains("autoScalingGroups"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn target_instances_take_the_place_of_the_groups_filters() {
    let (fleet, ec2, _) = fleet().await;
    let key = unique("Color");
    let blue = launch(&ec2, &[(&key, "blue")]).await;
    let green = launch(&ec2, &[(&key, "green")]).await;
    let mut g = group("Override");
    g.ec2_tag_filters = vec![filter(KV, &key, "blue")];
    assert_eq!(
        fleet.resolve(&deployment(g.clone(), None)).await.unwrap(),
        targets(vec![blue])
    );
    let only_green = TargetInstances {
        tag_filters: vec![filter(KV, &key, "green")],
        ..Default::default()
    };
    assert_eq!(
        fleet
            .resolve(&deployment(g, Some(only_green)))
            .await
            .unwrap(),
        targets(vec![green])
    );
}

/// An Auto Scaling group of `size` instances, and its name.
async fn auto_scaling_group(
    ec2: &ec2::Client,
    asg: &autoscaling::Client,
    size: i32,
) -> (String, Vec<String>) {
    let name = unique("asg");
    ec2.create_launch_template()
        .launch_template_name(&name)
        .launch_template_data(
            ec2::types::RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .instance_type(ec2::types::InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await
        .expect("CreateLaunchTemplate");
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(&name)
        .launch_template(
            autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name(&name)
                .version("$Latest")
                .build(),
        )
        .min_size(0)
        .max_size(size + 1)
        .desired_capacity(size)
        .availability_zones("us-east-1a")
        .send()
        .await
        .expect("CreateAutoScalingGroup");
    let out = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&name)
        .send()
        .await
        .unwrap();
    let ids = out.auto_scaling_groups()[0]
        .instances()
        .iter()
        .map(|i| i.instance_id().unwrap().to_owned())
        .collect();
    (name, ids)
}

#[tokio::test]
async fn auto_scaling_groups_contribute_their_running_in_service_members() {
    let (fleet, ec2, asg) = fleet().await;
    let (name, members) = auto_scaling_group(&ec2, &asg, 4).await;
    assert_eq!(members.len(), 4);
    // One member goes to Standby (the group launches a replacement), one is stopped in EC2.
    asg.enter_standby()
        .auto_scaling_group_name(&name)
        .instance_ids(&members[0])
        .should_decrement_desired_capacity(false)
        .send()
        .await
        .expect("EnterStandby");
    support::stop(&ec2, &members[1]).await;
    let now = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&name)
        .send()
        .await
        .unwrap();
    let expected: Vec<String> = now.auto_scaling_groups()[0]
        .instances()
        .iter()
        .filter(|i| i.lifecycle_state() == Some(&autoscaling::types::LifecycleState::InService))
        .map(|i| i.instance_id().unwrap().to_owned())
        .filter(|id| id != &members[1])
        .collect();
    assert_eq!(
        expected.len(),
        3,
        "two left of the four and one replacement"
    );

    // An instance matched by a tag and by the group appears once.
    let key = unique("Also");
    ec2.create_tags()
        .resources(&members[2])
        .tags(ec2::types::Tag::builder().key(&key).value("1").build())
        .send()
        .await
        .unwrap();
    let mut g = group("Asg");
    g.auto_scaling_groups = vec![AutoScalingGroup {
        name: name.clone(),
        hook: None,
        termination_hook: None,
    }];
    g.ec2_tag_filters = vec![filter(K, &key, "")];
    assert_eq!(
        fleet.resolve(&deployment(g.clone(), None)).await.unwrap(),
        targets(expected)
    );

    // A group that does not exist is named.
    let missing = unique("gone");
    g.auto_scaling_groups.push(AutoScalingGroup {
        name: missing.clone(),
        hook: None,
        termination_hook: None,
    });
    let Resolution::Unresolved(error) = fleet.resolve(&deployment(g, None)).await.unwrap() else {
        panic!("a missing Auto Scaling group was ignored");
    };
    assert_eq!(error.code, ErrorCode::AutoScalingConfiguration);
    assert!(error.message.contains(&missing), "{}", error.message);
    assert!(
        !error.message.contains(&format!("'{name}'")),
        "{}",
        error.message
    );
}

/// A managed instance as the SSM stand-in knows it.
struct Managed {
    id: &'static str,
    ping: &'static str,
    resource_type: &'static str,
    tags: &'static [(&'static str, &'static str)],
}

const MANAGED: &[Managed] = &[
    Managed {
        id: "mi-0000000000000000a",
        ping: "Online",
        resource_type: "ManagedInstance",
        tags: &[("Site", "paris"), ("Role", "web")],
    },
    Managed {
        id: "mi-0000000000000000b",
        ping: "ConnectionLost",
        resource_type: "ManagedInstance",
        tags: &[("Site", "lyon"), ("Role", "web")],
    },
    Managed {
        id: "mi-0000000000000000c",
        ping: "Online",
        resource_type: "ManagedInstance",
        tags: &[("Site", "paris")],
    },
    Managed {
        id: "mi-0000000000000000d",
        ping: "Inactive",
        resource_type: "ManagedInstance",
        tags: &[("Site", "paris"), ("Role", "web")],
    },
    Managed {
        id: "i-0000000000000000e",
        ping: "Online",
        resource_type: "EC2Instance",
        tags: &[("Site", "paris"), ("Role", "web")],
    },
    // Listed, but deregistered before its tags are read.
    Managed {
        id: "mi-0000000000000000f",
        ping: "Online",
        resource_type: "ManagedInstance",
        tags: &[],
    },
];

/// SSM as documented: DescribeInstanceInformation with `ResourceType`, `tag:Key` and `tag-key`
/// string filters (ANDed; values ORed), two instances a page; ListTagsForResource.
fn ssm_stand_in(request: &Request) -> support::Answer {
    const JSON: &str = "application/x-amz-json-1.1";
    let body: Value = serde_json::from_str(&request.body).unwrap();
    match request.target.as_str() {
        "AmazonSSM.DescribeInstanceInformation" => {
            let filters = body["Filters"].as_array().cloned().unwrap_or_default();
            let matching: Vec<&Managed> = MANAGED
                .iter()
                .filter(|m| {
                    filters.iter().all(|f| {
                        let key = f["Key"].as_str().unwrap();
                        let values: Vec<&str> = f["Values"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|v| v.as_str().unwrap())
                            .collect();
                        if key == "ResourceType" {
                            values.contains(&m.resource_type)
                        } else if key == "tag-key" {
                            m.tags.iter().any(|(k, _)| values.contains(k))
                        } else if let Some(tag) = key.strip_prefix("tag:") {
                            m.tags.iter().any(|(k, v)| *k == tag && values.contains(v))
                        } else {
                            panic!("unexpected filter {key}")
                        }
                    })
                })
                .collect();
            let start: usize = body["NextToken"].as_str().map_or(0, |t| t.parse().unwrap());
            let page: Vec<Value> = matching
                .iter()
                .skip(start)
                .take(2)
                .map(|m| {
                    json!({"InstanceId": m.id, "PingStatus": m.ping, "ResourceType": m.resource_type})
                })
                .collect();
            let mut answer = json!({"InstanceInformationList": page});
            if start + 2 < matching.len() {
                answer["NextToken"] = json!((start + 2).to_string());
            }
            (200, JSON, answer.to_string())
        }
        "AmazonSSM.ListTagsForResource" => {
            assert_eq!(body["ResourceType"], "ManagedInstance");
            let id = body["ResourceId"].as_str().unwrap();
            match MANAGED.iter().find(|m| m.id == id && !m.tags.is_empty()) {
                Some(m) => {
                    let tags: Vec<Value> = m
                        .tags
                        .iter()
                        .map(|(k, v)| json!({"Key": k, "Value": v}))
                        .collect();
                    (200, JSON, json!({"TagList": tags}).to_string())
                }
                None => (
                    400,
                    JSON,
                    json!({"__type": "InvalidResourceId", "message": "Invalid Resource Id"})
                        .to_string(),
                ),
            }
        }
        other => (
            400,
            JSON,
            json!({"__type": "InvalidAction", "message": format!("no {other} here")}).to_string(),
        ),
    }
}

async fn ssm_fleet() -> (Ec2Fleet, StandIn) {
    let stand_in = StandIn::start(ssm_stand_in).await;
    let config = support::stand_in_config(&stand_in.url).await;
    let fleet = Ec2Fleet::from_clients(
        ec2::Client::new(&config),
        autoscaling::Client::new(&config),
        ssm::Client::new(&config),
    );
    (fleet, stand_in)
}

#[tokio::test]
async fn on_premises_tag_sets_use_ssm_tag_filters() {
    let (fleet, stand_in) = ssm_fleet().await;
    let mut g = group("OnPrem");
    g.on_premises_tag_set = Some(OnPremisesTagSet {
        on_premises_tag_set_list: TagSet(vec![
            vec![filter(KV, "Site", "paris"), filter(KV, "Site", "lyon")],
            vec![filter(K, "Role", "")],
        ]),
    });
    // Inactive instances and EC2 instances are left out; a lost connection is the deployment's
    // to find out.
    assert_eq!(
        fleet.resolve(&deployment(g, None)).await.unwrap(),
        targets(vec![
            "mi-0000000000000000a".into(),
            "mi-0000000000000000b".into()
        ])
    );
    let requests = stand_in.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.target == "AmazonSSM.DescribeInstanceInformation")
    );
    let filters: Vec<Value> = requests
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["Filters"].clone())
        .collect();
    assert!(filters.contains(&json!([
        {"Key": "ResourceType", "Values": ["ManagedInstance"]},
        {"Key": "tag:Site", "Values": ["lyon", "paris"]}
    ])));
    assert!(filters.contains(&json!([
        {"Key": "ResourceType", "Values": ["ManagedInstance"]},
        {"Key": "tag-key", "Values": ["Role"]}
    ])));
}

#[tokio::test]
async fn on_premises_value_filters_read_each_instances_tags() {
    let (fleet, stand_in) = ssm_fleet().await;
    let mut g = group("OnPremValues");
    g.on_premises_instance_tag_filters = vec![filter(V, "", "paris")];
    assert_eq!(
        fleet.resolve(&deployment(g, None)).await.unwrap(),
        targets(vec![
            "mi-0000000000000000a".into(),
            "mi-0000000000000000c".into()
        ])
    );
    let requests = stand_in.requests();
    let listed = requests
        .iter()
        .filter(|r| r.target == "AmazonSSM.DescribeInstanceInformation")
        .count();
    assert_eq!(listed, 3, "every page of the managed instances");
    let tag_reads: Vec<String> = requests
        .iter()
        .filter(|r| r.target == "AmazonSSM.ListTagsForResource")
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["ResourceId"].to_string())
        .collect();
    assert_eq!(tag_reads.len(), 4, "{tag_reads:?}");

    // Nothing matching is NO_INSTANCES, naming the on-premises filters.
    let mut g = group("OnPremNone");
    g.on_premises_instance_tag_filters = vec![filter(V, "", "berlin")];
    let Resolution::Unresolved(error) = fleet.resolve(&deployment(g, None)).await.unwrap() else {
        panic!("berlin matched");
    };
    assert_eq!(error.code, ErrorCode::NoInstances);
    assert!(
        error
            .message
            .contains("onPremisesInstanceTagFilters (value berlin)"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn an_ssm_failure_is_a_port_error_by_kind() {
    let throttled = StandIn::start(|_| {
        (
            400,
            "application/x-amz-json-1.1",
            json!({"__type": "ThrottlingException", "message": "Rate exceeded"}).to_string(),
        )
    })
    .await;
    let denied = StandIn::start(|_| {
        (
            400,
            "application/x-amz-json-1.1",
            json!({"__type": "AccessDeniedException", "message": "not allowed"}).to_string(),
        )
    })
    .await;
    let mut g = group("OnPremErrors");
    g.on_premises_instance_tag_filters = vec![filter(KV, "Site", "paris")];
    let d = deployment(g, None);
    for (stand_in, retryable) in [(throttled, true), (denied, false)] {
        let config = support::stand_in_config(&stand_in.url).await;
        let fleet = Ec2Fleet::new(&config);
        let err = fleet.resolve(&d).await.unwrap_err();
        assert_eq!(err.retryable, retryable, "{}", err.message);
        assert!(
            err.message.contains("ssm:DescribeInstanceInformation"),
            "{}",
            err.message
        );
    }
}
