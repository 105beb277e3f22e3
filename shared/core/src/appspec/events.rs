//! Hook names: which lifecycle events an AppSpec may attach hooks to on each platform, and a
//! message that says what to write instead for every name it may not use.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

use super::AppSpecErrorKind;
use super::read::{Problem, expecting};
use crate::lifecycle::LifecycleEventName;
use crate::model::ComputePlatform;

/// Event names from the first versions of CodeDeploy, before traffic control was renamed.
const OLD_NAMES: [(&str, LifecycleEventName); 4] = [
    ("BeforeELBRemove", LifecycleEventName::BeforeBlockTraffic),
    ("AfterELBRemove", LifecycleEventName::AfterBlockTraffic),
    ("BeforeELBAdd", LifecycleEventName::BeforeAllowTraffic),
    ("AfterELBAdd", LifecycleEventName::AfterAllowTraffic),
];

/// How a platform's hooks are called in messages.
fn hook_noun(platform: ComputePlatform) -> &'static str {
    match platform {
        ComputePlatform::Server => "scripts",
        ComputePlatform::Lambda | ComputePlatform::Ecs => "a hook function",
    }
}

pub(super) fn platform_words(platform: ComputePlatform) -> &'static str {
    match platform {
        ComputePlatform::Server => "EC2/on-premises",
        ComputePlatform::Lambda => "Lambda",
        ComputePlatform::Ecs => "ECS",
    }
}

fn hookable_list(platform: ComputePlatform) -> String {
    LifecycleEventName::hookable(platform)
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The event a hook is attached to, if `name` is one that `platform` runs hooks for.
pub(super) fn hookable_event(
    name: &str,
    platform: ComputePlatform,
) -> Result<LifecycleEventName, Problem> {
    let hookable = LifecycleEventName::hookable(platform);
    let refuse = |message: String| Problem::new(AppSpecErrorKind::UnknownLifecycleEvent, message);
    match name.parse::<LifecycleEventName>() {
        Ok(event) if hookable.contains(&event) => Ok(event),
        Ok(event) if event.is_system_event() => Err(refuse(format!(
            "{event} is performed by cutover itself and cannot run {}; the events that can are: {}",
            hook_noun(platform),
            hookable_list(platform)
        ))),
        Ok(event) => Err(refuse(format!(
            "{event} is not an event of {} deployments; the events that take {} are: {}",
            platform_words(platform),
            hook_noun(platform),
            hookable_list(platform)
        ))),
        Err(_) => {
            if let Some((_, new)) = OLD_NAMES.iter().find(|(old, _)| *old == name)
                && hookable.contains(new)
            {
                return Err(refuse(format!(
                    "hook '{name}' uses the old name of {new}; rename it to {new}"
                )));
            }
            match LifecycleEventName::suggest(name, hookable) {
                Some(near) => Err(refuse(format!(
                    "hook '{name}' is not a lifecycle event (did you mean {near}?)"
                ))),
                None => Err(refuse(format!(
                    "hook '{name}' is not a lifecycle event; the events that take {} are: {}",
                    hook_noun(platform),
                    hookable_list(platform)
                ))),
            }
        }
    }
}

/// Reads a hook's event name where it is written, refusing names the platform does not hook
/// and events already hooked earlier in the same AppSpec.
pub(super) struct EventSeed<'a> {
    pub platform: ComputePlatform,
    pub seen: &'a [LifecycleEventName],
}

impl EventSeed<'_> {
    fn check(&self, name: &str) -> Result<LifecycleEventName, Problem> {
        let event = hookable_event(name, self.platform)?;
        if self.seen.contains(&event) {
            let fix = match self.platform {
                ComputePlatform::Server => {
                    format!("list all of its scripts under one '{event}:' key")
                }
                _ => "an event takes one hook function".to_owned(),
            };
            return Err(Problem::new(
                AppSpecErrorKind::DuplicateHook,
                format!("hook '{event}' is given twice; {fix}"),
            ));
        }
        Ok(event)
    }
}

impl<'de> DeserializeSeed<'de> for EventSeed<'_> {
    type Value = LifecycleEventName;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EventSeed<'_> {
    type Value = LifecycleEventName;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        expecting(f, "", "a lifecycle event name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.check(v).map_err(Problem::raise)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_str("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LifecycleEventName::*;

    #[test]
    fn each_platform_hooks_its_own_events() {
        assert_eq!(
            hookable_event("AfterInstall", ComputePlatform::Server),
            Ok(AfterInstall)
        );
        assert_eq!(
            hookable_event("AfterAllowTestTraffic", ComputePlatform::Ecs),
            Ok(AfterAllowTestTraffic)
        );
        let lambda = hookable_event("AfterInstall", ComputePlatform::Lambda).unwrap_err();
        assert_eq!(
            lambda.message,
            "AfterInstall is not an event of Lambda deployments; the events that take a hook \
             function are: BeforeAllowTraffic, AfterAllowTraffic"
        );
    }

    #[test]
    fn system_and_old_names_say_what_to_do() {
        let block = hookable_event("BlockTraffic", ComputePlatform::Server).unwrap_err();
        assert!(
            block
                .message
                .starts_with("BlockTraffic is performed by cutover itself and cannot run scripts"),
            "{}",
            block.message
        );
        let old = hookable_event("BeforeELBRemove", ComputePlatform::Server).unwrap_err();
        assert_eq!(
            old.message,
            "hook 'BeforeELBRemove' uses the old name of BeforeBlockTraffic; rename it to \
             BeforeBlockTraffic"
        );
        let far = hookable_event("Deploy", ComputePlatform::Lambda).unwrap_err();
        assert_eq!(
            far.message,
            "hook 'Deploy' is not a lifecycle event; the events that take a hook function are: \
             BeforeAllowTraffic, AfterAllowTraffic"
        );
    }
}
