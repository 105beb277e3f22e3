"""The emulator's own test: starts launcher.py on a free loopback port and checks its extensions of moto.

It deploys examples/webapp through cutover's SSM document with the real cutover-agent, and checks
the agent-missing path, SSM's refusals, cancel, timeout, output truncation, the request counter
CloudWatch in RPC v2 CBOR, DescribeInstanceInformation, and Lambda functions whose Python code runs
(synchronously and as events, by version and alias, calling the emulator) with their invocation log.

Usage: .venv/bin/python infra/emulator/selftest.py --agent-dir target/debug [unittest options]
"""

from __future__ import annotations

import argparse
import base64
import datetime
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any

import boto3
import cbor2
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[2]
DOCUMENT = REPO / "infra/ssm/cutover-run-agent.yaml"
WEBAPP = REPO / "examples/webapp"
ALL_EVENTS = (
    "ApplicationStop,DownloadBundle,BeforeInstall,Install,AfterInstall,ApplicationStart,ValidateService"
)
AMI = "ami-12c6146b"  # an image moto knows

# A small shell document for what cutover's document cannot easily do (run long, print a lot).
SHELL_DOCUMENT = """
schemaVersion: "2.2"
description: Runs a line of shell, for the emulator's self-test.
parameters:
  line:
    type: String
    allowedPattern: "^[^'\\\\r\\\\n]*$"
  executionTimeout:
    type: String
    default: "3600"
mainSteps:
  - action: aws:runShellScript
    name: runLine
    inputs:
      timeoutSeconds: "{{ executionTimeout }}"
      runCommand:
        - "echo $$ > pid"
        - "{{ line }}"
"""

agent_dir: Path
launcher: subprocess.Popen[bytes]
launcher_log: Any
workspace: tempfile.TemporaryDirectory[str]
url: str

# Loopback only: requests to the emulator must never go through a proxy.
for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
    os.environ.pop(proxy, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


def setUpModule() -> None:
    global launcher, launcher_log, workspace, url
    workspace = tempfile.TemporaryDirectory(prefix="cutover-emulator-selftest-")
    url_file = Path(workspace.name) / "url"
    launcher_log = open(Path(workspace.name) / "launcher.log", "wb")
    launcher = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("launcher.py")),
            "--port=0",
            f"--hosts-dir={workspace.name}/hosts",
            f"--agent-dir={agent_dir}",
            f"--url-file={url_file}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=launcher_log,
    )
    deadline = time.monotonic() + 30
    while not url_file.exists():
        if launcher.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(
                "the launcher did not start: " + (Path(workspace.name) / "launcher.log").read_text()
            )
        time.sleep(0.05)
    url = url_file.read_text().strip()


def tearDownModule() -> None:
    launcher.terminate()
    launcher.wait(timeout=10)
    launcher_log.close()
    workspace.cleanup()


def client(service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def emulator(path: str, method: str = "GET", body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, method=method, data=data)
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def group_is_gone(group: int, seconds: float = 5) -> bool:
    """Whether process group `group` has no living member left (zombies awaiting reaping do not count)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        listing = subprocess.run(
            ["ps", "-e", "-o", "pgid=,stat="], capture_output=True, text=True, check=True
        )
        members = [line.split() for line in listing.stdout.splitlines()]
        if not any(int(pgid) == group and not stat.startswith("Z") for pgid, stat in members):
            return True
        time.sleep(0.05)
    return False


class EmulatorTest(unittest.TestCase):
    def setUp(self) -> None:
        self.ssm = client("ssm")
        self.ec2 = client("ec2")
        # moto may have been reset by an earlier test: the documents are made again when missing.
        for name, content in (
            ("cutover-run-agent", DOCUMENT.read_text()),
            ("selftest-shell", SHELL_DOCUMENT),
        ):
            try:
                self.ssm.describe_document(Name=name)
            except ClientError:
                self.ssm.create_document(
                    Name=name, Content=content, DocumentType="Command", DocumentFormat="YAML"
                )

    def instance(self, **tags: str) -> str:
        spec = {}
        if tags:
            spec["TagSpecifications"] = [
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ]
        return self.ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, **spec)["Instances"][0][
            "InstanceId"
        ]

    def deploy(self, instance_id: str, **overrides: str) -> str:
        parameters = {
            "deploymentId": "d-SELFTEST1",
            "applicationName": "webapp",
            "deploymentGroupName": "production",
            "deploymentGroupId": "dg-selftest",
            "bundleUrl": str(WEBAPP),
            "lifecycleEvents": ALL_EVENTS,
            **overrides,
        }
        command = self.ssm.send_command(
            DocumentName="cutover-run-agent",
            InstanceIds=[instance_id],
            Parameters={k: [v] for k, v in parameters.items()},
        )["Command"]
        return command["CommandId"]

    def shell(self, instance_id: str, line: str, timeout: str = "3600") -> str:
        return self.ssm.send_command(
            DocumentName="selftest-shell",
            InstanceIds=[instance_id],
            Parameters={"line": [line], "executionTimeout": [timeout]},
        )["Command"]["CommandId"]

    def wait(self, command_id: str, instance_id: str, seconds: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            invocation = self.ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
            if invocation["Status"] not in ("Pending", "InProgress") or time.monotonic() > deadline:
                return invocation
            time.sleep(0.1)

    def pid_of(self, command_id: str, instance_id: str, plugin: str = "runLine") -> int:
        pid_file = Path(
            workspace.name,
            "hosts",
            instance_id,
            "var/lib/amazon/ssm",
            instance_id,
            "document/orchestration",
            command_id,
            plugin,
            "pid",
        )
        deadline = time.monotonic() + 10
        while not pid_file.exists() or not pid_file.read_text().strip():
            self.assertLess(time.monotonic(), deadline, "the script never started")
            time.sleep(0.05)
        return int(pid_file.read_text())

    def test_deploys_the_webapp_with_the_agent(self) -> None:
        instance_id = self.instance()
        command_id = self.deploy(instance_id)
        invocation = self.wait(command_id, instance_id)
        self.assertEqual(invocation["Status"], "Success", invocation["StandardErrorContent"])
        self.assertEqual(invocation["ResponseCode"], 0)
        self.assertEqual(invocation["PluginName"], "runCutoverAgent")
        events = [json.loads(line) for line in invocation["StandardOutputContent"].splitlines()]
        self.assertEqual([e["lifecycleEventName"] for e in events], ALL_EVENTS.split(","))
        self.assertTrue(all(e["status"] == "Succeeded" for e in events), events)
        host = Path(workspace.name, "hosts", instance_id)
        self.assertTrue((host / "srv/webapp/index.html").is_file())
        self.assertTrue((host / "opt/cutover/deployment-root/dg-selftest/d-SELFTEST1").is_dir())
        command = self.ssm.list_commands(CommandId=command_id)["Commands"][0]
        self.assertEqual((command["Status"], command["CompletedCount"]), ("Success", 1))

    def test_a_failing_hook_fails_the_invocation(self) -> None:
        instance_id = self.instance()
        # ValidateService alone: nothing was installed, so the health check fails.
        invocation = self.wait(self.deploy(instance_id, lifecycleEvents="ValidateService"), instance_id)
        self.assertEqual((invocation["Status"], invocation["ResponseCode"]), ("Failed", 1))
        self.assertTrue(invocation["StandardErrorContent"].endswith("failed to run commands: exit status 1"))

    def test_an_instance_without_the_agent_exits_127(self) -> None:
        instance_id = self.instance(**{"cutover-emulator:agent": "absent"})
        invocation = self.wait(self.deploy(instance_id), instance_id)
        self.assertEqual((invocation["Status"], invocation["ResponseCode"]), ("Failed", 127))
        self.assertIn("cutover-agent is not installed on this host", invocation["StandardErrorContent"])
        self.assertIn("failed to run commands: exit status 127", invocation["StandardErrorContent"])
        self.assertEqual(invocation["StandardOutputContent"], "")

    def test_refuses_unknown_instances_and_bad_parameters(self) -> None:
        instance_id = self.instance()
        with self.assertRaises(ClientError) as refused:
            self.deploy("i-0123456789abcdef0")
        self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidInstanceId")
        for bad in (
            {"deploymentId": "d-1'; touch /tmp/owned; echo '"},
            {"bundleUrl": "a\nb"},
            {"ignoreApplicationStopFailures": "yes"},
            {"executionTimeout": "0"},
        ):
            with self.subTest(bad=bad), self.assertRaises(ClientError) as refused:
                self.deploy(instance_id, **bad)
            self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidParameters")
        with self.assertRaises(ClientError) as refused:
            self.ssm.send_command(
                DocumentName="cutover-run-agent",
                InstanceIds=[instance_id],
                Parameters={"deploymentId": ["d-1"]},
            )
        self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidParameters")
        with self.assertRaises(ClientError) as refused:
            self.ssm.send_command(DocumentName="no-such-document", InstanceIds=[instance_id])
        self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidDocument")

    def test_a_managed_instance_runs_the_document(self) -> None:
        instance_id = "mi-0123456789abcdef0"
        invocation = self.wait(self.shell(instance_id, "echo on premises"), instance_id)
        self.assertEqual(
            (invocation["Status"], invocation["StandardOutputContent"]), ("Success", "on premises\n")
        )

    def test_cancel_kills_the_script(self) -> None:
        instance_id = self.instance()
        command_id = self.shell(instance_id, "sleep 60")
        pid = self.pid_of(command_id, instance_id)
        self.assertEqual(
            self.ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)["Status"],
            "InProgress",
        )
        self.ssm.cancel_command(CommandId=command_id)
        invocation = self.wait(command_id, instance_id)
        self.assertEqual((invocation["Status"], invocation["StatusDetails"]), ("Cancelled", "Cancelled"))
        self.assertEqual(invocation["ResponseCode"], 137)
        self.assertTrue(group_is_gone(pid))

    def test_the_execution_timeout_stops_the_script(self) -> None:
        instance_id = self.instance()
        command_id = self.shell(instance_id, "echo started; sleep 60", timeout="1")
        pid = self.pid_of(command_id, instance_id)
        invocation = self.wait(command_id, instance_id)
        self.assertEqual(
            (invocation["Status"], invocation["StatusDetails"]), ("TimedOut", "ExecutionTimedOut")
        )
        self.assertEqual(invocation["StandardOutputContent"], "started\n")
        self.assertTrue(group_is_gone(pid))

    def test_output_is_truncated_like_ssm(self) -> None:
        instance_id = self.instance()
        command_id = self.shell(instance_id, "yes o | head -c 30000; yes e | head -c 9000 >&2")
        invocation = self.wait(command_id, instance_id)
        self.assertEqual(len(invocation["StandardOutputContent"]), 24000)
        self.assertTrue(invocation["StandardOutputContent"].endswith("\n---Output truncated---"))
        self.assertEqual(len(invocation["StandardErrorContent"]), 8000)
        listed = self.ssm.list_command_invocations(CommandId=command_id, Details=True)["CommandInvocations"]
        self.assertEqual([(i["InstanceId"], i["Status"]) for i in listed], [(instance_id, "Success")])
        self.assertEqual(len(listed[0]["CommandPlugins"][0]["Output"]), 2500)

    def test_a_stopped_instance_gets_nothing_until_cancelled(self) -> None:
        instance_id = self.instance()
        self.ec2.stop_instances(InstanceIds=[instance_id])
        command_id = self.shell(instance_id, "echo never")
        time.sleep(0.3)
        invocation = self.ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        self.assertEqual((invocation["Status"], invocation["ResponseCode"]), ("Pending", -1))
        self.ssm.cancel_command(CommandId=command_id)
        self.assertEqual(self.wait(command_id, instance_id)["Status"], "Cancelled")

    def test_counts_requests_by_service_and_operation(self) -> None:
        emulator("/cutover-emulator/requests/reset", method="POST")
        sqs, s3 = client("sqs"), client("s3")
        queue = sqs.create_queue(QueueName="selftest")["QueueUrl"]
        sqs.send_message(QueueUrl=queue, MessageBody="one")
        sqs.send_message(QueueUrl=queue, MessageBody="two")
        s3.create_bucket(Bucket="selftest-bucket")
        s3.put_object(Bucket="selftest-bucket", Key="bundle.zip", Body=b"zip")
        presigned = s3.generate_presigned_url(
            "get_object", Params={"Bucket": "selftest-bucket", "Key": "bundle.zip"}
        )
        fetch = urllib.request.Request(presigned, headers={"X-Cutover-Caller": "agent"})
        with urllib.request.urlopen(fetch) as response:
            self.assertEqual(response.read(), b"zip")
        self.ec2.describe_instances()
        counts = emulator("/cutover-emulator/requests")
        self.assertEqual(
            counts["requests"],
            {
                "sqs:CreateQueue": 1,
                "sqs:SendMessage": 2,
                "s3:CreateBucket": 1,
                "s3:PutObject": 1,
                "s3:GetObject": 1,
                "ec2:DescribeInstances": 1,
            },
        )
        self.assertEqual(counts["by_caller"], {"agent": {"s3:GetObject": 1}})
        emulator("/cutover-emulator/requests/reset", method="POST")
        self.assertEqual(emulator("/cutover-emulator/requests")["requests"], {})

    def test_cloudwatch_answers_rpc_v2_cbor(self) -> None:
        cloudwatch = client("cloudwatch")
        cloudwatch.put_metric_alarm(
            AlarmName="selftest-cpu",
            MetricName="CPUUtilization",
            Namespace="AWS/EC2",
            Statistic="Average",
            Period=60,
            EvaluationPeriods=1,
            Threshold=80,
            ComparisonOperator="GreaterThanThreshold",
        )
        cloudwatch.set_alarm_state(AlarmName="selftest-cpu", StateValue="ALARM", StateReason="selftest")

        def call(operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            # As the Rust SDK sends it: CBOR, with the operation in the path.
            request = urllib.request.Request(
                f"{url}/service/GraniteServiceVersion20100801/operation/{operation}",
                data=cbor2.dumps(body),
                method="POST",
                headers={
                    "smithy-protocol": "rpc-v2-cbor",
                    "Content-Type": "application/cbor",
                    "Accept": "application/cbor",
                    "Authorization": "AWS4-HMAC-SHA256 "
                    "Credential=testing/20260101/us-east-1/monitoring/aws4_request, "
                    "SignedHeaders=host, Signature=0",
                },
            )
            try:
                response = urllib.request.urlopen(request)
            except urllib.error.HTTPError as error:
                response = error
            self.assertEqual(response.headers["smithy-protocol"], "rpc-v2-cbor")
            return response.status, cbor2.loads(response.read())

        status, answer = call("DescribeAlarms", {"AlarmNames": ["selftest-cpu"]})
        self.assertEqual(status, 200)
        alarm = answer["MetricAlarms"][0]
        self.assertEqual(
            (alarm["AlarmName"], alarm["StateValue"], alarm["Threshold"]), ("selftest-cpu", "ALARM", 80.0)
        )
        self.assertIsInstance(alarm["Threshold"], float)
        # Timestamps are CBOR tag 1, which cbor2 reads as datetimes.
        self.assertIsInstance(alarm["StateUpdatedTimestamp"], datetime.datetime)
        status, answer = call(
            "SetAlarmState", {"AlarmName": "no-such-alarm", "StateValue": "OK", "StateReason": "x"}
        )
        self.assertEqual(status, 404)
        self.assertTrue(answer["__type"].endswith("ResourceNotFound"), answer)

    def test_lists_managed_nodes(self) -> None:
        running, stopped = self.instance(role="web"), self.instance(role="web")
        self.ec2.stop_instances(InstanceIds=[stopped])
        on_premises = "mi-0fedcba9876543210"
        listed = self.ssm.describe_instance_information(
            Filters=[{"Key": "InstanceIds", "Values": [running, stopped, on_premises]}]
        )["InstanceInformationList"]
        self.assertEqual(
            {(n["InstanceId"], n["PingStatus"], n["ResourceType"]) for n in listed},
            {
                (running, "Online", "EC2Instance"),
                (stopped, "ConnectionLost", "EC2Instance"),
                (on_premises, "Online", "ManagedInstance"),
            },
        )
        online = self.ssm.describe_instance_information(
            Filters=[{"Key": "tag:role", "Values": ["web"]}, {"Key": "PingStatus", "Values": ["Online"]}]
        )["InstanceInformationList"]
        self.assertIn(running, [n["InstanceId"] for n in online])
        self.assertNotIn(stopped, [n["InstanceId"] for n in online])
        more = {self.instance() for _ in range(5)}
        pages = list(
            self.ssm.get_paginator("describe_instance_information").paginate(PaginationConfig={"PageSize": 5})
        )
        self.assertGreater(len(pages), 1)
        everyone = [n["InstanceId"] for page in pages for n in page["InstanceInformationList"]]
        self.assertEqual(len(everyone), len(set(everyone)))
        self.assertTrue({running, stopped} | more <= set(everyone))

    def test_a_moto_reset_stops_running_scripts(self) -> None:
        instance_id = self.instance()
        command_id = self.shell(instance_id, "sleep 60")
        pid = self.pid_of(command_id, instance_id)
        urllib.request.urlopen(urllib.request.Request(url + "/moto-api/reset", method="POST")).read()
        self.assertTrue(group_is_gone(pid))


# Lambda functions for the Lambda tests, one module each (app.py), with the handler app.handler.
ECHO_FUNCTION = """
import os

def handler(event, context):
    print("echo got", event)
    return {
        "event": event,
        "greeting": os.environ.get("GREETING"),
        "function_name": context.function_name,
        "function_version": context.function_version,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
"""
FAILING_FUNCTION = """
def handler(event, context):
    raise ValueError("the hook failed: " + event.get("DeploymentId", "?"))
"""
SLOW_FUNCTION = """
import time

def handler(event, context):
    time.sleep(float(event.get("seconds", 1)))
    return "done"
"""
# As a hook function calls CodeDeploy: boto3, to the endpoint its variables name.
CALLING_FUNCTION = """
import os
import boto3

def handler(event, context):
    buckets = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"]).list_buckets()["Buckets"]
    # No endpoint given: AWS_ENDPOINT_URL, the emulator, is the default.
    queues = boto3.client("sqs").list_queues().get("QueueUrls", [])
    return {
        "buckets": [b["Name"] for b in buckets],
        "queues": queues,
        "access_key": os.environ["AWS_ACCESS_KEY_ID"],
        "region": os.environ["AWS_REGION"],
        "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
    }
"""


def function_zip(source: str) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("app.py", source)
    return archive.getvalue()


class LambdaTest(unittest.TestCase):
    def setUp(self) -> None:
        self.lam = client("lambda")
        iam = client("iam")
        # moto may have been reset by an earlier test: the role is made again when missing.
        try:
            self.role = iam.get_role(RoleName="selftest-lambda")["Role"]["Arn"]
        except ClientError:
            self.role = iam.create_role(RoleName="selftest-lambda", AssumeRolePolicyDocument="{}")["Role"][
                "Arn"
            ]

    def function(self, source: str, runtime: str = "python3.12", **settings: Any) -> str:
        name = f"selftest-{uuid.uuid4().hex[:12]}"
        self.lam.create_function(
            FunctionName=name,
            Runtime=runtime,
            Role=self.role,
            Handler="app.handler",
            Code={"ZipFile": function_zip(source)},
            **settings,
        )
        return name

    def invoke(self, name: str, payload: Any, **options: Any) -> tuple[dict[str, Any], Any]:
        response = self.lam.invoke(FunctionName=name, Payload=json.dumps(payload).encode(), **options)
        body = response["Payload"].read()
        return response, json.loads(body) if body else None

    def invocations(self, name: str) -> list[dict[str, Any]]:
        return [
            i
            for i in emulator("/cutover-emulator/lambda-invocations")["invocations"]
            if i["function_name"] == name
        ]

    def finished(self, name: str, count: int = 1, seconds: float = 15) -> list[dict[str, Any]]:
        deadline = time.monotonic() + seconds
        while True:
            invocations = self.invocations(name)
            if len(invocations) >= count and all(i["status"] != "running" for i in invocations):
                return invocations
            self.assertLess(time.monotonic(), deadline, f"the invocations did not finish: {invocations}")
            time.sleep(0.05)

    def test_runs_a_python_handler_and_answers_its_result(self) -> None:
        name = self.function(ECHO_FUNCTION, Environment={"Variables": {"GREETING": "hello"}})
        response, result = self.invoke(name, {"DeploymentId": "d-SELFTEST1"}, LogType="Tail")
        self.assertEqual(response["StatusCode"], 200)
        self.assertNotIn("FunctionError", response)
        self.assertEqual(response["ExecutedVersion"], "$LATEST")
        self.assertEqual(result["event"], {"DeploymentId": "d-SELFTEST1"})
        self.assertEqual(
            (result["greeting"], result["function_name"], result["function_version"]),
            ("hello", name, "$LATEST"),
        )
        self.assertTrue(0 < result["remaining_ms"] <= 3000, result)
        self.assertIn("echo got", base64.b64decode(response["LogResult"]).decode())
        [logged] = self.invocations(name)
        self.assertEqual(
            {k: logged[k] for k in ("qualifier", "invocation_type", "payload", "status", "ran_code")},
            {
                "qualifier": None,
                "invocation_type": "RequestResponse",
                "payload": {"DeploymentId": "d-SELFTEST1"},
                "status": "succeeded",
                "ran_code": True,
            },
        )
        self.assertEqual((logged["result"], logged["error"]), (result, None))
        self.assertEqual(logged["request_id"], result["request_id"])
        self.assertIn("echo got", logged["stdout"])

    def test_an_exception_is_an_unhandled_function_error(self) -> None:
        name = self.function(FAILING_FUNCTION)
        response, result = self.invoke(name, {"DeploymentId": "d-SELFTEST2"})
        self.assertEqual((response["StatusCode"], response["FunctionError"]), (200, "Unhandled"))
        self.assertEqual(
            (result["errorType"], result["errorMessage"]), ("ValueError", "the hook failed: d-SELFTEST2")
        )
        [logged] = self.invocations(name)
        self.assertEqual(logged["status"], "failed")
        self.assertEqual(logged["error"]["errorType"], "ValueError")
        self.assertIn("[ERROR] ValueError: the hook failed", logged["stderr"])

    def test_the_timeout_stops_the_handler(self) -> None:
        name = self.function(SLOW_FUNCTION, Timeout=1)
        started = time.monotonic()
        response, result = self.invoke(name, {"seconds": 30})
        self.assertLess(time.monotonic() - started, 10)
        self.assertEqual(response["FunctionError"], "Unhandled")
        self.assertEqual(result["errorType"], "Sandbox.Timedout")
        self.assertIn("Task timed out after 1.00 seconds", result["errorMessage"])

    def test_the_qualifier_selects_a_version_or_an_alias(self) -> None:
        name = self.function(ECHO_FUNCTION, Environment={"Variables": {"GREETING": "first"}})
        version = self.lam.publish_version(FunctionName=name)["Version"]
        self.lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
        self.lam.update_function_configuration(
            FunctionName=name, Environment={"Variables": {"GREETING": "second"}}
        )
        self.lam.update_function_code(FunctionName=name, ZipFile=function_zip(FAILING_FUNCTION))
        for target, options in (
            (name, {"Qualifier": "live"}),
            (name, {"Qualifier": version}),
            (f"{name}:live", {}),
        ):
            with self.subTest(target=target, options=options):
                response, result = self.invoke(target, {"n": 1}, **options)
                self.assertNotIn("FunctionError", response)
                self.assertEqual(response["ExecutedVersion"], version)
                self.assertEqual((result["greeting"], result["function_version"]), ("first", version))
        response, result = self.invoke(name, {"DeploymentId": "d-LATEST"}, Qualifier="$LATEST")
        self.assertEqual((response["ExecutedVersion"], response["FunctionError"]), ("$LATEST", "Unhandled"))
        self.assertEqual(
            [(i["qualifier"], i["executed_version"], i["status"]) for i in self.invocations(name)],
            [
                ("live", version, "succeeded"),
                (version, version, "succeeded"),
                ("live", version, "succeeded"),
                ("$LATEST", "$LATEST", "failed"),
            ],
        )

    def test_an_event_invocation_answers_at_once_and_runs_in_the_background(self) -> None:
        name = self.function(SLOW_FUNCTION)
        started = time.monotonic()
        response, result = self.invoke(name, {"seconds": 1}, InvocationType="Event")
        self.assertLess(time.monotonic() - started, 1)
        self.assertEqual((response["StatusCode"], result), (202, None))
        [running] = self.invocations(name)
        self.assertEqual((running["status"], running["invocation_type"]), ("running", "Event"))
        [logged] = self.finished(name)
        self.assertEqual((logged["status"], logged["result"]), ("succeeded", "done"))

    def test_a_failing_event_invocation_is_logged_as_failed(self) -> None:
        name = self.function(FAILING_FUNCTION)
        payload = {"DeploymentId": "d-SELFTEST3", "LifecycleEventHookExecutionId": "hook-1"}
        response, _ = self.invoke(name, payload, InvocationType="Event", Qualifier="$LATEST")
        self.assertEqual(response["StatusCode"], 202)
        [logged] = self.finished(name)
        self.assertEqual((logged["status"], logged["payload"]), ("failed", payload))
        self.assertEqual(logged["error"]["errorMessage"], "the hook failed: d-SELFTEST3")

    def test_the_handler_reaches_the_emulator_with_its_environment(self) -> None:
        client("s3").create_bucket(Bucket="selftest-lambda-bucket")
        queue = client("sqs").create_queue(QueueName="selftest-lambda-queue")["QueueUrl"]
        name = self.function(CALLING_FUNCTION, Environment={"Variables": {"ENDPOINT": url}}, Timeout=30)
        response, result = self.invoke(name, {})
        self.assertNotIn("FunctionError", response, result)
        self.assertIn("selftest-lambda-bucket", result["buckets"])
        self.assertIn(queue, result["queues"])
        self.assertEqual(
            (result["access_key"], result["region"], result["function"]), ("testing", "us-east-1", name)
        )

    def test_other_runtimes_keep_motos_echo(self) -> None:
        name = self.function("exports.handler = async () => 'never';", runtime="nodejs20.x")
        response, result = self.invoke(name, {"echo": "me"})
        self.assertEqual((response["StatusCode"], result), (200, {"echo": "me"}))
        [logged] = self.invocations(name)
        self.assertEqual(
            (logged["ran_code"], logged["status"], logged["result"]), (False, "succeeded", {"echo": "me"})
        )

    def test_motos_no_docker_setting_changes_nothing(self) -> None:
        emulator("/moto-api/config", method="POST", body={"lambda": {"use_docker": False}})
        name = self.function(ECHO_FUNCTION)
        _, result = self.invoke(name, {"after": "config"})
        self.assertEqual(result["event"], {"after": "config"})

    def test_the_log_resets_and_unknown_endpoints_list_it(self) -> None:
        self.invoke(self.function(ECHO_FUNCTION), {})
        self.assertTrue(emulator("/cutover-emulator/lambda-invocations")["invocations"])
        emulator("/cutover-emulator/lambda-invocations/reset", method="POST")
        self.assertEqual(emulator("/cutover-emulator/lambda-invocations"), {"invocations": []})
        with self.assertRaises(urllib.error.HTTPError) as missing:
            emulator("/cutover-emulator/nothing")
        self.assertEqual(missing.exception.code, 404)
        self.assertIn("GET /cutover-emulator/lambda-invocations", json.load(missing.exception)["endpoints"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--agent-dir", type=Path, required=True, help="the folder holding the cutover-agent binary"
    )
    args, rest = parser.parse_known_args()
    agent_dir = args.agent_dir.resolve()
    if not (agent_dir / "cutover-agent").is_file():
        sys.exit(
            f"selftest: {agent_dir}/cutover-agent does not exist; build it with cargo build -p cutover-agent"
        )
    unittest.main(argv=[sys.argv[0], *rest])
