"""Lambda Invoke for the emulator: runs Python functions' code, and logs every invocation.

moto keeps Lambda functions, versions and aliases, but runs code only in Docker, which the
emulator does not have; without Docker, Invoke echoes the payload. This module replaces moto's
Invoke (`POST /2015-03-31/functions/{name}/invocations`, `?Qualifier=` or `name:qualifier` or an
ARN) for functions whose Runtime is `python3*` and whose code is a zip:

- The function is the one the qualifier selects (a version, an alias's version, or $LATEST).
  Its zip is unpacked once per code hash under the cache folder, and its `Handler`
  (`module.function`) runs in a subprocess of this Python interpreter (the emulator's venv, so
  boto3 imports) through lambda_bootstrap.py, with the function's Timeout.
- The subprocess gets a clean environment: PATH, the function's `Environment.Variables`,
  AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (`testing` unless the function sets them),
  AWS_ENDPOINT_URL (the emulator, unless the function sets it: a function reaches AWS only
  through the emulator, or through the endpoints its variables name, such as
  AWS_ENDPOINT_URL_CODEDEPLOY), and Lambda's own variables: AWS_REGION, AWS_DEFAULT_REGION,
  AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_VERSION, AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
  LAMBDA_TASK_ROOT, _HANDLER. AWS config files are /dev/null, so a developer's ~/.aws plays no part.
- `RequestResponse` (the default) answers 200 with the handler's JSON result and
  X-Amz-Executed-Version; a failure (an exception, a timeout, an exit) answers 200 with
  `X-Amz-Function-Error: Unhandled` and `{"errorMessage", "errorType", ...}`, as Lambda does.
  `X-Amz-Log-Type: Tail` gives the end of the output in X-Amz-Log-Result.
- `Event` answers 202 at once and runs the handler in a background thread.
- `DryRun` answers 204 and runs nothing.

Other functions (other runtimes, images, code that is not a zip) keep moto's answer. moto's Lambda
starts without Docker, as after `POST /moto-api/config {"lambda": {"use_docker": false}}`, so
they echo the payload; making that call anyway changes nothing.

Every invocation, run or echoed, is logged, and the log is served (see LambdaInvocationLog):

- `GET /cutover-emulator/lambda-invocations`: `{"invocations": [...]}` in invocation order.
- `POST /cutover-emulator/lambda-invocations/reset`: empties the log.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaFunction
from moto.awslambda.responses import LambdaResponse
from moto.core.config import default_user_config
from moto.utilities.aws_headers import amz_crc32
from request_counter import respond

LOG_PATH = "/cutover-emulator/lambda-invocations"
ENDPOINTS = [f"GET {LOG_PATH}", f"POST {LOG_PATH}/reset"]

BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
# How much of a run's stdout and stderr the log keeps, and X-Amz-Log-Result carries (Lambda: 4 KB).
OUTPUT_TAIL = 4096
DEFAULT_TIMEOUT_SECONDS = 3
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
# Credentials a function gets unless its variables set some: moto's dummy ones.
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

StartResponse = Callable[..., Any]


@dataclass(frozen=True)
class RunnerSettings:
    """Where unpacked code goes, and the emulator's URL, which functions get as AWS_ENDPOINT_URL."""

    cache_dir: Path
    endpoint_url: str


class InvalidRequestContent(LambdaClientError):
    code = 400

    def __init__(self, message: str):
        super().__init__("InvalidRequestContentException", message)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def tail(output: bytes) -> str:
    return output.decode("utf-8", errors="replace")[-OUTPUT_TAIL:]


@dataclass
class Invocation:
    """One invocation, as the log serves it."""

    function_name: str
    qualifier: str | None
    executed_version: str
    invocation_type: str
    payload: Any
    ran_code: bool
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = "running"
    result: Any = None
    error: dict[str, Any] | None = None
    stdout: str = ""
    stderr: str = ""
    started_at: str = field(default_factory=now)
    finished_at: str | None = None

    def finish(self, result: Any = None, error: dict[str, Any] | None = None) -> None:
        with _log_lock:
            self.result, self.error = result, error
            self.status = "failed" if error is not None else "succeeded"
            self.finished_at = now()

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "function_name": self.function_name,
            "qualifier": self.qualifier,
            "executed_version": self.executed_version,
            "invocation_type": self.invocation_type,
            "payload": self.payload,
            "ran_code": self.ran_code,
            "status": self.status,
            "result": self.result,
            "error": self.error,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


_settings: RunnerSettings | None = None
_log: list[Invocation] = []
_log_lock = threading.Lock()
_unpack_lock = threading.Lock()
# The handlers' processes that may still run, so that shutdown can stop them all.
_live: set[subprocess.Popen[bytes]] = set()


def logged(invocation: Invocation) -> Invocation:
    with _log_lock:
        _log.append(invocation)
    return invocation


# --- Running a function ----------------------------------------------------------------------


def runnable_code(fn: LambdaFunction) -> bytes | None:
    """The function's zip, if this module runs it: a python3 runtime, a handler, a real zip."""
    if not str(fn.run_time or "").startswith("python3") or not fn.handler:
        return None
    if getattr(fn, "package_type", "Zip") != "Zip":
        return None
    code = getattr(fn, "code_bytes", b"")
    if not code or not zipfile.is_zipfile(io.BytesIO(code)):
        return None
    return code


def unpacked(code: bytes) -> Path:
    """The folder holding the zip's files, unpacked on first use."""
    assert _settings is not None
    folder = _settings.cache_dir / hashlib.sha256(code).hexdigest()
    with _unpack_lock:
        if not folder.is_dir():
            partial = folder.with_name(folder.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            # zipfile drops absolute paths and `..` from member names: nothing lands outside.
            with zipfile.ZipFile(io.BytesIO(code)) as archive:
                archive.extractall(partial)
            partial.rename(folder)
    return folder


def executed_version(fn: LambdaFunction) -> str:
    """`$LATEST` or the version number: a published version's ARN ends with it."""
    qualifier = fn.function_arn.split(":function:", 1)[-1].partition(":")[2]
    return qualifier or "$LATEST"


def environment(fn: LambdaFunction, version: str, task_root: Path) -> dict[str, str]:
    assert _settings is not None
    env = {
        "PATH": os.environ.get("PATH") or DEFAULT_PATH,
        "AWS_ENDPOINT_URL": _settings.endpoint_url,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "TZ": ":UTC",
        **DUMMY_CREDENTIALS,
    }
    env.update({str(k): str(v) for k, v in (fn.environment_vars or {}).items()})
    # Lambda's own variables, which a function cannot set.
    env.update(
        {
            "AWS_REGION": fn.region,
            "AWS_DEFAULT_REGION": fn.region,
            "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.function_name}",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
            "LAMBDA_TASK_ROOT": str(task_root),
            "_HANDLER": str(fn.handler),
        }
    )
    return env


def kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run(invocation: Invocation, fn: LambdaFunction, code: bytes, event: Any) -> None:
    """Runs the handler on the event and finishes the invocation with what came out."""
    request_id = invocation.request_id
    timeout = float(fn.timeout or DEFAULT_TIMEOUT_SECONDS)
    try:
        task_root = unpacked(code)
    except (OSError, zipfile.BadZipFile) as e:
        invocation.finish(error=lambda_error("Runtime.UnpackError", f"RequestId: {request_id} Error: {e}"))
        return
    context = {
        "function_name": fn.function_name,
        "function_version": invocation.executed_version,
        "invoked_function_arn": invoked_arn(fn, invocation.qualifier),
        "memory_limit_in_mb": str(fn.memory_size),
        "aws_request_id": request_id,
        "log_group_name": f"/aws/lambda/{fn.function_name}",
        "log_stream_name": f"{datetime.date.today():%Y/%m/%d}/[{invocation.executed_version}]{request_id}",
        "deadline_ms": int((datetime.datetime.now().timestamp() + timeout) * 1000),
    }
    with tempfile.TemporaryDirectory(prefix="cutover-lambda-") as scratch:
        request_file, result_file = Path(scratch, "request.json"), Path(scratch, "result.json")
        request_file.write_text(json.dumps({"event": event, "context": context}))
        env = environment(fn, invocation.executed_version, task_root)
        env["AWS_LAMBDA_LOG_STREAM_NAME"] = context["log_stream_name"]
        process = subprocess.Popen(
            [sys.executable, "-B", str(BOOTSTRAP), str(fn.handler), str(request_file), str(result_file)],
            cwd=task_root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        with _log_lock:
            _live.add(process)
        timed_out = False
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_group(process)
            stdout, stderr = process.communicate()
        finally:
            # What the handler left running goes with it, as when Lambda freezes the sandbox.
            kill_group(process)
            with _log_lock:
                _live.discard(process)
        invocation.stdout, invocation.stderr = tail(stdout), tail(stderr)
        outcome = json.loads(result_file.read_text()) if result_file.exists() else None
    save_logs(fn, stdout + stderr)
    if timed_out:
        invocation.finish(
            error=lambda_error(
                "Sandbox.Timedout",
                f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
            )
        )
    elif outcome is None:
        code_text = (
            f"signal: {signal.strsignal(-process.returncode) or -process.returncode}".lower()
            if process.returncode < 0
            else f"exit status {process.returncode}"
        )
        invocation.finish(
            error=lambda_error(
                "Runtime.ExitError", f"RequestId: {request_id} Error: Runtime exited with error: {code_text}"
            )
        )
    elif "error" in outcome:
        invocation.finish(error=outcome["error"])
    else:
        invocation.finish(result=outcome["result"])


def run_safely(invocation: Invocation, fn: LambdaFunction, code: bytes, event: Any) -> None:
    """run(), with a failure of the emulator's own (the interpreter cannot start...) logged as failed."""
    try:
        run(invocation, fn, code, event)
    except Exception as e:
        message = f"RequestId: {invocation.request_id} Error: the emulator could not run the function: {e}"
        invocation.finish(error=lambda_error("Runtime.EmulatorError", message))


def lambda_error(error_type: str, message: str) -> dict[str, Any]:
    return {"errorMessage": message, "errorType": error_type}


def invoked_arn(fn: LambdaFunction, qualifier: str | None) -> str:
    base = fn.function_arn.rsplit(":", 1)[0] if executed_version(fn) != "$LATEST" else fn.function_arn
    return f"{base}:{qualifier}" if qualifier else base


def save_logs(fn: LambdaFunction, output: bytes) -> None:
    """The run's output into CloudWatch Logs (moto's), under /aws/lambda/<name>, as moto's Docker runs do."""
    try:
        fn.logs_backend.ensure_log_group(fn.logs_group_name)
        fn.save_logs(output.decode("utf-8", errors="replace") or "(no output)")
    except Exception:  # the logs are a courtesy: a moto reset meanwhile must not fail the run
        pass


def stop_all() -> None:
    """Kills every handler that still runs (the emulator is shutting down)."""
    with _log_lock:
        running = list(_live)
    for process in running:
        kill_group(process)


# --- moto's Invoke, replaced -----------------------------------------------------------------


def name_and_qualifier(name: str, qualifier: str | None) -> tuple[str, str | None]:
    """The function's name, and the qualifier from `name:qualifier`, an ARN, or ?Qualifier=."""
    if name.startswith("arn:"):
        name = name.split(":function:", 1)[-1]
    name, _, in_name = name.partition(":")
    return name, in_name or qualifier


def parse_payload(body: str | bytes | None) -> Any:
    if not body:
        return {}
    try:
        return json.loads(body)
    except ValueError as e:
        raise InvalidRequestContent(f"Could not parse request body into json: {e}") from None


_moto_invoke = LambdaResponse.invoke


def invoke(self: LambdaResponse) -> tuple[int, dict[str, str], str | bytes]:
    """Invoke: runs Python functions, hands the others to moto; logs both."""
    path = self.path.rstrip("/")
    name, qualifier = name_and_qualifier(
        unquote(path.rsplit("/", 2)[-2]), self.querystring.get("Qualifier", [None])[0]
    )
    invocation_type = self.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
    fn = self.backend.get_function(name, qualifier)  # ResourceNotFoundException if there is none
    code = runnable_code(fn)
    if code is None:
        return echoed(self, fn, qualifier, invocation_type)
    event = parse_payload(self.body)
    if invocation_type == "DryRun":
        return with_crc32(204, {}, b"")
    invocation = logged(
        Invocation(
            function_name=fn.function_name,
            qualifier=qualifier,
            executed_version=executed_version(fn),
            invocation_type=invocation_type,
            payload=event,
            ran_code=True,
        )
    )
    headers = {"x-amzn-RequestId": invocation.request_id}
    if invocation_type == "Event":
        threading.Thread(
            target=run_safely,
            args=(invocation, fn, code, event),
            name=f"lambda-{invocation.request_id}",
            daemon=True,
        ).start()
        return with_crc32(202, headers, b"")
    run_safely(invocation, fn, code, event)
    headers.update(
        {"Content-Type": "application/json", "X-Amz-Executed-Version": invocation.executed_version}
    )
    if invocation.error is not None:
        headers["X-Amz-Function-Error"] = "Unhandled"
        body = json.dumps({**invocation.error, "requestId": invocation.request_id})
    else:
        body = json.dumps(invocation.result)
    if self.headers.get("X-Amz-Log-Type") == "Tail":
        logs = (invocation.stdout + invocation.stderr)[-OUTPUT_TAIL:]
        headers["X-Amz-Log-Result"] = base64.b64encode(logs.encode()).decode()
    return with_crc32(200, headers, body.encode())


@amz_crc32
def with_crc32(status: int, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    """The answer, with the x-amz-crc32 header moto's Lambda answers carry.

    moto's server takes the status from the `status` header, not from the tuple's first member.
    """
    return status, {**headers, "status": str(status)}, body


def echoed(
    self: LambdaResponse, fn: LambdaFunction, qualifier: str | None, invocation_type: str
) -> tuple[int, dict[str, str], str | bytes]:
    """moto's own Invoke, logged."""
    if invocation_type == "DryRun":
        return _moto_invoke(self)
    try:
        payload = json.loads(self.body) if self.body else {}
    except ValueError:
        payload = self.body
    invocation = logged(
        Invocation(
            function_name=fn.function_name,
            qualifier=qualifier,
            executed_version=executed_version(fn),
            invocation_type=invocation_type,
            payload=payload,
            ran_code=False,
        )
    )
    try:
        status, headers, body = _moto_invoke(self)
    except Exception as e:
        invocation.finish(error=lambda_error(type(e).__name__, str(e)))
        raise
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        answer = json.loads(text) if text else None
    except ValueError:
        answer = text
    function_error = {k.lower(): v for k, v in headers.items()}.get("x-amz-function-error")
    if function_error or int(status) >= 300:
        invocation.finish(
            error=answer if isinstance(answer, dict) else lambda_error("Unhandled", str(answer))
        )
    else:
        invocation.finish(result=answer)
    return status, headers, body


# --- The log's endpoints ----------------------------------------------------------------------


class LambdaInvocationLog:
    """WSGI middleware serving the invocation log; every other request goes to `app`."""

    def __init__(self, app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "").rstrip("/")
        if path == LOG_PATH and method == "GET":
            with _log_lock:
                body = {"invocations": [invocation.to_json() for invocation in _log]}
            return respond(start_response, "200 OK", body)
        if path == f"{LOG_PATH}/reset" and method == "POST":
            with _log_lock:
                _log.clear()
            return respond(start_response, "200 OK", {"invocations": []})
        return self.app(environ, start_response)


def install(settings: RunnerSettings) -> None:
    """Puts the runner into moto's Lambda; call before the server handles requests."""
    global _settings
    _settings = settings
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    # There is no Docker: moto's Lambda starts as its use_docker=false variant.
    default_user_config["lambda"] = {"use_docker": False}
    LambdaResponse.invoke = invoke  # type: ignore[method-assign]
