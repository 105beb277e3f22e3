"""The AWS emulator cutover's cloud tests run against: moto's server on loopback, extended.

It serves moto (the version pinned in infra/requirements-test.txt) on a loopback address only,
with extensions of cutover's own (see infra/README.md):

- SSM Run Command really runs runShellScript documents on simulated hosts under --hosts-dir,
  with the agent from --agent-dir on PATH (ssm_commands.py);
- every AWS request is counted by service and operation, and the counts are served at
  /cutover-emulator/requests (request_counter.py);
- requests in AWS's RPC v2 CBOR protocol, which recent SDKs use for CloudWatch and moto does not
  speak, are translated to the JSON protocol moto serves (rpc_v2_cbor.py);
- SSM DescribeInstanceInformation, which moto lacks, lists moto's EC2 instances as managed nodes
  (ssm_instance_information.py);
- Lambda Invoke really runs the code of Python functions, in subprocesses of this interpreter,
  with their code unpacked under --lambda-dir, and every invocation is logged and served at
  /cutover-emulator/lambda-invocations (lambda_runner.py, lambda_bootstrap.py).

Usage: launcher.py --hosts-dir DIR [--agent-dir DIR] [--lambda-dir DIR] [--host 127.0.0.1] [--port 5055]
                   [--url-file FILE]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType

DEFAULT_PORT = 5055


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="launcher.py",
        description="Serve moto on loopback, with SSM Run Command that runs scripts, Lambda that runs "
        "Python functions, a request counter and RPC v2 CBOR.",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="the loopback address to listen on: 127.0.0.0/8 or ::1 (default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"the port to listen on; 0 picks a free one (default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--hosts-dir",
        type=Path,
        required=True,
        help="where the simulated hosts live: instance i-... has the folder HOSTS_DIR/i-... as its /",
    )
    parser.add_argument(
        "--agent-dir",
        type=Path,
        default=os.environ.get("CUTOVER_EMULATOR_AGENT_DIR") or None,
        help="the folder holding the cutover-agent binary, put first on the hosts' PATH "
        "(default: $CUTOVER_EMULATOR_AGENT_DIR)",
    )
    parser.add_argument(
        "--lambda-dir",
        type=Path,
        help="where Lambda functions' code is unpacked, one folder per code hash "
        "(default: a temporary folder, removed on exit)",
    )
    parser.add_argument(
        "--url-file",
        type=Path,
        help="once listening, write the emulator's URL (http://HOST:PORT) to this file",
    )
    args = parser.parse_args(argv)
    try:
        address = ipaddress.ip_address(args.host)
    except ValueError:
        parser.error(f"--host {args.host!r} is not an IP address; use a loopback one such as 127.0.0.1")
    if not address.is_loopback:
        parser.error(
            f"--host {args.host} is not a loopback address; the emulator only listens on 127.0.0.0/8 or ::1"
        )
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a port number")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    hosts_dir = args.hosts_dir.resolve()
    agent_dir = args.agent_dir.resolve() if args.agent_dir else None
    if agent_dir is None:
        print(
            "launcher: no --agent-dir: hosts find cutover-agent only if it is on the system PATH",
            file=sys.stderr,
        )
    elif not (agent_dir / "cutover-agent").is_file():
        print(
            f"launcher: {agent_dir}/cutover-agent does not exist (yet); "
            "commands will not find the agent until it does",
            file=sys.stderr,
        )

    # moto is imported here, after the arguments are known to be sound, because it is slow to load.
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    # The extensions sit beside this file; compiling them must not leave files in the source tree.
    sys.dont_write_bytecode = True
    import lambda_runner
    import ssm_commands
    import ssm_instance_information
    from request_counter import RequestCounter
    from rpc_v2_cbor import RpcV2CborToJson

    ssm_commands.install(ssm_commands.HostSettings(hosts_dir=hosts_dir, agent_dir=agent_dir))
    ssm_instance_information.install()
    moto_app = DomainDispatcherApplication(create_backend_app)
    moto_app.debug = True  # type: ignore[attr-defined]  # as moto's own server sets it
    app = lambda_runner.LambdaInvocationLog(
        RequestCounter(RpcV2CborToJson(moto_app), other_endpoints=lambda_runner.ENDPOINTS)
    )
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    port = server.server_port
    # As moto's own server does: moto builds URLs back to itself from it (Lambda, CloudFormation).
    os.environ["MOTO_PORT"] = str(port)
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{port}"
    lambda_dir = args.lambda_dir.resolve() if args.lambda_dir else None
    temporary_lambda_dir = lambda_dir is None
    if lambda_dir is None:
        lambda_dir = Path(tempfile.mkdtemp(prefix="cutover-emulator-lambda-"))
    # Functions reach AWS through this emulator unless their variables say otherwise.
    lambda_runner.install(lambda_runner.RunnerSettings(cache_dir=lambda_dir, endpoint_url=url))

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.url_file:
        partial = args.url_file.with_name(args.url_file.name + ".partial")
        partial.write_text(url + "\n")
        partial.replace(args.url_file)
    print(
        f"launcher: serving moto on {url}; hosts in {hosts_dir}; agent from {agent_dir}; "
        f"Lambda code in {lambda_dir}",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except SystemExit:
        pass
    finally:
        # Scripts and functions still running belong to this emulator: they go with it.
        ssm_commands.stop_all()
        lambda_runner.stop_all()
        server.server_close()
        if temporary_lambda_dir:
            shutil.rmtree(lambda_dir, ignore_errors=True)
    # Stopped means stopped at once: no thread left behind by moto or by a request that was
    # being answered (a function's call back into the emulator, say) may hold the exit up.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
