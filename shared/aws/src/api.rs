//! The `api` function's glue: a Lambda function URL request becomes the API's request and its
//! answer the URL's response, and the access keys the API accepts come from the environment or
//! from an SSM SecureString parameter, read again every minute so that new keys take effect.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use base64::Engine as _;
use cutover_api::{AccessKey, ApiError, ApiRequest, ApiResponse, ErrorKind};
use cutover_engine::PortError;

use crate::error::port_error;

/// How long keys read from SSM are used before they are read again.
const KEYS_FRESH_FOR: Duration = Duration::from_secs(60);

/// The API's request in a function URL's event; an error answer when the event cannot be one.
pub fn request_of(event: &LambdaFunctionUrlRequest) -> Result<ApiRequest, ApiResponse> {
    let body = match event.body.as_deref() {
        None => Vec::new(),
        Some(text) if event.is_base64_encoded => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| {
                ApiError::new(
                    ErrorKind::Serialization,
                    format!("the request body is not valid base64: {e}"),
                )
            })?,
        Some(text) => text.as_bytes().to_vec(),
    };
    let path = event.raw_path.as_deref().unwrap_or("/");
    let uri = match event.raw_query_string.as_deref() {
        Some(query) if !query.is_empty() => format!("{path}?{query}"),
        _ => path.to_owned(),
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in &event.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        // A function URL joins repeated headers with commas; so does this.
        match headers.iter_mut().find(|(n, _)| n == name.as_str()) {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            None => headers.push((name.as_str().to_owned(), value)),
        }
    }
    Ok(ApiRequest {
        method: event
            .request_context
            .http
            .method
            .clone()
            .unwrap_or_else(|| "POST".into()),
        uri,
        headers,
        body,
    })
}

/// The function URL's response for the API's answer to request `request_id`.
pub fn response_of(answer: ApiResponse, request_id: &str) -> LambdaFunctionUrlResponse {
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = i64::from(answer.status);
    if let Ok(v) = http::HeaderValue::from_str(answer.content_type_value()) {
        response.headers.insert(http::header::CONTENT_TYPE, v);
    }
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        response.headers.insert("x-amzn-requestid", v);
    }
    response.body = Some(String::from_utf8_lossy(&answer.body).into_owned());
    response.is_base64_encoded = false;
    response
}

/// Where the API's keys come from.
#[derive(Debug)]
pub enum KeySource {
    /// `CUTOVER_ACCESS_KEY_ID` and `CUTOVER_SECRET_ACCESS_KEY`.
    Fixed(AccessKey),
    /// The SSM parameter named by `CUTOVER_API_KEYS_PARAMETER`, a SecureString holding
    /// `{"AccessKeyId": ..., "SecretAccessKey": ...}` or a list of them.
    Parameter {
        client: aws_sdk_ssm::Client,
        name: String,
        cached: Mutex<Option<(Instant, Vec<AccessKey>)>>,
    },
}

impl KeySource {
    /// The source the environment names; an error saying what to set when it names none.
    pub fn from_env(client: aws_sdk_ssm::Client) -> Result<KeySource, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if let Some(key) = AccessKey::from_env(var)? {
            return Ok(KeySource::Fixed(key));
        }
        match var("CUTOVER_API_KEYS_PARAMETER") {
            Some(name) => Ok(KeySource::Parameter {
                client,
                name,
                cached: Mutex::new(None),
            }),
            None => Err("set CUTOVER_API_KEYS_PARAMETER (an SSM SecureString parameter holding the API's key pairs), or CUTOVER_ACCESS_KEY_ID and CUTOVER_SECRET_ACCESS_KEY".into()),
        }
    }

    /// The keys accepted now.
    pub async fn keys(&self) -> Result<Vec<AccessKey>, PortError> {
        match self {
            KeySource::Fixed(key) => Ok(vec![key.clone()]),
            KeySource::Parameter {
                client,
                name,
                cached,
            } => {
                if let Some((at, keys)) = &*cached.lock().unwrap_or_else(|e| e.into_inner())
                    && at.elapsed() < KEYS_FRESH_FOR
                {
                    return Ok(keys.clone());
                }
                let out = client
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| {
                        port_error(format!("reading the API's keys from parameter {name}"), e)
                    })?;
                let text = out.parameter.and_then(|p| p.value).unwrap_or_default();
                let keys = AccessKey::parse_json(&text).map_err(|e| {
                    PortError::permanent(format!(
                        "parameter {name} does not hold the API's keys: {e}"
                    ))
                })?;
                *cached.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((Instant::now(), keys.clone()));
                Ok(keys)
            }
        }
    }
}
