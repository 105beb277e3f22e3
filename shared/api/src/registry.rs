//! The registry port: where the API keeps applications, their revisions and deployment
//! groups, custom deployment configurations and on-premises instances, and reads deployments.
//! The local store and the DynamoDB table implement it.

use std::future::Future;

use cutover_core::DeploymentId;
use cutover_core::Timestamp;
use cutover_core::config::DeploymentConfigInfo;
use cutover_core::machine::Deployment;
use cutover_core::model::{
    ApplicationInfo, DeploymentGroupInfo, GenericRevisionInfo, InstanceInfo, RevisionLocation,
};
use cutover_engine::PortError;

use crate::ops::tags::Tag;

/// What [`Registry::delete_config`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigDeletion {
    Deleted,
    /// There was no configuration of that name.
    Missing,
    /// These groups (application, group) deploy with it.
    InUse(Vec<(String, String)>),
}

/// What [`Registry::rename_application`] or [`Registry::update_group`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rename {
    Renamed,
    /// There was no application of that name.
    Missing,
    /// The new name is taken.
    NameTaken,
}

/// Applications, their deployment groups, custom deployment configurations, and on-premises
/// instances.
pub trait Registry: Send + Sync {
    /// Saves a new application; false if one of that name exists already.
    fn create_application(
        &self,
        app: &ApplicationInfo,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;

    fn application(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ApplicationInfo>, PortError>> + Send;

    /// Every application's name, in order.
    fn application_names(&self) -> impl Future<Output = Result<Vec<String>, PortError>> + Send;

    /// Renames an application and the deployment groups filed under it, with their tags.
    fn rename_application(
        &self,
        name: &str,
        new_name: &str,
    ) -> impl Future<Output = Result<Rename, PortError>> + Send;

    /// Deletes an application and its deployment groups, with their tags (its deployments stay,
    /// as CodeDeploy keeps them); nothing happens if there is none of that name.
    fn delete_application(&self, name: &str) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Saves a new deployment group; false if its application has one of that name already.
    fn create_group(
        &self,
        group: &DeploymentGroupInfo,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;

    fn group(
        &self,
        application: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<DeploymentGroupInfo>, PortError>> + Send;

    /// The names of an application's groups, in order.
    fn group_names(
        &self,
        application: &str,
    ) -> impl Future<Output = Result<Vec<String>, PortError>> + Send;

    /// Saves a group's new settings, under a new name if `group` has one; the group keeps its
    /// lock, history and hosts.
    fn update_group(
        &self,
        current_name: &str,
        group: &DeploymentGroupInfo,
    ) -> impl Future<Output = Result<Rename, PortError>> + Send;

    /// Deletes a group (its deployments stay); nothing happens if there is none.
    fn delete_group(
        &self,
        application: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// A deployment, as last saved.
    fn deployment(
        &self,
        id: &DeploymentId,
    ) -> impl Future<Output = Result<Option<Deployment>, PortError>> + Send;

    /// The ids of the deployments of one group, of one application, or of all, newest first.
    fn deployment_ids(
        &self,
        application: Option<&str>,
        group: Option<&str>,
    ) -> impl Future<Output = Result<Vec<DeploymentId>, PortError>> + Send;

    /// Registers a revision with an application, or updates the description of one registered
    /// already; the revision as it stands after.
    fn register_revision(
        &self,
        application: &str,
        revision: &RevisionLocation,
        description: Option<&str>,
        now: Timestamp,
    ) -> impl Future<Output = Result<GenericRevisionInfo, PortError>> + Send;

    /// Records that `group` deploys a revision, registering it if it was not.
    fn revision_used(
        &self,
        application: &str,
        revision: &RevisionLocation,
        group: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    fn revision(
        &self,
        application: &str,
        revision: &RevisionLocation,
    ) -> impl Future<Output = Result<Option<GenericRevisionInfo>, PortError>> + Send;

    /// Every revision registered with an application, in the order they were registered.
    fn revisions(
        &self,
        application: &str,
    ) -> impl Future<Output = Result<Vec<(RevisionLocation, GenericRevisionInfo)>, PortError>> + Send;

    /// The tags of a resource, by its key ([`crate::ops::tags::Tagged::key`]).
    fn tags(&self, resource: &str) -> impl Future<Output = Result<Vec<Tag>, PortError>> + Send;

    /// Replaces the tags of a resource.
    fn set_tags(
        &self,
        resource: &str,
        tags: &[Tag],
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Saves a new custom configuration; false if one of that name exists already.
    fn create_config(
        &self,
        config: &DeploymentConfigInfo,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;

    /// A custom configuration.
    fn config(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<DeploymentConfigInfo>, PortError>> + Send;

    /// Every custom configuration's name, in order.
    fn config_names(&self) -> impl Future<Output = Result<Vec<String>, PortError>> + Send;

    /// Deletes a custom configuration that no deployment group uses.
    fn delete_config(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<ConfigDeletion, PortError>> + Send;

    /// Saves a newly registered on-premises instance; false if an instance of that name is
    /// registered already (a deregistered one of that name is replaced).
    fn register_instance(
        &self,
        instance: &InstanceInfo,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;

    /// An on-premises instance, registered or deregistered.
    fn instance(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<InstanceInfo>, PortError>> + Send;

    /// Every on-premises instance, registered or deregistered, in name order.
    fn instances(&self) -> impl Future<Output = Result<Vec<InstanceInfo>, PortError>> + Send;

    /// Replaces the saved record of an instance (its tags, its deregistration); false if there
    /// is none.
    fn update_instance(
        &self,
        instance: &InstanceInfo,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
}
