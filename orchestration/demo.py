"""``qrie demo``: the whole pipeline on the embedded default, in one process."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from orchestration import executions
from orchestration.runtime import LocalRuntime
from orchestration.simulated_org import SimulatedOrg
from qrie_lib import lifecycle
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.stores import Stores
from qrie_lib.stores.findings import FindingState
from qrie_lib.views import findings_rows

Say = Callable[[str], None]


def run_demo(
    accounts: int = 3, say: Say = lambda _: None, progress: executions.Progress | None = None
) -> dict[str, Any]:
    with LocalRuntime() as runtime:
        aws = runtime.aws
        assert aws is not None
        say(f"Simulated organisation: {accounts} accounts")
        SimulatedOrg(aws, accounts).create()
        aws.calls.clear()  # count the pipeline's calls, not the seeding's

        say("Inventory: running the inventory state machine")
        arn = executions.start(aws, "inventory", {"service": "all"})
        outcome = executions.follow(aws, "inventory", arn, progress)
        summary = executions.run_summary(aws, "inventory", arn) or {}
        api_calls = sum(n for call, n in aws.calls.items() if _customer_call(call))

        say(f"Scan: launching the catalogue ({len(CATALOGUE)} policies) and scanning")
        stores = Stores.of(aws)
        lifecycle.launch(stores, sorted(CATALOGUE))
        scan_arn = executions.start(aws, "scan", {})
        scan = executions.follow(aws, "scan", scan_arn, progress)
        active = findings_rows(stores, state=FindingState.ACTIVE)
        return {
            "accounts": accounts,
            "inventory": {
                "execution_status": outcome.status,
                "resources_by_type": summary.get("resources_by_type", {}),
                "failed_items": summary.get("failed_items", []),
                "api_calls": api_calls,
            },
            "scan": {
                "execution_status": scan.status,
                "findings": {state.value: len(findings_rows(stores, state=state)) for state in FindingState},
                "by_policy": dict(sorted(Counter(r["policy_id"] for r in active).items())),
            },
        }


def _customer_call(call: str) -> bool:
    """Calls to customer accounts' APIs (not the operator's tables, bucket and engine)."""
    return call.split(".", 1)[0] in ("s3", "s3control", "ec2", "iam", "sts")
