//! Downloading bundles from servers started here, on 127.0.0.1 only: plain HTTP as an emulator
//! serves it, and HTTPS with a certificate made for the test and trusted through `extra_ca_pem`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use cutover_agent::fetch::{Downloaded, FetchError, FetchOptions, download};
use cutover_core::digest::sha256_hex;

const BUNDLE: &[u8] = b"PK\x05\x06 not really a zip, but bytes to check";

fn opts() -> FetchOptions {
    FetchOptions {
        max_bytes: 1 << 20,
        extra_ca_pem: None,
        timeout: Duration::from_secs(10),
    }
}

fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// A body that ends when the connection closes, so only counting can stop it.
fn close_delimited(body: &[u8]) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
    out.extend_from_slice(body);
    out
}

/// Reads a request's head and returns its first line.
fn read_request(stream: impl Read) -> String {
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    reader.read_line(&mut first).unwrap_or_default();
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 2 {
        line.clear();
    }
    first.trim_end().to_owned()
}

/// Serves one canned response per connection on 127.0.0.1; returns the base URL and a handle
/// that yields the request lines seen.
fn serve(responses: Vec<Vec<u8>>) -> (String, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = thread::spawn(move || {
        let mut seen = Vec::new();
        for response in responses {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            seen.push(read_request(&mut stream));
            // The client may hang up early (over its limit); that is what some tests want.
            let _ = stream.write_all(&response);
        }
        seen
    });
    (base, handle)
}

fn assert_nothing_left(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_bundle_is_downloaded_and_its_checksum_checked_in_either_case() {
    let sum = sha256_hex(BUNDLE);
    for expected in [sum.clone(), sum.to_uppercase()] {
        let (base, server) = serve(vec![response("200 OK", &[], BUNDLE)]);
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("d/bundle.tar");
        let got = download(
            &format!("{base}/bucket/key.zip?X-Amz-Signature=abc"),
            &dest,
            Some(&expected),
            &opts(),
        )
        .unwrap();
        assert_eq!(
            got,
            Downloaded {
                bytes: BUNDLE.len() as u64,
                sha256: sum.clone()
            }
        );
        assert_eq!(std::fs::read(&dest).unwrap(), BUNDLE);
        assert_eq!(
            server.join().unwrap(),
            ["GET /bucket/key.zip?X-Amz-Signature=abc HTTP/1.1"]
        );
        let names: Vec<_> = std::fs::read_dir(tmp.path().join("d"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["bundle.tar"], "no temporary file is left");
    }
}

#[test]
fn a_checksum_mismatch_names_both_sums_and_leaves_no_file() {
    let (base, _server) = serve(vec![response("200 OK", &[], BUNDLE)]);
    let tmp = tempfile::tempdir().unwrap();
    let wrong = "0".repeat(64);
    let err = download(
        &format!("{base}/b/k"),
        &tmp.path().join("bundle"),
        Some(&wrong),
        &opts(),
    )
    .unwrap_err();
    assert!(matches!(err, FetchError::ChecksumMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&wrong) && msg.contains(&sha256_hex(BUNDLE)),
        "{msg}"
    );
    assert_nothing_left(tmp.path());
}

#[test]
fn a_403_with_an_s3_error_says_the_status_code_and_message() {
    let body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
                 <Message>Request has expired</Message><RequestId>1</RequestId></Error>";
    let (base, _server) = serve(vec![response(
        "403 Forbidden",
        &[("Content-Type", "application/xml")],
        body,
    )]);
    let tmp = tempfile::tempdir().unwrap();
    let err = download(
        &format!("{base}/b/k?X-Amz-Credential=secret"),
        &tmp.path().join("bundle"),
        None,
        &opts(),
    )
    .unwrap_err();
    match &err {
        FetchError::Status {
            status,
            code,
            message,
            ..
        } => {
            assert_eq!(*status, 403);
            assert_eq!(code.as_deref(), Some("AccessDenied"));
            assert_eq!(message.as_deref(), Some("Request has expired"));
        }
        other => panic!("expected a status error, got {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("HTTP 403 Forbidden: AccessDenied: Request has expired"),
        "{msg}"
    );
    assert!(
        !msg.contains("secret"),
        "the query string is left out: {msg}"
    );
    assert_nothing_left(tmp.path());
}

#[test]
fn a_download_over_the_size_limit_is_stopped_and_deleted() {
    let big = vec![b'x'; 200_000];
    let limited = FetchOptions {
        max_bytes: 50_000,
        ..opts()
    };
    // Refused from its Content-Length, and, without one, by counting as it streams in.
    for canned in [response("200 OK", &[], &big), close_delimited(&big)] {
        let (base, _server) = serve(vec![canned]);
        let tmp = tempfile::tempdir().unwrap();
        let err = download(
            &format!("{base}/b/k"),
            &tmp.path().join("bundle"),
            None,
            &limited,
        )
        .unwrap_err();
        assert!(
            matches!(err, FetchError::TooLarge { limit: 50_000, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("max_bytes"), "{err}");
        assert_nothing_left(tmp.path());
    }
}

#[test]
fn plain_http_to_another_host_is_refused_before_connecting() {
    let tmp = tempfile::tempdir().unwrap();
    for url in [
        "http://example.com/bucket/key.zip",
        "http://10.0.0.1/bucket/key.zip",
        "http://[::ffff:127.0.0.1]/k",
    ] {
        let err = download(url, &tmp.path().join("bundle"), None, &opts()).unwrap_err();
        assert!(matches!(err, FetchError::InsecureUrl { .. }), "{err}");
        assert!(err.to_string().contains("use an https:// URL"), "{err}");
    }
    for url in ["ftp://127.0.0.1/k", "not a url", "/just/a/path"] {
        let err = download(url, &tmp.path().join("bundle"), None, &opts()).unwrap_err();
        assert!(matches!(err, FetchError::BadUrl { .. }), "{url}: {err}");
    }
    let err = download(
        "https://127.0.0.1:1/k",
        &tmp.path().join("b"),
        Some("abc"),
        &opts(),
    )
    .unwrap_err();
    assert!(matches!(err, FetchError::BadChecksum { .. }), "{err}");
    assert_nothing_left(tmp.path());
}

#[test]
fn redirects_are_followed_under_the_same_rule() {
    let (base, server) = serve(vec![
        response("307 Temporary Redirect", &[("Location", "/moved/key")], b""),
        response("200 OK", &[], BUNDLE),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let got = download(
        &format!("{base}/b/k"),
        &tmp.path().join("bundle"),
        None,
        &opts(),
    )
    .unwrap();
    assert_eq!(got.bytes, BUNDLE.len() as u64);
    assert_eq!(
        server.join().unwrap(),
        ["GET /b/k HTTP/1.1", "GET /moved/key HTTP/1.1"]
    );

    // A redirect from an emulator to plain http elsewhere is refused, not followed.
    let (base, _server) = serve(vec![response(
        "302 Found",
        &[("Location", "http://example.com/k")],
        b"",
    )]);
    let err = download(
        &format!("{base}/b/k"),
        &tmp.path().join("other"),
        None,
        &opts(),
    )
    .unwrap_err();
    assert!(matches!(err, FetchError::InsecureUrl { .. }), "{err}");
}

#[test]
fn a_server_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        read_request(&mut stream);
        // Hold the connection until the client gives up.
        let _ = stream.read(&mut [0; 1]);
    });
    let tmp = tempfile::tempdir().unwrap();
    let quick = FetchOptions {
        timeout: Duration::from_millis(300),
        ..opts()
    };
    let err = download(
        &format!("{base}/b/k"),
        &tmp.path().join("bundle"),
        None,
        &quick,
    )
    .unwrap_err();
    assert!(matches!(err, FetchError::TimedOut { .. }), "{err}");
    assert!(err.to_string().contains("raise the timeout"), "{err}");
    server.join().unwrap();
    assert_nothing_left(tmp.path());
}

/// An HTTPS server on 127.0.0.1 with a self-signed certificate; returns its base URL and the
/// certificate as PEM.
fn serve_tls(body: &'static [u8]) -> (String, String, JoinHandle<()>) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let pem = certified.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    let handle = thread::spawn(move || {
        // One client that does not trust the certificate, then one that does.
        for _ in 0..2 {
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            serve_one_tls(&config, tcp, body);
        }
    });
    (base, pem, handle)
}

fn serve_one_tls(config: &Arc<rustls::ServerConfig>, tcp: TcpStream, body: &[u8]) {
    let conn = rustls::ServerConnection::new(Arc::clone(config)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let request = read_request(&mut tls);
    if request.is_empty() {
        return; // the handshake failed
    }
    let _ = tls.write_all(&response("200 OK", &[], body));
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

#[test]
fn https_with_a_private_ca_works_when_given_as_extra_ca_pem() {
    let (base, pem, server) = serve_tls(BUNDLE);
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("{base}/bucket/key.zip");

    let err = download(&url, &tmp.path().join("untrusted"), None, &opts()).unwrap_err();
    assert!(matches!(err, FetchError::Untrusted { .. }), "{err}");
    assert!(err.to_string().contains("extra_ca_pem"), "{err}");

    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, &pem).unwrap();
    let trusting = FetchOptions {
        extra_ca_pem: Some(ca),
        ..opts()
    };
    let dest = tmp.path().join("bundle");
    let got = download(&url, &dest, Some(&sha256_hex(BUNDLE)), &trusting).unwrap();
    assert_eq!(got.bytes, BUNDLE.len() as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), BUNDLE);
    server.join().unwrap();
}

#[test]
fn an_extra_ca_file_without_certificates_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate").unwrap();
    let bad = FetchOptions {
        extra_ca_pem: Some(ca.clone()),
        ..opts()
    };
    let err = download("https://127.0.0.1:1/k", &tmp.path().join("b"), None, &bad).unwrap_err();
    assert!(matches!(err, FetchError::ExtraCa { .. }), "{err}");
    assert!(err.to_string().contains("ca.pem"), "{err}");
}
