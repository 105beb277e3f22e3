//! Revisions: where the bundle or AppSpec that a deployment installs comes from.
//!
//! On the wire a revision is CodeDeploy's `RevisionLocation`: a `revisionType` tag and one
//! location field. In code it is an enum, so a location without its data cannot exist.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

use super::wire_enum;

wire_enum! {
    /// The kind of file a bundle is.
    pub enum BundleType as "bundle type" {
        Tar = "tar",
        Tgz = "tgz",
        Zip = "zip",
        Yaml = "YAML",
        Json = "JSON",
    }
}

/// A bundle in S3, pinned by version and ETag once validated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Location {
    pub bucket: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_type: Option<BundleType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(rename = "eTag", default, skip_serializing_if = "Option::is_none")]
    pub e_tag: Option<String>,
}

/// A commit of a GitHub repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitHubLocation {
    pub repository: String,
    pub commit_id: String,
}

/// An AppSpec given inline (CodeDeploy's `AppSpecContent`, and the older `String` revision), with
/// an optional SHA-256 of the content that must match when present.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppSpecContent {
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// CodeDeploy's `genericRevisionInfo`: what is known of a revision registered with an
/// application, or used by one of its deployments.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenericRevisionInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub deployment_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_used_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_time: Option<Timestamp>,
    pub register_time: Timestamp,
}

impl GenericRevisionInfo {
    /// A revision registered at `now`.
    pub fn registered(description: Option<String>, now: Timestamp) -> Self {
        GenericRevisionInfo {
            description,
            register_time: now,
            ..Default::default()
        }
    }

    /// Records that `group` deployed the revision at `now`.
    pub fn used_by(&mut self, group: &str, now: Timestamp) {
        self.first_used_time.get_or_insert(now);
        self.last_used_time = Some(now);
        if !self.deployment_groups.iter().any(|g| g == group) {
            self.deployment_groups.push(group.to_owned());
        }
    }
}

/// The inline content does not match the SHA-256 given with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the AppSpec content's SHA-256 is {actual}, but the revision says {expected}; the content was changed or the checksum is wrong"
)]
pub struct Sha256Mismatch {
    pub expected: String,
    pub actual: String,
}

impl AppSpecContent {
    /// The lowercase hex SHA-256 of the content.
    pub fn digest(&self) -> String {
        crate::digest::sha256_hex(self.content.as_bytes())
    }

    /// Checks the content against its SHA-256, when one is given.
    pub fn verify(&self) -> Result<(), Sha256Mismatch> {
        let Some(expected) = &self.sha256 else {
            return Ok(());
        };
        let actual = self.digest();
        if actual.eq_ignore_ascii_case(expected.trim()) {
            Ok(())
        } else {
            Err(Sha256Mismatch {
                expected: expected.clone(),
                actual,
            })
        }
    }
}

/// A bundle on this machine's file system: a directory or an archive (cutover's own revision
/// type, used by `cutover local`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalLocation {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_type: Option<BundleType>,
}

/// What a deployment installs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "RevisionLocationWire", try_from = "RevisionLocationWire")]
pub enum RevisionLocation {
    S3(S3Location),
    GitHub(GitHubLocation),
    /// The older inline form; CodeDeploy still accepts it for Lambda AppSpecs.
    String(AppSpecContent),
    AppSpecContent(AppSpecContent),
    Local(LocalLocation),
}

impl RevisionLocation {
    pub fn revision_type(&self) -> RevisionType {
        match self {
            RevisionLocation::S3(_) => RevisionType::S3,
            RevisionLocation::GitHub(_) => RevisionType::GitHub,
            RevisionLocation::String(_) => RevisionType::String,
            RevisionLocation::AppSpecContent(_) => RevisionType::AppSpecContent,
            RevisionLocation::Local(_) => RevisionType::Local,
        }
    }

    /// The inline AppSpec of a `String` or `AppSpecContent` revision.
    pub fn inline_content(&self) -> Option<&AppSpecContent> {
        match self {
            RevisionLocation::String(c) | RevisionLocation::AppSpecContent(c) => Some(c),
            _ => None,
        }
    }
}

wire_enum! {
    pub enum RevisionType as "revision type" {
        S3 = "S3",
        GitHub = "GitHub",
        String = "String",
        AppSpecContent = "AppSpecContent",
        Local = "Local",
    }
}

/// CodeDeploy's `RevisionLocation` as it travels.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RevisionLocationWire {
    revision_type: RevisionType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s3_location: Option<S3Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    git_hub_location: Option<GitHubLocation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    string: Option<AppSpecContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    app_spec_content: Option<AppSpecContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    local_location: Option<LocalLocation>,
}

impl From<RevisionLocation> for RevisionLocationWire {
    fn from(r: RevisionLocation) -> Self {
        let mut wire = RevisionLocationWire {
            revision_type: r.revision_type(),
            s3_location: None,
            git_hub_location: None,
            string: None,
            app_spec_content: None,
            local_location: None,
        };
        match r {
            RevisionLocation::S3(l) => wire.s3_location = Some(l),
            RevisionLocation::GitHub(l) => wire.git_hub_location = Some(l),
            RevisionLocation::String(l) => wire.string = Some(l),
            RevisionLocation::AppSpecContent(l) => wire.app_spec_content = Some(l),
            RevisionLocation::Local(l) => wire.local_location = Some(l),
        }
        wire
    }
}

/// The revision names a type but lacks the location of that type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("revisionType is {revision_type} but {field} is missing")]
pub struct MissingRevisionLocation {
    pub revision_type: RevisionType,
    pub field: &'static str,
}

impl TryFrom<RevisionLocationWire> for RevisionLocation {
    type Error = MissingRevisionLocation;

    fn try_from(w: RevisionLocationWire) -> Result<Self, Self::Error> {
        let missing = |field| MissingRevisionLocation {
            revision_type: w.revision_type,
            field,
        };
        Ok(match w.revision_type {
            RevisionType::S3 => {
                RevisionLocation::S3(w.s3_location.ok_or_else(|| missing("s3Location"))?)
            }
            RevisionType::GitHub => RevisionLocation::GitHub(
                w.git_hub_location
                    .ok_or_else(|| missing("gitHubLocation"))?,
            ),
            RevisionType::String => {
                RevisionLocation::String(w.string.ok_or_else(|| missing("string"))?)
            }
            RevisionType::AppSpecContent => RevisionLocation::AppSpecContent(
                w.app_spec_content
                    .ok_or_else(|| missing("appSpecContent"))?,
            ),
            RevisionType::Local => {
                RevisionLocation::Local(w.local_location.ok_or_else(|| missing("localLocation"))?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_revisions_use_codedeploys_wire_form() {
        let json = r#"{"revisionType":"S3","s3Location":{"bucket":"b","key":"app.zip","bundleType":"zip","version":"v1","eTag":"abc"}}"#;
        let r: RevisionLocation = serde_json::from_str(json).unwrap();
        let RevisionLocation::S3(s3) = &r else {
            panic!("{r:?}")
        };
        assert_eq!(s3.e_tag.as_deref(), Some("abc"));
        assert_eq!(s3.bundle_type, Some(BundleType::Zip));
        assert_eq!(serde_json::to_string(&r).unwrap(), json);
    }

    #[test]
    fn a_type_without_its_location_is_refused() {
        let err = serde_json::from_str::<RevisionLocation>(r#"{"revisionType":"S3"}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("revisionType is S3 but s3Location is missing"),
            "{err}"
        );
        let err =
            serde_json::from_str::<RevisionLocation>(r#"{"revisionType":"Git"}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("'Git' is not a valid revision type"),
            "{err}"
        );
    }

    #[test]
    fn inline_content_is_checked_against_its_sha256() {
        let content = "version: 0.0\n".to_string();
        let digest = AppSpecContent {
            content: content.clone(),
            sha256: None,
        }
        .digest();
        assert_eq!(digest.len(), 64);
        let good = AppSpecContent {
            content: content.clone(),
            sha256: Some(digest.to_uppercase()),
        };
        good.verify().unwrap();
        let bad = AppSpecContent {
            content,
            sha256: Some("00".repeat(32)),
        };
        let err = bad.verify().unwrap_err();
        assert_eq!(err.actual, digest);
        assert!(err.to_string().contains("checksum is wrong"));
        // A known vector: the SHA-256 of the empty string.
        let empty = AppSpecContent {
            content: String::new(),
            sha256: None,
        };
        assert_eq!(
            empty.digest(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn inline_revisions_round_trip() {
        for r in [
            RevisionLocation::AppSpecContent(AppSpecContent {
                content: "x".into(),
                sha256: None,
            }),
            RevisionLocation::String(AppSpecContent {
                content: "y".into(),
                sha256: Some("z".into()),
            }),
            RevisionLocation::Local(LocalLocation {
                path: "/tmp/app".into(),
                bundle_type: None,
            }),
            RevisionLocation::GitHub(GitHubLocation {
                repository: "o/r".into(),
                commit_id: "abc".into(),
            }),
        ] {
            let back: RevisionLocation =
                serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
            assert_eq!(back, r);
        }
    }
}
