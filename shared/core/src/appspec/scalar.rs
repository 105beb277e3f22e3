//! The single values of an AppSpec and their rules: version, os, permission modes, script
//! timeouts, paths, enumerations, and the small checks behind them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Serialize, Serializer};

use super::AppSpecErrorKind;
use super::read::{FromScalar, Problem, Scalar, at};
use crate::model::{FileExistsBehavior, UnknownValue, wire_enum};

wire_enum! {
    /// The `os` of a Server AppSpec.
    pub enum Os as "operating system" {
        Linux = "linux",
        Windows = "windows",
    }
}

wire_enum! {
    /// Whether an ECS task's network interface gets a public IP address (`AssignPublicIp`).
    pub enum AssignPublicIp as "AssignPublicIp value" {
        Enabled = "ENABLED",
        Disabled = "DISABLED",
    }
}

wire_enum! {
    /// An item of a permission's `type` list: what kind of entry under `object` it applies to.
    pub enum PermissionType as "permission type" {
        File = "file",
        Directory = "directory",
    }
}

/// Text that must be present and not blank.
impl FromScalar for String {
    const EXPECTING: &'static str = "a text value";

    fn from_scalar(value: Scalar, path: &str) -> Result<Self, Problem> {
        match value.text() {
            Some(text) if !text.trim().is_empty() => Ok(text),
            _ => Err(Problem::new(
                AppSpecErrorKind::MissingKey,
                format!("{path} has no value"),
            )),
        }
    }
}

impl FromScalar for bool {
    const EXPECTING: &'static str = "true or false";

    fn from_scalar(value: Scalar, path: &str) -> Result<Self, Problem> {
        match &value {
            Scalar::Bool(b) => Ok(*b),
            Scalar::Text(t) if t.eq_ignore_ascii_case("true") => Ok(true),
            Scalar::Text(t) if t.eq_ignore_ascii_case("false") => Ok(false),
            _ => Err(Problem::invalid(at(
                path,
                format!("{} is not true or false", value.quoted()),
            ))),
        }
    }
}

/// A whole number that is not negative, written as a number or as numeric text.
impl FromScalar for u32 {
    const EXPECTING: &'static str = "a whole number";

    fn from_scalar(value: Scalar, path: &str) -> Result<Self, Problem> {
        whole_number(&value)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                Problem::invalid(at(
                    path,
                    format!("{} is not a whole number of 0 or more", value.quoted()),
                ))
            })
    }
}

/// The number in a scalar, if it is a whole number: `300`, `"300"` or `300.0`.
fn whole_number(value: &Scalar) -> Option<i128> {
    match value {
        Scalar::Int(n) => Some(*n),
        Scalar::Float(f) if f.fract() == 0.0 && f.abs() < 1e18 => Some(*f as i128),
        Scalar::Text(t) => t.trim().parse().ok(),
        _ => None,
    }
}

/// Reads a CodeDeploy enumeration, pointing out a value that differs only in letter case.
fn enumeration<T: FromStr<Err = UnknownValue>>(value: Scalar, path: &str) -> Result<T, Problem> {
    let text = value.text().unwrap_or_default();
    text.trim().parse().map_err(|err: UnknownValue| {
        let hint = match err
            .expected
            .iter()
            .find(|e| e.eq_ignore_ascii_case(text.trim()))
        {
            Some(near) => format!(" (did you mean {near}?)"),
            None => String::new(),
        };
        Problem::invalid(at(path, format!("{err}{hint}")))
    })
}

impl FromScalar for FileExistsBehavior {
    const EXPECTING: &'static str = "DISALLOW, OVERWRITE or RETAIN";

    fn from_scalar(value: Scalar, path: &str) -> Result<Self, Problem> {
        enumeration(value, path)
    }
}

impl FromScalar for PermissionType {
    const EXPECTING: &'static str = "file or directory";

    fn from_scalar(value: Scalar, path: &str) -> Result<Self, Problem> {
        enumeration(value, path)
    }
}

impl FromScalar for AssignPublicIp {
    const EXPECTING: &'static str = "ENABLED or DISABLED";

    fn from_scalar(value: Scalar, path: &str) -> Result<Self, Problem> {
        enumeration(value, path)
    }
}

/// `version`: `0.0` is the only AppSpec version there is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Version;

impl Version {
    /// Every AppSpec must say `version: 0.0`; `read` is what the document held.
    pub(super) fn require(read: Option<Version>) -> Result<(), Problem> {
        read.map(drop).ok_or_else(|| {
            Problem::new(
                AppSpecErrorKind::MissingKey,
                "missing 'version'; an AppSpec starts with version: 0.0",
            )
        })
    }
}

impl FromScalar for Version {
    const EXPECTING: &'static str = "0.0";

    fn from_scalar(value: Scalar, _path: &str) -> Result<Self, Problem> {
        // YAML reads `0.0` as a float; a quoted "0.0" and a bare 0 mean the same to CodeDeploy.
        let zero = match &value {
            Scalar::Float(f) => *f == 0.0,
            Scalar::Int(n) => *n == 0,
            Scalar::Text(t) => matches!(t.trim(), "0.0" | "0"),
            Scalar::Null | Scalar::Bool(_) => false,
        };
        if zero {
            Ok(Version)
        } else {
            Err(Problem::new(
                AppSpecErrorKind::UnsupportedVersion,
                format!(
                    "version {} is not supported; 0.0 is the only AppSpec version",
                    value.quoted()
                ),
            ))
        }
    }
}

/// `os` on a Linux host: `linux`. A `windows` revision is refused here rather than half-run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct LinuxOs;

impl FromScalar for LinuxOs {
    const EXPECTING: &'static str = "linux";

    fn from_scalar(value: Scalar, _path: &str) -> Result<Self, Problem> {
        let unsupported = |message: String| Problem::new(AppSpecErrorKind::UnsupportedOs, message);
        let Some(text) = value.text() else {
            return Err(unsupported("os has no value; write os: linux".to_owned()));
        };
        match text.trim().parse::<Os>() {
            Ok(Os::Linux) => Ok(LinuxOs),
            Ok(Os::Windows) => Err(unsupported(
                "os 'windows' is not supported: windows revisions are not supported on a Linux \
                 host, and cutover's agent runs on Linux only"
                    .to_owned(),
            )),
            Err(_) => {
                let hint = if text.trim().eq_ignore_ascii_case("linux") {
                    " (write it in lowercase)"
                } else {
                    ""
                };
                Err(unsupported(format!(
                    "os '{text}' is not supported; write os: linux{hint}"
                )))
            }
        }
    }
}

/// A permission's `mode`: up to four octal digits, the last three for owner, group and others
/// and an optional first one for setuid, setgid and sticky.
///
/// Shorter modes are padded with zeros on the left, so `44` is `044`, as CodeDeploy does.
/// [`Display`](fmt::Display) writes four digits (`0644`, `4755`), which is also what `chmod`
/// takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mode(u16);

impl Mode {
    /// The largest mode: every permission bit and setuid, setgid and sticky.
    pub const MAX: u16 = 0o7777;

    pub const fn from_bits(bits: u16) -> Option<Mode> {
        if bits <= Self::MAX {
            Some(Mode(bits))
        } else {
            None
        }
    }

    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Reads a mode as an AppSpec writes it: 1 to 4 octal digits.
    fn from_digits(digits: &str) -> Result<Mode, String> {
        if digits.is_empty() {
            return Err("no digits; write 1 to 4 octal digits, such as 644".to_owned());
        }
        if let Some(bad) = digits.chars().find(|c| !matches!(c, '0'..='7')) {
            return Err(format!(
                "'{digits}' contains '{bad}', which is not an octal digit (0 to 7)"
            ));
        }
        if digits.len() > 4 {
            return Err(format!(
                "'{digits}' has {} digits; a mode is 1 to 4 octal digits, such as 644 or 4755",
                digits.len()
            ));
        }
        u16::from_str_radix(digits, 8)
            .map(Mode)
            .map_err(|_| format!("'{digits}' is not an octal number"))
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl Serialize for Mode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromScalar for Mode {
    const EXPECTING: &'static str = "1 to 4 octal digits";

    fn from_scalar(value: Scalar, path: &str) -> Result<Self, Problem> {
        // `mode: 644` arrives as the integer 644 and `mode: 0644` as the text "0644" (YAML 1.2
        // does not read a leading zero as octal); both are taken as the digits written.
        let digits = match &value {
            Scalar::Int(n) if *n >= 0 => n.to_string(),
            Scalar::Text(t) => t.trim().to_owned(),
            _ => {
                return Err(Problem::invalid(at(
                    path,
                    format!("{} is not 1 to 4 octal digits, such as 644", value.quoted()),
                )));
            }
        };
        Mode::from_digits(&digits).map_err(|message| Problem::invalid(at(path, message)))
    }
}

/// The longest a single script may be given, so sums of timeouts cannot overflow. A hundred
/// years is not a limit anyone meets.
const MAX_TIMEOUT_SECONDS: i128 = 100 * 365 * 24 * 3600;

/// A script's `timeout`: a positive whole number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Timeout(pub Duration);

impl FromScalar for Timeout {
    const EXPECTING: &'static str = "a number of seconds";

    fn from_scalar(value: Scalar, path: &str) -> Result<Self, Problem> {
        match whole_number(&value) {
            Some(n) if n > 0 && n <= MAX_TIMEOUT_SECONDS => {
                Ok(Timeout(Duration::from_secs(n as u64)))
            }
            Some(n) if n > 0 => Err(Problem::invalid(at(
                path,
                format!("{n} seconds is longer than cutover allows ({MAX_TIMEOUT_SECONDS})"),
            ))),
            Some(_) => Err(Problem::invalid(at(
                path,
                format!("{} is not a positive number of seconds", value.quoted()),
            ))),
            None => Err(Problem::invalid(at(
                path,
                format!(
                    "{} is not a whole number of seconds, such as 300",
                    value.quoted()
                ),
            ))),
        }
    }
}

/// A run-as user name, as `runas` gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct UserName(pub String);

impl FromScalar for UserName {
    const EXPECTING: &'static str = "a user name";

    fn from_scalar(value: Scalar, path: &str) -> Result<Self, Problem> {
        let text = value.text().unwrap_or_default();
        let name = text.trim();
        if name.is_empty() {
            return Err(Problem::invalid(at(path, "the user name is empty")));
        }
        if name
            .chars()
            .any(|c| c.is_whitespace() || c == ':' || c == '/')
        {
            return Err(Problem::invalid(at(
                path,
                format!("'{name}' is not a user name"),
            )));
        }
        Ok(UserName(name.to_owned()))
    }
}

/// True if `path` has a `..` component, which could reach outside the directory it is under.
pub(super) fn climbs_out(path: &str) -> bool {
    path.split('/').any(|component| component == "..")
}

/// A path inside the bundle (`files` sources, hook scripts). A leading `/` means the bundle
/// root, as it does for CodeDeploy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct BundlePath(pub String);

impl FromScalar for BundlePath {
    const EXPECTING: &'static str = "a path inside the bundle";

    fn from_scalar(value: Scalar, path: &str) -> Result<Self, Problem> {
        let text = String::from_scalar(value, path)?;
        if climbs_out(&text) {
            return Err(Problem::new(
                AppSpecErrorKind::InvalidPath,
                at(
                    path,
                    format!("'{text}' contains '..'; paths stay inside the bundle"),
                ),
            ));
        }
        Ok(BundlePath(text))
    }
}

/// An absolute path on the host (`files` destinations).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct HostPath(pub String);

impl FromScalar for HostPath {
    const EXPECTING: &'static str = "an absolute path";

    fn from_scalar(value: Scalar, path: &str) -> Result<Self, Problem> {
        let text = String::from_scalar(value, path)?;
        if !text.starts_with('/') {
            return Err(Problem::new(
                AppSpecErrorKind::InvalidPath,
                at(
                    path,
                    format!("'{text}' is not an absolute path; it must start with '/'"),
                ),
            ));
        }
        if climbs_out(&text) {
            return Err(Problem::new(
                AppSpecErrorKind::InvalidPath,
                at(
                    path,
                    format!("'{text}' contains '..'; write the directory it leads to instead"),
                ),
            ));
        }
        Ok(HostPath(text))
    }
}

/// One entry of a permission's `acls`: `[d[efault]:][u[ser]|g[roup]|m[ask]|o[ther]]:[name]:perms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct AclEntry(pub String);

impl FromScalar for AclEntry {
    const EXPECTING: &'static str = "an ACL entry such as u:deploy:rw";

    fn from_scalar(value: Scalar, path: &str) -> Result<Self, Problem> {
        let text = String::from_scalar(value, path)?;
        let entry = text.trim();
        check_acl_entry(entry)
            .map_err(|why| Problem::invalid(at(path, format!("ACL entry '{entry}' {why}"))))?;
        Ok(AclEntry(entry.to_owned()))
    }
}

/// The checks the CodeDeploy agent makes on an ACL entry before it installs anything.
fn check_acl_entry(entry: &str) -> Result<(), String> {
    let is_default = |t: &str| matches!(t, "d" | "default");
    let mut parts: Vec<&str> = entry.split(':').collect();
    if !(2..=4).contains(&parts.len()) {
        return Err("is not of the form [default:][user|group|mask|other:]name:perms".to_owned());
    }
    let perms = parts.pop().unwrap_or_default();
    let name = parts.pop().unwrap_or_default();
    let mut default = false;
    if parts.len() == 2 {
        if !is_default(parts[0]) {
            return Err(format!("has '{}' where 'default' belongs", parts[0]));
        }
        default = true;
    }
    // The kind of entry: u(ser), g(roup), m(ask) or o(ther).
    let mut kind = None;
    // The tag before the name is the entry's type, or `default` when it stands alone.
    if let Some(&tag) = parts.last() {
        if is_default(tag) && parts.len() == 1 {
            default = true;
        } else {
            kind = match tag {
                "u" | "user" => Some('u'),
                "g" | "group" => Some('g'),
                "m" | "mask" => Some('m'),
                "o" | "other" => Some('o'),
                other => return Err(format!("has the unknown entry type '{other}'")),
            };
        }
    }
    // Without a type, `mask` and `other` name the kind of entry; anything else is a user.
    let (kind, name) = match (kind, name) {
        (Some(kind), name) => (kind, name),
        (None, "m" | "mask") => ('m', ""),
        (None, "o" | "other") => ('o', ""),
        (None, name) => ('u', name),
    };
    if matches!(kind, 'm' | 'o') && !name.is_empty() {
        return Err("names a user or group in a mask or other entry".to_owned());
    }
    if !default && kind != 'm' && name.is_empty() {
        return Err("sets the base entry, which is set with mode".to_owned());
    }
    let octal = perms.len() == 1 && perms.chars().all(|c| matches!(c, '0'..='7'));
    if !octal && let Some(bad) = perms.chars().find(|c| !matches!(c, 'r' | 'w' | 'x' | '-')) {
        return Err(format!(
            "has the permission character '{bad}'; use r, w, x and -"
        ));
    }
    Ok(())
}

/// An SELinux MLS range: `s0`, `s0-s2`, `s0:c0.c5,c7`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SeLinuxRange(pub String);

impl FromScalar for SeLinuxRange {
    const EXPECTING: &'static str = "an SELinux range such as s0:c0.c3";

    fn from_scalar(value: Scalar, path: &str) -> Result<Self, Problem> {
        let text = String::from_scalar(value, path)?;
        check_range(text.trim()).map_err(|why| {
            Problem::invalid(at(path, format!("SELinux range '{}' {why}", text.trim())))
        })?;
        Ok(SeLinuxRange(text.trim().to_owned()))
    }
}

fn check_range(range: &str) -> Result<(), String> {
    let (levels, categories) = match range.split_once(':') {
        Some((levels, categories)) => (levels, Some(categories)),
        None => (range, None),
    };
    let level = |s: &str| -> Result<u32, String> {
        s.strip_prefix('s')
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("has '{s}' where a sensitivity such as s0 belongs"))
    };
    let (low, high) = match levels.split_once('-') {
        Some((low, high)) => (level(low)?, level(high)?),
        None => (level(levels)?, level(levels)?),
    };
    if high < low {
        return Err("has a high sensitivity below its low one".to_owned());
    }
    let Some(categories) = categories else {
        return Ok(());
    };
    let category = |s: &str| -> Result<u32, String> {
        s.strip_prefix('c')
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse().ok())
            .filter(|n| *n <= 1023)
            .ok_or_else(|| format!("has '{s}' where a category c0 to c1023 belongs"))
    };
    let mut seen = Vec::new();
    for part in categories.split(',') {
        let (low, high) = match part.split_once('.') {
            Some((low, high)) => (category(low)?, category(high)?),
            None => (category(part)?, category(part)?),
        };
        if high < low {
            return Err(format!("has the backwards category range '{part}'"));
        }
        for c in low..=high {
            if seen.contains(&c) {
                return Err(format!("lists category c{c} twice"));
            }
            seen.push(c);
        }
    }
    Ok(())
}

/// A published Lambda version: CodeDeploy moves an alias between two of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct LambdaVersion(pub String);

impl FromScalar for LambdaVersion {
    const EXPECTING: &'static str = "a published version number";

    fn from_scalar(value: Scalar, path: &str) -> Result<Self, Problem> {
        let text = String::from_scalar(value, path)?;
        let text = text.trim();
        if text.eq_ignore_ascii_case("$LATEST") {
            return Err(Problem::invalid(at(
                path,
                "$LATEST cannot be deployed: an alias shifts traffic between published \
                 versions, so give a version number (publish one with `aws lambda \
                 publish-version`)",
            )));
        }
        // Versions are numbered from 1; `01` is version 1.
        let number = text.trim_start_matches('0');
        let published = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
        if !published {
            return Err(Problem::invalid(at(
                path,
                format!("'{text}' is not a published version number such as 3"),
            )));
        }
        Ok(LambdaVersion(number.to_owned()))
    }
}

/// A TCP port, 1 to 65535.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Port(pub u16);

impl FromScalar for Port {
    const EXPECTING: &'static str = "a port number";

    fn from_scalar(value: Scalar, path: &str) -> Result<Self, Problem> {
        whole_number(&value)
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| *n > 0)
            .map(Port)
            .ok_or_else(|| {
                Problem::invalid(at(
                    path,
                    format!("{} is not a port number (1 to 65535)", value.quoted()),
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str) -> Scalar {
        Scalar::Text(t.to_owned())
    }

    #[test]
    fn modes_are_padded_octal_digits() {
        let mode = |v| Mode::from_scalar(v, "m").map(Mode::bits);
        assert_eq!(mode(text("44")), Ok(0o044));
        assert_eq!(mode(text("0644")), Ok(0o644));
        assert_eq!(mode(Scalar::Int(644)), Ok(0o644));
        assert_eq!(mode(text("4755")), Ok(0o4755));
        assert_eq!(mode(text("7")), Ok(0o007));
        assert!(
            mode(text("12345"))
                .unwrap_err()
                .message
                .contains("5 digits")
        );
        assert!(mode(text("648")).unwrap_err().message.contains("'8'"));
        assert!(mode(Scalar::Int(-644)).is_err());
        assert!(mode(Scalar::Float(6.44)).is_err());
        assert_eq!(Mode(0o644).to_string(), "0644");
        assert_eq!(Mode(0o4755).to_string(), "4755");
        assert_eq!(Mode::from_bits(0o10000), None);
    }

    #[test]
    fn acl_entries_follow_the_agents_grammar() {
        for good in [
            "u:deploy:rw",
            "deploy:rw",
            "user:deploy:rwx",
            "d:u:deploy:r-x",
            "g:web:5",
            "m::rx",
            "mask:rx",
            "default:group:web:rw",
            "d:u::rwx",
            "d:o::r",
        ] {
            assert_eq!(check_acl_entry(good), Ok(()), "{good}");
        }
        for bad in [
            "rw",
            ":rw",
            "u:deploy:rwz",
            "x:deploy:rw",
            "u::rw",
            "o::r",
            "o:someone:r",
            "u:d:deploy:r",
            "d:d:deploy:r",
            "d:u:x:y:r",
        ] {
            assert!(check_acl_entry(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selinux_ranges_follow_the_agents_grammar() {
        for good in ["s0", "s0-s2", "s0:c0.c5,c7", "s1:c1023"] {
            assert_eq!(check_range(good), Ok(()), "{good}");
        }
        for bad in [
            "", "s", "x0", "s2-s1", "s0:c1024", "s0:c3.c1", "s0:c1,c1", "s0:",
        ] {
            assert!(check_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lambda_versions_are_published_numbers() {
        let version = |v| LambdaVersion::from_scalar(v, "p").map(|v| v.0);
        assert_eq!(version(Scalar::Int(3)), Ok("3".to_owned()));
        assert_eq!(version(text("12")), Ok("12".to_owned()));
        assert!(
            version(text("$LATEST"))
                .unwrap_err()
                .message
                .contains("$LATEST cannot")
        );
        assert!(version(text("v2")).is_err());
        assert!(version(text("0")).is_err());
    }
}
