//! The fleet over AWS: a deployment's targets are the running EC2 instances its tag filters or tag
//! sets match, the in-service members of its Auto Scaling groups, and the SSM-managed on-premises
//! instances (`mi-...`) its on-premises tag filters or tag sets match.
//!
//! Tag matching follows CodeDeploy: a filter list matches a host that matches any one filter; a
//! tag set matches a host that matches at least one filter of every group. EC2 filters find the
//! candidates (`tag:Key`, `tag-key`, `tag-value`), and every candidate is then checked against the
//! filters with its own tags, so EC2's wildcards (`*`, `?`) never widen a match. SSM's
//! DescribeInstanceInformation knows `tag:Key` and `tag-key` but has no `tag-value` filter, so
//! on-premises filters that need one are matched by reading each managed instance's tags.

use std::collections::{BTreeMap, BTreeSet};

use aws_config::SdkConfig;
use aws_sdk_autoscaling as autoscaling;
use aws_sdk_ec2 as ec2;
use aws_sdk_ssm as ssm;
use aws_sdk_ssm::error::ProvideErrorMetadata;
use cutover_core::TargetId;
use cutover_core::machine::Deployment;
use cutover_core::model::{ErrorCode, ErrorInformation, TagFilter, TagFilterType, TagSet};
use cutover_engine::{Fleet, PortError, Resolution};

use crate::error::port_error as sdk_error;
use futures_util::{StreamExt, TryStreamExt, stream};

/// The most values EC2 takes in one filter.
const EC2_FILTER_VALUES: usize = 200;
/// The most values SSM takes in one DescribeInstanceInformation filter.
const SSM_FILTER_VALUES: usize = 100;
/// The most instance ids SSM takes in one `InstanceIds` filter.
const SSM_INSTANCE_IDS: usize = 50;
/// The most Auto Scaling group names asked for in one DescribeAutoScalingGroups call.
const ASG_NAMES_PER_CALL: usize = 50;
/// How many managed instances' tags are read at the same time.
const TAG_READS_IN_FLIGHT: usize = 8;

/// Finds targets among EC2 instances, Auto Scaling groups and SSM-managed instances.
#[derive(Clone, Debug)]
pub struct Ec2Fleet {
    ec2: ec2::Client,
    autoscaling: autoscaling::Client,
    ssm: ssm::Client,
}

impl Ec2Fleet {
    /// A fleet whose clients share `config` (credentials, region, endpoint).
    pub fn new(config: &SdkConfig) -> Self {
        Ec2Fleet::from_clients(
            ec2::Client::new(config),
            autoscaling::Client::new(config),
            ssm::Client::new(config),
        )
    }

    /// A fleet over clients built elsewhere (each may have its own endpoint).
    pub fn from_clients(
        ec2: ec2::Client,
        autoscaling: autoscaling::Client,
        ssm: ssm::Client,
    ) -> Self {
        Ec2Fleet {
            ec2,
            autoscaling,
            ssm,
        }
    }

    /// The ids of the hosts `selection` picks, sorted and without duplicates, or why they cannot
    /// be found.
    pub async fn find(
        &self,
        selection: &Selection,
    ) -> Result<Result<BTreeSet<String>, ErrorInformation>, PortError> {
        let mut ids = BTreeSet::new();
        for criterion in &selection.ec2 {
            ids.extend(self.ec2_matching(&criterion.set).await?);
        }
        if !selection.auto_scaling_groups.is_empty() {
            match self
                .auto_scaling_members(selection, &selection.auto_scaling_groups)
                .await?
            {
                Ok(members) => ids.extend(members),
                Err(error) => return Ok(Err(error)),
            }
        }
        for criterion in &selection.on_premises {
            ids.extend(self.managed_instances_matching(&criterion.set).await?);
        }
        Ok(Ok(ids))
    }

    /// Running EC2 instances that `set` matches.
    async fn ec2_matching(&self, set: &TagSet) -> Result<BTreeSet<String>, PortError> {
        // Any one group bounds the candidates; the whole set decides on each one's tags.
        let Some(first) = set.0.first() else {
            return Ok(BTreeSet::new());
        };
        let mut candidates = BTreeMap::new();
        for query in ec2_queries(first) {
            candidates.extend(self.running_instances(query.filter()).await?);
        }
        Ok(candidates
            .into_iter()
            .filter(|(_, tags)| set.matches(tags))
            .map(|(id, _)| id)
            .collect())
    }

    /// Running EC2 instances (id and tags) that `filter` selects, every page of them.
    async fn running_instances(
        &self,
        filter: Option<ec2::types::Filter>,
    ) -> Result<BTreeMap<String, Vec<(String, String)>>, PortError> {
        let running = ec2::types::Filter::builder()
            .name("instance-state-name")
            .values("running")
            .build();
        let mut request = self.ec2.describe_instances().filters(running);
        if let Some(filter) = filter {
            request = request.filters(filter);
        }
        let mut pages = request.into_paginator().page_size(1000).send();
        let mut found = BTreeMap::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("ec2:DescribeInstances", e))?;
            for instance in page.reservations().iter().flat_map(|r| r.instances()) {
                let running = instance.state().and_then(|s| s.name())
                    == Some(&ec2::types::InstanceStateName::Running);
                let Some(id) = instance.instance_id().filter(|_| running) else {
                    continue;
                };
                let tags = instance
                    .tags()
                    .iter()
                    .map(|t| {
                        (
                            t.key().unwrap_or_default().to_owned(),
                            t.value().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect();
                found.insert(id.to_owned(), tags);
            }
        }
        Ok(found)
    }

    /// The InService members of the named Auto Scaling groups that are running, or an error
    /// naming the groups that do not exist.
    async fn auto_scaling_members(
        &self,
        selection: &Selection,
        names: &[String],
    ) -> Result<Result<BTreeSet<String>, ErrorInformation>, PortError> {
        let mut seen = BTreeSet::new();
        let mut in_service = BTreeSet::new();
        for chunk in names.chunks(ASG_NAMES_PER_CALL) {
            let mut pages = self
                .autoscaling
                .describe_auto_scaling_groups()
                .set_auto_scaling_group_names(Some(chunk.to_vec()))
                .into_paginator()
                .page_size(100)
                .send();
            while let Some(page) = pages.next().await {
                let page =
                    page.map_err(|e| sdk_error("autoscaling:DescribeAutoScalingGroups", e))?;
                for group in page.auto_scaling_groups() {
                    seen.insert(
                        group
                            .auto_scaling_group_name()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                    in_service.extend(
                        group
                            .instances()
                            .iter()
                            .filter(|i| {
                                i.lifecycle_state()
                                    == Some(&autoscaling::types::LifecycleState::InService)
                            })
                            .filter_map(|i| i.instance_id().map(str::to_owned)),
                    );
                }
            }
        }
        let missing: Vec<&str> = names
            .iter()
            .filter(|n| !seen.contains(n.as_str()))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Ok(Err(ErrorInformation::new(
                ErrorCode::AutoScalingConfiguration,
                format!(
                    "{} names Auto Scaling groups that do not exist in this account and region: {}. Remove them from {} or create them.",
                    selection.source,
                    quoted(&missing),
                    selection.auto_scaling_groups_field,
                ),
            )));
        }
        // An instance can be InService while EC2 already stops it; deploy only to running ones.
        let ids: Vec<String> = in_service.into_iter().collect();
        Ok(Ok(self.running_among(&ids).await?))
    }

    /// Those of the EC2 instances `ids` that run.
    async fn running_among(&self, ids: &[String]) -> Result<BTreeSet<String>, PortError> {
        let mut running = BTreeSet::new();
        for chunk in ids.chunks(EC2_FILTER_VALUES) {
            let filter = ec2::types::Filter::builder()
                .name("instance-id")
                .set_values(Some(chunk.to_vec()))
                .build();
            running.extend(self.running_instances(Some(filter)).await?.into_keys());
        }
        Ok(running)
    }

    /// Those of `ids` that run and whose SSM agent is online: the hosts a command can reach.
    pub async fn reachable(&self, ids: &[String]) -> Result<BTreeSet<String>, PortError> {
        let (ec2_ids, managed): (Vec<String>, Vec<String>) =
            ids.iter().cloned().partition(|id| id.starts_with("i-"));
        let mut running = self.running_among(&ec2_ids).await?;
        running.extend(managed);
        let running: Vec<String> = running.into_iter().collect();
        let mut online = BTreeSet::new();
        for chunk in running.chunks(SSM_INSTANCE_IDS) {
            let mut pages = self
                .ssm
                .describe_instance_information()
                .filters(ssm_filter("InstanceIds", chunk.to_vec())?)
                .filters(ssm_filter("PingStatus", vec!["Online".into()])?)
                .into_paginator()
                .page_size(50)
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| sdk_error("ssm:DescribeInstanceInformation", e))?;
                online.extend(
                    page.instance_information_list()
                        .iter()
                        .filter(|i| i.ping_status() == Some(&ssm::types::PingStatus::Online))
                        .filter_map(|i| i.instance_id().map(str::to_owned)),
                );
            }
        }
        Ok(online)
    }

    /// SSM-managed on-premises instances (not EC2 instances) that `set` matches.
    async fn managed_instances_matching(
        &self,
        set: &TagSet,
    ) -> Result<BTreeSet<String>, PortError> {
        match on_premises_plan(set) {
            OnPremisesPlan::Nothing => Ok(BTreeSet::new()),
            OnPremisesPlan::Filters(groups) => {
                let mut matched: Option<BTreeSet<String>> = None;
                for group in groups {
                    let mut any = BTreeSet::new();
                    for query in group {
                        any.extend(self.managed_instances(Some(query)).await?);
                    }
                    matched = Some(match matched {
                        None => any,
                        Some(all) => all.intersection(&any).cloned().collect(),
                    });
                    if matched.as_ref().is_some_and(BTreeSet::is_empty) {
                        break;
                    }
                }
                Ok(matched.unwrap_or_default())
            }
            OnPremisesPlan::ReadTags => {
                let ids = self.managed_instances(None).await?;
                let tagged: Vec<(String, Vec<(String, String)>)> = stream::iter(ids)
                    .map(|id| async move {
                        let tags = self.managed_instance_tags(&id).await?;
                        Ok::<_, PortError>((id, tags))
                    })
                    .buffer_unordered(TAG_READS_IN_FLIGHT)
                    .try_collect()
                    .await?;
                Ok(tagged
                    .into_iter()
                    .filter(|(_, tags)| set.matches(tags))
                    .map(|(id, _)| id)
                    .collect())
            }
        }
    }

    /// Registered managed instances (ResourceType ManagedInstance), filtered by one tag query.
    async fn managed_instances(&self, query: Option<SsmQuery>) -> Result<Vec<String>, PortError> {
        let mut filters = vec![ssm_filter("ResourceType", vec!["ManagedInstance".into()])?];
        if let Some(q) = query {
            filters.push(ssm_filter(&q.key, q.values)?);
        }
        let mut pages = self
            .ssm
            .describe_instance_information()
            .set_filters(Some(filters))
            .into_paginator()
            .page_size(50)
            .send();
        let mut ids = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("ssm:DescribeInstanceInformation", e))?;
            ids.extend(
                page.instance_information_list()
                    .iter()
                    .filter(|i| i.ping_status() != Some(&ssm::types::PingStatus::Inactive))
                    .filter(|i| i.resource_type() != Some(&ssm::types::ResourceType::Ec2Instance))
                    .filter_map(|i| i.instance_id().map(str::to_owned)),
            );
        }
        Ok(ids)
    }

    /// A managed instance's tags; none if it was deregistered meanwhile.
    async fn managed_instance_tags(&self, id: &str) -> Result<Vec<(String, String)>, PortError> {
        let out = self
            .ssm
            .list_tags_for_resource()
            .resource_type(ssm::types::ResourceTypeForTagging::ManagedInstance)
            .resource_id(id)
            .send()
            .await;
        match out {
            Ok(out) => Ok(out
                .tag_list()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect()),
            Err(e) if e.code() == Some("InvalidResourceId") => Ok(Vec::new()),
            Err(e) => Err(sdk_error("ssm:ListTagsForResource", e)),
        }
    }
}

impl Fleet for Ec2Fleet {
    async fn resolve(&self, d: &Deployment) -> Result<Resolution, PortError> {
        let selection = Selection::of(d);
        if selection.is_empty() {
            return Ok(Resolution::Unresolved(ErrorInformation::new(
                ErrorCode::NoInstances,
                format!(
                    "{} names no targets: set ec2TagFilters, ec2TagSet, onPremisesInstanceTagFilters, onPremisesTagSet or autoScalingGroups",
                    selection.source
                ),
            )));
        }
        Ok(match self.find(&selection).await? {
            Err(error) => Resolution::Unresolved(error),
            Ok(ids) if ids.is_empty() => Resolution::Unresolved(ErrorInformation::new(
                ErrorCode::NoInstances,
                format!(
                    "No instances were found for {}: nothing matches {}. Check that the tags and Auto Scaling groups identify the instances to deploy to, that EC2 instances are running and that on-premises instances are registered with Systems Manager.",
                    selection.source,
                    selection.describe()
                ),
            )),
            Ok(ids) => Resolution::Targets(ids.into_iter().map(TargetId::new).collect()),
        })
    }
}

/// What a deployment deploys to: the group's tag filters, tag sets and Auto Scaling groups, or
/// the deployment's own `targetInstances` in their place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Who chose these targets, for messages ("deployment group 'web'").
    pub source: String,
    /// EC2 instances: each criterion adds the running instances it matches.
    pub ec2: Vec<TagCriterion>,
    pub auto_scaling_groups: Vec<String>,
    /// The field `auto_scaling_groups` came from, for messages.
    pub auto_scaling_groups_field: &'static str,
    /// SSM-managed on-premises instances: each criterion adds the ones it matches.
    pub on_premises: Vec<TagCriterion>,
}

/// One field of tag filters or one tag set. A plain filter list is a tag set of one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagCriterion {
    /// The field it came from, for messages (`ec2TagFilters`, `onPremisesTagSet`...).
    pub field: &'static str,
    pub set: TagSet,
}

impl Selection {
    /// The hosts a deployment starts on: the deployment's `targetInstances` when they name any
    /// target, else its group's settings. A blue/green deployment starts on its group's hosts,
    /// the originals; its `targetInstances` name the replacements.
    pub fn of(d: &Deployment) -> Selection {
        match Selection::target_instances(d) {
            Some(selection) if !d.is_blue_green() => selection,
            _ => Selection::group(d),
        }
    }

    /// The deployment's `targetInstances`, if they name any target.
    pub fn target_instances(d: &Deployment) -> Option<Selection> {
        let t = d.options.target_instances.as_ref().filter(|t| {
            !t.tag_filters.is_empty()
                || t.ec2_tag_set
                    .as_ref()
                    .is_some_and(|s| !s.ec2_tag_set_list.0.is_empty())
                || !t.auto_scaling_groups.is_empty()
        })?;
        Some(Selection {
            source: format!(
                "the targetInstances of deployment {} (deployment group '{}')",
                d.deployment_id, d.group.deployment_group_name
            ),
            ec2: criteria(
                ("targetInstances.tagFilters", &t.tag_filters),
                (
                    "targetInstances.ec2TagSet",
                    t.ec2_tag_set.as_ref().map(|s| &s.ec2_tag_set_list),
                ),
            ),
            auto_scaling_groups: t.auto_scaling_groups.clone(),
            auto_scaling_groups_field: "targetInstances.autoScalingGroups",
            on_premises: Vec::new(),
        })
    }

    /// The group's tag filters, tag sets and Auto Scaling groups.
    pub fn group(d: &Deployment) -> Selection {
        let g = &d.group;
        Selection {
            source: format!("deployment group '{}'", g.deployment_group_name),
            ec2: criteria(
                ("ec2TagFilters", &g.ec2_tag_filters),
                (
                    "ec2TagSet",
                    g.ec2_tag_set.as_ref().map(|s| &s.ec2_tag_set_list),
                ),
            ),
            auto_scaling_groups: g
                .auto_scaling_groups
                .iter()
                .map(|a| a.name.clone())
                .collect(),
            auto_scaling_groups_field: "autoScalingGroups",
            on_premises: criteria(
                (
                    "onPremisesInstanceTagFilters",
                    &g.on_premises_instance_tag_filters,
                ),
                (
                    "onPremisesTagSet",
                    g.on_premises_tag_set
                        .as_ref()
                        .map(|s| &s.on_premises_tag_set_list),
                ),
            ),
        }
    }

    /// True when nothing names a target.
    pub fn is_empty(&self) -> bool {
        self.ec2.is_empty() && self.auto_scaling_groups.is_empty() && self.on_premises.is_empty()
    }

    /// The criteria in words: `ec2TagFilters (Env=prod OR key Role)`, `autoScalingGroups ('asg')`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .ec2
            .iter()
            .chain(&self.on_premises)
            .map(TagCriterion::describe)
            .collect();
        if !self.auto_scaling_groups.is_empty() {
            let names: Vec<&str> = self
                .auto_scaling_groups
                .iter()
                .map(String::as_str)
                .collect();
            parts.push(format!(
                "{} ({})",
                self.auto_scaling_groups_field,
                quoted(&names)
            ));
        }
        parts.join(", ")
    }
}

impl TagCriterion {
    fn describe(&self) -> String {
        let groups: Vec<String> = self
            .set
            .0
            .iter()
            .map(|group| {
                let any: Vec<String> = group.iter().map(describe_filter).collect();
                any.join(" OR ")
            })
            .collect();
        match groups.as_slice() {
            [one] => format!("{} ({one})", self.field),
            many => format!("{} (({}))", self.field, many.join(") AND (")),
        }
    }
}

fn criteria(
    plain: (&'static str, &[TagFilter]),
    set: (&'static str, Option<&TagSet>),
) -> Vec<TagCriterion> {
    let mut out = Vec::new();
    if !plain.1.is_empty() {
        out.push(TagCriterion {
            field: plain.0,
            set: TagSet(vec![plain.1.to_vec()]),
        });
    }
    if let Some(s) = set.1.filter(|s| !s.0.is_empty()) {
        out.push(TagCriterion {
            field: set.0,
            set: s.clone(),
        });
    }
    out
}

fn describe_filter(f: &TagFilter) -> String {
    let key = f.key.as_deref().unwrap_or_default();
    let value = f.value.as_deref().unwrap_or_default();
    match f.filter_type {
        TagFilterType::KeyOnly => format!("key {key}"),
        TagFilterType::ValueOnly => format!("value {value}"),
        TagFilterType::KeyAndValue => format!("{key}={value}"),
    }
}

fn quoted(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    quoted.join(", ")
}

/// One DescribeInstances call that finds candidates for a group of filters.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ec2Query {
    /// An EC2 filter by name (`tag:Key`, `tag-key`, `tag-value`) and its values (any of them).
    Filter { name: String, values: Vec<String> },
    /// Every running instance (a VALUE_ONLY filter for the empty value).
    AllRunning,
}

impl Ec2Query {
    fn filter(&self) -> Option<ec2::types::Filter> {
        match self {
            Ec2Query::AllRunning => None,
            Ec2Query::Filter { name, values } => Some(
                ec2::types::Filter::builder()
                    .name(name)
                    .set_values(Some(values.clone()))
                    .build(),
            ),
        }
    }
}

/// The DescribeInstances calls that together find every instance matching at least one filter
/// of `group` (and possibly more, which the tag check removes). KEY_AND_VALUE filters of one key
/// share a `tag:Key` filter; KEY_ONLY filters share `tag-key`; VALUE_ONLY share `tag-value`. A
/// filter without a key matches nothing: EC2 tag keys are never empty.
fn ec2_queries(group: &[TagFilter]) -> Vec<Ec2Query> {
    let mut keys = BTreeSet::new();
    let mut by_key: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut values = BTreeSet::new();
    for f in group {
        let key = f.key.as_deref().unwrap_or_default();
        let value = f.value.as_deref().unwrap_or_default();
        match f.filter_type {
            TagFilterType::KeyOnly | TagFilterType::KeyAndValue if key.is_empty() => {}
            TagFilterType::KeyOnly => {
                keys.insert(key.to_owned());
            }
            // EC2 filter values cannot be empty; the key alone finds the candidates.
            TagFilterType::KeyAndValue if value.is_empty() => {
                keys.insert(key.to_owned());
            }
            TagFilterType::KeyAndValue => {
                by_key.entry(key).or_default().insert(value.to_owned());
            }
            TagFilterType::ValueOnly if value.is_empty() => return vec![Ec2Query::AllRunning],
            TagFilterType::ValueOnly => {
                values.insert(value.to_owned());
            }
        }
    }
    let mut queries = Vec::new();
    let mut chunked = |name: String, set: BTreeSet<String>| {
        let all: Vec<String> = set.into_iter().collect();
        for chunk in all.chunks(EC2_FILTER_VALUES) {
            queries.push(Ec2Query::Filter {
                name: name.clone(),
                values: chunk.to_vec(),
            });
        }
    };
    for (key, wanted) in by_key {
        // Instances with the key at all are found by `tag-key` already.
        if !keys.contains(key) {
            chunked(format!("tag:{key}"), wanted);
        }
    }
    if !keys.is_empty() {
        chunked("tag-key".into(), keys);
    }
    if !values.is_empty() {
        chunked("tag-value".into(), values);
    }
    queries
}

/// One DescribeInstanceInformation string filter on tags: `tag:Key` or `tag-key`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SsmQuery {
    key: String,
    values: Vec<String>,
}

/// How to find the managed instances that a tag set matches.
#[derive(Clone, Debug, PartialEq, Eq)]
enum OnPremisesPlan {
    /// Every filter has an exact SSM filter: an instance matches a group if one of the group's
    /// queries finds it, and the set if it matches every group.
    Filters(Vec<Vec<SsmQuery>>),
    /// Some filter has no SSM equivalent (VALUE_ONLY, or an empty value): read every managed
    /// instance's tags and match them here.
    ReadTags,
    /// A group can match no instance, so the set matches none.
    Nothing,
}

fn on_premises_plan(set: &TagSet) -> OnPremisesPlan {
    let mut groups = Vec::new();
    for group in &set.0 {
        let mut keys = BTreeSet::new();
        let mut by_key: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for f in group {
            let key = f.key.as_deref().unwrap_or_default();
            let value = f.value.as_deref().unwrap_or_default();
            match f.filter_type {
                TagFilterType::ValueOnly => return OnPremisesPlan::ReadTags,
                TagFilterType::KeyOnly | TagFilterType::KeyAndValue if key.is_empty() => {}
                TagFilterType::KeyAndValue if value.is_empty() => return OnPremisesPlan::ReadTags,
                TagFilterType::KeyOnly => {
                    keys.insert(key.to_owned());
                }
                TagFilterType::KeyAndValue => {
                    by_key.entry(key).or_default().insert(value.to_owned());
                }
            }
        }
        let mut queries = Vec::new();
        let mut chunked = |key: String, set: BTreeSet<String>| {
            let all: Vec<String> = set.into_iter().collect();
            for chunk in all.chunks(SSM_FILTER_VALUES) {
                queries.push(SsmQuery {
                    key: key.clone(),
                    values: chunk.to_vec(),
                });
            }
        };
        for (key, wanted) in by_key {
            if !keys.contains(key) {
                chunked(format!("tag:{key}"), wanted);
            }
        }
        if !keys.is_empty() {
            chunked("tag-key".into(), keys);
        }
        if queries.is_empty() {
            return OnPremisesPlan::Nothing;
        }
        groups.push(queries);
    }
    if groups.is_empty() {
        OnPremisesPlan::Nothing
    } else {
        OnPremisesPlan::Filters(groups)
    }
}

fn ssm_filter(
    key: &str,
    values: Vec<String>,
) -> Result<ssm::types::InstanceInformationStringFilter, PortError> {
    ssm::types::InstanceInformationStringFilter::builder()
        .key(key)
        .set_values(Some(values))
        .build()
        .map_err(|e| PortError::permanent(format!("ssm filter {key}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_core::config;
    use cutover_core::machine::CreateDeployment;
    use cutover_core::model::{
        AutoScalingGroup, DeploymentGroupInfo, Ec2TagSet, LocalLocation, OnPremisesTagSet,
        RevisionLocation, TargetInstances,
    };
    use cutover_core::{DeploymentId, Timestamp};

    fn f(t: TagFilterType, key: &str, value: &str) -> TagFilter {
        TagFilter {
            key: (!key.is_empty()).then(|| key.to_owned()),
            value: (!value.is_empty()).then(|| value.to_owned()),
            filter_type: t,
        }
    }

    fn q(name: &str, values: &[&str]) -> Ec2Query {
        Ec2Query::Filter {
            name: name.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn s(key: &str, values: &[&str]) -> SsmQuery {
        SsmQuery {
            key: key.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    use TagFilterType::{KeyAndValue as KV, KeyOnly as K, ValueOnly as V};

    #[test]
    fn each_filter_type_becomes_its_ec2_filter() {
        assert_eq!(
            ec2_queries(&[f(K, "Env", "")]),
            vec![q("tag-key", &["Env"])]
        );
        assert_eq!(
            ec2_queries(&[f(V, "", "prod")]),
            vec![q("tag-value", &["prod"])]
        );
        assert_eq!(
            ec2_queries(&[f(KV, "Env", "prod")]),
            vec![q("tag:Env", &["prod"])]
        );
        // One call per key for values of the same key; keys and values share their filters.
        assert_eq!(
            ec2_queries(&[
                f(KV, "Env", "prod"),
                f(KV, "Env", "beta"),
                f(KV, "Role", "web"),
                f(K, "Team", ""),
                f(K, "Owner", ""),
                f(V, "", "x"),
            ]),
            vec![
                q("tag:Env", &["beta", "prod"]),
                q("tag:Role", &["web"]),
                q("tag-key", &["Owner", "Team"]),
                q("tag-value", &["x"]),
            ]
        );
    }

    #[test]
    fn ec2_queries_for_odd_filters_stay_a_superset() {
        // A key already asked for by `tag-key` needs no `tag:Key` call.
        assert_eq!(
            ec2_queries(&[f(KV, "Env", "prod"), f(K, "Env", "")]),
            vec![q("tag-key", &["Env"])]
        );
        // An empty value: the key finds the candidates; the tag check decides.
        assert_eq!(
            ec2_queries(&[f(KV, "Env", "")]),
            vec![q("tag-key", &["Env"])]
        );
        assert_eq!(ec2_queries(&[f(V, "", "")]), vec![Ec2Query::AllRunning]);
        // No key: nothing can match.
        assert_eq!(ec2_queries(&[f(K, "", "")]), vec![]);
        assert_eq!(ec2_queries(&[f(KV, "", "prod")]), vec![]);
        // Values beyond EC2's limit per filter are split.
        let many: Vec<TagFilter> = (0..450).map(|i| f(V, "", &format!("v{i:03}"))).collect();
        let queries = ec2_queries(&many);
        assert_eq!(queries.len(), 3);
        assert!(matches!(&queries[2], Ec2Query::Filter { values, .. } if values.len() == 50));
    }

    #[test]
    fn on_premises_filters_use_ssm_tag_filters_where_they_exist() {
        let set = TagSet(vec![
            vec![
                f(KV, "Env", "prod"),
                f(KV, "Env", "beta"),
                f(K, "Canary", ""),
            ],
            vec![f(KV, "Role", "web")],
        ]);
        assert_eq!(
            on_premises_plan(&set),
            OnPremisesPlan::Filters(vec![
                vec![s("tag:Env", &["beta", "prod"]), s("tag-key", &["Canary"])],
                vec![s("tag:Role", &["web"])],
            ])
        );
        // SSM has no `tag-value` filter and no empty values.
        for odd in [f(V, "", "prod"), f(KV, "Env", "")] {
            let set = TagSet(vec![vec![f(K, "Env", "")], vec![odd]]);
            assert_eq!(on_premises_plan(&set), OnPremisesPlan::ReadTags);
        }
        // A group that cannot match makes the whole set match nothing.
        let set = TagSet(vec![vec![f(K, "Env", "")], vec![f(K, "", "")]]);
        assert_eq!(on_premises_plan(&set), OnPremisesPlan::Nothing);
        assert_eq!(on_premises_plan(&TagSet(vec![])), OnPremisesPlan::Nothing);
    }

    fn deployment(group: DeploymentGroupInfo, target: Option<TargetInstances>) -> Deployment {
        let mut req = CreateDeployment::new(
            DeploymentId::from_entropy(7),
            group,
            config::predefined(config::DEFAULT_SERVER_CONFIG).unwrap(),
            RevisionLocation::Local(LocalLocation {
                path: "/nonexistent".into(),
                bundle_type: None,
            }),
        );
        req.target_instances = target;
        Deployment::create(req, Timestamp::from_secs(1_700_000_000)).unwrap()
    }

    fn group() -> DeploymentGroupInfo {
        DeploymentGroupInfo {
            application_name: "App".into(),
            deployment_group_name: "Fleet".into(),
            deployment_group_id: "g-1".into(),
            ec2_tag_filters: vec![f(KV, "Env", "prod"), f(K, "Canary", "")],
            on_premises_tag_set: Some(OnPremisesTagSet {
                on_premises_tag_set_list: TagSet(vec![
                    vec![f(KV, "Site", "paris")],
                    vec![f(V, "", "web")],
                ]),
            }),
            auto_scaling_groups: vec![AutoScalingGroup {
                name: "asg-1".into(),
                hook: None,
                termination_hook: None,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn the_group_names_its_targets() {
        let sel = Selection::of(&deployment(group(), None));
        assert_eq!(sel.source, "deployment group 'Fleet'");
        assert_eq!(sel.ec2.len(), 1);
        assert_eq!(sel.ec2[0].field, "ec2TagFilters");
        assert_eq!(sel.ec2[0].set.0, vec![group().ec2_tag_filters]);
        assert_eq!(sel.auto_scaling_groups, vec!["asg-1".to_string()]);
        assert_eq!(sel.on_premises[0].field, "onPremisesTagSet");
        assert_eq!(
            sel.describe(),
            "ec2TagFilters (Env=prod OR key Canary), onPremisesTagSet ((Site=paris) AND (value web)), autoScalingGroups ('asg-1')"
        );
    }

    #[test]
    fn target_instances_replace_the_groups_targets() {
        let target = TargetInstances {
            ec2_tag_set: Some(Ec2TagSet {
                ec2_tag_set_list: TagSet(vec![vec![f(KV, "Color", "green")]]),
            }),
            auto_scaling_groups: vec!["green-asg".into()],
            ..Default::default()
        };
        let sel = Selection::of(&deployment(group(), Some(target)));
        assert!(sel.source.starts_with("the targetInstances of deployment"));
        assert_eq!(sel.ec2.len(), 1);
        assert_eq!(sel.ec2[0].field, "targetInstances.ec2TagSet");
        assert_eq!(sel.auto_scaling_groups, vec!["green-asg".to_string()]);
        assert_eq!(
            sel.auto_scaling_groups_field,
            "targetInstances.autoScalingGroups"
        );
        assert!(sel.on_premises.is_empty());

        // Empty targetInstances leave the group's targets in force.
        let sel = Selection::of(&deployment(group(), Some(TargetInstances::default())));
        assert_eq!(sel.source, "deployment group 'Fleet'");
    }

    #[test]
    fn a_blue_green_deployment_starts_on_its_group_and_its_target_instances_are_the_replacements() {
        let mut g = group();
        g.deployment_style.deployment_type = cutover_core::model::DeploymentType::BlueGreen;
        g.deployment_style.deployment_option =
            cutover_core::model::DeploymentOption::WithTrafficControl;
        g.load_balancer_info = Some(cutover_core::model::LoadBalancerInfo {
            target_group_info_list: vec![cutover_core::model::NamedResource { name: "web".into() }],
            ..Default::default()
        });
        g.blue_green_deployment_configuration = Some(Default::default());
        let target = TargetInstances {
            tag_filters: vec![f(KV, "Color", "green")],
            ..Default::default()
        };
        let d = deployment(g, Some(target));
        assert_eq!(Selection::of(&d).source, "deployment group 'Fleet'");
        let green = Selection::target_instances(&d).expect("targetInstances name hosts");
        assert_eq!(green.ec2[0].field, "targetInstances.tagFilters");
    }

    #[test]
    fn a_group_without_targets_selects_nothing() {
        let mut g = group();
        g.ec2_tag_filters.clear();
        g.on_premises_tag_set = None;
        g.auto_scaling_groups.clear();
        g.ec2_tag_set = Some(Ec2TagSet::default());
        assert!(Selection::of(&deployment(g, None)).is_empty());
    }
}
