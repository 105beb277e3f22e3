"""A hook function for a Lambda deployment: it checks the new version, then reports to cutover.

cutover invokes it asynchronously with {"DeploymentId": ..., "LifecycleEventHookExecutionId": ...}
and waits (at most an hour) for PutLifecycleEventHookExecutionStatus with that id. The id is the
report's only authority: the function needs no cutover keys. Point boto3 at cutover with the
function's AWS_ENDPOINT_URL_CODEDEPLOY environment variable (cutover serve's URL, or the stack's
ApiUrl output).
"""

import json
import os

import boto3


def check(function_name: str, version: str) -> bool:
    """Invokes the version about to get traffic; True if it answers without an error."""
    if not function_name:
        return True
    answer = boto3.client("lambda").invoke(
        FunctionName=function_name,
        Qualifier=version,
        Payload=json.dumps({"smokeTest": True}).encode(),
    )
    return "FunctionError" not in answer


def handler(event, context):
    ok = check(os.environ.get("CHECK_FUNCTION", ""), os.environ.get("CHECK_VERSION", "$LATEST"))
    status = os.environ.get("FORCE_STATUS") or ("Succeeded" if ok else "Failed")
    boto3.client("codedeploy").put_lifecycle_event_hook_execution_status(
        deploymentId=event["DeploymentId"],
        lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
        status=status,
    )
    return {"status": status}
