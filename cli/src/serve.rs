//! `cutover serve`: CodeDeploy's API over HTTP on this machine, backed by the local store, for
//! the aws CLI, boto3 and the SDKs with an endpoint setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::Args;
use cutover_api::wire::MAX_BODY;
use cutover_api::{AccessKey, Api, ApiError, ApiRequest, ApiResponse, ErrorKind};
use cutover_core::DeploymentId;
use cutover_engine::Engine;
use cutover_engine::ids::entropy;
use cutover_local::driver::DriveEvents;
use cutover_local::{LocalPorts, LocalStore};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use crate::Outcome;
use crate::local::StateDir;

/// The file in the state directory that holds the key pair `serve` made.
const KEYS_FILE: &str = "api-keys.json";

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    state: StateDir,
    /// The address to listen on. Anything but a loopback address exposes the API to the network
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:7447")]
    listen: SocketAddr,
}

/// The API over the local store, with the engine that carries out what it asks.
type LocalApi = Api<LocalStore, Arc<Engine<LocalPorts>>>;

pub fn run(args: ServeArgs) -> anyhow::Result<Outcome> {
    let dir = args.state.path()?;
    let store = Arc::new(LocalStore::open(&dir)?);
    let keys = keys(&dir)?;
    let engine = Arc::new(Engine::new(LocalPorts::new(store.clone(), &dir)));
    spawn_driver(engine.clone())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(Api::new(store, engine, keys), args.listen))?;
    Ok(Outcome::Done)
}

/// Drives, on a thread of its own, the deployments this process takes on: those whose
/// process is gone, and the steps queued for them (a stop asked through the API, for one).
fn spawn_driver(engine: Arc<Engine<LocalPorts>>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the driver's runtime")?;
    std::thread::Builder::new()
        .name("driver".into())
        .spawn(move || {
            runtime.block_on(async {
                let mut events = Narrator;
                loop {
                    if let Err(e) = cutover_local::drive(&engine, &mut events).await {
                        eprintln!("cutover serve: {e}");
                    }
                    tokio::time::sleep(DRIVER_IDLE).await;
                }
            })
        })
        .context("starting the driver")?;
    Ok(())
}

/// How long the driver rests once nothing is left to drive, before it looks again.
const DRIVER_IDLE: Duration = Duration::from_millis(500);

/// Says on stderr what the driver does on its own.
struct Narrator;

impl DriveEvents for Narrator {
    fn adopted(&mut self, id: &DeploymentId) {
        eprintln!("cutover serve: resuming {id}: the process that ran it is gone");
    }

    fn step_failed(&mut self, id: &DeploymentId, message: &str) {
        eprintln!("cutover serve: deployment {id}: {message}");
    }
}

/// The key pair to accept: `CUTOVER_ACCESS_KEY_ID` and `CUTOVER_SECRET_ACCESS_KEY` if set, else
/// the one in the state directory, made on first start.
fn keys(dir: &Path) -> anyhow::Result<Vec<AccessKey>> {
    if let Some(key) =
        AccessKey::from_env(|name| std::env::var(name).ok()).map_err(anyhow::Error::msg)?
    {
        return Ok(vec![key]);
    }
    let path = dir.join(KEYS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => AccessKey::parse_json(&text)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("{} is not a key pair file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = AccessKey {
                access_key_id: format!("AKCU{}", token(16)?),
                secret_access_key: token(40)?,
            };
            write_private(&path, &serde_json::to_vec_pretty(&key)?)?;
            eprintln!(
                "cutover serve: made an access key for the API in {} (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY for clients)",
                path.display()
            );
            Ok(vec![key])
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// `len` characters from [A-Z0-9], drawn from the operating system's random source: about
/// 5.2 bits each, so the 40 of a secret carry over 200.
fn token(len: usize) -> anyhow::Result<String> {
    const ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut out = String::with_capacity(len);
    let mut bytes = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no random source: {e}"))?;
        // 252 is the largest multiple of 36 below 256: larger bytes would favour some letters.
        out.extend(
            bytes
                .iter()
                .filter(|&&b| b < 252)
                .map(|&b| ALPHABET[usize::from(b % 36)] as char)
                .take(len - out.len()),
        );
    }
    Ok(out)
}

/// Writes a file only its owner may read.
fn write_private(path: &PathBuf, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

async fn serve(api: LocalApi, listen: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let bound = listener.local_addr()?;
    println!("cutover serve: CodeDeploy API on http://{bound}");
    if !bound.ip().is_loopback() {
        eprintln!(
            "cutover serve: {bound} is not a loopback address: the API is open to the network (requests still need a signature)"
        );
    }
    let api = Arc::new(api);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted.context("accepting a connection")?,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("cutover serve: stopped");
                return Ok(());
            }
        };
        let api = api.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let api = api.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&api, request).await) }
            });
            // A client that goes away mid-request is no concern of the server's.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(api: &LocalApi, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let response = match Limited::new(body, MAX_BODY).collect().await {
        Ok(body) => {
            let request = ApiRequest {
                method: parts.method.to_string(),
                uri: parts
                    .uri
                    .path_and_query()
                    .map_or("/".to_owned(), |p| p.as_str().to_owned()),
                headers: parts
                    .headers
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.as_str().to_owned(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body: body.to_bytes().to_vec(),
            };
            api.handle(&request, SystemTime::now()).await
        }
        Err(e) => ApiResponse::from(ApiError::new(
            ErrorKind::RequestTooLarge,
            format!(
                "the request body could not be read: {e} (the most cutover accepts is {MAX_BODY} bytes)"
            ),
        )),
    };
    let content_type = hyper::header::HeaderValue::from_static(response.content_type_value());
    let status = hyper::StatusCode::from_u16(response.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = Response::new(Full::new(Bytes::from(response.body)));
    *out.status_mut() = status;
    out.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, content_type);
    let request_id = format!("{:016x}{:016x}", entropy(), entropy());
    if let Ok(v) = hyper::header::HeaderValue::from_str(&request_id) {
        out.headers_mut().insert("x-amzn-requestid", v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_uppercase_letters_and_digits_and_differ() {
        let (a, b) = (token(40).unwrap(), token(40).unwrap());
        assert_eq!(a.len(), 40);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()),
            "{a}"
        );
        assert_ne!(a, b);
    }
}
