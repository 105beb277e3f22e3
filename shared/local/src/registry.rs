//! The API's registry in the local store: applications in their own table, custom
//! configurations beside the deployment groups that may use them, on-premises instances in a
//! table of their own.

use cutover_api::ops::tags::Tag;
use cutover_api::{ConfigDeletion, Registry, Rename};
use cutover_core::DeploymentId;
use cutover_core::Timestamp;
use cutover_core::config::DeploymentConfigInfo;
use cutover_core::machine::Deployment;
use cutover_core::model::{
    ApplicationInfo, DeploymentGroupInfo, GenericRevisionInfo, InstanceInfo, RevisionLocation,
};
use cutover_engine::PortError;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::store::{LocalStore, StoreError, parse_id};

impl LocalStore {
    /// Saves a new application; false if one of that name exists already.
    pub fn create_application(&self, app: &ApplicationInfo) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO applications (name, info) VALUES (?1, ?2)",
            params![app.application_name, serde_json::to_string(app)?],
        )?;
        Ok(n == 1)
    }

    pub fn application(&self, name: &str) -> Result<Option<ApplicationInfo>, StoreError> {
        let info: Option<String> = self
            .conn()
            .query_row(
                "SELECT info FROM applications WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        Ok(info.map(|i| serde_json::from_str(&i)).transpose()?)
    }

    pub fn application_names(&self) -> Result<Vec<String>, StoreError> {
        names(&self.conn(), "SELECT name FROM applications ORDER BY name")
    }

    /// Renames an application with its groups, their hosts and their traffic registry.
    pub fn rename_application(&self, name: &str, new_name: &str) -> Result<Rename, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let info: Option<String> = tx
            .query_row(
                "SELECT info FROM applications WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        let Some(info) = info else {
            return Ok(Rename::Missing);
        };
        let taken: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM applications WHERE name = ?1)",
            [new_name],
            |r| r.get(0),
        )?;
        if taken {
            return Ok(Rename::NameTaken);
        }
        let mut app: ApplicationInfo = serde_json::from_str(&info)?;
        app.application_name = new_name.to_owned();
        tx.execute(
            "UPDATE applications SET name = ?2, info = ?3 WHERE name = ?1",
            params![name, new_name, serde_json::to_string(&app)?],
        )?;
        let groups: Vec<(String, String)> = {
            let mut stmt = tx.prepare("SELECT name, info FROM groups WHERE application = ?1")?;
            stmt.query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        for (group, info) in groups {
            let mut info: DeploymentGroupInfo = serde_json::from_str(&info)?;
            info.application_name = new_name.to_owned();
            tx.execute(
                "UPDATE groups SET application = ?2, info = ?4 WHERE application = ?1 AND name = ?3",
                params![name, new_name, group, serde_json::to_string(&info)?],
            )?;
        }
        for table in ["hosts", "traffic", "revisions"] {
            tx.execute(
                &format!("UPDATE {table} SET application = ?2 WHERE application = ?1"),
                params![name, new_name],
            )?;
        }
        tx.execute(
            "UPDATE tags SET resource = ?2 WHERE resource = ?1",
            params![
                format!("application:{name}"),
                format!("application:{new_name}")
            ],
        )?;
        let (old_groups, new_groups) = (
            format!("deploymentgroup:{name}/"),
            format!("deploymentgroup:{new_name}/"),
        );
        tx.execute(
            "UPDATE tags SET resource = ?2 || substr(resource, length(?1) + 1)
             WHERE substr(resource, 1, length(?1)) = ?1",
            params![old_groups, new_groups],
        )?;
        tx.commit()?;
        Ok(Rename::Renamed)
    }

    /// Deletes an application, its groups, their hosts and traffic registry.
    pub fn delete_application(&self, name: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for sql in [
            "DELETE FROM applications WHERE name = ?1",
            "DELETE FROM groups WHERE application = ?1",
            "DELETE FROM hosts WHERE application = ?1",
            "DELETE FROM traffic WHERE application = ?1",
            "DELETE FROM revisions WHERE application = ?1",
            "DELETE FROM tags WHERE resource = 'application:' || ?1
                 OR substr(resource, 1, length('deploymentgroup:' || ?1 || '/'))
                    = 'deploymentgroup:' || ?1 || '/'",
        ] {
            tx.execute(sql, [name])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Saves a new group; false if its application has one of that name.
    pub fn create_group(&self, group: &DeploymentGroupInfo) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO groups (application, name, info) VALUES (?1, ?2, ?3)",
            params![
                group.application_name,
                group.deployment_group_name,
                serde_json::to_string(group)?
            ],
        )?;
        Ok(n == 1)
    }

    pub fn group_names(&self, application: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT name FROM groups WHERE application = ?1 ORDER BY name")?;
        let names = stmt
            .query_map([application], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(names)
    }

    /// Saves a group's settings under its (maybe new) name, with its lock, history, hosts and
    /// traffic registry.
    pub fn update_group(
        &self,
        current_name: &str,
        group: &DeploymentGroupInfo,
    ) -> Result<Rename, StoreError> {
        let app = &group.application_name;
        let new_name = &group.deployment_group_name;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists = |name: &str| -> Result<bool, rusqlite::Error> {
            tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM groups WHERE application = ?1 AND name = ?2)",
                params![app, name],
                |r| r.get(0),
            )
        };
        if !exists(current_name)? {
            return Ok(Rename::Missing);
        }
        if new_name != current_name && exists(new_name)? {
            return Ok(Rename::NameTaken);
        }
        tx.execute(
            "UPDATE groups SET name = ?3, info = ?4 WHERE application = ?1 AND name = ?2",
            params![app, current_name, new_name, serde_json::to_string(group)?],
        )?;
        for table in ["hosts", "traffic"] {
            tx.execute(
                &format!(
                    "UPDATE {table} SET group_name = ?3 WHERE application = ?1 AND group_name = ?2"
                ),
                params![app, current_name, new_name],
            )?;
        }
        tx.execute(
            "UPDATE tags SET resource = ?2 WHERE resource = ?1",
            params![
                format!("deploymentgroup:{app}/{current_name}"),
                format!("deploymentgroup:{app}/{new_name}")
            ],
        )?;
        tx.commit()?;
        Ok(Rename::Renamed)
    }

    /// Deletes a group, its hosts and traffic registry.
    pub fn delete_group(&self, application: &str, name: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM groups WHERE application = ?1 AND name = ?2",
            [application, name],
        )?;
        for table in ["hosts", "traffic"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE application = ?1 AND group_name = ?2"),
                [application, name],
            )?;
        }
        tx.execute(
            "DELETE FROM tags WHERE resource = ?1",
            [format!("deploymentgroup:{application}/{name}")],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The ids of the deployments of one group, one application, or all, newest first.
    pub fn deployment_ids(
        &self,
        application: Option<&str>,
        group: Option<&str>,
    ) -> Result<Vec<DeploymentId>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id FROM deployments
             WHERE (?1 IS NULL OR application = ?1) AND (?2 IS NULL OR group_name = ?2)
             ORDER BY seq DESC",
        )?;
        let ids: Vec<String> = stmt
            .query_map(params![application, group], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        ids.iter().map(|id| parse_id(id)).collect()
    }

    /// Changes the registered revision with `change`, registering it first (with `new`) if
    /// it is not; the revision as saved.
    fn with_revision(
        &self,
        application: &str,
        revision: &RevisionLocation,
        new: impl FnOnce() -> GenericRevisionInfo,
        change: impl FnOnce(&mut GenericRevisionInfo),
    ) -> Result<GenericRevisionInfo, StoreError> {
        let location = serde_json::to_string(revision)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: Option<String> = tx
            .query_row(
                "SELECT info FROM revisions WHERE application = ?1 AND location = ?2",
                params![application, location],
                |r| r.get(0),
            )
            .optional()?;
        let mut info = match found {
            Some(info) => serde_json::from_str(&info)?,
            None => new(),
        };
        change(&mut info);
        tx.execute(
            "INSERT INTO revisions (application, location, seq, info)
             VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM revisions), ?3)
             ON CONFLICT (application, location) DO UPDATE SET info = excluded.info",
            params![application, location, serde_json::to_string(&info)?],
        )?;
        tx.commit()?;
        Ok(info)
    }

    pub fn revision(
        &self,
        application: &str,
        revision: &RevisionLocation,
    ) -> Result<Option<GenericRevisionInfo>, StoreError> {
        let info: Option<String> = self
            .conn()
            .query_row(
                "SELECT info FROM revisions WHERE application = ?1 AND location = ?2",
                params![application, serde_json::to_string(revision)?],
                |r| r.get(0),
            )
            .optional()?;
        Ok(info.map(|i| serde_json::from_str(&i)).transpose()?)
    }

    pub fn revisions(
        &self,
        application: &str,
    ) -> Result<Vec<(RevisionLocation, GenericRevisionInfo)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT location, info FROM revisions WHERE application = ?1 ORDER BY seq")?;
        let rows: Vec<(String, String)> = stmt
            .query_map([application], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        rows.iter()
            .map(|(l, i)| Ok((serde_json::from_str(l)?, serde_json::from_str(i)?)))
            .collect()
    }

    pub fn tags(&self, resource: &str) -> Result<Vec<Tag>, StoreError> {
        let tags: Option<String> = self
            .conn()
            .query_row(
                "SELECT tags FROM tags WHERE resource = ?1",
                [resource],
                |r| r.get(0),
            )
            .optional()?;
        Ok(tags
            .map(|t| serde_json::from_str(&t))
            .transpose()?
            .unwrap_or_default())
    }

    pub fn set_tags(&self, resource: &str, tags: &[Tag]) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO tags (resource, tags) VALUES (?1, ?2)
             ON CONFLICT (resource) DO UPDATE SET tags = excluded.tags",
            params![resource, serde_json::to_string(tags)?],
        )?;
        Ok(())
    }

    pub fn config_names(&self) -> Result<Vec<String>, StoreError> {
        names(&self.conn(), "SELECT name FROM configs ORDER BY name")
    }

    /// Deletes a custom configuration that no group deploys with.
    pub fn delete_config(&self, name: &str) -> Result<ConfigDeletion, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let users: Vec<(String, String)> = {
            let mut stmt = tx.prepare(
                "SELECT application, name FROM groups
                 WHERE json_extract(info, '$.deploymentConfigName') = ?1
                 ORDER BY application, name",
            )?;
            stmt.query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        if !users.is_empty() {
            return Ok(ConfigDeletion::InUse(users));
        }
        let n = tx.execute("DELETE FROM configs WHERE name = ?1", [name])?;
        tx.commit()?;
        Ok(if n == 1 {
            ConfigDeletion::Deleted
        } else {
            ConfigDeletion::Missing
        })
    }
}

/// On-premises instances, registered and deregistered.
impl LocalStore {
    /// Saves a newly registered instance; false if one of that name is registered (a
    /// deregistered one is replaced).
    pub fn register_instance(&self, instance: &InstanceInfo) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "INSERT INTO instances (name, info) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET info = excluded.info
             WHERE json_extract(instances.info, '$.deregisterTime') IS NOT NULL",
            params![instance.instance_name, serde_json::to_string(instance)?],
        )?;
        Ok(n == 1)
    }

    pub fn instance(&self, name: &str) -> Result<Option<InstanceInfo>, StoreError> {
        let info: Option<String> = self
            .conn()
            .query_row("SELECT info FROM instances WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(info.map(|i| serde_json::from_str(&i)).transpose()?)
    }

    /// Every instance, in name order.
    pub fn instances(&self) -> Result<Vec<InstanceInfo>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT info FROM instances ORDER BY name")?;
        let infos: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        infos.iter().map(|i| Ok(serde_json::from_str(i)?)).collect()
    }

    /// Replaces an instance's record; false if there is none of its name.
    pub fn update_instance(&self, instance: &InstanceInfo) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE instances SET info = ?2 WHERE name = ?1",
            params![instance.instance_name, serde_json::to_string(instance)?],
        )?;
        Ok(n == 1)
    }
}

fn names(conn: &rusqlite::Connection, sql: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let names = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(names)
}

impl Registry for LocalStore {
    async fn create_application(&self, app: &ApplicationInfo) -> Result<bool, PortError> {
        Ok(LocalStore::create_application(self, app)?)
    }

    async fn application(&self, name: &str) -> Result<Option<ApplicationInfo>, PortError> {
        Ok(LocalStore::application(self, name)?)
    }

    async fn application_names(&self) -> Result<Vec<String>, PortError> {
        Ok(LocalStore::application_names(self)?)
    }

    async fn rename_application(&self, name: &str, new_name: &str) -> Result<Rename, PortError> {
        Ok(LocalStore::rename_application(self, name, new_name)?)
    }

    async fn delete_application(&self, name: &str) -> Result<(), PortError> {
        Ok(LocalStore::delete_application(self, name)?)
    }

    async fn create_group(&self, group: &DeploymentGroupInfo) -> Result<bool, PortError> {
        Ok(LocalStore::create_group(self, group)?)
    }

    async fn group(
        &self,
        application: &str,
        name: &str,
    ) -> Result<Option<DeploymentGroupInfo>, PortError> {
        Ok(LocalStore::group(self, application, name)?)
    }

    async fn group_names(&self, application: &str) -> Result<Vec<String>, PortError> {
        Ok(LocalStore::group_names(self, application)?)
    }

    async fn update_group(
        &self,
        current_name: &str,
        group: &DeploymentGroupInfo,
    ) -> Result<Rename, PortError> {
        Ok(LocalStore::update_group(self, current_name, group)?)
    }

    async fn delete_group(&self, application: &str, name: &str) -> Result<(), PortError> {
        Ok(LocalStore::delete_group(self, application, name)?)
    }

    async fn deployment(&self, id: &DeploymentId) -> Result<Option<Deployment>, PortError> {
        Ok(self.load_deployment(id)?)
    }

    async fn deployment_ids(
        &self,
        application: Option<&str>,
        group: Option<&str>,
    ) -> Result<Vec<DeploymentId>, PortError> {
        Ok(LocalStore::deployment_ids(self, application, group)?)
    }

    async fn register_revision(
        &self,
        application: &str,
        revision: &RevisionLocation,
        description: Option<&str>,
        now: Timestamp,
    ) -> Result<GenericRevisionInfo, PortError> {
        let description = description.map(str::to_owned);
        Ok(self.with_revision(
            application,
            revision,
            || GenericRevisionInfo::registered(None, now),
            |info| {
                if description.is_some() {
                    info.description = description;
                }
            },
        )?)
    }

    async fn revision_used(
        &self,
        application: &str,
        revision: &RevisionLocation,
        group: &str,
        now: Timestamp,
    ) -> Result<(), PortError> {
        self.with_revision(
            application,
            revision,
            || GenericRevisionInfo::registered(None, now),
            |info| info.used_by(group, now),
        )?;
        Ok(())
    }

    async fn revision(
        &self,
        application: &str,
        revision: &RevisionLocation,
    ) -> Result<Option<GenericRevisionInfo>, PortError> {
        Ok(LocalStore::revision(self, application, revision)?)
    }

    async fn revisions(
        &self,
        application: &str,
    ) -> Result<Vec<(RevisionLocation, GenericRevisionInfo)>, PortError> {
        Ok(LocalStore::revisions(self, application)?)
    }

    async fn tags(&self, resource: &str) -> Result<Vec<Tag>, PortError> {
        Ok(LocalStore::tags(self, resource)?)
    }

    async fn set_tags(&self, resource: &str, tags: &[Tag]) -> Result<(), PortError> {
        Ok(LocalStore::set_tags(self, resource, tags)?)
    }

    async fn create_config(&self, config: &DeploymentConfigInfo) -> Result<bool, PortError> {
        Ok(LocalStore::create_config(self, config)?)
    }

    async fn config(&self, name: &str) -> Result<Option<DeploymentConfigInfo>, PortError> {
        Ok(LocalStore::config(self, name)?)
    }

    async fn config_names(&self) -> Result<Vec<String>, PortError> {
        Ok(LocalStore::config_names(self)?)
    }

    async fn delete_config(&self, name: &str) -> Result<ConfigDeletion, PortError> {
        Ok(LocalStore::delete_config(self, name)?)
    }

    async fn register_instance(&self, instance: &InstanceInfo) -> Result<bool, PortError> {
        Ok(LocalStore::register_instance(self, instance)?)
    }

    async fn instance(&self, name: &str) -> Result<Option<InstanceInfo>, PortError> {
        Ok(LocalStore::instance(self, name)?)
    }

    async fn instances(&self) -> Result<Vec<InstanceInfo>, PortError> {
        Ok(LocalStore::instances(self)?)
    }

    async fn update_instance(&self, instance: &InstanceInfo) -> Result<bool, PortError> {
        Ok(LocalStore::update_instance(self, instance)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_local_store_keeps_the_registrys_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        cutover_api::contract::check(&store).await;
        // What it saved outlives the process.
        drop(store);
        let store = LocalStore::open(dir.path()).unwrap();
        assert_eq!(store.instances().unwrap().len(), 2);
        assert_eq!(store.application_names().unwrap(), ["Blog", "Store"]);
    }
}
