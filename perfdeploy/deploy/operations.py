"""Stack operations that start something on AWS, each carrying a ClientRequestToken.

botocore retries a call whose answer was lost (a read timeout, a dropped connection) with the same
parameters. Without a token CloudFormation takes the retry for a second request and refuses it while the
first one runs (the change set is already gone, the stack is no longer in a state to cancel from); with the
token it knows the request and answers as it did the first time. ExecuteChangeSet, CancelUpdateStack,
ContinueUpdateRollback, RollbackStack and DeleteStack take one (CloudFormation API reference, e.g.
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ExecuteChangeSet.html); the token is
made once per operation, so every retry of it carries the same one.
"""

from __future__ import annotations

import uuid


def request_token() -> str:
    """A new token (CloudFormation's pattern: [a-zA-Z0-9][-a-zA-Z0-9]*, at most 128 characters)."""
    return f"perfdeploy-{uuid.uuid4().hex}"


def execute_change_set(cfn, arn: str, disable_rollback: bool = False) -> None:
    kwargs = {"ChangeSetName": arn, "ClientRequestToken": request_token()}
    if disable_rollback:
        kwargs["DisableRollback"] = True
    cfn.execute_change_set(**kwargs)


def cancel_update(cfn, stack: str) -> None:
    cfn.cancel_update_stack(StackName=stack, ClientRequestToken=request_token())


def continue_update_rollback(cfn, stack: str, skip: list[str]) -> None:
    cfn.continue_update_rollback(StackName=stack, ResourcesToSkip=skip, ClientRequestToken=request_token())


def rollback_stack(cfn, stack: str) -> None:
    cfn.rollback_stack(StackName=stack, ClientRequestToken=request_token())


def delete_stack(cfn, stack: str, retain: list[str] | None = None) -> None:
    kwargs = {"StackName": stack, "ClientRequestToken": request_token()}
    if retain:
        kwargs["RetainResources"] = retain
    cfn.delete_stack(**kwargs)
