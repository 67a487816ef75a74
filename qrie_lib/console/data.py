"""What the console's pages show, read the way the API reads it: counters for the overview, the
findings indexes for the findings table (never a table scan), Step Functions' own execution list
for runs (newest first, one page), the runs table for their details."""

from __future__ import annotations

import json
from typing import Any

from qrie_lib import executions, history
from qrie_lib.api_models import summary
from qrie_lib.aws import Aws
from qrie_lib.errors import AccountAccessDenied, InvalidInput
from qrie_lib.policies.base import BANDS
from qrie_lib.services.registry import service_of_type
from qrie_lib.stores import Stores
from qrie_lib.stores.findings import FindingState
from qrie_lib.views import findings_page

RUN_KINDS = ("inventory", "scan")
RUNS_SHOWN = 20
# A filter the indexes cannot apply (resource type, text) is applied to the rows they return: at
# most this many index pages per console page, so a rare match costs bounded reads, not a scan.
FILTERED_READS = 5


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
    """The newest executions of a state machine (Step Functions lists newest first), each with
    its run record when the Plan wrote one."""
    listed = aws.client("stepfunctions").list_executions(
        stateMachineArn=executions.resolve_state_machine(aws, kind), maxResults=limit
    )["executions"]
    return [run(stores, kind, e["executionArn"], e["status"], str(e["startDate"])) for e in listed]


def run(stores: Stores, kind: str, arn: str, status: str, started: str) -> dict[str, Any]:
    run_id = executions.run_id_for(kind, arn)
    header = stores.runs.header(run_id) or {}
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
    except aws.client("stepfunctions").exceptions.ExecutionDoesNotExist:
        raise InvalidInput(f"run: no {kind} execution {name!r}") from None
    detail = run(stores, kind, arn, described["status"], str(described["startDate"]))
    return detail | {
        "input": detail["input"] or json.loads(described.get("input") or "{}"),  # before the Plan ran
        "error": described.get("error"),
        "cause": described.get("cause"),
    }


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
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of findings through the indexes; resource type and text narrow the rows read."""
    if resource_type is not None:
        service_of_type(resource_type)  # an unknown type is a named error, not an empty table
    needle = (text or "").lower()

    def wanted(row: dict[str, Any]) -> bool:
        return resource_type in (None, row["resource_type"]) and (
            not needle or needle in f"{row['arn']} {row['policy_id']} {json.dumps(row['evidence'])}".lower()
        )

    rows: list[dict[str, Any]] = []
    for _ in range(FILTERED_READS if (resource_type or needle) else 1):
        page, token = findings_page(
            stores,
            state=state,
            band_name=band_name,
            account_id=account_id,
            policy_id=policy_id,
            token=token,
            limit=limit,
        )
        rows += [r for r in page if wanted(r)]
        if token is None or len(rows) >= limit:
            break
    return rows, token


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
