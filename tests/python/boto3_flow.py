"""The CodeDeploy flow of tests/tests/serve.rs, driven by boto3 against `cutover serve`.

Usage: boto3_flow.py ENDPOINT BUCKET GOOD_KEY BAD_KEY
The environment carries the key pair (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), the region
and, for S3, AWS_ENDPOINT_URL_S3; CUTOVER_FLOW_GROUP (JSON) adds settings to the deployment
group (the hosts to deploy to, for one) and CUTOVER_FLOW_HOSTS says how many hosts they are
(default 1). Prints one line per check and exits non-zero on the first that fails.
"""

import json
import os
import sys

import boto3
import botocore.exceptions
from botocore.config import Config


def main() -> None:
    endpoint, bucket, good_key, bad_key = sys.argv[1:5]
    config = Config(retries={"max_attempts": 1})
    cd = boto3.client("codedeploy", endpoint_url=endpoint, config=config)

    app_id = cd.create_application(applicationName="Shop")["applicationId"]
    assert len(app_id) == 36, app_id
    cd.create_deployment_config(
        deploymentConfigName="Quarter",
        minimumHealthyHosts={"type": "FLEET_PERCENT", "value": 75},
    )
    quarter = cd.get_deployment_config(deploymentConfigName="Quarter")["deploymentConfigInfo"]
    assert quarter["minimumHealthyHosts"] == {"type": "FLEET_PERCENT", "value": 75}, quarter
    hosts = int(os.environ.get("CUTOVER_FLOW_HOSTS", "1"))
    cd.create_deployment_group(
        applicationName="Shop",
        deploymentGroupName="Web",
        serviceRoleArn="arn:aws:iam::123456789012:role/CodeDeploy",
        deploymentConfigName="CodeDeployDefault.OneAtATime",
        **json.loads(os.environ.get("CUTOVER_FLOW_GROUP", "{}")),
    )
    group = cd.get_deployment_group(applicationName="Shop", deploymentGroupName="Web")
    info = group["deploymentGroupInfo"]
    assert info["deploymentConfigName"] == "CodeDeployDefault.OneAtATime", group
    print("created the application, configuration and group")

    waiter = cd.get_waiter("deployment_successful")
    waiter.config.delay = 1

    def deploy(key: str) -> str:
        return cd.create_deployment(
            applicationName="Shop",
            deploymentGroupName="Web",
            revision={
                "revisionType": "S3",
                "s3Location": {"bucket": bucket, "key": key, "bundleType": "zip"},
            },
        )["deploymentId"]

    good = deploy(good_key)
    waiter.wait(deploymentId=good)
    info = cd.get_deployment(deploymentId=good)["deploymentInfo"]
    assert info["status"] == "Succeeded", info
    assert info["deploymentOverview"]["Succeeded"] == hosts, info
    print(f"{good} succeeded")

    bad = deploy(bad_key)
    try:
        waiter.wait(deploymentId=bad)
        raise AssertionError(f"{bad} should have failed")
    except botocore.exceptions.WaiterError as e:
        assert "Failed" in str(e), e
    info = cd.get_deployment(deploymentId=bad)["deploymentInfo"]
    assert info["status"] == "Failed", info
    print(f"{bad} failed, and the waiter said so")

    listed = cd.list_deployments(applicationName="Shop", deploymentGroupName="Web")
    assert listed["deployments"] == [bad, good], listed
    targets = cd.list_deployment_targets(deploymentId=bad)["targetIds"]
    found = cd.batch_get_deployment_targets(deploymentId=bad, targetIds=targets)
    events = found["deploymentTargets"][0]["instanceTarget"]["lifecycleEvents"]
    failed = [e for e in events if e["status"] == "Failed"]
    assert failed and failed[0]["lifecycleEventName"] == "ValidateService", events
    assert failed[0]["diagnostics"]["errorCode"] == "ScriptFailed", failed
    print("the failed target says which script failed")

    def code(call, **kwargs) -> str:
        try:
            call(**kwargs)
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]["Code"]
        raise AssertionError(f"{call.__name__} succeeded")

    assert code(cd.get_application, applicationName="Nope") == "ApplicationDoesNotExistException"
    assert code(cd.stop_deployment, deploymentId=good) == "DeploymentAlreadyCompletedException"
    assert (
        code(cd.create_deployment_group, applicationName="Shop", deploymentGroupName="Web",
             serviceRoleArn="arn:aws:iam::123456789012:role/CodeDeploy")
        == "DeploymentGroupAlreadyExistsException"
    )
    wrong = boto3.client(
        "codedeploy", endpoint_url=endpoint, config=config,
        aws_access_key_id=boto3.Session().get_credentials().access_key,
        aws_secret_access_key="not-the-secret",
    )
    assert code(wrong.list_applications) == "InvalidSignatureException"
    print("errors are CodeDeploy's exceptions")


if __name__ == "__main__":
    main()
