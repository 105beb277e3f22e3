//! The credentials and region that the operator commands sign with: from the environment, or
//! from a profile of AWS's shared files (`~/.aws/credentials` and `~/.aws/config`), in the order
//! the aws CLI uses them.
//!
//! Only static keys are read. A profile that assumes a role, signs in with SSO or runs a
//! credential process is refused with a message, since those need AWS's own services.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use ini::{Ini, ParseOption};

/// The region when nothing names one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// A key pair to sign with, and where it came from (for messages).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// `the environment (AWS_ACCESS_KEY_ID)`, `profile 'dev' in /home/me/.aws/credentials`
    pub source: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// What requests are signed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signing {
    pub credentials: Credentials,
    pub region: String,
}

/// One profile, merged from both files: the credentials file wins over the config file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Profile {
    /// Property names in lowercase, as the aws CLI reads them.
    properties: BTreeMap<String, String>,
    /// Where each property came from.
    origins: BTreeMap<String, PathBuf>,
}

impl Profile {
    fn get(&self, name: &str) -> Option<&str> {
        self.properties
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn origin(&self, name: &str) -> String {
        self.origins
            .get(name)
            .map_or_else(String::new, |p| p.display().to_string())
    }

    fn merge(&mut self, properties: &ini::Properties, from: &Path) {
        for (key, value) in properties.iter() {
            let key = key.trim().to_ascii_lowercase();
            self.properties.insert(key.clone(), value.trim().to_owned());
            self.origins.insert(key, from.to_owned());
        }
    }
}

/// The two shared files, as read (a missing file is empty).
#[derive(Debug, Default)]
pub struct SharedFiles {
    pub credentials_path: PathBuf,
    pub config_path: PathBuf,
    /// Profiles of the credentials file, by name.
    credentials: BTreeMap<String, Profile>,
    /// Profiles of the config file, by name (`[profile NAME]`, and `[default]`).
    config: BTreeMap<String, Profile>,
}

impl SharedFiles {
    /// Reads the files that `AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE` name, else
    /// `~/.aws/credentials` and `~/.aws/config`.
    pub fn load(env: &dyn Fn(&str) -> Option<String>) -> Result<SharedFiles, String> {
        let home = env("HOME");
        let path = |var: &str, default: &str| -> PathBuf {
            match env(var) {
                Some(p) => expand_home(&p, home.as_deref()),
                None => match &home {
                    Some(h) => Path::new(h).join(".aws").join(default),
                    None => PathBuf::from("~/.aws").join(default),
                },
            }
        };
        let credentials_path = path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
        let config_path = path("AWS_CONFIG_FILE", "config");
        let read = |path: &Path| match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        };
        let credentials = read(&credentials_path)?;
        let config = read(&config_path)?;
        SharedFiles::parse(
            credentials_path,
            credentials.as_deref(),
            config_path,
            config.as_deref(),
        )
    }

    /// The files from their text (`None` for a file that does not exist).
    pub fn parse(
        credentials_path: PathBuf,
        credentials: Option<&str>,
        config_path: PathBuf,
        config: Option<&str>,
    ) -> Result<SharedFiles, String> {
        let mut files = SharedFiles {
            credentials_path,
            config_path,
            ..SharedFiles::default()
        };
        if let Some(text) = credentials {
            for (section, properties) in parse_ini(text, &files.credentials_path)?.iter() {
                let Some(name) = section.map(str::trim).filter(|n| !n.is_empty()) else {
                    continue;
                };
                files
                    .credentials
                    .entry(name.to_owned())
                    .or_default()
                    .merge(properties, &files.credentials_path);
            }
        }
        if let Some(text) = config {
            for (section, properties) in parse_ini(text, &files.config_path)?.iter() {
                // `[default]` or `[profile NAME]`; other sections (`[sso-session ...]`,
                // `[services ...]`, a bare `[NAME]`) are not profiles.
                let Some(section) = section.map(str::trim) else {
                    continue;
                };
                let name = if section == "default" {
                    "default"
                } else {
                    match section.strip_prefix("profile") {
                        Some(rest) if rest.starts_with(char::is_whitespace) => rest.trim(),
                        _ => continue,
                    }
                };
                if name.is_empty() {
                    continue;
                }
                files
                    .config
                    .entry(name.to_owned())
                    .or_default()
                    .merge(properties, &files.config_path);
            }
        }
        Ok(files)
    }

    /// The profile `name` from both files, if either has it.
    fn profile(&self, name: &str) -> Option<Profile> {
        let config = self.config.get(name);
        let credentials = self.credentials.get(name);
        if config.is_none() && credentials.is_none() {
            return None;
        }
        let mut merged = config.cloned().unwrap_or_default();
        if let Some(c) = credentials {
            merged.properties.extend(c.properties.clone());
            merged.origins.extend(c.origins.clone());
        }
        Some(merged)
    }

    /// `~/.aws/credentials <joiner> ~/.aws/config`
    fn both_files(&self, joiner: &str) -> String {
        format!(
            "{} {joiner} {}",
            self.credentials_path.display(),
            self.config_path.display()
        )
    }
}

fn parse_ini(text: &str, path: &Path) -> Result<Ini, String> {
    let options = ParseOption {
        // Keys are taken as written: no quotes or escapes (secret keys may hold any character).
        enabled_quote: false,
        enabled_escape: false,
        // Nested settings (`s3 =` followed by indented lines) are part of the property above.
        enabled_indented_mutiline_value: true,
        enabled_preserve_key_leading_whitespace: false,
    };
    Ini::load_from_str_opt(text, options).map_err(|e| format!("{}: {e}", path.display()))
}

/// `~/x` as `$HOME/x`, as the SDKs read the file variables.
fn expand_home(path: &str, home: Option<&str>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => Path::new(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Profile settings that get credentials from elsewhere, which cutover does not do.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("role_arn", "assumes a role (role_arn)"),
    (
        "sso_session",
        "signs in with IAM Identity Center (sso_session)",
    ),
    (
        "sso_start_url",
        "signs in with IAM Identity Center (sso_start_url)",
    ),
    ("credential_process", "runs a credential process"),
    ("web_identity_token_file", "uses a web identity token"),
    (
        "credential_source",
        "takes credentials from a credential_source",
    ),
];

/// The credentials and region to sign with.
///
/// With `--profile`, that profile's keys. Without it, `AWS_ACCESS_KEY_ID` and
/// `AWS_SECRET_ACCESS_KEY` (with `AWS_SESSION_TOKEN`) when both are set, else the profile
/// `AWS_PROFILE` names, else `default`. The region is `--region`, else `AWS_REGION`, else
/// `AWS_DEFAULT_REGION`, else the profile's, else us-east-1.
pub fn resolve(
    profile_flag: Option<&str>,
    region_flag: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    files: &SharedFiles,
) -> Result<Signing, String> {
    let env_profile = env("AWS_PROFILE");
    let (profile_name, named) = match (profile_flag, env_profile.as_deref()) {
        (Some(p), _) => (p, Some("--profile")),
        (None, Some(p)) => (p, Some("AWS_PROFILE")),
        (None, None) => ("default", None),
    };
    let profile = files.profile(profile_name);

    let from_env = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(access_key_id), Some(secret_access_key)) if profile_flag.is_none() => {
            Some(Credentials {
                access_key_id,
                secret_access_key,
                session_token: env("AWS_SESSION_TOKEN"),
                source: "the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)".into(),
            })
        }
        _ => None,
    };
    let credentials = match from_env {
        Some(c) => c,
        None => profile_credentials(profile_name, named, profile.as_ref(), env, files)?,
    };

    let region = region_flag
        .map(str::to_owned)
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| {
            profile
                .as_ref()
                .and_then(|p| p.get("region"))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| DEFAULT_REGION.to_owned());
    Ok(Signing {
        credentials,
        region,
    })
}

fn profile_credentials(
    name: &str,
    named: Option<&str>,
    profile: Option<&Profile>,
    env: &dyn Fn(&str) -> Option<String>,
    files: &SharedFiles,
) -> Result<Credentials, String> {
    let Some(profile) = profile else {
        if let Some(how) = named {
            return Err(format!(
                "profile '{name}' (from {how}) is in neither {}",
                files.both_files("nor")
            ));
        }
        let half = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(_), None) => " (AWS_ACCESS_KEY_ID is set, but AWS_SECRET_ACCESS_KEY is not)",
            (None, Some(_)) => " (AWS_SECRET_ACCESS_KEY is set, but AWS_ACCESS_KEY_ID is not)",
            _ => "",
        };
        return Err(format!(
            "no credentials to sign with{half}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --profile NAME for a profile of {} (for `cutover serve`, its keys are in <state dir>/api-keys.json)",
            files.credentials_path.display()
        ));
    };
    match (
        profile.get("aws_access_key_id"),
        profile.get("aws_secret_access_key"),
    ) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Credentials {
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret_access_key.to_owned(),
            session_token: profile.get("aws_session_token").map(str::to_owned),
            source: format!(
                "profile '{name}' in {}",
                profile.origin("aws_secret_access_key")
            ),
        }),
        (Some(_), None) => Err(format!(
            "profile '{name}' in {} has aws_access_key_id but no aws_secret_access_key",
            profile.origin("aws_access_key_id")
        )),
        (None, Some(_)) => Err(format!(
            "profile '{name}' in {} has aws_secret_access_key but no aws_access_key_id",
            profile.origin("aws_secret_access_key")
        )),
        (None, None) => {
            if let Some((key, what)) = UNSUPPORTED.iter().find(|(k, _)| profile.get(k).is_some()) {
                return Err(format!(
                    "profile '{name}' in {} {what}; cutover signs only with static keys: give it aws_access_key_id and aws_secret_access_key, or use another profile",
                    profile.origin(key)
                ));
            }
            Err(format!(
                "profile '{name}' has no aws_access_key_id and aws_secret_access_key in {}",
                files.both_files("or")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDENTIALS: &str = "\
# keys for the test
[default]
aws_access_key_id = AKDEFAULT
aws_secret_access_key = default/secret+with=signs

[dev]
aws_access_key_id=AKDEV
aws_secret_access_key=dev-secret
aws_session_token = dev-token

[half]
aws_access_key_id = AKHALF
";

    const CONFIG: &str = "\
[default]
region = eu-west-1

; a comment
[profile dev]
region = ap-southeast-2
s3 =
  max_concurrent_requests = 10
  region = not-this-one

[profile only-in-config]
aws_access_key_id = AKCONFIG
aws_secret_access_key = config-secret
output = json

[profile assumed]
role_arn = arn:aws:iam::123456789012:role/Deployer
source_profile = default

[sso-session corp]
sso_region = us-east-1

[bare]
aws_access_key_id = AKBARE
aws_secret_access_key = bare-secret
";

    fn files(credentials: Option<&str>, config: Option<&str>) -> SharedFiles {
        SharedFiles::parse(
            "/home/me/.aws/credentials".into(),
            credentials,
            "/home/me/.aws/config".into(),
            config,
        )
        .unwrap()
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn resolve_with(
        profile: Option<&str>,
        region: Option<&str>,
        vars: &[(&str, &str)],
    ) -> Result<Signing, String> {
        resolve(
            profile,
            region,
            &env(vars),
            &files(Some(CREDENTIALS), Some(CONFIG)),
        )
    }

    #[test]
    fn a_named_profile_gives_its_keys_and_its_region() {
        let s = resolve_with(Some("dev"), None, &[]).unwrap();
        assert_eq!(s.credentials.access_key_id, "AKDEV");
        assert_eq!(s.credentials.secret_access_key, "dev-secret");
        assert_eq!(s.credentials.session_token.as_deref(), Some("dev-token"));
        assert_eq!(
            s.credentials.source,
            "profile 'dev' in /home/me/.aws/credentials"
        );
        // The region of the profile, not the one nested under `s3`.
        assert_eq!(s.region, "ap-southeast-2");
    }

    #[test]
    fn secrets_are_read_exactly_as_written() {
        let s = resolve_with(None, None, &[]).unwrap();
        assert_eq!(s.credentials.access_key_id, "AKDEFAULT");
        assert_eq!(s.credentials.secret_access_key, "default/secret+with=signs");
        assert_eq!(s.credentials.session_token, None);
        assert_eq!(s.region, "eu-west-1");
    }

    #[test]
    fn the_environment_comes_before_the_default_profile_but_not_before_a_named_one() {
        let vars = [
            ("AWS_ACCESS_KEY_ID", "AKENV"),
            ("AWS_SECRET_ACCESS_KEY", "env-secret"),
            ("AWS_SESSION_TOKEN", "env-token"),
        ];
        let s = resolve_with(None, None, &vars).unwrap();
        assert_eq!(s.credentials.access_key_id, "AKENV");
        assert_eq!(s.credentials.session_token.as_deref(), Some("env-token"));
        assert!(s.credentials.source.contains("environment"), "{s:?}");
        let s = resolve_with(Some("dev"), None, &vars).unwrap();
        assert_eq!(s.credentials.access_key_id, "AKDEV");
        // AWS_PROFILE picks the profile, but keys in the environment still come first.
        let mut with_profile = vars.to_vec();
        with_profile.push(("AWS_PROFILE", "dev"));
        let s = resolve_with(None, None, &with_profile).unwrap();
        assert_eq!(s.credentials.access_key_id, "AKENV");
        assert_eq!(s.region, "ap-southeast-2");
        let s = resolve_with(None, None, &[("AWS_PROFILE", "dev")]).unwrap();
        assert_eq!(s.credentials.access_key_id, "AKDEV");
    }

    #[test]
    fn the_region_is_the_flag_then_the_environment_then_the_profile() {
        let vars = [
            ("AWS_REGION", "us-west-2"),
            ("AWS_DEFAULT_REGION", "eu-north-1"),
        ];
        let region =
            |flag, vars: &[(&str, &str)]| resolve_with(Some("dev"), flag, vars).unwrap().region;
        assert_eq!(region(Some("sa-east-1"), &vars), "sa-east-1");
        assert_eq!(region(None, &vars), "us-west-2");
        assert_eq!(region(None, &vars[1..]), "eu-north-1");
        assert_eq!(region(None, &[]), "ap-southeast-2");
        let s = resolve(
            None,
            None,
            &env(&[("AWS_ACCESS_KEY_ID", "AK"), ("AWS_SECRET_ACCESS_KEY", "s")]),
            &files(None, None),
        )
        .unwrap();
        assert_eq!(s.region, DEFAULT_REGION);
    }

    #[test]
    fn config_profiles_need_the_profile_prefix_and_credentials_win() {
        let s = resolve_with(Some("only-in-config"), None, &[]).unwrap();
        assert_eq!(s.credentials.access_key_id, "AKCONFIG");
        assert_eq!(
            s.credentials.source,
            "profile 'only-in-config' in /home/me/.aws/config"
        );
        // `[bare]` in the config file is not a profile.
        let e = resolve_with(Some("bare"), None, &[]).unwrap_err();
        assert_eq!(
            e,
            "profile 'bare' (from --profile) is in neither /home/me/.aws/credentials nor /home/me/.aws/config"
        );
        // The same profile in both files: the credentials file's keys.
        let both = files(
            Some("[x]\naws_access_key_id = AKCRED\naws_secret_access_key = cred\n"),
            Some(
                "[profile x]\naws_access_key_id = AKCONF\naws_secret_access_key = conf\nregion = us-west-1\n",
            ),
        );
        let s = resolve(Some("x"), None, &env(&[]), &both).unwrap();
        assert_eq!(s.credentials.access_key_id, "AKCRED");
        assert_eq!(s.region, "us-west-1");
    }

    #[test]
    fn what_is_missing_is_named() {
        let e = resolve_with(Some("nope"), None, &[]).unwrap_err();
        assert!(
            e.starts_with(
                "profile 'nope' (from --profile) is in neither /home/me/.aws/credentials"
            ),
            "{e}"
        );
        let e = resolve_with(None, None, &[("AWS_PROFILE", "nope")]).unwrap_err();
        assert!(e.contains("(from AWS_PROFILE)"), "{e}");
        let e = resolve_with(Some("half"), None, &[]).unwrap_err();
        assert_eq!(
            e,
            "profile 'half' in /home/me/.aws/credentials has aws_access_key_id but no aws_secret_access_key"
        );
        let e = resolve_with(Some("assumed"), None, &[]).unwrap_err();
        assert!(
            e.starts_with("profile 'assumed' in /home/me/.aws/config assumes a role (role_arn); cutover signs only with static keys"),
            "{e}"
        );
        let e = resolve(
            None,
            None,
            &env(&[("AWS_ACCESS_KEY_ID", "AK")]),
            &files(None, None),
        )
        .unwrap_err();
        assert!(
            e.starts_with("no credentials to sign with (AWS_ACCESS_KEY_ID is set, but AWS_SECRET_ACCESS_KEY is not): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --profile NAME"),
            "{e}"
        );
    }

    #[test]
    fn the_files_come_from_the_variables_or_home() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = dir.path().join("creds");
        std::fs::write(
            &credentials,
            "[ci]\naws_access_key_id = AKCI\naws_secret_access_key = ci\n",
        )
        .unwrap();
        let vars = [
            ("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().unwrap()),
            ("HOME", "/nonexistent-home"),
        ];
        let loaded = SharedFiles::load(&env(&vars)).unwrap();
        assert_eq!(loaded.credentials_path, credentials);
        assert_eq!(
            loaded.config_path,
            Path::new("/nonexistent-home/.aws/config")
        );
        let s = resolve(Some("ci"), None, &env(&vars), &loaded).unwrap();
        assert_eq!(s.credentials.access_key_id, "AKCI");

        std::fs::create_dir(dir.path().join(".aws")).unwrap();
        std::fs::write(dir.path().join(".aws/config"), "[profile p]\nregion = x\n").unwrap();
        let home = [
            ("HOME", dir.path().to_str().unwrap()),
            ("AWS_CONFIG_FILE", "~/.aws/config"),
        ];
        let loaded = SharedFiles::load(&env(&home)).unwrap();
        assert_eq!(loaded.config_path, dir.path().join(".aws/config"));
        assert!(loaded.profile("p").is_some());

        std::fs::write(&credentials, "[broken\n").unwrap();
        let e = SharedFiles::load(&env(&vars)).unwrap_err();
        assert!(e.starts_with(&credentials.display().to_string()), "{e}");
    }
}
