"""What the console's pages show, read the way the API reads it: counters for the overview, the
findings indexes for the findings table (never a table scan), the runs table's index of run
headers with Step Functions' newest executions for runs (one page each), the runs table for
their details."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from qrie_lib import executions, history, suppressions
from qrie_lib.api_models import summary
from qrie_lib.aws import Aws
from qrie_lib.errors import AccountAccessDenied, InvalidInput
from qrie_lib.policies.base import BANDS
from qrie_lib.services.registry import service_of_type
from qrie_lib.stores import Stores
from qrie_lib.stores.findings import FindingState
from qrie_lib.timeutil import iso
from qrie_lib.views import findings_page

RUN_KINDS = ("inventory", "scan")
RUNS_SHOWN = 20
# A filter the indexes cannot apply (resource type, text) is applied to the rows they return: at
# most this many findings read per request, so a rare match costs bounded reads, not a scan.
SEARCH_BUDGET = 1_000


def overview(stores: Stores, aws: Aws) -> dict[str, Any]:
    """Counts from the counters (bounded: policies x shards rows plus one row per account)."""
    counts = summary(stores)
    by_account = []
    for account in stores.accounts.list():
        cells = stores.counters.account(account.account_id)
        by_band = {b: cells[f"{FindingState.ACTIVE.value}|{b}"] for b in BANDS}
        by_account.append({"account": account, "total": sum(by_band.values()), **by_band})
    last = {kind: (recent_runs(aws, stores, kind, 1) or [None])[0] for kind in RUN_KINDS}
    inventory = last["inventory"]
    unreachable = [
        item
        for item in (inventory or {}).get("failed_items", [])
        if item.get("error") == AccountAccessDenied.__name__
    ]
    return {
        "org_wide": suppressions.org_wide(stores),
        "trend": trend(stores),
        "findings": counts["findings"],
        "top_policies": counts["top_policies"],
        "by_account": sorted(by_account, key=lambda a: (-a["total"], a["account"].account_id)),
        "last_runs": last,
        "unreachable": unreachable,
    }


def trend(stores: Stores, days: int = 30) -> dict[str, Any]:
    """Findings opened and resolved per day (the history's daily rollups), as bars of an SVG
    chart drawn on the server: no script, no chart library."""
    series = history.trends(stores, days, "severity")
    dates = series["days"]
    opened = [sum(s["opened"][n] for s in series["series"].values()) for n in range(len(dates))]
    resolved = [sum(s["resolved"][n] for s in series["series"].values()) for n in range(len(dates))]
    top = max([*opened, *resolved, 1])
    width, height = 12, 100  # per day; the bars' full height
    bars = [
        {
            "date": day,
            "x": n * width,
            "opened": o,
            "resolved": r,
            "opened_h": round(o / top * height, 1),
            "resolved_h": round(r / top * height, 1),
        }
        for n, (day, o, r) in enumerate(zip(dates, opened, resolved, strict=True))
    ]
    return {"bars": bars, "top": top, "width": width * len(dates), "height": height, "bar": width / 2 - 1}


def recent_runs(aws: Aws, stores: Stores, kind: str, limit: int = RUNS_SHOWN) -> list[dict[str, Any]]:
    """The newest runs of a kind: the runs table's headers (they survive a restart of the local
    runtime, where Step Functions' executions do not), with the newest executions (one page)
    whose Plan has not written a header yet; newest first."""
    listed = aws.client("stepfunctions").list_executions(
        stateMachineArn=executions.resolve_state_machine(aws, kind), maxResults=limit
    )["executions"]
    live = {e["executionArn"]: e for e in listed}
    headers = {h["ExecutionArn"]: h for h in stores.runs.recent(kind, limit)}
    runs = [
        run(stores, kind, arn, live[arn]["status"] if arn in live else h["Status"], h["StartedAt"], h)
        for arn, h in headers.items()
    ]
    runs += [
        run(stores, kind, arn, e["status"], iso(e["startDate"]))
        for arn, e in live.items()
        if arn not in headers
    ]
    return sorted(runs, key=lambda r: r["started"], reverse=True)[:limit]


def run(
    stores: Stores, kind: str, arn: str, status: str, started: str, header: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A run as the pages show it; ``header``: its runs-table row, if already read."""
    run_id = executions.run_id_for(kind, arn)
    header = header if header is not None else stores.runs.header(run_id) or {}
    summary_ = json.loads(json.dumps(header.get("Summary") or {}, default=int))
    return {
        "kind": kind,
        "execution_arn": arn,
        "name": arn.rsplit(":", 1)[-1],
        "run_id": run_id,
        # The run's own outcome once closed (SUCCEEDED_WITH_FAILURES, SKIPPED), else the execution's.
        "status": header["Status"] if header.get("Status") not in (None, "RUNNING") else status,
        "started": header.get("StartedAt", started),
        "finished": header.get("FinishedAt"),
        "input": header.get("Input", {}),
        "item_count": int(summary_.get("items", 0)),
        "accounts": executions.planned_accounts(header),
        "done": int(header.get("AccountsDone", 0)),
        "failed_items": summary_.get("failed_items", []),
        "message": summary_.get("message"),
    }


def run_detail(aws: Aws, stores: Stores, kind: str, name: str) -> dict[str, Any]:
    if kind not in RUN_KINDS:
        raise InvalidInput(f"kind: {kind!r} is not one of {', '.join(RUN_KINDS)}")
    machine = executions.resolve_state_machine(aws, kind)
    arn = machine.replace(":stateMachine:", ":execution:") + f":{name}"
    try:
        described = aws.client("stepfunctions").describe_execution(executionArn=arn)
        status, started = described["status"], iso(described["startDate"])
    except aws.client("stepfunctions").exceptions.ExecutionDoesNotExist:
        # Gone (the local runtime restarted) or never started: its run record, if it has one.
        header = stores.runs.header(executions.run_id_for(kind, arn))
        if header is None:
            raise InvalidInput(f"run: no {kind} execution {name!r}") from None
        described, status, started = {}, header["Status"], header["StartedAt"]
    detail = run(stores, kind, arn, status, started)
    return detail | {
        "input": detail["input"] or json.loads(described.get("input") or "{}"),  # before the Plan ran
        "error": described.get("error"),
        "cause": described.get("cause"),
    }


@dataclass(frozen=True)
class FindingsTable:
    rows: list[dict[str, Any]]
    token: str | None  # where the next page (or the search) goes on
    searched: int  # findings read for this page
    narrowed: bool  # a filter the indexes cannot apply (resource type, text) narrowed the rows
    total: int | None  # findings of the indexes' filter (the counters), None where they cannot say
    ordered: bool  # in severity order across pages (``views.severity_page``), not only in the page


def findings_table(
    stores: Stores,
    *,
    state: FindingState | None,
    band_name: str | None,
    account_id: str | None,
    policy_id: str | None,
    resource_type: str | None,
    text: str | None,
    token: str | None,
    limit: int,
) -> FindingsTable:
    """A page of findings through the indexes. Resource type and text narrow the rows read: pages
    are read until the page is full or the data ends, at most ``SEARCH_BUDGET`` findings per
    request; where the budget ends first, the token goes on with the search (never "none" after
    reading part of the data). Each read asks for no more rows than the page still lacks, so no
    match is read past the token."""
    if resource_type is not None:
        service_of_type(resource_type)  # an unknown type is a named error, not an empty table
    needle = (text or "").lower()
    narrowed = bool(resource_type or needle)

    def wanted(row: dict[str, Any]) -> bool:
        return resource_type in (None, row["resource_type"]) and (
            not needle or needle in f"{row['arn']} {row['policy_id']} {json.dumps(row['evidence'])}".lower()
        )

    rows: list[dict[str, Any]] = []
    searched = 0
    while True:
        page, token = findings_page(
            stores,
            state=state,
            band_name=band_name,
            account_id=account_id,
            policy_id=policy_id,
            token=token,
            limit=limit - len(rows),
            narrowed_by={"resource_type": resource_type, "text": needle} if narrowed else None,
        )
        searched += len(page)
        rows += [r for r in page if wanted(r)]
        if token is None or len(rows) >= limit or searched >= SEARCH_BUDGET:
            break
    return FindingsTable(
        rows,
        token,
        searched,
        narrowed,
        total(stores, state, band_name, account_id, policy_id),
        ordered=account_id is None and policy_id is None,
    )


def total(
    stores: Stores,
    state: FindingState | None,
    band_name: str | None,
    account_id: str | None,
    policy_id: str | None,
) -> int | None:
    """How many findings the filter matches, from the counters (bounded reads): every policy's,
    one policy's or one account's cells; None for an account and a policy together."""
    if account_id and policy_id:
        return None
    if policy_id:
        cells = stores.counters.policies([policy_id]).get(policy_id, Counter())
    elif account_id:
        cells = stores.counters.account(account_id)
    else:
        cells = sum(stores.counters.policies(p.policy_id for p in stores.policies.list()).values(), Counter())
    states = [state] if state else list(FindingState)
    return sum(cells[f"{s.value}|{b}"] for s in states for b in ([band_name] if band_name else BANDS))


SORTS = {
    "severity": (lambda r: (-r["severity"], r["arn"])),
    "first_seen": (lambda r: (r["first_seen"], r["arn"])),
    "account": (lambda r: (r["account_id"], r["arn"])),
    "policy": (lambda r: (r["policy_id"], r["arn"])),
    "resource": (lambda r: r["arn"]),
}


def sort_rows(rows: list[dict[str, Any]], by: str) -> list[dict[str, Any]]:
    if by not in SORTS:
        raise InvalidInput(f"sort: {by!r} is not one of {', '.join(SORTS)}")
    return sorted(rows, key=SORTS[by])
