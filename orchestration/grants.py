"""IAM for the operator calls of in-process task handlers: each task may make only the calls its
``TaskSpec`` grants in the deployed stack (``stacks.core_stack.CoreStack._grant_task``), so a
handler reaching a table, bucket or API it was not granted fails locally as it would on AWS,
with the error code the service returns, instead of working here and failing in production.

The actions are CDK's: ``grant_read_data`` (GetItem, BatchGetItem, Query, Scan,
ConditionCheckItem, DescribeTable, and the stream reads), ``grant_read_write_data`` (those and
PutItem, UpdateItem, DeleteItem, BatchWriteItem). A transaction is authorized per item, with the
item's own action, as DynamoDB does. ``tests/stacks`` checks the synthesized roles against
``allowed_actions``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from qrie_lib.schema import TABLES
from qrie_lib.settings import Settings
from tasks.registry import TaskSpec

DYNAMODB_READ = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "ConditionCheckItem", "DescribeTable"})
DYNAMODB_WRITE = DYNAMODB_READ | {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}
TRANSACTION_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
ITEMS_PREFIX = "runs/"  # stacks.core_stack.RUN_ITEMS_PREFIX: the run-item lists
S3_ACTION_OF = {"GetObject": "GetObject", "HeadObject": "GetObject", "PutObject": "PutObject"}
ORGANIZATIONS_READ = frozenset(
    {"DescribeOrganization", "ListRoots", "ListOrganizationalUnitsForParent", "ListAccountsForParent"}
)
ALWAYS_ALLOWED = frozenset({"sts:GetCallerIdentity"})  # needs no permission (AWS STS docs)
# What each service answers when IAM refuses (S3 and SNS have their own codes).
DENIED_CODE = {"s3": "AccessDenied", "sns": "AuthorizationError"}
DEFAULT_DENIED_CODE = "AccessDeniedException"


def denied_code(service: str) -> str:
    return DENIED_CODE.get(service, DEFAULT_DENIED_CODE)


def refusal(
    spec: TaskSpec, settings: Settings, service: str, operation: str, params: dict[str, Any]
) -> str | None:
    """Why AWS would refuse this call of the task (``None``: it is granted)."""
    for action, resource in requested(service, operation, params):
        if action not in ALWAYS_ALLOWED and not granted(spec, settings, action, resource):
            return (
                f"{spec.function_name} is not authorized to perform: {action} on resource: {resource}"
                " because no identity-based policy allows the action (its TaskSpec does not grant it)"
            )
    return None


def requested(service: str, operation: str, params: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(IAM action, resource) pairs a call needs."""
    if service == "dynamodb":
        if operation in ("BatchGetItem", "BatchWriteItem"):
            for table in params.get("RequestItems", {}):
                yield f"dynamodb:{operation}", table
        elif operation in ("TransactWriteItems", "TransactGetItems"):
            for entry in params.get("TransactItems", []):
                for kind, action in entry.items():
                    yield f"dynamodb:{TRANSACTION_ACTIONS[kind]}", action["TableName"]
        else:
            yield f"dynamodb:{operation}", params.get("TableName", "")
    elif service == "s3":
        action = S3_ACTION_OF.get(operation, operation)
        yield f"s3:{action}", f"{params.get('Bucket', '')}/{params.get('Key', '')}"
    else:
        yield f"{IAM_PREFIX.get(service, service)}:{operation}", "*"


IAM_PREFIX = {"stepfunctions": "states"}


def granted(spec: TaskSpec, settings: Settings, action: str, resource: str) -> bool:
    service, _, verb = action.partition(":")
    if service == "dynamodb":
        key = next((k for k, t in TABLES.items() if t.name(settings) == resource), None)
        return key is not None and (
            (key in spec.tables_written and verb in DYNAMODB_WRITE)
            or (key in spec.tables_read and verb in DYNAMODB_READ)
        )
    if service == "s3":
        bucket, _, key = resource.partition("/")
        return (
            spec.uses_items_bucket
            and bucket == settings.items_bucket
            and key.startswith(ITEMS_PREFIX)
            and verb in ("GetObject", "PutObject")
        )
    return action in allowed_actions(spec, settings)


def allowed_actions(spec: TaskSpec, settings: Settings) -> frozenset[str]:
    """The actions, beyond DynamoDB and the items bucket, the stack grants the task."""
    actions: set[str] = set()
    if spec.starts_executions:
        actions.add("states:StartExecution")
    if spec.reads_executions:
        actions |= {"states:ListExecutions", "states:DescribeExecution"}
    if spec.publishes_notifications:
        actions.add("sns:Publish")
    if spec.imports_findings and settings.securityhub_export:
        actions.add("securityhub:BatchImportFindings")
    if spec.reads_organization and not settings.organizations_role_arn:
        actions |= {f"organizations:{verb}" for verb in ORGANIZATIONS_READ}
    return frozenset(actions)
