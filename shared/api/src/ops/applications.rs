//! CreateApplication, GetApplication, UpdateApplication, DeleteApplication, ListApplications
//! and BatchGetApplications.

use cutover_core::Timestamp;
use cutover_core::model::{ApplicationInfo, ComputePlatform};
use cutover_engine::ids;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::tags::{self, Tag, Tagged};
use super::{
    application_does_not_exist, application_name, batch, existing_application, internal, page,
};
use crate::registry::{Registry, Rename};
use crate::wire::ApiError;

/// The most names one BatchGetApplications takes.
const MAX_BATCH: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateInput {
    application_name: Option<String>,
    compute_platform: Option<ComputePlatform>,
    #[serde(default)]
    tags: Vec<Tag>,
}

pub async fn create(
    registry: &impl Registry,
    input: CreateInput,
    now: Timestamp,
) -> Result<Value, ApiError> {
    let name = application_name(input.application_name.as_deref())?;
    // Checked before anything is saved.
    tags::merged(Vec::new(), input.tags.clone())?;
    let app = ApplicationInfo {
        application_id: ids::uuid(),
        application_name: name.to_owned(),
        create_time: now,
        linked_to_git_hub: false,
        git_hub_account_name: None,
        compute_platform: input.compute_platform.unwrap_or_default(),
    };
    let created = registry
        .create_application(&app)
        .await
        .map_err(internal("saving the application"))?;
    if !created {
        return Err(ApiError::codedeploy(
            "ApplicationAlreadyExistsException",
            format!("The application {name} already exists with the IAM user or AWS account."),
        ));
    }
    if !input.tags.is_empty() {
        tags::add(registry, &Tagged::Application(name.to_owned()), input.tags).await?;
    }
    Ok(json!({ "applicationId": app.application_id }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NameInput {
    application_name: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetOutput {
    application: ApplicationInfo,
}

pub async fn get(registry: &impl Registry, input: NameInput) -> Result<GetOutput, ApiError> {
    let name = application_name(input.application_name.as_deref())?;
    let application = existing_application(registry, name).await?;
    Ok(GetOutput { application })
}

pub async fn delete(registry: &impl Registry, input: NameInput) -> Result<Value, ApiError> {
    let name = application_name(input.application_name.as_deref())?;
    registry
        .delete_application(name)
        .await
        .map_err(internal("deleting the application"))?;
    Ok(json!({}))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateInput {
    application_name: Option<String>,
    new_application_name: Option<String>,
}

pub async fn update(registry: &impl Registry, input: UpdateInput) -> Result<Value, ApiError> {
    let name = application_name(input.application_name.as_deref())?;
    let Some(new_name) = input.new_application_name.as_deref() else {
        // Nothing to change; the application must still exist.
        existing_application(registry, name).await?;
        return Ok(json!({}));
    };
    let new_name = application_name(Some(new_name))?;
    if new_name == name {
        existing_application(registry, name).await?;
        return Ok(json!({}));
    }
    match registry
        .rename_application(name, new_name)
        .await
        .map_err(internal("renaming the application"))?
    {
        Rename::Renamed => Ok(json!({})),
        Rename::Missing => Err(application_does_not_exist(name)),
        Rename::NameTaken => Err(ApiError::codedeploy(
            "ApplicationAlreadyExistsException",
            format!("The application {new_name} already exists with the IAM user or AWS account."),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListOutput {
    applications: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub async fn list(registry: &impl Registry, input: ListInput) -> Result<ListOutput, ApiError> {
    let names = registry
        .application_names()
        .await
        .map_err(internal("listing the applications"))?;
    let (applications, next_token) = page(names, input.next_token.as_deref())?;
    Ok(ListOutput {
        applications,
        next_token,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchGetInput {
    application_names: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetOutput {
    applications_info: Vec<ApplicationInfo>,
}

pub async fn batch_get(
    registry: &impl Registry,
    input: BatchGetInput,
) -> Result<BatchGetOutput, ApiError> {
    let names = batch(
        input.application_names,
        "application names",
        MAX_BATCH,
        "ApplicationNameRequiredException",
    )?;
    let mut applications_info = Vec::with_capacity(names.len());
    for n in &names {
        let n = application_name(Some(n))?;
        applications_info.push(existing_application(registry, n).await?);
    }
    Ok(BatchGetOutput { applications_info })
}
