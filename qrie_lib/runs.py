"""What inventory and scan runs share, the coordination of a run in bounded steps (none reads or
writes O(accounts × items)):

- ``plan``: validate the request (InvalidInput before anything is written), take the kind's lease
  if it has one (a second run ends SKIPPED), write the run's header;
- ``page``: one page of ACTIVE account ids to S3, where the Distributed Map reads them (one child
  execution per account); pages follow each other through a cursor;
- in each account's child, the kind's Expand lists the account's items, its items run, and
  ``summarize`` writes the account's summary row from its item rows (failed items with reasons),
  its consecutive failures and what the kind keeps per account;
- ``finalize``: page the summary rows (the running totals travel in the state, so a retried call
  never counts twice), then close the header with the run's outcome."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel

from qrie_lib.aws import Aws, get_aws
from qrie_lib.errors import InvalidInput
from qrie_lib.models import (
    Account,
    AccountStatus,
    FinalizeInput,
    ItemFailureInput,
    PageInput,
    PlanInput,
    RunStatus,
    SummarizeInput,
    parse_input,
)
from qrie_lib.stores import Stores
from qrie_lib.stores.runs import ACCOUNT as SUMMARY
from qrie_lib.stores.runs import total_counts
from qrie_lib.timeutil import iso, now_iso

M = TypeVar("M", bound=BaseModel)
FAILED_ITEMS_SHOWN = 50  # per summary row and in the run's summary: far below 400 KB and 256 KB
SUMMARIES_PER_CALL = 500  # account summary rows one Finalize call reads
ITEM_KEYS = ("service", "region", "shard", "state")  # after the account, what names an item
NO_ACCOUNT = "*"  # the group of items of no one account (a scan's findings shards)
HELD = "HELD"


@dataclass(frozen=True)
class Scope:
    """What a valid request runs over: items per account, and findings-shard items (``*``)."""

    accounts: bool = True
    shards: bool = False


def run_id_of(kind: str, execution_id: str) -> str:
    return f"{kind}/{execution_id.rsplit(':', 1)[-1]}"


def item_id(item: dict[str, Any]) -> str:
    """``<account>/<service>/<region>``, ``<account>/<service>``, ``*/<shard>[/<state>]``: an
    account's items share its prefix, so its child reads them with one query."""
    return "/".join(
        [str(item.get("account_id", NO_ACCOUNT)), *(str(item[k]) for k in ITEM_KEYS if k in item)]
    )


def target_account(stores: Stores, account_id: str) -> Account:
    """The one account asked for: it must be onboarded and ACTIVE."""
    account = stores.accounts.get(account_id)
    if account is None or account.status is not AccountStatus.ACTIVE:
        raise InvalidInput(f"account_id: {account_id} is not an onboarded ACTIVE account")
    return account


# ---- plan and pages ---------------------------------------------------------------------------


def plan(
    event: Any,
    kind: str,
    request_model: type[M],
    check: Callable[[M, Stores], Scope],
    aws: Aws | None = None,
    lease: bool = False,
) -> dict[str, Any]:
    """The Plan task: validate (``check`` raises InvalidInput, reading only what the request
    names), take the lease, write the header. Reads no list of accounts."""
    aws = aws or get_aws()
    stores, settings = Stores.of(aws), aws.settings
    envelope = parse_input(PlanInput, event)
    request = parse_input(request_model, envelope.input)
    scope = check(request, stores)
    run_id = run_id_of(kind, envelope.execution_id)
    result = {
        "run_id": run_id,
        "started_at": now_iso(),
        "request": request.model_dump(mode="json"),
        "accounts": scope.accounts,
        "shards": scope.shards,
        "concurrency": {
            "accounts": settings.accounts_in_flight,
            "per_account": settings.items_per_account_in_flight,
        },
        "lease": "ACQUIRED",
        "message": "",
    }
    if lease:
        expires = iso(datetime.now(UTC) + timedelta(hours=settings.inventory_lease_hours))
        holder = stores.runs.acquire_lease(kind, run_id, expires)
        if holder is not None:
            message = f"not run: the {kind} {holder} holds the lease"
            summary = run_summary(run_id, RunStatus.SKIPPED, Totals(), 0, message)
            stores.runs.create(
                run_id, kind, envelope.input, envelope.execution_id, RunStatus.SKIPPED, summary
            )
            return result | {"lease": HELD, "message": message}
    stores.runs.create(run_id, kind, envelope.input, envelope.execution_id)
    return result


def page(event: Any, aws: Aws | None = None) -> dict[str, Any]:
    """One page of the run's groups (account ids, ``*`` first when the run has shard items) to
    S3 for the Distributed Map; ``cursor`` says where the next page starts (None: the last)."""
    aws = aws or get_aws()
    stores, settings = Stores.of(aws), aws.settings
    request = parse_input(PageInput, event)
    groups = [NO_ACCOUNT] if request.shards and request.cursor is None else []
    cursor = None
    if request.accounts and (account_id := request.request.get("account_id")):
        groups.append(account_id)
    elif request.accounts:
        ids, cursor = stores.accounts.active_page(request.cursor, settings.accounts_per_page)
        groups += ids
    number = page_number(request.cursor)
    key = f"runs/{request.run_id}/accounts/{number}.json"
    body = json.dumps([{"account_id": g} for g in groups]).encode()
    aws.client("s3").put_object(Bucket=settings.items_bucket, Key=key, Body=body)
    stores.runs.add_page(request.run_id, number, len(groups))
    return {"bucket": settings.items_bucket, "key": key, "accounts": len(groups), "cursor": cursor}


def page_number(cursor: str | None) -> str:
    """A page's name from where it starts: the same for a retried call, distinct between pages."""
    if cursor is None:
        return "first"
    return hashlib.sha256(cursor.encode()).hexdigest()[:16]


# ---- an account's end --------------------------------------------------------------------------


def record_failure(event: Any, stores: Stores) -> dict[str, Any]:
    """Record why an item failed (the Catch's error and cause) on its row of the run."""
    request = parse_input(ItemFailureInput, event)
    key = item_id(request.item)
    error, cause = failure_of(request.error)
    stores.runs.add_counts(
        request.run_id,
        key,
        {},
        **{k: str(v) for k, v in request.item.items() if k in ("account_id", *ITEM_KEYS)},
        Status=RunStatus.FAILED.value,
        Error=error,
        Cause=cause,
    )
    return {"recorded": key}


def failure_of(error: dict[str, Any]) -> tuple[str, str]:
    """(error name, cause) of a Catch's error output; a task's cause is its Lambda error payload."""
    cause = str(error.get("Cause", ""))
    with suppress(ValueError, AttributeError):
        cause = json.loads(cause).get("errorMessage", cause)
    return str(error.get("Error", "Unknown")), cause[:1000]


AccountHook = Callable[[SummarizeInput, list[dict[str, Any]], Stores], list[str] | None]


def summarize(event: Any, kind: str, hook: AccountHook, aws: Aws | None = None) -> dict[str, Any]:
    """The account's summary row from its item rows (an item that never reported counts as
    failed, as does the account when Expand failed), then what the kind keeps per account
    (``hook``: it may return the regions that now hold the account's inventory), its consecutive
    failures, and the run's progress."""
    aws = aws or get_aws()
    stores = Stores.of(aws)
    request = parse_input(SummarizeInput, event)
    group = request.account_id
    rows = stores.runs.account_items(request.run_id, group)
    planned = (request.expand or {}).get("items", [])
    reported = {r["Item"] for r in rows}
    failed = [failed_item(r, r.get("Error", "Incomplete"), r.get("Cause", "")) for r in rows if not done(r)]
    failed += [
        failed_item(i, "Incomplete", "the item never reported") for i in planned if item_id(i) not in reported
    ]
    if request.failure is not None:
        error, cause = failure_of(request.failure)
        failed.append({"account_id": group, "error": error, "cause": cause})
    items = max(len(planned), len(rows), len(failed))  # an account that failed as a whole counts one
    status = RunStatus.FAILED if failed else RunStatus.SUCCEEDED
    summary = {
        "Status": status.value,
        "Items": items,
        "Failed": len(failed),
        "FailedItems": failed[:FAILED_ITEMS_SHOWN],
    }
    stores.runs.put_summary(request.run_id, group, summary, total_counts(rows))
    regions = hook(request, rows, stores)
    consecutive = 0
    if group != NO_ACCOUNT:
        consecutive = stores.runs.record_account_run(kind, group, request.run_id, bool(failed), regions)
    stores.runs.account_done(request.run_id, bool(failed))
    return {
        "account_id": group,
        "status": status.value,
        "failed": len(failed),
        "consecutive_failures": consecutive,
    }


def done(row: dict[str, Any]) -> bool:
    return row.get("Status") == RunStatus.SUCCEEDED.value


def failed_item(item: dict[str, Any], error: str, cause: str) -> dict[str, Any]:
    where = {k: item[k] for k in ("account_id", *ITEM_KEYS) if k in item}
    return where | {"error": error, "cause": cause or f"item stopped in state {item.get('Status')}"}


# ---- the run's end --------------------------------------------------------------------------


@dataclass
class Totals:
    """What Finalize has read so far; it travels in the state between Finalize calls."""

    groups: int = 0  # summary rows: the accounts and the ``*`` group
    accounts: int = 0
    failed_accounts: int = 0
    items: int = 0
    failed: int = 0
    failed_items: list[dict[str, Any]] | None = None
    counts: dict[str, int] | None = None

    def add(self, rows: list[dict[str, Any]]) -> None:
        counts = dict(self.counts or {})
        for name, n in total_counts(rows).items():
            counts[name] = counts.get(name, 0) + n
        self.counts = counts
        shown = list(self.failed_items or [])
        for row in rows:
            self.groups += 1
            self.accounts += row["Item"] != f"{SUMMARY}{NO_ACCOUNT}"
            self.items += int(row.get("Items", 0))
            self.failed += int(row.get("Failed", 0))
            self.failed_accounts += row.get("Status") != RunStatus.SUCCEEDED.value
            shown += row.get("FailedItems", [])[: FAILED_ITEMS_SHOWN - len(shown)]
        self.failed_items = json.loads(json.dumps(shown, default=int))

    def as_state(self) -> dict[str, Any]:
        return dict(self.__dict__)


Shape = Callable[[dict[str, int]], dict[str, Any]]  # the kind's totals from the summed counters
# what a kind does once the run's outcome is known (given the summed counters); its result joins the summary
AfterRun = Callable[[Aws, Stores, str, dict[str, Any], RunStatus, dict[str, int]], dict[str, Any]]


def finalize(
    event: Any, kind: str, shape: Shape, after: AfterRun | None = None, aws: Aws | None = None
) -> dict[str, Any]:
    """One page of summary rows into the totals; after the last, the run's outcome on its header.
    Reached from every state that can fail, so the header never stays RUNNING."""
    aws = aws or get_aws()
    stores = Stores.of(aws)
    request = parse_input(FinalizeInput, event)
    run_id = run_id_of(kind, request.execution_id)
    state = request.state
    previous = state.get("final") or {}
    totals = Totals(**previous.get("totals", {}))
    rows, cursor = stores.runs.summaries_page(run_id, previous.get("cursor"), SUMMARIES_PER_CALL)
    totals.add(rows)
    if cursor is not None:
        return {
            "run_id": run_id,
            "cursor": cursor,
            "totals": totals.as_state(),
            "status": "RUNNING",
            "message": "",
            "summary": {},
        }

    header = stores.runs.header(run_id)
    if header is None:  # the Plan failed after validating, before its header was written
        request_ = state.get("plan", {}).get("request", {})
        stores.runs.create(run_id, kind, request_, request.execution_id)
        header = {}
    planned = sum(int(n) for n in header.get("Pages", {}).values())
    missing = max(0, planned - totals.groups)  # children that never summarized: failed
    totals.groups += missing
    totals.accounts += missing
    totals.failed_accounts += missing
    totals.items += missing
    totals.failed += missing
    error = run_error(state)
    if error or (totals.failed and totals.failed >= totals.items):  # the run itself, or every item
        status = RunStatus.FAILED
    elif totals.failed:
        status = RunStatus.SUCCEEDED_WITH_FAILURES
    else:
        status = RunStatus.SUCCEEDED
    message = outcome_message(totals, missing, error)
    summary = run_summary(run_id, status, totals, missing, message) | shape(totals.counts or {})
    if after is not None:
        summary |= after(aws, stores, run_id, header.get("Input", {}), status, totals.counts or {})
    stores.runs.finish(run_id, status, summary)
    return {
        "run_id": run_id,
        "cursor": None,
        "totals": {},
        "status": status.value,
        "message": message,
        "summary": summary,
    }


def run_summary(run_id: str, status: RunStatus, totals: Totals, missing: int, message: str) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "status": status.value,
        "accounts": totals.accounts,
        "failed_accounts": totals.failed_accounts,
        "items": totals.items,
        "succeeded": totals.items - totals.failed,
        "failed": totals.failed,
        "failed_items": (totals.failed_items or [])
        + [{"error": "Incomplete", "cause": f"{missing} account(s) never summarized"}] * bool(missing),
        "message": message,
    }


def outcome_message(totals: Totals, missing: int, error: str | None) -> str:
    shown = "; ".join(
        f"{item_id(f) if 'account_id' in f else 'run'}: {f['error']}"
        for f in (totals.failed_items or [])[:10]
    )
    message = (
        f"{totals.failed} of {totals.items} items failed in {totals.failed_accounts} of {totals.accounts}"
        f" accounts: {shown}" + (f"; {missing} account(s) never summarized" if missing else "")
        if totals.failed
        else f"{totals.items} items done in {totals.accounts} accounts"
    )
    return f"the run failed: {error}; {message}" if error else message


def run_error(state: dict[str, Any]) -> str | None:
    """Why the run itself failed: a state's caught error, or the Distributed Map's."""
    for failure in (state.get("failure"), state.get("map")):
        if isinstance(failure, dict) and "Error" in failure:
            error, cause = failure_of(failure)
            return f"{error}: {cause[:500]}"
    return None


def fail_run(stores: Stores, run_id: str, error: str, cause: str) -> None:
    """Close a run whose execution is gone (the local runtime stopped): FAILED with ``error``,
    what its accounts summarized kept; its lease, if it holds one, given back."""
    totals = Totals()
    for row in stores.runs.summaries(run_id).values():
        totals.add([row])
    message = outcome_message(totals, 0, f"{error}: {cause}")
    stores.runs.finish(run_id, RunStatus.FAILED, run_summary(run_id, RunStatus.FAILED, totals, 0, message))
    stores.runs.release_lease(run_id.split("/", 1)[0], run_id)
