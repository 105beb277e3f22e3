//! TagResource, UntagResource and ListTagsForResource, on applications and deployment groups
//! named by their ARNs; and the tags CreateApplication and CreateDeploymentGroup are given.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{existing_application, existing_group, internal, page};
use crate::registry::Registry;
use crate::wire::ApiError;

/// The limits of one kind of resource's tags, and the exceptions CodeDeploy reports them with.
#[derive(Clone, Copy, Debug)]
pub struct TagLimits {
    /// What carries the tags, for messages ("a resource").
    pub what: &'static str,
    /// The most tags one resource carries.
    pub max: usize,
    /// The exception for a key or value that is not allowed.
    pub invalid: &'static str,
    /// The exception for more than `max` tags.
    pub too_many: &'static str,
}

/// Applications and deployment groups carry up to 50 tags, as AWS resources do.
pub const RESOURCE_TAGS: TagLimits = TagLimits {
    what: "a resource",
    max: 50,
    invalid: "InvalidTagsToAddException",
    too_many: "InvalidTagsToAddException",
};

pub use cutover_core::model::Tag;

/// A deployment group's tag that gives its Lambda deployments a bake time: after all traffic
/// has moved, the alarms are watched this many minutes more, and the traffic moved back if one
/// goes off. CodeDeploy has no such setting; a tag carries it unchanged through every client.
pub const BAKE_TIME_TAG: &str = "cutover:bakeTimeInMinutes";
/// The longest bake time, as CodeDeploy's longest waits.
pub const MAX_BAKE_MINUTES: u32 = 2880;

/// The bake time `tags` give, if any.
pub fn bake_time(tags: &[Tag]) -> Option<u32> {
    tags.iter()
        .find(|t| t.key == BAKE_TIME_TAG)
        .and_then(|t| t.value.trim().parse().ok())
        .filter(|&m| m > 0 && m <= MAX_BAKE_MINUTES)
}

/// The bake time of the Lambda deployments of group `application`/`group`, from its tags.
pub async fn group_bake_time(
    registry: &impl Registry,
    application: &str,
    group: &str,
) -> Result<Option<u32>, cutover_engine::PortError> {
    let key = Tagged::Group {
        application: application.to_owned(),
        group: group.to_owned(),
    }
    .key();
    Ok(bake_time(&registry.tags(&key).await?))
}

/// A resource that carries tags, as its ARN names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tagged {
    Application(String),
    Group { application: String, group: String },
}

impl Tagged {
    /// The key the registry files the resource's tags under.
    pub fn key(&self) -> String {
        match self {
            Tagged::Application(app) => format!("application:{app}"),
            Tagged::Group { application, group } => {
                format!("deploymentgroup:{application}/{group}")
            }
        }
    }

    /// Reads `arn:<partition>:codedeploy:<region>:<account>:application:<name>` or
    /// `...:deploymentgroup:<application>/<group>`.
    pub fn from_arn(arn: &str) -> Result<Tagged, ApiError> {
        let parts: Vec<&str> = arn.splitn(7, ':').collect();
        let [prefix, _partition, service, _region, _account, kind, name] = parts[..] else {
            return Err(invalid_arn(arn));
        };
        if prefix != "arn" || service != "codedeploy" || name.is_empty() {
            return Err(invalid_arn(arn));
        }
        match kind {
            "application" => Ok(Tagged::Application(name.to_owned())),
            "deploymentgroup" => match name.split_once('/') {
                Some((application, group)) if !application.is_empty() && !group.is_empty() => {
                    Ok(Tagged::Group {
                        application: application.to_owned(),
                        group: group.to_owned(),
                    })
                }
                _ => Err(invalid_arn(arn)),
            },
            other => Err(ApiError::codedeploy(
                "ArnNotSupportedException",
                format!(
                    "cutover keeps tags on applications and deployment groups, not on {other} resources"
                ),
            )),
        }
    }

    /// Fails unless the resource exists.
    async fn check(&self, registry: &impl Registry) -> Result<(), ApiError> {
        match self {
            Tagged::Application(app) => existing_application(registry, app).await.map(drop),
            Tagged::Group { application, group } => {
                existing_application(registry, application).await?;
                existing_group(registry, application, group).await.map(drop)
            }
        }
    }
}

fn invalid_arn(arn: &str) -> ApiError {
    ApiError::codedeploy(
        "InvalidArnException",
        format!(
            "'{arn}' is not the ARN of a CodeDeploy application (arn:aws:codedeploy:REGION:ACCOUNT:application:NAME) or deployment group (...:deploymentgroup:APPLICATION/GROUP)"
        ),
    )
}

/// `current` with `added` laid over it (a tag given again changes its value), checked against
/// AWS's limits for applications and deployment groups.
pub fn merged(current: Vec<Tag>, added: Vec<Tag>) -> Result<Vec<Tag>, ApiError> {
    merged_within(&RESOURCE_TAGS, current, added)
}

/// `current` with `added` laid over it, checked against `limits`.
pub fn merged_within(
    limits: &TagLimits,
    mut current: Vec<Tag>,
    added: Vec<Tag>,
) -> Result<Vec<Tag>, ApiError> {
    for tag in added {
        if tag.key.is_empty() || tag.key.chars().count() > 128 || tag.value.chars().count() > 256 {
            return Err(ApiError::codedeploy(
                limits.invalid,
                format!(
                    "tag '{}': keys are 1 to 128 characters and values at most 256",
                    tag.key
                ),
            ));
        }
        if tag.key == BAKE_TIME_TAG
            && !tag
                .value
                .trim()
                .parse::<u32>()
                .is_ok_and(|m| m <= MAX_BAKE_MINUTES)
        {
            return Err(ApiError::codedeploy(
                limits.invalid,
                format!(
                    "tag {BAKE_TIME_TAG} is a number of minutes from 0 to {MAX_BAKE_MINUTES}, not '{}'",
                    tag.value
                ),
            ));
        }
        match current.iter_mut().find(|t| t.key == tag.key) {
            Some(t) => t.value = tag.value,
            None => current.push(tag),
        }
    }
    if current.len() > limits.max {
        return Err(ApiError::codedeploy(
            limits.too_many,
            format!(
                "{} carries at most {} tags; this one would carry {}",
                limits.what,
                limits.max,
                current.len()
            ),
        ));
    }
    Ok(current)
}

/// Adds `tags` to a resource that exists.
pub async fn add(
    registry: &impl Registry,
    resource: &Tagged,
    tags: Vec<Tag>,
) -> Result<(), ApiError> {
    let current = registry
        .tags(&resource.key())
        .await
        .map_err(internal("reading the tags"))?;
    let tags = merged(current, tags)?;
    registry
        .set_tags(&resource.key(), &tags)
        .await
        .map_err(internal("saving the tags"))
}

fn resource(arn: Option<&str>) -> Result<Tagged, ApiError> {
    let arn = arn.filter(|a| !a.is_empty()).ok_or_else(|| {
        ApiError::codedeploy(
            "ResourceArnRequiredException",
            "The resource ARN must be specified.",
        )
    })?;
    Tagged::from_arn(arn)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TagInput {
    resource_arn: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

pub async fn tag(registry: &impl Registry, input: TagInput) -> Result<Value, ApiError> {
    let resource = resource(input.resource_arn.as_deref())?;
    if input.tags.is_empty() {
        return Err(ApiError::codedeploy(
            "TagRequiredException",
            "The tags must be specified.",
        ));
    }
    resource.check(registry).await?;
    add(registry, &resource, input.tags).await?;
    Ok(json!({}))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UntagInput {
    resource_arn: Option<String>,
    #[serde(default)]
    tag_keys: Vec<String>,
}

pub async fn untag(registry: &impl Registry, input: UntagInput) -> Result<Value, ApiError> {
    let resource = resource(input.resource_arn.as_deref())?;
    if input.tag_keys.is_empty() {
        return Err(ApiError::codedeploy(
            "TagRequiredException",
            "The tag keys must be specified.",
        ));
    }
    resource.check(registry).await?;
    let mut tags = registry
        .tags(&resource.key())
        .await
        .map_err(internal("reading the tags"))?;
    tags.retain(|t| !input.tag_keys.contains(&t.key));
    registry
        .set_tags(&resource.key(), &tags)
        .await
        .map_err(internal("saving the tags"))?;
    Ok(json!({}))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ListInput {
    resource_arn: Option<String>,
    next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListOutput {
    tags: Vec<Tag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub async fn list(registry: &impl Registry, input: ListInput) -> Result<ListOutput, ApiError> {
    let resource = resource(input.resource_arn.as_deref())?;
    resource.check(registry).await?;
    let tags = registry
        .tags(&resource.key())
        .await
        .map_err(internal("reading the tags"))?;
    let (tags, next_token) = page(tags, input.next_token.as_deref())?;
    Ok(ListOutput { tags, next_token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_name_applications_and_groups() {
        assert_eq!(
            Tagged::from_arn("arn:aws:codedeploy:us-east-1:123456789012:application:Shop").unwrap(),
            Tagged::Application("Shop".into())
        );
        let group =
            Tagged::from_arn("arn:aws:codedeploy:eu-west-1:123456789012:deploymentgroup:Shop/Web")
                .unwrap();
        assert_eq!(group.key(), "deploymentgroup:Shop/Web");
        for bad in [
            "Shop",
            "arn:aws:s3:::bucket",
            "arn:aws:codedeploy:us-east-1:1:deploymentgroup:Shop",
            "arn:aws:codedeploy:us-east-1:1:application:",
        ] {
            assert_eq!(
                Tagged::from_arn(bad).unwrap_err().kind.name(),
                "InvalidArnException",
                "{bad}"
            );
        }
        let e =
            Tagged::from_arn("arn:aws:codedeploy:us-east-1:1:deploymentconfig:Mine").unwrap_err();
        assert_eq!(e.kind.name(), "ArnNotSupportedException");
    }

    #[test]
    fn tags_given_again_change_their_value_and_stop_at_fifty() {
        let tag = |k: &str, v: &str| Tag {
            key: k.into(),
            value: v.into(),
        };
        let tags = merged(
            vec![tag("team", "web")],
            vec![tag("team", "api"), tag("env", "prod")],
        )
        .unwrap();
        assert_eq!(tags, [tag("team", "api"), tag("env", "prod")]);
        let many: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), "")).collect();
        assert_eq!(
            merged(Vec::new(), many).unwrap_err().kind.name(),
            "InvalidTagsToAddException"
        );
        assert!(merged(Vec::new(), vec![tag("", "x")]).is_err());
    }
}
