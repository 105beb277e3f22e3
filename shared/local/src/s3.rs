//! S3 revisions on this machine: presigned URLs (SigV4 in the query) for the agent to download
//! a bundle, and a presigned HEAD that checks an object and pins its ETag and version. The
//! credentials, region and endpoint come from the usual AWS variables, so that an
//! S3-compatible store or an emulator works as well as S3.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use cutover_core::model::S3Location;

/// How long a presigned URL stays valid: the agent starts its download at once.
pub const URL_LIFETIME: Duration = Duration::from_secs(3600);

/// How long a HEAD may take.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Access to S3, from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
/// `AWS_REGION` (or `AWS_DEFAULT_REGION`) and `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`).
#[derive(Clone)]
pub struct S3Access {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    region: String,
    /// A custom endpoint, addressed path-style; S3's own virtual-hosted endpoint otherwise.
    endpoint: Option<String>,
}

impl std::fmt::Debug for S3Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Access")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
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
        let (Some(access_key_id), Some(secret_access_key)) =
            (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err(
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL_S3 for an S3-compatible store) where cutover runs, so that it can read S3 revisions"
                    .into(),
            );
        };
        Ok(S3Access {
            access_key_id,
            secret_access_key,
            session_token: get("AWS_SESSION_TOKEN"),
            region: get("AWS_REGION")
                .or_else(|| get("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".into()),
            endpoint: get("AWS_ENDPOINT_URL_S3")
                .or_else(|| get("AWS_ENDPOINT_URL"))
                .map(|e| e.trim_end_matches('/').to_owned()),
        })
    }

    /// The object's URL, without a signature.
    fn url(&self, loc: &S3Location) -> String {
        let key = encode_key(&loc.key);
        let mut url = match &self.endpoint {
            Some(endpoint) => format!("{endpoint}/{}/{key}", loc.bucket),
            None => format!(
                "https://{}.s3.{}.amazonaws.com/{key}",
                loc.bucket, self.region
            ),
        };
        if let Some(version) = &loc.version {
            url.push_str("?versionId=");
            url.push_str(&encode_key(version).replace('/', "%2F"));
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
        let host = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(lifetime);
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let identity = Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            None,
            "cutover",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(now)
            .settings(settings)
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let signable = SignableRequest::new(
            method,
            url.as_str(),
            std::iter::once(("host", host.as_str())),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        let mut request = http::Request::builder()
            .method(method)
            .uri(uri)
            .body(())
            .map_err(|e| e.to_string())?;
        instructions.apply_to_request_http1x(&mut request);
        Ok(request.uri().to_string())
    }

    /// Checks that the object is there and readable; its ETag and version.
    pub fn head(&self, loc: &S3Location) -> Result<Head, String> {
        let url = self.presign("HEAD", loc, SystemTime::now(), Duration::from_secs(300))?;
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(HEAD_TIMEOUT))
            .http_status_as_error(false)
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::WebPki)
                    .build(),
            )
            .build()
            .new_agent();
        let shown = format!("s3://{}/{}", loc.bucket, loc.key);
        let response = agent
            .head(&url)
            .call()
            .map_err(|e| format!("{shown} could not be reached: {e}"))?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        match response.status().as_u16() {
            200 => Ok(Head {
                e_tag: header("etag"),
                version: header("x-amz-version-id").filter(|v| v != "null"),
            }),
            404 => Err(format!("{shown} does not exist")),
            403 => Err(format!(
                "{shown} cannot be read with the credentials cutover has (access denied, or the bucket does not exist)"
            )),
            code => Err(format!("{shown} could not be read: HTTP {code}")),
        }
    }
}

/// A key percent-encoded as S3 expects in a path: every byte but unreserved ones and `/`.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
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

    #[test]
    fn without_credentials_it_says_what_to_set() {
        let e = S3Access::from_lookup(|_| None).unwrap_err();
        assert!(e.contains("AWS_ACCESS_KEY_ID"), "{e}");
    }
}
