//! The domain model, in CodeDeploy's own shapes and field names.
//!
//! Every type here serializes to the JSON that CodeDeploy's API uses (camelCase names such as
//! `deploymentInfo`, `deploymentOverview`, `lifecycleEvents`; CodeDeploy's enum spellings), so the
//! API and the CLI's `--json` output reuse them unchanged.

mod application;
mod deployment;
mod group;
mod instance;
mod revision;
mod target;

pub use application::*;
pub use deployment::*;
pub use group::*;
pub use instance::*;
pub use revision::*;
pub use target::*;

/// A text that is not one of an enumeration's values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("'{value}' is not a valid {kind}; expected one of: {}", expected.join(", "))]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
    pub expected: &'static [&'static str],
}

/// Declares an enumeration whose values are CodeDeploy's exact strings, with `as_str`,
/// `FromStr`, `Display` and serde in that form.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident as $kind:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            const TEXTS: &'static [&'static str] = &[$($text),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::model::UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::model::UnknownValue {
                        kind: $kind,
                        value: s.to_owned(),
                        expected: Self::TEXTS,
                    }),
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use wire_enum;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_enums_use_codedeploys_spellings() {
        assert_eq!(
            serde_json::to_string(&ComputePlatform::Ecs).unwrap(),
            "\"ECS\""
        );
        assert_eq!(
            serde_json::to_string(&DeploymentType::InPlace).unwrap(),
            "\"IN_PLACE\""
        );
        assert_eq!(
            serde_json::to_string(&DeploymentCreator::CodeDeployRollback).unwrap(),
            "\"codeDeployRollback\""
        );
        let err = "Serverless".parse::<ComputePlatform>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "'Serverless' is not a valid compute platform; expected one of: Server, Lambda, ECS"
        );
        let err = serde_json::from_str::<FileExistsBehavior>("\"KEEP\"").unwrap_err();
        assert!(
            err.to_string().contains("DISALLOW, OVERWRITE, RETAIN"),
            "{err}"
        );
    }
}
