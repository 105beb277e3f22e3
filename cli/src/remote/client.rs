//! A small CodeDeploy client for the operator commands: one awsJson1_1 request per call
//! (`POST` with `X-Amz-Target: CodeDeploy_20141006.<Operation>`), signed with SigV4 for service
//! `codedeploy`, over a blocking HTTP agent. No AWS SDK, so that the `cutover` binary stays
//! quick to build.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{SignableBody, SigningSettings};
use cutover_api::wire::{CONTENT_TYPE, TARGET_PREFIX};
use cutover_local::aws_http::{self, AwsAccess};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::profile::Signing;

/// The service name requests are signed for.
const SERVICE: &str = "codedeploy";

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one call may take, all told.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The most of an unexpected answer that a message quotes.
const EXCERPT: usize = 200;

/// Why a call did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(
        "cannot reach {endpoint}: {reason}; check the endpoint (--endpoint or CUTOVER_ENDPOINT) and that `cutover serve` or the stack's API runs there"
    )]
    Unreachable { endpoint: String, reason: String },
    #[error(
        "{endpoint} refused the signature of access key {access_key_id} from {origin}: the secret access key is not the one that goes with it ({message})"
    )]
    SignatureRefused {
        endpoint: String,
        access_key_id: String,
        origin: String,
        message: String,
    },
    #[error(
        "{endpoint} does not accept access key {access_key_id} from {origin}: sign with a key pair it accepts (for `cutover serve`: <state dir>/api-keys.json, or its CUTOVER_ACCESS_KEY_ID)"
    )]
    UnknownKey {
        endpoint: String,
        access_key_id: String,
        origin: String,
    },
    /// One of CodeDeploy's exceptions, by name.
    #[error("{operation} failed: {name}: {message}")]
    Exception {
        operation: String,
        name: String,
        message: String,
    },
    #[error(
        "{endpoint} answered {operation} with HTTP {status} and no CodeDeploy answer ({excerpt}); is it the URL of cutover's CodeDeploy API?"
    )]
    NotCodeDeploy {
        endpoint: String,
        operation: String,
        status: u16,
        excerpt: String,
    },
    #[error("the request could not be signed: {0}")]
    Signing(String),
}

/// Calls CodeDeploy's API at one endpoint with one set of credentials.
pub struct Client {
    endpoint: String,
    signing: Signing,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("signing", &self.signing)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of `endpoint` (`http://127.0.0.1:7447`, `https://...`).
    pub fn new(endpoint: &str, signing: Signing) -> Result<Client, String> {
        let uri: http::Uri = endpoint
            .parse()
            .map_err(|e| format!("the endpoint '{endpoint}' is not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => {
                return Err(format!(
                    "the endpoint '{endpoint}' must be an http:// or https:// URL, such as http://127.0.0.1:7447"
                ));
            }
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(format!("the endpoint '{endpoint}' names no host"));
        }
        let agent = aws_http::agent_connecting_within(CALL_TIMEOUT, CONNECT_TIMEOUT);
        Ok(Client {
            endpoint: endpoint.to_owned(),
            signing,
            agent,
        })
    }

    /// Calls `operation` with `input`; its output, or what went wrong.
    pub fn call<I: Serialize, O: DeserializeOwned>(
        &self,
        operation: &str,
        input: &I,
    ) -> Result<O, CallError> {
        let body = serde_json::to_vec(input).map_err(|e| CallError::Signing(e.to_string()))?;
        let request = self
            .signed(operation, body, SystemTime::now())
            .map_err(CallError::Signing)?;
        let response = self
            .agent
            .run(request)
            .map_err(|e| CallError::Unreachable {
                endpoint: self.endpoint.clone(),
                reason: e.to_string(),
            })?;
        let status = response.status().as_u16();
        let text = response
            .into_body()
            .read_to_string()
            .map_err(|e| CallError::Unreachable {
                endpoint: self.endpoint.clone(),
                reason: format!("the answer broke off: {e}"),
            })?;
        self.answer(operation, status, &text)
    }

    /// The request, signed at `now`.
    fn signed(
        &self,
        operation: &str,
        body: Vec<u8>,
        now: SystemTime,
    ) -> Result<http::Request<Vec<u8>>, String> {
        let uri: http::Uri = self.endpoint.parse().map_err(|e| format!("{e}"))?;
        // The Host header is set here, so that what is signed is exactly what is sent.
        let host = uri
            .authority()
            .map(|a| a.as_str().rsplit('@').next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        let target = format!("{TARGET_PREFIX}{operation}");
        let headers = [
            ("host", host.as_str()),
            ("content-type", CONTENT_TYPE),
            ("x-amz-target", target.as_str()),
        ];
        let mut request = http::Request::builder().method("POST").uri(uri);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let mut request = request.body(()).map_err(|e| e.to_string())?;
        let c = &self.signing.credentials;
        let access = AwsAccess::new(
            &c.access_key_id,
            &c.secret_access_key,
            c.session_token.clone(),
            &self.signing.region,
        );
        access.sign(
            SERVICE,
            &mut request,
            SignableBody::Bytes(&body),
            SigningSettings::default(),
            now,
        )?;
        Ok(request.map(|()| body))
    }

    /// The output in a 2xx answer, or the error an error answer names.
    fn answer<O: DeserializeOwned>(
        &self,
        operation: &str,
        status: u16,
        text: &str,
    ) -> Result<O, CallError> {
        let not_codedeploy = || CallError::NotCodeDeploy {
            endpoint: self.endpoint.clone(),
            operation: operation.to_owned(),
            status,
            excerpt: excerpt(text),
        };
        if (200..300).contains(&status) {
            let json = if text.trim().is_empty() { "{}" } else { text };
            return serde_json::from_str(json).map_err(|_| not_codedeploy());
        }
        let Some((name, message)) = error_body(text) else {
            return Err(not_codedeploy());
        };
        let c = &self.signing.credentials;
        Err(match name.as_str() {
            "InvalidSignatureException" | "SignatureDoesNotMatch" => CallError::SignatureRefused {
                endpoint: self.endpoint.clone(),
                access_key_id: c.access_key_id.clone(),
                origin: c.source.clone(),
                message,
            },
            "UnrecognizedClientException" | "InvalidClientTokenId" => CallError::UnknownKey {
                endpoint: self.endpoint.clone(),
                access_key_id: c.access_key_id.clone(),
                origin: c.source.clone(),
            },
            _ => CallError::Exception {
                operation: operation.to_owned(),
                name,
                message,
            },
        })
    }
}

/// The exception name and message of an awsJson error body. `__type` may carry a namespace
/// (`com.amazonaws.codedeploy#ApplicationDoesNotExistException`).
fn error_body(text: &str) -> Option<(String, String)> {
    let body: serde_json::Value = serde_json::from_str(text).ok()?;
    let name = body.get("__type")?.as_str()?;
    let name = name.rsplit('#').next().unwrap_or(name).to_owned();
    let message = ["message", "Message"]
        .iter()
        .find_map(|k| body.get(*k).and_then(|m| m.as_str()))
        .unwrap_or_default()
        .to_owned();
    Some((name, message))
}

/// The start of an answer, on one line.
fn excerpt(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        return "an empty body".to_owned();
    }
    match line.char_indices().nth(EXCERPT) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use cutover_api::AccessKey;
    use cutover_api::ApiRequest;

    use super::super::profile::Credentials;
    use super::*;

    fn client(secret: &str, token: Option<&str>) -> Client {
        Client::new(
            "http://127.0.0.1:7447",
            Signing {
                credentials: Credentials {
                    access_key_id: "AKCUTOVER".into(),
                    secret_access_key: secret.into(),
                    session_token: token.map(str::to_owned),
                    source: "the test".into(),
                },
                region: "eu-west-1".into(),
            },
        )
        .unwrap()
    }

    /// The request as `cutover serve` receives it.
    fn received(request: &http::Request<Vec<u8>>) -> ApiRequest {
        ApiRequest {
            method: request.method().to_string(),
            uri: "/".into(),
            headers: request
                .headers()
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
                .collect(),
            body: request.body().clone(),
        }
    }

    #[test]
    fn requests_are_signed_as_the_api_verifies_them() {
        let keys = [AccessKey {
            access_key_id: "AKCUTOVER".into(),
            secret_access_key: "right".into(),
        }];
        let now = SystemTime::now();
        for token in [None, Some("session")] {
            let request = client("right", token)
                .signed("GetDeployment", br#"{"deploymentId":"d-X"}"#.to_vec(), now)
                .unwrap();
            let received = received(&request);
            assert_eq!(received.operation().unwrap(), "GetDeployment");
            assert_eq!(received.header("content-type"), Some(CONTENT_TYPE));
            assert_eq!(received.header("host"), Some("127.0.0.1:7447"));
            assert_eq!(received.header("x-amz-security-token"), token);
            let signed_by = cutover_api::sigv4::verify(&received, SERVICE, &keys[..], now).unwrap();
            assert_eq!(signed_by.access_key_id, "AKCUTOVER");
            assert_eq!(signed_by.region, "eu-west-1");
        }
        let wrong = client("wrong", None)
            .signed("GetDeployment", b"{}".to_vec(), now)
            .unwrap();
        let e = cutover_api::sigv4::verify(&received(&wrong), SERVICE, &keys[..], now).unwrap_err();
        assert_eq!(e.kind.name(), "InvalidSignatureException");
    }

    #[test]
    fn error_answers_become_errors_that_say_what_to_fix() {
        let c = client("s", None);
        let e = c
            .answer::<serde_json::Value>(
                "CreateDeployment",
                400,
                r#"{"__type":"ApplicationDoesNotExistException","message":"No application found for name: Shop"}"#,
            )
            .unwrap_err();
        assert!(
            matches!(&e, CallError::Exception { name, .. } if name == "ApplicationDoesNotExistException"),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "CreateDeployment failed: ApplicationDoesNotExistException: No application found for name: Shop"
        );
        let e = c
            .answer::<serde_json::Value>(
                "GetDeployment",
                400,
                r#"{"__type":"com.amazonaws.codedeploy#DeploymentDoesNotExistException","Message":"gone"}"#,
            )
            .unwrap_err();
        assert!(
            matches!(&e, CallError::Exception { name, .. } if name == "DeploymentDoesNotExistException"),
            "{e:?}"
        );
        let e = c
            .answer::<serde_json::Value>(
                "GetDeployment",
                403,
                r#"{"__type":"InvalidSignatureException","message":"The request signature we calculated does not match"}"#,
            )
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("http://127.0.0.1:7447 refused the signature of access key AKCUTOVER from the test: the secret access key is not the one"),
            "{text}"
        );
        let e = c
            .answer::<serde_json::Value>(
                "GetDeployment",
                403,
                r#"{"__type":"UnrecognizedClientException","message":"x"}"#,
            )
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("does not accept access key AKCUTOVER"),
            "{e}"
        );
        let e = c
            .answer::<serde_json::Value>("GetDeployment", 404, "<html>\n<b>Not   Found</b></html>")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "http://127.0.0.1:7447 answered GetDeployment with HTTP 404 and no CodeDeploy answer (<html> <b>Not Found</b></html>); is it the URL of cutover's CodeDeploy API?"
        );
        // An empty success is an empty output.
        let v: serde_json::Value = c.answer("ContinueDeployment", 200, "").unwrap();
        assert_eq!(v, serde_json::json!({}));
    }

    #[test]
    fn endpoints_must_be_http_urls() {
        let signing = client("s", None).signing.clone();
        for bad in ["127.0.0.1:7447", "ftp://x", "http://", "not a url"] {
            let e = Client::new(bad, signing.clone()).unwrap_err();
            assert!(e.contains(bad) || e.contains("URL"), "{bad}: {e}");
        }
    }
}
