//! The operations, one module per kind of resource. Each takes its input as CodeDeploy names
//! it, checks it as CodeDeploy does, and answers with CodeDeploy's output or exception.

pub mod applications;
pub mod configs;
pub mod deployments;
pub mod groups;

use crate::wire::ApiError;
use cutover_engine::PortError;

/// The most names one page of a List operation holds.
pub const PAGE_SIZE: usize = 100;

/// One page of `names` from `next_token` on, and the token of the page after it.
pub fn page(
    names: Vec<String>,
    next_token: Option<&str>,
) -> Result<(Vec<String>, Option<String>), ApiError> {
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
        assert_eq!(page(Vec::new(), None).unwrap(), (Vec::new(), None));
    }
}
