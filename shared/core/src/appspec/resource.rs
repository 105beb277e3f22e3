//! What Lambda and ECS AppSpecs share: a `Resources` list that names exactly one resource of
//! one `Type`, and a `Hooks` list of single-key maps from a lifecycle event to the Lambda
//! function CodeDeploy invokes for it.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::AppSpecErrorKind;
use super::events::{EventSeed, platform_words};
use super::read::{At, FromDoc, FromScalar, Problem, Scalar, at, child, expecting, item};
use crate::lifecycle::LifecycleEventName;
use crate::model::ComputePlatform;

/// The resource `Type` of a Lambda AppSpec.
pub(super) const LAMBDA_FUNCTION: &str = "AWS::Lambda::Function";
/// The resource `Type` of an ECS AppSpec.
pub(super) const ECS_SERVICE: &str = "AWS::ECS::Service";

/// The platform whose AppSpec names a resource of `type_`, if it is one of the two.
pub(super) fn platform_of_type(type_: &str) -> Option<ComputePlatform> {
    match type_ {
        LAMBDA_FUNCTION => Some(ComputePlatform::Lambda),
        ECS_SERVICE => Some(ComputePlatform::Ecs),
        _ => None,
    }
}

/// What a platform's resource is, for messages.
pub(super) fn resource_words(platform: ComputePlatform) -> &'static str {
    match platform {
        ComputePlatform::Lambda => "a Lambda function",
        ComputePlatform::Ecs => "an ECS service",
        ComputePlatform::Server => "a set of files",
    }
}

/// Checks that a resource's `Type` is `expected`, the type that `platform` deploys.
fn check_type(
    value: Scalar,
    path: &str,
    platform: ComputePlatform,
    expected: &str,
) -> Result<(), Problem> {
    let written = String::from_scalar(value, path)?;
    let written = written.trim();
    if written == expected {
        return Ok(());
    }
    if let Some(other) = platform_of_type(written) {
        return Err(Problem::new(
            AppSpecErrorKind::WrongPlatform,
            at(
                path,
                format!(
                    "{written} is {}, but the application's compute platform is {platform}, \
                     whose AppSpec names a resource of Type {expected}",
                    resource_words(other)
                ),
            ),
        ));
    }
    let hint = if written.eq_ignore_ascii_case(expected) {
        format!(" (write it exactly {expected})")
    } else {
        String::new()
    };
    Err(Problem::invalid(at(
        path,
        format!(
            "resource type '{written}' is not {expected}{hint}; a {} AppSpec deploys {}",
            platform_words(platform),
            resource_words(platform)
        ),
    )))
}

/// The `Type` of a Lambda AppSpec's resource.
pub(super) struct LambdaType;

impl FromScalar for LambdaType {
    const EXPECTING: &'static str = LAMBDA_FUNCTION;

    fn from_scalar(value: Scalar, path: &str) -> Result<Self, Problem> {
        check_type(value, path, ComputePlatform::Lambda, LAMBDA_FUNCTION).map(|()| LambdaType)
    }
}

/// The `Type` of an ECS AppSpec's resource.
pub(super) struct EcsType;

impl FromScalar for EcsType {
    const EXPECTING: &'static str = ECS_SERVICE;

    fn from_scalar(value: Scalar, path: &str) -> Result<Self, Problem> {
        check_type(value, path, ComputePlatform::Ecs, ECS_SERVICE).map(|()| EcsType)
    }
}

/// Reads `Resources`: a list holding one single-key map from the resource's name to its body.
pub(super) fn read_resource<'de, D: Deserializer<'de>, B: FromDoc>(
    d: D,
    path: &str,
    platform: ComputePlatform,
) -> Result<(String, B), D::Error> {
    d.deserialize_any(ResourcesVisitor::<B> {
        path,
        platform,
        marker: PhantomData,
    })
}

struct ResourcesVisitor<'a, B> {
    path: &'a str,
    platform: ComputePlatform,
    marker: PhantomData<fn() -> B>,
}

impl<'de, B: FromDoc> Visitor<'de> for ResourcesVisitor<'_, B> {
    type Value = (String, B);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        expecting(
            f,
            self.path,
            "a list holding one resource ('- MyResource:' with its Type and Properties)",
        )
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let seed = |index| ResourceSeed::<B> {
            path: item(self.path, index),
            index,
            platform: self.platform,
            marker: PhantomData,
        };
        let Some(first) = seq.next_element_seed(seed(0))? else {
            return Err(Problem::new(
                AppSpecErrorKind::MissingKey,
                format!(
                    "{} lists no resource; a {} AppSpec names {}",
                    self.path,
                    platform_words(self.platform),
                    resource_words(self.platform)
                ),
            )
            .raise());
        };
        // A second resource is refused by its own seed, at its own line.
        seq.next_element_seed(seed(1))?;
        Ok(first)
    }
}

struct ResourceSeed<B> {
    path: String,
    index: usize,
    platform: ComputePlatform,
    marker: PhantomData<fn() -> B>,
}

impl<'de, B: FromDoc> DeserializeSeed<'de> for ResourceSeed<B> {
    type Value = (String, B);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<B> ResourceSeed<B> {
    fn only_one(&self, name: &str) -> Problem {
        Problem::invalid(at(
            &self.path,
            format!(
                "'{name}' is a second resource; a {} AppSpec names exactly one, so deploy \
                 each with its own AppSpec",
                platform_words(self.platform)
            ),
        ))
    }
}

impl<'de, B: FromDoc> Visitor<'de> for ResourceSeed<B> {
    type Value = (String, B);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        expecting(
            f,
            &self.path,
            "a resource: its name, then its Type and Properties under it",
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some(name) = map.next_key_seed(At::<String>::new(&self.path))? else {
            return Err(Problem::new(
                AppSpecErrorKind::MissingKey,
                format!(
                    "{} is empty; expected a resource name with its Type and Properties",
                    self.path
                ),
            )
            .raise());
        };
        if self.index > 0 {
            return Err(self.only_one(&name).raise());
        }
        let body = map.next_value_seed(At::<B>::new(&child(&self.path, &name)))?;
        if let Some(other) = map.next_key_seed(At::<String>::new(&self.path))? {
            return Err(self.only_one(&other).raise());
        }
        Ok((name, body))
    }
}

/// Reads `Hooks`: a list of single-key maps `{Event: FunctionName}`, one per event.
pub(super) fn read_hooks<'de, D: Deserializer<'de>>(
    d: D,
    path: &str,
    platform: ComputePlatform,
) -> Result<Vec<(LifecycleEventName, String)>, D::Error> {
    d.deserialize_any(HooksVisitor { path, platform })
}

struct HooksVisitor<'a> {
    path: &'a str,
    platform: ComputePlatform,
}

impl<'de> Visitor<'de> for HooksVisitor<'_> {
    type Value = Vec<(LifecycleEventName, String)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        expecting(
            f,
            self.path,
            "a list of single-key maps such as '- BeforeAllowTraffic: MyHookFunction'",
        )
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut events = Vec::new();
        let mut hooks = Vec::new();
        loop {
            let seed = HookSeed {
                path: item(self.path, hooks.len()),
                platform: self.platform,
                earlier: &events,
            };
            match seq.next_element_seed(seed)? {
                Some((event, function)) => {
                    events.push(event);
                    hooks.push((event, function));
                }
                None => return Ok(hooks),
            }
        }
    }
}

struct HookSeed<'a> {
    path: String,
    platform: ComputePlatform,
    earlier: &'a [LifecycleEventName],
}

impl<'de> DeserializeSeed<'de> for HookSeed<'_> {
    type Value = (LifecycleEventName, String);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for HookSeed<'_> {
    type Value = (LifecycleEventName, String);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        expecting(
            f,
            &self.path,
            "an event and its hook function, such as 'BeforeAllowTraffic: MyHookFunction'",
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some(event) = map.next_key_seed(EventSeed {
            platform: self.platform,
            seen: self.earlier,
        })?
        else {
            return Err(Problem::new(
                AppSpecErrorKind::MissingKey,
                format!(
                    "{} is empty; expected an event and its hook function",
                    self.path
                ),
            )
            .raise());
        };
        let function: String = map.next_value_seed(At::new(&child(&self.path, event.as_str())))?;
        if let Some(other) = map.next_key_seed(At::<String>::new(&self.path))? {
            return Err(Problem::invalid(at(
                &self.path,
                format!(
                    "give '{other}' its own entry ('- {other}: ...'); each Hooks entry names \
                     one event"
                ),
            ))
            .raise());
        }
        Ok((event, function))
    }
}
