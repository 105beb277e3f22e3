"""DescribeInstanceInformation for the emulator, which moto 5.2.5 lacks: the managed nodes SSM lists.

Every EC2 instance in moto that is not terminated counts as a node with the SSM agent: `Online`
while it runs, `ConnectionLost` otherwise. On-premises managed instances (`mi-...`) have no
registry in moto, so one is listed (`Online`) when an `InstanceIds` filter names it, as
SendCommand accepts any of them. Filters: `InstanceIds`, `PingStatus`, `ResourceType`,
`PlatformTypes`, `tag:<key>` and `tag-key`, in `Filters` or the legacy
`InstanceInformationFilterList`. Pages hold MaxResults nodes (10 unless asked), as in SSM.
"""

from __future__ import annotations

from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ec2.models import ec2_backends
from moto.ssm.responses import SimpleSystemManagerResponse

DEFAULT_PAGE = 10
MAX_PAGE = 50
# What a node reports about its SSM agent and system.
AGENT_VERSION = "3.3.0.0"
PLATFORM = {"PlatformType": "Linux", "PlatformName": "Amazon Linux", "PlatformVersion": "2023"}
GONE_STATES = ("shutting-down", "terminated")


class InvalidFilterKey(ServiceException):
    code = "InvalidFilterKey"


class InvalidNextToken(ServiceException):
    code = "InvalidNextToken"


def nodes(account_id: str, region: str, named: list[str]) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """Every node with its tags: moto's EC2 instances, and the managed instances in `named`."""
    now = utcnow()
    found = []
    for instance in ec2_backends[account_id][region].all_instances():
        if instance.state in GONE_STATES:
            continue
        node = {
            "InstanceId": instance.id,
            "PingStatus": "Online" if instance.state == "running" else "ConnectionLost",
            "LastPingDateTime": now,
            "AgentVersion": AGENT_VERSION,
            "IsLatestVersion": True,
            **PLATFORM,
            "ResourceType": "EC2Instance",
            "IPAddress": instance.private_ip,
            "ComputerName": instance.private_dns_name,
            "SourceId": instance.id,
            "SourceType": "AWS::EC2::Instance",
        }
        found.append((node, {tag["key"]: tag["value"] for tag in instance.get_tags()}))
    for instance_id in dict.fromkeys(i for i in named if i.startswith("mi-")):
        node = {
            "InstanceId": instance_id,
            "PingStatus": "Online",
            "LastPingDateTime": now,
            "AgentVersion": AGENT_VERSION,
            "IsLatestVersion": True,
            **PLATFORM,
            "ResourceType": "ManagedInstance",
            "SourceId": instance_id,
            "SourceType": "AWS::SSM::ManagedInstance",
        }
        found.append((node, {}))
    return sorted(found, key=lambda pair: pair[0]["InstanceId"])


def matches(node: dict[str, Any], tags: dict[str, str], key: str, values: list[str]) -> bool:
    if key == "InstanceIds":
        return node["InstanceId"] in values
    if key == "PingStatus":
        return node["PingStatus"] in values
    if key == "ResourceType":
        return node["ResourceType"] in values
    if key == "PlatformTypes":
        return node["PlatformType"] in values
    if key == "tag-key":
        return any(k in tags for k in values)
    if key.startswith("tag:"):
        return tags.get(key[len("tag:") :]) in values
    raise InvalidFilterKey(
        f"The filter key {key} is not supported here; use InstanceIds, PingStatus, ResourceType, "
        "PlatformTypes, tag:<key> or tag-key."
    )


def describe_instance_information(self: SimpleSystemManagerResponse) -> ActionResult:
    """DescribeInstanceInformation over moto's EC2 instances and the managed instances asked for."""
    legacy = self._get_param("InstanceInformationFilterList") or []
    filters = [(f["key"], f["valueSet"]) for f in legacy]
    filters += [(f["Key"], f["Values"]) for f in self._get_param("Filters") or []]
    named = [value for key, values in filters if key == "InstanceIds" for value in values]
    listed = [
        node
        for node, tags in nodes(self.current_account, self.region, named)
        if all(matches(node, tags, key, values) for key, values in filters)
    ]
    page = min(self._get_int_param("MaxResults") or DEFAULT_PAGE, MAX_PAGE)
    token = self._get_param("NextToken")
    try:
        start = int(token) if token else 0
    except ValueError:
        raise InvalidNextToken("The NextToken is not valid.") from None
    answer: dict[str, Any] = {"InstanceInformationList": listed[start : start + page]}
    if start + page < len(listed):
        answer["NextToken"] = str(start + page)
    return ActionResult(answer)


def install() -> None:
    """Adds DescribeInstanceInformation to moto's SSM; call before the server handles requests."""
    SimpleSystemManagerResponse.describe_instance_information = describe_instance_information  # type: ignore[attr-defined]
