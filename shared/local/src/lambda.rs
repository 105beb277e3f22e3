//! AWS Lambda without the SDK: the alias traffic of Lambda deployments ([`LambdaTraffic`]) and
//! the asynchronous invocation of hook functions ([`HookFunctions`]), over Lambda's REST-JSON API
//! (2015-03-31) signed with SigV4, at AWS or at any endpoint that speaks it.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{SignableBody, SigningSettings};
use cutover_core::DeploymentId;
use cutover_core::appspec::{AliasRoute, LambdaFunction};
use cutover_core::model::ErrorInformation;
use cutover_engine::{HookFunctions, LambdaTraffic, PortError};
use serde_json::{Value, json};

use crate::aws_http::{self, AwsAccess};

/// The API version in every path.
const API: &str = "/2015-03-31";

/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A client of Lambda's API, with the credentials, region and endpoint of the usual AWS
/// variables: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`
/// (or `AWS_DEFAULT_REGION`) and `AWS_ENDPOINT_URL_LAMBDA` (or `AWS_ENDPOINT_URL`).
#[derive(Clone, Debug)]
pub struct LambdaApi {
    access: AwsAccess,
    /// Without a trailing slash.
    endpoint: String,
    agent: ureq::Agent,
}

impl LambdaApi {
    /// From the environment; an error saying what to set when there are no credentials.
    pub fn from_env() -> Result<LambdaApi, String> {
        LambdaApi::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// From the variables that `get` reads. Without an endpoint variable, the region's own
    /// endpoint, `https://lambda.{region}.amazonaws.com`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<LambdaApi, String> {
        let Some(access) = AwsAccess::from_lookup(&get) else {
            return Err(
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL_LAMBDA for a Lambda-compatible endpoint) where cutover runs, so that it can shift Lambda aliases and invoke hook functions"
                    .into(),
            );
        };
        let endpoint = aws_http::endpoint_from(&get, "LAMBDA")
            .unwrap_or_else(|| format!("https://lambda.{}.amazonaws.com", access.region));
        Ok(LambdaApi {
            access,
            endpoint,
            agent: aws_http::agent(CALL_TIMEOUT),
        })
    }

    /// The same credentials and region, at `endpoint` (`http://127.0.0.1:5000`, say) whatever
    /// the variables say.
    pub fn with_endpoint(self, endpoint: &str) -> LambdaApi {
        LambdaApi {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            ..self
        }
    }

    /// Where the calls go.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `call` as an HTTP request, signed as of `now`.
    fn signed(&self, call: &Call, now: SystemTime) -> Result<http::Request<Vec<u8>>, String> {
        let body = call
            .body
            .as_ref()
            .map(|b| b.to_string().into_bytes())
            .unwrap_or_default();
        let mut request = http::Request::builder()
            .method(call.method)
            .uri(format!("{}{}", self.endpoint, call.path));
        if call.body.is_some() {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in &call.headers {
            request = request.header(*name, *value);
        }
        let mut request = request
            .body(())
            .map_err(|e| format!("{} makes no request: {e}", call.what))?;
        self.access.sign(
            "lambda",
            &mut request,
            SignableBody::Bytes(&body),
            SigningSettings::default(),
            now,
        )?;
        Ok(request.map(|()| body))
    }

    /// Makes `call`, blocking; what the API answered.
    fn send(&self, call: &Call) -> Result<Answer, PortError> {
        let request = self
            .signed(call, SystemTime::now())
            .map_err(PortError::permanent)?;
        let mut response = self.agent.run(request).map_err(|e| {
            PortError::transient(format!(
                "Lambda at {} could not be reached for {}: {e}",
                self.endpoint, call.what
            ))
        })?;
        let status = response.status().as_u16();
        let error_type = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.body_mut().read_to_vec().map_err(|e| {
            PortError::transient(format!(
                "Lambda at {} broke off its answer to {}: {e}",
                self.endpoint, call.what
            ))
        })?;
        answer(&call.what, status, error_type.as_deref(), &body)
    }

    /// Makes `call` on a thread that may block.
    async fn call(&self, call: Call) -> Result<Answer, PortError> {
        let api = self.clone();
        tokio::task::spawn_blocking(move || api.send(&call))
            .await
            .unwrap_or_else(|e| {
                Err(PortError::transient(format!(
                    "a call to Lambda did not finish: {e}"
                )))
            })
    }

    /// Points the alias at `version`, with `weight` of its traffic on another version.
    async fn update_alias(
        &self,
        function: &LambdaFunction,
        version: &str,
        weight: Option<(&str, f64)>,
    ) -> Result<(), PortError> {
        match self
            .call(Call::update_alias(function, version, weight))
            .await?
        {
            Answer::Done(_) => Ok(()),
            Answer::NotFound(message) => Err(PortError::permanent(format!(
                "alias '{}' of Lambda function '{}' cannot be updated: {message}",
                function.alias, function.name
            ))),
        }
    }
}

impl LambdaTraffic for LambdaApi {
    async fn check(&self, f: &LambdaFunction) -> Result<Option<ErrorInformation>, PortError> {
        if let Some(problem) = f.versions_problem() {
            return Ok(Some(problem));
        }
        if let Answer::NotFound(_) = self.call(Call::get_function(&f.name, None)).await? {
            return Ok(Some(f.missing_function()));
        }
        for (field, version) in f.versions() {
            let call = Call::get_function(&f.name, Some(version));
            if let Answer::NotFound(_) = self.call(call).await? {
                return Ok(Some(f.missing_version(field, version)));
            }
        }
        let alias = match self.call(Call::get_alias(f)).await? {
            Answer::NotFound(_) => return Ok(Some(f.missing_alias())),
            Answer::Done(alias) => alias,
        };
        let route = route_of(&alias).ok_or_else(|| {
            PortError::permanent(format!(
                "Lambda's answer to GetAlias of alias '{}' of '{}' names no FunctionVersion: {alias}",
                f.alias, f.name
            ))
        })?;
        Ok(f.route_problem(&route))
    }

    async fn shift(&self, f: &LambdaFunction, percent: u8) -> Result<(), PortError> {
        match percent {
            0 => self.update_alias(f, &f.current_version, None).await,
            100.. => self.update_alias(f, &f.target_version, None).await,
            _ => {
                let weight = (f.target_version.as_str(), f64::from(percent) / 100.0);
                self.update_alias(f, &f.current_version, Some(weight)).await
            }
        }
    }

    async fn restore(&self, f: &LambdaFunction) -> Result<(), PortError> {
        self.update_alias(f, &f.current_version, None).await
    }
}

impl HookFunctions for LambdaApi {
    async fn invoke(
        &self,
        function: &str,
        deployment_id: &DeploymentId,
        execution_id: &str,
    ) -> Result<(), PortError> {
        match self
            .call(Call::invoke(function, deployment_id, execution_id))
            .await?
        {
            Answer::Done(_) => Ok(()),
            Answer::NotFound(message) => Err(PortError::permanent(format!(
                "hook function '{function}' cannot be invoked: it does not exist ({message})"
            ))),
        }
    }
}

/// One call of the API, before it is signed.
#[derive(Clone, Debug, PartialEq)]
struct Call {
    /// The operation and what it is about, for messages.
    what: String,
    method: &'static str,
    /// The path and query, percent-encoded.
    path: String,
    headers: Vec<(&'static str, &'static str)>,
    body: Option<Value>,
}

impl Call {
    /// GetFunction, of a version when `qualifier` is given.
    fn get_function(name: &str, qualifier: Option<&str>) -> Call {
        let mut path = function_path(name, "");
        let mut what = format!("GetFunction of '{name}'");
        if let Some(qualifier) = qualifier {
            path.push_str("?Qualifier=");
            path.push_str(&aws_http::percent_encode(qualifier, false));
            what.push_str(&format!(" version {qualifier}"));
        }
        Call {
            what,
            method: "GET",
            path,
            headers: Vec::new(),
            body: None,
        }
    }

    fn get_alias(f: &LambdaFunction) -> Call {
        Call {
            what: format!("GetAlias of alias '{}' of '{}'", f.alias, f.name),
            method: "GET",
            path: alias_path(f),
            headers: Vec::new(),
            body: None,
        }
    }

    /// UpdateAlias to `version`, with `weight` of the traffic on another version, or none.
    fn update_alias(f: &LambdaFunction, version: &str, weight: Option<(&str, f64)>) -> Call {
        let weights: serde_json::Map<String, Value> = weight
            .into_iter()
            .map(|(version, weight)| (version.to_owned(), json!(weight)))
            .collect();
        Call {
            what: format!("UpdateAlias of alias '{}' of '{}'", f.alias, f.name),
            method: "PUT",
            path: alias_path(f),
            headers: Vec::new(),
            body: Some(json!({
                "FunctionVersion": version,
                "RoutingConfig": {"AdditionalVersionWeights": weights},
            })),
        }
    }

    /// Invoke, asynchronously (the `Event` invocation type), with what a hook function of
    /// CodeDeploy receives.
    fn invoke(name: &str, deployment_id: &DeploymentId, execution_id: &str) -> Call {
        Call {
            what: format!("Invoke of hook function '{name}'"),
            method: "POST",
            path: function_path(name, "/invocations"),
            headers: vec![("x-amz-invocation-type", "Event")],
            body: Some(json!({
                "DeploymentId": deployment_id.as_str(),
                "LifecycleEventHookExecutionId": execution_id,
            })),
        }
    }
}

/// The path of a function (a name or an ARN, whose `:` are encoded too), then `rest`.
fn function_path(name: &str, rest: &str) -> String {
    format!(
        "{API}/functions/{}{rest}",
        aws_http::percent_encode(name, false)
    )
}

fn alias_path(f: &LambdaFunction) -> String {
    function_path(
        &f.name,
        &format!("/aliases/{}", aws_http::percent_encode(&f.alias, false)),
    )
}

/// What the API answered, when it is not a failure.
#[derive(Clone, Debug, PartialEq)]
enum Answer {
    /// A success, with its JSON (`null` when there is none).
    Done(Value),
    /// What was asked about does not exist: the service's message.
    NotFound(String),
}

/// Reads an answer: a success, something missing, or a failure that is retryable (the service
/// failed or throttled, or a change is in progress) or not (the request was refused).
fn answer(
    what: &str,
    status: u16,
    error_type: Option<&str>,
    body: &[u8],
) -> Result<Answer, PortError> {
    if (200..300).contains(&status) {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Answer::Done(Value::Null));
        }
        // A function's payload need not be JSON: only the status of an invocation matters.
        return Ok(Answer::Done(
            serde_json::from_slice(body).unwrap_or(Value::Null),
        ));
    }
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|name| json.get(*name).and_then(Value::as_str))
            .map(str::to_owned)
    };
    // `x-amzn-ErrorType` may carry a namespace after a `:`; `__type` one before a `#`.
    let kind = error_type
        .map(|t| t.split(':').next().unwrap_or(t).to_owned())
        .or_else(|| field(&["__type", "code", "Code"]))
        .map(|t| t.rsplit('#').next().unwrap_or(&t).to_owned())
        .unwrap_or_default();
    let message = field(&["message", "Message", "errorMessage"]).unwrap_or_else(|| {
        String::from_utf8_lossy(body)
            .chars()
            .take(300)
            .collect::<String>()
    });
    let said = match (kind.is_empty(), message.trim().is_empty()) {
        (true, true) => format!("HTTP {status}"),
        (true, false) => format!("HTTP {status}: {message}"),
        (false, true) => format!("{kind} (HTTP {status})"),
        (false, false) => format!("{kind}: {message}"),
    };
    // Lambda names what is missing; a bare 404 comes from something else at the endpoint.
    if status == 404 && kind == "ResourceNotFoundException" {
        return Ok(Answer::NotFound(said));
    }
    let retryable = status >= 500
        || status == 429
        || kind.contains("Throttl")
        || kind == "TooManyRequestsException"
        || kind == "ResourceConflictException"
        || kind == "ResourceNotReadyException";
    if retryable {
        Err(PortError::transient(format!(
            "Lambda failed {what}, which will be tried again: {said}"
        )))
    } else {
        Err(PortError::permanent(format!(
            "Lambda refused {what}: {said}"
        )))
    }
}

/// Where an alias sends its traffic, from GetAlias's answer; `None` without a `FunctionVersion`.
fn route_of(alias: &Value) -> Option<AliasRoute> {
    let version = alias.get("FunctionVersion")?.as_str()?;
    let weights = alias
        .pointer("/RoutingConfig/AdditionalVersionWeights")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(v, w)| (v.clone(), w.as_f64().unwrap_or(0.0)));
    Some(AliasRoute::new(version, weights))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_core::model::ErrorCode;

    fn api() -> LambdaApi {
        LambdaApi::from_lookup(|name| match name {
            "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLE".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".into()),
            "AWS_SESSION_TOKEN" => Some("token".into()),
            "AWS_REGION" => Some("eu-west-1".into()),
            _ => None,
        })
        .unwrap()
    }

    fn function(name: &str) -> LambdaFunction {
        LambdaFunction {
            name: name.into(),
            alias: "live".into(),
            current_version: "2".into(),
            target_version: "3".into(),
        }
    }

    #[test]
    fn the_endpoint_is_the_regions_unless_a_variable_or_the_caller_names_another() {
        assert_eq!(api().endpoint(), "https://lambda.eu-west-1.amazonaws.com");
        let api = LambdaApi::from_lookup(|name| match name {
            "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("x".into()),
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:4566/".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(api.endpoint(), "http://127.0.0.1:4566");
        assert_eq!(
            api.with_endpoint("http://127.0.0.1:5000/").endpoint(),
            "http://127.0.0.1:5000"
        );
        let e = LambdaApi::from_lookup(|_| None).unwrap_err();
        assert!(e.contains("AWS_ACCESS_KEY_ID"), "{e}");
    }

    #[test]
    fn paths_encode_function_arns() {
        let arn = "arn:aws:lambda:eu-west-1:123456789012:function:shop";
        assert_eq!(
            Call::get_function(arn, Some("3")).path,
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Ashop?Qualifier=3"
        );
        assert_eq!(
            Call::get_alias(&function("shop")).path,
            "/2015-03-31/functions/shop/aliases/live"
        );
        let id: DeploymentId = "d-A1B2C3D4E".parse().unwrap();
        let call = Call::invoke(arn, &id, "exec-1");
        assert_eq!(
            call.path,
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Ashop/invocations"
        );
        assert_eq!(
            call.body,
            Some(json!({"DeploymentId": "d-A1B2C3D4E", "LifecycleEventHookExecutionId": "exec-1"}))
        );
        assert_eq!(call.headers, [("x-amz-invocation-type", "Event")]);
    }

    #[test]
    fn update_alias_bodies_carry_the_weight_or_clear_it() {
        let f = function("shop");
        assert_eq!(
            Call::update_alias(&f, "2", Some(("3", 0.1))).body,
            Some(json!({
                "FunctionVersion": "2",
                "RoutingConfig": {"AdditionalVersionWeights": {"3": 0.1}},
            }))
        );
        assert_eq!(
            Call::update_alias(&f, "3", None).body,
            Some(json!({
                "FunctionVersion": "3",
                "RoutingConfig": {"AdditionalVersionWeights": {}},
            }))
        );
        assert_eq!(
            Call::update_alias(&f, "2", Some(("3", 0.1)))
                .body
                .unwrap()
                .to_string(),
            r#"{"FunctionVersion":"2","RoutingConfig":{"AdditionalVersionWeights":{"3":0.1}}}"#
        );
    }

    #[test]
    fn requests_are_signed_in_the_header_with_their_own_headers() {
        let id: DeploymentId = "d-A1B2C3D4E".parse().unwrap();
        let call = Call::invoke("arn:aws:lambda:eu-west-1:1:function:f", &id, "e");
        let request = api()
            .signed(
                &call,
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            )
            .unwrap();
        assert_eq!(request.method(), "POST");
        assert_eq!(
            request.uri().to_string(),
            "https://lambda.eu-west-1.amazonaws.com/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A1%3Afunction%3Af/invocations"
        );
        let header = |name: &str| request.headers()[name].to_str().unwrap().to_owned();
        let authorization = header("authorization");
        assert!(
            authorization.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/eu-west-1/lambda/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date;x-amz-invocation-type;x-amz-security-token, \
                 Signature="
            ),
            "{authorization}"
        );
        assert_eq!(header("x-amz-date"), "20231114T221320Z");
        assert_eq!(header("x-amz-security-token"), "token");
        assert_eq!(header("content-type"), "application/json");
        let get = api()
            .signed(&Call::get_alias(&function("f")), SystemTime::UNIX_EPOCH)
            .unwrap();
        assert!(get.body().is_empty());
        assert!(get.headers().get("content-type").is_none());
    }

    #[test]
    fn answers_tell_missing_things_from_retryable_and_permanent_failures() {
        assert_eq!(
            answer("GetAlias", 200, None, br#"{"FunctionVersion":"2"}"#),
            Ok(Answer::Done(json!({"FunctionVersion": "2"})))
        );
        assert_eq!(
            answer("Invoke", 202, None, b""),
            Ok(Answer::Done(Value::Null))
        );
        assert_eq!(
            answer(
                "GetFunction",
                404,
                Some("ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws.awslambda/"),
                br#"{"Type":"User","Message":"Function not found: arn:aws:lambda:eu-west-1:1:function:f"}"#,
            ),
            Ok(Answer::NotFound(
                "ResourceNotFoundException: Function not found: arn:aws:lambda:eu-west-1:1:function:f"
                    .into()
            ))
        );
        let denied = answer(
            "UpdateAlias of alias 'live' of 'f'",
            403,
            None,
            br#"{"__type":"AccessDeniedException","message":"not authorized to perform: lambda:UpdateAlias"}"#,
        )
        .unwrap_err();
        assert!(!denied.retryable);
        assert_eq!(
            denied.message,
            "Lambda refused UpdateAlias of alias 'live' of 'f': AccessDeniedException: not authorized to perform: lambda:UpdateAlias"
        );
        for (status, kind) in [
            (429, Some("TooManyRequestsException")),
            (500, Some("ServiceException")),
            (503, None),
            (409, Some("ResourceConflictException")),
            (400, Some("ThrottlingException")),
        ] {
            let e = answer("GetAlias", status, kind, b"").unwrap_err();
            assert!(e.retryable, "{status} {kind:?}: {e}");
        }
        let e = answer("GetAlias", 400, Some("InvalidParameterValueException"), b"").unwrap_err();
        assert!(!e.retryable, "{e}");
        let e = answer("GetFunction of 'f'", 404, None, b"<h1>Not Found</h1>").unwrap_err();
        assert!(!e.retryable, "{e}");
        assert_eq!(
            e.message,
            "Lambda refused GetFunction of 'f': HTTP 404: <h1>Not Found</h1>"
        );
    }

    #[test]
    fn routes_are_read_from_get_alias() {
        let route = route_of(&json!({
            "FunctionVersion": "3",
            "RoutingConfig": {"AdditionalVersionWeights": {"4": 0.1}},
        }))
        .unwrap();
        assert_eq!(route.to_string(), "version 3 (with 10% on version 4)");
        let route = route_of(&json!({
            "FunctionVersion": "2",
            "RoutingConfig": {"AdditionalVersionWeights": {"5": 0.025, "4": 0.5}},
        }))
        .unwrap();
        assert_eq!(
            route.to_string(),
            "version 2 (with 50% on version 4, 2.5% on version 5)"
        );
        for alias in [
            json!({"FunctionVersion": "2"}),
            json!({"FunctionVersion": "2", "RoutingConfig": null}),
            json!({"FunctionVersion": "2", "RoutingConfig": {"AdditionalVersionWeights": {}}}),
        ] {
            assert_eq!(route_of(&alias).unwrap().to_string(), "version 2");
        }
        assert_eq!(route_of(&json!({})), None);
    }

    #[tokio::test]
    async fn versions_are_checked_before_anything_is_asked() {
        let api = api().with_endpoint("http://127.0.0.1:9");
        let f = LambdaFunction {
            current_version: "$LATEST".into(),
            ..function("shop")
        };
        let found = api.check(&f).await.unwrap().unwrap();
        assert_eq!(found.code, ErrorCode::InvalidLambdaConfiguration);
        assert!(
            found.message.contains("CurrentVersion '$LATEST'"),
            "{found:?}"
        );
    }

    /// Serves one request on loopback with a response of `status` (`404 Not Found`, say),
    /// `headers` and `body`; the endpoint, and the request as it came.
    fn serve_once(
        status: &str,
        headers: &[&str],
        body: &str,
    ) -> (String, std::thread::JoinHandle<String>) {
        use std::io::{Read, Write};
        let mut response = format!("HTTP/1.1 {status}\r\n");
        for header in headers {
            response.push_str(&format!("{header}\r\n"));
        }
        response.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let served = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buffer = [0; 4096];
            loop {
                let n = stream.read(&mut buffer).unwrap();
                request.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&request).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break;
                    }
                }
                assert!(n > 0, "the request ended early: {text}");
            }
            stream.write_all(response.as_bytes()).unwrap();
            String::from_utf8(request).unwrap()
        });
        (endpoint, served)
    }

    #[tokio::test]
    async fn a_missing_hook_function_fails_for_good() {
        let (endpoint, served) = serve_once(
            "404 Not Found",
            &[
                "x-amzn-ErrorType: ResourceNotFoundException",
                "Content-Type: application/json",
            ],
            r#"{"Type":"User","Message":"Function not found: arn:aws:lambda:eu-west-1:1:function:gone"}"#,
        );
        let id: DeploymentId = "d-A1B2C3D4E".parse().unwrap();
        let e = api()
            .with_endpoint(&endpoint)
            .invoke("gone", &id, "exec-1")
            .await
            .unwrap_err();
        assert_eq!(
            e,
            PortError::permanent(
                "hook function 'gone' cannot be invoked: it does not exist \
                 (ResourceNotFoundException: Function not found: arn:aws:lambda:eu-west-1:1:function:gone)"
            )
        );
        let request = served.join().unwrap();
        let (head, body) = request.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("POST /2015-03-31/functions/gone/invocations HTTP/1.1\r\n"),
            "{head}"
        );
        let head = head.to_ascii_lowercase();
        for header in [
            "x-amz-invocation-type: event",
            "authorization: aws4-hmac-sha256 ",
        ] {
            assert!(head.contains(header), "{header} in {head}");
        }
        assert_eq!(
            serde_json::from_str::<Value>(body).unwrap(),
            json!({"DeploymentId": "d-A1B2C3D4E", "LifecycleEventHookExecutionId": "exec-1"})
        );
    }

    #[tokio::test]
    async fn a_throttled_shift_is_tried_again_and_a_denied_one_is_not() {
        let (endpoint, served) = serve_once(
            "429 Too Many Requests",
            &["x-amzn-ErrorType: TooManyRequestsException"],
            r#"{"Reason":"CallerRateLimitExceeded","Type":"User","message":"Rate exceeded"}"#,
        );
        let arn = "arn:aws:lambda:eu-west-1:1:function:shop";
        let e = api()
            .with_endpoint(&endpoint)
            .shift(&function(arn), 25)
            .await
            .unwrap_err();
        assert!(e.retryable, "{e}");
        assert_eq!(
            e.message,
            format!(
                "Lambda failed UpdateAlias of alias 'live' of '{arn}', which will be tried again: \
                 TooManyRequestsException: Rate exceeded"
            )
        );
        let request = served.join().unwrap();
        let (head, body) = request.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with(
                "PUT /2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A1%3Afunction%3Ashop/aliases/live HTTP/1.1\r\n"
            ),
            "{head}"
        );
        assert_eq!(
            serde_json::from_str::<Value>(body).unwrap(),
            json!({"FunctionVersion": "2", "RoutingConfig": {"AdditionalVersionWeights": {"3": 0.25}}})
        );

        let (endpoint, _) = serve_once(
            "403 Forbidden",
            &["x-amzn-ErrorType: AccessDeniedException"],
            r#"{"Message":"User: arn:aws:iam::1:user/ci is not authorized to perform: lambda:UpdateAlias"}"#,
        );
        let e = api()
            .with_endpoint(&endpoint)
            .restore(&function("shop"))
            .await
            .unwrap_err();
        assert!(!e.retryable, "{e}");
        assert!(
            e.message.ends_with(
                "AccessDeniedException: User: arn:aws:iam::1:user/ci is not authorized to perform: lambda:UpdateAlias"
            ),
            "{e}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_a_retryable_failure() {
        let api = api().with_endpoint("http://127.0.0.1:9");
        let e = api.check(&function("shop")).await.unwrap_err();
        assert!(e.retryable, "{e}");
        assert!(e.message.contains("could not be reached"), "{e}");
    }
}
