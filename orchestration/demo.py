"""``qrie demo``: the whole pipeline on the embedded default, in one process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestration import executions
from orchestration.runtime import LocalRuntime
from orchestration.simulated_org import SimulatedOrg

Say = Callable[[str], None]


def run_demo(accounts: int = 3, say: Say = lambda _: None,
             progress: executions.Progress | None = None) -> dict[str, Any]:
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
        return {
            "accounts": accounts,
            "inventory": {
                "execution_status": outcome.status,
                "resources_by_type": summary.get("resources_by_type", {}),
                "failed_items": summary.get("failed_items", []),
                "api_calls": sum(n for call, n in aws.calls.items() if _customer_call(call)),
            },
        }


def _customer_call(call: str) -> bool:
    """Calls to customer accounts' APIs (not the operator's tables, bucket and engine)."""
    return call.split(".", 1)[0] in ("s3", "s3control", "ec2", "iam", "sts")
