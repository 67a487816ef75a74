"""The deployed fan-out as a discrete-event model (``bench.des``), for ``bench.simulate``.

A run is Plan → a Distributed Map over accounts (``accounts_in_flight`` at once) → per account an
inline Map over its work items (``per_account`` at once) → each item a chain of task invocations
→ Finalize. Two designs:

- ``before``: one Map over every account; Plan lists every item (a DynamoDB Query per account ×
  regional service × (regions + 1)) and writes them to S3; inventory items Collect then Sweep;
  Finalize reads every item row (and, for a scan, updates every account's coverage and totals).
- ``after`` (issue 19, /work/notes/19-design.md): Plan takes a lease; pages of ``page_accounts``
  accounts each feed their own Map, one page after another; each account's child Expands its
  items, runs them (Collect lists then sweeps in the same task) and Summarizes its item rows
  into one summary row; Finalize pages ``finalize_rows`` summary rows per call.

A work item's cost is linear in its resources (``ItemCost``), measured on the local runtime.
``mode="aws"``: an invocation takes its compute, its operator calls at AWS's latency and its
customer I/O; no two accounts interact except through Lambda's concurrency. ``mode="local"``: the
runtime being calibrated against, where handlers hold one lock except during customer I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.des import Process, Sim, Slots, delay, each

METRICS = (
    "invocations",
    "sweeps",
    "compute_s",
    "aws_operator_s",
    "locked_s",
    "customer_s",
    "items",
    "write_units",
)
MEMORY_GB = {"item": 1.0, "task": 0.5}  # Collect/Evaluate 1,024 MB; Plan, Finalize and the rest 512 MB


@dataclass(frozen=True)
class ItemCost:
    """Metrics of one work item: ``fixed`` + ``per_resource`` × its resources."""

    fixed: dict[str, float]
    per_resource: dict[str, float]

    def at(self, resources: float) -> dict[str, float]:
        return {m: self.fixed.get(m, 0.0) + self.per_resource.get(m, 0.0) * resources for m in METRICS}


@dataclass(frozen=True)
class Inputs:
    """What the model is fed, measured on the local runtime (``bench.simulate --calibrate``)."""

    items: dict[str, dict[str, ItemCost]]  # run kind → service → cost
    regional: dict[str, bool]  # service → one item per region?
    resource_share: dict[str, float]  # service → its share of an account's resources
    task_compute_s: float  # compute of a small bookkeeping invocation (Plan, Finalize, ...)
    row_compute_s: float  # compute per run row a bookkeeping task reads
    plan_compute_per_account_s: float  # before: Plan's compute per account it lists items of
    finalize_writes_per_account: dict[str, float]  # before: Finalize's writes per account, by kind
    engine_transition_s: float  # the local engine's time per state transition
    engine_task_s: float  # ... and per Lambda Task, beside the handler's own time
    local_bookkeeping_s: dict[str, dict[str, float]]  # locally measured Plan and Finalize, per run kind
    rows_per_query: int  # run rows a Query page returns
    # A scan's findings-shard items (policies × shards, whatever the accounts): how many, and the
    # metrics of one; and its Report at the end (AWS seconds, local locked seconds).
    shard_items: dict[str, dict[str, Any]]
    report_s: dict[str, dict[str, float]]


@dataclass(frozen=True)
class Deployment:
    accounts: int
    regions: int
    resources_per_account: float
    accounts_in_flight: int
    per_account: int
    customer_latency_s: float  # per customer call, on AWS; the measured items' customer time scales
    measured_delay_s: float  # a customer call's time when the items' customer time was measured
    transition_s: float = 0.025  # Step Functions, per state transition (no published figure)
    query_s: float = 0.008  # orchestration.latency's DynamoDB Query
    write_s: float = 0.005  # ... single-item writes and reads
    s3_s: float = 0.030
    lambda_concurrency: int = 1_000  # the account's, by default
    reserved: int = 0  # reserved for the event processor and the API
    page_accounts: int = 1_000
    finalize_rows: int = 500
    daily_change: float = 0.02  # of resources changed between two daily scans
    cold_start_s: float = 1.0  # one on each wave's critical path (estimate)
    task_overhead_s: float = 0.0  # per invocation, beside its handler (the local engine's)
    mode: str = "aws"  # or "local"


@dataclass
class RunResult:
    wall_s: float
    transitions: float = 0.0
    invocations: float = 0.0
    gb_s: float = 0.0
    write_units: float = 0.0
    read_items: float = 0.0
    peak_concurrency: float = 0.0
    largest_invocation_items: float = 0.0
    failures: list[str] = field(default_factory=list)  # a bookkeeping task past its timeout


RUNS = ("inventory", "full_scan", "daily_scan")
TIMEOUT_S = {"plan": 60, "finalize": 120, "page": 60, "summarize": 60, "expand": 60}


def account_items(inputs: Inputs, kind: str, deployment: Deployment) -> list[dict[str, float]]:
    """The metrics of each of one account's work items."""
    cost_kind = "full_scan" if kind == "daily_scan" else kind
    items = []
    for service, share in inputs.resource_share.items():
        if service not in inputs.items[cost_kind]:
            continue  # no item of it in this kind of run (a scan: no launched policy reads it)
        resources = deployment.resources_per_account * share
        regional = inputs.regional[service] and kind == "inventory"  # a scan item is account × service
        count = deployment.regions if regional else 1
        per_item = resources / count
        metrics = inputs.items[cost_kind][service].at(per_item)
        if kind == "daily_scan":  # unchanged partitions cost the re-scan's; changed resources the full's
            unchanged = inputs.items["daily_scan"].get(service, inputs.items[cost_kind][service]).at(0)
            changed = inputs.items["full_scan"][service].per_resource
            metrics = {
                m: unchanged[m] + changed.get(m, 0.0) * per_item * deployment.daily_change for m in METRICS
            }
        items += [metrics] * count
    return items


def invocation_s(metrics: dict[str, float], calls: int, deployment: Deployment) -> float:
    """One invocation's time on AWS (an item's time spread over its invocations)."""
    customer = metrics["customer_s"] * deployment.customer_latency_s / max(deployment.measured_delay_s, 1e-9)
    return (metrics["compute_s"] + metrics["aws_operator_s"] + customer) / calls


def item_process(
    metrics: dict[str, float], kind: str, design: str, d: Deployment, lock: Slots | None, result: RunResult
) -> Process:
    collects = max(1, round(metrics["invocations"]))
    sweeps = max(1, round(metrics["sweeps"])) if kind == "inventory" else 0
    calls = collects + sweeps if design == "before" else max(1, collects + sweeps - 1)
    per_call = invocation_s(metrics, calls, d)
    # before, an inventory item also passes StartSweep and the Map iteration (19-design.md)
    transitions = 3 + 2 * calls if design == "before" and kind == "inventory" else 1 + 2 * calls
    result.transitions += transitions
    result.invocations += calls
    result.write_units += metrics["write_units"]
    result.read_items += metrics["items"]
    result.gb_s += per_call * calls * MEMORY_GB["item"]
    for _ in range(calls):
        if lock is None:
            yield delay(per_call + d.transition_s * transitions / calls + d.task_overhead_s)
        else:  # the local runtime: its share under the handler lock, its customer I/O without
            locked, unlocked = metrics["locked_s"] / calls, metrics["customer_s"] / calls
            yield lock.acquire()
            yield delay(locked / 2)
            yield lock.release()
            yield delay(unlocked + d.transition_s * transitions / calls + d.task_overhead_s)
            yield lock.acquire()
            yield delay(locked / 2)
            yield lock.release()


def bookkeeping(seconds: float, lock: Slots | None) -> Iterator[Any]:
    if lock is not None:
        yield lock.acquire()
    yield delay(seconds)
    if lock is not None:
        yield lock.release()


def bookkeeping_tasks(
    inputs: Inputs, kind: str, design: str, d: Deployment, items: int, run: RunResult
) -> dict[str, float]:
    """The seconds of each bookkeeping invocation; the run-level totals go into ``run``."""
    task, rows = inputs.task_compute_s, inputs.row_compute_s
    item_rows = items * d.accounts
    if design == "before":
        regional = sum(1 for r in inputs.regional.values() if r)
        queries = d.accounts * regional * (d.regions + 1) if kind == "inventory" else 0
        reads = math.ceil(item_rows / inputs.rows_per_query)
        writes = inputs.finalize_writes_per_account.get(kind, 0.0) * d.accounts
        tasks = {
            "plan": task + inputs.plan_compute_per_account_s * d.accounts + queries * d.query_s + d.s3_s,
            "finalize": task + rows * item_rows + reads * d.query_s + writes * d.write_s,
        }
        run.largest_invocation_items = max(item_rows, queries)
        run.transitions += 5 + 2 * d.accounts
        run.invocations += 2
        run.write_units += writes + 1
        run.read_items += item_rows + d.accounts
    else:
        pages = math.ceil(d.accounts / d.page_accounts)
        finalize_calls = math.ceil(d.accounts / d.finalize_rows)
        tasks = {
            "plan": task + 2 * d.write_s,
            "page": task + rows * d.page_accounts + 2 * d.query_s + d.s3_s + d.write_s,
            "expand": task + 2 * d.write_s + (d.query_s if kind != "inventory" else 0.0),
            "summarize": task + rows * items + d.query_s + 3 * d.write_s,
            "finalize": task + rows * d.finalize_rows + d.query_s,
        }
        run.largest_invocation_items = max(d.page_accounts, d.finalize_rows, items)
        run.transitions += 4 + 3 * pages + 2 * finalize_calls
        run.invocations += 1 + pages + finalize_calls
        run.write_units += 3 + pages
        run.read_items += d.accounts
    run.gb_s += MEMORY_GB["task"] * (tasks["plan"] + tasks["finalize"])
    run.failures = [
        f"{name} needs {seconds:,.0f} s of its {TIMEOUT_S[name]} s timeout"
        for name, seconds in tasks.items()
        if seconds > TIMEOUT_S[name]
    ]
    return tasks


def shard_items(inputs: Inputs, kind: str) -> list[dict[str, float]]:
    found = inputs.shard_items.get(kind)
    return [found["metrics"]] * int(found["count"]) if found else []


def account_process(
    items: list[dict[str, float]],
    kind: str,
    design: str,
    d: Deployment,
    tasks: dict[str, float],
    lock: Slots | None,
    result: RunResult,
    slots: Slots,
) -> Process:
    """One account's child execution (its items ``per_account`` at a time in ``slots``)."""
    yield delay(d.transition_s)  # the child execution's start
    if design == "after":
        result.transitions += 5
        result.invocations += 2
        result.write_units += 4
        result.read_items += 3 + len(items)
        result.gb_s += MEMORY_GB["task"] * (tasks["expand"] + tasks["summarize"])
        yield from bookkeeping(tasks["expand"], lock)
    else:
        result.transitions += 2

    def one(metrics: dict[str, float]) -> Process:
        yield slots.acquire()
        yield from item_process(metrics, kind, design, d, lock, result)
        yield slots.release()

    yield each(one(m) for m in items)
    if design == "after":
        yield from bookkeeping(tasks["summarize"], lock)


def simulate(inputs: Inputs, kind: str, design: str, d: Deployment) -> RunResult:
    """One run of ``kind`` (inventory, full_scan, daily_scan) under ``design`` on ``d``."""
    run = RunResult(wall_s=0.0)
    items = account_items(inputs, kind, d)
    tasks = bookkeeping_tasks(inputs, kind, design, d, len(items), run)
    if d.mode == "local" and design == "before":  # measured, rather than from their calls
        tasks.update(inputs.local_bookkeeping_s.get(kind, {}))
    available = max(1, d.lambda_concurrency - d.reserved)
    if d.mode == "local":
        run.wall_s = _local_run(inputs, items, kind, design, d, tasks, run)
        return run
    # Lambda throttles past its concurrency: no more accounts run than can hold their items.
    in_flight = min(d.accounts_in_flight, max(1, available // d.per_account), d.accounts)
    # On AWS accounts interact only through that cap: one account's child is simulated, and the
    # Map runs identical children in waves of ``in_flight``.
    child, slots, sim = RunResult(wall_s=0.0), Slots(d.per_account), Sim()
    sim.start(account_process(items, kind, design, d, tasks, None, child, slots))
    child_s = sim.run()
    for name in ("transitions", "invocations", "gb_s", "write_units", "read_items"):
        setattr(run, name, getattr(run, name) + getattr(child, name) * d.accounts)
    run.peak_concurrency = in_flight * slots.peak
    # The findings-shard items: one more child (a pseudo-account) beside the first accounts.
    shards, shard_slots, shard_sim = RunResult(wall_s=0.0), Slots(d.per_account), Sim()
    shard_sim.start(
        account_process(shard_items(inputs, kind), kind, "before", d, tasks, None, shards, shard_slots)
    )
    shard_s = shard_sim.run()
    for name in ("transitions", "invocations", "gb_s", "write_units", "read_items"):
        setattr(run, name, getattr(run, name) + getattr(shards, name))
    report = inputs.report_s.get(kind, {}).get("aws_s", 0.0) if kind != "inventory" else 0.0
    run.invocations += 1 if report else 0
    run.gb_s += MEMORY_GB["task"] * report
    wall = tasks["plan"] + d.transition_s + d.cold_start_s + report
    if design == "before":
        wall += max(math.ceil(d.accounts / in_flight) * child_s, shard_s) + tasks["finalize"] + d.transition_s
    else:
        left, first = d.accounts, True
        while left:
            page = min(left, d.page_accounts)
            children = math.ceil(page / in_flight) * child_s
            wall += tasks["page"] + d.transition_s + (max(children, shard_s) if first else children)
            left, first = left - page, False
        wall += math.ceil(d.accounts / d.finalize_rows) * (tasks["finalize"] + 2 * d.transition_s)
    run.wall_s = wall
    return run


def _local_run(
    inputs: Inputs,
    items: list[dict[str, float]],
    kind: str,
    design: str,
    d: Deployment,
    tasks: dict[str, float],
    run: RunResult,
) -> float:
    """Every account, on the local runtime's one handler lock."""
    lock = Slots(1)

    def accounts_map(count: int, with_shards: bool) -> Process:
        slots = Slots(d.accounts_in_flight)

        def child(of: list[dict[str, float]]) -> Process:
            yield slots.acquire()
            yield from account_process(of, kind, design, d, tasks, lock, run, Slots(d.per_account))
            yield slots.release()

        children = [child(items) for _ in range(count)]
        shards = shard_items(inputs, kind) if with_shards else []
        yield each([child(shards), *children] if shards else children)

    def whole() -> Process:
        yield from bookkeeping(tasks["plan"] + d.transition_s, lock)
        if design == "before":
            yield from accounts_map(d.accounts, True)
            yield from bookkeeping(tasks["finalize"] + d.transition_s, lock)
        else:
            left = d.accounts
            while left:
                page = min(left, d.page_accounts)
                yield from bookkeeping(tasks["page"] + d.transition_s, lock)
                yield from accounts_map(page, left == d.accounts)
                left -= page
            for _ in range(math.ceil(d.accounts / d.finalize_rows)):
                yield from bookkeeping(tasks["finalize"] + 2 * d.transition_s, lock)
        if kind != "inventory":
            yield from bookkeeping(inputs.report_s.get(kind, {}).get("locked_s", 0.0) + d.transition_s, lock)

    sim = Sim()
    sim.start(whole())
    return sim.run()
