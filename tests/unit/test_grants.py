"""What IAM would allow a task's operator calls, from its TaskSpec (orchestration.grants)."""

from __future__ import annotations

from orchestration import grants
from qrie_lib.settings import Settings
from tasks.registry import BY_NAME

SETTINGS = Settings()


def refusal(task: str, service: str, operation: str, **params: object) -> str | None:
    return grants.refusal(BY_NAME[task], SETTINGS, service, operation, params)


def test_tables_read_allow_reads_only_and_tables_written_allow_both() -> None:
    runs, accounts = SETTINGS.runs_table, SETTINGS.accounts_table
    assert refusal("InventoryPlan", "dynamodb", "Scan", TableName=accounts) is None
    assert "dynamodb:PutItem on resource: qrie_accounts" in refusal(
        "InventoryPlan", "dynamodb", "PutItem", TableName=accounts
    )
    assert refusal("InventoryPlan", "dynamodb", "Query", TableName=runs) is None
    assert refusal("InventoryPlan", "dynamodb", "UpdateItem", TableName=runs) is None
    assert refusal("InventoryPlan", "dynamodb", "GetItem", TableName=SETTINGS.findings_table)


def test_a_transaction_is_authorized_per_item_with_its_own_action() -> None:
    items = [{"Put": {"TableName": SETTINGS.runs_table}}, {"Update": {"TableName": SETTINGS.findings_table}}]
    assert "dynamodb:UpdateItem on resource: qrie_findings" in refusal(
        "RecordItemFailure", "dynamodb", "TransactWriteItems", TransactItems=items
    )
    assert refusal("ScanEvaluate", "dynamodb", "TransactWriteItems", TransactItems=items) is None


def test_the_items_bucket_only_under_its_prefix_and_only_for_tasks_that_use_it() -> None:
    bucket = SETTINGS.items_bucket
    # RunPage writes a page's item list; Plan no longer lists accounts, so writes none.
    assert refusal("RunPage", "s3", "PutObject", Bucket=bucket, Key="runs/r.json") is None
    assert refusal("RunPage", "s3", "PutObject", Bucket=bucket, Key="other/r.json")
    assert refusal("RunPage", "s3", "ListObjectsV2", Bucket=bucket, Key="runs/")
    assert refusal("InventoryPlan", "s3", "PutObject", Bucket=bucket, Key="runs/r.json")
    assert refusal("InventoryCollect", "s3", "GetObject", Bucket=bucket, Key="runs/r.json")


def test_other_services_by_declared_flags_and_caller_identity_always() -> None:
    assert refusal("Api", "stepfunctions", "StartExecution") is None
    assert refusal("Api", "stepfunctions", "ListExecutions") is None
    assert "states:StartExecution" in refusal("ScanFinalize", "stepfunctions", "StartExecution")
    assert refusal("EventProcessor", "sns", "Publish") is None
    assert refusal("InventoryCollect", "sns", "Publish")
    assert refusal("InventoryCollect", "sts", "GetCallerIdentity") is None
    assert grants.denied_code("s3") == "AccessDenied"
    assert grants.denied_code("dynamodb") == "AccessDeniedException"
