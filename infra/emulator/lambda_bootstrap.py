"""Runs one invocation of a Python Lambda handler, in the process lambda_runner.py starts for it.

Usage: python lambda_bootstrap.py HANDLER REQUEST_FILE RESULT_FILE

The current directory is the function's unpacked code. REQUEST_FILE holds `{"event": ...,
"context": {...}}`. The handler (`module.function`, the module possibly in a package,
`pkg.module.function` or `pkg/module.function`) is imported and called with the event and a
context object like the Python runtime's. What comes out is written to RESULT_FILE as JSON:
`{"result": <the handler's return value>}` or `{"error": {"errorMessage", "errorType",
"stackTrace"}}`, with Lambda's error types for a module that does not import
(Runtime.ImportModuleError), a missing handler (Runtime.HandlerNotFound) and a result that is not
JSON (Runtime.MarshalError). stdout and stderr are the function's own, as its logs.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """The context argument of a Python handler, with the runtime's attribute names."""

    def __init__(self, fields: dict[str, Any]):
        self.function_name: str = fields["function_name"]
        self.function_version: str = fields["function_version"]
        self.invoked_function_arn: str = fields["invoked_function_arn"]
        self.memory_limit_in_mb: str = fields["memory_limit_in_mb"]
        self.aws_request_id: str = fields["aws_request_id"]
        self.log_group_name: str = fields["log_group_name"]
        self.log_stream_name: str = fields["log_stream_name"]
        self.identity = None
        self.client_context = None
        self._deadline_ms: int = fields["deadline_ms"]

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)


def error(error_type: str, message: str, stack: list[str] | None = None) -> dict[str, Any]:
    return {"error": {"errorMessage": message, "errorType": error_type, "stackTrace": stack or []}}


def invoke(handler_name: str, request: dict[str, Any]) -> dict[str, Any]:
    module_name, _, function_name = handler_name.rpartition(".")
    if not module_name or not function_name:
        return error(
            "Runtime.MalformedHandlerName", f"Bad handler '{handler_name}': not enough values to unpack"
        )
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        return error("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {e}")
    handler = getattr(module, function_name, None)
    if handler is None:
        return error(
            "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"
        )
    try:
        result = handler(request["event"], LambdaContext(request["context"]))
    except Exception as e:
        stack = traceback.format_list(traceback.extract_tb(e.__traceback__)[1:])
        return error(type(e).__name__, str(e), [line.rstrip("\n") for line in stack])
    try:
        json.dumps(result)
    except (TypeError, ValueError) as e:
        return error("Runtime.MarshalError", f"Unable to marshal response: {e}")
    return {"result": result}


def main(argv: list[str]) -> int:
    handler_name, request_file, result_file = argv
    # As in Lambda, the task root comes first on sys.path (not the folder of this script).
    sys.path[0] = os.getcwd()
    with open(request_file, encoding="utf-8") as f:
        request = json.load(f)
    outcome = invoke(handler_name, request)
    sys.stdout.flush()
    sys.stderr.flush()
    if "error" in outcome:
        # What the runtime logs for an error, on stderr like its other messages.
        failure = outcome["error"]
        print(f"[ERROR] {failure['errorType']}: {failure['errorMessage']}", file=sys.stderr)
        if failure["stackTrace"]:
            print("Traceback (most recent call last):", *failure["stackTrace"], sep="\n", file=sys.stderr)
    with open(result_file + ".partial", "w", encoding="utf-8") as f:
        json.dump(outcome, f)
    os.replace(result_file + ".partial", result_file)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
