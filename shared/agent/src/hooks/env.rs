//! The environment a hook script runs with: CodeDeploy's variables about the deployment and its
//! revision, `CUTOVER_HOST_ROOT`, and a small fixed base instead of the agent's own environment.

use cutover_core::lifecycle::LifecycleEventName;
use cutover_core::model::RevisionLocation;

use super::runas::Account;

/// The `PATH` scripts get, whatever the agent's own is, so a script finds the same tools on every
/// host and in `cutover local`.
pub const SCRIPT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Variables of the agent's own environment that scripts still get when set: locale, time zone
/// and proxies are host settings that scripts expect to share.
const PASSED_THROUGH: [&str; 10] = [
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "TZ",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
];

/// What a deployment tells its hook scripts about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookEnv {
    pub deployment_id: String,
    pub application_name: String,
    pub deployment_group_name: String,
    pub deployment_group_id: String,
    /// `BUNDLE_*`: none for revisions that are neither in S3 nor in a repository.
    pub revision: Option<RevisionEnv>,
    /// `CUTOVER_HOST_ROOT`: [`HostRoot::env_value`](crate::host::HostRoot::env_value), empty on
    /// a real host.
    pub host_root: String,
}

/// Where the revision came from, as the agent tells scripts in `BUNDLE_*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevisionEnv {
    /// `BUNDLE_BUCKET`, `BUNDLE_KEY`, and `BUNDLE_ETAG` / `BUNDLE_VERSION` when known: the agent
    /// leaves a variable out rather than setting it empty.
    S3 {
        bucket: String,
        key: String,
        etag: Option<String>,
        version: Option<String>,
    },
    /// `BUNDLE_COMMIT` of a repository revision.
    GitHub { commit: String },
}

impl RevisionEnv {
    /// The variables for a revision; `None` for local and inline revisions, which get none.
    pub fn from_location(location: &RevisionLocation) -> Option<Self> {
        match location {
            RevisionLocation::S3(s3) => Some(RevisionEnv::S3 {
                bucket: s3.bucket.clone(),
                key: s3.key.clone(),
                etag: s3.e_tag.clone(),
                version: s3.version.clone(),
            }),
            RevisionLocation::GitHub(github) => Some(RevisionEnv::GitHub {
                commit: github.commit_id.clone(),
            }),
            RevisionLocation::String(_)
            | RevisionLocation::AppSpecContent(_)
            | RevisionLocation::Local(_) => None,
        }
    }

    fn vars(&self) -> Vec<(String, String)> {
        let var = |name: &str, value: &str| (name.to_owned(), value.to_owned());
        match self {
            RevisionEnv::S3 {
                bucket,
                key,
                etag,
                version,
            } => {
                let mut vars = vec![var("BUNDLE_BUCKET", bucket), var("BUNDLE_KEY", key)];
                vars.extend(etag.as_deref().map(|e| var("BUNDLE_ETAG", e)));
                vars.extend(version.as_deref().map(|v| var("BUNDLE_VERSION", v)));
                vars
            }
            RevisionEnv::GitHub { commit } => vec![var("BUNDLE_COMMIT", commit)],
        }
    }
}

impl HookEnv {
    /// The deployment's variables for a script of `event`, without the base (`PATH`, `HOME`, ...).
    pub fn vars(&self, event: LifecycleEventName) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = [
            ("LIFECYCLE_EVENT", event.as_str()),
            ("DEPLOYMENT_ID", &self.deployment_id),
            ("APPLICATION_NAME", &self.application_name),
            ("DEPLOYMENT_GROUP_NAME", &self.deployment_group_name),
            ("DEPLOYMENT_GROUP_ID", &self.deployment_group_id),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
        vars.extend(self.revision.iter().flat_map(RevisionEnv::vars));
        vars.push(("CUTOVER_HOST_ROOT".to_owned(), self.host_root.clone()));
        vars
    }
}

/// Everything a script of `event` run as `account` gets: the base, then the deployment's
/// variables.
pub(crate) fn script_env(
    account: &Account,
    hook_env: &HookEnv,
    event: LifecycleEventName,
) -> Vec<(String, String)> {
    let mut vars = base_vars(account);
    vars.extend(hook_env.vars(event));
    vars
}

fn base_vars(account: &Account) -> Vec<(String, String)> {
    let mut vars = vec![
        ("PATH".to_owned(), SCRIPT_PATH.to_owned()),
        ("HOME".to_owned(), account.home.display().to_string()),
        ("USER".to_owned(), account.name.clone()),
        ("LOGNAME".to_owned(), account.name.clone()),
    ];
    for name in PASSED_THROUGH {
        if let Ok(value) = std::env::var(name) {
            vars.push((name.to_owned(), value));
        }
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_core::model::{GitHubLocation, LocalLocation, S3Location};

    fn hook_env(revision: Option<RevisionEnv>) -> HookEnv {
        HookEnv {
            deployment_id: "d-ABCDEFGHI".into(),
            application_name: "web".into(),
            deployment_group_name: "prod".into(),
            deployment_group_id: "g-1".into(),
            revision,
            host_root: String::new(),
        }
    }

    fn names(vars: &[(String, String)]) -> Vec<&str> {
        vars.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn hooks_environment_names_the_event_the_deployment_and_the_group() {
        let vars = hook_env(None).vars(LifecycleEventName::AfterInstall);
        assert_eq!(
            vars,
            [
                ("LIFECYCLE_EVENT", "AfterInstall"),
                ("DEPLOYMENT_ID", "d-ABCDEFGHI"),
                ("APPLICATION_NAME", "web"),
                ("DEPLOYMENT_GROUP_NAME", "prod"),
                ("DEPLOYMENT_GROUP_ID", "g-1"),
                ("CUTOVER_HOST_ROOT", ""),
            ]
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn hooks_environment_leaves_out_an_s3_revisions_unknown_version_and_etag() {
        let s3 = RevisionLocation::S3(S3Location {
            bucket: "b".into(),
            key: "k.zip".into(),
            bundle_type: None,
            version: None,
            e_tag: None,
        });
        let vars = hook_env(RevisionEnv::from_location(&s3)).vars(LifecycleEventName::Install);
        assert!(names(&vars).contains(&"BUNDLE_BUCKET"));
        assert!(names(&vars).contains(&"BUNDLE_KEY"));
        assert!(!names(&vars).contains(&"BUNDLE_VERSION"));
        assert!(!names(&vars).contains(&"BUNDLE_ETAG"));
    }

    #[test]
    fn hooks_environment_gives_a_repository_revisions_commit_and_nothing_for_local_ones() {
        let github = RevisionLocation::GitHub(GitHubLocation {
            repository: "o/r".into(),
            commit_id: "abc123".into(),
        });
        let vars = hook_env(RevisionEnv::from_location(&github)).vars(LifecycleEventName::Install);
        assert!(vars.contains(&("BUNDLE_COMMIT".to_owned(), "abc123".to_owned())));
        let local = RevisionLocation::Local(LocalLocation {
            path: "/tmp/app".into(),
            bundle_type: None,
        });
        assert_eq!(RevisionEnv::from_location(&local), None);
    }
}
