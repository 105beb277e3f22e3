//! Traffic control over Elastic Load Balancing v2: a host is taken out of service by
//! deregistering it from every target group of its deployment group and waiting for draining to
//! finish, and put back by registering it and waiting until it is healthy.
//!
//! Target groups are named in `loadBalancerInfo.targetGroupInfoList` and looked up by name once
//! (their ARNs are kept). Classic load balancers (`elbInfoList`) are not supported: hosts fail
//! with a message that says so. Hosts are identified by instance id, so target groups must have
//! the `instance` target type.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_elasticloadbalancingv2 as elbv2;
use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetHealthStateEnum};
use cutover_core::machine::{Deployment, LifecycleOutcome};
use cutover_core::model::{Diagnostics, LifecycleErrorCode, LoadBalancerInfo};
use cutover_core::{TargetId, Timestamp};
use cutover_engine::{PortError, TrafficRouter};

use crate::error::port_error as sdk_error;
use crate::now;

/// The most targets sent in one RegisterTargets or DeregisterTargets call.
const TARGETS_PER_CALL: usize = 100;
/// ELBv2's deregistration delay when a target group does not say otherwise.
const DEFAULT_DEREGISTRATION_DELAY: Duration = Duration::from_secs(300);

/// How long traffic changes may take and how often their progress is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrafficTimeouts {
    /// How long to wait between two reads of the targets' health.
    pub poll_interval: Duration,
    /// The longest wait for a host to leave its target groups. `None`: the longest deregistration
    /// delay of the target groups plus `block_margin`.
    pub block_timeout: Option<Duration>,
    /// Added to the deregistration delay when `block_timeout` is `None`.
    pub block_margin: Duration,
    /// The longest wait for a registered host to become healthy.
    pub allow_timeout: Duration,
}

impl Default for TrafficTimeouts {
    fn default() -> Self {
        TrafficTimeouts {
            poll_interval: Duration::from_secs(2),
            block_timeout: None,
            block_margin: Duration::from_secs(60),
            allow_timeout: Duration::from_secs(300),
        }
    }
}

/// Registers and deregisters hosts with the target groups of their deployment group.
#[derive(Debug)]
pub struct Elbv2Router {
    client: elbv2::Client,
    timeouts: TrafficTimeouts,
    /// Target groups by name, as looked up.
    groups: Mutex<HashMap<String, TargetGroup>>,
}

#[derive(Clone, Debug)]
struct TargetGroup {
    name: String,
    arn: String,
    target_type: Option<String>,
    /// Read when first needed.
    deregistration_delay: Option<Duration>,
}

/// One registration of a host with a target group (a host may be registered on several ports).
#[derive(Clone, Debug)]
struct Registration {
    host: TargetId,
    port: Option<i32>,
    /// The last health seen: state, and reason with its description.
    last: Option<(String, String)>,
}

/// The health of one registration.
#[derive(Clone, Debug)]
struct Health {
    id: String,
    port: Option<i32>,
    state: TargetHealthStateEnum,
    reason: Option<String>,
    description: Option<String>,
}

impl Health {
    fn describe(&self) -> (String, String) {
        let mut why = self.reason.clone().unwrap_or_default();
        if let Some(d) = &self.description {
            if !why.is_empty() {
                why.push_str(": ");
            }
            why.push_str(d);
        }
        (self.state.as_str().to_owned(), why)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Block,
    Allow,
}

impl Direction {
    fn event(self) -> &'static str {
        match self {
            Direction::Block => "BlockTraffic",
            Direction::Allow => "AllowTraffic",
        }
    }

    /// True once a registration needs no more waiting.
    fn done(self, h: &Health) -> bool {
        match self {
            Direction::Block => h.state == TargetHealthStateEnum::Unused,
            Direction::Allow => {
                h.state == TargetHealthStateEnum::Healthy
                    || (h.state == TargetHealthStateEnum::Unavailable
                        && h.reason.as_deref() == Some("Target.HealthCheckDisabled"))
            }
        }
    }
}

/// What happened to each host of one call.
struct Tally {
    start: Timestamp,
    failed: BTreeMap<TargetId, String>,
    ended: HashMap<TargetId, Timestamp>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            start: now(),
            failed: BTreeMap::new(),
            ended: HashMap::new(),
        }
    }

    fn fail(&mut self, host: &TargetId, message: String) {
        self.ended.insert(host.clone(), now());
        self.failed.entry(host.clone()).or_insert(message);
    }

    fn fail_all(&mut self, hosts: &[TargetId], message: &str) {
        for h in hosts {
            self.fail(h, message.to_owned());
        }
    }

    fn outcomes(self, hosts: &[TargetId]) -> Vec<(TargetId, LifecycleOutcome)> {
        let end = now();
        hosts
            .iter()
            .map(|h| {
                let mut outcome = match self.failed.get(h) {
                    Some(message) => LifecycleOutcome::failed(Diagnostics::new(
                        LifecycleErrorCode::UnknownError,
                        None,
                        message.clone(),
                        "",
                    )),
                    None => LifecycleOutcome::succeeded(),
                };
                outcome.start_time = Some(self.start);
                outcome.end_time = Some(self.ended.get(h).copied().unwrap_or(end));
                (h.clone(), outcome)
            })
            .collect()
    }
}

impl Elbv2Router {
    /// A router with the default timeouts.
    pub fn new(config: &SdkConfig) -> Self {
        Elbv2Router::from_client(elbv2::Client::new(config), TrafficTimeouts::default())
    }

    /// A router over a client built elsewhere, with the given timeouts.
    pub fn from_client(client: elbv2::Client, timeouts: TrafficTimeouts) -> Self {
        Elbv2Router {
            client,
            timeouts,
            groups: Mutex::new(HashMap::new()),
        }
    }

    pub fn timeouts(&self) -> &TrafficTimeouts {
        &self.timeouts
    }

    async fn route(
        &self,
        d: &Deployment,
        hosts: &[TargetId],
        direction: Direction,
    ) -> Result<Vec<(TargetId, LifecycleOutcome)>, PortError> {
        let mut tally = Tally::new();
        let lb = d.group.load_balancer_info.clone().unwrap_or_default();
        if let Some(message) = unsupported(&lb, direction) {
            tally.fail_all(hosts, &message);
            return Ok(tally.outcomes(hosts));
        }
        let names: Vec<&str> = lb
            .target_group_info_list
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        if names.is_empty() || hosts.is_empty() {
            return Ok(tally.outcomes(hosts));
        }
        let groups = match self.target_groups(&names, direction).await? {
            Ok(groups) => groups,
            Err(message) => {
                tally.fail_all(hosts, &format!("{}: {message}", direction.event()));
                return Ok(tally.outcomes(hosts));
            }
        };
        let timeout = match direction {
            Direction::Allow => self.timeouts.allow_timeout,
            Direction::Block => self.timeouts.block_timeout.unwrap_or_else(|| {
                groups
                    .iter()
                    .filter_map(|g| g.deregistration_delay)
                    .max()
                    .unwrap_or(DEFAULT_DEREGISTRATION_DELAY)
                    + self.timeouts.block_margin
            }),
        };
        let deadline = Instant::now() + timeout;
        let mut waits = Vec::new();
        for group in groups {
            let regs = match direction {
                Direction::Allow => {
                    let regs: Vec<Registration> = hosts
                        .iter()
                        .map(|h| Registration {
                            host: h.clone(),
                            port: None,
                            last: None,
                        })
                        .collect();
                    self.change(&group, direction, &regs, &mut tally).await?;
                    regs
                }
                Direction::Block => {
                    let regs = self.registrations(&group, hosts, &mut tally).await?;
                    let leaving: Vec<Registration> = regs
                        .iter()
                        .filter(|r| {
                            r.last.as_ref().is_none_or(|(state, _)| {
                                state != TargetHealthStateEnum::Draining.as_str()
                            })
                        })
                        .cloned()
                        .collect();
                    self.change(&group, direction, &leaving, &mut tally).await?;
                    regs
                }
            };
            let regs = regs
                .into_iter()
                .filter(|r| !tally.failed.contains_key(&r.host))
                .collect();
            waits.push((group, regs));
        }
        self.wait(direction, waits, deadline, timeout, &mut tally)
            .await?;
        Ok(tally.outcomes(hosts))
    }

    /// The named target groups, looked up once; `Err` with a message when one cannot be used.
    async fn target_groups(
        &self,
        names: &[&str],
        direction: Direction,
    ) -> Result<Result<Vec<TargetGroup>, String>, PortError> {
        let mut groups = Vec::with_capacity(names.len());
        for name in names {
            let cached = self.lock().get(*name).cloned();
            let mut group = match cached {
                Some(g) => g,
                None => match self.look_up(name).await? {
                    Ok(g) => g,
                    Err(message) => return Ok(Err(message)),
                },
            };
            if let Some(t) = group.target_type.as_deref().filter(|t| *t != "instance") {
                return Ok(Err(format!(
                    "target group '{name}' has the target type '{t}'; cutover registers hosts by instance id, which needs the 'instance' target type"
                )));
            }
            if direction == Direction::Block
                && self.timeouts.block_timeout.is_none()
                && group.deregistration_delay.is_none()
            {
                group.deregistration_delay = Some(self.deregistration_delay(&group).await?);
            }
            self.lock().insert((*name).to_owned(), group.clone());
            groups.push(group);
        }
        Ok(Ok(groups))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TargetGroup>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn look_up(&self, name: &str) -> Result<Result<TargetGroup, String>, PortError> {
        let out = self
            .client
            .describe_target_groups()
            .names(name)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) if e.code() == Some("TargetGroupNotFound") => {
                return Ok(Err(format!(
                    "target group '{name}' (loadBalancerInfo.targetGroupInfoList) does not exist in this account and region"
                )));
            }
            Err(e) => {
                let e = sdk_error("elasticloadbalancing:DescribeTargetGroups", e);
                return if e.retryable {
                    Err(e)
                } else {
                    Ok(Err(format!("target group '{name}': {}", e.message)))
                };
            }
        };
        let Some(found) = out
            .target_groups()
            .iter()
            .find(|g| g.target_group_name() == Some(name))
        else {
            return Ok(Err(format!(
                "target group '{name}' (loadBalancerInfo.targetGroupInfoList) does not exist in this account and region"
            )));
        };
        Ok(Ok(TargetGroup {
            name: name.to_owned(),
            arn: found.target_group_arn().unwrap_or_default().to_owned(),
            target_type: found.target_type().map(|t| t.as_str().to_owned()),
            deregistration_delay: None,
        }))
    }

    /// The group's deregistration delay; ELBv2's default if it cannot be read.
    async fn deregistration_delay(&self, group: &TargetGroup) -> Result<Duration, PortError> {
        let out = self
            .client
            .describe_target_group_attributes()
            .target_group_arn(&group.arn)
            .send()
            .await;
        match out {
            Ok(out) => Ok(out
                .attributes()
                .iter()
                .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
                .and_then(|a| a.value())
                .and_then(|v| v.parse().ok())
                .map_or(DEFAULT_DEREGISTRATION_DELAY, Duration::from_secs)),
            Err(e) => {
                let e = sdk_error("elasticloadbalancing:DescribeTargetGroupAttributes", e);
                if e.retryable {
                    return Err(e);
                }
                tracing::warn!(
                    target_group = %group.name,
                    error = %e,
                    "cannot read the deregistration delay; waiting as for the default of 300 seconds"
                );
                Ok(DEFAULT_DEREGISTRATION_DELAY)
            }
        }
    }

    /// Where `hosts` are registered with `group` now (every port), with their state.
    async fn registrations(
        &self,
        group: &TargetGroup,
        hosts: &[TargetId],
        tally: &mut Tally,
    ) -> Result<Vec<Registration>, PortError> {
        let health = match self.health(group, None).await? {
            Ok(h) => h,
            Err(message) => {
                tally.fail_all(hosts, &format!("BlockTraffic: {message}"));
                return Ok(Vec::new());
            }
        };
        Ok(health
            .into_iter()
            .filter(|h| h.state != TargetHealthStateEnum::Unused)
            .filter_map(|h| {
                let host = hosts.iter().find(|t| t.as_str() == h.id)?;
                Some(Registration {
                    host: host.clone(),
                    port: h.port,
                    last: Some(h.describe()),
                })
            })
            .collect())
    }

    /// DescribeTargetHealth for `regs` (every registered target when `None`); `Err` with a
    /// message when the request cannot pass.
    async fn health(
        &self,
        group: &TargetGroup,
        regs: Option<&[Registration]>,
    ) -> Result<Result<Vec<Health>, String>, PortError> {
        let targets = regs.map(|regs| regs.iter().map(target).collect());
        let out = self
            .client
            .describe_target_health()
            .target_group_arn(&group.arn)
            .set_targets(targets)
            .send()
            .await;
        match out {
            Ok(out) => Ok(Ok(out
                .target_health_descriptions()
                .iter()
                .filter_map(|d| {
                    let t = d.target()?;
                    let h = d.target_health();
                    Some(Health {
                        id: t.id().unwrap_or_default().to_owned(),
                        port: t.port(),
                        state: h
                            .and_then(|h| h.state())
                            .cloned()
                            .unwrap_or(TargetHealthStateEnum::Unused),
                        reason: h.and_then(|h| h.reason()).map(|r| r.as_str().to_owned()),
                        description: h.and_then(|h| h.description()).map(str::to_owned),
                    })
                })
                .collect())),
            Err(e) => {
                let e = self.sdk_error("elasticloadbalancing:DescribeTargetHealth", group, e);
                if e.retryable {
                    Err(e)
                } else {
                    Ok(Err(format!("target group '{}': {}", group.name, e.message)))
                }
            }
        }
    }

    /// A target group that vanished (or was made again under its name) is looked up again by
    /// name on the next try: the error becomes transient.
    fn sdk_error<E>(&self, action: &str, group: &TargetGroup, e: SdkError<E>) -> PortError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if e.code() == Some("TargetGroupNotFound") {
            self.lock().remove(&group.name);
            return PortError::transient(format!(
                "{action}: target group '{}' ({}) is gone; it will be looked up again by name",
                group.name, group.arn
            ));
        }
        sdk_error(action, e)
    }

    /// Registers or deregisters `regs`, in batches; a batch that is refused is tried host by
    /// host, so that only the hosts at fault fail.
    async fn change(
        &self,
        group: &TargetGroup,
        direction: Direction,
        regs: &[Registration],
        tally: &mut Tally,
    ) -> Result<(), PortError> {
        for chunk in regs.chunks(TARGETS_PER_CALL) {
            let Err(message) = self.send_change(group, direction, chunk).await? else {
                continue;
            };
            if chunk.len() == 1 {
                tally.fail(&chunk[0].host, message);
                continue;
            }
            for r in chunk {
                if let Err(message) = self
                    .send_change(group, direction, std::slice::from_ref(r))
                    .await?
                {
                    tally.fail(&r.host, message);
                }
            }
        }
        Ok(())
    }

    async fn send_change(
        &self,
        group: &TargetGroup,
        direction: Direction,
        regs: &[Registration],
    ) -> Result<Result<(), String>, PortError> {
        let targets: Vec<TargetDescription> = regs.iter().map(target).collect();
        let (action, result) = match direction {
            Direction::Allow => (
                "elasticloadbalancing:RegisterTargets",
                self.client
                    .register_targets()
                    .target_group_arn(&group.arn)
                    .set_targets(Some(targets))
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| self.sdk_error("elasticloadbalancing:RegisterTargets", group, e)),
            ),
            Direction::Block => (
                "elasticloadbalancing:DeregisterTargets",
                self.client
                    .deregister_targets()
                    .target_group_arn(&group.arn)
                    .set_targets(Some(targets))
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| {
                        self.sdk_error("elasticloadbalancing:DeregisterTargets", group, e)
                    }),
            ),
        };
        match result {
            Ok(()) => Ok(Ok(())),
            Err(e) if e.retryable => Err(e),
            Err(e) => {
                let hosts: Vec<&str> = regs.iter().map(|r| r.host.as_str()).collect();
                Ok(Err(format!(
                    "{}: target group '{}' refused {} ({action}): {}",
                    direction.event(),
                    group.name,
                    hosts.join(", "),
                    e.message
                )))
            }
        }
    }

    /// Reads the health of the waiting registrations until each is done or time runs out.
    async fn wait(
        &self,
        direction: Direction,
        mut waits: Vec<(TargetGroup, Vec<Registration>)>,
        deadline: Instant,
        timeout: Duration,
        tally: &mut Tally,
    ) -> Result<(), PortError> {
        loop {
            for (group, regs) in &mut waits {
                regs.retain(|r| !tally.failed.contains_key(&r.host));
                if regs.is_empty() {
                    continue;
                }
                let health = match self.health(group, Some(regs)).await? {
                    Ok(h) => h,
                    Err(message) => {
                        for r in regs.drain(..) {
                            tally.fail(&r.host, format!("{}: {message}", direction.event()));
                        }
                        continue;
                    }
                };
                for r in regs.iter_mut() {
                    let seen = health.iter().find(|h| {
                        h.id == r.host.as_str() && (r.port.is_none() || h.port == r.port)
                    });
                    match seen {
                        Some(h) if !direction.done(h) => r.last = Some(h.describe()),
                        None if direction == Direction::Allow => {
                            r.last = Some((
                                "unknown".into(),
                                "DescribeTargetHealth does not list it".into(),
                            ));
                        }
                        // Done, or no longer registered at all.
                        _ => {
                            r.last = None;
                            tally.ended.insert(r.host.clone(), now());
                        }
                    }
                }
                regs.retain(|r| r.last.is_some());
            }
            if waits.iter().all(|(_, regs)| regs.is_empty()) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                for (group, regs) in &waits {
                    for r in regs {
                        let (state, why) = r.last.clone().unwrap_or_default();
                        let wanted = match direction {
                            Direction::Block => "has not left",
                            Direction::Allow => "is not healthy in",
                        };
                        let why = if why.is_empty() {
                            String::new()
                        } else {
                            format!(" ({why})")
                        };
                        tally.fail(
                            &r.host,
                            format!(
                                "{}: {} {wanted} target group '{}' after {}: its state is {state}{why}",
                                direction.event(),
                                r.host,
                                group.name,
                                seconds(timeout)
                            ),
                        );
                    }
                }
                return Ok(());
            }
            tokio::time::sleep(self.timeouts.poll_interval.min(deadline - Instant::now())).await;
        }
    }
}

impl TrafficRouter for Elbv2Router {
    async fn block(
        &self,
        d: &Deployment,
        targets: &[TargetId],
    ) -> Result<Vec<(TargetId, LifecycleOutcome)>, PortError> {
        self.route(d, targets, Direction::Block).await
    }

    async fn allow(
        &self,
        d: &Deployment,
        targets: &[TargetId],
    ) -> Result<Vec<(TargetId, LifecycleOutcome)>, PortError> {
        self.route(d, targets, Direction::Allow).await
    }
}

/// Why this router cannot route the group's traffic, if it cannot.
fn unsupported(lb: &LoadBalancerInfo, direction: Direction) -> Option<String> {
    if lb.elb_info_list.is_empty() {
        return None;
    }
    let names: Vec<String> = lb
        .elb_info_list
        .iter()
        .map(|e| format!("'{}'", e.name))
        .collect();
    Some(format!(
        "{}: Classic Load Balancers (loadBalancerInfo.elbInfoList: {}) are not supported; put the instances in an Application or Network Load Balancer target group and name it in loadBalancerInfo.targetGroupInfoList",
        direction.event(),
        names.join(", ")
    ))
}

fn target(r: &Registration) -> TargetDescription {
    TargetDescription::builder()
        .id(r.host.as_str())
        .set_port(r.port)
        .build()
}

/// A duration for messages: `300s`, or `0.5s` below a second.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
