//! Server (EC2/on-premises) AppSpecs: the `files` to install, the `permissions` to set on them
//! and the scripts to run at each lifecycle event.

use std::fmt;
use std::time::Duration;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Serialize, Serializer};

use super::events::EventSeed;
use super::read::{At, FromDoc, Problem, Record, child, expecting, item, read_record_then, record};
use super::scalar::{
    AclEntry, BundlePath, HostPath, LinuxOs, Mode, Os, PermissionType, SeLinuxRange, Timeout,
    UserName, Version,
};
use super::{AppSpecError, AppSpecErrorKind};
use crate::lifecycle::LifecycleEventName;
use crate::model::{ComputePlatform, FileExistsBehavior};

/// How long a script may run when its entry gives no `timeout`: one hour, as in CodeDeploy.
pub const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(3600);

/// A checked Server AppSpec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServerAppSpec {
    /// Always [`Os::Linux`]: a `windows` AppSpec is refused when parsed.
    pub os: Os,
    pub files: Vec<FileMapping>,
    /// The AppSpec's choice, which wins over the deployment's `fileExistsBehavior`.
    pub file_exists_behavior: Option<FileExistsBehavior>,
    pub permissions: Vec<Permission>,
    /// Each hooked event with its scripts, in the order the AppSpec lists them. Events listed
    /// with no scripts are left out.
    pub hooks: Vec<(LifecycleEventName, Vec<HookScript>)>,
}

impl ServerAppSpec {
    /// The scripts to run for `event`, in order; empty if the event is not hooked.
    pub fn scripts(&self, event: LifecycleEventName) -> &[HookScript] {
        self.hooks
            .iter()
            .find(|(e, _)| *e == event)
            .map(|(_, scripts)| scripts.as_slice())
            .unwrap_or(&[])
    }

    /// The time allowed for `event`: the sum of its scripts' timeouts.
    pub fn event_timeout(&self, event: LifecycleEventName) -> Duration {
        self.scripts(event)
            .iter()
            .fold(Duration::ZERO, |sum, s| sum.saturating_add(s.timeout))
    }

    /// Refuses two `files` entries whose sources are single files landing on the same path.
    ///
    /// Whether a source is a file or a directory is known only once the bundle is unpacked, so
    /// the agent calls this with `is_file`; entries that repeat each other exactly are already
    /// refused by [`parse_server`](super::parse_server).
    pub fn check_file_targets(
        &self,
        source_name: &str,
        is_file: impl Fn(&FileMapping) -> bool,
    ) -> Result<(), AppSpecError> {
        let files: Vec<(usize, String)> = self
            .files
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.is_whole_bundle() && is_file(f))
            .map(|(i, f)| (i, f.file_target()))
            .collect();
        for (n, (later, target)) in files.iter().enumerate() {
            if let Some((earlier, _)) = files[..n].iter().find(|(_, t)| t == target) {
                return Err(AppSpecError::without_line(
                    source_name,
                    AppSpecErrorKind::DuplicateDestination,
                    format!(
                        "files[{later}] and files[{earlier}] both install a file at '{target}'"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A `files` entry: copy `source` from the bundle to `destination` on the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileMapping {
    /// As written. Relative to the bundle root; a leading `/` also means the bundle root, and
    /// `/` alone the whole bundle.
    pub source: String,
    /// As written: an absolute path on the host.
    pub destination: String,
}

/// The `/`-separated parts of a path, without empty and `.` parts.
fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}

impl FileMapping {
    /// The source relative to the bundle root, in plain form (`src/app`): no leading `/` or
    /// `./`, no trailing `/`. Empty for the whole bundle.
    pub fn bundle_path(&self) -> String {
        components(&self.source).collect::<Vec<_>>().join("/")
    }

    /// True when the source is the bundle root (`/`, `.`, `./`).
    pub fn is_whole_bundle(&self) -> bool {
        components(&self.source).next().is_none()
    }

    /// The destination in plain form: `/etc/app/` and `/etc//app` are `/etc/app`.
    pub fn destination_path(&self) -> String {
        let parts: Vec<_> = components(&self.destination).collect();
        format!("/{}", parts.join("/"))
    }

    /// Where the source lands if it is a single file: `destination/<basename of source>`.
    pub fn file_target(&self) -> String {
        let destination = self.destination_path();
        let base = components(&self.source).last().unwrap_or_default();
        if destination == "/" {
            format!("/{base}")
        } else {
            format!("{destination}/{base}")
        }
    }
}

/// A `permissions` entry: ownership, mode, ACLs and SELinux context for what `object` holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Permission {
    /// The installed file or directory the entry applies to.
    pub object: String,
    /// Which names under `object` it applies to; `**` (the default) means all of them.
    pub pattern: String,
    pub except: Vec<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<Mode>,
    /// ACL entries as written, e.g. `u:deploy:rw`, `d:g:web:rx`.
    pub acls: Vec<String>,
    pub context: Option<SeLinuxContext>,
    /// The kinds of entries it applies to; empty means both files and directories.
    #[serde(rename = "type")]
    pub types: Vec<PermissionType>,
}

impl Permission {
    /// The pattern that applies a permission to everything under its object.
    pub const ALL: &'static str = "**";

    /// True if the entry applies to entries of kind `kind`.
    pub fn applies_to(&self, kind: PermissionType) -> bool {
        self.types.is_empty() || self.types.contains(&kind)
    }
}

/// A permission's SELinux `context`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeLinuxContext {
    pub user: Option<String>,
    #[serde(rename = "type")]
    pub type_: String,
    /// An MLS range such as `s0` or `s0:c0.c3`, checked for form.
    pub range: Option<String>,
}

/// One script of a hook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HookScript {
    /// As written (trimmed): relative to the bundle root; a leading `/` is tolerated.
    pub location: String,
    #[serde(serialize_with = "seconds")]
    pub timeout: Duration,
    pub runas: Option<String>,
    /// The agent's undocumented `sudo: true`, kept so revisions that set it still parse.
    pub sudo: bool,
}

impl HookScript {
    /// The script's path relative to the bundle root, in plain form.
    pub fn bundle_path(&self) -> String {
        components(&self.location).collect::<Vec<_>>().join("/")
    }
}

fn seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

record! {
    /// A Server AppSpec's top level.
    struct ServerDoc -> ServerAppSpec, exact {
        version: Version = "version",
        os: LinuxOs = "os",
        files: Files = "files",
        file_exists_behavior: Option<FileExistsBehavior> = "file_exists_behavior",
        permissions: Vec<Permission> = "permissions",
        hooks: Hooks = "hooks",
    }
}

impl Record for ServerDoc {
    type Output = ServerAppSpec;
    const WHAT: &'static str = "a Server AppSpec";

    fn finish(self, _path: &str) -> Result<ServerAppSpec, Problem> {
        Version::require(self.version)?;
        if self.os.is_none() {
            return Err(Problem::new(
                AppSpecErrorKind::MissingKey,
                "missing 'os'; write os: linux",
            ));
        }
        Ok(ServerAppSpec {
            os: Os::Linux,
            files: self.files.map(|f| f.0).unwrap_or_default(),
            file_exists_behavior: self.file_exists_behavior.flatten(),
            permissions: self.permissions.unwrap_or_default(),
            hooks: self.hooks.map(|h| h.0).unwrap_or_default(),
        })
    }
}

record! {
    /// A `files` entry.
    struct FileEntry -> FileMapping, exact {
        source: BundlePath = "source",
        destination: HostPath = "destination",
    }
}

impl Record for FileEntry {
    type Output = FileMapping;
    const WHAT: &'static str = "a files entry";

    fn finish(self, path: &str) -> Result<FileMapping, Problem> {
        match (self.source, self.destination) {
            (Some(source), Some(destination)) => Ok(FileMapping {
                source: source.0,
                destination: destination.0,
            }),
            (Some(source), None) => Err(Problem::new(
                AppSpecErrorKind::MissingKey,
                format!("{path}: missing 'destination' for source '{}'", source.0),
            )),
            (None, Some(destination)) => Err(Problem::new(
                AppSpecErrorKind::MissingKey,
                format!(
                    "{path}: missing 'source' for destination '{}'",
                    destination.0
                ),
            )),
            (None, None) => Err(Problem::new(
                AppSpecErrorKind::MissingKey,
                format!("{path}: missing 'source' and 'destination'"),
            )),
        }
    }
}

/// The `files` list. Each entry is compared with the earlier ones while it is read, so that a
/// repeat is reported at its own line.
struct Files(Vec<FileMapping>);

impl FromDoc for Files {
    fn from_doc<'de, D: Deserializer<'de>>(d: D, path: &str) -> Result<Self, D::Error> {
        let files: Vec<FileMapping> = d.deserialize_any(FilesVisitor { path })?;
        Ok(Files(files))
    }
}

struct FilesVisitor<'a> {
    path: &'a str,
}

impl<'de> Visitor<'de> for FilesVisitor<'_> {
    type Value = Vec<FileMapping>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        expecting(
            f,
            self.path,
            "a list of entries, each with 'source' and 'destination'",
        )
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut files = Vec::new();
        loop {
            let path = item(self.path, files.len());
            let seed = FileSeed {
                path: &path,
                earlier: &files,
            };
            match seq.next_element_seed(seed)? {
                Some(file) => files.push(file),
                None => return Ok(files),
            }
        }
    }
}

struct FileSeed<'a> {
    path: &'a str,
    earlier: &'a [FileMapping],
}

impl<'de> DeserializeSeed<'de> for FileSeed<'_> {
    type Value = FileMapping;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<FileMapping, D::Error> {
        let (path, earlier) = (self.path, self.earlier);
        read_record_then::<FileEntry, D, _>(d, path, |file| {
            let same = |other: &FileMapping| {
                other.bundle_path() == file.bundle_path()
                    && other.destination_path() == file.destination_path()
            };
            match earlier.iter().position(same) {
                Some(index) => Err(Problem::new(
                    AppSpecErrorKind::DuplicateDestination,
                    format!(
                        "{path} repeats files[{index}]: both copy '{}' to '{}'",
                        file.source, file.destination
                    ),
                )),
                None => Ok(()),
            }
        })
    }
}

record! {
    /// A `permissions` entry.
    struct PermissionEntry -> Permission, exact {
        object: String = "object",
        pattern: Option<String> = "pattern",
        except: Vec<String> = "except",
        owner: Option<String> = "owner",
        group: Option<String> = "group",
        mode: Option<Mode> = "mode",
        acls: Vec<AclEntry> = "acls",
        context: SeLinuxContext = "context",
        types: Vec<PermissionType> = "type",
    }
}

impl Record for PermissionEntry {
    type Output = Permission;
    const WHAT: &'static str = "a permissions entry";

    fn finish(self, path: &str) -> Result<Permission, Problem> {
        let object = self
            .object
            .ok_or_else(|| Problem::missing(path, "object"))?;
        let mut types: Vec<PermissionType> = Vec::new();
        for kind in self.types.unwrap_or_default() {
            if !types.contains(&kind) {
                types.push(kind);
            }
        }
        Ok(Permission {
            object,
            pattern: self
                .pattern
                .flatten()
                .unwrap_or_else(|| Permission::ALL.to_owned()),
            except: self.except.unwrap_or_default(),
            owner: self.owner.flatten(),
            group: self.group.flatten(),
            mode: self.mode.flatten(),
            acls: self
                .acls
                .unwrap_or_default()
                .into_iter()
                .map(|a| a.0)
                .collect(),
            context: self.context,
            types,
        })
    }
}

record! {
    /// A permission's `context`. The agent reads the SELinux user from `name`, its documentation
    /// says `user`; either is taken.
    struct ContextEntry -> SeLinuxContext, exact {
        user: Option<String> = "user",
        name: Option<String> = "name",
        type_: String = "type",
        range: Option<SeLinuxRange> = "range",
    }
}

impl Record for ContextEntry {
    type Output = SeLinuxContext;
    const WHAT: &'static str = "an SELinux context";

    fn finish(self, path: &str) -> Result<SeLinuxContext, Problem> {
        let (user, name) = (self.user.flatten(), self.name.flatten());
        if user.is_some() && name.is_some() {
            return Err(Problem::invalid(format!(
                "{path}: give the SELinux user as 'user' or as 'name', not both"
            )));
        }
        Ok(SeLinuxContext {
            user: user.or(name),
            type_: self.type_.ok_or_else(|| Problem::missing(path, "type"))?,
            range: self.range.flatten().map(|r| r.0),
        })
    }
}

record! {
    /// One script of a hook.
    struct ScriptEntry -> HookScript, exact {
        location: BundlePath = "location",
        timeout: Option<Timeout> = "timeout",
        runas: Option<UserName> = "runas",
        sudo: Option<bool> = "sudo",
    }
}

impl Record for ScriptEntry {
    type Output = HookScript;
    const WHAT: &'static str = "a script entry";

    fn finish(self, path: &str) -> Result<HookScript, Problem> {
        let location = self
            .location
            .ok_or_else(|| Problem::missing(path, "location"))?;
        Ok(HookScript {
            // The agent trims the location; so do we, so that both find the same file.
            location: location.0.trim().to_owned(),
            timeout: self
                .timeout
                .flatten()
                .map_or(DEFAULT_SCRIPT_TIMEOUT, |t| t.0),
            runas: self.runas.flatten().map(|u| u.0),
            sudo: self.sudo.flatten().unwrap_or(false),
        })
    }
}

/// The `hooks` map: event names, checked where they are written, to lists of scripts.
struct Hooks(Vec<(LifecycleEventName, Vec<HookScript>)>);

impl FromDoc for Hooks {
    fn from_doc<'de, D: Deserializer<'de>>(d: D, path: &str) -> Result<Self, D::Error> {
        d.deserialize_any(HooksVisitor { path }).map(Hooks)
    }
}

struct HooksVisitor<'a> {
    path: &'a str,
}

impl<'de> Visitor<'de> for HooksVisitor<'_> {
    type Value = Vec<(LifecycleEventName, Vec<HookScript>)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        expecting(
            f,
            self.path,
            "a map from lifecycle event name to a list of scripts",
        )
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = Vec::new();
        let mut hooks = Vec::new();
        while let Some(event) = map.next_key_seed(EventSeed {
            platform: ComputePlatform::Server,
            seen: &seen,
        })? {
            seen.push(event);
            let path = child(self.path, event.as_str());
            let scripts: Vec<HookScript> = map.next_value_seed(At::new(&path))?;
            // An event listed with no scripts is ignored, as the agent ignores it.
            if !scripts.is_empty() {
                hooks.push((event, scripts));
            }
        }
        Ok(hooks)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Parser;
    use super::super::{AppSpecErrorKind as Kind, parse_server};
    use super::*;
    use LifecycleEventName::*;

    const SERVER: Parser<ServerAppSpec> = Parser {
        function: parse_server,
        source_name: "appspec.yml",
    };

    const HEAD: &str = "version: 0.0\nos: linux\n";

    fn with_head(rest: &str) -> String {
        format!("{HEAD}{rest}")
    }

    #[test]
    fn tutorial_revision_with_runas_and_several_scripts_per_hook() {
        let spec = SERVER.parse(include_str!("../../tests/fixtures/appspec/wordpress.yml"));
        assert_eq!(spec.os, Os::Linux);
        assert_eq!(spec.files.len(), 1);
        assert!(spec.files[0].is_whole_bundle());
        assert_eq!(spec.files[0].bundle_path(), "");
        assert_eq!(spec.files[0].destination, "/var/www/html/WordPress");
        let events: Vec<_> = spec.hooks.iter().map(|(e, _)| *e).collect();
        assert_eq!(
            events,
            [
                BeforeInstall,
                AfterInstall,
                ApplicationStart,
                ApplicationStop
            ]
        );
        let start = spec.scripts(ApplicationStart);
        assert_eq!(start.len(), 2);
        assert_eq!(start[0].location, "scripts/start_server.sh");
        assert_eq!(start[0].timeout, DEFAULT_SCRIPT_TIMEOUT);
        assert_eq!(start[0].runas, None);
        assert_eq!(start[1].location, "scripts/create_test_db.sh");
        assert_eq!(start[1].timeout, Duration::from_secs(300));
        assert_eq!(start[1].runas.as_deref(), Some("root"));
        assert_eq!(
            spec.event_timeout(ApplicationStart),
            Duration::from_secs(3900)
        );
        assert_eq!(spec.event_timeout(ValidateService), Duration::ZERO);
        assert!(spec.scripts(ValidateService).is_empty());
        assert_eq!(spec.file_exists_behavior, None);
    }

    #[test]
    fn every_permission_key() {
        let spec = SERVER.parse(include_str!("../../tests/fixtures/appspec/permissions.yml"));
        let [files, dirs, conf] = spec.permissions.as_slice() else {
            panic!("{:?}", spec.permissions);
        };
        assert_eq!(files.object, "/var/www/html/site");
        assert_eq!(files.pattern, "**");
        assert_eq!(files.except, ["/var/www/html/site/README.txt"]);
        assert_eq!(files.owner.as_deref(), Some("apache"));
        assert_eq!(files.group.as_deref(), Some("apache"));
        assert_eq!(files.mode.map(Mode::bits), Some(0o644));
        assert_eq!(files.types, [PermissionType::File]);
        assert!(files.applies_to(PermissionType::File));
        assert!(!files.applies_to(PermissionType::Directory));
        assert_eq!(dirs.pattern, "img*");
        assert_eq!(dirs.mode.map(Mode::bits), Some(0o4755));
        assert_eq!(dirs.acls, ["u:ec2-user:rw", "d:g:apache:rx"]);
        assert_eq!(
            dirs.context,
            Some(SeLinuxContext {
                user: Some("unconfined_u".to_owned()),
                type_: "httpd_sys_content_t".to_owned(),
                range: Some("s0".to_owned()),
            })
        );
        assert_eq!(conf.mode.map(Mode::bits), Some(0o044));
        assert_eq!(conf.mode.map(|m| m.to_string()).as_deref(), Some("0044"));
        assert!(conf.types.is_empty() && conf.applies_to(PermissionType::Directory));
        let restart = &spec.scripts(AfterInstall)[0];
        assert_eq!(restart.location, "/scripts/restart_httpd.sh");
        assert_eq!(restart.bundle_path(), "scripts/restart_httpd.sh");
        assert_eq!(restart.timeout, Duration::from_secs(180));
        assert_eq!(restart.runas.as_deref(), Some("apache"));
    }

    #[test]
    fn minimal_appspec_and_file_exists_behavior() {
        let spec = SERVER.parse(HEAD);
        assert!(spec.files.is_empty() && spec.permissions.is_empty() && spec.hooks.is_empty());
        for (text, behavior) in [
            ("DISALLOW", FileExistsBehavior::Disallow),
            ("OVERWRITE", FileExistsBehavior::Overwrite),
            ("RETAIN", FileExistsBehavior::Retain),
        ] {
            let spec = SERVER.parse(&with_head(&format!("file_exists_behavior: {text}\n")));
            assert_eq!(spec.file_exists_behavior, Some(behavior));
        }
        SERVER.assert_refused(
            &with_head("file_exists_behavior: KEEP\n"),
            Kind::InvalidValue,
            3,
            "file_exists_behavior: 'KEEP' is not a valid file exists behavior; expected one of: \
             DISALLOW, OVERWRITE, RETAIN",
        );
        let err = SERVER.refuse(&with_head("file_exists_behavior: overwrite\n"));
        assert!(err.message.ends_with("(did you mean OVERWRITE?)"), "{err}");
    }

    #[test]
    fn version_must_be_zero() {
        for ok in ["0.0", "\"0.0\"", "'0.0'", "0"] {
            SERVER.parse(&format!("version: {ok}\nos: linux\n"));
        }
        SERVER.assert_refused(
            "version: 1.0\nos: linux\n",
            Kind::UnsupportedVersion,
            1,
            "version '1.0' is not supported; 0.0 is the only AppSpec version",
        );
        let err = SERVER.refuse("os: linux\nversion: \"2\"\n");
        assert_eq!((err.kind, err.line), (Kind::UnsupportedVersion, Some(2)));
        assert!(err.message.contains("'2'"), "{err}");
        let err = SERVER.refuse("os: linux\n");
        assert_eq!(err.kind, Kind::MissingKey);
        assert!(err.message.starts_with("missing 'version'"), "{err}");
    }

    #[test]
    fn os_must_be_linux() {
        SERVER.assert_refused(
            "version: 0.0\nos: windows\n",
            Kind::UnsupportedOs,
            2,
            "os 'windows' is not supported: windows revisions are not supported on a Linux \
             host, and cutover's agent runs on Linux only",
        );
        SERVER.assert_refused(
            "version: 0.0\nos: solaris\n",
            Kind::UnsupportedOs,
            2,
            "os 'solaris' is not supported; write os: linux",
        );
        let err = SERVER.refuse("version: 0.0\nos: Linux\n");
        assert!(err.message.contains("lowercase"), "{err}");
        let err = SERVER.refuse("version: 0.0\n");
        assert_eq!(err.kind, Kind::MissingKey);
        assert_eq!(err.message, "missing 'os'; write os: linux");
    }

    #[test]
    fn files_entries_need_source_and_destination() {
        let text = with_head(
            "files:\n  - source: a\n    destination: /srv/a\n  - source: b\n    \
             destination: /srv/b\n  - source: config/app.conf\n",
        );
        SERVER.assert_refused(
            &text,
            Kind::MissingKey,
            8,
            "files[2]: missing 'destination' for source 'config/app.conf'",
        );
        SERVER.assert_refused(
            &with_head("files:\n  - destination: /srv\n"),
            Kind::MissingKey,
            4,
            "files[0]: missing 'source' for destination '/srv'",
        );
        let err = SERVER.refuse(&with_head("files:\n  - source: a\n    destination:\n"));
        assert_eq!((err.kind, err.line), (Kind::MissingKey, Some(5)), "{err}");
        assert_eq!(err.message, "files[0].destination has no value");
    }

    #[test]
    fn paths_stay_inside_the_bundle_and_destinations_are_absolute() {
        SERVER.assert_refused(
            &with_head("files:\n  - source: ../secrets\n    destination: /srv\n"),
            Kind::InvalidPath,
            4,
            "files[0].source: '../secrets' contains '..'; paths stay inside the bundle",
        );
        SERVER.assert_refused(
            &with_head("files:\n  - source: app\n    destination: /srv/app/../../etc\n"),
            Kind::InvalidPath,
            5,
            "files[0].destination: '/srv/app/../../etc' contains '..'; write the directory it \
             leads to instead",
        );
        SERVER.assert_refused(
            &with_head("files:\n  - source: app\n    destination: srv/app\n"),
            Kind::InvalidPath,
            5,
            "files[0].destination: 'srv/app' is not an absolute path; it must start with '/'",
        );
        SERVER.assert_refused(
            &with_head("hooks:\n  AfterInstall:\n    - location: scripts/../../run.sh\n"),
            Kind::InvalidPath,
            5,
            "hooks.AfterInstall[0].location: 'scripts/../../run.sh' contains '..'; paths stay \
             inside the bundle",
        );
        // A name that merely starts with two dots is not a parent directory.
        let spec = SERVER.parse(&with_head(
            "files:\n  - source: ..hidden\n    destination: /srv\n",
        ));
        assert_eq!(spec.files[0].bundle_path(), "..hidden");
    }

    #[test]
    fn repeated_files_entries_are_refused_at_the_repeat() {
        let text = with_head(
            "files:\n  - source: src/\n    destination: /srv/app\n  - source: config\n    \
             destination: /etc/app\n  - source: ./src\n    destination: /srv//app/\n",
        );
        SERVER.assert_refused(
            &text,
            Kind::DuplicateDestination,
            8,
            "files[2] repeats files[0]: both copy './src' to '/srv//app/'",
        );
        // Different sources into one directory are fine until the agent sees what they hold.
        let spec = SERVER.parse(&with_head(
            "files:\n  - source: a/app.conf\n    destination: /etc/app\n  - source: b/app.conf\n    \
             destination: /etc/app/\n  - source: c\n    destination: /etc/app\n",
        ));
        assert_eq!(spec.files[1].file_target(), "/etc/app/app.conf");
        let all_files = spec
            .check_file_targets("appspec.yml", |_| true)
            .unwrap_err();
        assert_eq!(all_files.kind, Kind::DuplicateDestination);
        assert_eq!(
            all_files.to_string(),
            "appspec.yml: files[1] and files[0] both install a file at '/etc/app/app.conf'"
        );
        let first_is_dir = spec.check_file_targets("appspec.yml", |f| f.source != "a/app.conf");
        assert_eq!(first_is_dir, Ok(()));
    }

    #[test]
    fn permissions_rules() {
        SERVER.assert_refused(
            &with_head("permissions:\n  - owner: root\n    mode: 644\n"),
            Kind::MissingKey,
            4,
            "permissions[0]: missing 'object'",
        );
        SERVER.assert_refused(
            &with_head("permissions:\n  - object: /srv\n    mode: 12345\n"),
            Kind::InvalidValue,
            5,
            "permissions[0].mode: '12345' has 5 digits; a mode is 1 to 4 octal digits, such as \
             644 or 4755",
        );
        SERVER.assert_refused(
            &with_head("permissions:\n  - object: /srv\n    mode: 0648\n"),
            Kind::InvalidValue,
            5,
            "permissions[0].mode: '0648' contains '8', which is not an octal digit (0 to 7)",
        );
        let err = SERVER.refuse(&with_head("permissions:\n  - object: /srv\n    mode: 9\n"));
        assert_eq!((err.kind, err.line), (Kind::InvalidValue, Some(5)));
        SERVER.assert_refused(
            &with_head("permissions:\n  - object: /srv\n    type: [file, link]\n"),
            Kind::InvalidValue,
            5,
            "permissions[0].type[1]: 'link' is not a valid permission type; expected one of: \
             file, directory",
        );
        SERVER.assert_refused(
            &with_head("permissions:\n  - object: /srv\n    context:\n      user: u\n"),
            Kind::MissingKey,
            6,
            "permissions[0].context: missing 'type'",
        );
        let err = SERVER.refuse(&with_head(
            "permissions:\n  - object: /srv\n    context: {type: t, range: s3-s1}\n",
        ));
        assert_eq!((err.kind, err.line), (Kind::InvalidValue, Some(5)), "{err}");
        let err = SERVER.refuse(&with_head(
            "permissions:\n  - object: /srv\n    acls:\n      - u:deploy:rwq\n",
        ));
        assert_eq!((err.kind, err.line), (Kind::InvalidValue, Some(6)), "{err}");
        // The agent's own spelling of the SELinux user.
        let spec = SERVER.parse(&with_head(
            "permissions:\n  - object: /srv\n    context: {name: system_u, type: t}\n",
        ));
        let context = spec.permissions[0].context.as_ref().unwrap();
        assert_eq!(context.user.as_deref(), Some("system_u"));
    }

    #[test]
    fn unknown_hook_names_get_a_suggestion() {
        SERVER.assert_refused(
            &with_head("hooks:\n  AfterInstal:\n    - location: scripts/a.sh\n"),
            Kind::UnknownLifecycleEvent,
            4,
            "hook 'AfterInstal' is not a lifecycle event (did you mean AfterInstall?)",
        );
        assert_eq!(
            SERVER
                .refuse(&with_head("hooks:\n  AfterInstal:\n    - location: a.sh\n"))
                .to_string(),
            "appspec.yml line 4: hook 'AfterInstal' is not a lifecycle event (did you mean \
             AfterInstall?)"
        );
        let err = SERVER.refuse(&with_head(
            "hooks:\n  BlockTraffic:\n    - location: a.sh\n",
        ));
        assert_eq!((err.kind, err.line), (Kind::UnknownLifecycleEvent, Some(4)));
        assert!(
            err.message
                .starts_with("BlockTraffic is performed by cutover itself and cannot run scripts"),
            "{err}"
        );
        let err = SERVER.refuse(&with_head("hooks:\n  DownloadBundle: []\n"));
        assert_eq!(err.kind, Kind::UnknownLifecycleEvent);
        let err = SERVER.refuse(&with_head("hooks:\n  AfterAllowTestTraffic: []\n"));
        assert!(
            err.message.contains("not an event of EC2/on-premises"),
            "{err}"
        );
    }

    #[test]
    fn a_hook_given_twice_is_refused() {
        SERVER.assert_refused(
            &with_head(
                "hooks:\n  AfterInstall:\n    - location: a.sh\n  ApplicationStart:\n    - \
                 location: b.sh\n  AfterInstall:\n    - location: c.sh\n",
            ),
            Kind::DuplicateHook,
            8,
            "hook 'AfterInstall' is given twice; list all of its scripts under one \
             'AfterInstall:' key",
        );
    }

    #[test]
    fn empty_hooks_are_ignored() {
        let spec = SERVER.parse(&with_head(
            "hooks:\n  ApplicationStop:\n  BeforeInstall: []\n  AfterInstall:\n    - location: \
             a.sh\n      runas: deploy\n",
        ));
        assert_eq!(spec.hooks.len(), 1);
        assert_eq!(spec.hooks[0].0, AfterInstall);
        assert_eq!(
            spec.scripts(AfterInstall)[0].runas.as_deref(),
            Some("deploy")
        );
        assert_eq!(SERVER.parse(&with_head("hooks:\n")).hooks, []);
    }

    #[test]
    fn scripts_need_a_location() {
        SERVER.assert_refused(
            &with_head(
                "hooks:\n  AfterInstall:\n    - location: a.sh\n    - timeout: 30\n      runas: \
                 deploy\n",
            ),
            Kind::MissingKey,
            6,
            "hooks.AfterInstall[1]: missing 'location'",
        );
        let err = SERVER.refuse(&with_head(
            "hooks:\n  AfterInstall:\n    - location: \"  \"\n",
        ));
        assert_eq!((err.kind, err.line), (Kind::MissingKey, Some(5)));
        let err = SERVER.refuse(&with_head(
            "hooks:\n  AfterInstall:\n    - location: a.sh\n      runas: \"\"\n",
        ));
        assert_eq!((err.kind, err.line), (Kind::InvalidValue, Some(6)), "{err}");
    }

    #[test]
    fn timeouts() {
        let timeout = |value: &str| {
            parse_server(
                &with_head(&format!(
                    "hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: {value}\n"
                )),
                "appspec.yml",
            )
            .map(|spec| spec.scripts(AfterInstall)[0].timeout.as_secs())
        };
        assert_eq!(timeout("300"), Ok(300));
        assert_eq!(timeout("\"300\""), Ok(300));
        assert_eq!(timeout("90.0"), Ok(90));
        assert_eq!(timeout("~"), Ok(3600));
        for (value, message) in [
            ("0", "'0' is not a positive number of seconds"),
            ("-5", "'-5' is not a positive number of seconds"),
            ("\"-5\"", "'-5' is not a positive number of seconds"),
            ("abc", "'abc' is not a whole number of seconds, such as 300"),
            ("1.5", "'1.5' is not a whole number of seconds, such as 300"),
            (
                "true",
                "'true' is not a whole number of seconds, such as 300",
            ),
        ] {
            let err = timeout(value).unwrap_err();
            assert_eq!(
                (err.kind, err.line, err.message),
                (
                    Kind::InvalidValue,
                    Some(6),
                    format!("hooks.AfterInstall[0].timeout: {message}")
                ),
                "{value}"
            );
        }
    }

    #[test]
    fn sudo_from_the_agent_is_kept() {
        let spec = SERVER.parse(&with_head(
            "hooks:\n  AfterInstall:\n    - location: a.sh\n      sudo: true\n",
        ));
        assert!(spec.scripts(AfterInstall)[0].sudo);
    }

    #[test]
    fn unknown_keys_at_every_level() {
        SERVER.assert_refused(
            "version: 0.0\nos: linux\nfils: []\n",
            Kind::UnknownKey,
            3,
            "unknown key 'fils' (did you mean 'files'?); the keys allowed here are: version, os, \
             files, file_exists_behavior, permissions, hooks",
        );
        SERVER.assert_refused(
            &with_head("files:\n  - sorce: a\n    destination: /b\n"),
            Kind::UnknownKey,
            4,
            "files[0]: unknown key 'sorce' (did you mean 'source'?); the keys allowed here are: \
             source, destination",
        );
        for (text, line, key) in [
            ("permissions:\n  - object: /a\n    ownr: root\n", 5, "ownr"),
            (
                "permissions:\n  - object: /a\n    context: {type: t, rnage: s0}\n",
                5,
                "rnage",
            ),
            (
                "hooks:\n  AfterInstall:\n    - locaton: a.sh\n",
                5,
                "locaton",
            ),
            (
                "hooks:\n  AfterInstall:\n    - location: a.sh\n      run_as: x\n",
                6,
                "run_as",
            ),
            ("Hooks:\n  AfterInstall: []\n", 3, "Hooks"),
        ] {
            let err = SERVER.refuse(&with_head(text));
            assert_eq!(
                (err.kind, err.line),
                (Kind::UnknownKey, Some(line)),
                "{err}"
            );
            assert!(err.message.contains(&format!("'{key}'")), "{err}");
        }
    }

    #[test]
    fn a_key_given_twice_is_refused() {
        SERVER.assert_refused(
            &with_head("files: []\nhooks:\nfiles: []\n"),
            Kind::DuplicateKey,
            5,
            "'files' is given twice; give each key once",
        );
    }

    #[test]
    fn wrong_shapes_say_what_was_expected_and_found() {
        SERVER.assert_refused(
            &with_head("hooks:\n  - AfterInstall\n"),
            Kind::InvalidValue,
            4,
            "hooks: expected a map from lifecycle event name to a list of scripts, found a list",
        );
        SERVER.assert_refused(
            &with_head("files: /srv\n"),
            Kind::InvalidValue,
            3,
            "files: expected a list of entries, each with 'source' and 'destination', found the \
             text \"/srv\"",
        );
        let err = SERVER.refuse(&with_head("permissions:\n  - object: [a]\n"));
        assert_eq!(
            err.message,
            "permissions[0].object: expected a text value, found a list"
        );
    }
}
