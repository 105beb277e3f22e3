//! The ELBv2 traffic router: registering and deregistering hosts with a real emulator target
//! group, and (through a stand-in, as the emulator's targets are healthy at once and never drain)
//! waiting for draining and health, with timeouts.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cutover_aws::traffic::{Elbv2Router, TrafficTimeouts};
use cutover_aws::{ec2, elbv2};
use cutover_core::TargetId;
use cutover_core::machine::{Deployment, LifecycleOutcome, OutcomeStatus};
use cutover_core::model::{LifecycleErrorCode, LoadBalancerInfo, NamedResource};
use cutover_engine::TrafficRouter;
use support::{Request, StandIn, deployment, group, launch, unique};

fn quick() -> TrafficTimeouts {
    TrafficTimeouts {
        poll_interval: Duration::from_millis(20),
        block_timeout: None,
        block_margin: Duration::from_millis(300),
        allow_timeout: Duration::from_millis(500),
    }
}

fn with_target_groups(names: &[&str]) -> Deployment {
    let mut g = group("Traffic");
    g.load_balancer_info = Some(LoadBalancerInfo {
        target_group_info_list: names
            .iter()
            .map(|n| NamedResource {
                name: (*n).to_owned(),
            })
            .collect(),
        ..Default::default()
    });
    deployment(g, None)
}

fn hosts(ids: &[&str]) -> Vec<TargetId> {
    ids.iter().map(|i| TargetId::new(*i)).collect()
}

fn statuses(outcomes: &[(TargetId, LifecycleOutcome)]) -> Vec<(String, OutcomeStatus)> {
    outcomes
        .iter()
        .map(|(t, o)| (t.to_string(), o.status))
        .collect()
}

fn message(outcome: &LifecycleOutcome) -> String {
    let d = outcome
        .diagnostics
        .as_ref()
        .expect("a failure has diagnostics");
    assert_eq!(d.error_code, LifecycleErrorCode::UnknownError);
    d.message.clone()
}

/// A target group in the default VPC, and its ARN.
async fn target_group(client: &elbv2::Client, ec2: &ec2::Client) -> (String, String) {
    let vpc = ec2
        .describe_vpcs()
        .send()
        .await
        .unwrap()
        .vpcs()
        .iter()
        .find(|v| v.is_default() == Some(true))
        .and_then(|v| v.vpc_id())
        .expect("the emulator's default VPC")
        .to_owned();
    let name = unique("tg").chars().take(32).collect::<String>();
    let out = client
        .create_target_group()
        .name(&name)
        .protocol(elbv2::types::ProtocolEnum::Http)
        .port(80)
        .vpc_id(vpc)
        .target_type(elbv2::types::TargetTypeEnum::Instance)
        .send()
        .await
        .expect("CreateTargetGroup");
    let arn = out.target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_owned();
    (name, arn)
}

/// The ids registered with the target group now.
async fn registered(client: &elbv2::Client, arn: &str) -> Vec<String> {
    let mut ids: Vec<String> = client
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .unwrap()
        .target_health_descriptions()
        .iter()
        .filter(|d| {
            d.target_health().and_then(|h| h.state())
                != Some(&elbv2::types::TargetHealthStateEnum::Unused)
        })
        .map(|d| d.target().unwrap().id().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn hosts_are_registered_and_deregistered_with_the_target_group() {
    let config = support::sdk_config().await;
    let (elb, ec2) = (elbv2::Client::new(&config), ec2::Client::new(&config));
    let (name, arn) = target_group(&elb, &ec2).await;
    let a = launch(&ec2, &[("Name", "traffic-a")]).await;
    let b = launch(&ec2, &[("Name", "traffic-b")]).await;
    let router = Elbv2Router::from_client(elb.clone(), quick());
    let d = with_target_groups(&[&name]);
    let both = hosts(&[&a, &b]);

    let allowed = router.allow(&d, &both).await.unwrap();
    assert_eq!(
        statuses(&allowed),
        vec![
            (a.clone(), OutcomeStatus::Succeeded),
            (b.clone(), OutcomeStatus::Succeeded)
        ]
    );
    assert!(allowed.iter().all(|(_, o)| o.start_time.is_some()
        && o.end_time >= o.start_time
        && o.diagnostics.is_none()));
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    assert_eq!(registered(&elb, &arn).await, expected);

    let blocked = router.block(&d, &hosts(&[&a])).await.unwrap();
    assert_eq!(
        statuses(&blocked),
        vec![(a.clone(), OutcomeStatus::Succeeded)]
    );
    assert_eq!(registered(&elb, &arn).await, vec![b.clone()]);

    // Delivered twice, each changes nothing more.
    let again = router.block(&d, &hosts(&[&a])).await.unwrap();
    assert_eq!(
        statuses(&again),
        vec![(a.clone(), OutcomeStatus::Succeeded)]
    );
    let again = router.allow(&d, &hosts(&[&b])).await.unwrap();
    assert_eq!(
        statuses(&again),
        vec![(b.clone(), OutcomeStatus::Succeeded)]
    );
    assert_eq!(registered(&elb, &arn).await, vec![b]);
}

#[tokio::test]
async fn a_host_the_target_group_refuses_fails_alone() {
    let config = support::sdk_config().await;
    let (elb, ec2) = (elbv2::Client::new(&config), ec2::Client::new(&config));
    let (name, arn) = target_group(&elb, &ec2).await;
    let running = launch(&ec2, &[("Name", "traffic-running")]).await;
    let stopped = launch(&ec2, &[("Name", "traffic-stopped")]).await;
    support::stop(&ec2, &stopped).await;
    let router = Elbv2Router::from_client(elb.clone(), quick());

    let out = router
        .allow(&with_target_groups(&[&name]), &hosts(&[&running, &stopped]))
        .await
        .unwrap();
    assert_eq!(
        statuses(&out),
        vec![
            (running.clone(), OutcomeStatus::Succeeded),
            (stopped.clone(), OutcomeStatus::Failed)
        ]
    );
    let why = message(&out[1].1);
    assert!(why.starts_with("AllowTraffic"), "{why}");
    assert!(why.contains(&format!("target group '{name}'")), "{why}");
    assert!(why.contains(&stopped), "{why}");
    assert_eq!(registered(&elb, &arn).await, vec![running]);
}

#[tokio::test]
async fn a_missing_target_group_or_a_classic_load_balancer_fails_every_host() {
    let config = support::sdk_config().await;
    let router = Elbv2Router::from_client(elbv2::Client::new(&config), quick());
    let missing = unique("missing").chars().take(32).collect::<String>();
    let out = router
        .block(&with_target_groups(&[&missing]), &hosts(&["i-1", "i-2"]))
        .await
        .unwrap();
    assert_eq!(out.len(), 2);
    for (_, o) in &out {
        assert_eq!(o.status, OutcomeStatus::Failed);
        let why = message(o);
        assert!(why.starts_with("BlockTraffic: "), "{why}");
        assert!(why.contains(&format!("'{missing}'")), "{why}");
        assert!(why.contains("does not exist"), "{why}");
    }

    let mut g = group("Classic");
    g.load_balancer_info = Some(LoadBalancerInfo {
        elb_info_list: vec![NamedResource {
            name: "classic-web".into(),
        }],
        ..Default::default()
    });
    let out = router
        .allow(&deployment(g, None), &hosts(&["i-1"]))
        .await
        .unwrap();
    assert_eq!(out[0].1.status, OutcomeStatus::Failed);
    let why = message(&out[0].1);
    assert!(why.contains("Classic Load Balancers"), "{why}");
    assert!(why.contains("'classic-web'"), "{why}");
}

#[tokio::test]
async fn without_target_groups_every_host_succeeds_without_a_call() {
    // Nothing listens here: any call would fail.
    let config = support::stand_in_config("http://127.0.0.1:9").await;
    let router = Elbv2Router::from_client(elbv2::Client::new(&config), quick());
    let d = deployment(group("NoLb"), None);
    for out in [
        router.block(&d, &hosts(&["i-1", "i-2"])).await.unwrap(),
        router.allow(&d, &hosts(&["i-1", "i-2"])).await.unwrap(),
    ] {
        assert_eq!(
            statuses(&out),
            vec![
                ("i-1".into(), OutcomeStatus::Succeeded),
                ("i-2".into(), OutcomeStatus::Succeeded)
            ]
        );
    }
}

const ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef";
const XML: &str = "text/xml";

fn xml(action: &str, result: &str) -> support::Answer {
    (
        200,
        XML,
        format!(
            r#"<{action}Response xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>stand-in</RequestId></ResponseMetadata></{action}Response>"#
        ),
    )
}

fn action(request: &Request) -> &str {
    request
        .body
        .split('&')
        .find_map(|p| p.strip_prefix("Action="))
        .unwrap_or_default()
}

/// ELBv2 with one target group 'web' (deregistration delay 1 s), whose target `i-1` reports
/// `health` on each DescribeTargetHealth with targets (the nth call gets `health(n)`).
fn elb_stand_in(
    health: impl Fn(usize) -> (&'static str, &'static str) + Send + Sync + 'static,
) -> impl Fn(&Request) -> support::Answer + Send + Sync + 'static {
    let polls = Arc::new(AtomicUsize::new(0));
    move |request| match action(request) {
        "DescribeTargetGroups" => xml(
            "DescribeTargetGroups",
            &format!(
                "<TargetGroups><member><TargetGroupArn>{ARN}</TargetGroupArn><TargetGroupName>web</TargetGroupName><TargetType>instance</TargetType><Port>80</Port></member></TargetGroups>"
            ),
        ),
        "DescribeTargetGroupAttributes" => xml(
            "DescribeTargetGroupAttributes",
            "<Attributes><member><Key>deregistration_delay.timeout_seconds</Key><Value>1</Value></member></Attributes>",
        ),
        "RegisterTargets" | "DeregisterTargets" => xml(action(request), ""),
        "DescribeTargetHealth" => {
            let polled = request.body.contains("Targets.member.1.Id=i-1");
            let (state, reason) = if polled {
                health(polls.fetch_add(1, Ordering::SeqCst))
            } else {
                // Every registered target: i-1 is in service on port 80.
                ("healthy", "")
            };
            let reason = if reason.is_empty() {
                String::new()
            } else {
                format!("<Reason>{reason}</Reason><Description>as the stand-in says</Description>")
            };
            xml(
                "DescribeTargetHealth",
                &format!(
                    "<TargetHealthDescriptions><member><Target><Id>i-1</Id><Port>80</Port></Target><TargetHealth><State>{state}</State>{reason}</TargetHealth></member></TargetHealthDescriptions>"
                ),
            )
        }
        other => panic!("unexpected ELBv2 action {other}"),
    }
}

async fn stand_in_router(stand_in: &StandIn, timeouts: TrafficTimeouts) -> Elbv2Router {
    let config = support::stand_in_config(&stand_in.url).await;
    Elbv2Router::from_client(elbv2::Client::new(&config), timeouts)
}

#[tokio::test]
async fn block_waits_until_draining_is_over() {
    let stand_in = StandIn::start(elb_stand_in(|n| {
        if n < 3 {
            ("draining", "Target.DeregistrationInProgress")
        } else {
            ("unused", "Target.NotRegistered")
        }
    }))
    .await;
    let router = stand_in_router(&stand_in, quick()).await;
    let out = router
        .block(&with_target_groups(&["web"]), &hosts(&["i-1"]))
        .await
        .unwrap();
    assert_eq!(
        statuses(&out),
        vec![("i-1".into(), OutcomeStatus::Succeeded)]
    );
    let actions: Vec<String> = stand_in
        .requests()
        .iter()
        .map(|r| action(r).to_owned())
        .collect();
    assert_eq!(
        actions,
        vec![
            "DescribeTargetGroups",
            "DescribeTargetGroupAttributes",
            "DescribeTargetHealth",
            "DeregisterTargets",
            "DescribeTargetHealth",
            "DescribeTargetHealth",
            "DescribeTargetHealth",
            "DescribeTargetHealth",
        ]
    );
    let deregister = &stand_in.requests()[3].body;
    assert!(
        deregister.contains("Targets.member.1.Id=i-1")
            && deregister.contains("Targets.member.1.Port=80"),
        "{deregister}"
    );

    // The target group's ARN is kept: the next call does not look it up again.
    router
        .block(&with_target_groups(&["web"]), &hosts(&["i-1"]))
        .await
        .unwrap();
    let lookups = stand_in
        .requests()
        .iter()
        .filter(|r| action(r) == "DescribeTargetGroups")
        .count();
    assert_eq!(lookups, 1);
}

#[tokio::test]
async fn block_gives_up_after_the_deregistration_delay_and_its_margin() {
    let stand_in = StandIn::start(elb_stand_in(|_| {
        ("draining", "Target.DeregistrationInProgress")
    }))
    .await;
    let router = stand_in_router(&stand_in, quick()).await;
    let started = Instant::now();
    let out = router
        .block(&with_target_groups(&["web"]), &hosts(&["i-1"]))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(out[0].1.status, OutcomeStatus::Failed);
    let why = message(&out[0].1);
    assert!(
        why.starts_with("BlockTraffic: i-1 has not left target group 'web'"),
        "{why}"
    );
    assert!(why.contains("draining"), "{why}");
    assert!(why.contains("Target.DeregistrationInProgress"), "{why}");
}

#[tokio::test]
async fn allow_waits_for_health_and_times_out_on_an_unhealthy_host() {
    let stand_in = StandIn::start(elb_stand_in(|n| {
        if n < 2 {
            ("initial", "Elb.RegistrationInProgress")
        } else {
            ("healthy", "")
        }
    }))
    .await;
    let router = stand_in_router(&stand_in, quick()).await;
    let out = router
        .allow(&with_target_groups(&["web"]), &hosts(&["i-1"]))
        .await
        .unwrap();
    assert_eq!(
        statuses(&out),
        vec![("i-1".into(), OutcomeStatus::Succeeded)]
    );
    let register = stand_in
        .requests()
        .into_iter()
        .find(|r| action(r) == "RegisterTargets")
        .unwrap();
    assert!(
        register.body.contains("Targets.member.1.Id=i-1"),
        "{}",
        register.body
    );

    let stand_in =
        StandIn::start(elb_stand_in(|_| ("unhealthy", "Target.FailedHealthChecks"))).await;
    let router = stand_in_router(&stand_in, quick()).await;
    let started = Instant::now();
    let out = router
        .allow(&with_target_groups(&["web"]), &hosts(&["i-1"]))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(out[0].1.status, OutcomeStatus::Failed);
    let why = message(&out[0].1);
    assert!(
        why.starts_with("AllowTraffic: i-1 is not healthy in target group 'web'"),
        "{why}"
    );
    assert!(
        why.contains("unhealthy (Target.FailedHealthChecks"),
        "{why}"
    );
}

#[tokio::test]
async fn throttling_is_a_transient_error() {
    let stand_in = StandIn::start(|_| {
        (
            400,
            XML,
            r#"<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>stand-in</RequestId></ErrorResponse>"#.to_owned(),
        )
    })
    .await;
    let router = stand_in_router(&stand_in, quick()).await;
    let err = router
        .allow(&with_target_groups(&["web"]), &hosts(&["i-1"]))
        .await
        .unwrap_err();
    assert!(err.retryable, "{}", err.message);
    assert!(
        err.message.contains("DescribeTargetGroups"),
        "{}",
        err.message
    );
}
