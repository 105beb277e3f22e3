"""Counts the AWS requests that reach the emulator, by service and operation, and serves the counts.

A WSGI middleware in front of moto's application. It names each request `service:Operation` in
IAM's terms (`dynamodb:Query`, `sqs:SendMessage`, `cloudwatch:DescribeAlarms`, `s3:GetObject`)
and then hands the request to moto untouched. It also answers the emulator's own endpoints:

- `GET /cutover-emulator/health`: 200 once the server answers.
- `GET /cutover-emulator/requests`: `{"requests": {"dynamodb:Query": 3, ...},
  "by_caller": {"<X-Cutover-Caller>": {...}}}`. `by_caller` only counts requests that carry an
  `X-Cutover-Caller` header, which SDKs do not send unless told to.
- `POST /cutover-emulator/requests/reset`: zeroes the counts.

Other paths under /cutover-emulator/ answer 404 with the list of endpoints, which includes those
that middlewares in front of this one serve (`other_endpoints`).
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from moto.core.request import Request
from moto.core.routing import get_service_router

CONTROL_PREFIX = "/cutover-emulator/"
CALLER_HEADER = "HTTP_X_CUTOVER_CALLER"

# SigV4 credential scope: <key>/<date>/<region>/<signing name>/aws4_request.
CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/,\s]+)/aws4_request")
# Signing names that differ from the IAM service prefix.
IAM_PREFIX_OF_SIGNING_NAME = {"monitoring": "cloudwatch"}
# X-Amz-Target prefixes of unsigned requests, by the service they belong to.
SERVICE_OF_TARGET_PREFIX = {
    "DynamoDB": "dynamodb",
    "DynamoDBStreams": "dynamodb",
    "AmazonSQS": "sqs",
    "AmazonSSM": "ssm",
    "GraniteServiceVersion20100801": "cloudwatch",
}
# The Smithy RPC v2 CBOR protocol (CloudWatch in recent SDKs) names the operation in the path.
RPC_V2_PATH = re.compile(r"^/service/([^/]+)/operation/([^/]+)$")

StartResponse = Callable[..., Any]


class RequestCounter:
    """The middleware: counts, then calls `app` (moto) with the request as it came."""

    def __init__(
        self,
        app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]],
        other_endpoints: Iterable[str] = (),
    ):
        self.app = app
        self.other_endpoints = list(other_endpoints)
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.by_caller: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL_PREFIX):
            return self.control(environ, start_response)
        if not path.startswith("/moto-api"):
            name = request_name(environ)
            caller = environ.get(CALLER_HEADER)
            with self.lock:
                self.requests[name] += 1
                if caller:
                    self.by_caller[caller][name] += 1
        return self.app(environ, start_response)

    def control(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "").rstrip("/")
        if path == "/cutover-emulator/health" and method == "GET":
            return respond(start_response, "200 OK", {"status": "ok"})
        if path == "/cutover-emulator/requests" and method == "GET":
            with self.lock:
                body = {
                    "requests": dict(sorted(self.requests.items())),
                    "by_caller": {
                        caller: dict(sorted(counts.items()))
                        for caller, counts in sorted(self.by_caller.items())
                    },
                }
            return respond(start_response, "200 OK", body)
        if path == "/cutover-emulator/requests/reset" and method == "POST":
            with self.lock:
                self.requests.clear()
                self.by_caller.clear()
            return respond(start_response, "200 OK", {"requests": {}, "by_caller": {}})
        return respond(
            start_response,
            "404 Not Found",
            {
                "error": f"no such emulator endpoint: {method} {path}",
                "endpoints": [
                    "GET /cutover-emulator/health",
                    "GET /cutover-emulator/requests",
                    "POST /cutover-emulator/requests/reset",
                    *self.other_endpoints,
                ],
            },
        )


def respond(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def request_name(environ: dict[str, Any]) -> str:
    """`service:Operation` for one request (`unknown:` when a target or action names no service)."""
    service = service_of(environ)
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        # "DynamoDB_20120810.Query": the prefix names the API and its version.
        prefix, _, operation = target.rpartition(".")
        return f"{service or service_of_target(prefix.split('_')[0])}:{operation}"
    rpc = RPC_V2_PATH.match(environ.get("PATH_INFO", ""))
    if rpc:
        return f"{service or service_of_target(rpc.group(1))}:{rpc.group(2)}"
    action = query_action(environ)
    if action:
        return f"{service or 'unknown'}:{action}"
    # Like moto, take a request that names no service (an S3 URL presigned with SigV2, say) for S3.
    service = service or "s3"
    return f"{service}:{rest_operation(environ, service)}"


def service_of_target(prefix: str) -> str:
    return SERVICE_OF_TARGET_PREFIX.get(prefix, "unknown")


def service_of(environ: dict[str, Any]) -> str | None:
    """The IAM prefix of the service a request is signed for (header or presigned URL)."""
    scope = CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if scope is None:
        credential = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential")
        if credential:
            scope = CREDENTIAL_SCOPE.search("Credential=" + credential[0])
    if scope is None:
        return None
    signing_name = scope.group(1)
    return IAM_PREFIX_OF_SIGNING_NAME.get(signing_name, signing_name)


def query_action(environ: dict[str, Any]) -> str | None:
    """The `Action` of a query-protocol request (EC2, Auto Scaling, ELBv2...), from URL or form.

    Reading the form consumes the body, so it is put back for moto.
    """
    action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    if action:
        return action[0]
    if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length <= 0:
        return None
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    action = parse_qs(body.decode("utf-8", errors="replace")).get("Action")
    return action[0] if action else None


def rest_operation(environ: dict[str, Any], service: str) -> str:
    """The operation of a REST request (S3 and the like), from its method, path, query and headers.

    It asks moto's router, which matches the service's API model. The router gets a copy of the
    request without its body so that moto still reads the real one. Paths the model does not
    match are counted by their HTTP method.
    """
    method = environ.get("REQUEST_METHOD", "GET")
    bodiless = dict(environ)
    bodiless["wsgi.input"] = io.BytesIO(b"")
    bodiless["CONTENT_LENGTH"] = "0"
    try:
        operation, _ = get_service_router(service).match(Request(bodiless))
        return str(operation.name)
    except Exception:  # an unknown service or path: fall back to the method
        return method
