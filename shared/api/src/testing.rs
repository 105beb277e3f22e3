//! An in-memory registry and deployer for the operations' unit tests. The registry keeps
//! applications, deployment groups, deployments, on-premises instances and tags; revisions and
//! custom configurations are tested over the local store, and calls for them panic here. The
//! deployer decides with the core's state machine, as the engine does, without carrying out what
//! it decides.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use cutover_core::config::DeploymentConfigInfo;
use cutover_core::machine::{self, CreateDeployment, Deployment, Event, HookStatus};
use cutover_core::model::{
    ApplicationInfo, DeploymentGroupInfo, DeploymentWaitType, GenericRevisionInfo, InstanceInfo,
    RevisionLocation,
};
use cutover_core::{DeploymentId, Timestamp};
use cutover_engine::{HookReport, PortError};

use crate::deployer::Deployer;
use crate::ops::tags::Tag;
use crate::registry::{ConfigDeletion, Registry, Rename};

/// The time the in-memory deployer decides at.
pub const NOW: Timestamp = Timestamp::from_secs(1_700_000_000);

#[derive(Debug, Default)]
pub struct MemoryRegistry {
    instances: Mutex<BTreeMap<String, InstanceInfo>>,
    tags: Mutex<BTreeMap<String, Vec<Tag>>>,
    applications: Mutex<BTreeMap<String, ApplicationInfo>>,
    /// By application, then group name.
    groups: Mutex<BTreeMap<(String, String), DeploymentGroupInfo>>,
    deployments: Mutex<BTreeMap<DeploymentId, Deployment>>,
}

impl MemoryRegistry {
    fn instances_map(&self) -> MutexGuard<'_, BTreeMap<String, InstanceInfo>> {
        self.instances.lock().unwrap()
    }

    /// Saves `d` as it is, for a test that puts a deployment in the phase it needs.
    pub fn put_deployment(&self, d: Deployment) {
        self.deployments
            .lock()
            .unwrap()
            .insert(d.deployment_id.clone(), d);
    }

    /// `event` decided by the core for deployment `id`, and the deployment saved after.
    fn decide(&self, id: &DeploymentId, event: Event) -> Result<Deployment, PortError> {
        let mut deployments = self.deployments.lock().unwrap();
        let d = deployments
            .get_mut(id)
            .ok_or_else(|| PortError::permanent(format!("no deployment {id}")))?;
        let t = machine::advance(d, event, NOW).map_err(|e| PortError::permanent(e.to_string()))?;
        *d = t.deployment;
        Ok(d.clone())
    }
}

fn not_kept(what: &str) -> ! {
    panic!(
        "the in-memory registry keeps applications, groups, deployments, on-premises instances and tags, not {what}"
    )
}

impl Deployer for MemoryRegistry {
    async fn create(&self, request: CreateDeployment) -> Result<Deployment, PortError> {
        let d =
            Deployment::create(request, NOW).map_err(|e| PortError::permanent(e.to_string()))?;
        self.put_deployment(d.clone());
        Ok(d)
    }

    async fn stop(
        &self,
        id: &DeploymentId,
        auto_rollback_enabled: Option<bool>,
    ) -> Result<Deployment, PortError> {
        self.decide(
            id,
            Event::StopRequested {
                auto_rollback_enabled,
            },
        )
    }

    async fn continue_deployment(
        &self,
        id: &DeploymentId,
        wait: DeploymentWaitType,
    ) -> Result<Deployment, PortError> {
        self.decide(id, Event::ContinueRequested { wait })
    }

    async fn report_hook(
        &self,
        _: &DeploymentId,
        _: &str,
        _: HookStatus,
    ) -> Result<HookReport, PortError> {
        not_kept("hook executions")
    }
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

    async fn create_application(&self, app: &ApplicationInfo) -> Result<bool, PortError> {
        let mut apps = self.applications.lock().unwrap();
        if apps.contains_key(&app.application_name) {
            return Ok(false);
        }
        apps.insert(app.application_name.clone(), app.clone());
        Ok(true)
    }

    async fn application(&self, name: &str) -> Result<Option<ApplicationInfo>, PortError> {
        Ok(self.applications.lock().unwrap().get(name).cloned())
    }

    async fn application_names(&self) -> Result<Vec<String>, PortError> {
        Ok(self.applications.lock().unwrap().keys().cloned().collect())
    }

    async fn rename_application(&self, _: &str, _: &str) -> Result<Rename, PortError> {
        not_kept("application renames")
    }

    async fn delete_application(&self, _: &str) -> Result<(), PortError> {
        not_kept("application deletions")
    }

    async fn create_group(&self, group: &DeploymentGroupInfo) -> Result<bool, PortError> {
        let key = (
            group.application_name.clone(),
            group.deployment_group_name.clone(),
        );
        let mut groups = self.groups.lock().unwrap();
        if groups.contains_key(&key) {
            return Ok(false);
        }
        groups.insert(key, group.clone());
        Ok(true)
    }

    async fn group(
        &self,
        application: &str,
        name: &str,
    ) -> Result<Option<DeploymentGroupInfo>, PortError> {
        let key = (application.to_owned(), name.to_owned());
        Ok(self.groups.lock().unwrap().get(&key).cloned())
    }

    async fn group_names(&self, application: &str) -> Result<Vec<String>, PortError> {
        Ok(self
            .groups
            .lock()
            .unwrap()
            .keys()
            .filter(|(app, _)| app == application)
            .map(|(_, name)| name.clone())
            .collect())
    }

    async fn update_group(
        &self,
        current_name: &str,
        group: &DeploymentGroupInfo,
    ) -> Result<Rename, PortError> {
        let app = group.application_name.clone();
        let current = (app.clone(), current_name.to_owned());
        let new = (app, group.deployment_group_name.clone());
        let mut groups = self.groups.lock().unwrap();
        if !groups.contains_key(&current) {
            return Ok(Rename::Missing);
        }
        if new != current && groups.contains_key(&new) {
            return Ok(Rename::NameTaken);
        }
        groups.remove(&current);
        groups.insert(new, group.clone());
        Ok(Rename::Renamed)
    }

    async fn delete_group(&self, application: &str, name: &str) -> Result<(), PortError> {
        let key = (application.to_owned(), name.to_owned());
        self.groups.lock().unwrap().remove(&key);
        Ok(())
    }

    async fn deployment(&self, id: &DeploymentId) -> Result<Option<Deployment>, PortError> {
        Ok(self.deployments.lock().unwrap().get(id).cloned())
    }

    async fn deployment_ids(
        &self,
        _: Option<&str>,
        _: Option<&str>,
    ) -> Result<Vec<DeploymentId>, PortError> {
        not_kept("deployment lists")
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

    /// Records nothing: CreateDeployment's tests here are about the deployment, not its revision.
    async fn revision_used(
        &self,
        _: &str,
        _: &RevisionLocation,
        _: &str,
        _: Timestamp,
    ) -> Result<(), PortError> {
        Ok(())
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
