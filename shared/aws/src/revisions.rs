//! Revisions in S3: before anything is deployed, the object must exist, be a bundle type hosts
//! can install, and match the ETag and version the deployment names. What was found is pinned,
//! so that every host installs the same object even if the key is overwritten meanwhile.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use cutover_core::appspec::MAX_LAMBDA_APPSPEC_BYTES;
use cutover_core::machine::Deployment;
use cutover_core::model::{
    BundleType, ComputePlatform, ErrorCode, ErrorInformation, RevisionLocation, S3Location,
};
use cutover_engine::{PortError, RevisionSource, Validation};

use crate::error::{code, port_error};

/// Checks S3 revisions.
#[derive(Clone, Debug)]
pub struct S3Revisions {
    s3: Client,
}

impl S3Revisions {
    pub fn new(s3: Client) -> Self {
        S3Revisions { s3 }
    }
}

impl RevisionSource for S3Revisions {
    async fn validate(&self, d: &Deployment) -> Result<Validation, PortError> {
        if d.group.compute_platform == ComputePlatform::Lambda {
            return self.lambda_appspec(&d.revision).await;
        }
        let loc = match &d.revision {
            RevisionLocation::S3(loc) => loc,
            other => {
                return Ok(invalid(
                    ErrorCode::InvalidRevision,
                    format!(
                        "{} revisions cannot be deployed to hosts by the cloud functions; upload the bundle to S3 and deploy it from there",
                        other.revision_type()
                    ),
                ));
            }
        };
        let name = format!("s3://{}/{}", loc.bucket, loc.key);
        let bundle_type = match loc.bundle_type.or_else(|| bundle_type_of(&loc.key)) {
            Some(t @ (BundleType::Zip | BundleType::Tar | BundleType::Tgz)) => t,
            Some(other) => {
                return Ok(invalid(
                    ErrorCode::InvalidRevision,
                    format!("{name} is a {other} bundle; hosts install zip, tar or tgz bundles"),
                ));
            }
            None => {
                return Ok(invalid(
                    ErrorCode::InvalidRevision,
                    format!(
                        "{name}: say its bundleType (zip, tar or tgz); the key's extension does not tell"
                    ),
                ));
            }
        };
        let head = self
            .s3
            .head_object()
            .bucket(&loc.bucket)
            .key(&loc.key)
            .set_version_id(loc.version.clone())
            .send()
            .await;
        let head = match head {
            Ok(head) => head,
            Err(e) => return unreadable(&name, loc, e),
        };
        let found_etag = head.e_tag.clone();
        if let (Some(wanted), Some(found)) = (&loc.e_tag, &found_etag)
            && unquoted(wanted) != unquoted(found)
        {
            return Ok(invalid(
                ErrorCode::RevisionMissing,
                format!(
                    "{name} has ETag {found}, not {wanted}: the object was replaced; deploy the new one or name its version"
                ),
            ));
        }
        Ok(Validation::pinned(RevisionLocation::S3(S3Location {
            bucket: loc.bucket.clone(),
            key: loc.key.clone(),
            bundle_type: Some(bundle_type),
            version: loc.version.clone().or(head.version_id),
            e_tag: found_etag.map(|e| unquoted(&e).to_owned()),
        })))
    }
}

impl S3Revisions {
    /// A Lambda revision: inline, it is checked when the deployment is created; in S3, its
    /// AppSpec is read here (YAML or JSON, at most [`MAX_LAMBDA_APPSPEC_BYTES`] bytes) and pinned.
    async fn lambda_appspec(&self, revision: &RevisionLocation) -> Result<Validation, PortError> {
        let loc = match revision {
            RevisionLocation::AppSpecContent(_) | RevisionLocation::String(_) => {
                return Ok(Validation::valid());
            }
            RevisionLocation::S3(loc) => loc,
            other => {
                return Ok(invalid(
                    ErrorCode::InvalidRevision,
                    format!(
                        "a Lambda deployment's revision is an AppSpec in S3 or inline, not a {} revision",
                        other.revision_type()
                    ),
                ));
            }
        };
        let name = format!("s3://{}/{}", loc.bucket, loc.key);
        if let Some(t @ (BundleType::Zip | BundleType::Tar | BundleType::Tgz)) = loc.bundle_type {
            return Ok(invalid(
                ErrorCode::InvalidRevision,
                format!(
                    "{name} is a {t} bundle; a Lambda revision is an AppSpec file (YAML or JSON)"
                ),
            ));
        }
        let object = self
            .s3
            .get_object()
            .bucket(&loc.bucket)
            .key(&loc.key)
            .set_version_id(loc.version.clone())
            .set_if_match(loc.e_tag.as_ref().map(|e| format!("\"{}\"", unquoted(e))))
            .send()
            .await;
        let object = match object {
            Ok(object) => object,
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(412) => {
                return Ok(invalid(
                    ErrorCode::RevisionMissing,
                    format!(
                        "{name} was replaced since its ETag was taken; deploy the new one or name its version"
                    ),
                ));
            }
            Err(e) => return unreadable(&name, loc, e),
        };
        if object.content_length().unwrap_or(0) > MAX_LAMBDA_APPSPEC_BYTES as i64 {
            return Ok(invalid(
                ErrorCode::InvalidRevision,
                format!(
                    "{name} is over {MAX_LAMBDA_APPSPEC_BYTES} bytes; an AppSpec is a short YAML or JSON file"
                ),
            ));
        }
        let e_tag = object.e_tag.clone();
        let version = object.version_id.clone();
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| PortError::transient(format!("reading {name}: {e}")))?
            .into_bytes();
        let Ok(text) = String::from_utf8(bytes.to_vec()) else {
            return Ok(invalid(
                ErrorCode::InvalidRevision,
                format!(
                    "{name} is not UTF-8 text; a Lambda revision is an AppSpec file (YAML or JSON)"
                ),
            ));
        };
        Ok(Validation::Valid {
            pinned: Some(RevisionLocation::S3(S3Location {
                version: loc.version.clone().or(version),
                e_tag: e_tag.map(|e| unquoted(&e).to_owned()),
                ..loc.clone()
            })),
            appspec: Some(text),
        })
    }
}

/// An object that could not be read: missing, forbidden, or a failure to try again.
fn unreadable<E>(name: &str, loc: &S3Location, e: SdkError<E>) -> Result<Validation, PortError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    match (code(&e), status) {
        (Some("NotFound" | "NoSuchKey" | "NoSuchBucket" | "NoSuchVersion"), _) | (_, Some(404)) => {
            Ok(invalid(
                ErrorCode::RevisionMissing,
                match &loc.version {
                    Some(v) => format!("{name} version {v} does not exist"),
                    None => format!("{name} does not exist"),
                },
            ))
        }
        (_, Some(403)) => Ok(invalid(
            ErrorCode::IamRolePermissions,
            format!(
                "cutover may not read {name}: allow s3:GetObject (and s3:GetObjectVersion) on it"
            ),
        )),
        _ => Err(port_error(format!("looking up {name}"), e)),
    }
}

fn invalid(code: ErrorCode, message: String) -> Validation {
    Validation::Invalid(ErrorInformation::new(code, message))
}

/// The bundle type a key's extension names.
pub fn bundle_type_of(key: &str) -> Option<BundleType> {
    let key = key.to_ascii_lowercase();
    if key.ends_with(".zip") {
        Some(BundleType::Zip)
    } else if key.ends_with(".tar.gz") || key.ends_with(".tgz") {
        Some(BundleType::Tgz)
    } else if key.ends_with(".tar") {
        Some(BundleType::Tar)
    } else if key.ends_with(".yml") || key.ends_with(".yaml") {
        Some(BundleType::Yaml)
    } else if key.ends_with(".json") {
        Some(BundleType::Json)
    } else {
        None
    }
}

fn unquoted(etag: &str) -> &str {
    etag.trim_matches('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_types_come_from_extensions() {
        assert_eq!(bundle_type_of("app/v1.zip"), Some(BundleType::Zip));
        assert_eq!(bundle_type_of("app/v1.TAR.GZ"), Some(BundleType::Tgz));
        assert_eq!(bundle_type_of("app/v1.tgz"), Some(BundleType::Tgz));
        assert_eq!(bundle_type_of("app/v1.tar"), Some(BundleType::Tar));
        assert_eq!(bundle_type_of("fn/appspec.YML"), Some(BundleType::Yaml));
        assert_eq!(bundle_type_of("fn/appspec.yaml"), Some(BundleType::Yaml));
        assert_eq!(bundle_type_of("fn/appspec.json"), Some(BundleType::Json));
        assert_eq!(bundle_type_of("app/v1"), None);
    }
}
