"""Scale on the embedded runtime with AWS's quotas enforced (``orchestration.limits``): N simulated
accounts with a few resources each, through an inventory, a full scan of the whole catalogue and an
unchanged re-scan. For each run: its status, the largest state payload, execution history and
DynamoDB item seen against their quotas, work items and Lambda invocations; for the re-scan also
customer API calls, finding writes and resource items read; wall time.

    python -m bench.scale [--accounts 1000] [--latency aws|none]

``--latency aws`` charges the task handlers' operator calls AWS's latency on their Lambda clocks
(``orchestration.latency``): a task whose calls would outlast its timeout fails as on AWS.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from orchestration.latency import Latency
from orchestration.limits import HISTORY_EVENTS, ITEM_BYTES, PAYLOAD_BYTES
from orchestration.runtime import LocalRuntime
from orchestration.simulated_org import SimulatedOrg
from qrie_lib import executions, lifecycle
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.stores import Stores
from tasks.registry import BY_FUNCTION_NAME

RUNS = (
    ("inventory", "inventory", {"service": "all"}),
    ("full scan", "scan", {}),
    ("unchanged re-scan", "scan", {}),  # incremental: targets 0 finding writes, 0 resource items read
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--latency", choices=("aws", "none"), default="none")
    args = parser.parse_args()

    with LocalRuntime(latency=Latency() if args.latency == "aws" else None) as runtime:
        aws = runtime.aws
        assert aws is not None
        started = time.perf_counter()
        SimulatedOrg(aws, args.accounts).create()
        created = time.perf_counter() - started
        print(f"{args.accounts} simulated accounts created in {created:.0f} s", flush=True)
        stores = Stores.of(aws)
        lifecycle.launch(stores, sorted(CATALOGUE))
        settings = aws.settings

        for label, kind, request in RUNS:
            runtime.limits.peaks.reset()
            profiled = len(runtime.dispatch.profiles)
            invocations = Counter(runtime.dispatch.invocations)
            customer_calls = sum(aws.customer_calls.values())
            started = time.perf_counter()
            arn = executions.start(aws, kind, request)
            outcome = executions.follow(aws, kind, arn, poll_s=2.0)
            elapsed = time.perf_counter() - started
            summary = executions.run_summary(aws, kind, arn) or {}
            peaks = runtime.limits.peaks
            lambdas = sum((Counter(runtime.dispatch.invocations) - invocations).values())
            # what the run's task invocations did (orchestration.call_profile)
            profiles = list(runtime.dispatch.profiles)[profiled:]
            written = sum(p.items_written[settings.findings_table] for p in profiles)
            read = sum(p.items_read[settings.resources_table] for p in profiles)
            slowest = max(profiles, key=lambda p: p.aws_s / BY_FUNCTION_NAME[p.function].timeout_s)
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
                f" {sum(aws.customer_calls.values()) - customer_calls}, finding writes {written},"
                f" resource items read {read}\n"
                f"  nearest its timeout at {args.latency} latency: {slowest.function}"
                f" {slowest.aws_s:.1f} s of {BY_FUNCTION_NAME[slowest.function].timeout_s} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
