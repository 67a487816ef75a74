"""The inventory flow, one function per state-machine task: plan the work items, collect one
bounded chunk of an item, sweep what an item's completed listing did not see, record a failed
item, finalize the run. Each is called by a thin handler in ``tasks/``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError
from pydantic import field_validator

from qrie_lib import runs
from qrie_lib.aws import Aws, error_code, get_aws, is_throttling
from qrie_lib.concurrency import customer_io
from qrie_lib.errors import AccountAccessDenied, InvalidInput, Throttled
from qrie_lib.evaluation import resolve_deleted
from qrie_lib.models import (
    GLOBAL,
    Account,
    Cursor,
    InventoryRequest,
    ItemTaskInput,
    RunStatus,
    Strict,
    WorkItem,
    parse_input,
)
from qrie_lib.services.base import ACCESS_DENIED_CODES, CollectContext, ResourceKind, Service
from qrie_lib.services.registry import SERVICES, get_service
from qrie_lib.settings import Settings
from qrie_lib.stores import Stores
from qrie_lib.stores.findings import ResolvedReason
from qrie_lib.stores.runs import total_counts

RemainingMs = Callable[[], int]


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


def plan(event: Any, aws: Aws | None = None) -> dict[str, Any]:
    """Validate the request, expand it to work items, store them for the Distributed Map."""
    return runs.plan(event, "inventory", ValidInventoryRequest, work_items, aws)


def work_items(request: InventoryRequest, stores: Stores, aws: Aws) -> list[WorkItem]:
    services = list(SERVICES.values()) if request.service == "all" else [get_service(request.service)]
    if request.region and request.service != "all" and not services[0].regional:
        raise InvalidInput(f"region: {request.service} is a global service; omit region")
    accounts = runs.target_accounts(stores, request.account_id)

    items = []
    for account in accounts:
        regions = enabled_regions(account, aws.settings)
        for service in services:
            if not service.regional:
                if request.region is None:
                    items.append(WorkItem(account_id=account.account_id, service=service.name, region=GLOBAL))
                continue
            covered = regions if request.region is None else [r for r in regions if r == request.region]
            if request.region is None:  # a region no longer enabled: its item lists nothing, sweeps all
                stored = stores.resources.regions(account.account_id, service.name)
                covered = [*covered, *(r for r in stored if r not in regions)]
            items += [
                WorkItem(account_id=account.account_id, service=service.name, region=r) for r in covered
            ]
    return items


def enabled_regions(account: Account, settings: Settings) -> list[str]:
    """The regions inventoried for an account: its own list, else the deployment's."""
    return list(account.regions or settings.regions)


def onboarded(stores: Stores, item: WorkItem) -> Account:
    account = stores.accounts.get(item.account_id)
    if account is None:
        raise InvalidInput(f"item: account {item.account_id} is not onboarded")
    return account


def retired(service: Service, item: WorkItem, account: Account, settings: Settings) -> bool:
    """An item of a region the account no longer has inventoried: nothing to list, all to sweep."""
    return service.regional and item.region not in enabled_regions(account, settings)


def lists(kind: ResourceKind, item: WorkItem, account: Account, settings: Settings) -> bool:
    """Whether the item lists resources of this kind: an account-level kind of a regional service is
    listed by the item of the account's first inventoried region only (no regional sweep deletes it,
    so it stays when that region is no longer inventoried and the next first region lists it)."""
    return not kind.account_level or item.region == min(enabled_regions(account, settings))


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
    account = onboarded(stores, item)
    if retired(service, item, account, settings):
        cursor = Cursor(kind=len(service.kinds))
    ctx = CollectContext(
        aws=aws,
        account_id=item.account_id,
        region=item.region,
        page_size=settings.page_size,
        external_id=account.external_id,
        role_arn=account.role_arn,
    )

    counts: Counter[str] = Counter()
    pages = 0
    with named_aws_errors(item):
        while cursor.kind < len(service.kinds):
            if pages >= settings.pages_per_call or remaining_ms() < settings.time_margin_ms:
                break
            kind = service.kinds[cursor.kind]
            if not lists(kind, item, account, settings):
                cursor = Cursor(kind=cursor.kind + 1)
                continue
            with customer_io():  # customer calls only: the local runtime's other handlers go on
                page = kind.list_page(ctx, cursor.token)
            written = stores.resources.upsert(page.resources, request.run_id)
            stores.resources.mark_seen(page.unread, request.run_id)
            counts[kind.resource_type] += len(page.resources) + len(page.unread)
            counts["stale_skipped"] += written.count(False)
            counts["unread"] += len(page.unread)
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
    removed = retired(get_service(item.service), item, onboarded(stores, item), settings)
    reason = ResolvedReason.REGION_REMOVED if removed else ResolvedReason.RESOURCE_DELETED
    swept, resolved, pages = 0, 0, 0
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
        arns = (r.arn for r in deleted)
        resolved += resolve_deleted(stores.findings, item.account_id, arns, reason, f"run:{request.run_id}")
        pages += 1
        if token is None:
            break
    stores.runs.add_counts(
        request.run_id,
        item.item_id,
        {"swept": swept, "findings_resolved": resolved},
        **({} if token else {"Status": RunStatus.SUCCEEDED.value}),
    )
    return {"cursor": token}


# ---- the end of a run ----------------------------------------------------------------------


def finalize(event: Any, aws: Aws | None = None) -> dict[str, Any]:
    """Summarise the run from its item rows: counts by resource type, swept, failed items."""
    stores = Stores.of(aws)
    run_id, summary, items = runs.outcome(event, stores)
    totals = total_counts(items)
    summary |= {
        "resources_by_type": {k: v for k, v in totals.items() if k.startswith("AWS::")},
        "swept": totals.get("swept", 0),
        "findings_resolved": totals.get("findings_resolved", 0),
        "stale_skipped": totals.get("stale_skipped", 0),
    }
    return runs.finish(stores, run_id, summary)
