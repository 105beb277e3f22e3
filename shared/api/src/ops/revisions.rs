//! RegisterApplicationRevision, GetApplicationRevision, ListApplicationRevisions and
//! BatchGetApplicationRevisions. `aws deploy push` registers the bundle it uploads; a
//! deployment registers the revision it installs and records where it was used.

use cutover_core::Timestamp;
use cutover_core::model::{GenericRevisionInfo, RevisionLocation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{application_name, batch, existing_application, internal, page};
use crate::registry::Registry;
use crate::wire::ApiError;

/// The most revisions one BatchGetApplicationRevisions takes, as in CodeDeploy.
const MAX_BATCH: usize = 25;

/// A revision that can be registered: an S3 bundle or a GitHub commit, with what locates it.
fn checked(revision: Option<RevisionLocation>) -> Result<RevisionLocation, ApiError> {
    let revision = revision.ok_or_else(|| {
        ApiError::codedeploy(
            "RevisionRequiredException",
            "The revision must be specified.",
        )
    })?;
    let complete = match &revision {
        RevisionLocation::S3(s3) => !s3.bucket.is_empty() && !s3.key.is_empty(),
        RevisionLocation::GitHub(g) => !g.repository.is_empty() && !g.commit_id.is_empty(),
        RevisionLocation::String(_) | RevisionLocation::AppSpecContent(_) => true,
        RevisionLocation::Local(_) => false,
    };
    if !complete {
        return Err(ApiError::codedeploy(
            "InvalidRevisionException",
            "The revision is incomplete: an S3 revision needs a bucket and a key, a GitHub revision a repository and a commit ID.",
        ));
    }
    Ok(revision)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterInput {
    application_name: Option<String>,
    revision: Option<RevisionLocation>,
    description: Option<String>,
}

pub async fn register(
    registry: &impl Registry,
    input: RegisterInput,
    now: Timestamp,
) -> Result<Value, ApiError> {
    let app = application_name(input.application_name.as_deref())?;
    let revision = checked(input.revision)?;
    existing_application(registry, app).await?;
    registry
        .register_revision(app, &revision, input.description.as_deref(), now)
        .await
        .map_err(internal("registering the revision"))?;
    Ok(json!({}))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetInput {
    application_name: Option<String>,
    revision: Option<RevisionLocation>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetOutput {
    application_name: String,
    revision: RevisionLocation,
    revision_info: GenericRevisionInfo,
}

pub async fn get(registry: &impl Registry, input: GetInput) -> Result<GetOutput, ApiError> {
    let app = application_name(input.application_name.as_deref())?;
    let revision = checked(input.revision)?;
    existing_application(registry, app).await?;
    let revision_info = registry
        .revision(app, &revision)
        .await
        .map_err(internal("reading the revision"))?
        .ok_or_else(|| {
            ApiError::codedeploy(
                "RevisionDoesNotExistException",
                format!("No application revision found for this revision in application {app}"),
            )
        })?;
    Ok(GetOutput {
        application_name: app.to_owned(),
        revision,
        revision_info,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    application_name: Option<String>,
    sort_by: Option<String>,
    sort_order: Option<String>,
    s3_bucket: Option<String>,
    s3_key_prefix: Option<String>,
    deployed: Option<String>,
    next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListOutput {
    revisions: Vec<RevisionLocation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub async fn list(registry: &impl Registry, input: ListInput) -> Result<ListOutput, ApiError> {
    let app = application_name(input.application_name.as_deref())?;
    existing_application(registry, app).await?;
    let mut found = registry
        .revisions(app)
        .await
        .map_err(internal("listing the revisions"))?;
    let bucket = input.s3_bucket.as_deref().filter(|b| !b.is_empty());
    let prefix = input.s3_key_prefix.as_deref().unwrap_or_default();
    if bucket.is_none() && !prefix.is_empty() {
        return Err(ApiError::codedeploy(
            "InvalidKeyPrefixFilterException",
            "s3KeyPrefix needs s3Bucket.",
        ));
    }
    if let Some(bucket) = bucket {
        found.retain(|(r, _)| {
            matches!(r, RevisionLocation::S3(s3) if s3.bucket == bucket && s3.key.starts_with(prefix))
        });
    }
    match input.deployed.as_deref() {
        None | Some("ignore") => {}
        Some("include") => found.retain(|(_, i)| i.first_used_time.is_some()),
        Some("exclude") => found.retain(|(_, i)| i.first_used_time.is_none()),
        Some(other) => {
            return Err(ApiError::codedeploy(
                "InvalidDeployedStateFilterException",
                format!("deployed '{other}' is not include, exclude or ignore"),
            ));
        }
    }
    let key = |i: &GenericRevisionInfo| match input.sort_by.as_deref() {
        Some("firstUsedTime") => Ok(i.first_used_time),
        Some("lastUsedTime") => Ok(i.last_used_time),
        None | Some("registerTime") => Ok(Some(i.register_time)),
        Some(other) => Err(other.to_owned()),
    };
    if let Some((_, i)) = found.first()
        && let Err(other) = key(i)
    {
        return Err(ApiError::codedeploy(
            "InvalidSortByException",
            format!("sortBy '{other}' is not registerTime, firstUsedTime or lastUsedTime"),
        ));
    }
    found.sort_by_key(|(_, i)| key(i).ok().flatten());
    match input.sort_order.as_deref() {
        None | Some("ascending") => {}
        Some("descending") => found.reverse(),
        Some(other) => {
            return Err(ApiError::codedeploy(
                "InvalidSortOrderException",
                format!("sortOrder '{other}' is not ascending or descending"),
            ));
        }
    }
    let (revisions, next_token) = page(
        found.into_iter().map(|(r, _)| r).collect(),
        input.next_token.as_deref(),
    )?;
    Ok(ListOutput {
        revisions,
        next_token,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchGetInput {
    application_name: Option<String>,
    revisions: Option<Vec<RevisionLocation>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionInfo {
    revision_location: RevisionLocation,
    generic_revision_info: GenericRevisionInfo,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetOutput {
    application_name: String,
    revisions: Vec<RevisionInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
}

pub async fn batch_get(
    registry: &impl Registry,
    input: BatchGetInput,
) -> Result<BatchGetOutput, ApiError> {
    let app = application_name(input.application_name.as_deref())?;
    let wanted = batch(
        input.revisions,
        "revisions",
        MAX_BATCH,
        "RevisionRequiredException",
    )?;
    existing_application(registry, app).await?;
    let mut revisions = Vec::new();
    let mut missing = 0;
    for r in wanted {
        let r = checked(Some(r))?;
        match registry
            .revision(app, &r)
            .await
            .map_err(internal("reading the revision"))?
        {
            Some(info) => revisions.push(RevisionInfo {
                revision_location: r,
                generic_revision_info: info,
            }),
            None => missing += 1,
        }
    }
    let error_message = (missing > 0)
        .then(|| format!("{missing} of the revisions are not registered with application {app}"));
    Ok(BatchGetOutput {
        application_name: app.to_owned(),
        revisions,
        error_message,
    })
}
