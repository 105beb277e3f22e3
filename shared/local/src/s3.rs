//! S3 revisions on this machine: presigned URLs (SigV4 in the query) for the agent to download
//! a bundle, and a presigned HEAD that checks an object and pins its ETag and version. The
//! credentials, region and endpoint come from the usual AWS variables, so that an
//! S3-compatible store or an emulator works as well as S3.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
use cutover_core::model::S3Location;

use crate::aws_http::{self, AwsAccess};

/// How long a presigned URL stays valid: the agent starts its download at once.
pub const URL_LIFETIME: Duration = Duration::from_secs(3600);

/// How long a HEAD may take.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Access to S3, from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
/// `AWS_REGION` (or `AWS_DEFAULT_REGION`) and `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`).
#[derive(Clone, Debug)]
pub struct S3Access {
    access: AwsAccess,
    /// A custom endpoint, addressed path-style; S3's own virtual-hosted endpoint otherwise.
    endpoint: Option<String>,
}

/// What a HEAD of an object found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub e_tag: Option<String>,
    pub version: Option<String>,
}

impl S3Access {
    /// From the environment; an error saying what to set when there are no credentials.
    pub fn from_env() -> Result<S3Access, String> {
        S3Access::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<S3Access, String> {
        let Some(access) = AwsAccess::from_lookup(&get) else {
            return Err(
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL_S3 for an S3-compatible store) where cutover runs, so that it can read S3 revisions"
                    .into(),
            );
        };
        Ok(S3Access {
            access,
            endpoint: aws_http::endpoint_from(&get, "S3"),
        })
    }

    /// The object's URL, without a signature.
    fn url(&self, loc: &S3Location) -> String {
        let key = aws_http::percent_encode(&loc.key, true);
        let mut url = match &self.endpoint {
            Some(endpoint) => format!("{endpoint}/{}/{key}", loc.bucket),
            None => format!(
                "https://{}.s3.{}.amazonaws.com/{key}",
                loc.bucket, self.access.region
            ),
        };
        if let Some(version) = &loc.version {
            url.push_str("?versionId=");
            url.push_str(&aws_http::percent_encode(version, false));
        }
        url
    }

    /// A URL that lets whoever holds it `method` the object until `now` + `lifetime`.
    pub fn presign(
        &self,
        method: &str,
        loc: &S3Location,
        now: SystemTime,
        lifetime: Duration,
    ) -> Result<String, String> {
        let url = self.url(loc);
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("s3://{}/{} makes no URL: {e}", loc.bucket, loc.key))?;
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(lifetime);
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let mut request = http::Request::builder()
            .method(method)
            .uri(uri)
            .body(())
            .map_err(|e| e.to_string())?;
        self.access.sign(
            "s3",
            &mut request,
            SignableBody::UnsignedPayload,
            settings,
            now,
        )?;
        Ok(request.uri().to_string())
    }

    /// Checks that the object is there and readable; its ETag and version.
    pub fn head(&self, loc: &S3Location) -> Result<Head, String> {
        self.fetch("HEAD", loc, 0).map(|(head, _)| head)
    }

    /// The object's text, at most `limit` bytes of it (a Lambda revision's AppSpec), with its
    /// ETag and version.
    pub fn get_text(&self, loc: &S3Location, limit: u64) -> Result<(Head, String), String> {
        self.fetch("GET", loc, limit)
    }

    fn fetch(&self, method: &str, loc: &S3Location, limit: u64) -> Result<(Head, String), String> {
        let url = self.presign(method, loc, SystemTime::now(), Duration::from_secs(300))?;
        let agent = aws_http::agent(HEAD_TIMEOUT);
        let shown = format!("s3://{}/{}", loc.bucket, loc.key);
        let call = match method {
            "HEAD" => agent.head(&url).call(),
            _ => agent.get(&url).call(),
        };
        let mut response = call.map_err(|e| format!("{shown} could not be reached: {e}"))?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let head = Head {
            e_tag: header("etag"),
            version: header("x-amz-version-id").filter(|v| v != "null"),
        };
        match response.status().as_u16() {
            200 if method == "HEAD" => Ok((head, String::new())),
            200 => {
                let text = response
                    .body_mut()
                    .with_config()
                    .limit(limit)
                    .read_to_string()
                    .map_err(|e| {
                        format!("{shown} could not be read as text of at most {limit} bytes: {e}")
                    })?;
                Ok((head, text))
            }
            404 => Err(format!("{shown} does not exist")),
            403 => Err(format!(
                "{shown} cannot be read with the credentials cutover has (access denied, or the bucket does not exist)"
            )),
            code => Err(format!("{shown} could not be read: HTTP {code}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(endpoint: Option<&str>) -> S3Access {
        S3Access::from_lookup(|name| match name {
            "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLE".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".into()),
            "AWS_ENDPOINT_URL_S3" => endpoint.map(str::to_owned),
            _ => None,
        })
        .unwrap()
    }

    fn loc(key: &str, version: Option<&str>) -> S3Location {
        S3Location {
            bucket: "revisions".into(),
            key: key.into(),
            bundle_type: None,
            version: version.map(str::to_owned),
            e_tag: None,
        }
    }

    #[test]
    fn urls_are_path_style_on_a_custom_endpoint_and_virtual_hosted_on_s3() {
        let url = access(Some("http://127.0.0.1:5000/"))
            .presign(
                "GET",
                &loc("web/v 1.zip", Some("v1")),
                SystemTime::UNIX_EPOCH,
                URL_LIFETIME,
            )
            .unwrap();
        assert!(
            url.starts_with("http://127.0.0.1:5000/revisions/web/v%201.zip?versionId=v1&"),
            "{url}"
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Expires=3600",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} in {url}");
        }
        let url = access(None)
            .presign(
                "GET",
                &loc("a.zip", None),
                SystemTime::UNIX_EPOCH,
                URL_LIFETIME,
            )
            .unwrap();
        assert!(
            url.starts_with("https://revisions.s3.us-east-1.amazonaws.com/a.zip?"),
            "{url}"
        );
    }

    /// The signature of a presigned URL, pinned: signing is shared with the Lambda client, and
    /// must keep what S3 checks (single encoding, the path as given, the token after signing).
    #[test]
    fn presigned_urls_keep_their_signature() {
        let access = S3Access::from_lookup(|name| match name {
            "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLE".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".into()),
            "AWS_SESSION_TOKEN" => Some("token/with+chars".into()),
            "AWS_ENDPOINT_URL_S3" => Some("http://127.0.0.1:5000/".into()),
            _ => None,
        })
        .unwrap();
        let url = access
            .presign(
                "GET",
                &loc("web/v 1+\u{e9}.zip", Some("v/1")),
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                URL_LIFETIME,
            )
            .unwrap();
        assert_eq!(
            url,
            "http://127.0.0.1:5000/revisions/web/v%201%2B%C3%A9.zip?versionId=v%2F1\
             &X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIDEXAMPLE%2F20231114%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20231114T221320Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=977842709248a662308b796e6bbc42cd32fa738ce118efbd1f46fb1fa7ed900d\
             &X-Amz-Security-Token=token%2Fwith%2Bchars"
        );
    }

    #[test]
    fn without_credentials_it_says_what_to_set() {
        let e = S3Access::from_lookup(|_| None).unwrap_err();
        assert!(e.contains("AWS_ACCESS_KEY_ID"), "{e}");
    }
}
