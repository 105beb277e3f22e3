//! The awsJson1_1 wire format of CodeDeploy: `POST /` with `X-Amz-Target:
//! CodeDeploy_20141006.<Operation>`, JSON bodies in CodeDeploy's field names, and errors as HTTP
//! 400 with `{"__type": "<ExceptionName>", "message": "..."}`.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The `X-Amz-Target` prefix of every CodeDeploy operation.
pub const TARGET_PREFIX: &str = "CodeDeploy_20141006.";

/// The content type of requests and answers.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The largest request body accepted. CodeDeploy's largest inputs (an AppSpec given inline,
/// a group with many tag filters) are far smaller.
pub const MAX_BODY: usize = 1024 * 1024;

/// One HTTP request, as the server or the function URL received it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiRequest {
    pub method: String,
    /// The path and query, as sent (`/` for CodeDeploy).
    pub uri: String,
    /// Header names and values, as sent; names compare case-insensitively.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ApiRequest {
    /// The value of header `name`, whatever its case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The operation named by `X-Amz-Target`.
    pub fn operation(&self) -> Result<&str, ApiError> {
        let target = self.header("x-amz-target").ok_or_else(|| {
            ApiError::new(
                ErrorKind::UnknownOperation,
                "the request has no X-Amz-Target header naming a CodeDeploy operation (CodeDeploy_20141006.<Operation>)",
            )
        })?;
        target
            .strip_prefix(TARGET_PREFIX)
            .filter(|op| !op.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::UnknownOperation,
                    format!(
                        "'{target}' is not a CodeDeploy operation: X-Amz-Target must be {TARGET_PREFIX}<Operation>"
                    ),
                )
            })
    }

    /// The body as the operation's input. An empty body is an empty object, as the SDKs send
    /// for operations without input.
    pub fn input<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &self.body
        };
        let mut json = serde_json::Deserializer::from_slice(body);
        serde_path_to_error::deserialize(&mut json).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return ApiError::new(
                    ErrorKind::Serialization,
                    format!("the request body is not valid JSON: {inner}"),
                );
            }
            let at = if path == "." {
                String::new()
            } else {
                format!(" at {path}")
            };
            ApiError::new(
                ErrorKind::Validation,
                format!("the request body is not valid input{at}: {inner}"),
            )
        })
    }
}

/// One HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl ApiResponse {
    /// A 200 answer with `output` as its JSON body.
    pub fn ok(output: &impl Serialize) -> ApiResponse {
        match serde_json::to_vec(output) {
            Ok(body) => ApiResponse { status: 200, body },
            Err(e) => ApiError::new(
                ErrorKind::Internal,
                format!("the answer could not be written: {e}"),
            )
            .into(),
        }
    }

    /// The Content-Type header of the answer.
    pub fn content_type_value(&self) -> &'static str {
        CONTENT_TYPE
    }
}

/// The exceptions cutover answers with, by CodeDeploy's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    UnknownOperation,
    Serialization,
    Validation,
    RequestTooLarge,
    UnrecognizedClient,
    InvalidSignature,
    MissingAuthenticationToken,
    Internal,
    /// Any of CodeDeploy's own exceptions, by name (`ApplicationDoesNotExistException`, ...).
    CodeDeploy(&'static str),
}

impl ErrorKind {
    /// The `__type` of the error body.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::UnknownOperation => "UnknownOperationException",
            ErrorKind::Serialization => "SerializationException",
            ErrorKind::Validation => "ValidationException",
            ErrorKind::RequestTooLarge => "RequestEntityTooLargeException",
            ErrorKind::UnrecognizedClient => "UnrecognizedClientException",
            ErrorKind::InvalidSignature => "InvalidSignatureException",
            ErrorKind::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ErrorKind::Internal => "InternalFailure",
            ErrorKind::CodeDeploy(name) => name,
        }
    }

    /// The HTTP status: 400 for what the caller can fix, 403 for authentication, 413 for a body
    /// too large, 500 for cutover's own faults.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::UnrecognizedClient
            | ErrorKind::InvalidSignature
            | ErrorKind::MissingAuthenticationToken => 403,
            ErrorKind::RequestTooLarge => 413,
            ErrorKind::Internal => 500,
            _ => 400,
        }
    }
}

/// An error answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", kind.name())]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    /// One of CodeDeploy's exceptions, by name.
    pub fn codedeploy(name: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::CodeDeploy(name), message)
    }
}

impl From<ApiError> for ApiResponse {
    fn from(e: ApiError) -> ApiResponse {
        let body = serde_json::json!({ "__type": e.kind.name(), "message": e.message });
        ApiResponse {
            status: e.kind.status(),
            body: body.to_string().into_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: Option<&str>, body: &str) -> ApiRequest {
        let mut headers = vec![("Content-Type".to_owned(), CONTENT_TYPE.to_owned())];
        if let Some(t) = target {
            headers.push(("X-Amz-Target".to_owned(), t.to_owned()));
        }
        ApiRequest {
            method: "POST".into(),
            uri: "/".into(),
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn the_operation_comes_from_the_target_header_in_any_case() {
        let r = request(Some("CodeDeploy_20141006.GetApplication"), "{}");
        assert_eq!(r.operation().unwrap(), "GetApplication");
        let mut lower = r.clone();
        lower.headers[1].0 = "x-amz-target".into();
        assert_eq!(lower.operation().unwrap(), "GetApplication");
    }

    #[test]
    fn a_missing_or_foreign_target_is_an_unknown_operation() {
        for target in [None, Some("DynamoDB_20120810.GetItem"), Some(TARGET_PREFIX)] {
            let e = request(target, "{}").operation().unwrap_err();
            assert_eq!(e.kind, ErrorKind::UnknownOperation, "{target:?}");
            assert!(e.message.contains("CodeDeploy_20141006."), "{}", e.message);
        }
    }

    #[test]
    fn malformed_json_is_a_serialization_error_and_wrong_fields_a_validation_error() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct In {
            #[serde(rename = "applicationName")]
            application_name: String,
        }
        let e = request(None, "{\"applicationName\": ")
            .input::<In>()
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Serialization);
        let e = request(None, "{\"applicationName\": 7}")
            .input::<In>()
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Validation);
        assert!(e.message.contains("applicationName"), "{}", e.message);
        // No body at all is an empty input.
        let e = request(None, "").input::<In>().unwrap_err();
        assert!(e.message.contains("missing field"), "{}", e.message);
    }

    #[test]
    fn errors_are_answered_with_their_type_and_status() {
        let e = ApiError::codedeploy("ApplicationDoesNotExistException", "No application found");
        let r = ApiResponse::from(e);
        assert_eq!(r.status, 400);
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["__type"], "ApplicationDoesNotExistException");
        assert_eq!(body["message"], "No application found");
        let r = ApiResponse::from(ApiError::new(ErrorKind::InvalidSignature, "no"));
        assert_eq!(r.status, 403);
    }
}
