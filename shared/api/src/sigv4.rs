//! AWS Signature Version 4 verification: checks that a request was signed, in its
//! `Authorization` header, with one of the access keys cutover accepts, the way S3-compatible
//! stores verify requests against their own key pairs.
//!
//! The signature is recomputed with `aws-sigv4`, the signer of the Rust SDK, over exactly the
//! headers the client listed in `SignedHeaders`, and compared in constant time. Any region is
//! accepted: the region is only part of the signature.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4::SigningParams;
use subtle::ConstantTimeEq;

use crate::wire::{ApiError, ApiRequest, ErrorKind};

/// A key pair cutover accepts. In JSON it has the field names of an AWS credentials export
/// (`AccessKeyId`, `SecretAccessKey`).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccessKey {
    /// The public half, named in the credential scope of every signed request (`AKIA...`).
    pub access_key_id: String,
    /// The secret half, which signs; never sent.
    pub secret_access_key: String,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl AccessKey {
    /// The key pair of `CUTOVER_ACCESS_KEY_ID` and `CUTOVER_SECRET_ACCESS_KEY`, read through
    /// `var`; none if neither is set, an error if only one is.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<AccessKey>, String> {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        match (
            var("CUTOVER_ACCESS_KEY_ID"),
            var("CUTOVER_SECRET_ACCESS_KEY"),
        ) {
            (Some(access_key_id), Some(secret_access_key)) => Ok(Some(AccessKey {
                access_key_id,
                secret_access_key,
            })),
            (None, None) => Ok(None),
            _ => Err(
                "set both CUTOVER_ACCESS_KEY_ID and CUTOVER_SECRET_ACCESS_KEY, or neither".into(),
            ),
        }
    }

    /// Key pairs in JSON: one `{"AccessKeyId": "...", "SecretAccessKey": "..."}`, or a list of
    /// them (to accept a new key before the old one is retired).
    pub fn parse_json(text: &str) -> Result<Vec<AccessKey>, String> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Keys {
            One(AccessKey),
            Many(Vec<AccessKey>),
        }
        let keys = match serde_json::from_str::<Keys>(text) {
            Ok(Keys::One(key)) => vec![key],
            Ok(Keys::Many(keys)) => keys,
            Err(_) => {
                return Err(
                    "expected {\"AccessKeyId\": \"...\", \"SecretAccessKey\": \"...\"} or a list of such key pairs".into(),
                );
            }
        };
        if keys.is_empty() {
            return Err("the list of key pairs is empty".into());
        }
        if let Some(bad) = keys
            .iter()
            .find(|k| k.access_key_id.is_empty() || k.secret_access_key.len() < 16)
        {
            return Err(format!(
                "key pair '{}' needs an AccessKeyId and a SecretAccessKey of at least 16 characters",
                bad.access_key_id
            ));
        }
        Ok(keys)
    }
}

/// Looks up the secret of an access key id.
pub trait KeyStore {
    /// The secret access key of `access_key_id`, if cutover accepts that key.
    fn secret(&self, access_key_id: &str) -> Option<String>;
}

impl KeyStore for [AccessKey] {
    fn secret(&self, access_key_id: &str) -> Option<String> {
        self.iter()
            .find(|key| key.access_key_id == access_key_id)
            .map(|key| key.secret_access_key.clone())
    }
}

/// How far a request's X-Amz-Date may be from now: 15 minutes, as AWS allows.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The only signing algorithm accepted.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The last part of every credential scope.
const TERMINATOR: &str = "aws4_request";

/// Who signed a request that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer {
    /// The access key that signed it.
    pub access_key_id: String,
    /// The region it was signed for: the region the caller addresses, which names it in ARNs.
    pub region: String,
}

/// Verifies `request`'s signature for service `service` ("codedeploy") at `now`; returns the
/// access key id that signed it and the region it was signed for.
///
/// Fails with `MissingAuthenticationToken` for a request without an Authorization header,
/// `UnrecognizedClient` for a key `keys` does not hold, and `InvalidSignature` for anything else:
/// a malformed header or scope, an X-Amz-Date more than [`MAX_SKEW`] from `now`, a signature
/// that does not match.
pub fn verify(
    request: &ApiRequest,
    service: &str,
    keys: &(impl KeyStore + ?Sized),
    now: SystemTime,
) -> Result<Signer, ApiError> {
    let authorization = request.header("authorization").ok_or_else(|| {
        ApiError::new(
            ErrorKind::MissingAuthenticationToken,
            format!(
                "Missing Authentication Token: sign requests with SigV4 (service {service}) using a cutover access key"
            ),
        )
    })?;
    let authorization = Authorization::parse(authorization)?;
    let scope = CredentialScope::parse(authorization.credential)?;
    if scope.service != service {
        return Err(invalid(format!(
            "Credential should be scoped to correct service: '{service}'. The credential scope names '{}'.",
            scope.service
        )));
    }
    let date = request_date(request, &authorization, &scope)?;
    let secret = keys.secret(scope.access_key_id).ok_or_else(|| {
        ApiError::new(
            ErrorKind::UnrecognizedClient,
            format!(
                "The security token included in the request is invalid. cutover has no access key '{}'.",
                scope.access_key_id
            ),
        )
    })?;
    check_skew(date, now)?;

    let expected = expected_signature(request, &authorization, &scope, &secret, date)?;
    if expected.signed_headers != authorization.signed_headers {
        return Err(invalid(format!(
            "SignedHeaders '{}' does not list the headers as signed: it must be '{}' \
             (names in lowercase, sorted, each once, without authorization)",
            authorization.signed_headers, expected.signed_headers
        )));
    }
    let matches: bool = expected
        .signature
        .as_bytes()
        .ct_eq(authorization.signature.as_bytes())
        .into();
    if !matches {
        return Err(invalid(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method.",
        ));
    }
    Ok(Signer {
        access_key_id: scope.access_key_id.to_owned(),
        region: scope.region.to_owned(),
    })
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
/// Signature=...` header.
#[derive(Debug)]
struct Authorization<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

impl<'a> Authorization<'a> {
    fn parse(header: &'a str) -> Result<Self, ApiError> {
        let header = header.trim();
        let (algorithm, parameters) = header.split_once(' ').unwrap_or((header, ""));
        if algorithm != ALGORITHM {
            return Err(invalid(format!(
                "the Authorization header must use {ALGORITHM} (Signature Version 4 in headers), not '{algorithm}'"
            )));
        }
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for parameter in parameters
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
            let slot = match name {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed_headers,
                "Signature" => &mut signature,
                _ => {
                    return Err(invalid(format!(
                        "the Authorization header has '{parameter}' where Credential=, SignedHeaders= or Signature= was expected"
                    )));
                }
            };
            if slot.replace(value).is_some() {
                return Err(invalid(format!(
                    "the Authorization header gives the {name} parameter twice"
                )));
            }
        }
        let required = |value: Option<&'a str>, name: &str| {
            value.filter(|v| !v.is_empty()).ok_or_else(|| {
                invalid(format!(
                    "the Authorization header requires the '{name}' parameter: \
                     {ALGORITHM} Credential=<access key id>/<scope>, SignedHeaders=<headers>, Signature=<signature>"
                ))
            })
        };
        Ok(Authorization {
            credential: required(credential, "Credential")?,
            signed_headers: required(signed_headers, "SignedHeaders")?,
            signature: required(signature, "Signature")?,
        })
    }

    /// The header names listed in `SignedHeaders`.
    fn signed_header_names(&self) -> impl Iterator<Item = &'a str> {
        self.signed_headers.split(';')
    }
}

/// The `Credential` of an Authorization header:
/// `<access key id>/<yyyymmdd>/<region>/<service>/aws4_request`.
#[derive(Debug)]
struct CredentialScope<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

impl<'a> CredentialScope<'a> {
    fn parse(credential: &'a str) -> Result<Self, ApiError> {
        let parts: Vec<&str> = credential.split('/').collect();
        match parts[..] {
            [access_key_id, date, region, service, TERMINATOR]
                if !access_key_id.is_empty()
                    && date.len() == 8
                    && date.bytes().all(|b| b.is_ascii_digit())
                    && !region.is_empty()
                    && !service.is_empty() =>
            {
                Ok(CredentialScope {
                    access_key_id,
                    date,
                    region,
                    service,
                })
            }
            _ => Err(invalid(format!(
                "Credential '{credential}' is not <access key id>/<yyyymmdd>/<region>/<service>/{TERMINATOR}"
            ))),
        }
    }
}

/// The request's signed `X-Amz-Date`, checked against the credential scope.
fn request_date(
    request: &ApiRequest,
    authorization: &Authorization<'_>,
    scope: &CredentialScope<'_>,
) -> Result<AmzDate, ApiError> {
    for required in ["host", "x-amz-date"] {
        if !authorization.signed_header_names().any(|h| h == required) {
            return Err(invalid(format!(
                "SignedHeaders '{}' must include host and x-amz-date",
                authorization.signed_headers
            )));
        }
    }
    let value = request.header("x-amz-date").ok_or_else(|| {
        invalid("the request has no X-Amz-Date header, which SignedHeaders lists")
    })?;
    let date = AmzDate::parse(value).ok_or_else(|| {
        invalid(format!(
            "X-Amz-Date '{value}' is not a UTC date and time in the form YYYYMMDD'T'HHMMSS'Z'"
        ))
    })?;
    if !value.starts_with(scope.date) {
        return Err(invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
             '{}' != '{}', from '{value}'.",
            scope.date,
            &value[..8],
        )));
    }
    Ok(date)
}

/// Rejects a request signed more than [`MAX_SKEW`] away from `now`, with AWS's messages.
fn check_skew(date: AmzDate, now: SystemTime) -> Result<(), ApiError> {
    let now = AmzDate(now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()));
    let skew = MAX_SKEW.as_secs();
    let minutes = skew / 60;
    let earliest = AmzDate(now.0.saturating_sub(skew));
    let latest = AmzDate(now.0.saturating_add(skew));
    if date < earliest {
        Err(invalid(format!(
            "Signature expired: {date} is now earlier than {earliest} ({now} - {minutes} min.)"
        )))
    } else if date > latest {
        Err(invalid(format!(
            "Signature not yet current: {date} is still later than {latest} ({now} + {minutes} min.)"
        )))
    } else {
        Ok(())
    }
}

/// What the signer computes for the request.
#[derive(Debug)]
struct Expected {
    signed_headers: String,
    signature: String,
}

/// Signs the request again with `secret`, over the headers its `SignedHeaders` lists.
fn expected_signature(
    request: &ApiRequest,
    authorization: &Authorization<'_>,
    scope: &CredentialScope<'_>,
    secret: &str,
    date: AmzDate,
) -> Result<Expected, ApiError> {
    // Authorization is never signed: leaving it out makes the signer's list differ, and says so.
    let mut headers = Vec::new();
    for name in authorization.signed_header_names() {
        let sent = request
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
        let before = headers.len();
        headers.extend(sent.map(|(n, v)| (n.as_str(), v.as_str())));
        if headers.len() == before {
            return Err(invalid(format!(
                "SignedHeaders lists '{name}', but the request has no such header"
            )));
        }
    }
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
    // The signing library adds a session token of the credentials as a header of its own; a
    // signed X-Amz-Security-Token is passed as the header it is instead, so the credentials
    // carry none.
    let identity = Credentials::new(scope.access_key_id, secret, None, None, "cutover").into();
    // The defaults are those the SDKs use for every service but S3: the path normalized and
    // encoded twice, no X-Amz-Content-SHA256 header. No header is excluded: the client chose
    // what to sign.
    let mut settings = SigningSettings::default();
    settings.excluded_headers = None;
    let params = SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(date.system_time())
        .settings(settings)
        .build()
        .map_err(|e| internal(format!("the signing parameters are incomplete: {e}")))?
        .into();
    let signable = SignableRequest::new(
        &request.method,
        request.uri.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(&request.body),
    )
    .and_then(|signable| sign(signable, &params))
    .map_err(|e| invalid(format!("the request cannot be signed as sent: {e}")))?;
    let signed_headers = signable
        .output()
        .headers()
        .find(|(name, _)| *name == "authorization")
        .and_then(|(_, value)| Authorization::parse(value).ok())
        .map(|a| a.signed_headers.to_owned())
        .ok_or_else(|| internal("the signer wrote no Authorization header"))?;
    Ok(Expected {
        signed_headers,
        signature: signable.signature().to_owned(),
    })
}

/// An `X-Amz-Date`: a UTC time to the second, as seconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct AmzDate(u64);

impl AmzDate {
    /// Parses `YYYYMMDD'T'HHMMSS'Z'`, from 1970 on.
    fn parse(value: &str) -> Option<Self> {
        let shape = value.len() == 16
            && value.bytes().enumerate().all(|(i, b)| match i {
                8 => b == b'T',
                15 => b == b'Z',
                _ => b.is_ascii_digit(),
            });
        if !shape {
            return None;
        }
        let number = |from: usize, to: usize| value.get(from..to)?.parse::<u64>().ok();
        let year = number(0, 4).filter(|year| *year >= 1970)?;
        let (month, day) = (number(4, 6)?, number(6, 8)?);
        let (hour, minute, second) = (number(9, 11)?, number(11, 13)?, number(13, 15)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return None;
        }
        let date = AmzDate(
            days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second,
        );
        // Out-of-range fields (February 30th, 24:00:00) do not come back as they were.
        (date.to_string() == value).then_some(date)
    }

    fn system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.0)
    }
}

impl std::fmt::Display for AmzDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (year, month, day) = civil_from_days(self.0 / 86_400);
        let seconds = self.0 % 86_400;
        write!(
            f,
            "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
            seconds / 3_600,
            seconds / 60 % 60,
            seconds % 60
        )
    }
}

/// Days since 1970-01-01 of a date from 1970 on (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let (era, year_of_era) = (year / 400, year % 400);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let days = days + 719_468;
    let (era, day_of_era) = (days / 146_097, days % 146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::InvalidSignature, message)
}

fn internal(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Internal, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::CONTENT_TYPE;

    const KEY_ID: &str = "AKIDCUTOVEREXAMPLE";
    const SECRET: &str = "cutover/secret+example/KEY0123456789abcdef";
    const SIGNED_AT: &str = "20261127T010203Z";
    const SERVICE: &str = "codedeploy";

    fn keys() -> Vec<AccessKey> {
        vec![
            AccessKey {
                access_key_id: "AKIDOTHER".into(),
                secret_access_key: "other".into(),
            },
            AccessKey {
                access_key_id: KEY_ID.into(),
                secret_access_key: SECRET.into(),
            },
        ]
    }

    fn at(date: &str) -> SystemTime {
        AmzDate::parse(date).unwrap().system_time()
    }

    fn minutes(n: u64) -> Duration {
        Duration::from_secs(n * 60)
    }

    fn check(request: &ApiRequest, now: SystemTime) -> Result<String, ApiError> {
        verify(request, SERVICE, keys().as_slice(), now).map(|signer| signer.access_key_id)
    }

    fn owned(headers: &[(&str, &str)]) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// A ListApplications request as the Rust SDK signs it: with `aws-sigv4`'s defaults, as
    /// `key_id` with `secret` (and `session_token`) at `time`.
    fn signed_by_sdk(
        key_id: &str,
        secret: &str,
        session_token: Option<&str>,
        time: SystemTime,
    ) -> ApiRequest {
        let mut request = ApiRequest {
            method: "POST".into(),
            uri: "/".into(),
            headers: owned(&[
                ("Host", "127.0.0.1:4567"),
                ("Content-Type", CONTENT_TYPE),
                ("X-Amz-Target", "CodeDeploy_20141006.ListApplications"),
                ("User-Agent", "aws-sdk-rust/1.3.1 os/linux lang/rust/1.95.0"),
                ("Content-Length", "2"),
            ]),
            body: b"{}".to_vec(),
        };
        let identity = Credentials::new(
            key_id,
            secret,
            session_token.map(str::to_owned),
            None,
            "test",
        )
        .into();
        let params = SigningParams::builder()
            .identity(&identity)
            .region("eu-west-3")
            .name(SERVICE)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(
            "POST",
            "/",
            request
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str())),
            SignableBody::Bytes(&request.body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        for (name, value) in instructions.headers() {
            request.headers.push((name.to_owned(), value.to_owned()));
        }
        request
    }

    fn signed() -> ApiRequest {
        signed_by_sdk(KEY_ID, SECRET, None, at(SIGNED_AT))
    }

    fn with_header(mut request: ApiRequest, name: &str, value: &str) -> ApiRequest {
        request
            .headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        request.headers.push((name.to_owned(), value.to_owned()));
        request
    }

    fn invalid_because(request: &ApiRequest, now: SystemTime, says: &str) {
        let e = check(request, now).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidSignature, "{}", e.message);
        assert!(e.message.contains(says), "{:?} lacks {says:?}", e.message);
    }

    /// Captured from boto3 1.44.8 (the AWS CLI's botocore): `list_applications()` against
    /// `endpoint_url="http://127.0.0.1:4567"` with the clock at 2026-11-27T01:02:03Z, plus the
    /// Host header urllib3 sends.
    #[test]
    fn a_request_signed_by_botocore_verifies() {
        let request = ApiRequest {
            method: "POST".into(),
            uri: "/".into(),
            headers: owned(&[
                ("Host", "127.0.0.1:4567"),
                ("Accept-Encoding", "identity"),
                ("X-Amz-Target", "CodeDeploy_20141006.ListApplications"),
                ("Content-Type", "application/x-amz-json-1.1"),
                (
                    "User-Agent",
                    "Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux#6.18.44-fc-v769 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/Z,b,E,N,e cfg/retry-mode#standard Botocore/1.44.8",
                ),
                ("X-Amz-Date", "20261127T010203Z"),
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDCUTOVEREXAMPLE/20261127/us-east-1/codedeploy/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=b75f4a8d78af26db6a49785d7aa8993364ea4a0d043dbcd2b24d94ca6e3294bb",
                ),
                (
                    "amz-sdk-invocation-id",
                    "4706777b-32dc-452b-bc4e-a2d26f9f09d2",
                ),
                ("amz-sdk-request", "attempt=1; max=3"),
                ("Content-Length", "2"),
            ]),
            body: b"{}".to_vec(),
        };
        assert_eq!(check(&request, at(SIGNED_AT)).unwrap(), KEY_ID);
        let changed = ApiRequest {
            body: b"{ }".to_vec(),
            ..request
        };
        invalid_because(&changed, at(SIGNED_AT), "does not match");
    }

    /// botocore's `SigV4Auth` with a session token, which it adds as a signed
    /// X-Amz-Security-Token header.
    #[test]
    fn a_session_token_signed_by_botocore_verifies() {
        let request = ApiRequest {
            method: "POST".into(),
            uri: "/".into(),
            headers: owned(&[
                ("Host", "127.0.0.1:4567"),
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", "CodeDeploy_20141006.ListApplications"),
                ("X-Amz-Date", "20261127T010203Z"),
                (
                    "X-Amz-Security-Token",
                    "FwoGZXIvYXdzEXAMPLE//session+token=",
                ),
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDCUTOVEREXAMPLE/20261127/us-east-1/codedeploy/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=f307ecaade312b09c19d7a04f31dfc73fd31cbe914c29ace29296e4c0fa9d3b0",
                ),
                ("Content-Length", "2"),
            ]),
            body: b"{}".to_vec(),
        };
        assert_eq!(check(&request, at(SIGNED_AT)).unwrap(), KEY_ID);
        let other_token = with_header(request, "X-Amz-Security-Token", "FwoGZXIvYXdzOTHER");
        invalid_because(&other_token, at(SIGNED_AT), "does not match");
    }

    #[test]
    fn a_request_signed_by_the_sdk_verifies_and_names_its_key() {
        assert_eq!(check(&signed(), at(SIGNED_AT)).unwrap(), KEY_ID);
        let signer = verify(&signed(), SERVICE, keys().as_slice(), at(SIGNED_AT)).unwrap();
        assert_eq!(signer.region, "eu-west-3");
        let other = signed_by_sdk("AKIDOTHER", "other", None, at(SIGNED_AT));
        assert_eq!(check(&other, at(SIGNED_AT)).unwrap(), "AKIDOTHER");
    }

    #[test]
    fn a_session_token_signed_by_the_sdk_verifies() {
        let request = signed_by_sdk(
            KEY_ID,
            SECRET,
            Some("IQoJb3JpZ2luX2VjEXAMPLE"),
            at(SIGNED_AT),
        );
        let authorization = request.header("authorization").unwrap();
        assert!(
            authorization.contains("x-amz-security-token"),
            "{authorization}"
        );
        assert_eq!(check(&request, at(SIGNED_AT)).unwrap(), KEY_ID);
    }

    #[test]
    fn a_changed_body_fails() {
        let mut request = signed();
        request.body = br#"{"nextToken": "x"}"#.to_vec();
        invalid_because(
            &request,
            at(SIGNED_AT),
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method.",
        );
    }

    #[test]
    fn a_changed_signed_header_fails_and_an_unsigned_one_does_not() {
        let request = with_header(
            signed(),
            "X-Amz-Target",
            "CodeDeploy_20141006.DeleteApplication",
        );
        invalid_because(&request, at(SIGNED_AT), "does not match");
        let request = with_header(signed(), "User-Agent", "a proxy");
        assert_eq!(check(&request, at(SIGNED_AT)).unwrap(), KEY_ID);
    }

    #[test]
    fn a_wrong_secret_fails() {
        let request = signed_by_sdk(KEY_ID, "not the secret", None, at(SIGNED_AT));
        invalid_because(&request, at(SIGNED_AT), "Check your AWS Secret Access Key");
    }

    #[test]
    fn an_unknown_key_is_an_unrecognized_client() {
        let request = signed_by_sdk("AKIDUNKNOWN", SECRET, None, at(SIGNED_AT));
        let e = check(&request, at(SIGNED_AT)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnrecognizedClient);
        assert!(
            e.message
                .starts_with("The security token included in the request is invalid.")
                && e.message.contains("AKIDUNKNOWN"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_signature_more_than_15_minutes_away_has_expired() {
        let signed_at = at(SIGNED_AT);
        invalid_because(
            &signed(),
            signed_at + minutes(16),
            "Signature expired: 20261127T010203Z is now earlier than 20261127T010303Z \
             (20261127T011803Z - 15 min.)",
        );
        invalid_because(
            &signed(),
            signed_at - minutes(16),
            "Signature not yet current: 20261127T010203Z is still later than 20261127T010103Z \
             (20261127T004603Z + 15 min.)",
        );
    }

    #[test]
    fn a_signature_up_to_15_minutes_away_is_current() {
        let signed_at = at(SIGNED_AT);
        for now in [
            signed_at + minutes(14),
            signed_at - minutes(14),
            signed_at + MAX_SKEW,
            signed_at - MAX_SKEW,
            signed_at + Duration::from_millis(999),
        ] {
            assert_eq!(check(&signed(), now).unwrap(), KEY_ID);
        }
    }

    #[test]
    fn a_missing_authorization_is_a_missing_authentication_token() {
        let mut request = signed();
        request
            .headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
        let e = check(&request, at(SIGNED_AT)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::MissingAuthenticationToken);
        assert_eq!(
            e.message,
            "Missing Authentication Token: sign requests with SigV4 (service codedeploy) using a cutover access key"
        );
    }

    #[test]
    fn a_malformed_authorization_is_an_invalid_signature_saying_what_is_wrong() {
        let request = signed();
        let authorization = request.header("authorization").unwrap().to_owned();
        let cases = [
            (
                authorization.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"),
                "must use AWS4-HMAC-SHA256",
            ),
            ("Bearer abc".to_owned(), "not 'Bearer'"),
            ("AWS4-HMAC-SHA256".to_owned(), "requires the 'Credential'"),
            (
                authorization
                    .split(", Signature=")
                    .next()
                    .unwrap()
                    .to_owned(),
                "requires the 'Signature'",
            ),
            (
                authorization.replace("SignedHeaders=", "Headers="),
                "'Headers=",
            ),
            (
                format!("{authorization}, Signature=00"),
                "Signature parameter twice",
            ),
            (
                authorization.replace("/aws4_request", ""),
                "is not <access key id>/<yyyymmdd>/<region>/<service>/aws4_request",
            ),
            (
                authorization.replace("/20261127/", "/2026-11-27/"),
                "is not <access key id>/<yyyymmdd>",
            ),
            (
                authorization.replace("/codedeploy/", "/s3/"),
                "Credential should be scoped to correct service: 'codedeploy'",
            ),
            (
                authorization.replace("/20261127/", "/20261126/"),
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
                 from HTTP: '20261126' != '20261127', from '20261127T010203Z'.",
            ),
            (
                authorization.replace("host;", ""),
                "must include host and x-amz-date",
            ),
            (
                authorization.replace(";x-amz-date", ""),
                "must include host and x-amz-date",
            ),
        ];
        for (value, says) in cases {
            let request = with_header(request.clone(), "Authorization", &value);
            invalid_because(&request, at(SIGNED_AT), says);
        }
    }

    #[test]
    fn a_malformed_or_missing_x_amz_date_is_an_invalid_signature() {
        for date in [
            "2026-11-27T01:02:03Z",
            "20261127T010203",
            "20261127T250203Z",
        ] {
            let request = with_header(signed(), "X-Amz-Date", date);
            invalid_because(&request, at(SIGNED_AT), "in the form YYYYMMDD'T'HHMMSS'Z'");
        }
        let mut request = signed();
        request
            .headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("x-amz-date"));
        invalid_because(&request, at(SIGNED_AT), "no X-Amz-Date header");
    }

    #[test]
    fn signed_headers_must_be_sent_and_listed_as_the_signer_lists_them() {
        let request = signed();
        let authorization = request.header("authorization").unwrap().to_owned();
        let unsent = authorization.replace(";x-amz-target", ";x-amz-target;x-cutover-missing");
        let unsent = with_header(request.clone(), "Authorization", &unsent);
        invalid_because(
            &unsent,
            at(SIGNED_AT),
            "SignedHeaders lists 'x-cutover-missing', but the request has no such header",
        );
        let unsorted =
            authorization.replace("content-length;content-type", "content-type;content-length");
        let unsorted = with_header(request.clone(), "Authorization", &unsorted);
        invalid_because(
            &unsorted,
            at(SIGNED_AT),
            "it must be 'content-length;content-type;host;x-amz-date;x-amz-target'",
        );
        let with_authorization =
            authorization.replace("SignedHeaders=", "SignedHeaders=authorization;");
        let with_authorization = with_header(request, "Authorization", &with_authorization);
        invalid_because(&with_authorization, at(SIGNED_AT), "without authorization");
    }

    #[test]
    fn a_slice_of_keys_finds_secrets_by_id() {
        let keys = keys();
        assert_eq!(keys.secret(KEY_ID).as_deref(), Some(SECRET));
        assert_eq!(keys.secret("akidcutoverexample"), None);
    }

    #[test]
    fn amz_dates_parse_and_print_back() {
        assert_eq!(AmzDate::parse("19700101T000000Z"), Some(AmzDate(0)));
        assert_eq!(AmzDate::parse(SIGNED_AT), Some(AmzDate(1_795_741_323)));
        assert_eq!(
            AmzDate::parse("20000229T235959Z"),
            Some(AmzDate(951_868_799))
        );
        assert_eq!(AmzDate(1_795_741_323).to_string(), SIGNED_AT);
        for bad in [
            "20260229T000000Z",
            "20261131T000000Z",
            "20261301T000000Z",
            "20261100T000000Z",
            "20261127T240000Z",
            "20261127T016003Z",
            "19691231T235959Z",
            "20261127T010203z",
            "+0261127T010203Z",
            "",
        ] {
            assert_eq!(AmzDate::parse(bad), None, "{bad}");
        }
    }
}
