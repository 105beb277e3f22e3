//! An in-memory registry for the operations' unit tests. It keeps on-premises instances and
//! tags; the other resources are tested over the local store, and calls for them panic here.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use cutover_core::config::DeploymentConfigInfo;
use cutover_core::machine::Deployment;
use cutover_core::model::{
    ApplicationInfo, DeploymentGroupInfo, GenericRevisionInfo, InstanceInfo, RevisionLocation,
};
use cutover_core::{DeploymentId, Timestamp};
use cutover_engine::PortError;

use crate::ops::tags::Tag;
use crate::registry::{ConfigDeletion, Registry, Rename};

#[derive(Debug, Default)]
pub struct MemoryRegistry {
    instances: Mutex<BTreeMap<String, InstanceInfo>>,
    tags: Mutex<BTreeMap<String, Vec<Tag>>>,
}

impl MemoryRegistry {
    fn instances_map(&self) -> MutexGuard<'_, BTreeMap<String, InstanceInfo>> {
        self.instances.lock().unwrap()
    }
}

fn not_kept(what: &str) -> ! {
    panic!("the in-memory registry keeps on-premises instances and tags, not {what}")
}

impl Registry for MemoryRegistry {
    async fn register_instance(&self, instance: &InstanceInfo) -> Result<bool, PortError> {
        let mut map = self.instances_map();
        if map
            .get(&instance.instance_name)
            .is_some_and(InstanceInfo::is_registered)
        {
            return Ok(false);
        }
        map.insert(instance.instance_name.clone(), instance.clone());
        Ok(true)
    }

    async fn instance(&self, name: &str) -> Result<Option<InstanceInfo>, PortError> {
        Ok(self.instances_map().get(name).cloned())
    }

    async fn instances(&self) -> Result<Vec<InstanceInfo>, PortError> {
        Ok(self.instances_map().values().cloned().collect())
    }

    async fn update_instance(&self, instance: &InstanceInfo) -> Result<bool, PortError> {
        Ok(self
            .instances_map()
            .get_mut(&instance.instance_name)
            .map(|saved| *saved = instance.clone())
            .is_some())
    }

    async fn tags(&self, resource: &str) -> Result<Vec<Tag>, PortError> {
        Ok(self
            .tags
            .lock()
            .unwrap()
            .get(resource)
            .cloned()
            .unwrap_or_default())
    }

    async fn set_tags(&self, resource: &str, tags: &[Tag]) -> Result<(), PortError> {
        self.tags
            .lock()
            .unwrap()
            .insert(resource.to_owned(), tags.to_vec());
        Ok(())
    }

    async fn create_application(&self, _: &ApplicationInfo) -> Result<bool, PortError> {
        not_kept("applications")
    }

    async fn application(&self, _: &str) -> Result<Option<ApplicationInfo>, PortError> {
        not_kept("applications")
    }

    async fn application_names(&self) -> Result<Vec<String>, PortError> {
        not_kept("applications")
    }

    async fn rename_application(&self, _: &str, _: &str) -> Result<Rename, PortError> {
        not_kept("applications")
    }

    async fn delete_application(&self, _: &str) -> Result<(), PortError> {
        not_kept("applications")
    }

    async fn create_group(&self, _: &DeploymentGroupInfo) -> Result<bool, PortError> {
        not_kept("deployment groups")
    }

    async fn group(&self, _: &str, _: &str) -> Result<Option<DeploymentGroupInfo>, PortError> {
        not_kept("deployment groups")
    }

    async fn group_names(&self, _: &str) -> Result<Vec<String>, PortError> {
        not_kept("deployment groups")
    }

    async fn update_group(&self, _: &str, _: &DeploymentGroupInfo) -> Result<Rename, PortError> {
        not_kept("deployment groups")
    }

    async fn delete_group(&self, _: &str, _: &str) -> Result<(), PortError> {
        not_kept("deployment groups")
    }

    async fn deployment(&self, _: &DeploymentId) -> Result<Option<Deployment>, PortError> {
        not_kept("deployments")
    }

    async fn deployment_ids(
        &self,
        _: Option<&str>,
        _: Option<&str>,
    ) -> Result<Vec<DeploymentId>, PortError> {
        not_kept("deployments")
    }

    async fn register_revision(
        &self,
        _: &str,
        _: &RevisionLocation,
        _: Option<&str>,
        _: Timestamp,
    ) -> Result<GenericRevisionInfo, PortError> {
        not_kept("revisions")
    }

    async fn revision_used(
        &self,
        _: &str,
        _: &RevisionLocation,
        _: &str,
        _: Timestamp,
    ) -> Result<(), PortError> {
        not_kept("revisions")
    }

    async fn revision(
        &self,
        _: &str,
        _: &RevisionLocation,
    ) -> Result<Option<GenericRevisionInfo>, PortError> {
        not_kept("revisions")
    }

    async fn revisions(
        &self,
        _: &str,
    ) -> Result<Vec<(RevisionLocation, GenericRevisionInfo)>, PortError> {
        not_kept("revisions")
    }

    async fn create_config(&self, _: &DeploymentConfigInfo) -> Result<bool, PortError> {
        not_kept("deployment configurations")
    }

    async fn config(&self, _: &str) -> Result<Option<DeploymentConfigInfo>, PortError> {
        not_kept("deployment configurations")
    }

    async fn config_names(&self) -> Result<Vec<String>, PortError> {
        not_kept("deployment configurations")
    }

    async fn delete_config(&self, _: &str) -> Result<ConfigDeletion, PortError> {
        not_kept("deployment configurations")
    }
}
