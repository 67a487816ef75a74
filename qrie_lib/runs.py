"""What inventory and scan runs share: the run id, the item list in S3 for the Distributed Map
(grouped by account: one child execution per account, its items at most
``items_per_account_in_flight`` at once), recording a failed item, and the outcome of a run from
its item rows and the map's own result."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import suppress
from typing import Any, TypeVar

from pydantic import BaseModel

from qrie_lib.aws import Aws, get_aws
from qrie_lib.errors import InvalidInput
from qrie_lib.models import (
    Account,
    AccountStatus,
    FinalizeInput,
    ItemFailureInput,
    PlanInput,
    RunStatus,
    parse_input,
)
from qrie_lib.stores import Stores
from qrie_lib.timeutil import now_iso

M = TypeVar("M", bound=BaseModel)
FAILED_ITEMS_SHOWN = 50  # the execution output stays far below the 256 KB state limit
ITEM_KEYS = ("account_id", "service", "region", "shard")
NO_ACCOUNT = "*"  # the map group of items of no one account (a scan's findings shards)


def run_id_of(kind: str, execution_id: str) -> str:
    return f"{kind}/{execution_id.rsplit(':', 1)[-1]}"


def item_id(item: dict[str, Any]) -> str:
    return "/".join(str(item[k]) for k in ITEM_KEYS if k in item)


def plan(
    event: Any,
    kind: str,
    request_model: type[M],
    work_items: Callable[[M, Stores, Aws], list[BaseModel]],
    aws: Aws | None = None,
) -> dict[str, Any]:
    """The Plan task of a run: validate the state machine input, expand it to work items (both
    may raise InvalidInput, before anything is written), then write the item list where the
    Distributed Map reads it and the run's header row."""
    aws = aws or get_aws()
    stores = Stores.of(aws)
    envelope = parse_input(PlanInput, event)
    items = work_items(parse_input(request_model, envelope.input), stores, aws)
    return start_run(aws, stores, kind, envelope.execution_id, envelope.input, items)


def target_accounts(stores: Stores, account_id: str | None) -> list[Account]:
    """The one account asked for (it must be onboarded and ACTIVE), or every ACTIVE account."""
    if account_id is None:
        return stores.accounts.active()
    account = stores.accounts.get(account_id)
    if account is None or account.status is not AccountStatus.ACTIVE:
        raise InvalidInput(f"account_id: {account_id} is not an onboarded ACTIVE account")
    return [account]


def start_run(
    aws: Aws, stores: Stores, kind: str, execution_id: str, request: dict[str, Any], items: list[BaseModel]
) -> dict[str, Any]:
    """Write the item list where the Distributed Map reads it, and the run's header row."""
    run_id = run_id_of(kind, execution_id)
    key = f"runs/{run_id}/items.json"
    settings = aws.settings
    bucket = settings.items_bucket
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(by_account(items)).encode())
    stores.runs.create(run_id, kind, request, execution_id, len(items))
    return {
        "run_id": run_id,
        "started_at": now_iso(),
        "item_count": len(items),
        "items": {"bucket": bucket, "key": key},
        "concurrency": {
            "accounts": settings.accounts_in_flight,
            "per_account": settings.items_per_account_in_flight,
        },
    }


def by_account(items: list[BaseModel]) -> list[dict[str, Any]]:
    """The Distributed Map's items: one per account, holding that account's work items."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        dumped = item.model_dump()
        grouped.setdefault(dumped.get("account_id", NO_ACCOUNT), []).append(dumped)
    return [{"account_id": account, "items": account_items} for account, account_items in grouped.items()]


def record_failure(event: Any, stores: Stores) -> dict[str, Any]:
    """Record why an item failed (the Catch's error and cause) on its row of the run."""
    request = parse_input(ItemFailureInput, event)
    cause = str(request.error.get("Cause", ""))
    with suppress(ValueError, AttributeError):  # a task error's cause is its Lambda error payload
        cause = json.loads(cause).get("errorMessage", cause)
    key = item_id(request.item)
    stores.runs.add_counts(
        request.run_id,
        key,
        {},
        **{k: str(v) for k, v in request.item.items() if k in ITEM_KEYS},
        Status=RunStatus.FAILED.value,
        Error=str(request.error.get("Error", "Unknown")),
        Cause=cause[:1000],
    )
    return {"recorded": key}


def outcome(event: Any, stores: Stores) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """(run id, the summary's common part, the item rows) of a finished run."""
    request = parse_input(FinalizeInput, event)
    run_id = request.run_id
    header = stores.runs.header(run_id)
    if header is None:
        raise InvalidInput(f"run_id: no run {run_id!r}")
    items = stores.runs.items(run_id)
    failed = [i for i in items if i.get("Status") != RunStatus.SUCCEEDED.value]
    total = int(header["ItemCount"])
    failures = len(failed) + total - len(items)  # an item that never reported counts as failed
    failed_items = [
        {
            **{k: i.get(k) for k in ITEM_KEYS if k in i},
            "error": i.get("Error", "Incomplete"),
            "cause": i.get("Cause", f"item stopped in state {i.get('Status')}"),
        }
        for i in failed[:FAILED_ITEMS_SHOWN]
    ]
    map_error = map_failure(request.map)
    status = RunStatus.FAILED if failures or map_error else RunStatus.SUCCEEDED
    message = (
        f"{failures} of {total} items failed: "
        + "; ".join(f"{item_id(f)}: {f['error']}" for f in failed_items)
        if failures
        else f"{total} items done"
    )
    if map_error:
        message = f"the item map failed: {map_error}; {message}"
    summary = {
        "run_id": run_id,
        "status": status.value,
        "items": total,
        "succeeded": len(items) - len(failed),
        "failed": failures,
        "failed_items": failed_items,
        "message": message,
    }
    return run_id, summary, items


def map_failure(result: dict[str, Any]) -> str | None:
    """The Distributed Map's error, when the Catch passed one instead of its result."""
    if "Error" not in result:
        return None
    return f"{result['Error']}: {str(result.get('Cause', ''))[:500]}"


def finish(stores: Stores, run_id: str, summary: dict[str, Any]) -> dict[str, Any]:
    """Close the run's header row. Per-account totals (``by_account``) become rows of their own:
    one item for thousands of accounts would outgrow DynamoDB's 400 KB."""
    summary = dict(summary)
    stores.runs.put_account_totals(run_id, summary.pop("by_account", {}))
    stores.runs.finish(run_id, RunStatus(summary["status"]), summary)
    return summary
