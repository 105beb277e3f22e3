"""The emulator's own test: starts launcher.py on a free loopback port and checks its extensions of moto.

It deploys examples/webapp through cutover's SSM document with the real cutover-agent, and checks
the agent-missing path, SSM's refusals, cancel, timeout, output truncation, the request counter
CloudWatch in RPC v2 CBOR and DescribeInstanceInformation.

Usage: .venv/bin/python infra/emulator/selftest.py --agent-dir target/debug [unittest options]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
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


def emulator(path: str, method: str = "GET") -> dict[str, Any]:
    request = urllib.request.Request(url + path, method=method)
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
