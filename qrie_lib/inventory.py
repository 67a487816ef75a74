"""The inventory flow, one function per state-machine task: plan the run (validate, lease), expand
one account's work items, collect one bounded chunk of an item (listing, then sweeping what its
completed listing did not see), summarize the account, finalize the run (the pages of accounts
and the failed items are ``qrie_lib.runs``'). Each is called by a thin handler in ``tasks/``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError
from pydantic import field_validator

from qrie_lib import executions, runs
from qrie_lib.aws import Aws, error_code, get_aws, is_throttling
from qrie_lib.concurrency import customer_io
from qrie_lib.errors import AccountAccessDenied, InvalidInput, Throttled
from qrie_lib.evaluation import resolve_deleted
from qrie_lib.models import (
    GLOBAL,
    Account,
    AccountInput,
    Cursor,
    InventoryRequest,
    ItemTaskInput,
    RunStatus,
    SummarizeInput,
    WorkItem,
    parse_input,
)
from qrie_lib.services.base import ACCESS_DENIED_CODES, CollectContext, ResourceKind, Service
from qrie_lib.services.registry import SERVICES, get_service
from qrie_lib.settings import Settings
from qrie_lib.stores import Stores
from qrie_lib.stores.findings import ResolvedReason

RemainingMs = Callable[[], int]
KIND = "inventory"
ANTI_ENTROPY = "anti-entropy"  # the weekly inventory's scan_type: its end starts the full scan


class ValidInventoryRequest(InventoryRequest):
    @field_validator("service")
    @classmethod
    def known_service(cls, value: str) -> str:
        if value != "all" and value not in SERVICES:
            raise ValueError(f"unknown service {value!r}; expected 'all' or one of {', '.join(SERVICES)}")
        return value


def plan(event: Any, aws: Aws | None = None) -> dict[str, Any]:
    """Validate the request, take the inventory lease (one inventory at a time), open the run."""
    return runs.plan(event, KIND, ValidInventoryRequest, check, aws, lease=True)


def check(request: InventoryRequest, stores: Stores) -> runs.Scope:
    """What the plan refuses (InvalidInput), reading only the account the request names."""
    if request.region and request.service != "all" and not get_service(request.service).regional:
        raise InvalidInput(f"region: {request.service} is a global service; omit region")
    if request.account_id is not None:
        runs.target_account(stores, request.account_id)
    return runs.Scope()


def expand(event: Any, aws: Aws | None = None) -> dict[str, Any]:
    """One account's work items (its child execution's first task), from its own row and the
    regions its inventory was left in: nothing read per service or per other account."""
    aws = aws or get_aws()
    stores = Stores.of(aws)
    request = parse_input(AccountInput, event)
    inventory_request = parse_input(ValidInventoryRequest, request.request)
    account = runs.target_account(stores, request.account_id)
    held = inventoried_regions(stores, account)
    items = account_items(inventory_request, account, aws.settings, held)
    retired = sorted({i.region for i in items} - set(enabled_regions(account, aws.settings)) - {GLOBAL})
    return {"items": [i.model_dump() for i in items], "held": list(held), "retired": retired}


def account_items(
    request: InventoryRequest, account: Account, settings: Settings, held: Iterable[str]
) -> list[WorkItem]:
    """The account's items: each service in each enabled region (or the one asked for), and each
    region that still holds its inventory but is no longer enabled (listing nothing, it sweeps all)."""
    services = list(SERVICES.values()) if request.service == "all" else [get_service(request.service)]
    regions = enabled_regions(account, settings)
    retired = [r for r in sorted(held) if r not in regions] if request.region is None else []
    covered = [r for r in regions if request.region in (None, r)]
    items = []
    for service in services:
        if not service.regional:
            if request.region is None:
                items.append(WorkItem(account_id=account.account_id, service=service.name, region=GLOBAL))
            continue
        items += [
            WorkItem(account_id=account.account_id, service=service.name, region=r)
            for r in [*covered, *retired]
        ]
    return items


def inventoried_regions(stores: Stores, account: Account) -> tuple[str, ...]:
    """The regions that hold the account's inventory, as its last inventories left them; before
    any was recorded, the regions its stored resources are in (one query per regional service, once)."""
    state = stores.runs.account_state(KIND, account.account_id)
    if state.inventoried_regions is not None:
        return state.inventoried_regions
    found = {
        r
        for service in SERVICES.values()
        if service.regional
        for r in stores.resources.regions(account.account_id, service.name)
    }
    return tuple(sorted(found))


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
    """List and upsert pages of one item, then sweep what its completed listing did not see, until
    done or until the page or time budget is spent (the cursor says where: past the last kind,
    the sweep's page). A listing that fails raises before any sweep: a failed item sweeps nothing."""
    aws = aws or get_aws()
    stores, settings = Stores.of(aws), aws.settings
    request = parse_input(ItemTaskInput, event)
    item, cursor = request.item, request.cursor or Cursor()
    service = get_service(item.service)
    account = onboarded(stores, item)
    removed = retired(service, item, account, settings)
    if removed and cursor.kind < len(service.kinds):
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

    def budget_left() -> bool:
        return pages < settings.pages_per_call and remaining_ms() >= settings.time_margin_ms

    with named_aws_errors(item):
        while cursor.kind < len(service.kinds) and budget_left():
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
    finished = False
    reason = ResolvedReason.REGION_REMOVED if removed else ResolvedReason.RESOURCE_DELETED
    while not finished and cursor.kind >= len(service.kinds) and budget_left():
        deleted, token = stores.resources.sweep_page(
            item.account_id,
            item.service,
            None if item.region == GLOBAL else item.region,
            request.run_id,
            request.started_at,
            cursor.token,
            settings.page_size,
        )
        counts["swept"] += len(deleted)
        arns = (r.arn for r in deleted)
        counts["findings_resolved"] += resolve_deleted(
            stores.findings, item.account_id, arns, reason, f"run:{request.run_id}"
        )
        cursor, finished = Cursor(kind=cursor.kind, token=token), token is None
        pages += 1
    status = (
        RunStatus.SUCCEEDED.value
        if finished
        else "SWEEPING"
        if cursor.kind >= len(service.kinds)
        else "COLLECTING"
    )
    stores.runs.add_counts(request.run_id, item.item_id, +counts, **item.model_dump(), Status=status)
    return {"cursor": None if finished else cursor.model_dump()}


# ---- the account's and the run's end -----------------------------------------------------------


def summarize(event: Any, aws: Aws | None = None) -> dict[str, Any]:
    """The account's summary row, its consecutive failures and the regions holding its inventory."""
    return runs.summarize(event, KIND, regions_held, aws)


def regions_held(request: SummarizeInput, rows: list[dict[str, Any]], _: Stores) -> list[str] | None:
    """The regions that hold the account's inventory after this run: those held before and those
    listed now, less each retired region whose every item swept (in a run of every service)."""
    if request.expand is None:
        return None  # the account's items were never expanded: nothing changed
    listed = {r["region"] for r in rows if r.get("region") not in (None, GLOBAL)}
    held = set(request.expand["held"]) | listed
    asked = parse_input(ValidInventoryRequest, request.request)
    whole = asked.service == "all" and asked.region is None
    succeeded = {r["Item"] for r in rows if runs.done(r)}
    for region in request.expand["retired"] if whole else []:
        if all(runs.item_id(i) in succeeded for i in request.expand["items"] if i["region"] == region):
            held.discard(region)
    return sorted(held)


def finalize(event: Any, aws: Aws | None = None) -> dict[str, Any]:
    """A page of the accounts' summaries into the totals; after the last, the run's outcome."""
    return runs.finalize(event, KIND, resource_totals, after_inventory, aws)


def resource_totals(counts: dict[str, int]) -> dict[str, Any]:
    return {
        "resources_by_type": {k: v for k, v in sorted(counts.items()) if k.startswith("AWS::")},
        "swept": counts.get("swept", 0),
        "findings_resolved": counts.get("findings_resolved", 0),
        "stale_skipped": counts.get("stale_skipped", 0),
    }


def after_inventory(
    aws: Aws, stores: Stores, run_id: str, request: dict[str, Any], status: RunStatus, _counts: dict[str, int]
) -> dict[str, Any]:
    """Give the lease back; the weekly (anti-entropy) inventory then starts the full scan, so the
    scan follows the inventory's end instead of a clock guess."""
    stores.runs.release_lease(KIND, run_id)
    if request.get("scan_type") != ANTI_ENTROPY or status is RunStatus.FAILED:
        return {}
    return {"full_scan": executions.start(aws, "scan", {"full": True})}
