//! The state table: one DynamoDB table, keyed PK/SK, as the design lays it out.
//!
//! | PK | SK | item |
//! |---|---|---|
//! | `APPS` | `<app>` | the list of applications |
//! | `APP#<app>` | `APP` | application (`body`) |
//! | `APP#<app>` | `GROUP#<group>` | deployment group (`body`), last successful deployment, the bucket of its upload trigger (`triggerBucket`) |
//! | `APP#<app>` | `LOCK#<group>` | the group's active deployment and its queue (`queue`, `version`) |
//! | `APP#<app>` | `REVISION#<hash of location>` | a registered revision (`location`, `body`, `registeredAt`, `version`) |
//! | `CONFIGS` | `<name>` | custom deployment configuration (`body`) |
//! | `TAGS#<resource>` | `TAGS` | the tags of an application or group (`tags`) |
//! | `INSTANCES` | `<name>` | an on-premises instance (`body`), and whether it is `registered` |
//! | `DEP#<id>` | `META` | deployment without its targets (`body`), `version`, the steps of its last commit (`next`) |
//! | `DEP#<id>` | `TARGET#<target>` | one target (`body`) and its place in the deployment (`idx`) |
//! | `DEPLOYMENTS` | `<create time, ms, 16 digits>#<id>` | the list of deployments (`application`, `group`) |
//! | `S3TRIGGER#<bucket>` | `APP#<app>#GROUP#<group>` | a group that deploys what is uploaded under `prefix` |
//! | `ACTIVE` | `DEP#<id>` | an unfinished deployment, for the watchdog |
//!
//! Every write of a deployment is conditional on the version it read, and writes the deployment
//! with the targets that changed in one transaction. The steps that follow are sent to SQS once
//! the write has succeeded; they are also kept on the deployment, so that the watchdog can send
//! them again if the process died in between.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use cutover_core::config::DeploymentConfigInfo;
use cutover_core::lock::{GroupQueue, LockDecision};
use cutover_core::machine::{Deployment, FinalStatus, PreviousDeployment, Target};
use cutover_core::model::{ApplicationInfo, ComputePlatform, DeploymentGroupInfo};
use cutover_core::{DeploymentId, Timestamp};
use cutover_engine::{Commit, PortError, Step, Store};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{code, port_error};
use crate::queue::SqsQueue;

/// A transaction holds at most 100 items.
pub(crate) const TRANSACTION_ITEMS: usize = 100;

/// How many times a lock update is tried again when another writer changed the lock first.
const LOCK_ATTEMPTS: usize = 50;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// A group that deploys what is uploaded to `bucket` under `key_prefix`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Trigger {
    pub bucket: String,
    pub key_prefix: String,
}

/// The state table, and the step queues that its commits feed.
#[derive(Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    queue: SqsQueue,
    /// The deployments this process read or wrote last, so that a commit writes only the
    /// targets that changed since.
    seen: Mutex<HashMap<DeploymentId, Deployment>>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>, queue: SqsQueue) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            queue,
            seen: Mutex::new(HashMap::new()),
        }
    }

    pub fn queue(&self) -> &SqsQueue {
        &self.queue
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    // ----- applications, groups, configurations ----------------------------------------------

    /// Saves a Server application of that name, unless one exists.
    pub async fn put_application(&self, name: &str) -> Result<(), PortError> {
        let app = ApplicationInfo {
            application_id: cutover_engine::ids::uuid(),
            application_name: name.to_owned(),
            create_time: crate::now(),
            linked_to_git_hub: false,
            git_hub_account_name: None,
            compute_platform: ComputePlatform::Server,
        };
        cutover_api::Registry::create_application(self, &app)
            .await
            .map(drop)
    }

    /// Saves a deployment group, and the upload that starts its deployments, if any. Its last
    /// successful deployment is kept.
    pub async fn put_group(
        &self,
        group: &DeploymentGroupInfo,
        trigger: Option<&S3Trigger>,
    ) -> Result<(), PortError> {
        let app = &group.application_name;
        let name = &group.deployment_group_name;
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(format!("APP#{app}")))
            .key("SK", s(format!("GROUP#{name}")))
            .update_expression("SET body = :body")
            .expression_attribute_values(":body", s(json(group)?));
        if let Some(trigger) = trigger {
            update = update
                .update_expression("SET body = :body, triggerBucket = :bucket")
                .expression_attribute_values(":bucket", s(&trigger.bucket));
        }
        update
            .send()
            .await
            .map_err(|e| port_error(format!("saving group {app}/{name}"), e))?;
        if let Some(trigger) = trigger {
            let item = item([
                ("PK", s(format!("S3TRIGGER#{}", trigger.bucket))),
                ("SK", s(format!("APP#{app}#GROUP#{name}"))),
                ("prefix", s(&trigger.key_prefix)),
                ("application", s(app)),
                ("group", s(name)),
            ]);
            self.put(item).await?;
        }
        Ok(())
    }

    /// The deployment group, if it exists.
    pub async fn group(
        &self,
        application: &str,
        group: &str,
    ) -> Result<Option<DeploymentGroupInfo>, PortError> {
        self.body(
            format!("APP#{application}"),
            format!("GROUP#{group}"),
            "group",
        )
        .await
    }

    /// Makes group `application`/`group` deploy to Auto Scaling group `to` where it named `from`,
    /// as a blue/green deployment's copy takes the original's place. A group that no longer
    /// names `from` (changed since, or already switched) or that is gone is left as it is.
    pub async fn replace_auto_scaling_group(
        &self,
        application: &str,
        group: &str,
        from: &str,
        to: &str,
    ) -> Result<(), PortError> {
        let (pk, sk) = (format!("APP#{application}"), format!("GROUP#{group}"));
        // A group saved meanwhile through the API is read again, never overwritten.
        for _ in 0..5 {
            let Some(item) = self.get(pk.clone(), sk.clone()).await? else {
                return Ok(());
            };
            let Some(body) = item.get("body") else {
                return Ok(());
            };
            let mut info: DeploymentGroupInfo = parse(body, "group")?;
            let Some(entry) = info.auto_scaling_groups.iter_mut().find(|a| a.name == from) else {
                return Ok(());
            };
            entry.name = to.to_owned();
            entry.hook = None;
            entry.termination_hook = None;
            let saved = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("PK", s(&pk))
                .key("SK", s(&sk))
                .update_expression("SET body = :body")
                .condition_expression("body = :was")
                .expression_attribute_values(":body", s(json(&info)?))
                .expression_attribute_values(":was", body.clone())
                .send()
                .await;
            match saved {
                Ok(_) => return Ok(()),
                Err(e) if code(&e) == Some("ConditionalCheckFailedException") => continue,
                Err(e) => {
                    return Err(port_error(format!("saving group {application}/{group}"), e));
                }
            }
        }
        Err(PortError::transient(format!(
            "group {application}/{group} kept changing while its Auto Scaling group '{from}' was replaced by '{to}'"
        )))
    }

    /// The groups that deploy an upload of `key` to `bucket`: those whose prefix starts `key`.
    pub async fn groups_for_upload(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Vec<DeploymentGroupInfo>, PortError> {
        let mut groups = Vec::new();
        for item in self.query(format!("S3TRIGGER#{bucket}")).await? {
            let (Some(prefix), Some(app), Some(name)) = (
                string(&item, "prefix"),
                string(&item, "application"),
                string(&item, "group"),
            ) else {
                continue;
            };
            if key.starts_with(prefix)
                && let Some(group) = self.group(app, name).await?
            {
                groups.push(group);
            }
        }
        Ok(groups)
    }

    /// Saves a custom deployment configuration (again, if it exists).
    pub async fn put_config(&self, config: &DeploymentConfigInfo) -> Result<(), PortError> {
        let item = item([
            ("PK", s(CONFIGS)),
            ("SK", s(&config.deployment_config_name)),
            ("body", s(json(config)?)),
        ]);
        self.put(item).await
    }

    /// A predefined configuration, or a custom one.
    pub async fn config(&self, name: &str) -> Result<Option<DeploymentConfigInfo>, PortError> {
        match cutover_core::config::predefined(name) {
            Some(config) => Ok(Some(config)),
            None => self.custom_config(name).await,
        }
    }

    /// A custom configuration, saved with [`DynamoStore::put_config`] or through the API.
    pub async fn custom_config(
        &self,
        name: &str,
    ) -> Result<Option<DeploymentConfigInfo>, PortError> {
        self.body(CONFIGS.into(), name.into(), "configuration")
            .await
    }

    // ----- the watchdog ------------------------------------------------------------------------

    /// The deployments that have not finished.
    pub async fn active(&self) -> Result<Vec<DeploymentId>, PortError> {
        let items = self.query("ACTIVE".into()).await?;
        Ok(items
            .iter()
            .filter_map(|i| string(i, "SK")?.strip_prefix("DEP#"))
            .filter_map(|id| id.parse().ok())
            .collect())
    }

    /// If the deployment has not changed for `after`, claims it for the watchdog (so that the
    /// next run of the watchdog waits as long again) and returns the steps its last commit
    /// queued, to be sent again. A finished deployment leaves the active list.
    pub async fn overdue(
        &self,
        id: &DeploymentId,
        now: Timestamp,
        after: Duration,
    ) -> Result<Option<Vec<Step>>, PortError> {
        let pk = format!("DEP#{id}");
        let Some(meta) = self.get(pk.clone(), "META".into()).await? else {
            self.delete("ACTIVE".into(), pk).await?;
            return Ok(None);
        };
        if meta.get("finished") == Some(&AttributeValue::Bool(true)) {
            self.delete("ACTIVE".into(), pk).await?;
            return Ok(None);
        }
        let updated = number(&meta, "updatedAt").unwrap_or(0);
        if Timestamp::from_millis(updated) + after > now {
            return Ok(None);
        }
        let version = number(&meta, "version").unwrap_or(0);
        let claimed = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(&pk))
            .key("SK", s("META"))
            .update_expression("SET updatedAt = :now")
            .condition_expression("version = :v")
            .expression_attribute_values(":now", n(now.as_millis()))
            .expression_attribute_values(":v", n(version))
            .send()
            .await;
        match claimed {
            Ok(_) => {}
            Err(e) if code(&e) == Some("ConditionalCheckFailedException") => return Ok(None),
            Err(e) => return Err(port_error(format!("claiming {id} for the watchdog"), e)),
        }
        match meta.get("next") {
            Some(next) => parse::<Vec<Step>>(next, "queued steps").map(Some),
            None => Ok(Some(Vec::new())),
        }
    }

    /// The steps the deployment's last commit queued.
    pub async fn last_steps(&self, id: &DeploymentId) -> Result<Vec<Step>, PortError> {
        let meta = self.get(format!("DEP#{id}"), "META".into()).await?;
        match meta.as_ref().and_then(|m| m.get("next")) {
            Some(next) => parse(next, "queued steps"),
            None => Ok(Vec::new()),
        }
    }

    // ----- plumbing ------------------------------------------------------------------------------

    pub(crate) async fn put(&self, item: Item) -> Result<(), PortError> {
        let pk = string(&item, "PK").unwrap_or_default().to_owned();
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(drop)
            .map_err(|e| port_error(format!("writing {pk} to table {}", self.table), e))
    }

    pub(crate) async fn get(&self, pk: String, sk: String) -> Result<Option<Item>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("PK", s(&pk))
            .key("SK", s(&sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error(format!("reading {pk} {sk} from table {}", self.table), e))?;
        Ok(out.item)
    }

    /// The `body` of an item, read as `T`; none if there is no such item, or it has no body.
    pub(crate) async fn body<T: DeserializeOwned>(
        &self,
        pk: String,
        sk: String,
        what: &str,
    ) -> Result<Option<T>, PortError> {
        let item = self.get(pk, sk).await?;
        item.as_ref()
            .and_then(|i| i.get("body"))
            .map(|body| parse(body, what))
            .transpose()
    }

    pub(crate) async fn delete(&self, pk: String, sk: String) -> Result<(), PortError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("PK", s(&pk))
            .key("SK", s(&sk))
            .send()
            .await
            .map(drop)
            .map_err(|e| port_error(format!("deleting {pk} {sk} from table {}", self.table), e))
    }

    /// Every item of one partition, in sort key order.
    pub(crate) async fn query(&self, pk: String) -> Result<Vec<Item>, PortError> {
        self.query_from(pk, None, true).await
    }

    /// The items of one partition whose sort key starts with `prefix`, in sort key order.
    pub(crate) async fn query_prefix(
        &self,
        pk: String,
        prefix: &str,
    ) -> Result<Vec<Item>, PortError> {
        self.query_from(pk, Some(prefix), true).await
    }

    /// The items of one partition (whose sort key starts with `prefix`, if given), in sort key
    /// order, or the reverse.
    pub(crate) async fn query_from(
        &self,
        pk: String,
        prefix: Option<&str>,
        forward: bool,
    ) -> Result<Vec<Item>, PortError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(match prefix {
                    Some(_) => "PK = :pk AND begins_with(SK, :prefix)",
                    None => "PK = :pk",
                })
                .expression_attribute_values(":pk", s(&pk))
                .scan_index_forward(forward)
                .consistent_read(true)
                .set_exclusive_start_key(start);
            if let Some(prefix) = prefix {
                query = query.expression_attribute_values(":prefix", s(prefix));
            }
            let page = query
                .send()
                .await
                .map_err(|e| port_error(format!("reading {pk} from table {}", self.table), e))?;
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    fn remember(&self, d: &Deployment) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        // A function handles a few deployments at a time; old ones need not be kept.
        if seen.len() > 64 {
            seen.clear();
        }
        seen.insert(d.deployment_id.clone(), d.clone());
    }

    /// The targets of `d` that differ from what this process last saw of version `expected`;
    /// every target when it saw another version or none.
    fn changed_targets<'d>(
        &self,
        d: &'d Deployment,
        expected: Option<u64>,
    ) -> Vec<(usize, &'d Arc<Target>)> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let before = seen
            .get(&d.deployment_id)
            .filter(|b| Some(b.version) == expected);
        d.targets
            .iter()
            .enumerate()
            .filter(|(i, t)| {
                before
                    .and_then(|b| b.targets.get(*i))
                    .is_none_or(|old| !Arc::ptr_eq(old, t) && old != *t)
            })
            .collect()
    }

    /// The group's lock item: its queue and version (0 when it has never been written).
    async fn lock_item(&self, d: &Deployment) -> Result<(GroupQueue, u64), PortError> {
        let (pk, sk) = lock_key(d);
        let Some(item) = self.get(pk, sk).await? else {
            return Ok((GroupQueue::default(), 0));
        };
        let queue = match item.get("queue") {
            Some(q) => parse::<GroupQueue>(q, "group lock")?,
            None => GroupQueue::default(),
        };
        Ok((queue, number(&item, "version").unwrap_or(0) as u64))
    }

    /// Changes the group's lock with `change`, conditional on the version read, and tries again
    /// while another writer gets there first.
    async fn with_lock<T>(
        &self,
        d: &Deployment,
        change: impl Fn(&mut GroupQueue) -> T,
    ) -> Result<T, PortError> {
        let (pk, sk) = lock_key(d);
        for _ in 0..LOCK_ATTEMPTS {
            let (mut queue, version) = self.lock_item(d).await?;
            let before = queue.clone();
            let result = change(&mut queue);
            if queue == before {
                return Ok(result);
            }
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("PK", s(&pk))
                .item("SK", s(&sk))
                .item("queue", s(json(&queue)?))
                .item("version", n(version + 1));
            put = if version == 0 {
                put.condition_expression("attribute_not_exists(PK)")
            } else {
                put.condition_expression("version = :v")
                    .expression_attribute_values(":v", n(version))
            };
            match put.send().await {
                Ok(_) => return Ok(result),
                Err(e) if code(&e) == Some("ConditionalCheckFailedException") => continue,
                Err(e) => return Err(port_error(format!("updating the lock {pk} {sk}"), e)),
            }
        }
        Err(PortError::transient(format!(
            "the lock {pk} {sk} kept changing; the step will be retried"
        )))
    }
}

impl Store for DynamoStore {
    async fn load(&self, id: &DeploymentId) -> Result<Option<Deployment>, PortError> {
        let items = self.query(format!("DEP#{id}")).await?;
        let mut meta = None;
        let mut targets = Vec::new();
        for item in &items {
            match string(item, "SK") {
                Some("META") => meta = Some(item),
                Some(sk) if sk.starts_with("TARGET#") => {
                    let body = item.get("body").ok_or_else(|| corrupt(id, sk))?;
                    let target: Target = parse(body, "target")?;
                    targets.push((number(item, "idx").unwrap_or(0), Arc::new(target)));
                }
                _ => {}
            }
        }
        let Some(meta) = meta else {
            return Ok(None);
        };
        let mut d: Deployment = parse(
            meta.get("body").ok_or_else(|| corrupt(id, "META"))?,
            "deployment",
        )?;
        targets.sort_by_key(|(idx, _)| *idx);
        d.targets = targets.into_iter().map(|(_, t)| t).collect();
        self.remember(&d);
        Ok(Some(d))
    }

    async fn commit(
        &self,
        d: &Deployment,
        expected: Option<u64>,
        next: Vec<Step>,
    ) -> Result<Commit, PortError> {
        let id = &d.deployment_id;
        let pk = format!("DEP#{id}");
        let now = crate::now();
        let meta_body = Deployment {
            targets: Vec::new(),
            ..d.clone()
        };
        let mut meta = item([
            ("PK", s(&pk)),
            ("SK", s("META")),
            ("body", s(json(&meta_body)?)),
            ("version", n(d.version)),
            ("finished", AttributeValue::Bool(d.is_finished())),
            ("updatedAt", n(now.as_millis())),
        ]);
        if !next.is_empty() {
            meta.insert("next".into(), s(json(&next)?));
        }
        let mut meta_put = Put::builder().table_name(&self.table).set_item(Some(meta));
        meta_put = match expected {
            None => meta_put.condition_expression("attribute_not_exists(PK)"),
            Some(v) => meta_put
                .condition_expression("version = :v")
                .expression_attribute_values(":v", n(v)),
        };
        let mut writes = Vec::new();
        for (idx, target) in self.changed_targets(d, expected) {
            let item = item([
                ("PK", s(&pk)),
                ("SK", s(format!("TARGET#{}", target.target_id))),
                ("idx", n(idx as u64)),
                ("body", s(json(target.as_ref())?)),
            ]);
            writes.push(put(&self.table, item)?);
        }
        if expected.is_none() {
            let listed = item([
                ("PK", s(DEPLOYMENTS)),
                ("SK", s(deployment_sort_key(d))),
                ("application", s(&d.application_name)),
                ("group", s(&d.group.deployment_group_name)),
            ]);
            writes.push(put(&self.table, listed)?);
            if !d.is_finished() {
                let active = item([("PK", s("ACTIVE")), ("SK", s(&pk))]);
                writes.push(put(&self.table, active)?);
            }
        }
        // The deployment item goes last, with the condition: when more than one transaction is
        // needed (a change to more than 99 targets at once), the targets are written first, and
        // a reader sees them only once the deployment's new version is there.
        let meta_write = TransactWriteItem::builder()
            .put(
                meta_put
                    .build()
                    .map_err(|e| PortError::permanent(e.to_string()))?,
            )
            .build();
        let mut chunks: Vec<Vec<TransactWriteItem>> = writes
            .chunks(TRANSACTION_ITEMS)
            .map(<[TransactWriteItem]>::to_vec)
            .collect();
        match chunks.last_mut() {
            Some(last) if last.len() < TRANSACTION_ITEMS => last.push(meta_write),
            _ => chunks.push(vec![meta_write]),
        }
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let written = self
                .client
                .transact_write_items()
                .set_transact_items(Some(chunk))
                .send()
                .await;
            match written {
                Ok(_) => {}
                Err(e) if i == last && is_condition_failure(&e) => return Ok(Commit::Conflict),
                Err(e) => return Err(port_error(format!("saving deployment {id}"), e)),
            }
        }
        self.remember(d);
        self.queue.send_at(next, now).await?;
        Ok(Commit::Saved)
    }

    async fn acquire_group_lock(&self, d: &Deployment) -> Result<LockDecision, PortError> {
        self.with_lock(d, |queue| queue.acquire(&d.deployment_id))
            .await
    }

    async fn finish(
        &self,
        d: &Deployment,
        status: FinalStatus,
        hand_to: Option<&DeploymentId>,
    ) -> Result<Option<DeploymentId>, PortError> {
        let app = &d.application_name;
        let group = &d.group.deployment_group_name;
        if status == FinalStatus::Succeeded {
            // Only a newer deployment's success replaces the last one, so that a finish
            // delivered twice cannot bring back an older revision; and only on a group that
            // still exists, so that a deleted group does not come back as an item without body.
            let last = PreviousDeployment {
                deployment_id: d.deployment_id.clone(),
                revision: d.revision.clone(),
            };
            let updated = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("PK", s(format!("APP#{app}")))
                .key("SK", s(format!("GROUP#{group}")))
                .update_expression("SET lastSuccessful = :last, lastSuccessfulAt = :at")
                .condition_expression(
                    "attribute_exists(body) AND (attribute_not_exists(lastSuccessfulAt) OR lastSuccessfulAt < :at)",
                )
                .expression_attribute_values(":last", s(json(&last)?))
                .expression_attribute_values(":at", n(d.create_time.as_millis()))
                .send()
                .await;
            match updated {
                Ok(_) => {}
                Err(e) if code(&e) == Some("ConditionalCheckFailedException") => {}
                Err(e) => {
                    return Err(port_error(
                        format!("recording the success of {}", d.deployment_id),
                        e,
                    ));
                }
            }
        }
        let id = &d.deployment_id;
        let holder = self
            .with_lock(d, |queue| match queue.release(id, hand_to) {
                Some(next) => Some(next),
                // Delivered before: the lock moved on already; name its holder again.
                None => queue.active.clone().filter(|active| active != id),
            })
            .await?;
        self.delete("ACTIVE".into(), format!("DEP#{id}")).await?;
        Ok(holder)
    }

    async fn last_successful(
        &self,
        application: &str,
        group: &str,
    ) -> Result<Option<PreviousDeployment>, PortError> {
        let item = self
            .get(format!("APP#{application}"), format!("GROUP#{group}"))
            .await?;
        item.as_ref()
            .and_then(|i| i.get("lastSuccessful"))
            .map(|v| parse(v, "last successful deployment"))
            .transpose()
    }
}

fn lock_key(d: &Deployment) -> (String, String) {
    (
        format!("APP#{}", d.application_name),
        format!("LOCK#{}", d.group.deployment_group_name),
    )
}

/// The partition that lists the applications.
pub(crate) const APPS: &str = "APPS";
/// The partition of custom configurations.
pub(crate) const CONFIGS: &str = "CONFIGS";
/// The partition that lists the deployments, oldest first.
pub(crate) const DEPLOYMENTS: &str = "DEPLOYMENTS";

/// A deployment's place in the list of deployments: by creation time, then id.
pub(crate) fn deployment_sort_key(d: &Deployment) -> String {
    format!("{:016}#{}", d.create_time.as_millis(), d.deployment_id)
}

fn is_condition_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(
    e: &aws_sdk_dynamodb::error::SdkError<E>,
) -> bool {
    matches!(
        code(e),
        Some("ConditionalCheckFailedException" | "TransactionCanceledException")
    )
}

pub(crate) fn put(table: &str, item: Item) -> Result<TransactWriteItem, PortError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .build()
        .map_err(|e| PortError::permanent(e.to_string()))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

pub(crate) fn item<const N: usize>(attrs: [(&str, AttributeValue); N]) -> Item {
    attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn string<'i>(item: &'i Item, name: &str) -> Option<&'i str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

pub(crate) fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

pub(crate) fn json(value: &impl Serialize) -> Result<String, PortError> {
    serde_json::to_string(value).map_err(|e| PortError::permanent(format!("cannot write: {e}")))
}

pub(crate) fn parse<T: DeserializeOwned>(
    value: &AttributeValue,
    what: &str,
) -> Result<T, PortError> {
    let text = value
        .as_s()
        .map_err(|_| PortError::permanent(format!("the stored {what} is not a string")))?;
    serde_json::from_str(text)
        .map_err(|e| PortError::permanent(format!("the stored {what} cannot be read: {e}")))
}

fn corrupt(id: &DeploymentId, sk: &str) -> PortError {
    PortError::permanent(format!("deployment {id}: item {sk} has no body"))
}
