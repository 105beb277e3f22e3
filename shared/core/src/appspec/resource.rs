//! What Lambda and ECS AppSpecs share: a `Resources` list that names exactly one resource of
//! one `Type`, and a `Hooks` list of single-key maps from a lifecycle event to the Lambda
//! function CodeDeploy invokes for it.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::AppSpecErrorKind;
use super::events::{EventSeed, platform_words};
use super::read::{
    At, Fields, FromDoc, FromScalar, Key, Problem, Record, Scalar, at, child, expecting, item,
    read_record,
};
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

/// A platform whose AppSpec deploys one resource (Lambda, ECS): the `Type` that resource must
/// have, and what its `Properties` are read into.
pub(super) trait ResourcePlatform {
    const PLATFORM: ComputePlatform;
    /// The resource `Type` the platform's AppSpec names.
    const TYPE: &'static str;
    type Properties: FromDoc;
}

/// `Resources`: a list holding one single-key map from the resource's name to its body.
pub(super) struct Resources<P: ResourcePlatform> {
    /// The name the AppSpec gives the resource.
    pub name: String,
    pub properties: P::Properties,
}

impl<P: ResourcePlatform> FromDoc for Resources<P> {
    fn from_doc<'de, D: Deserializer<'de>>(d: D, path: &str) -> Result<Self, D::Error> {
        d.deserialize_any(ResourcesVisitor::<P> {
            path,
            marker: PhantomData,
        })
    }
}

struct ResourcesVisitor<'a, P> {
    path: &'a str,
    marker: PhantomData<fn() -> P>,
}

impl<'de, P: ResourcePlatform> Visitor<'de> for ResourcesVisitor<'_, P> {
    type Value = Resources<P>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        expecting(
            f,
            self.path,
            "a list holding one resource ('- MyResource:' with its Type and Properties)",
        )
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let seed = |index| ResourceSeed::<P> {
            path: item(self.path, index),
            index,
            marker: PhantomData,
        };
        let Some(first) = seq.next_element_seed(seed(0))? else {
            return Err(Problem::new(
                AppSpecErrorKind::MissingKey,
                format!(
                    "{} lists no resource; a {} AppSpec names {}",
                    self.path,
                    platform_words(P::PLATFORM),
                    resource_words(P::PLATFORM)
                ),
            )
            .raise());
        };
        // A second resource is refused by its own seed, at its own line.
        seq.next_element_seed(seed(1))?;
        Ok(first)
    }
}

struct ResourceSeed<P> {
    path: String,
    index: usize,
    marker: PhantomData<fn() -> P>,
}

impl<'de, P: ResourcePlatform> DeserializeSeed<'de> for ResourceSeed<P> {
    type Value = Resources<P>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<P: ResourcePlatform> ResourceSeed<P> {
    fn only_one(&self, name: &str) -> Problem {
        Problem::invalid(at(
            &self.path,
            format!(
                "'{name}' is a second resource; a {} AppSpec names exactly one, so deploy \
                 each with its own AppSpec",
                platform_words(P::PLATFORM)
            ),
        ))
    }
}

impl<'de, P: ResourcePlatform> Visitor<'de> for ResourceSeed<P> {
    type Value = Resources<P>;

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
        let body = map.next_value_seed(At::<Body<P>>::new(&child(&self.path, &name)))?;
        if let Some(other) = map.next_key_seed(At::<String>::new(&self.path))? {
            return Err(self.only_one(&other).raise());
        }
        Ok(Resources {
            name,
            properties: body.0,
        })
    }
}

/// A resource's `Properties`, once its body is checked.
struct Body<P: ResourcePlatform>(P::Properties);

impl<P: ResourcePlatform> FromDoc for Body<P> {
    fn from_doc<'de, D: Deserializer<'de>>(d: D, path: &str) -> Result<Self, D::Error> {
        read_record::<BodyDoc<P>, D>(d, path)
    }
}

/// A resource's body: its `Type` and `Properties`. The keys are listed by hand, as `record!`
/// would list them, because the macro does not take a type parameter.
struct BodyDoc<P: ResourcePlatform> {
    type_: Option<Type<P>>,
    properties: Option<P::Properties>,
}

impl<P: ResourcePlatform> Default for BodyDoc<P> {
    fn default() -> Self {
        BodyDoc {
            type_: None,
            properties: None,
        }
    }
}

impl<P: ResourcePlatform> Fields for BodyDoc<P> {
    const KEYS: &'static [Key] = &[Key::any_case("Type"), Key::any_case("Properties")];

    fn read_value<'de, A: MapAccess<'de>>(
        &mut self,
        key: &'static str,
        map: &mut A,
        path: &str,
    ) -> Result<(), A::Error> {
        match key {
            "Type" => self.type_ = Some(map.next_value_seed(At::new(path))?),
            "Properties" => self.properties = Some(map.next_value_seed(At::new(path))?),
            // The key seed only yields the keys listed above.
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

impl<P: ResourcePlatform> Record for BodyDoc<P> {
    type Output = Body<P>;
    const WHAT: &'static str = "a resource with Type and Properties";

    fn finish(self, path: &str) -> Result<Body<P>, Problem> {
        if self.type_.is_none() {
            return Err(Problem::new(
                AppSpecErrorKind::MissingKey,
                format!("{path}: missing 'Type'; write Type: {}", P::TYPE),
            ));
        }
        let properties = self
            .properties
            .ok_or_else(|| Problem::missing(path, "Properties"))?;
        Ok(Body(properties))
    }
}

/// A resource's `Type`, checked as it is read: it must be the one `P` deploys.
struct Type<P>(PhantomData<fn() -> P>);

impl<P: ResourcePlatform> FromScalar for Type<P> {
    const EXPECTING: &'static str = P::TYPE;

    fn from_scalar(value: Scalar, path: &str) -> Result<Self, Problem> {
        check_type(value, path, P::PLATFORM, P::TYPE).map(|()| Type(PhantomData))
    }
}

/// `Hooks`: a list of single-key maps `{Event: FunctionName}`, one per event of `P`'s
/// deployments.
pub(super) struct Hooks<P> {
    /// Each hooked event with the function to invoke, in the order the AppSpec lists them.
    pub entries: Vec<(LifecycleEventName, String)>,
    marker: PhantomData<fn() -> P>,
}

impl<P: ResourcePlatform> FromDoc for Hooks<P> {
    fn from_doc<'de, D: Deserializer<'de>>(d: D, path: &str) -> Result<Self, D::Error> {
        let entries = d.deserialize_any(HooksVisitor {
            path,
            platform: P::PLATFORM,
        })?;
        Ok(Hooks {
            entries,
            marker: PhantomData,
        })
    }
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
