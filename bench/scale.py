"""Scale on the embedded runtime with AWS's quotas enforced (``orchestration.limits``): N simulated
accounts with a few resources each, through an inventory, a full scan of the whole catalogue and an
unchanged re-scan. For each run: its status, the largest state payload, execution history and
DynamoDB item seen against their quotas, work items and Lambda invocations; for the re-scan also
customer API calls, finding writes and resource items read; wall time.

    python -m bench.scale [--accounts 1000]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any

from orchestration.limits import HISTORY_EVENTS, ITEM_BYTES, PAYLOAD_BYTES
from orchestration.runtime import LocalRuntime
from orchestration.simulated_org import SimulatedOrg
from qrie_lib import executions, lifecycle
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.stores import Stores

RUNS = (
    ("inventory", "inventory", {"service": "all"}),
    ("full scan", "scan", {}),
    ("unchanged re-scan", "scan", {}),  # incremental: targets 0 finding writes, 0 resource items read
)


class TableMeter:
    """DynamoDB items written and read per table through the shared client (handlers run one at a
    time in process, so the request's table is still current when its response arrives)."""

    def __init__(self, client: Any) -> None:
        self.written: Counter[str] = Counter()
        self.read: Counter[str] = Counter()
        self._table = ""
        client.meta.events.register("before-parameter-build.dynamodb", self._request)
        client.meta.events.register("after-call.dynamodb", self._response)

    def _request(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self._table = params.get("TableName", "")
        if model.name in ("PutItem", "UpdateItem", "DeleteItem"):
            self.written[self._table] += 1
        for operation in params.get("TransactItems", []):  # TransactWriteItems (a finding with its history)
            self.written[next(iter(operation.values()))["TableName"]] += 1

    def _response(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in ("Query", "Scan"):
            self.read[self._table] += parsed.get("ScannedCount", parsed.get("Count", 0))
        elif model.name == "GetItem":
            self.read[self._table] += "Item" in parsed
        elif model.name == "BatchGetItem":
            for table, items in parsed.get("Responses", {}).items():
                self.read[table] += len(items)

    def reset(self) -> None:
        self.written.clear()
        self.read.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000)
    args = parser.parse_args()

    with LocalRuntime() as runtime:
        aws = runtime.aws
        assert aws is not None
        started = time.perf_counter()
        SimulatedOrg(aws, args.accounts).create()
        created = time.perf_counter() - started
        print(f"{args.accounts} simulated accounts created in {created:.0f} s", flush=True)
        stores = Stores.of(aws)
        lifecycle.launch(stores, sorted(CATALOGUE))
        meter = TableMeter(aws.client("dynamodb"))
        settings = aws.settings

        for label, kind, request in RUNS:
            runtime.limits.peaks.reset()
            meter.reset()
            invocations = Counter(runtime.dispatch.invocations)
            customer_calls = sum(aws.customer_calls.values())
            started = time.perf_counter()
            arn = executions.start(aws, kind, request)
            outcome = executions.follow(aws, kind, arn, poll_s=2.0)
            elapsed = time.perf_counter() - started
            summary = executions.run_summary(aws, kind, arn) or {}
            peaks = runtime.limits.peaks
            lambdas = sum((Counter(runtime.dispatch.invocations) - invocations).values())
            print(
                f"\n{label}: {outcome.status} {outcome.error or ''} in {elapsed:.0f} s"
                f" ({elapsed / args.accounts * 1000:.0f} ms/account)\n"
                f"  largest state payload {peaks.payload_bytes:,} B of {PAYLOAD_BYTES:,}"
                f" ({peaks.payload_bytes / PAYLOAD_BYTES:.1%}); largest history {peaks.history_events:,}"
                f" events of {HISTORY_EVENTS:,}; largest DynamoDB item {peaks.item_bytes:,} B of"
                f" {ITEM_BYTES:,} ({peaks.item_bytes / ITEM_BYTES:.1%})\n"
                f"  items {summary.get('items')} (failed {summary.get('failed')}),"
                f" Lambda invocations {lambdas}"
                f" ({lambdas / args.accounts:.1f}/account), customer API calls"
                f" {sum(aws.customer_calls.values()) - customer_calls}, finding writes"
                f" {meter.written[settings.findings_table]}, resource items read"
                f" {meter.read[settings.resources_table]}",
                flush=True,
            )


if __name__ == "__main__":
    main()
