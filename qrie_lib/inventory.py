"""The inventory flow, one function per state-machine task: plan the work items, collect one
bounded chunk of an item, sweep what an item's completed listing did not see, record a failed
item, finalize the run. Each is called by a thin handler in ``tasks/``."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from botocore.exceptions import ClientError
from pydantic import field_validator

from qrie_lib.aws import Aws, error_code, get_aws, is_throttling
from qrie_lib.errors import AccountAccessDenied, InvalidInput, Throttled
from qrie_lib.models import (
    GLOBAL,
    Cursor,
    FinalizeInput,
    InventoryRequest,
    ItemFailureInput,
    ItemTaskInput,
    PlanInput,
    RunStatus,
    Strict,
    WorkItem,
    parse_input,
)
from qrie_lib.services.base import CollectContext
from qrie_lib.services.registry import SERVICES, get_service
from qrie_lib.stores import Stores
from qrie_lib.stores.runs import total_counts
from qrie_lib.timeutil import now_iso

RemainingMs = Callable[[], int]
FAILED_ITEMS_SHOWN = 50  # the execution output stays far below the 256 KB state limit
ACCESS_DENIED_CODES = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthFailure")


class ValidInventoryRequest(InventoryRequest):
    @field_validator("service")
    @classmethod
    def known_service(cls, value: str) -> str:
        if value != "all" and value not in SERVICES:
            raise ValueError(f"unknown service {value!r}; expected 'all' or one of {', '.join(SERVICES)}")
        return value


class SweepInput(Strict):
    run_id: str
    started_at: str
    item: WorkItem
    cursor: str | None = None


def run_id_of(kind: str, execution_id: str) -> str:
    return f"{kind}/{execution_id.rsplit(':', 1)[-1]}"


def items_key(run_id: str) -> str:
    return f"runs/{run_id}/items.json"


# ---- plan ---------------------------------------------------------------------------------


def plan(event: Any, aws: Aws | None = None) -> dict[str, Any]:
    """Validate the request, expand it to work items, store them for the Distributed Map."""
    aws = aws or get_aws()
    stores = Stores.of(aws)
    envelope = parse_input(PlanInput, event)
    request = parse_input(ValidInventoryRequest, envelope.input)
    items = work_items(request, stores, aws.settings.regions)

    run_id = run_id_of("inventory", envelope.execution_id)
    started_at = now_iso()
    bucket = aws.settings.items_bucket
    aws.client("s3").put_object(
        Bucket=bucket, Key=items_key(run_id), Body=json.dumps([i.model_dump() for i in items]).encode()
    )
    stores.runs.create(run_id, "inventory", envelope.input, envelope.execution_id, len(items))
    return {
        "run_id": run_id,
        "started_at": started_at,
        "item_count": len(items),
        "items": {"bucket": bucket, "key": items_key(run_id)},
    }


def work_items(request: InventoryRequest, stores: Stores, default_regions: tuple[str, ...]) -> list[WorkItem]:
    services = list(SERVICES.values()) if request.service == "all" else [get_service(request.service)]
    if request.region and request.service != "all" and not services[0].regional:
        raise InvalidInput(f"region: {request.service} is a global service; omit region")
    if request.account_id:
        account = stores.accounts.get(request.account_id)
        if account is None or account.status != "ACTIVE":
            raise InvalidInput(f"account_id: {request.account_id} is not an onboarded ACTIVE account")
        accounts = [account]
    else:
        accounts = stores.accounts.active()

    items = []
    for account in accounts:
        regions = account.regions or list(default_regions)
        for service in services:
            if not service.regional:
                if request.region is None:
                    items.append(WorkItem(account_id=account.account_id, service=service.name, region=GLOBAL))
                continue
            items += [
                WorkItem(account_id=account.account_id, service=service.name, region=r)
                for r in regions
                if request.region in (None, r)
            ]
    return items


# ---- collect ------------------------------------------------------------------------------


@contextmanager
def named_aws_errors(item: WorkItem) -> Iterator[None]:
    """Turn AWS errors into the named errors the state machine retries or records."""
    try:
        yield
    except ClientError as exc:
        where = f"{item.item_id}: {error_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}"
        if is_throttling(exc):
            raise Throttled(where) from None
        if error_code(exc) in ACCESS_DENIED_CODES:
            raise AccountAccessDenied(where) from None
        raise


def collect(event: Any, remaining_ms: RemainingMs, aws: Aws | None = None) -> dict[str, Any]:
    """List and upsert pages of one item until done, or until the page or time budget is spent."""
    aws = aws or get_aws()
    stores, settings = Stores.of(aws), aws.settings
    request = parse_input(ItemTaskInput, event)
    item, cursor = request.item, request.cursor or Cursor()
    service = get_service(item.service)
    account = stores.accounts.get(item.account_id)
    if account is None:
        raise InvalidInput(f"item: account {item.account_id} is not onboarded")
    ctx = CollectContext(
        aws=aws,
        account_id=item.account_id,
        region=item.region,
        page_size=settings.page_size,
        external_id=account.external_id,
    )

    counts: Counter[str] = Counter()
    pages = 0
    with named_aws_errors(item):
        while cursor.kind < len(service.kinds):
            if pages >= settings.pages_per_call or remaining_ms() < settings.time_margin_ms:
                break
            kind = service.kinds[cursor.kind]
            page = kind.list_page(ctx, cursor.token)
            written = stores.resources.upsert(page.resources, request.run_id)
            counts[kind.resource_type] += len(page.resources)
            counts["stale_skipped"] += written.count(False)
            cursor = (
                Cursor(kind=cursor.kind, token=page.next_token)
                if page.next_token
                else Cursor(kind=cursor.kind + 1)
            )
            pages += 1
    done = cursor.kind >= len(service.kinds)
    stores.runs.add_counts(
        request.run_id,
        item.item_id,
        +counts,
        **item.model_dump(),
        Status="SWEEPING" if done else "COLLECTING",
    )
    return {"cursor": None if done else cursor.model_dump()}


# ---- sweep --------------------------------------------------------------------------------


def sweep(event: Any, remaining_ms: RemainingMs, aws: Aws | None = None) -> dict[str, Any]:
    """Delete what this item's completed listing did not see. Only reached after a full listing."""
    aws = aws or get_aws()
    stores, settings = Stores.of(aws), aws.settings
    request = parse_input(SweepInput, event)
    item, token = request.item, request.cursor
    region = None if item.region == GLOBAL else item.region
    swept, pages = 0, 0
    while pages < settings.pages_per_call and remaining_ms() >= settings.time_margin_ms:
        deleted, token = stores.resources.sweep_page(
            item.account_id,
            item.service,
            region,
            request.run_id,
            request.started_at,
            token,
            settings.page_size,
        )
        swept += len(deleted)
        pages += 1
        if token is None:
            break
    stores.runs.add_counts(
        request.run_id,
        item.item_id,
        {"swept": swept},
        **({} if token else {"Status": RunStatus.SUCCEEDED.value}),
    )
    return {"cursor": token}


# ---- failures and the end of a run ----------------------------------------------------------


def record_failure(event: Any, aws: Aws | None = None) -> dict[str, Any]:
    """Record why an item failed (the Catch's error and cause) on its row of the run."""
    stores = Stores.of(aws)
    request = parse_input(ItemFailureInput, event)
    item_id = "/".join(str(request.item.get(k, "?")) for k in ("account_id", "service", "region"))
    cause = str(request.error.get("Cause", ""))
    with suppress(ValueError, AttributeError):  # a task error's cause is its Lambda error payload
        cause = json.loads(cause).get("errorMessage", cause)
    stores.runs.add_counts(
        request.run_id,
        item_id,
        {},
        **{k: str(v) for k, v in request.item.items()},
        Status=RunStatus.FAILED.value,
        Error=str(request.error.get("Error", "Unknown")),
        Cause=cause[:1000],
    )
    return {"recorded": item_id}


def finalize(event: Any, aws: Aws | None = None) -> dict[str, Any]:
    """Summarise the run from its item rows; an item that never reported counts as failed."""
    stores = Stores.of(aws)
    request = parse_input(FinalizeInput, event)
    header = stores.runs.header(request.run_id)
    if header is None:
        raise InvalidInput(f"run_id: no run {request.run_id!r}")
    items = stores.runs.items(request.run_id)
    failed = [i for i in items if i.get("Status") != RunStatus.SUCCEEDED.value]
    missing = int(header["ItemCount"]) - len(items)
    totals = total_counts(items)
    summary = {
        "run_id": request.run_id,
        "items": int(header["ItemCount"]),
        "succeeded": len(items) - len(failed),
        "failed": len(failed) + missing,
        "resources_by_type": {k: v for k, v in totals.items() if k.startswith("AWS::")},
        "swept": totals.get("swept", 0),
        "stale_skipped": totals.get("stale_skipped", 0),
        "failed_items": [
            {
                "account_id": i.get("account_id"),
                "service": i.get("service"),
                "region": i.get("region"),
                "error": i.get("Error", "Incomplete"),
                "cause": i.get("Cause", f"item stopped in state {i.get('Status')}"),
            }
            for i in failed[:FAILED_ITEMS_SHOWN]
        ],
    }
    status = RunStatus.FAILED if summary["failed"] else RunStatus.SUCCEEDED
    summary["status"] = status.value
    summary["message"] = (
        f"{summary['failed']} of {summary['items']} items failed: "
        + "; ".join(
            f"{f['account_id']}/{f['service']}/{f['region']}: {f['error']}" for f in summary["failed_items"]
        )
        if summary["failed"]
        else f"{summary['items']} items collected"
    )
    stores.runs.finish(request.run_id, status, summary)
    return summary
