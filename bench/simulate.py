"""The deployed fan-out at any size, from inputs measured on the local runtime: a discrete-event
model (``bench.fanout_model``) fed with each work item's call profile and times (recorded by the
local runtime per invocation, ``orchestration.call_profile``), AWS's latencies
(``orchestration.latency``), Lambda's concurrency and the configured Map concurrency.

``--calibrate`` measures the inputs: a local runtime (AWS latency charged on its task clocks)
whose customer accounts are a customer emulator behind ``bench.latency``'s proxy, delaying every
customer call by ``--delay-ms``; N fixture accounts are inventoried, fully scanned and re-scanned,
each run's wall measured; the model then predicts the same runs (same accounts, delay and
concurrency, the runtime's one handler lock included) and ``calibration_error`` is
|predicted − measured| / measured of the inventory. The inputs are written to
``bench/simulate_inputs.json``; without ``--calibrate`` they are read from there.

    python -m bench.simulate --calibrate [--calibration-accounts 50] [--delay-ms 100]
    python -m bench.simulate [--accounts 10000 --regions 17 --resources-per-account 2000]
                             [--design before|after|both] [--lambda-concurrency 1000] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from bench.fanout_model import METRICS, RUNS, Deployment, Inputs, ItemCost, simulate

INPUTS = Path(__file__).with_name("simulate_inputs.json")
KEYS = (
    "inventory_wall_s",
    "daily_scan_wall_s",
    "full_scan_wall_s",
    "peak_lambda_concurrency",
    "state_transitions_per_week",
    "lambda_invocations_per_week",
    "dynamodb_wcu_per_week",
    "cost_per_month_usd",
    "calibration_error",
    "largest_invocation_items",
)
RUNS_PER_WEEK = {"inventory": 1, "full_scan": 1, "daily_scan": 6}  # Saturday: inventory, then the full scan
WEEKS_PER_MONTH = 52 / 12
# us-east-1 on-demand prices:
PRICES = {
    # https://aws.amazon.com/step-functions/pricing/ : Standard, $0.025 per 1,000 state transitions
    "step_functions_transition": 0.025 / 1_000,
    # https://aws.amazon.com/lambda/pricing/ : $0.20 per 1M requests; Arm $0.0000133334 per GB-second
    "lambda_request": 0.20 / 1_000_000,
    "lambda_gb_s": 0.0000133334,
    # https://aws.amazon.com/dynamodb/pricing/on-demand/ : $0.625 per million write request units,
    # $0.125 per million read request units (since the November 2024 reduction)
    "dynamodb_wru": 0.625 / 1_000_000,
    "dynamodb_rru": 0.125 / 1_000_000,
}
ITEMS_PER_READ_UNIT = 8  # ~0.5 KB items: a 4 KB read unit, eventually consistent, holds ~8
# Deployed defaults of each design (tasks.registry, /work/notes/19-design.md).
DESIGNS = {
    "before": {"accounts_in_flight": 10, "per_account": 2, "reserved": 0},
    "after": {"accounts_in_flight": 500, "per_account": 2, "reserved": 70},  # EventProcessor 50, Api 20
}
TARGETS = {
    "inventory_wall_s": 3600,
    "daily_scan_wall_s": 900,
    "full_scan_wall_s": 1800,
    "cost_per_month_usd": 600,
}


# ---- the model's figures ------------------------------------------------------------------------


def figures(
    inputs: Inputs, design: str, deployment: Deployment, calibration_error: float | None
) -> dict[str, Any]:
    runs = {kind: simulate(inputs, kind, design, deployment) for kind in RUNS}
    weekly: Counter[str] = Counter()
    for kind, run in runs.items():
        for name in ("transitions", "invocations", "gb_s", "write_units", "read_items"):
            weekly[name] += getattr(run, name) * RUNS_PER_WEEK[kind]
    cost = {
        "Step Functions transitions": weekly["transitions"] * PRICES["step_functions_transition"],
        "Lambda requests": weekly["invocations"] * PRICES["lambda_request"],
        "Lambda duration (GB-s)": weekly["gb_s"] * PRICES["lambda_gb_s"],
        "DynamoDB writes": weekly["write_units"] * PRICES["dynamodb_wru"],
        "DynamoDB reads": weekly["read_items"] / ITEMS_PER_READ_UNIT * PRICES["dynamodb_rru"],
    }
    monthly = {name: usd * WEEKS_PER_MONTH for name, usd in cost.items()}
    # The same design at a tenth of the accounts: is the largest invocation independent of them?
    smaller = simulate(
        inputs, "inventory", design, replace(deployment, accounts=max(1, deployment.accounts // 10))
    )
    return {
        "inventory_wall_s": round(runs["inventory"].wall_s, 1),
        "daily_scan_wall_s": round(runs["daily_scan"].wall_s, 1),
        "full_scan_wall_s": round(runs["full_scan"].wall_s, 1),
        "peak_lambda_concurrency": int(max(r.peak_concurrency for r in runs.values())),
        "state_transitions_per_week": int(weekly["transitions"]),
        "lambda_invocations_per_week": int(weekly["invocations"]),
        "dynamodb_wcu_per_week": int(weekly["write_units"]),
        "cost_per_month_usd": round(sum(monthly.values()), 2),
        "calibration_error": calibration_error,
        "largest_invocation_items": int(max(r.largest_invocation_items for r in runs.values())),
        "_monthly": monthly,
        "_failures": {kind: run.failures for kind, run in runs.items() if run.failures},
        "_largest_at_a_tenth": int(smaller.largest_invocation_items),
    }


def deployment_of(args: argparse.Namespace, design: str, inputs_delay_s: float) -> Deployment:
    chosen = DESIGNS[design]
    return Deployment(
        accounts=args.accounts,
        regions=args.regions,
        resources_per_account=args.resources_per_account,
        accounts_in_flight=args.accounts_in_flight or chosen["accounts_in_flight"],
        per_account=args.per_account or chosen["per_account"],
        reserved=chosen["reserved"],
        lambda_concurrency=args.lambda_concurrency,
        customer_latency_s=args.customer_latency_ms / 1000,
        measured_delay_s=inputs_delay_s,
        transition_s=args.transition_ms / 1000,
        daily_change=args.daily_change,
        page_accounts=args.page_accounts,
    )


# ---- inputs: measured on the local runtime ---------------------------------------------------------


def load_inputs(path: Path) -> tuple[Inputs, dict[str, Any]]:
    raw = json.loads(path.read_text())
    items = {
        kind: {service: ItemCost(**cost) for service, cost in services.items()}
        for kind, services in raw["inputs"]["items"].items()
    }
    return Inputs(**{**raw["inputs"], "items": items}), raw["calibration"]


def fit_items(rows: list[dict[str, Any]]) -> dict[str, ItemCost]:
    """Per service, the metrics of an item as fixed + per resource: the fixed part from the items
    with no resource (every service's are alike: listing nothing), the rest per resource."""
    empty = [r for r in rows if r["resources"] == 0]
    fixed = {m: statistics.median(r[m] for r in empty) if empty else 0.0 for m in METRICS}
    by_service: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_service[row["service"]].append(row)
    per_resource: dict[str, dict[str, float]] = {}
    for service, found in by_service.items():
        resources = sum(r["resources"] for r in found)
        if resources:
            per_resource[service] = {
                m: max(0.0, sum(r[m] for r in found) - fixed[m] * len(found)) / resources for m in METRICS
            }
    pooled_resources = sum(r["resources"] for r in rows) or 1
    pooled = {
        m: sum(max(0.0, r[m] - fixed[m]) for r in rows if r["resources"]) / pooled_resources for m in METRICS
    }
    return {
        service: ItemCost(fixed=fixed, per_resource=per_resource.get(service, pooled))
        for service in by_service
    }


def item_rows(
    profiles: list[Any], resources: dict[tuple[str, str, str], int], kind: str
) -> list[dict[str, Any]]:
    """One row per work item: its invocations' metrics summed, and its resources."""
    from qrie_lib.models import GLOBAL

    grouped: dict[str, list[Any]] = defaultdict(list)
    for profile in profiles:
        if profile.item:
            grouped[profile.item].append(profile)
    rows = []
    for item, found in grouped.items():
        account, service, region = item.split("/")
        if not account:  # a findings-shard item (shard_rows)
            continue
        if kind == "inventory" and region != GLOBAL:
            n = resources.get((account, service, region), 0)
        else:
            n = sum(v for (a, s, _), v in resources.items() if a == account and s == service)
        rows.append(metrics_of(found, n, service))
    return rows


def metrics_of(found: list[Any], resources: int = 0, service: str = "") -> dict[str, Any]:
    sweeps = [p for p in found if "sweep" in p.function]
    return {
        "service": service,
        "resources": resources,
        "invocations": len(found) - len(sweeps),
        "sweeps": len(sweeps),
        "compute_s": sum(compute_s(p) for p in found),
        "aws_operator_s": sum(p.simulated_s for p in found),
        "locked_s": sum(p.locked_s for p in found),
        "customer_s": sum(p.unlocked_s for p in found),
        "items": sum(p.items for p in found),
        "write_units": sum(p.write_units for p in found),
    }


def resources_by_item(aws: Any) -> Counter[tuple[str, str, str]]:
    """Resources stored per (account, service, region)."""
    found: Counter[tuple[str, str, str]] = Counter()
    paginator = aws.client("dynamodb").get_paginator("scan")
    for page in paginator.paginate(TableName=aws.settings.resources_table):
        for row in page["Items"]:
            found[(row["AccountId"]["S"], row["Service"]["S"], row["Region"]["S"])] += 1
    return found


def time_by_function(profiles: dict[str, list[Any]]) -> dict[str, Any]:
    """Where each run's time went locally: per function, its invocations' real and locked time."""
    return {
        kind: {
            name: {
                "invocations": sum(1 for p in found if p.function == name),
                "real_s": round(sum(p.real_s for p in found if p.function == name), 2),
                "locked_s": round(sum(p.locked_s for p in found if p.function == name), 2),
            }
            for name in sorted({p.function for p in found})
        }
        for kind, found in profiles.items()
    }


def compute_s(profile: Any) -> float:
    """Its own work: its time holding the handler lock, less its operator calls' answers (its
    waits for the lock, and its customer I/O, are not)."""
    return max(0.0, profile.locked_s - profile.real_in_calls_s)


def shard_rows(profiles: list[Any]) -> dict[str, Any] | None:
    """A scan's findings-shard items (no account): how many, and their mean metrics."""
    found = [p for p in profiles if p.item.startswith("/")]
    if not found:
        return None
    total = metrics_of(found)
    return {"count": len(found), "metrics": {m: total[m] / len(found) for m in METRICS}}


def report_times(profiles: list[Any]) -> dict[str, float]:
    found = [p for p in profiles if "report" in p.function]
    return {"aws_s": sum(p.aws_s for p in found), "locked_s": sum(p.locked_s for p in found)}


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def calibrate(accounts: int, delay_ms: float, base_port: int) -> dict[str, Any]:
    """Measure the model's inputs and the runs' walls on the local runtime (see the module doc)."""
    from bench.latency import customer_side, onboarded_runtime
    from orchestration.latency import Latency
    from qrie_lib import executions, lifecycle
    from qrie_lib.policies.registry import CATALOGUE
    from qrie_lib.services.registry import SERVICES
    from qrie_lib.stores import Stores

    started = time.perf_counter()
    side = customer_side(base_port, accounts)
    with side as (proxy, external_ids), onboarded_runtime(proxy, external_ids, Latency()) as runtime:
        say(f"{accounts} fixture accounts seeded in {time.perf_counter() - started:.0f} s")
        aws = runtime.aws
        stores = Stores.of(aws)
        lifecycle.launch(stores, sorted(CATALOGUE))

        def timed(kind: str, request: dict[str, Any]) -> tuple[float, list[Any]]:
            before = len(runtime.dispatch.profiles)
            start = time.perf_counter()
            outcome = executions.follow(aws, kind, executions.start(aws, kind, request), poll_s=0.05)
            wall = time.perf_counter() - start
            say(f"{kind} {request}: {outcome.status} in {wall:.1f} s")
            return wall, list(runtime.dispatch.profiles)[before:]

        timed("inventory", {"service": "all"})  # first sight: every resource new
        timed("scan", {"full": True})
        proxy.delay_s = delay_ms / 1000
        walls, profiles = {}, {}
        proxy.log.clear()
        walls["inventory"], profiles["inventory"] = timed("inventory", {"service": "all"})
        # a customer call's time through the proxy: its delay and the loaded emulator's answer
        call_s = statistics.mean(c.end - c.start for c in proxy.log.calls)
        walls["full_scan"], profiles["full_scan"] = timed("scan", {"full": True})
        walls["daily_scan"], profiles["daily_scan"] = timed("scan", {})
        proxy.delay_s = 0.0
        engine_s = engine_transition_s(runtime)
        task_s = engine_task_s(runtime)
        resources = resources_by_item(aws)
    rows = {kind: item_rows(found, resources, kind) for kind, found in profiles.items()}
    shards = {kind: shard_rows(found) for kind, found in profiles.items()}
    per_service: Counter[str] = Counter()
    for (_, service, _), n in resources.items():
        per_service[service] += n
    total = sum(per_service.values())
    bookkeeping = bookkeeping_inputs(profiles, accounts)
    inputs = {
        "items": {kind: {s: asdict(c) for s, c in fit_items(found).items()} for kind, found in rows.items()},
        "regional": {name: service.regional for name, service in SERVICES.items()},
        "resource_share": {name: per_service[name] / total for name in SERVICES},
        "engine_transition_s": engine_s,
        "engine_task_s": task_s,
        "shard_items": {kind: found for kind, found in shards.items() if found},
        "report_s": {kind: report_times(found) for kind, found in profiles.items() if kind != "inventory"},
        **bookkeeping,
    }
    calls = [p for found in profiles.values() for p in found]
    return {
        "inputs": inputs,
        "calibration": {
            "accounts": accounts,
            "regions": 1,
            "resources_per_account": total / accounts,
            "delay_ms": delay_ms,
            "customer_call_s": call_s,
            "accounts_in_flight": aws.settings.accounts_in_flight,
            "per_account": aws.settings.items_per_account_in_flight,
            "measured_wall_s": walls,
            "emulator_call_s": sum(p.real_in_calls_s for p in calls)
            / max(1, sum(sum(p.calls.values()) for p in calls)),
            "design": local_design(),
            "by_function": time_by_function(profiles),
        },
    }


def bookkeeping_inputs(profiles: dict[str, list[Any]], accounts: int) -> dict[str, Any]:
    def named(kind: str, word: str) -> list[Any]:
        return [p for p in profiles[kind] if word in p.function and not p.item]

    def compute(found: list[Any]) -> float:
        return sum(compute_s(p) for p in found)

    scan_plans = named("full_scan", "plan") + named("daily_scan", "plan")
    task_s = statistics.median(compute([p]) for p in scan_plans) if scan_plans else 0.05
    finalize = named("inventory", "finalize")
    rows_read = sum(sum(p.items_read.values()) for p in finalize) or 1
    queries = sum(p.calls["dynamodb.Query"] for p in finalize) or 1
    writes = {
        kind: sum(sum(p.items_written.values()) for p in named(kind, "finalize")) / accounts for kind in RUNS
    }
    local = {
        kind: {word: sum(p.locked_s for p in named(kind, word)) for word in ("plan", "finalize")}
        for kind in RUNS
    }
    return {
        "local_bookkeeping_s": local,
        "task_compute_s": task_s,
        "row_compute_s": max(0.0, compute(finalize) - task_s * len(finalize)) / rows_read,
        "plan_compute_per_account_s": max(0.0, compute(named("inventory", "plan")) - task_s) / accounts,
        "finalize_writes_per_account": writes,
        "rows_per_query": max(1, round(rows_read / queries)),
    }


def engine_transition_s(runtime: Any, states: int = 100) -> float:
    """The local Step Functions engine's time per state: a chain of Pass states, timed."""
    chain = {f"S{n}": {"Type": "Pass", "Next": f"S{n + 1}"} for n in range(states - 1)}
    chain[f"S{states - 1}"] = {"Type": "Pass", "End": True}
    return timed_execution(runtime, "calibration-pass-chain", chain, "S0") / states


def engine_task_s(runtime: Any, tasks: int = 30) -> float:
    """The local engine's own time per Lambda Task state (invoke, dispatch, answer), beside the
    handler's: a chain of Tasks invoking the console authorizer (no AWS calls), timed, less the
    handlers' time."""
    from orchestration.provision import function_arn
    from tasks.registry import BY_NAME

    name = BY_NAME["ConsoleAuthorizer"].function_name
    task = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke"}
    task["Parameters"] = {"FunctionName": function_arn(runtime.aws, name), "Payload": {}}
    chain = {f"T{n}": {**task, "Next": f"T{n + 1}"} for n in range(tasks - 1)}
    chain[f"T{tasks - 1}"] = {**task, "End": True}
    before = len(runtime.dispatch.profiles)
    wall = timed_execution(runtime, "calibration-task-chain", chain, "T0")
    handlers = sum(p.real_s for p in list(runtime.dispatch.profiles)[before:])
    return max(0.0, wall - handlers) / tasks


def timed_execution(runtime: Any, name: str, states: dict[str, Any], start_at: str) -> float:
    sfn = runtime.aws.client("stepfunctions")
    arn = sfn.create_state_machine(
        name=name,
        definition=json.dumps({"StartAt": start_at, "States": states}),
        roleArn="arn:aws:iam::123456789012:role/qrie-states",
    )["stateMachineArn"]
    start = time.perf_counter()
    execution = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
        time.sleep(0.01)
    return time.perf_counter() - start


def local_design() -> str:
    """The design the local runtime runs: issue 19's pages of accounts, or the one Map before."""
    from orchestration import asl

    return "after" if "Page" in json.loads(asl.raw("inventory"))["States"] else "before"


def measured_call_s(calibration: dict[str, Any]) -> float:
    """What a customer call took in the calibration: the items' customer time is that many calls."""
    return calibration.get("customer_call_s", calibration["delay_ms"] / 1000)


def calibration_prediction(inputs: Inputs, calibration: dict[str, Any]) -> dict[str, float]:
    """The model's walls for the calibration runs: same accounts, delay, concurrency and design,
    on the local runtime (its handler lock, its engine, its emulator's call times)."""
    delay_s = measured_call_s(calibration)
    local = Deployment(
        accounts=calibration["accounts"],
        regions=calibration["regions"],
        resources_per_account=calibration["resources_per_account"],
        accounts_in_flight=calibration["accounts_in_flight"],
        per_account=calibration["per_account"],
        customer_latency_s=delay_s,
        measured_delay_s=delay_s,
        transition_s=inputs.engine_transition_s,
        task_overhead_s=inputs.engine_task_s,
        query_s=calibration["emulator_call_s"],
        write_s=calibration["emulator_call_s"],
        s3_s=calibration["emulator_call_s"],
        cold_start_s=0.0,
        mode="local",
    )
    return {kind: simulate(inputs, kind, calibration["design"], local).wall_s for kind in RUNS}


# ---- output ---------------------------------------------------------------------------------------


def table(design: str, result: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        f"\n{design}: {args.accounts:,} accounts × {args.regions} regions × {args.resources_per_account:,}"
        " resources per account (modelled)"
    ]
    for kind, failures in result["_failures"].items():
        lines += [f"  {kind} FAILS on AWS: {f} (the walls below assume unbounded timeouts)" for f in failures]
    for key in KEYS:
        target = TARGETS.get(key)
        value = result[key]
        verdict = (
            "" if target is None or value is None else ("  meets < " if value < target else "  MISSES < ")
        )
        lines.append(f"  {key:32} {value:>16,}" + (f"{verdict}{target:,}" if verdict else ""))
    lines.append(f"  largest invocation at a tenth of the accounts: {result['_largest_at_a_tenth']:,}")
    lines.append("  cost per month (us-east-1 on-demand):")
    lines += [f"    {name:30} ${usd:>12,.2f}" for name, usd in result["_monthly"].items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--regions", type=int, default=17)
    parser.add_argument("--resources-per-account", type=int, default=2_000)
    parser.add_argument("--design", choices=("before", "after", "both"), default="both")
    parser.add_argument("--accounts-in-flight", type=int, help="default: the design's deployed value")
    parser.add_argument("--per-account", type=int, help="items per account in flight (default: the design's)")
    parser.add_argument("--customer-latency-ms", type=float, default=100.0, help="per customer call on AWS")
    parser.add_argument(
        "--lambda-concurrency", type=int, default=1_000, help="the account's (1,000 by default)"
    )
    parser.add_argument(
        "--transition-ms", type=float, default=25.0, help="Step Functions, per state (estimate)"
    )
    parser.add_argument("--daily-change", type=float, default=0.02, help="share of resources changed per day")
    parser.add_argument("--page-accounts", type=int, default=1_000, help="after: accounts per page (Map run)")
    parser.add_argument("--calibrate", action="store_true", help="measure the inputs on the local runtime")
    parser.add_argument("--calibration-accounts", type=int, default=50)
    parser.add_argument("--delay-ms", type=float, default=100.0, help="the proxy's delay per customer call")
    parser.add_argument("--base-port", type=int, default=4660, help="customer emulator; +1 its proxy")
    parser.add_argument("--inputs", type=Path, default=INPUTS)
    parser.add_argument("--json", action="store_true", help="one JSON object (per design)")
    args = parser.parse_args()
    for name in ("accounts", "regions", "resources_per_account", "calibration_accounts"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")

    if args.calibrate:
        measured = calibrate(args.calibration_accounts, args.delay_ms, args.base_port)
        args.inputs.write_text(json.dumps(measured, indent=1, sort_keys=True) + "\n")
        print(f"inputs written to {args.inputs}", file=sys.stderr)
    if not args.inputs.exists():
        parser.error(f"{args.inputs} does not exist: run with --calibrate first")
    inputs, calibration = load_inputs(args.inputs)
    predicted = calibration_prediction(inputs, calibration)
    measured_walls = calibration["measured_wall_s"]
    errors = {k: abs(predicted[k] - measured_walls[k]) / measured_walls[k] for k in RUNS}
    designs = ("before", "after") if args.design == "both" else (args.design,)
    results = {
        d: figures(
            inputs, d, deployment_of(args, d, measured_call_s(calibration)), round(errors["inventory"], 3)
        )
        for d in designs
    }
    if args.json:
        chosen = {d: {k: r[k] for k in KEYS} for d, r in results.items()}
        print(json.dumps(chosen[designs[0]] if len(designs) == 1 else chosen, indent=1))
        return
    c = calibration
    print(
        f"calibration ({c['design']} design, local runtime, {c['accounts']} accounts ×"
        f" {c['resources_per_account']:.0f} resources, +{c['delay_ms']:.0f} ms per customer call,"
        f" {c['accounts_in_flight']} accounts × {c['per_account']} items in flight):"
    )
    for kind in RUNS:
        print(
            f"  {kind:10} measured {measured_walls[kind]:8.1f} s  predicted {predicted[kind]:8.1f} s"
            f"  error {errors[kind]:.1%}"
        )
    for design, result in results.items():
        print(table(design, result, args))
    print(
        "\nmodelled, not measured: AWS's latencies (orchestration.latency), Step Functions' "
        f"{args.transition_ms:.0f} ms per state, {args.customer_latency_ms:.0f} ms per customer call, "
        f"{args.daily_change:.0%} of resources changed a day, resources shared among services as in the "
        "fixture; not in the cost: the event processor, the API, S3 and logs."
    )


if __name__ == "__main__":
    main()
