"""Start and follow state-machine executions: the same code for the local endpoint, the embedded
runtime and a deployed stack (where the state machine ARNs come from the stack's outputs)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from qrie_lib.aws import Aws
from qrie_lib.stores.runs import RunsStore

Progress = Callable[[int, int], None]  # (accounts done, accounts planned so far)


def state_machine_arn(aws: Aws, name: str) -> str:
    """The ARN of a state machine by its fixed name ``qrie-<name>`` (local runtime and stack)."""
    account = aws.client("sts").get_caller_identity()["Account"]
    return f"arn:aws:states:{aws.settings.region}:{account}:stateMachine:qrie-{name}"


@dataclass(frozen=True)
class Outcome:
    execution_arn: str
    status: str
    output: dict[str, Any] | None
    error: str | None
    cause: str | None

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def as_dict(self) -> dict[str, Any]:
        return {
            "execution_arn": self.execution_arn,
            "execution_status": self.status,
            "output": self.output,
            "error": self.error,
            "cause": self.cause,
        }


def resolve_state_machine(aws: Aws, kind: str, stack_name: str | None = None) -> str:
    """The ARN of the ``kind`` state machine: from the stack's outputs, from settings (the API
    Lambda gets both ARNs in its environment), or the local name."""
    if stack_name:
        outputs = (
            aws.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0].get("Outputs", [])
        )
        key = f"{kind.capitalize()}StateMachineArn"
        for output in outputs:
            if output["OutputKey"] == key:
                return output["OutputValue"]
        raise LookupError(f"stack {stack_name} has no output {key}")
    configured = {
        "inventory": aws.settings.inventory_state_machine_arn,
        "scan": aws.settings.scan_state_machine_arn,
    }.get(kind)
    return configured or state_machine_arn(aws, kind)


def start(aws: Aws, kind: str, request: dict[str, Any], stack_name: str | None = None) -> str:
    name = f"{kind}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    return aws.client("stepfunctions").start_execution(
        stateMachineArn=resolve_state_machine(aws, kind, stack_name), name=name, input=json.dumps(request)
    )["executionArn"]


def run_id_for(kind: str, execution_arn: str) -> str:
    return f"{kind}/{execution_arn.rsplit(':', 1)[-1]}"


def follow(
    aws: Aws, kind: str, execution_arn: str, progress: Progress | None = None, poll_s: float = 0.2
) -> Outcome:
    """Wait for the execution to end, reporting the accounts its run finished as it goes (two
    counters on the run's header: one read per poll, whatever the organisation)."""
    sfn = aws.client("stepfunctions")
    runs = RunsStore(aws.client("dynamodb"), aws.settings.runs_table)
    run_id = run_id_for(kind, execution_arn)
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if progress is not None:
            header = runs.header(run_id)
            if header is not None:
                progress(int(header.get("AccountsDone", 0)), planned_accounts(header))
        if described["status"] != "RUNNING":
            output = described.get("output")
            return Outcome(
                execution_arn,
                described["status"],
                json.loads(output) if output else None,
                described.get("error"),
                described.get("cause"),
            )
        time.sleep(poll_s)


def planned_accounts(header: dict[str, Any]) -> int:
    """The accounts the run's pages have handed to its map so far."""
    return sum(int(n) for n in (header.get("Pages") or {}).values())


def run_summary(aws: Aws, kind: str, execution_arn: str) -> dict[str, Any] | None:
    """The run record's summary (also there when the execution failed on purpose)."""
    header = RunsStore(aws.client("dynamodb"), aws.settings.runs_table).header(
        run_id_for(kind, execution_arn)
    )
    return json.loads(json.dumps(header.get("Summary"), default=int)) if header else None
