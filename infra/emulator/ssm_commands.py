"""SSM Run Command for the emulator: runs the scripts of runShellScript documents on simulated hosts.

moto accepts SendCommand but runs nothing: every invocation reports Success with empty output at
once. This module replaces that, for documents created in moto whose one step is
`aws:runShellScript` (cutover's infra/ssm/cutover-run-agent.yaml is one):

- SendCommand checks the call the way SSM does (the document exists, the parameters are declared,
  required ones are given, values match allowedPattern/allowedValues, the instances are known),
  renders the step's `runCommand` with the parameters, and starts `/bin/sh` on it for each
  instance, in the background, each in its own process group. An instance's "host" is the folder
  `<hosts-dir>/<instance-id>`; the script finds it in CUTOVER_HOST_ROOT.
- GetCommandInvocation, ListCommandInvocations and ListCommands report the real state:
  InProgress while the script runs, then Success / Failed / TimedOut / Cancelled with its exit
  code and output, truncated like SSM's (24,000 characters of stdout, 8,000 of stderr).
- CancelCommand kills the process groups; the step's timeoutSeconds is enforced the same way.

An EC2 instance tagged `cutover-emulator:agent` = `absent` gets no agent on PATH, so the
document's "agent missing" branch runs. Commands for documents this module does not run (for
instance AWS-owned ones such as AWS-RunShellScript, which moto does not hold) keep moto's
canned answers.
"""

from __future__ import annotations

import datetime
import os
import re
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.models import ec2_backends
from moto.ssm import models as ssm_models
from moto.ssm.exceptions import InvalidDocument, InvalidDocumentVersion
from moto.ssm.responses import SimpleSystemManagerResponse

# What SSM keeps of a plugin's output in GetCommandInvocation, and what it appends when it cuts.
STDOUT_LIMIT = 24_000
STDERR_LIMIT = 8_000
STDOUT_TRUNCATED = "\n---Output truncated---"
STDERR_TRUNCATED = "\n---Error truncated----"
# ListCommandInvocations' CommandPlugins[].Output holds stdout and stderr in 2,500 characters.
PLUGIN_OUTPUT_LIMIT = 2_500
PLUGIN_OUTPUT_ERROR_MARK = "\n----------ERROR-------\n"

# aws:runShellScript's default timeoutSeconds, and the largest SSM allows.
DEFAULT_EXECUTION_TIMEOUT = 3600
MAX_EXECUTION_TIMEOUT = 172_800
# The SSM agent's exit code for a script it stopped (timeout or cancel): 128 + SIGKILL.
STOPPED_EXIT_CODE = 137
# ResponseCode while a plugin has not finished.
NO_RESPONSE_CODE = -1

# The EC2 tag that takes the agent away from an instance's PATH.
AGENT_TAG_KEY = "cutover-emulator:agent"
AGENT_ABSENT = "absent"
# The agent binary's name, which an "absent" host must not find on PATH.
AGENT_BINARY = "cutover-agent"
# The PATH the SSM agent gives the scripts it runs on Linux.
SSM_AGENT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Where, in host terms, the emulator keeps each host's deployment root.
HOST_DEPLOYMENT_ROOT = "/opt/cutover/deployment-root"

# `{{ name }}` or `{{name}}`: how SSM documents refer to their parameters.
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")


@dataclass(frozen=True)
class HostSettings:
    """Where the simulated hosts live and where the agent binary is."""

    hosts_dir: Path
    agent_dir: Path | None


_settings: HostSettings | None = None
# Every invocation whose script may still run, so that a reset or shutdown can stop them all.
_live_runs: set[HostRun] = set()
_live_runs_lock = threading.Lock()


class InvalidInstanceId(ServiceException):
    code = "InvalidInstanceId"


class DuplicateInstanceId(ServiceException):
    code = "DuplicateInstanceId"


class InvalidParameters(ServiceException):
    code = "InvalidParameters"


class InvalidPluginName(ServiceException):
    code = "InvalidPluginName"


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def iso_time(moment: datetime.datetime | None) -> str:
    """SSM's ISO 8601 form with milliseconds, such as 2024-05-01T12:00:00.123Z ("" if unset)."""
    if moment is None:
        return ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


def truncate(text: str, limit: int, suffix: str) -> str:
    """The first `limit` characters of `text`, ending with `suffix` when something was cut."""
    if len(text) <= limit:
        return text
    return text[: limit - len(suffix)] + suffix


# --- The document -------------------------------------------------------------------------


@dataclass(frozen=True)
class ShellStep:
    """The one aws:runShellScript step of a document, with its parameter declarations."""

    name: str
    run_command: Any
    timeout_seconds: Any
    declared: dict[str, dict[str, Any]]

    @staticmethod
    def of(document: ssm_models.Document) -> ShellStep | None:
        """The step, if the document is a Command document of one aws:runShellScript step."""
        if document.document_type not in (None, "Command"):
            return None
        steps = getattr(document, "mainSteps", None) or []
        if len(steps) != 1 or steps[0].get("action") != "aws:runShellScript":
            return None
        step = steps[0]
        inputs = step.get("inputs") or {}
        return ShellStep(
            name=step.get("name") or "aws:runShellScript",
            run_command=inputs.get("runCommand", []),
            timeout_seconds=inputs.get("timeoutSeconds"),
            declared=document.content_json.get("parameters") or {},
        )

    def resolve(self, given: dict[str, list[str]]) -> dict[str, str | list[str]]:
        """The value of every declared parameter, checked as SSM checks them (InvalidParameters)."""
        unknown = sorted(set(given) - set(self.declared))
        if unknown:
            raise InvalidParameters(
                f"Parameters {unknown} are not defined in the document; "
                f"its parameters are {sorted(self.declared)}."
            )
        values: dict[str, str | list[str]] = {}
        missing = []
        for name, spec in self.declared.items():
            kind = spec.get("type", "String")
            if name in given:
                raw = [str(v) for v in given[name]]
            elif "default" in spec:
                default = spec["default"]
                raw = [str(v) for v in default] if isinstance(default, list) else [str(default)]
            else:
                missing.append(name)
                continue
            if kind == "StringList":
                values[name] = raw
            elif len(raw) == 1:
                values[name] = raw[0]
            else:
                raise InvalidParameters(
                    f'Parameter "{name}" is of type {kind} and takes one value, not {len(raw)}.'
                )
            pattern = spec.get("allowedPattern")
            allowed = spec.get("allowedValues")
            for value in raw:
                if pattern is not None and not re.fullmatch(pattern, value):
                    raise InvalidParameters(
                        f'Parameter "{name}" value {value!r} failed to satisfy constraint: '
                        f'allowedPattern "{pattern}".'
                    )
                if allowed is not None and value not in [str(a) for a in allowed]:
                    raise InvalidParameters(
                        f'Parameter "{name}" value {value!r} failed to satisfy constraint: '
                        f"allowedValues {allowed}."
                    )
        if missing:
            raise InvalidParameters(f"Required parameters {sorted(missing)} were not given.")
        return values

    def script(self, values: dict[str, str | list[str]]) -> str:
        """The rendered runCommand, one line per item, as the SSM agent writes it to _script.sh."""
        items = self.run_command if isinstance(self.run_command, list) else [self.run_command]
        lines: list[str] = []
        for item in items:
            spliced = PLACEHOLDER.fullmatch(str(item).strip())
            if spliced and isinstance(values.get(spliced.group(1)), list):
                # A StringList parameter standing alone on a line gives one line per value.
                lines.extend(values[spliced.group(1)])
            else:
                lines.append(render(str(item), values))
        return "\n".join(lines) + "\n"

    def timeout(self, values: dict[str, str | list[str]]) -> int:
        if self.timeout_seconds is None:
            return DEFAULT_EXECUTION_TIMEOUT
        try:
            seconds = int(render(str(self.timeout_seconds), values))
        except ValueError:
            raise InvalidParameters(
                f"timeoutSeconds {self.timeout_seconds!r} of step {self.name} is not a number of seconds."
            ) from None
        return max(1, min(seconds, MAX_EXECUTION_TIMEOUT))


def render(text: str, values: dict[str, str | list[str]]) -> str:
    """`text` with `{{ name }}` replaced by the parameter's value (a list joins with commas)."""

    def value_of(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        if value is None:
            return match.group(0)
        return ",".join(value) if isinstance(value, list) else value

    return PLACEHOLDER.sub(value_of, text)


# --- One invocation: a script running on one host ----------------------------------------


class HostRun:
    """One command invocation: the rendered script on one instance, and what became of it.

    States follow SSM's: Pending (never delivered: the instance is stopped), InProgress, then one
    of Success, Failed, TimedOut or Cancelled. Output is read from the files the script wrote
    once it has ended; until then it is empty, as in SSM.
    """

    def __init__(
        self,
        command: ssm_models.Command,
        instance_id: str,
        plugin_name: str,
        document_version: str,
        script: str,
        execution_timeout: int,
        env: dict[str, str] | None,
        host_root: Path,
    ):
        self.command = command
        self.instance_id = instance_id
        self.plugin_name = plugin_name
        self.document_version = document_version
        self.script = script
        self.execution_timeout = execution_timeout
        self.env = env
        self.host_root = host_root
        self.lock = threading.Lock()
        self.status = "Pending"
        self.status_details = "Pending"
        self.response_code = NO_RESPONSE_CODE
        self.started_at: datetime.datetime | None = None
        self.ended_at: datetime.datetime | None = None
        self.stdout = ""
        self.stderr = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.stop_reason: str | None = None  # "Cancelled" or "TimedOut" once it is being stopped
        # Where the SSM agent keeps a plugin's script and output, under the host's root.
        self.workdir = (
            host_root
            / "var/lib/amazon/ssm"
            / instance_id
            / "document/orchestration"
            / command.command_id
            / plugin_name
        )

    @property
    def finished(self) -> bool:
        return self.status not in ("Pending", "InProgress")

    def start(self) -> None:
        """Runs the script in the background, or leaves it pending when it cannot be delivered."""
        if self.env is None:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        script_path = self.workdir / "_script.sh"
        script_path.write_text(self.script)
        script_path.chmod(0o700)
        with self.lock:
            with open(self.workdir / "stdout", "wb") as out, open(self.workdir / "stderr", "wb") as err:
                self.process = subprocess.Popen(
                    ["/bin/sh", str(script_path)],
                    cwd=self.workdir,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    # Its own process group, so that cancel and timeout reach all it started.
                    start_new_session=True,
                )
            self.status = self.status_details = "InProgress"
            self.started_at = now()
        with _live_runs_lock:
            _live_runs.add(self)
        threading.Thread(target=self._watch, name=f"ssm-{self.instance_id}", daemon=True).start()

    def _watch(self) -> None:
        assert self.process is not None
        try:
            exit_code = self.process.wait(timeout=self.execution_timeout)
        except subprocess.TimeoutExpired:
            self.stop("TimedOut")
            exit_code = self.process.wait()
        self._finish(exit_code)

    def stop(self, reason: str) -> None:
        """Kills the script's process group, as the SSM agent does on cancel or timeout."""
        with self.lock:
            if self.process is None or self.finished or self.stop_reason is not None:
                if self.process is None and not self.finished and reason == "Cancelled":
                    # Never delivered: cancelling just ends it.
                    self.status = self.status_details = "Cancelled"
                    self.ended_at = now()
                return
            self.stop_reason = reason
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _finish(self, exit_code: int) -> None:
        stdout = (self.workdir / "stdout").read_text(errors="replace")
        stderr = (self.workdir / "stderr").read_text(errors="replace")
        with self.lock:
            self.ended_at = now()
            if self.stop_reason is not None:
                self.response_code = STOPPED_EXIT_CODE
                self.status = self.stop_reason
                self.status_details = "ExecutionTimedOut" if self.stop_reason == "TimedOut" else "Cancelled"
            else:
                self.response_code = exit_code
                self.status = self.status_details = "Success" if exit_code == 0 else "Failed"
            if self.response_code != 0:
                # The SSM agent adds this line to the stderr of every script that did not succeed.
                if stderr and not stderr.endswith("\n"):
                    stderr += "\n"
                stderr += f"failed to run commands: exit status {self.response_code}"
            self.stdout = truncate(stdout, STDOUT_LIMIT, STDOUT_TRUNCATED)
            self.stderr = truncate(stderr, STDERR_LIMIT, STDERR_TRUNCATED)
        with _live_runs_lock:
            _live_runs.discard(self)

    def _check_delivery(self) -> None:
        """A command never delivered times out when the SendCommand timeout has passed."""
        if (
            self.env is None
            and self.status == "Pending"
            and now() >= self.command.expires_after.replace(tzinfo=datetime.UTC)
        ):
            self.status = "TimedOut"
            self.status_details = "DeliveryTimedOut"

    def invocation(self) -> dict[str, Any]:
        """The GetCommandInvocation answer."""
        with self.lock:
            self._check_delivery()
            elapsed = ""
            if self.started_at is not None:
                elapsed = iso_duration(((self.ended_at or now()) - self.started_at).total_seconds())
            return {
                "CommandId": self.command.command_id,
                "InstanceId": self.instance_id,
                "Comment": self.command.comment,
                "DocumentName": self.command.document_name,
                "DocumentVersion": self.document_version,
                "PluginName": self.plugin_name,
                "ResponseCode": self.response_code,
                "ExecutionStartDateTime": iso_time(self.started_at),
                "ExecutionElapsedTime": elapsed,
                "ExecutionEndDateTime": iso_time(self.ended_at),
                "Status": self.status,
                "StatusDetails": self.status_details,
                "StandardOutputContent": self.stdout,
                "StandardOutputUrl": "",
                "StandardErrorContent": self.stderr,
                "StandardErrorUrl": "",
                "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False},
            }

    def list_entry(self, details: bool) -> dict[str, Any]:
        """The ListCommandInvocations entry (with CommandPlugins when `details`)."""
        answer = self.invocation()
        entry: dict[str, Any] = {
            "CommandId": answer["CommandId"],
            "InstanceId": answer["InstanceId"],
            "InstanceName": "",
            "Comment": answer["Comment"],
            "DocumentName": answer["DocumentName"],
            "DocumentVersion": answer["DocumentVersion"],
            "RequestedDateTime": self.command.requested_date_time,
            "Status": answer["Status"],
            "StatusDetails": answer["StatusDetails"],
            "TraceOutput": "",
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "CommandPlugins": [],
            "ServiceRole": self.command.service_role_arn,
            "NotificationConfig": self.command.notification_config,
            "CloudWatchOutputConfig": answer["CloudWatchOutputConfig"],
        }
        if details:
            output = answer["StandardOutputContent"]
            if answer["StandardErrorContent"]:
                output += PLUGIN_OUTPUT_ERROR_MARK + answer["StandardErrorContent"]
            entry["CommandPlugins"] = [
                {
                    "Name": self.plugin_name,
                    "Status": answer["Status"],
                    "StatusDetails": answer["StatusDetails"],
                    "ResponseCode": answer["ResponseCode"],
                    "ResponseStartDateTime": self.started_at,
                    "ResponseFinishDateTime": self.ended_at,
                    "Output": truncate(output, PLUGIN_OUTPUT_LIMIT, STDOUT_TRUNCATED),
                    "StandardOutputUrl": "",
                    "StandardErrorUrl": "",
                    "OutputS3Region": self.command.output_s3_region,
                    "OutputS3BucketName": self.command.output_s3_bucket_name,
                    "OutputS3KeyPrefix": self.command.output_s3_key_prefix,
                }
            ]
        return entry


def stop_all() -> None:
    """Kills every script that still runs (the emulator is shutting down or being reset)."""
    with _live_runs_lock:
        runs = list(_live_runs)
    for run in runs:
        run.stop("Cancelled")


# --- Hosts ---------------------------------------------------------------------------------


def host_environment(instance_id: str, region: str, host_root: Path, with_agent: bool) -> dict[str, str]:
    """The environment of the script on one host: SSM's PATH, plus the agent's folder if it has one."""
    assert _settings is not None
    path = [d for d in SSM_AGENT_PATH.split(":")]
    if with_agent:
        if _settings.agent_dir is not None:
            path.insert(0, str(_settings.agent_dir))
    else:
        # A host without the agent must not find one installed on this machine either.
        path = [d for d in path if not os.access(os.path.join(d, AGENT_BINARY), os.X_OK)]
    return {
        "PATH": ":".join(path),
        "AWS_SSM_INSTANCE_ID": instance_id,
        "AWS_SSM_REGION_NAME": region,
        "CUTOVER_HOST_ROOT": str(host_root),
        "CUTOVER_DEPLOYMENT_ROOT": HOST_DEPLOYMENT_ROOT,
    }


def check_instances(account_id: str, region: str, instance_ids: list[str]) -> None:
    """Refuses what SSM refuses: duplicates, and instances that are unknown or gone."""
    if len(set(instance_ids)) != len(instance_ids):
        raise DuplicateInstanceId("Instance Id list has duplicate entries.")
    ec2 = ec2_backends[account_id][region]
    invalid = []
    for instance_id in instance_ids:
        if instance_id.startswith("mi-"):
            continue  # a managed (on-premises) instance: SSM knows it without EC2
        instance = ec2.get_instance_by_id(instance_id)
        if instance is None or instance.state in ("shutting-down", "terminated"):
            invalid.append(instance_id)
    if invalid:
        raise InvalidInstanceId(f"Instances [{invalid}] not in a valid state for account {account_id}")


def instance_has_agent(account_id: str, region: str, instance_id: str) -> bool:
    instance = ec2_backends[account_id][region].get_instance_by_id(instance_id)
    if instance is None:
        return True
    tags = {tag["key"]: tag["value"] for tag in instance.get_tags()}
    return tags.get(AGENT_TAG_KEY) != AGENT_ABSENT


def instance_is_up(account_id: str, region: str, instance_id: str) -> bool:
    instance = ec2_backends[account_id][region].get_instance_by_id(instance_id)
    return instance is None or instance.state in ("pending", "running")


# --- The SSM API, as moto's response handler methods ---------------------------------------


def find_document(
    backend: ssm_models.SimpleSystemManagerBackend, name: str, version: str | None
) -> ssm_models.Document | None:
    """The document SendCommand names; AWS-owned documents, which moto lacks, give None."""
    documents = backend._documents.get(name)
    if documents is None:
        if name.startswith("AWS-"):
            return None
        raise InvalidDocument("The specified document does not exist.")
    if version in (None, "", "$DEFAULT"):
        return documents.get_default_version()
    document = documents.find(version)
    if document is None:
        raise InvalidDocumentVersion("The document version is not valid or does not exist.")
    return document


def send_command(self: SimpleSystemManagerResponse) -> ActionResult:
    """SendCommand: moto's, plus checks like SSM's and, for a shell document, the scripts run."""
    backend = self.ssm_backend
    document_name = self._get_param("DocumentName")
    document_version = self._get_param("DocumentVersion")
    instance_ids = self._get_param("InstanceIds", [])
    parameters = self._get_param("Parameters", {})

    # Everything SSM would refuse is refused before moto records the command.
    check_instances(self.current_account, self.region, instance_ids)
    document = find_document(backend, document_name, document_version)
    step = ShellStep.of(document) if document is not None else None
    if step is not None:
        values = step.resolve(parameters)
        script = step.script(values)
        timeout = step.timeout(values)

    command = backend.send_command(
        comment=self._get_param("Comment", ""),
        document_name=document_name,
        timeout_seconds=self._get_int_param("TimeoutSeconds"),
        instance_ids=instance_ids,
        max_concurrency=self._get_param("MaxConcurrency", "50"),
        max_errors=self._get_param("MaxErrors", "0"),
        notification_config=self._get_param("NotificationConfig"),
        output_s3_bucket_name=self._get_param("OutputS3BucketName", ""),
        output_s3_key_prefix=self._get_param("OutputS3KeyPrefix", ""),
        output_s3_region=self._get_param("OutputS3Region", ""),
        parameters=parameters,
        service_role_arn=self._get_param("ServiceRoleArn", ""),
        targets=self._get_param("Targets", []),
    )
    command.document_version = document.document_version if document is not None else "1"
    if step is not None:
        assert _settings is not None
        command.host_runs = {}
        for instance_id in command.instance_ids:
            host_root = _settings.hosts_dir / instance_id
            host_root.mkdir(parents=True, exist_ok=True)
            env = None
            if instance_is_up(self.current_account, self.region, instance_id):
                with_agent = instance_has_agent(self.current_account, self.region, instance_id)
                env = host_environment(instance_id, self.region, host_root, with_agent)
            run = HostRun(
                command, instance_id, step.name, command.document_version, script, timeout, env, host_root
            )
            command.host_runs[instance_id] = run
            run.start()
    return ActionResult({"Command": command.response_object()})


def cancel_command(self: SimpleSystemManagerResponse) -> ActionResult:
    """CancelCommand: stops the command's scripts (all of them, or those of InstanceIds)."""
    command = self.ssm_backend.get_command_by_id(self._get_param("CommandId"))
    instance_ids = self._get_param("InstanceIds") or command.instance_ids
    for instance_id in instance_ids:
        run = getattr(command, "host_runs", {}).get(instance_id)
        if run is not None:
            run.stop("Cancelled")
    return EmptyResult()


def list_command_invocations(self: SimpleSystemManagerResponse) -> ActionResult:
    """ListCommandInvocations, newest command first (Filters and paging are not supported)."""
    command_id = self._get_param("CommandId")
    instance_id = self._get_param("InstanceId")
    details = bool(self._get_param("Details", False))
    commands = self.ssm_backend.list_commands(command_id, instance_id)
    entries = []
    for command in reversed(commands):
        for invocation_instance in command.instance_ids:
            if instance_id and invocation_instance != instance_id:
                continue
            run = getattr(command, "host_runs", {}).get(invocation_instance)
            if run is not None:
                entries.append(run.list_entry(details))
            else:
                entries.append(canned_list_entry(command, invocation_instance, details))
    return ActionResult({"CommandInvocations": entries})


def canned_list_entry(command: ssm_models.Command, instance_id: str, details: bool) -> dict[str, Any]:
    """A ListCommandInvocations entry for a command moto answers by itself."""
    invocation = command.get_invocation(instance_id, None)
    entry = {
        key: invocation[key]
        for key in ("CommandId", "InstanceId", "Comment", "DocumentName", "Status", "StatusDetails")
    }
    entry.update({"RequestedDateTime": command.requested_date_time, "CommandPlugins": []})
    if details:
        entry["CommandPlugins"] = [
            {
                "Name": invocation["PluginName"],
                "Status": invocation["Status"],
                "StatusDetails": invocation["StatusDetails"],
                "ResponseCode": invocation["ResponseCode"],
                "Output": "",
            }
        ]
    return entry


# --- Hooks into moto's models --------------------------------------------------------------

_moto_get_invocation = ssm_models.Command.get_invocation
_moto_instance_ids_from_targets = ssm_models.Command._get_instance_ids_from_targets
_moto_response_object = ssm_models.Command.response_object
_moto_backend_reset = ssm_models.SimpleSystemManagerBackend.reset


def instance_ids_from_targets(self: ssm_models.Command) -> list[str]:
    """The instances Targets names. moto's own answer, for no Targets at all, is every EC2 instance."""
    if not self.targets:
        return []
    listed = [v for t in self.targets if t.get("Key") == "InstanceIds" for v in t.get("Values", [])]
    by_filter = [t for t in self.targets if t.get("Key") != "InstanceIds"]
    if not by_filter:
        return listed
    targets = self.targets
    try:
        self.targets = by_filter
        return listed + _moto_instance_ids_from_targets(self)
    finally:
        self.targets = targets


def get_invocation(self: ssm_models.Command, instance_id: str, plugin_name: str | None) -> dict[str, Any]:
    """GetCommandInvocation for a command whose scripts run here; moto's answer otherwise."""
    run = getattr(self, "host_runs", {}).get(instance_id)
    if run is None:
        return _moto_get_invocation(self, instance_id, plugin_name)
    if plugin_name is not None and plugin_name != run.plugin_name:
        raise InvalidPluginName(
            f"The plugin name {plugin_name} is not valid; this command's plugin is {run.plugin_name}."
        )
    return run.invocation()


def response_object(self: ssm_models.Command) -> dict[str, Any]:
    """The Command of SendCommand and ListCommands, with its status summed up from its runs."""
    answer = _moto_response_object(self)
    answer["DocumentVersion"] = getattr(self, "document_version", "1")
    runs = list(getattr(self, "host_runs", {}).values())
    if runs:
        statuses = [run.invocation()["Status"] for run in runs]
        done = [s for s in statuses if s not in ("Pending", "InProgress")]
        errors = [s for s in done if s in ("Failed", "TimedOut")]
        if len(done) < len(statuses):
            status = "InProgress" if any(s == "InProgress" for s in statuses) or done else "Pending"
        elif all(s == "Success" for s in statuses):
            status = "Success"
        elif "Cancelled" in statuses:
            status = "Cancelled"
        elif "Failed" in statuses:
            status = "Failed"
        else:
            status = "TimedOut"
        answer.update(
            {
                "Status": status,
                "StatusDetails": status,
                "CompletedCount": len(done),
                "ErrorCount": len(errors),
                "TargetCount": len(runs),
            }
        )
    return answer


def reset_backend(self: ssm_models.SimpleSystemManagerBackend) -> None:
    """moto's reset, after stopping the scripts of the commands it forgets."""
    for command in getattr(self, "_commands", []):
        for run in getattr(command, "host_runs", {}).values():
            run.stop("Cancelled")
    _moto_backend_reset(self)


def install(settings: HostSettings) -> None:
    """Puts Run Command into moto's SSM; call before the server handles requests."""
    global _settings
    _settings = settings
    settings.hosts_dir.mkdir(parents=True, exist_ok=True)
    ssm_models.Command._get_instance_ids_from_targets = instance_ids_from_targets
    ssm_models.Command.get_invocation = get_invocation
    ssm_models.Command.response_object = response_object
    ssm_models.SimpleSystemManagerBackend.reset = reset_backend
    SimpleSystemManagerResponse.send_command = send_command
    SimpleSystemManagerResponse.cancel_command = cancel_command
    SimpleSystemManagerResponse.list_command_invocations = list_command_invocations
