//! The operations, one module per kind of resource. Each takes its input as CodeDeploy names
//! it, checks it as CodeDeploy does, and answers with CodeDeploy's output or exception.

pub mod applications;
pub mod configs;
pub mod deployments;
pub mod groups;
pub mod hooks;
pub mod instances;
pub mod revisions;
pub mod tags;

use cutover_core::model::{ApplicationInfo, DeploymentGroupInfo};
use cutover_engine::PortError;

use crate::registry::Registry;
use crate::wire::ApiError;

/// The most names one page of a List operation holds.
pub const PAGE_SIZE: usize = 100;

/// One page of `names` from `next_token` on, and the token of the page after it.
pub fn page<T: Clone>(
    names: Vec<T>,
    next_token: Option<&str>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let start = match next_token {
        None | Some("") => 0,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|&n| n <= names.len())
            .ok_or_else(|| {
                ApiError::codedeploy(
                    "InvalidNextTokenException",
                    format!("'{t}' is not a token this list gave out"),
                )
            })?,
    };
    let end = (start + PAGE_SIZE).min(names.len());
    let next = (end < names.len()).then(|| end.to_string());
    Ok((names[start..end].to_vec(), next))
}

/// CodeDeploy's longest application, deployment group or on-premises instance name.
pub const MAX_NAME: usize = 100;

pub fn application_name(value: Option<&str>) -> Result<&str, ApiError> {
    name(
        value,
        "application",
        MAX_NAME,
        "ApplicationNameRequiredException",
        "InvalidApplicationNameException",
    )
}

pub fn group_name(value: Option<&str>) -> Result<&str, ApiError> {
    name(
        value,
        "deployment group",
        MAX_NAME,
        "DeploymentGroupNameRequiredException",
        "InvalidDeploymentGroupNameException",
    )
}

/// An application that must exist.
pub async fn existing_application(
    registry: &impl Registry,
    name: &str,
) -> Result<ApplicationInfo, ApiError> {
    registry
        .application(name)
        .await
        .map_err(internal("reading the application"))?
        .ok_or_else(|| application_does_not_exist(name))
}

pub fn application_does_not_exist(name: &str) -> ApiError {
    ApiError::codedeploy(
        "ApplicationDoesNotExistException",
        format!("No application found for name: {name}"),
    )
}

pub fn group_does_not_exist(app: &str, group: &str) -> ApiError {
    ApiError::codedeploy(
        "DeploymentGroupDoesNotExistException",
        format!("No Deployment Group found for name: {group} in application {app}"),
    )
}

/// A deployment group that must exist.
pub async fn existing_group(
    registry: &impl Registry,
    app: &str,
    group: &str,
) -> Result<DeploymentGroupInfo, ApiError> {
    registry
        .group(app, group)
        .await
        .map_err(internal("reading the deployment group"))?
        .ok_or_else(|| group_does_not_exist(app, group))
}

/// The names a Batch operation was given: `required` if there are none, and no more than
/// `max` (`BatchLimitExceededException`). `what` names them in messages ("application names").
pub fn batch<T>(
    names: Option<Vec<T>>,
    what: &str,
    max: usize,
    required: &'static str,
) -> Result<Vec<T>, ApiError> {
    batch_within(names, what, max, required, "BatchLimitExceededException")
}

/// The names an operation was given: `required` if there are none, `too_many` if there are
/// more than `max`.
pub fn batch_within<T>(
    names: Option<Vec<T>>,
    what: &str,
    max: usize,
    required: &'static str,
    too_many: &'static str,
) -> Result<Vec<T>, ApiError> {
    let names = names.unwrap_or_default();
    if names.is_empty() {
        return Err(ApiError::codedeploy(
            required,
            format!("The {what} must be specified."),
        ));
    }
    if names.len() > max {
        return Err(ApiError::codedeploy(
            too_many,
            format!(
                "{} {what} were given; the most one call takes is {max}.",
                names.len()
            ),
        ));
    }
    Ok(names)
}

/// A store failure, as the caller sees it.
pub fn internal(what: &str) -> impl Fn(PortError) -> ApiError + '_ {
    move |e| {
        ApiError::new(
            crate::wire::ErrorKind::Internal,
            format!("{what}: {}", e.message),
        )
    }
}

/// A name that must be given: `required` if it is missing or empty, `invalid` if it is longer
/// than `max` characters.
pub fn name<'a>(
    value: Option<&'a str>,
    what: &str,
    max: usize,
    required: &'static str,
    invalid: &'static str,
) -> Result<&'a str, ApiError> {
    let value = value.unwrap_or_default();
    if value.is_empty() {
        return Err(ApiError::codedeploy(
            required,
            format!("The {what} name must be specified."),
        ));
    }
    if value.chars().count() > max {
        return Err(ApiError::codedeploy(
            invalid,
            format!("The {what} name '{value}' is too long: names are 1 to {max} characters."),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_come_in_pages_of_a_hundred_with_tokens_that_are_checked() {
        let names: Vec<String> = (0..250).map(|i| format!("n{i:03}")).collect();
        let (first, next) = page(names.clone(), None).unwrap();
        assert_eq!((first.len(), first[0].as_str()), (100, "n000"));
        let (second, next) = page(names.clone(), next.as_deref()).unwrap();
        assert_eq!(second[0], "n100");
        let (third, next) = page(names.clone(), next.as_deref()).unwrap();
        assert_eq!((third.len(), next), (50, None));
        for bad in ["x", "251", "-1"] {
            let e = page(names.clone(), Some(bad)).unwrap_err();
            assert_eq!(e.kind.name(), "InvalidNextTokenException", "{bad}");
        }
        assert_eq!(
            page(Vec::<String>::new(), None).unwrap(),
            (Vec::new(), None)
        );
    }
}
