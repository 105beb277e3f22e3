//! AppSpec files: parsing and validation for Server, Lambda and ECS revisions.
//!
//! [`parse`] takes the text of an AppSpec (`appspec.yml`, `appspec.yaml`, a JSON file, or a
//! Lambda or ECS `AppSpecContent`) and the application's compute platform, and returns a
//! checked [`AppSpec`] or one [`AppSpecError`] that names the file, the line when it is known,
//! and what to change.
//!
//! What the CodeDeploy agent refuses is refused here, before anything is installed. A few
//! things it lets through are refused as well, because they deploy something other than what
//! the author meant or reach outside where they belong: unknown keys (a misspelt `hooks` or
//! `file_exists_behavior` would be silently ignored), paths with `..`, relative destinations,
//! repeated keys and hooks, and `windows` revisions, which a Linux host cannot run.
//!
//! It is pure. Checks that need the bundle's files (does a script exist, is a permission's
//! `object` a single file, do two directory sources collide) belong to the host agent;
//! [`ServerAppSpec::check_file_targets`] is the part of that the agent feeds with what it knows.
//!
//! JSON is read with `serde_json` and YAML with `yaml_serde`, through one reader (`read`) so
//! that both give the same values and the same messages.

mod ecs;
mod events;
mod lambda;
mod read;
mod resource;
mod scalar;
mod server;
#[cfg(test)]
mod testing;

use std::fmt;

use serde::Serialize;
use serde::de::IgnoredAny;

pub use ecs::{AwsvpcConfiguration, CapacityProviderStrategyItem, EcsAppSpec};
pub use lambda::{AliasRoute, LambdaAppSpec, LambdaFunction, MAX_LAMBDA_APPSPEC_BYTES};
pub use scalar::{AssignPublicIp, Mode, Os, PermissionType};
pub use server::{
    DEFAULT_SCRIPT_TIMEOUT, FileMapping, HookScript, Permission, SeLinuxContext, ServerAppSpec,
};

use crate::model::{ComputePlatform, wire_enum};
use read::{FromDoc, Problem};

/// A checked AppSpec of any platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AppSpec {
    Server(ServerAppSpec),
    Lambda(LambdaAppSpec),
    Ecs(EcsAppSpec),
}

impl AppSpec {
    pub fn platform(&self) -> ComputePlatform {
        match self {
            AppSpec::Server(_) => ComputePlatform::Server,
            AppSpec::Lambda(_) => ComputePlatform::Lambda,
            AppSpec::Ecs(_) => ComputePlatform::Ecs,
        }
    }
}

wire_enum! {
    /// What an [`AppSpecError`] is about: a stable code callers can match on.
    pub enum AppSpecErrorKind as "AppSpec error kind" {
        /// The text is empty, blank, or only comments.
        Empty = "Empty",
        /// Not YAML or JSON at all.
        Syntax = "Syntax",
        /// `version` is not 0.0.
        UnsupportedVersion = "UnsupportedVersion",
        /// `os` is not `linux`.
        UnsupportedOs = "UnsupportedOs",
        /// A key that has no meaning where it is written.
        UnknownKey = "UnknownKey",
        /// The same key twice in one map.
        DuplicateKey = "DuplicateKey",
        /// A required key is absent, or present with no value.
        MissingKey = "MissingKey",
        /// A value of the wrong shape or outside what is allowed.
        InvalidValue = "InvalidValue",
        /// A path that is not allowed where it is written: a `..` component, or a destination
        /// that is not absolute.
        InvalidPath = "InvalidPath",
        /// A hook on a name that is not a lifecycle event, on an event cutover performs itself,
        /// or on an event of another platform.
        UnknownLifecycleEvent = "UnknownLifecycleEvent",
        /// The same lifecycle event hooked twice.
        DuplicateHook = "DuplicateHook",
        /// Two `files` entries that install to the same place.
        DuplicateDestination = "DuplicateDestination",
        /// The AppSpec describes another compute platform than the application's.
        WrongPlatform = "WrongPlatform",
    }
}

/// Why an AppSpec was refused, and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppSpecError {
    /// The file name used in messages: `appspec.yml`, `AppSpecContent`, ...
    pub source_name: String,
    /// 1-based, when the parser knows it.
    pub line: Option<usize>,
    /// 1-based, when the parser knows it.
    pub column: Option<usize>,
    pub kind: AppSpecErrorKind,
    pub message: String,
}

impl AppSpecError {
    pub(crate) fn without_line(
        source_name: &str,
        kind: AppSpecErrorKind,
        message: impl Into<String>,
    ) -> Self {
        AppSpecError {
            source_name: source_name.to_owned(),
            line: None,
            column: None,
            kind,
            message: message.into(),
        }
    }

    fn at_line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }
}

impl fmt::Display for AppSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} line {line}: {}", self.source_name, self.message),
            None => write!(f, "{}: {}", self.source_name, self.message),
        }
    }
}

impl std::error::Error for AppSpecError {}

/// Parses and checks an AppSpec for an application of compute platform `platform`.
/// `source_name` is the file name used in messages ("appspec.yml", "AppSpecContent", ...).
pub fn parse(
    text: &str,
    source_name: &str,
    platform: ComputePlatform,
) -> Result<AppSpec, AppSpecError> {
    match platform {
        ComputePlatform::Server => parse_server(text, source_name).map(AppSpec::Server),
        ComputePlatform::Lambda => parse_lambda(text, source_name).map(AppSpec::Lambda),
        ComputePlatform::Ecs => parse_ecs(text, source_name).map(AppSpec::Ecs),
    }
}

/// The compute platform an AppSpec was written for, when its top-level keys tell: `Resources`
/// of Type `AWS::Lambda::Function` or `AWS::ECS::Service`, or a key only Server AppSpecs have
/// (`os`, `files`, `permissions`, `file_exists_behavior`).
pub fn detect_platform(text: &str) -> Option<ComputePlatform> {
    shape::detect(text)
}

/// Parses and checks the AppSpec of an EC2/on-premises revision.
pub fn parse_server(text: &str, source_name: &str) -> Result<ServerAppSpec, AppSpecError> {
    read_document(text, source_name, ComputePlatform::Server)
}

/// Parses and checks the AppSpec of a Lambda deployment.
pub fn parse_lambda(text: &str, source_name: &str) -> Result<LambdaAppSpec, AppSpecError> {
    read_document(text, source_name, ComputePlatform::Lambda)
}

/// Parses and checks the AppSpec of an ECS deployment.
pub fn parse_ecs(text: &str, source_name: &str) -> Result<EcsAppSpec, AppSpecError> {
    read_document(text, source_name, ComputePlatform::Ecs)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Json,
    Yaml,
}

impl Format {
    /// JSON documents are objects; anything else is read as YAML.
    fn of(text: &str) -> Format {
        if text.trim_start().starts_with('{') {
            Format::Json
        } else {
            Format::Yaml
        }
    }
}

fn read_document<T: FromDoc>(
    text: &str,
    source_name: &str,
    platform: ComputePlatform,
) -> Result<T, AppSpecError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(AppSpecError::without_line(
            source_name,
            AppSpecErrorKind::Empty,
            "the AppSpec is empty",
        ));
    }
    let format = Format::of(text);
    // The readers stream, so a mistake in the content can be met before a syntax error
    // further down, which is often its cause; the syntax is checked on its own first.
    let syntax = match format {
        Format::Json => serde_json::from_str::<IgnoredAny>(text)
            .err()
            .map(|err| json_error(&err, source_name)),
        Format::Yaml => yaml_serde::from_str::<IgnoredAny>(text)
            .err()
            .map(|err| yaml_error(&err, text, source_name)),
    };
    if let Some(error) = syntax {
        return Err(error);
    }
    if let Some(error) = shape::wrong_platform(text, format, source_name, platform) {
        return Err(error);
    }
    match format {
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            T::from_doc(&mut de, "")
                .and_then(|value| de.end().map(|()| value))
                .map_err(|err| json_error(&err, source_name))
        }
        Format::Yaml => T::from_doc(yaml_serde::Deserializer::from_str(text), "")
            .map_err(|err| yaml_error(&err, text, source_name)),
    }
}

/// Our error, or the parser's own (a syntax error) with its position taken out of the text.
fn to_error(
    text: &str,
    position: Option<(usize, usize)>,
    source_name: &str,
    format: Format,
) -> AppSpecError {
    let (kind, message) = match read::decode(text) {
        Some(Problem { kind, message }) => (kind, message),
        None => (
            AppSpecErrorKind::Syntax,
            syntax_message(text, position, format),
        ),
    };
    AppSpecError {
        source_name: source_name.to_owned(),
        line: position.map(|(line, _)| line),
        column: position.map(|(_, column)| column),
        kind,
        message,
    }
}

/// A parser's own message, without the position (reported apart) and with a hint for the
/// mistakes that its wording does not make plain.
fn syntax_message(text: &str, position: Option<(usize, usize)>, format: Format) -> String {
    let mut message = text;
    if let Some((line, column)) = position
        && let Some(i) = message.find(&format!(" at line {line} column {column}"))
    {
        message = &message[..i];
    }
    let hint = if message.contains("tab character") {
        " (YAML is indented with spaces, never tabs)"
    } else if message.contains("did not find expected key")
        || message.contains("mapping values are not allowed")
    {
        " (check the indentation of this line and the one before)"
    } else if message.contains("key must be a string") {
        " (JSON keys are quoted, and no comma comes before '}')"
    } else {
        ""
    };
    let format = match format {
        Format::Json => "JSON",
        Format::Yaml => "YAML",
    };
    format!("not valid {format}: {message}{hint}")
}

fn json_error(err: &serde_json::Error, source_name: &str) -> AppSpecError {
    let position = (err.line() > 0).then(|| (err.line(), err.column()));
    to_error(&err.to_string(), position, source_name, Format::Json)
}

/// How many lines the YAML parser sees in `text`: YAML 1.1 also breaks lines at NEL, LS and
/// PS, which `str::lines` does not.
fn yaml_line_count(text: &str) -> usize {
    let breaks = ['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}'];
    text.replace("\r\n", "\n").matches(breaks).count() + 1
}

fn yaml_error(err: &yaml_serde::Error, document: &str, source_name: &str) -> AppSpecError {
    // At the end of the input the parser can place an error on the line after the last one;
    // point at the last line instead.
    let last_line = yaml_line_count(document);
    let position = err
        .location()
        .map(|l| (l.line().min(last_line), l.column()));
    to_error(&err.to_string(), position, source_name, Format::Yaml)
}

/// Tells which platform an AppSpec was written for from its top-level keys, before it is read
/// in full, so that an AppSpec given to the wrong kind of application gets one clear message
/// instead of a list of unknown keys.
mod shape {
    use serde_json::Value;

    use super::events::platform_words;
    use super::resource::{platform_of_type, resource_words};
    use super::{AppSpecError, AppSpecErrorKind, Format};
    use crate::model::ComputePlatform;

    /// Keys only a Server AppSpec has.
    const SERVER_KEYS: [&str; 4] = ["os", "files", "permissions", "file_exists_behavior"];

    /// What in an AppSpec's top level tells its platform.
    enum Evidence {
        /// `Resources` whose first resource has this `Type`.
        ResourceType(String),
        /// A key only Server AppSpecs have.
        ServerKey(&'static str),
    }

    /// The platform an AppSpec's top-level keys describe, and why; `None` if they do not tell
    /// or the text does not parse.
    fn describe(text: &str, format: Format) -> Option<(ComputePlatform, Evidence)> {
        // A text that does not even parse is left to the full reader, which says where.
        let doc: Value = match format {
            Format::Json => serde_json::from_str(text).ok()?,
            Format::Yaml => yaml_serde::from_str(text).ok()?,
        };
        let map = doc.as_object()?;
        let get = |key: &str| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        };
        if let Some(resources) = get("Resources") {
            let body = resources
                .as_array()?
                .first()?
                .as_object()?
                .values()
                .next()?;
            let type_ = body
                .as_object()?
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("Type"))?
                .1
                .as_str()?;
            Some((
                platform_of_type(type_)?,
                Evidence::ResourceType(type_.to_owned()),
            ))
        } else {
            let key = SERVER_KEYS.into_iter().find(|k| map.contains_key(*k))?;
            Some((ComputePlatform::Server, Evidence::ServerKey(key)))
        }
    }

    /// The platform an AppSpec was written for, when its top-level keys tell.
    pub(super) fn detect(text: &str) -> Option<ComputePlatform> {
        describe(text, Format::of(text)).map(|(platform, _)| platform)
    }

    pub(super) fn wrong_platform(
        text: &str,
        format: Format,
        source_name: &str,
        platform: ComputePlatform,
    ) -> Option<AppSpecError> {
        let (described, evidence) = describe(text, format)?;
        if described == platform {
            return None;
        }
        let (message, line) = match evidence {
            Evidence::ResourceType(type_) => (
                format!(
                    "this AppSpec describes {} (Resources of Type {type_}) but the application's \
                     compute platform is {platform}",
                    resource_words(described)
                ),
                line_where(text, |l| l.contains(type_.as_str())),
            ),
            Evidence::ServerKey(key) => {
                let message = format!(
                    "this AppSpec describes an {} revision (it has '{key}') but the application's \
                     compute platform is {platform}, whose AppSpec names {} under Resources",
                    platform_words(ComputePlatform::Server),
                    resource_words(platform)
                );
                let (yaml, json) = (format!("{key}:"), format!("\"{key}\""));
                (
                    message,
                    line_where(text, |l| l.starts_with(&yaml) || l.starts_with(&json)),
                )
            }
        };
        Some(
            AppSpecError::without_line(source_name, AppSpecErrorKind::WrongPlatform, message)
                .at_line(line),
        )
    }

    /// The 1-based number of the first line that, without its indent, satisfies `found`.
    fn line_where(text: &str, found: impl Fn(&str) -> bool) -> Option<usize> {
        text.lines()
            .position(|l| found(l.trim_start()))
            .map(|i| i + 1)
    }
}

#[cfg(test)]
mod tests;
