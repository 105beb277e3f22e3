"""Serves AWS's Smithy RPC v2 CBOR protocol, which moto 5.2.5 lacks, by translating it to the JSON protocol.

Recent AWS SDKs call some services with RPC v2 CBOR: the Rust SDK's CloudWatch client sends
`POST /service/GraniteServiceVersion20100801/operation/DescribeAlarms` with a CBOR body and wants
CBOR back, and moto answers that path with 404. The same services also speak AWS's JSON protocol,
which moto does serve. This WSGI middleware turns such a request into its JSON twin (the same
operation, named in X-Amz-Target, with a JSON body), lets moto answer it, and turns the answer
into CBOR, typed by the operation's output shape: timestamps become CBOR tag 1 (epoch seconds),
blobs become byte strings, doubles stay floats. Errors keep their status and become
`{"__type": ..., "message": ...}`.
"""

from __future__ import annotations

import base64
import datetime
import functools
import io
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import botocore.session
import cbor2
from botocore.model import OperationNotFoundError, ServiceModel, Shape

RPC_V2_PATH = re.compile(r"^/service/([^/]+)/operation/([^/]+)$")
# The services moto serves in JSON whose SDKs may call them in RPC v2 CBOR, by Smithy service name.
SERVICE_OF_SMITHY_NAME = {"GraniteServiceVersion20100801": "cloudwatch"}

StartResponse = Callable[..., Any]


@functools.cache
def service_model(name: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(name)


class RpcV2CborToJson:
    """The middleware: RPC v2 CBOR requests of known services go to `app` (moto) as JSON requests."""

    def __init__(self, app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        route = RPC_V2_PATH.match(environ.get("PATH_INFO", ""))
        if route is None or route.group(1) not in SERVICE_OF_SMITHY_NAME:
            return self.app(environ, start_response)
        model = service_model(SERVICE_OF_SMITHY_NAME[route.group(1)])
        try:
            operation = model.operation_model(route.group(2))
        except OperationNotFoundError:
            return reply(
                start_response,
                "404 Not Found",
                [],
                {
                    "__type": "UnknownOperationException",
                    "message": f"{route.group(1)} has no operation {route.group(2)}",
                },
            )

        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        params = json_ready(cbor2.loads(body)) if body else {}
        json_body = json.dumps(params).encode()
        json_environ = dict(environ)
        json_environ.update(
            {
                "PATH_INFO": "/",
                "QUERY_STRING": "",
                "CONTENT_TYPE": f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.0')}",
                "CONTENT_LENGTH": str(len(json_body)),
                "HTTP_X_AMZ_TARGET": f"{model.metadata['targetPrefix']}.{operation.name}",
                "wsgi.input": io.BytesIO(json_body),
            }
        )

        answer: dict[str, Any] = {}
        chunks: list[bytes] = []

        def capture(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            answer.update(status=status, headers=headers)
            return chunks.append

        result = self.app(json_environ, capture)
        try:
            chunks.extend(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        text = b"".join(chunks)
        data = json.loads(text) if text.strip() else {}
        status = answer["status"]
        if int(status.split()[0]) < 300:
            out = typed(data, operation.output_shape)
        else:
            out = {
                "__type": data.get("__type") or data.get("code") or "InternalFailure",
                "message": data.get("message") or data.get("Message") or "",
            }
        headers = [
            (k, v) for k, v in answer["headers"] if k.lower() not in ("content-type", "content-length")
        ]
        return reply(start_response, status, headers, out)


def reply(
    start_response: StartResponse, status: str, headers: list[tuple[str, str]], body: Any
) -> list[bytes]:
    data = cbor2.dumps(body)
    start_response(
        status,
        headers
        + [
            ("Content-Type", "application/cbor"),
            ("Content-Length", str(len(data))),
            ("smithy-protocol", "rpc-v2-cbor"),
        ],
    )
    return [data]


def json_ready(value: Any) -> Any:
    """A decoded CBOR request as the JSON protocol writes it: epoch-second timestamps, base64 blobs."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_ready(v) for v in value]
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, cbor2.CBORTag) and value.tag == 1:
        return value.value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def typed(value: Any, shape: Shape | None) -> Any:
    """A JSON answer as RPC v2 CBOR carries it, following the output shape; nulls are left out."""
    kind = shape.type_name if shape is not None else None
    if kind == "structure" or (kind is None and isinstance(value, dict)):
        members = shape.members if shape is not None else {}
        return {k: typed(v, members.get(k)) for k, v in value.items() if v is not None}
    if kind == "map":
        return {k: typed(v, shape.value) for k, v in value.items() if v is not None}
    if kind == "list" or (kind is None and isinstance(value, list)):
        return [typed(v, shape.member if shape is not None else None) for v in value]
    if kind == "timestamp":
        return cbor2.CBORTag(1, epoch_seconds(value))
    if kind == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    if kind in ("double", "float"):
        return float(value)
    if kind in ("integer", "long", "short", "byte"):
        return int(value)
    return value


def epoch_seconds(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    moment = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()
