//! A stand-in for AWS Lambda on loopback: it runs a real function binary as a child process and
//! serves it the Lambda Runtime API, one invocation at a time, replacing the process when it dies.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::convert::Infallible;
use std::ffi::{OsStr, OsString};
use std::fs::OpenOptions;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

/// The region every function is told it runs in.
pub const REGION: &str = "us-east-1";
/// The account id in the ARNs the harness makes up (moto's default account).
pub const ACCOUNT: &str = "123456789012";
/// How long an invocation may run when the caller does not say (Lambda's own default is 3 s; the
/// harness is generous because the test machine may be loaded).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How many lines of the function's log an invocation error quotes.
const LOG_TAIL_LINES: usize = 40;

/// A Lambda function: a real binary run the way Lambda runs it, with its own Runtime API endpoint.
///
/// One process (a "sandbox") serves one invocation at a time. When the process exits, crashes, is
/// killed or times out, the invocation in progress fails and the next invocation starts a new
/// process, as Lambda replaces a broken sandbox. Everything the process prints goes to a log file
/// ([`Function::logs`]), which is printed when the test panics while the function is alive.
/// Dropping the function kills its process.
///
/// [`Function::invoke`] must be called from a Tokio runtime with time enabled (`#[tokio::test]`
/// is fine); the Runtime API itself is served from the harness's own runtime.
#[derive(Debug)]
pub struct Function {
    name: String,
    binary: PathBuf,
    env: Vec<(OsString, OsString)>,
    /// Holds the log until the function is dropped.
    _log_dir: tempfile::TempDir,
    log_path: PathBuf,
    sandbox: Mutex<Option<Sandbox>>,
    one_at_a_time: tokio::sync::Mutex<()>,
    kill_plan: Mutex<Option<(u32, KillAt)>>,
    timeout: Mutex<Duration>,
    starts: AtomicU64,
    invocations: AtomicU64,
}

/// When [`Function::kill_during_invocation`] kills the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillAt {
    /// As the function takes the event from the Runtime API, before it can start on it.
    Delivery,
    /// Once the function has had the event for this long, if it is still working on it.
    After(Duration),
    /// As the function reports its result: the work is done, but the result never arrives.
    Result,
}

/// Why an invocation did not return the function's JSON answer.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    /// The function reported an error (`POST .../error`): Lambda's "Unhandled" function error.
    #[error("{function} returned an error: {error_type}: {message}")]
    Function {
        function: String,
        error_type: String,
        message: String,
        /// The error document the function sent (`errorType`, `errorMessage`, ...).
        body: Value,
    },
    /// The process exited or was killed before it answered.
    #[error("{function} exited ({status}) before it answered{}\n{logs}", init_error.as_ref().map(|e| format!("; its init error: {e}")).unwrap_or_default())]
    Crashed {
        function: String,
        status: String,
        /// What the function sent to `POST /runtime/init/error`, if it did.
        init_error: Option<Value>,
        /// The end of the function's log.
        logs: String,
    },
    /// The function did not answer in time; the harness killed the process.
    #[error("{function} did not answer within {timeout:?}, so it was killed\n{logs}")]
    Timeout {
        function: String,
        timeout: Duration,
        /// The end of the function's log.
        logs: String,
    },
    /// The function answered with a body that is not JSON.
    #[error("{function} answered with something that is not JSON ({error}): {body}")]
    NotJson {
        function: String,
        body: String,
        error: String,
    },
    /// The process could not be started.
    #[error("{function} could not be started from {}: {error}", binary.display())]
    Start {
        function: String,
        binary: PathBuf,
        error: String,
    },
}

impl Function {
    /// Starts `binary` as a Lambda function named after the binary's file name, with the standard
    /// Lambda environment (`AWS_LAMBDA_RUNTIME_API` and the rest) plus `env`, which wins over it.
    /// The process gets no other environment variables than `PATH`, `RUST_LOG` and
    /// `RUST_BACKTRACE`; `AWS_EC2_METADATA_DISABLED=true` keeps the SDK away from the instance
    /// metadata service.
    ///
    /// Panics when the binary cannot be started.
    pub fn start<K: AsRef<OsStr>, V: AsRef<OsStr>>(binary: &Path, env: &[(K, V)]) -> Function {
        let name = binary
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| panic!("{} does not name a binary", binary.display()));
        let log_dir = tempfile::Builder::new()
            .prefix(&format!("cutover-function-{name}-"))
            .tempdir()
            .expect("a temporary directory for the function's log");
        let log_path = log_dir.path().join(format!("{name}.log"));
        let function = Function {
            name,
            binary: binary.to_path_buf(),
            env: env
                .iter()
                .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
                .collect(),
            _log_dir: log_dir,
            log_path,
            sandbox: Mutex::new(None),
            one_at_a_time: tokio::sync::Mutex::new(()),
            kill_plan: Mutex::new(None),
            timeout: Mutex::new(DEFAULT_TIMEOUT),
            starts: AtomicU64::new(0),
            invocations: AtomicU64::new(0),
        };
        if let Err(error) = function.ensure_sandbox() {
            panic!("{error}");
        }
        function
    }

    /// The function's name (`AWS_LAMBDA_FUNCTION_NAME`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The function's ARN, as the Runtime API tells it.
    pub fn arn(&self) -> String {
        format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}", self.name)
    }

    /// Where the function's output goes (both streams, every process in turn).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the function's processes have printed so far, with a marker line where each
    /// process starts.
    pub fn logs(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The timeout of event-source invocations ([`DEFAULT_TIMEOUT`] until set).
    pub fn timeout(&self) -> Duration {
        *lock(&self.timeout)
    }

    /// Sets the timeout of event-source invocations.
    pub fn set_timeout(&self, timeout: Duration) {
        *lock(&self.timeout) = timeout;
    }

    /// How many processes have been started (the first one and every replacement).
    pub fn starts(&self) -> u64 {
        self.starts.load(Ordering::SeqCst)
    }

    /// How many invocations have been started.
    pub fn invocations(&self) -> u64 {
        self.invocations.load(Ordering::SeqCst)
    }

    /// The Runtime API address of the current process, if one is running.
    pub fn runtime_api(&self) -> Option<SocketAddr> {
        lock(&self.sandbox).as_ref().map(|sandbox| sandbox.address)
    }

    /// Kills the current process now (SIGKILL). An invocation in progress fails; the next one
    /// starts a new process.
    pub fn kill(&self) {
        if let Some(sandbox) = lock(&self.sandbox).as_ref() {
            let mut child = lock(&sandbox.child);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the process while it handles the next invocation, as it reports its result (the
    /// work is done, the result is lost, the invocation fails).
    pub fn kill_during_next_invocation(&self) {
        self.kill_during_invocation(1, KillAt::Result);
    }

    /// Kills the process during the `nth` invocation from now (1 is the next one), at `at`.
    /// A later call replaces an earlier plan that has not happened yet.
    pub fn kill_during_invocation(&self, nth: u32, at: KillAt) {
        assert!(nth >= 1, "invocations are counted from 1");
        *lock(&self.kill_plan) = Some((nth, at));
    }

    /// Invokes the function with `payload` and waits up to `timeout` for its answer, as Lambda's
    /// synchronous `Invoke` does. Invocations wait for each other: one process handles one
    /// invocation at a time. On a timeout the process is killed, as Lambda does.
    pub async fn invoke(
        &self,
        payload: Value,
        timeout: Duration,
    ) -> Result<Value, InvocationError> {
        let _turn = self.one_at_a_time.lock().await;
        self.invocations.fetch_add(1, Ordering::SeqCst);
        let kill_at = self.planned_kill();
        let (child, events) = self.ensure_sandbox()?;

        let (reply, answer) = oneshot::channel();
        let deadline = now_millis() + timeout.as_millis() as u64;
        let event = Event {
            id: request_id(),
            payload: Bytes::from(serde_json::to_vec(&payload).expect("JSON serializes")),
            deadline,
            kill_at,
            reply,
        };
        if events.send(event).is_err() {
            // The Runtime API of this process is gone: the process is being replaced.
            return Err(self.crashed(&child).await);
        }

        let outcome = tokio::select! {
            biased;
            answer = answer => answer.ok(),
            _ = wait_exit(&child) => None,
            _ = tokio::time::sleep(timeout) => {
                self.stop_sandbox(&child);
                return Err(InvocationError::Timeout {
                    function: self.name.clone(),
                    timeout,
                    logs: self.log_tail(),
                });
            }
        };
        match outcome {
            Some(Outcome::Response(body)) => {
                serde_json::from_slice(&body).map_err(|error| InvocationError::NotJson {
                    function: self.name.clone(),
                    body: String::from_utf8_lossy(&body).into_owned(),
                    error: error.to_string(),
                })
            }
            Some(Outcome::Error { error_type, body }) => {
                let document: Value = serde_json::from_slice(&body)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
                let field = |name: &str| document.get(name).and_then(Value::as_str);
                Err(InvocationError::Function {
                    function: self.name.clone(),
                    error_type: field("errorType").unwrap_or(&error_type).to_owned(),
                    message: field("errorMessage").unwrap_or_default().to_owned(),
                    body: document,
                })
            }
            None => Err(self.crashed(&child).await),
        }
    }

    /// Takes one step of the kill plan: the kill point of this invocation, if it is the one.
    fn planned_kill(&self) -> Option<KillAt> {
        let mut plan = lock(&self.kill_plan);
        match *plan {
            Some((1, at)) => {
                *plan = None;
                Some(at)
            }
            Some((n, at)) => {
                *plan = Some((n - 1, at));
                None
            }
            None => None,
        }
    }

    /// The invocation error for a process that died: waits for its exit status, then drops it.
    async fn crashed(&self, child: &Arc<Mutex<Child>>) -> InvocationError {
        let status = tokio::time::timeout(Duration::from_secs(5), wait_exit(child))
            .await
            .map(|status| status.to_string())
            .unwrap_or_else(|_| "still running, so killed".to_owned());
        let init_error = lock(&self.sandbox)
            .as_ref()
            .filter(|sandbox| Arc::ptr_eq(&sandbox.child, child))
            .and_then(|sandbox| lock(&sandbox.api.init_error).clone());
        self.stop_sandbox(child);
        InvocationError::Crashed {
            function: self.name.clone(),
            status,
            init_error,
            logs: self.log_tail(),
        }
    }

    /// Stops the sandbox whose process is `child`, if it is still the current one.
    fn stop_sandbox(&self, child: &Arc<Mutex<Child>>) {
        let mut sandbox = lock(&self.sandbox);
        if sandbox
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(&current.child, child))
        {
            *sandbox = None;
        }
    }

    /// The current process (started if there is none or it has exited) and its event channel.
    #[allow(clippy::type_complexity)]
    fn ensure_sandbox(
        &self,
    ) -> Result<(Arc<Mutex<Child>>, mpsc::UnboundedSender<Event>), InvocationError> {
        let mut current = lock(&self.sandbox);
        if let Some(sandbox) = current.as_ref() {
            let exited = lock(&sandbox.child).try_wait().ok().flatten();
            match exited {
                None => return Ok((sandbox.child.clone(), sandbox.events.clone())),
                Some(status) => self.note(&format!("the process exited ({status})")),
            }
        }
        *current = None;
        let sandbox = self.spawn().map_err(|error| InvocationError::Start {
            function: self.name.clone(),
            binary: self.binary.clone(),
            error: error.to_string(),
        })?;
        let handles = (sandbox.child.clone(), sandbox.events.clone());
        *current = Some(sandbox);
        Ok(handles)
    }

    /// Starts a process with a Runtime API endpoint of its own.
    fn spawn(&self) -> std::io::Result<Sandbox> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let start = self.starts.fetch_add(1, Ordering::SeqCst) + 1;
        self.note(&format!(
            "starting process #{start} of {} (Runtime API {address})",
            self.name
        ));
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)?;

        let mut command = Command::new(&self.binary);
        command
            .env_clear()
            .envs(self.lambda_env(address))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(dir) = self.binary.parent() {
            command.current_dir(dir);
        }
        let child = Arc::new(Mutex::new(command.spawn()?));

        let (events, queue) = mpsc::unbounded_channel();
        let api = Arc::new(Api {
            events: tokio::sync::Mutex::new(queue),
            in_flight: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
            child: child.clone(),
            arn: self.arn(),
        });
        let server = {
            let runtime = harness_runtime();
            let _context = runtime.enter();
            let listener = tokio::net::TcpListener::from_std(listener)?;
            runtime.spawn(serve(listener, api.clone()))
        };
        Ok(Sandbox {
            child,
            events,
            api,
            server,
            address,
        })
    }

    /// The environment Lambda gives a function process.
    fn lambda_env(&self, address: SocketAddr) -> Vec<(String, String)> {
        let name = &self.name;
        let mut env = vec![
            ("AWS_LAMBDA_RUNTIME_API".to_owned(), address.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME".to_owned(), name.clone()),
            (
                "AWS_LAMBDA_FUNCTION_VERSION".to_owned(),
                "$LATEST".to_owned(),
            ),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(),
                "128".to_owned(),
            ),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME".to_owned(),
                format!("/aws/lambda/{name}"),
            ),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME".to_owned(),
                format!("{}/[$LATEST]{:016x}", today(), random_u64()),
            ),
            (
                "AWS_LAMBDA_INITIALIZATION_TYPE".to_owned(),
                "on-demand".to_owned(),
            ),
            (
                "AWS_EXECUTION_ENV".to_owned(),
                "AWS_Lambda_provided.al2023".to_owned(),
            ),
            ("AWS_REGION".to_owned(), REGION.to_owned()),
            ("AWS_DEFAULT_REGION".to_owned(), REGION.to_owned()),
            ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
            ("TZ".to_owned(), ":UTC".to_owned()),
        ];
        if let Some(dir) = self.binary.parent() {
            env.push((
                "LAMBDA_TASK_ROOT".to_owned(),
                dir.to_string_lossy().into_owned(),
            ));
        }
        for inherited in ["PATH", "RUST_LOG", "RUST_BACKTRACE"] {
            if let Ok(value) = std::env::var(inherited) {
                env.push((inherited.to_owned(), value));
            }
        }
        env
    }

    /// Writes a harness line into the function's log.
    fn note(&self, line: &str) {
        if let Ok(mut log) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
        {
            let _ = writeln!(log, "--- cutover test harness: {line} ---");
        }
    }

    /// The last lines of the function's log.
    fn log_tail(&self) -> String {
        let logs = self.logs();
        let lines: Vec<&str> = logs.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        format!(
            "last lines of {} ({}):\n{}",
            self.name,
            self.log_path.display(),
            tail.join("\n")
        )
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        lock(&self.sandbox).take();
        if std::thread::panicking() {
            eprintln!(
                "--- logs of the function {} ({}) ---\n{}--- end of the logs of {} ---",
                self.name,
                self.log_path.display(),
                self.logs(),
                self.name
            );
        }
    }
}

/// One process and its Runtime API endpoint. Dropping it kills the process and closes the
/// endpoint, so that nothing of it can take a later invocation.
#[derive(Debug)]
struct Sandbox {
    child: Arc<Mutex<Child>>,
    events: mpsc::UnboundedSender<Event>,
    api: Arc<Api>,
    server: JoinHandle<()>,
    address: SocketAddr,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        {
            let mut child = lock(&self.child);
            let _ = child.kill();
            let _ = child.wait();
        }
        self.server.abort();
    }
}

/// An invocation on its way to the function.
#[derive(Debug)]
struct Event {
    id: String,
    payload: Bytes,
    deadline: u64,
    kill_at: Option<KillAt>,
    reply: oneshot::Sender<Outcome>,
}

/// An invocation the function has taken and not answered yet.
#[derive(Debug)]
struct InFlight {
    kill_at: Option<KillAt>,
    reply: oneshot::Sender<Outcome>,
}

/// What the function answered.
#[derive(Debug)]
enum Outcome {
    Response(Bytes),
    Error { error_type: String, body: Bytes },
}

/// The Runtime API state of one process.
#[derive(Debug)]
struct Api {
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<Event>>,
    in_flight: Mutex<HashMap<String, InFlight>>,
    init_error: Mutex<Option<Value>>,
    child: Arc<Mutex<Child>>,
    arn: String,
}

impl Api {
    fn kill(&self) {
        let _ = lock(&self.child).kill();
    }
}

/// The runtime that serves every function's Runtime API, whatever runtime the test uses.
fn harness_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("lambda-runtime-api")
            .enable_all()
            .build()
            .expect("the harness starts its Tokio runtime")
    })
}

/// Accepts the function's connections until aborted, which drops them all.
async fn serve(listener: tokio::net::TcpListener, api: Arc<Api>) {
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let api = api.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| handle(api.clone(), request));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type HttpResponse = Response<Full<Bytes>>;

/// One Runtime API request.
async fn handle(api: Arc<Api>, request: Request<Incoming>) -> Result<HttpResponse, Infallible> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let response = match (&method, segments.as_slice()) {
        (&Method::GET, ["2018-06-01", "runtime", "invocation", "next"]) => next(&api).await,
        (&Method::POST, ["2018-06-01", "runtime", "invocation", id, "response"]) => {
            match body(request).await {
                Ok(body) => complete(&api, id, Outcome::Response(body)),
                Err(response) => response,
            }
        }
        (&Method::POST, ["2018-06-01", "runtime", "invocation", id, "error"]) => {
            let error_type = request
                .headers()
                .get("lambda-runtime-function-error-type")
                .and_then(|value| value.to_str().ok())
                .unwrap_or("Unhandled")
                .to_owned();
            match body(request).await {
                Ok(body) => complete(&api, id, Outcome::Error { error_type, body }),
                Err(response) => response,
            }
        }
        (&Method::POST, ["2018-06-01", "runtime", "init", "error"]) => match body(request).await {
            Ok(body) => {
                let document = serde_json::from_slice(&body)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
                *lock(&api.init_error) = Some(document);
                // Lambda does not keep a sandbox whose initialization failed.
                api.kill();
                accepted()
            }
            Err(response) => response,
        },
        _ => json_response(
            StatusCode::NOT_FOUND,
            &json!({
                "errorType": "NotFound",
                "errorMessage": format!("the Runtime API has no {method} {path}"),
            }),
        ),
    };
    Ok(response)
}

/// `GET /runtime/invocation/next`: waits for the next event and hands it over.
async fn next(api: &Arc<Api>) -> HttpResponse {
    let event = api.events.lock().await.recv().await;
    let Some(event) = event else {
        // The function is being stopped; it will not call again.
        return json_response(
            StatusCode::GONE,
            &json!({"errorType": "Gone", "errorMessage": "the function is stopping"}),
        );
    };
    let Event {
        id,
        payload,
        deadline,
        kill_at,
        reply,
    } = event;
    lock(&api.in_flight).insert(id.clone(), InFlight { kill_at, reply });
    match kill_at {
        Some(KillAt::Delivery) => api.kill(),
        Some(KillAt::After(delay)) => {
            let api = api.clone();
            let id = id.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if lock(&api.in_flight).contains_key(&id) {
                    api.kill();
                }
            });
        }
        Some(KillAt::Result) | None => {}
    }
    let mut response = Response::new(Full::new(payload));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut header = |name: &'static str, value: String| {
        headers.insert(
            name,
            HeaderValue::from_str(&value).expect("a valid header value"),
        );
    };
    header("lambda-runtime-aws-request-id", id);
    header("lambda-runtime-deadline-ms", deadline.to_string());
    header("lambda-runtime-invoked-function-arn", api.arn.clone());
    header("lambda-runtime-trace-id", trace_id());
    response
}

/// `POST /runtime/invocation/{id}/response` and `.../error`.
fn complete(api: &Api, id: &str, outcome: Outcome) -> HttpResponse {
    let Some(in_flight) = lock(&api.in_flight).remove(id) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({
                "errorType": "InvalidRequestID",
                "errorMessage": format!("no invocation {id} is in progress"),
            }),
        );
    };
    if in_flight.kill_at == Some(KillAt::Result) {
        // The result is dropped with the process, as if it had died just before sending it.
        api.kill();
        return accepted();
    }
    // The caller may have given up (timeout); then nobody waits for the result.
    let _ = in_flight.reply.send(outcome);
    accepted()
}

/// The whole request body, or the response that says it could not be read.
async fn body(request: Request<Incoming>) -> Result<Bytes, HttpResponse> {
    request
        .into_body()
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|error| {
            json_response(
                StatusCode::BAD_REQUEST,
                &json!({"errorType": "BadRequest", "errorMessage": error.to_string()}),
            )
        })
}

fn accepted() -> HttpResponse {
    json_response(StatusCode::ACCEPTED, &json!({"status": "OK"}))
}

fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Waits until the process has exited, and gives its status.
async fn wait_exit(child: &Mutex<Child>) -> ExitStatus {
    loop {
        if let Ok(Some(status)) = lock(child).try_wait() {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Locks a mutex, ignoring poisoning (a panicking test must still be able to clean up).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// 64 random bits (from the standard library's per-instance random hash keys).
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish()
}

/// A request id shaped like Lambda's (a UUID).
fn request_id() -> String {
    cutover_aws::engine::ids::uuid()
}

/// An X-Ray trace header shaped like Lambda's.
fn trace_id() -> String {
    let seconds = now_millis() / 1000;
    format!(
        "Root=1-{seconds:08x}-{:016x}{:08x};Parent={:016x};Sampled=0",
        random_u64(),
        random_u64() as u32,
        random_u64()
    )
}

pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Today's date as `YYYY/MM/DD`, the prefix of Lambda's log stream names.
fn today() -> String {
    let (year, month, day, ..) = crate::events::civil(SystemTime::now());
    format!("{year:04}/{month:02}/{day:02}")
}

// Tests share functions between tasks.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Function>();
};
