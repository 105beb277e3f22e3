//! A Lambda function URL on loopback, in front of a function the harness runs: each HTTP
//! request becomes a function URL event (payload format 2.0, the body base64-encoded as Lambda
//! does for non-text content), and the function's answer becomes the HTTP response.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};

use crate::lambda::Function;

/// How long one request may take the function.
const INVOKE: Duration = Duration::from_secs(30);

/// A function URL serving `function`, on its own thread and runtime so that tests may block
/// on clients (the aws CLI, boto3) while it answers them. Dropping it stops it.
#[derive(Debug)]
pub struct FunctionUrl {
    addr: SocketAddr,
    pub function: Arc<Function>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for FunctionUrl {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl FunctionUrl {
    pub fn start(function: Arc<Function>) -> FunctionUrl {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let served = function.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for the function URL");
            runtime.block_on(async {
                tokio::select! {
                    () = serve(listener, served) => {}
                    _ = stopped => {}
                }
            });
        });
        FunctionUrl {
            addr,
            function,
            stop: Some(stop),
        }
    }

    /// The URL clients are pointed at: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn serve(listener: std::net::TcpListener, function: Arc<Function>) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let function = function.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let function = function.clone();
                async move { Ok::<_, Infallible>(answer(&function, request, peer).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    function: &Function,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return plain(StatusCode::BAD_REQUEST, "the body could not be read");
    };
    let event = url_event(&parts, &body, peer);
    match function.invoke(event, INVOKE).await {
        Ok(answer) => response(&answer),
        // Lambda answers a function error with 502 and no detail.
        Err(e) => plain(
            StatusCode::BAD_GATEWAY,
            &format!("Internal Server Error: {e}"),
        ),
    }
}

/// The event Lambda sends for a function URL request.
pub fn url_event(parts: &hyper::http::request::Parts, body: &[u8], peer: SocketAddr) -> Value {
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            Some(Value::String(joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let path = parts.uri.path();
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": parts.uri.query().unwrap_or(""),
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "cutovertest",
            "domainName": "cutovertest.lambda-url.us-east-1.on.aws",
            "domainPrefix": "cutovertest",
            "http": {
                "method": parts.method.as_str(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(),
                "userAgent": parts.headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or(""),
            },
            "requestId": format!("{:032x}", now.as_nanos()),
            "routeKey": "$default",
            "stage": "$default",
            "time": "",
            "timeEpoch": now.as_millis() as u64,
        },
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true,
    })
}

/// The HTTP response a function URL makes of the function's answer.
fn response(answer: &Value) -> Response<Full<Bytes>> {
    let status = answer["statusCode"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::OK);
    let text = answer["body"].as_str().unwrap_or("");
    let body = if answer["isBase64Encoded"].as_bool() == Some(true) {
        match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(bytes) => bytes,
            Err(_) => return plain(StatusCode::BAD_GATEWAY, "the function's body is not base64"),
        }
    } else {
        text.as_bytes().to_vec()
    };
    let mut out = Response::new(Full::new(Bytes::from(body)));
    *out.status_mut() = status;
    if let Some(headers) = answer["headers"].as_object() {
        for (name, value) in headers {
            if let (Ok(name), Some(Ok(value))) = (
                hyper::header::HeaderName::from_bytes(name.as_bytes()),
                value.as_str().map(hyper::header::HeaderValue::from_str),
            ) {
                out.headers_mut().insert(name, value);
            }
        }
    }
    out
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut out = Response::new(Full::new(Bytes::from(text.to_owned())));
    *out.status_mut() = status;
    out
}
