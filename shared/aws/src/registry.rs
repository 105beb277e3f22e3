//! The API's registry in the state table: applications and their list, deployment groups,
//! registered revisions, tags, custom configurations, and the list of deployments (see the
//! layout in [`crate::store`]).
//!
//! Renaming or deleting an application moves or deletes every item of its partition, in one
//! transaction while it has fewer than 50 items. A larger one takes several: a rename's first
//! transaction claims the new name, and a delete's last one removes the application, so that a
//! delete cut short is finished by deleting again.

use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem};
use cutover_api::ops::tags::{Tag, Tagged};
use cutover_api::{ConfigDeletion, Registry, Rename};
use cutover_core::config::DeploymentConfigInfo;
use cutover_core::machine::Deployment;
use cutover_core::model::{
    ApplicationInfo, DeploymentGroupInfo, GenericRevisionInfo, InstanceInfo, RevisionLocation,
};
use cutover_core::{DeploymentId, Timestamp};
use cutover_engine::{PortError, Store};
use sha2::{Digest, Sha256};

use crate::error::{code, port_error};
use crate::store::{
    APPS, CONFIGS, DEPLOYMENTS, DynamoStore, Item, TRANSACTION_ITEMS, item, json, n, number, parse,
    s, string,
};

/// How many times a revision's update is tried again when another writer changed it first.
const REVISION_ATTEMPTS: usize = 20;

/// One write of a transaction, before it is built.
enum Write {
    Put {
        item: Item,
        if_absent: bool,
    },
    Delete {
        pk: String,
        sk: String,
        if_present: bool,
    },
    Check {
        pk: String,
        sk: String,
    },
}

impl Write {
    fn put(item: Item) -> Write {
        Write::Put {
            item,
            if_absent: false,
        }
    }

    fn delete(pk: impl Into<String>, sk: impl Into<String>) -> Write {
        Write::Delete {
            pk: pk.into(),
            sk: sk.into(),
            if_present: false,
        }
    }

    fn build(self, table: &str) -> Result<TransactWriteItem, PortError> {
        let built = match self {
            Write::Put { item, if_absent } => {
                let mut put = Put::builder().table_name(table).set_item(Some(item));
                if if_absent {
                    put = put.condition_expression("attribute_not_exists(PK)");
                }
                TransactWriteItem::builder().put(put.build().map_err(invalid)?)
            }
            Write::Delete { pk, sk, if_present } => {
                let mut delete = Delete::builder()
                    .table_name(table)
                    .key("PK", s(pk))
                    .key("SK", s(sk));
                if if_present {
                    delete = delete.condition_expression("attribute_exists(PK)");
                }
                TransactWriteItem::builder().delete(delete.build().map_err(invalid)?)
            }
            Write::Check { pk, sk } => {
                let check = ConditionCheck::builder()
                    .table_name(table)
                    .key("PK", s(pk))
                    .key("SK", s(sk))
                    .condition_expression("attribute_exists(PK)")
                    .build()
                    .map_err(invalid)?;
                TransactWriteItem::builder().condition_check(check)
            }
        };
        Ok(built.build())
    }
}

fn invalid(e: impl std::fmt::Display) -> PortError {
    PortError::permanent(e.to_string())
}

impl DynamoStore {
    /// Carries out `writes` in order, in transactions of at most 100 items. False when a
    /// condition failed, which only the first transaction may carry: then nothing was written.
    async fn transact(&self, writes: Vec<Write>, what: &str) -> Result<bool, PortError> {
        let table = self.table().to_owned();
        let built = writes
            .into_iter()
            .map(|w| w.build(&table))
            .collect::<Result<Vec<_>, _>>()?;
        for chunk in built.chunks(TRANSACTION_ITEMS) {
            let written = self
                .client()
                .transact_write_items()
                .set_transact_items(Some(chunk.to_vec()))
                .send()
                .await;
            match written {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        code(&e),
                        Some("ConditionalCheckFailedException" | "TransactionCanceledException")
                    ) =>
                {
                    return Ok(false);
                }
                Err(e) => return Err(port_error(what.to_owned(), e)),
            }
        }
        Ok(true)
    }

    /// The groups of an application: their items, in name order.
    async fn group_items(&self, application: &str) -> Result<Vec<Item>, PortError> {
        self.query_prefix(format!("APP#{application}"), "GROUP#")
            .await
    }

    /// The writes that move the tags filed under `from` to `to`.
    async fn move_tags(&self, from: &Tagged, to: &Tagged) -> Result<Vec<Write>, PortError> {
        let (from, to) = (tags_pk(from), tags_pk(to));
        Ok(match self.get(from.clone(), "TAGS".into()).await? {
            Some(mut tags) => {
                tags.insert("PK".into(), s(to));
                vec![Write::put(tags), Write::delete(from, "TAGS")]
            }
            None => Vec::new(),
        })
    }

    /// The writes that move a group's upload trigger, if it has one, to another application or
    /// name (or only delete it, for `to` None).
    async fn move_trigger(
        &self,
        group: &Item,
        from: (&str, &str),
        to: Option<(&str, &str)>,
    ) -> Result<Vec<Write>, PortError> {
        let Some(bucket) = string(group, "triggerBucket") else {
            return Ok(Vec::new());
        };
        let pk = format!("S3TRIGGER#{bucket}");
        let Some(mut trigger) = self.get(pk.clone(), trigger_sk(from)).await? else {
            return Ok(Vec::new());
        };
        let mut writes = Vec::new();
        if let Some((app, name)) = to {
            trigger.insert("SK".into(), s(trigger_sk((app, name))));
            trigger.insert("application".into(), s(app));
            trigger.insert("group".into(), s(name));
            writes.push(Write::put(trigger));
        }
        writes.push(Write::delete(pk, trigger_sk(from)));
        Ok(writes)
    }

    /// Changes a registered revision with `change`, registering it first if it is not; the
    /// revision as saved. The write is conditional on the version read.
    async fn with_revision(
        &self,
        application: &str,
        revision: &RevisionLocation,
        now: Timestamp,
        change: impl Fn(&mut GenericRevisionInfo),
    ) -> Result<GenericRevisionInfo, PortError> {
        let (pk, sk) = (format!("APP#{application}"), revision_sk(revision)?);
        for _ in 0..REVISION_ATTEMPTS {
            let found = self.get(pk.clone(), sk.clone()).await?;
            let (mut info, version, registered_at) = match &found {
                Some(item) => (
                    parse::<GenericRevisionInfo>(item.get("body").unwrap_or(&s("")), "revision")?,
                    number(item, "version").unwrap_or(0),
                    number(item, "registeredAt").unwrap_or(0),
                ),
                None => (
                    GenericRevisionInfo::registered(None, now),
                    0,
                    now.as_millis(),
                ),
            };
            change(&mut info);
            let mut put = self
                .client()
                .put_item()
                .table_name(self.table())
                .item("PK", s(&pk))
                .item("SK", s(&sk))
                .item("location", s(json(revision)?))
                .item("body", s(json(&info)?))
                .item("registeredAt", n(registered_at))
                .item("version", n(version + 1));
            put = if found.is_none() {
                put.condition_expression("attribute_not_exists(PK)")
            } else {
                put.condition_expression("version = :v")
                    .expression_attribute_values(":v", n(version))
            };
            match put.send().await {
                Ok(_) => return Ok(info),
                Err(e) if code(&e) == Some("ConditionalCheckFailedException") => continue,
                Err(e) => {
                    return Err(port_error(
                        format!("saving a revision of application {application}"),
                        e,
                    ));
                }
            }
        }
        Err(PortError::transient(format!(
            "a revision of application {application} kept changing; try again"
        )))
    }
}

impl Registry for DynamoStore {
    async fn create_application(&self, app: &ApplicationInfo) -> Result<bool, PortError> {
        let name = &app.application_name;
        let writes = vec![
            Write::Put {
                item: item([
                    ("PK", s(format!("APP#{name}"))),
                    ("SK", s("APP")),
                    ("body", s(json(app)?)),
                ]),
                if_absent: true,
            },
            Write::put(item([("PK", s(APPS)), ("SK", s(name))])),
        ];
        self.transact(writes, &format!("saving application {name}"))
            .await
    }

    async fn application(&self, name: &str) -> Result<Option<ApplicationInfo>, PortError> {
        self.body(format!("APP#{name}"), "APP".into(), "application")
            .await
    }

    async fn application_names(&self) -> Result<Vec<String>, PortError> {
        Ok(sort_keys(&self.query(APPS.into()).await?))
    }

    async fn rename_application(&self, name: &str, new_name: &str) -> Result<Rename, PortError> {
        let Some(mut app) = self.application(name).await? else {
            return Ok(Rename::Missing);
        };
        if self.application(new_name).await?.is_some() {
            return Ok(Rename::NameTaken);
        }
        app.application_name = new_name.to_owned();
        let (from, to) = (format!("APP#{name}"), format!("APP#{new_name}"));
        // The new name is claimed first, with the old one's release.
        let mut writes = vec![
            Write::Put {
                item: item([("PK", s(&to)), ("SK", s("APP")), ("body", s(json(&app)?))]),
                if_absent: true,
            },
            Write::Delete {
                pk: from.clone(),
                sk: "APP".into(),
                if_present: true,
            },
            Write::put(item([("PK", s(APPS)), ("SK", s(new_name))])),
            Write::delete(APPS, name),
        ];
        writes.extend(
            self.move_tags(
                &Tagged::Application(name.into()),
                &Tagged::Application(new_name.into()),
            )
            .await?,
        );
        for mut stored in self.query(from.clone()).await? {
            let Some(sk) = string(&stored, "SK").map(str::to_owned) else {
                continue;
            };
            if sk == "APP" {
                continue;
            }
            if let Some(group) = sk.strip_prefix("GROUP#") {
                let mut info: DeploymentGroupInfo =
                    parse(stored.get("body").unwrap_or(&s("")), "deployment group")?;
                info.application_name = new_name.to_owned();
                writes.extend(
                    self.move_tags(
                        &Tagged::Group {
                            application: name.into(),
                            group: group.into(),
                        },
                        &Tagged::Group {
                            application: new_name.into(),
                            group: group.into(),
                        },
                    )
                    .await?,
                );
                writes.extend(
                    self.move_trigger(&stored, (name, group), Some((new_name, group)))
                        .await?,
                );
                stored.insert("body".into(), s(json(&info)?));
            }
            stored.insert("PK".into(), s(&to));
            writes.push(Write::put(stored));
            writes.push(Write::delete(from.clone(), sk));
        }
        let renamed = self
            .transact(writes, &format!("renaming application {name}"))
            .await?;
        Ok(if renamed {
            Rename::Renamed
        } else {
            Rename::NameTaken
        })
    }

    async fn delete_application(&self, name: &str) -> Result<(), PortError> {
        let pk = format!("APP#{name}");
        let mut writes = vec![Write::delete(
            tags_pk(&Tagged::Application(name.into())),
            "TAGS",
        )];
        for stored in self.query(pk.clone()).await? {
            let Some(sk) = string(&stored, "SK").map(str::to_owned) else {
                continue;
            };
            if let Some(group) = sk.strip_prefix("GROUP#") {
                writes.push(Write::delete(
                    tags_pk(&Tagged::Group {
                        application: name.into(),
                        group: group.into(),
                    }),
                    "TAGS",
                ));
                writes.extend(self.move_trigger(&stored, (name, group), None).await?);
            }
            if sk != "APP" {
                writes.push(Write::delete(pk.clone(), sk));
            }
        }
        // The application goes last: until then, deleting it again finishes the work.
        writes.push(Write::delete(APPS, name));
        writes.push(Write::delete(pk, "APP"));
        self.transact(writes, &format!("deleting application {name}"))
            .await
            .map(drop)
    }

    async fn create_group(&self, group: &DeploymentGroupInfo) -> Result<bool, PortError> {
        let app = &group.application_name;
        let name = &group.deployment_group_name;
        let writes = vec![
            Write::Check {
                pk: format!("APP#{app}"),
                sk: "APP".into(),
            },
            Write::Put {
                item: item([
                    ("PK", s(format!("APP#{app}"))),
                    ("SK", s(format!("GROUP#{name}"))),
                    ("body", s(json(group)?)),
                ]),
                if_absent: true,
            },
        ];
        self.transact(writes, &format!("saving deployment group {app}/{name}"))
            .await
    }

    async fn group(
        &self,
        application: &str,
        name: &str,
    ) -> Result<Option<DeploymentGroupInfo>, PortError> {
        DynamoStore::group(self, application, name).await
    }

    async fn group_names(&self, application: &str) -> Result<Vec<String>, PortError> {
        Ok(sort_keys(&self.group_items(application).await?)
            .into_iter()
            .filter_map(|sk| sk.strip_prefix("GROUP#").map(str::to_owned))
            .collect())
    }

    async fn update_group(
        &self,
        current_name: &str,
        group: &DeploymentGroupInfo,
    ) -> Result<Rename, PortError> {
        let app = group.application_name.as_str();
        let new_name = group.deployment_group_name.as_str();
        let pk = format!("APP#{app}");
        let Some(mut stored) = self
            .get(pk.clone(), format!("GROUP#{current_name}"))
            .await?
        else {
            return Ok(Rename::Missing);
        };
        stored.insert("body".into(), s(json(group)?));
        if new_name == current_name {
            let saved = self
                .client()
                .update_item()
                .table_name(self.table())
                .key("PK", s(&pk))
                .key("SK", s(format!("GROUP#{current_name}")))
                .update_expression("SET body = :body")
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_values(":body", s(json(group)?))
                .send()
                .await;
            return match saved {
                Ok(_) => Ok(Rename::Renamed),
                Err(e) if code(&e) == Some("ConditionalCheckFailedException") => {
                    Ok(Rename::Missing)
                }
                Err(e) => Err(port_error(format!("saving group {app}/{current_name}"), e)),
            };
        }
        if self
            .get(pk.clone(), format!("GROUP#{new_name}"))
            .await?
            .is_some()
        {
            return Ok(Rename::NameTaken);
        }
        let mut writes = Vec::new();
        stored.insert("SK".into(), s(format!("GROUP#{new_name}")));
        writes.push(Write::Put {
            item: stored.clone(),
            if_absent: true,
        });
        writes.push(Write::Delete {
            pk: pk.clone(),
            sk: format!("GROUP#{current_name}"),
            if_present: true,
        });
        if let Some(mut lock) = self.get(pk.clone(), format!("LOCK#{current_name}")).await? {
            lock.insert("SK".into(), s(format!("LOCK#{new_name}")));
            writes.push(Write::put(lock));
            writes.push(Write::delete(pk.clone(), format!("LOCK#{current_name}")));
        }
        writes.extend(
            self.move_tags(
                &Tagged::Group {
                    application: app.into(),
                    group: current_name.into(),
                },
                &Tagged::Group {
                    application: app.into(),
                    group: new_name.into(),
                },
            )
            .await?,
        );
        writes.extend(
            self.move_trigger(&stored, (app, current_name), Some((app, new_name)))
                .await?,
        );
        let renamed = self
            .transact(writes, &format!("renaming group {app}/{current_name}"))
            .await?;
        Ok(if renamed {
            Rename::Renamed
        } else {
            Rename::NameTaken
        })
    }

    async fn delete_group(&self, application: &str, name: &str) -> Result<(), PortError> {
        let pk = format!("APP#{application}");
        let Some(stored) = self.get(pk.clone(), format!("GROUP#{name}")).await? else {
            return Ok(());
        };
        let mut writes = vec![
            Write::delete(
                tags_pk(&Tagged::Group {
                    application: application.into(),
                    group: name.into(),
                }),
                "TAGS",
            ),
            Write::delete(pk.clone(), format!("LOCK#{name}")),
        ];
        writes.extend(
            self.move_trigger(&stored, (application, name), None)
                .await?,
        );
        writes.push(Write::delete(pk, format!("GROUP#{name}")));
        self.transact(writes, &format!("deleting group {application}/{name}"))
            .await
            .map(drop)
    }

    async fn deployment(&self, id: &DeploymentId) -> Result<Option<Deployment>, PortError> {
        self.load(id).await
    }

    async fn deployment_ids(
        &self,
        application: Option<&str>,
        group: Option<&str>,
    ) -> Result<Vec<DeploymentId>, PortError> {
        let items = self.query_from(DEPLOYMENTS.into(), None, false).await?;
        Ok(items
            .iter()
            .filter(|i| application.is_none_or(|a| string(i, "application") == Some(a)))
            .filter(|i| group.is_none_or(|g| string(i, "group") == Some(g)))
            .filter_map(|i| string(i, "SK")?.split_once('#')?.1.parse().ok())
            .collect())
    }

    async fn register_revision(
        &self,
        application: &str,
        revision: &RevisionLocation,
        description: Option<&str>,
        now: Timestamp,
    ) -> Result<GenericRevisionInfo, PortError> {
        self.with_revision(application, revision, now, |info| {
            if let Some(d) = description {
                info.description = Some(d.to_owned());
            }
        })
        .await
    }

    async fn revision_used(
        &self,
        application: &str,
        revision: &RevisionLocation,
        group: &str,
        now: Timestamp,
    ) -> Result<(), PortError> {
        self.with_revision(application, revision, now, |info| info.used_by(group, now))
            .await
            .map(drop)
    }

    async fn revision(
        &self,
        application: &str,
        revision: &RevisionLocation,
    ) -> Result<Option<GenericRevisionInfo>, PortError> {
        self.body(
            format!("APP#{application}"),
            revision_sk(revision)?,
            "revision",
        )
        .await
    }

    async fn revisions(
        &self,
        application: &str,
    ) -> Result<Vec<(RevisionLocation, GenericRevisionInfo)>, PortError> {
        let mut items = self
            .query_prefix(format!("APP#{application}"), "REVISION#")
            .await?;
        items.sort_by_key(|i| number(i, "registeredAt").unwrap_or(0));
        items
            .iter()
            .map(|i| {
                let location = i.get("location").unwrap_or(&AttributeValue::Null(true));
                let body = i.get("body").unwrap_or(&AttributeValue::Null(true));
                Ok((parse(location, "revision")?, parse(body, "revision")?))
            })
            .collect()
    }

    async fn tags(&self, resource: &str) -> Result<Vec<Tag>, PortError> {
        match self.get(format!("TAGS#{resource}"), "TAGS".into()).await? {
            Some(item) => match item.get("tags") {
                Some(tags) => parse(tags, "tags"),
                None => Ok(Vec::new()),
            },
            None => Ok(Vec::new()),
        }
    }

    async fn set_tags(&self, resource: &str, tags: &[Tag]) -> Result<(), PortError> {
        let pk = format!("TAGS#{resource}");
        if tags.is_empty() {
            return self.delete(pk, "TAGS".into()).await;
        }
        self.put(item([
            ("PK", s(pk)),
            ("SK", s("TAGS")),
            ("tags", s(json(&tags)?)),
        ]))
        .await
    }

    async fn create_config(&self, config: &DeploymentConfigInfo) -> Result<bool, PortError> {
        let name = &config.deployment_config_name;
        let writes = vec![Write::Put {
            item: item([
                ("PK", s(CONFIGS)),
                ("SK", s(name)),
                ("body", s(json(config)?)),
            ]),
            if_absent: true,
        }];
        self.transact(writes, &format!("saving deployment configuration {name}"))
            .await
    }

    async fn config(&self, name: &str) -> Result<Option<DeploymentConfigInfo>, PortError> {
        self.custom_config(name).await
    }

    async fn config_names(&self) -> Result<Vec<String>, PortError> {
        Ok(sort_keys(&self.query(CONFIGS.into()).await?))
    }

    async fn delete_config(&self, name: &str) -> Result<ConfigDeletion, PortError> {
        let mut users = Vec::new();
        for app in self.application_names().await? {
            for group in self.group_items(&app).await? {
                let Some(body) = group.get("body") else {
                    continue;
                };
                let info: DeploymentGroupInfo = parse(body, "deployment group")?;
                if info.deployment_config_name == name {
                    users.push((app.clone(), info.deployment_group_name));
                }
            }
        }
        if !users.is_empty() {
            return Ok(ConfigDeletion::InUse(users));
        }
        let writes = vec![Write::Delete {
            pk: CONFIGS.into(),
            sk: name.into(),
            if_present: true,
        }];
        let deleted = self
            .transact(writes, &format!("deleting deployment configuration {name}"))
            .await?;
        Ok(if deleted {
            ConfigDeletion::Deleted
        } else {
            ConfigDeletion::Missing
        })
    }

    /// Saves a newly registered on-premises instance; false if one of that name is registered
    /// (a deregistered one is replaced).
    async fn register_instance(&self, instance: &InstanceInfo) -> Result<bool, PortError> {
        self.put_instance(instance, "registering", |put| {
            put.condition_expression("attribute_not_exists(PK) OR registered = :no")
                .expression_attribute_values(":no", AttributeValue::Bool(false))
        })
        .await
    }

    async fn instance(&self, name: &str) -> Result<Option<InstanceInfo>, PortError> {
        self.body(INSTANCES.into(), name.into(), "instance").await
    }

    /// Every on-premises instance, registered or not, in name order.
    async fn instances(&self) -> Result<Vec<InstanceInfo>, PortError> {
        self.query(INSTANCES.into())
            .await?
            .iter()
            .filter_map(|i| i.get("body"))
            .map(|body| parse(body, "instance"))
            .collect()
    }

    /// Replaces an instance's record; false if there is none of its name.
    async fn update_instance(&self, instance: &InstanceInfo) -> Result<bool, PortError> {
        self.put_instance(instance, "saving", |put| {
            put.condition_expression("attribute_exists(PK)")
        })
        .await
    }
}

fn tags_pk(resource: &Tagged) -> String {
    format!("TAGS#{}", resource.key())
}

fn trigger_sk((app, group): (&str, &str)) -> String {
    format!("APP#{app}#GROUP#{group}")
}

/// A revision's sort key: its location can be longer than a key may be, so it is hashed.
fn revision_sk(revision: &RevisionLocation) -> Result<String, PortError> {
    let digest = Sha256::digest(json(revision)?.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("REVISION#{hex}"))
}

fn sort_keys(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| string(i, "SK").map(str::to_owned))
        .collect()
}

/// The partition of on-premises instances.
const INSTANCES: &str = "INSTANCES";

impl DynamoStore {
    /// Saves an instance's record on the condition `when` sets; false when it does not hold.
    async fn put_instance(
        &self,
        instance: &InstanceInfo,
        doing: &str,
        when: impl FnOnce(PutItemFluentBuilder) -> PutItemFluentBuilder,
    ) -> Result<bool, PortError> {
        let name = &instance.instance_name;
        let put = self
            .client()
            .put_item()
            .table_name(self.table())
            .item("PK", s(INSTANCES))
            .item("SK", s(name))
            .item("body", s(json(instance)?))
            .item("registered", AttributeValue::Bool(instance.is_registered()));
        match when(put).send().await {
            Ok(_) => Ok(true),
            Err(e) if code(&e) == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(port_error(format!("{doing} instance {name}"), e)),
        }
    }
}
