//! The reader shared by the three AppSpec shapes: it walks a YAML or JSON document with serde,
//! knows where it is (`files[2].destination`), checks keys as it meets them, and raises errors
//! that keep their kind and the line they were found on.
//!
//! Two constraints shape it:
//!
//! - The YAML parser stamps an error with the position of the innermost value being read when
//!   the error is raised. So a check runs *inside* the visitor of the value it is about: a check
//!   made after a visitor returned would be blamed on the enclosing map's first line.
//! - serde errors are text. [`Problem::raise`] wraps the kind and message between separator
//!   characters, and [`decode`] takes them back out of whatever the parser puts around them (a
//!   path prefix, a position suffix, serde's "invalid type" wording).
//!
//! Every value is read with `deserialize_any`, so YAML and JSON go down the same path.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::AppSpecErrorKind;

/// Separates kind and message inside a serde error's text: a control character, which the
/// parsers' own wording never contains.
const SEP: char = '\u{1f}';

/// A mistake found while reading, before it is tied to a file and a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Problem {
    pub kind: AppSpecErrorKind,
    pub message: String,
}

impl Problem {
    pub fn new(kind: AppSpecErrorKind, message: impl Into<String>) -> Self {
        Problem {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Problem::new(AppSpecErrorKind::InvalidValue, message)
    }

    pub fn missing(path: &str, key: &str) -> Self {
        Problem::new(
            AppSpecErrorKind::MissingKey,
            at(path, format!("missing '{key}'")),
        )
    }

    /// The problem as a parser error, so the parser attaches the position it is reading.
    pub fn raise<E: de::Error>(self) -> E {
        E::custom(format_args!("{SEP}{}{SEP}{}{SEP}", self.kind, self.message))
    }
}

/// Takes a [`Problem`] back out of a parser error's text; `None` if the parser raised the error
/// itself (a syntax error).
pub(super) fn decode(text: &str) -> Option<Problem> {
    // The first separator that opens a known kind: a path the parser put in front may itself
    // hold a separator, if a key in the document does.
    let (start, kind, rest) = text.match_indices(SEP).find_map(|(i, _)| {
        let (code, rest) = text[i + 1..].split_once(SEP)?;
        Some((i, code.parse::<AppSpecErrorKind>().ok()?, rest))
    })?;
    let (message, _) = rest.rsplit_once(SEP)?;
    let mut message = message.to_owned();
    // A visitor met a value of the wrong shape; serde names what it found before our text.
    if let Some((found, _)) = text[..start]
        .split_once("invalid type: ")
        .and_then(|(_, rest)| rest.rsplit_once(", expected "))
    {
        message.push_str(", found ");
        message.push_str(&plain_unexpected(found));
    }
    Some(Problem { kind, message })
}

/// serde's description of an unexpected value ("sequence", "string \"x\"") in plain words.
fn plain_unexpected(serde_words: &str) -> String {
    let between_backticks = |s: &str| s.trim_matches('`').to_owned();
    match serde_words {
        "sequence" => "a list".to_owned(),
        "map" => "a map".to_owned(),
        "unit value" | "null" | "Option value" => "nothing".to_owned(),
        "enum" => "a tagged value".to_owned(),
        s => {
            if let Some(text) = s.strip_prefix("string ") {
                format!("the text {text}")
            } else if let Some(n) = s
                .strip_prefix("integer ")
                .or_else(|| s.strip_prefix("floating point "))
            {
                format!("the number {}", between_backticks(n))
            } else if let Some(b) = s.strip_prefix("boolean ") {
                between_backticks(b)
            } else {
                s.to_owned()
            }
        }
    }
}

/// `parent.key`, or `key` at the root.
pub(super) fn child(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[index]`.
pub(super) fn item(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// `path: message`, or the message alone at the root.
pub(super) fn at(path: &str, message: impl fmt::Display) -> String {
    if path.is_empty() {
        message.to_string()
    } else {
        format!("{path}: {message}")
    }
}

/// A visitor's `expecting`: serde quotes it when a value has the wrong shape, so it is written
/// as a whole [`Problem`] for [`decode`] to find.
pub(super) fn expecting(f: &mut fmt::Formatter<'_>, path: &str, what: &str) -> fmt::Result {
    let kind = AppSpecErrorKind::InvalidValue;
    write!(
        f,
        "{SEP}{kind}{SEP}{}{SEP}",
        at(path, format!("expected {what}"))
    )
}

/// A single value as the parser gave it.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Scalar {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Text(String),
}

impl Scalar {
    /// The value as text, as near to what was written as the parser lets us see; `None` for null.
    pub fn text(&self) -> Option<String> {
        match self {
            Scalar::Null => None,
            Scalar::Bool(b) => Some(b.to_string()),
            Scalar::Int(i) => Some(i.to_string()),
            // Debug keeps the ".0" of a whole float, so `1.0` is shown as written.
            Scalar::Float(f) => Some(format!("{f:?}")),
            Scalar::Text(t) => Some(t.clone()),
        }
    }

    /// The value for a message: `'abc'`, `'5'`, or `nothing`.
    pub fn quoted(&self) -> String {
        match self.text() {
            Some(text) => format!("'{text}'"),
            None => "nothing".to_owned(),
        }
    }
}

/// A value that is read from a single scalar.
pub(super) trait FromScalar: Sized {
    /// What the value should be, for messages: "a path", "a number of seconds".
    const EXPECTING: &'static str;

    fn from_scalar(value: Scalar, path: &str) -> Result<Self, Problem>;
}

/// A value that can be read from the document at `path`.
pub(super) trait FromDoc: Sized {
    fn from_doc<'de, D: Deserializer<'de>>(d: D, path: &str) -> Result<Self, D::Error>;
}

impl<T: FromScalar> FromDoc for T {
    fn from_doc<'de, D: Deserializer<'de>>(d: D, path: &str) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor::<T> {
            path,
            marker: PhantomData,
        })
    }
}

/// Null means "not given" for optional values, as it does for CodeDeploy.
impl<T: FromScalar> FromScalar for Option<T> {
    const EXPECTING: &'static str = T::EXPECTING;

    fn from_scalar(value: Scalar, path: &str) -> Result<Self, Problem> {
        match value {
            Scalar::Null => Ok(None),
            value => T::from_scalar(value, path).map(Some),
        }
    }
}

struct ScalarVisitor<'a, T> {
    path: &'a str,
    marker: PhantomData<fn() -> T>,
}

impl<T: FromScalar> ScalarVisitor<'_, T> {
    fn convert<E: de::Error>(self, value: Scalar) -> Result<T, E> {
        T::from_scalar(value, self.path).map_err(Problem::raise)
    }
}

impl<'de, T: FromScalar> Visitor<'de> for ScalarVisitor<'_, T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        expecting(f, self.path, T::EXPECTING)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
        self.convert(Scalar::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        self.convert(Scalar::Int(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.convert(Scalar::Int(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<T, E> {
        self.convert(Scalar::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<T, E> {
        match i128::try_from(v) {
            Ok(v) => self.convert(Scalar::Int(v)),
            Err(_) => self.convert(Scalar::Text(v.to_string())),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        self.convert(Scalar::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        self.convert(Scalar::Text(v.to_owned()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        self.convert(Scalar::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<T, E> {
        self.convert(Scalar::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_any(self)
    }
}

/// Reads a value of type `T` at `path`; the seed form of [`FromDoc`].
pub(super) struct At<'a, T> {
    path: &'a str,
    marker: PhantomData<fn() -> T>,
}

impl<'a, T> At<'a, T> {
    pub fn new(path: &'a str) -> Self {
        At {
            path,
            marker: PhantomData,
        }
    }
}

impl<'de, T: FromDoc> DeserializeSeed<'de> for At<'_, T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        T::from_doc(d, self.path)
    }
}

/// A list; a missing or null list is an empty one, as it is for CodeDeploy.
impl<T: FromDoc> FromDoc for Vec<T> {
    fn from_doc<'de, D: Deserializer<'de>>(d: D, path: &str) -> Result<Self, D::Error> {
        d.deserialize_any(ListVisitor::<T> {
            path,
            marker: PhantomData,
        })
    }
}

struct ListVisitor<'a, T> {
    path: &'a str,
    marker: PhantomData<fn() -> T>,
}

impl<'de, T: FromDoc> Visitor<'de> for ListVisitor<'_, T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        expecting(f, self.path, "a list")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Vec<T>, E> {
        Ok(Vec::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut items = Vec::new();
        loop {
            let path = item(self.path, items.len());
            match seq.next_element_seed(At::<T>::new(&path))? {
                Some(value) => items.push(value),
                None => return Ok(items),
            }
        }
    }
}

/// A key a map may hold.
#[derive(Clone, Copy, Debug)]
pub(super) struct Key {
    pub name: &'static str,
    any_case: bool,
}

impl Key {
    /// A key spelt exactly as given (Server AppSpecs: `file_exists_behavior`).
    pub const fn exact(name: &'static str) -> Self {
        Key {
            name,
            any_case: false,
        }
    }

    /// A key matched whatever its letter case (Lambda and ECS AppSpecs: `TargetVersion`,
    /// `targetVersion` and `targetversion` are all found in revisions in the wild).
    pub const fn any_case(name: &'static str) -> Self {
        Key {
            name,
            any_case: true,
        }
    }

    fn matches(self, text: &str) -> bool {
        if self.any_case {
            text.eq_ignore_ascii_case(self.name)
        } else {
            text == self.name
        }
    }
}

/// The nearest of `candidates` to `text`, for "did you mean" hints; letter case is ignored.
fn nearest<'c>(text: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let text = text.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&text, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(distance, c)| *distance <= (c.len() / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

fn key_list(keys: &[Key]) -> String {
    keys.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// Reads one key of a map, refusing unknown and repeated keys where they are written.
struct KeySeed<'a> {
    path: &'a str,
    keys: &'static [Key],
    seen: &'a [&'static str],
}

impl KeySeed<'_> {
    fn check(&self, text: &str) -> Result<&'static str, Problem> {
        let Some(key) = self.keys.iter().find(|k| k.matches(text)) else {
            let hint = match nearest(text, self.keys.iter().map(|k| k.name)) {
                Some(near) => format!(" (did you mean '{near}'?)"),
                None => String::new(),
            };
            return Err(Problem::new(
                AppSpecErrorKind::UnknownKey,
                at(
                    self.path,
                    format!(
                        "unknown key '{text}'{hint}; the keys allowed here are: {}",
                        key_list(self.keys)
                    ),
                ),
            ));
        };
        if self.seen.contains(&key.name) {
            return Err(Problem::new(
                AppSpecErrorKind::DuplicateKey,
                at(
                    self.path,
                    format!("'{}' is given twice; give each key once", key.name),
                ),
            ));
        }
        Ok(key.name)
    }
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = &'static str;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<&'static str, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = &'static str;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        expecting(f, self.path, "a key name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<&'static str, E> {
        self.check(v).map_err(Problem::raise)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<&'static str, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<&'static str, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<&'static str, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<&'static str, E> {
        self.visit_str(&format!("{v:?}"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<&'static str, E> {
        self.visit_str("")
    }
}

/// The keys of a map shape and how to read each one's value; written by [`record!`].
pub(super) trait Fields: Default {
    const KEYS: &'static [Key];

    fn read_value<'de, A: MapAccess<'de>>(
        &mut self,
        key: &'static str,
        map: &mut A,
        path: &str,
    ) -> Result<(), A::Error>;
}

/// A map shape of the AppSpec: its keys (see [`Fields`]) and how they combine into a value.
pub(super) trait Record: Fields {
    type Output;

    /// What a value of this shape is called in messages, e.g. "a files entry".
    const WHAT: &'static str;

    /// Checks the keys together once all are read (required keys, combinations) and builds
    /// the value. `path` is the map's own path.
    fn finish(self, path: &str) -> Result<Self::Output, Problem>;
}

/// Reads a map shape at `path`.
pub(super) fn read_record<'de, R: Record, D: Deserializer<'de>>(
    d: D,
    path: &str,
) -> Result<R::Output, D::Error> {
    read_record_then::<R, D, _>(d, path, |_| Ok(()))
}

/// Reads a map shape at `path`, then runs `check` on the value while the map is still the one
/// being read, so that a failure points at this map (used to compare a value with its
/// siblings, e.g. duplicate `files` entries).
pub(super) fn read_record_then<'de, R, D, F>(
    d: D,
    path: &str,
    check: F,
) -> Result<R::Output, D::Error>
where
    R: Record,
    D: Deserializer<'de>,
    F: FnOnce(&R::Output) -> Result<(), Problem>,
{
    d.deserialize_any(RecordVisitor::<R, F> {
        path,
        check,
        marker: PhantomData,
    })
}

struct RecordVisitor<'a, R, F> {
    path: &'a str,
    check: F,
    marker: PhantomData<fn() -> R>,
}

impl<'de, R, F> Visitor<'de> for RecordVisitor<'_, R, F>
where
    R: Record,
    F: FnOnce(&R::Output) -> Result<(), Problem>,
{
    type Value = R::Output;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = format!("{} (a map with the keys {})", R::WHAT, key_list(R::KEYS));
        expecting(f, self.path, &what)
    }

    fn visit_unit<E: de::Error>(self) -> Result<R::Output, E> {
        let problem = if self.path.is_empty() {
            Problem::new(
                AppSpecErrorKind::Empty,
                "the AppSpec is empty (it holds only comments)",
            )
        } else {
            Problem::new(
                AppSpecErrorKind::MissingKey,
                format!("{} has no value; expected {}", self.path, R::WHAT),
            )
        };
        Err(problem.raise())
    }

    /// An empty YAML document.
    fn visit_none<E: de::Error>(self) -> Result<R::Output, E> {
        self.visit_unit()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<R::Output, A::Error> {
        let mut fields = R::default();
        let mut seen = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed {
            path: self.path,
            keys: R::KEYS,
            seen: &seen,
        })? {
            seen.push(key);
            fields.read_value(key, &mut map, &child(self.path, key))?;
        }
        let value = fields.finish(self.path).map_err(Problem::raise)?;
        (self.check)(&value).map_err(Problem::raise)?;
        Ok(value)
    }
}

/// Declares a map shape: a struct with an `Option` per key, and its [`Fields`] impl. The
/// [`Record`] impl (what the keys mean together) is written by hand next to it. `-> Output`
/// names the value the shape builds, which is then readable wherever a [`FromDoc`] is expected.
macro_rules! record {
    (
        $(#[$meta:meta])*
        struct $name:ident -> $output:ty, $case:ident {
            $( $field:ident : $ty:ty = $key:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Default)]
        struct $name {
            $( $field: Option<$ty>, )+
        }

        impl $crate::appspec::read::Fields for $name {
            const KEYS: &'static [$crate::appspec::read::Key] =
                &[$( $crate::appspec::read::Key::$case($key) ),+];

            fn read_value<'de, A: ::serde::de::MapAccess<'de>>(
                &mut self,
                key: &'static str,
                map: &mut A,
                path: &str,
            ) -> Result<(), A::Error> {
                match key {
                    $( $key => {
                        self.$field = Some(
                            map.next_value_seed($crate::appspec::read::At::<$ty>::new(path))?,
                        );
                    } )+
                    // The key seed only yields the keys listed above.
                    _ => {
                        map.next_value::<::serde::de::IgnoredAny>()?;
                    }
                }
                Ok(())
            }
        }

        impl $crate::appspec::read::FromDoc for $output {
            fn from_doc<'de, D: ::serde::Deserializer<'de>>(
                d: D,
                path: &str,
            ) -> Result<Self, D::Error> {
                $crate::appspec::read::read_record::<$name, D>(d, path)
            }
        }
    };
}
pub(super) use record;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_survive_the_parsers_wrapping() {
        let problem = Problem::new(AppSpecErrorKind::UnknownKey, "unknown key 'fils'");
        let yaml: yaml_serde::Error = problem.clone().raise();
        let wrapped = format!("files[2]: {yaml} at line 3 column 4");
        assert_eq!(decode(&wrapped), Some(problem.clone()));
        let odd_key = format!("a{SEP}b: {wrapped}");
        assert_eq!(decode(&odd_key), Some(problem));
        assert_eq!(decode("did not find expected key at line 3 column 1"), None);
    }

    #[test]
    fn wrong_shapes_name_what_was_found() {
        let text = format!(
            "files: invalid type: sequence, expected {SEP}InvalidValue{SEP}files: expected a map{SEP} at line 2 column 3"
        );
        let problem = decode(&text).unwrap();
        assert_eq!(problem.message, "files: expected a map, found a list");
        let text = format!(
            "invalid type: string \"x\", expected {SEP}InvalidValue{SEP}os: expected a list{SEP}"
        );
        assert_eq!(
            decode(&text).unwrap().message,
            "os: expected a list, found the text \"x\""
        );
    }

    #[test]
    fn suggestions_ignore_case_and_small_typos() {
        let keys = ["version", "os", "files", "hooks"];
        assert_eq!(nearest("fils", keys), Some("files"));
        assert_eq!(nearest("Hooks", keys), Some("hooks"));
        assert_eq!(nearest("resources", keys), None);
    }
}
