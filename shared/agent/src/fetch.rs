//! Downloading a bundle over HTTPS (a presigned S3 URL) without any AWS SDK: one GET, streamed
//! into a temporary file beside the destination, counted, hashed, and renamed into place only
//! when it is whole and its SHA-256 matches.

use std::fs;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cutover_core::digest::hex;
use sha2::{Digest, Sha256};
use ureq::http::{StatusCode, Uri};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use ureq::{Agent, Proxy};

use crate::bundle::DEFAULT_MAX_BYTES;

/// Presigned URLs rarely redirect; a few hops cover a moved object without risking a loop.
const MAX_REDIRECTS: usize = 5;
/// Enough of an error body to hold S3's `<Error>` document.
const MAX_ERROR_BODY: u64 = 64 * 1024;
const COPY_CHUNK: usize = 64 * 1024;

/// How to download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchOptions {
    /// Bytes the download may have; larger bundles are refused as they stream in.
    pub max_bytes: u64,
    /// A PEM file of CA certificates trusted in addition to the built-in (Mozilla) roots, for
    /// an S3-compatible store behind a private CA.
    pub extra_ca_pem: Option<PathBuf>,
    /// How long the whole download may take, from connecting to the last byte.
    pub timeout: Duration,
}

/// The bundle size limit of [`crate::bundle::BundleLimits`] (4 GiB), no extra CA, and one hour.
impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            max_bytes: DEFAULT_MAX_BYTES,
            extra_ca_pem: None,
            timeout: Duration::from_secs(3600),
        }
    }
}

/// What [`download`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Downloaded {
    pub bytes: u64,
    /// Lowercase hex.
    pub sha256: String,
}

/// A download that failed. URLs in messages lose their query string, which in a presigned URL
/// holds the credentials and signature.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("'{url}' is not a URL cutover can download from: {reason}")]
    BadUrl { url: String, reason: String },

    #[error(
        "{url} uses plain http to a host other than this machine; use an https:// URL \
         (plain http is allowed only for emulators on 127.0.0.1, ::1 or localhost)"
    )]
    InsecureUrl { url: String },

    #[error("the expected SHA-256 '{value}' is not 64 hexadecimal digits")]
    BadChecksum { value: String },

    #[error("cannot use the CA certificates in {path}: {reason}")]
    ExtraCa { path: PathBuf, reason: String },

    #[error("cannot download {url}: {source}")]
    Transport { url: String, source: ureq::Error },

    #[error(
        "cannot download {url}: the server's certificate is not trusted ({source}); if it is \
         signed by a private CA, give that CA's certificate as extra_ca_pem"
    )]
    Untrusted { url: String, source: ureq::Error },

    #[error("the download of {url} broke off after {bytes} bytes: {source}")]
    BrokenOff {
        url: String,
        bytes: u64,
        source: io::Error,
    },

    #[error(
        "the download of {url} did not finish within {}s; raise the timeout or check the \
         network",
        .timeout.as_secs_f64()
    )]
    TimedOut { url: String, timeout: Duration },

    #[error("{url} answered HTTP {status}{}", describe_status(*.status, .code, .message))]
    Status {
        url: String,
        status: u16,
        /// S3's `<Code>`, when the body is an S3-style XML error.
        code: Option<String>,
        /// S3's `<Message>`.
        message: Option<String>,
    },

    #[error("{url} redirected to '{location}', which cutover cannot follow: {reason}")]
    BadRedirect {
        url: String,
        location: String,
        reason: &'static str,
    },

    #[error(
        "{url} is larger than the limit of {limit} bytes; raise max_bytes if the bundle \
         really is that large"
    )]
    TooLarge { url: String, limit: u64 },

    #[error(
        "the download of {url} has SHA-256 {actual}, not the expected {expected}; the bundle \
         changed since its checksum was taken, or the download was damaged"
    )]
    ChecksumMismatch {
        url: String,
        expected: String,
        actual: String,
    },

    #[error("cannot write the download to {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// Downloads `url` to `dest`, checking the SHA-256 (lowercase or uppercase hex) when given.
///
/// `https://` is allowed for any host; plain `http://` only for loopback hosts (127.0.0.0/8,
/// ::1, localhost), which is what emulators use. Redirects are followed (at most 5) under the
/// same rule. Proxies come from the usual environment variables, except for loopback hosts.
///
/// The file appears at `dest` only when whole and checked: on a non-2xx status, over
/// `max_bytes`, on a checksum mismatch or any other error, the partial download is deleted.
pub fn download(
    url: &str,
    dest: &Path,
    expected_sha256: Option<&str>,
    opts: &FetchOptions,
) -> Result<Downloaded, FetchError> {
    let expected = expected_sha256.map(parse_sha256).transpose()?;
    let mut target = Target::parse(url)?;
    let roots = root_certs(opts)?;
    let deadline = Instant::now() + opts.timeout;
    let mut response = fetch_following_redirects(&mut target, &roots, deadline, opts)?;
    let status = response.status();
    if !status.is_success() {
        return Err(status_error(&target, status, response.body_mut()));
    }
    if content_length(&response).is_some_and(|len| len > opts.max_bytes) {
        return Err(FetchError::TooLarge {
            url: target.shown.clone(),
            limit: opts.max_bytes,
        });
    }
    let reader = response.into_body().into_reader();
    let downloaded = save(&target, reader, dest, expected.as_deref(), opts)?;
    Ok(downloaded)
}

/// A URL that passed the scheme rule, and how to show it.
#[derive(Debug)]
struct Target {
    uri: Uri,
    /// Without the query string.
    shown: String,
    loopback: bool,
}

impl Target {
    fn parse(url: &str) -> Result<Target, FetchError> {
        let shown = redact(url);
        let bad = |reason: &str| FetchError::BadUrl {
            url: shown.clone(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url
            .parse()
            .map_err(|_| bad("it is not a valid absolute URL"))?;
        let host = uri.host().ok_or_else(|| bad("it has no host"))?;
        let loopback = is_loopback(host);
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if loopback => {}
            Some("http") => return Err(FetchError::InsecureUrl { url: shown }),
            _ => return Err(bad("only https:// URLs are supported")),
        }
        Ok(Target {
            uri,
            shown,
            loopback,
        })
    }

    /// The target of a redirect, which must pass the same rule.
    fn follow(&self, location: &str) -> Result<Target, FetchError> {
        let bad = |reason| FetchError::BadRedirect {
            url: self.shown.clone(),
            location: redact(location),
            reason,
        };
        if location.starts_with("https://") || location.starts_with("http://") {
            Target::parse(location)
        } else if location.starts_with('/') && !location.starts_with("//") {
            let scheme = self.uri.scheme_str().unwrap_or("https");
            let authority = self.uri.authority().map_or("", |a| a.as_str());
            Target::parse(&format!("{scheme}://{authority}{location}"))
        } else {
            Err(bad("only absolute URLs and absolute paths are followed"))
        }
    }
}

fn fetch_following_redirects(
    target: &mut Target,
    roots: &RootCerts,
    deadline: Instant,
    opts: &FetchOptions,
) -> Result<ureq::http::Response<ureq::Body>, FetchError> {
    for _ in 0..=MAX_REDIRECTS {
        let left = deadline.saturating_duration_since(Instant::now());
        let agent = agent(roots, target.loopback, left);
        let response = agent
            .get(target.uri.clone())
            .call()
            .map_err(|e| transport_error(target, e, opts))?;
        if !response.status().is_redirection() {
            return Ok(response);
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| FetchError::BadRedirect {
                url: target.shown.clone(),
                location: String::new(),
                reason: "the answer has no usable Location header",
            })?;
        *target = target.follow(location)?;
    }
    Err(FetchError::BadRedirect {
        url: target.shown.clone(),
        location: target.shown.clone(),
        reason: "too many redirects",
    })
}

fn agent(roots: &RootCerts, loopback: bool, timeout: Duration) -> Agent {
    let tls = TlsConfig::builder().root_certs(roots.clone()).build();
    Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        // An emulator on this machine is never reached through a proxy.
        .proxy(if loopback {
            None
        } else {
            Proxy::try_from_env()
        })
        .tls_config(tls)
        .build()
        .new_agent()
}

/// The built-in roots, plus those in `extra_ca_pem`.
fn root_certs(opts: &FetchOptions) -> Result<RootCerts, FetchError> {
    let Some(path) = &opts.extra_ca_pem else {
        return Ok(RootCerts::WebPki);
    };
    let bad = |reason: String| FetchError::ExtraCa {
        path: path.clone(),
        reason,
    };
    let pem = fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut extra = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item.map_err(|e| bad(e.to_string()))? {
            PemItem::Certificate(cert) => extra.push(cert),
            _ => continue, // a key kept in the same file is not ours to use
        }
    }
    if extra.is_empty() {
        return Err(bad("it holds no PEM certificate".into()));
    }
    let built_in = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned());
    Ok(RootCerts::from(built_in.chain(extra)))
}

/// Streams the body into a temporary file beside `dest`, which is deleted on any error.
fn save(
    target: &Target,
    mut body: impl Read,
    dest: &Path,
    expected: Option<&str>,
    opts: &FetchOptions,
) -> Result<Downloaded, FetchError> {
    let write_error = |source| FetchError::Write {
        path: dest.to_owned(),
        source,
    };
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(write_error)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".download.")
        .tempfile_in(dir)
        .map_err(write_error)?;
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut buf = vec![0; COPY_CHUNK];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(target, bytes, e, opts)),
        };
        bytes += n as u64;
        if bytes > opts.max_bytes {
            return Err(FetchError::TooLarge {
                url: target.shown.clone(),
                limit: opts.max_bytes,
            });
        }
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n]).map_err(write_error)?;
    }
    let sha256 = hex(&hasher.finalize());
    if let Some(expected) = expected
        && expected != sha256
    {
        return Err(FetchError::ChecksumMismatch {
            url: target.shown.clone(),
            expected: expected.to_owned(),
            actual: sha256,
        });
    }
    tmp.as_file().sync_all().map_err(write_error)?;
    tmp.persist(dest).map_err(|e| write_error(e.error))?;
    Ok(Downloaded { bytes, sha256 })
}

fn status_error(target: &Target, status: StatusCode, body: &mut ureq::Body) -> FetchError {
    let mut text = Vec::new();
    // The body only adds detail; a failure to read it must not hide the status.
    let _ = body.as_reader().take(MAX_ERROR_BODY).read_to_end(&mut text);
    let text = String::from_utf8_lossy(&text);
    FetchError::Status {
        url: target.shown.clone(),
        status: status.as_u16(),
        code: xml_element(&text, "Code"),
        message: xml_element(&text, "Message"),
    }
}

fn describe_status(status: u16, code: &Option<String>, message: &Option<String>) -> String {
    let mut text = String::new();
    if let Some(reason) = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        text.push(' ');
        text.push_str(reason);
    }
    match (code, message) {
        (Some(code), Some(message)) => text.push_str(&format!(": {code}: {message}")),
        (Some(one), None) | (None, Some(one)) => text.push_str(&format!(": {one}")),
        (None, None) => {}
    }
    if status == 403 {
        text.push_str(
            "; a presigned URL may have expired, or its signer may lack s3:GetObject on the object",
        );
    }
    text
}

/// The text of the first `<name>` element, for S3's `<Error><Code>..</Code><Message>..` bodies.
fn xml_element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{name}>"))?;
    let text = xml[start..start + len]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn transport_error(target: &Target, error: ureq::Error, opts: &FetchOptions) -> FetchError {
    if matches!(error, ureq::Error::Timeout(_)) {
        return FetchError::TimedOut {
            url: target.shown.clone(),
            timeout: opts.timeout,
        };
    }
    // rustls's verdict reaches us only as text inside an I/O error.
    if error.to_string().contains("certificate") {
        return FetchError::Untrusted {
            url: target.shown.clone(),
            source: error,
        };
    }
    FetchError::Transport {
        url: target.shown.clone(),
        source: error,
    }
}

fn read_error(target: &Target, bytes: u64, error: io::Error, opts: &FetchOptions) -> FetchError {
    let timed_out = error.kind() == io::ErrorKind::TimedOut
        || error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<ureq::Error>())
            .is_some_and(|e| matches!(e, ureq::Error::Timeout(_)));
    if timed_out {
        return FetchError::TimedOut {
            url: target.shown.clone(),
            timeout: opts.timeout,
        };
    }
    FetchError::BrokenOff {
        url: target.shown.clone(),
        bytes,
        source: error,
    }
}

fn content_length<B>(response: &ureq::http::Response<B>) -> Option<u64> {
    response
        .headers()
        .get("content-length")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn parse_sha256(value: &str) -> Result<String, FetchError> {
    let value = value.trim();
    if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(FetchError::BadChecksum {
            value: value.to_owned(),
        })
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The URL without its query string or fragment, and without any user info.
fn redact(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let url = &url[..end];
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// The SHA-256 of a file, read in chunks, in lowercase hex.
pub fn file_sha256(path: &Path) -> io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; COPY_CHUNK];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_may_use_plain_http() {
        for host in ["127.0.0.1", "127.8.9.10", "[::1]", "localhost", "LocalHost"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "example.com",
            "10.0.0.1",
            "[::2]",
            "localhost.example.com",
            "0.0.0.0",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn urls_in_messages_lose_their_signature() {
        assert_eq!(
            redact("https://b.s3.amazonaws.com/k.zip?X-Amz-Signature=abc&X-Amz-Credential=x"),
            "https://b.s3.amazonaws.com/k.zip"
        );
        assert_eq!(
            redact("http://user:pw@127.0.0.1:9000/b/k"),
            "http://127.0.0.1:9000/b/k"
        );
    }

    #[test]
    fn s3_error_documents_give_their_code_and_message() {
        let xml = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code>\
                   <Message>Request has expired &amp; more</Message></Error>";
        assert_eq!(xml_element(xml, "Code").as_deref(), Some("AccessDenied"));
        assert_eq!(
            xml_element(xml, "Message").as_deref(),
            Some("Request has expired & more")
        );
        assert_eq!(xml_element("not xml", "Code"), None);
    }

    #[test]
    fn checksums_are_64_hex_digits_in_either_case() {
        let upper = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        assert_eq!(parse_sha256(upper).unwrap(), upper.to_ascii_lowercase());
        assert!(matches!(
            parse_sha256("abc"),
            Err(FetchError::BadChecksum { .. })
        ));
    }
}
