//! What the clients of AWS-compatible services on this machine (S3, Lambda, and the operator
//! commands' CodeDeploy client) share without the SDK: credentials and region, SigV4 signing, an
//! HTTP agent and percent-encoding.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;

/// Credentials and region, from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN` and `AWS_REGION` (or `AWS_DEFAULT_REGION`, else us-east-1).
#[derive(Clone)]
pub struct AwsAccess {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    pub region: String,
}

impl std::fmt::Debug for AwsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsAccess")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl AwsAccess {
    pub fn new(
        access_key_id: &str,
        secret_access_key: &str,
        session_token: Option<String>,
        region: &str,
    ) -> AwsAccess {
        AwsAccess {
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret_access_key.to_owned(),
            session_token,
            region: region.to_owned(),
        }
    }

    /// `None` when there are no credentials.
    pub(crate) fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Option<AwsAccess> {
        Some(AwsAccess {
            access_key_id: get("AWS_ACCESS_KEY_ID")?,
            secret_access_key: get("AWS_SECRET_ACCESS_KEY")?,
            session_token: get("AWS_SESSION_TOKEN"),
            region: get("AWS_REGION")
                .or_else(|| get("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".into()),
        })
    }

    /// Signs `request` for `service` as of `now`; the signature goes where `settings` say (the
    /// `Authorization` header or the query). The request's own headers are signed, and `host`:
    /// the request's Host header if it has one, else the one the HTTP client adds from the URI.
    pub fn sign<B>(
        &self,
        service: &str,
        request: &mut http::Request<B>,
        body: SignableBody<'_>,
        settings: SigningSettings,
        now: SystemTime,
    ) -> Result<(), String> {
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
            .name(service)
            .time(now)
            .settings(settings)
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let uri = request.uri().to_string();
        let host = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let mut headers = Vec::new();
        if !request.headers().contains_key(http::header::HOST) {
            headers.push(("host", host.as_str()));
        }
        for (name, value) in request.headers() {
            let value = value
                .to_str()
                .map_err(|_| format!("header {name} is not text"))?;
            headers.push((name.as_str(), value));
        }
        let signable = SignableRequest::new(
            request.method().as_str(),
            uri.as_str(),
            headers.into_iter(),
            body,
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

/// The endpoint that `AWS_ENDPOINT_URL_<SERVICE>` (`service_variable`, say `S3`) or else
/// `AWS_ENDPOINT_URL` names, without a trailing slash.
pub(crate) fn endpoint_from(
    get: &impl Fn(&str) -> Option<String>,
    service_variable: &str,
) -> Option<String> {
    get(&format!("AWS_ENDPOINT_URL_{service_variable}"))
        .or_else(|| get("AWS_ENDPOINT_URL"))
        .map(|e| e.trim_end_matches('/').to_owned())
}

/// An HTTP agent that hands back every status as a response, trusting the web's root
/// certificates; each call takes at most `timeout`.
pub fn agent(timeout: Duration) -> ureq::Agent {
    configured_agent(timeout, None)
}

/// [`agent`], giving up on a connection that takes longer than `connect`.
pub fn agent_connecting_within(timeout: Duration, connect: Duration) -> ureq::Agent {
    configured_agent(timeout, Some(connect))
}

fn configured_agent(timeout: Duration, connect: Option<Duration>) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(connect)
        .http_status_as_error(false)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::WebPki)
                .build(),
        )
        .build()
        .new_agent()
}

/// `text` percent-encoded for a URL: every byte but unreserved ones, and `/` too unless
/// `keep_slash`.
pub(crate) fn percent_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_keeps_unreserved_bytes_and_slashes_only_when_asked() {
        assert_eq!(percent_encode("web/v 1.zip", true), "web/v%201.zip");
        assert_eq!(
            percent_encode("arn:aws:lambda:us-east-1:1:function:f/x", false),
            "arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af%2Fx"
        );
        assert_eq!(percent_encode("é~", false), "%C3%A9~");
    }

    #[test]
    fn the_service_variable_wins_over_the_general_one() {
        let get = |name: &str| match name {
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:1/".to_owned()),
            "AWS_ENDPOINT_URL_LAMBDA" => Some("http://127.0.0.1:2/".to_owned()),
            _ => None,
        };
        assert_eq!(
            endpoint_from(&get, "LAMBDA").as_deref(),
            Some("http://127.0.0.1:2")
        );
        assert_eq!(
            endpoint_from(&get, "S3").as_deref(),
            Some("http://127.0.0.1:1")
        );
    }
}
