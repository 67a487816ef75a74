"""The local runtime fails what AWS would fail, with AWS's error names: tiny state machines run on
moto's engine with lowered quotas (``orchestration.limits``), so each limit trips fast."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from orchestration.dispatch import TIMED_OUT, LocalContext
from orchestration.limits import ITEM_BYTES, Limits
from orchestration.provision import function_arn
from orchestration.runtime import LocalRuntime
from qrie_lib.settings import Settings
from tasks.registry import BY_FUNCTION_NAME

pytestmark = pytest.mark.slow
PAYLOAD = 2_000  # bytes: the lowered state payload quota
HISTORY = 100  # events: the lowered execution history quota
RECORD_FAILURE = "qrie-record-item-failure"


@pytest.fixture(scope="module")
def runtime() -> Iterator[LocalRuntime]:
    with LocalRuntime(Settings(), fast_retries=True, limits=Limits(PAYLOAD, HISTORY)) as rt:
        yield rt


def run(rt: LocalRuntime, definition: dict[str, Any], request: Any = None) -> dict[str, Any]:
    assert rt.aws is not None
    sfn = rt.aws.client("stepfunctions")
    arn = sfn.create_state_machine(
        name=f"limits-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/qrie-states",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(request or {}))["executionArn"]
    for _ in range(600):
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise AssertionError("execution did not finish")


def inline_map(result_path: Any, catch: bool = False) -> dict[str, Any]:
    items = {
        "Type": "Map",
        "ItemsPath": "$.items",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": "Echo",
            "States": {"Echo": {"Type": "Pass", "End": True}},
        },
        "ResultPath": result_path,
        "End": True,
    }
    if catch:
        items["Catch"] = [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]
    return {"StartAt": "Items", "States": {"Items": items, "Caught": {"Type": "Succeed"}}}


ITEMS = {"items": [{"n": n, "pad": "x" * 300} for n in range(8)]}  # ~2.5 KB gathered, each item small


def test_a_map_result_over_the_quota_fails_even_when_resultpath_discards_it(runtime):
    described = run(runtime, inline_map(None), ITEMS)
    assert described["status"] == "FAILED"
    assert described["error"] == "States.DataLimitExceeded"
    assert runtime.limits.peaks.payload_bytes > PAYLOAD


def test_data_limit_exceeded_is_not_caught_by_states_all(runtime):
    described = run(runtime, inline_map(None, catch=True), ITEMS)
    assert (described["status"], described["error"]) == ("FAILED", "States.DataLimitExceeded")


def test_a_map_result_within_the_quota_passes(runtime):
    described = run(runtime, inline_map(None), {"items": ITEMS["items"][:3]})
    assert described["status"] == "SUCCEEDED"


def test_a_lambda_payload_over_the_quota_fails_before_the_invoke(runtime):
    definition = {
        "StartAt": "Invoke",
        "States": {
            "Invoke": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {
                    "FunctionName": function_arn(runtime.aws, RECORD_FAILURE),
                    "Payload": {"a.$": "$.pad", "b.$": "$.pad"},  # twice the input
                },
                "End": True,
            }
        },
    }
    before = runtime.dispatch.invocations.get(RECORD_FAILURE, 0)
    described = run(runtime, definition, {"pad": "x" * (PAYLOAD // 2 + 100)})
    assert (described["status"], described["error"]) == ("FAILED", "States.DataLimitExceeded")
    assert runtime.dispatch.invocations.get(RECORD_FAILURE, 0) == before


def counting_loop(limit: int) -> dict[str, Any]:
    """Pass + Choice per turn (4 history events) until ``n`` reaches ``limit``."""
    return {
        "StartAt": "Count",
        "States": {
            "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "Again"},
            "Again": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.n", "NumericLessThan": limit, "Next": "Count"}],
                "Default": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }


def test_an_execution_history_over_the_quota_fails(runtime):
    described = run(runtime, counting_loop(HISTORY), {"n": 0})
    assert (described["status"], described["error"]) == ("FAILED", "States.Runtime")
    assert "history" in described["cause"]
    assert run(runtime, counting_loop(3), {"n": 0})["status"] == "SUCCEEDED"


def test_each_distributed_map_child_has_its_own_history(runtime):
    """Six children of ~80 events each: over the quota together, within it one by one (as on AWS)."""
    loop = counting_loop(20)
    definition = {
        "StartAt": "Children",
        "States": {
            "Children": {
                "Type": "Map",
                "ItemsPath": "$.children",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    **loop,
                },
                "ResultPath": None,
                "End": True,
            }
        },
    }
    described = run(runtime, definition, {"children": [{"n": 0}] * 6})
    assert described["status"] == "SUCCEEDED", described.get("cause")


def test_dynamodb_refuses_an_item_over_400_kb_and_the_largest_item_is_recorded(runtime):
    ddb = runtime.aws.client("dynamodb")
    table = runtime.settings.runs_table
    runtime.limits.peaks.reset()
    ddb.put_item(TableName=table, Item={"RunId": {"S": "r"}, "Item": {"S": "small"}, "V": {"S": "x" * 1000}})
    assert 1000 < runtime.limits.peaks.item_bytes < 1100
    with pytest.raises(ClientError) as raised:  # moto's own check, kept: nothing to add
        ddb.put_item(
            TableName=table, Item={"RunId": {"S": "r"}, "Item": {"S": "big"}, "V": {"S": "x" * ITEM_BYTES}}
        )
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "size" in raised.value.response["Error"]["Message"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_context_counts_down_from_the_task_timeout():
    clock = FakeClock()
    spec = BY_FUNCTION_NAME[RECORD_FAILURE]
    context = LocalContext(spec, RECORD_FAILURE, clock)
    assert context.get_remaining_time_in_millis() == spec.timeout_s * 1000
    clock.now += 10
    assert context.get_remaining_time_in_millis() == (spec.timeout_s - 10) * 1000
    assert not context.timed_out()
    clock.now += spec.timeout_s
    assert context.get_remaining_time_in_millis() == 0
    assert context.timed_out()


def test_a_handler_running_past_its_timeout_fails_with_sandbox_timedout(runtime, monkeypatch):
    clock = FakeClock()
    spec = BY_FUNCTION_NAME[RECORD_FAILURE]
    wrote: list[Any] = []

    def slow_handler(event: Any, context: Any) -> dict[str, Any]:
        clock.now += spec.timeout_s + 1  # "runs" one second past its timeout
        wrote.append(event)
        return {"done": True}

    monkeypatch.setattr(runtime.dispatch, "clock", clock)
    monkeypatch.setattr(type(spec), "load", lambda self: slow_handler)
    definition = {
        "StartAt": "Invoke",
        "States": {
            "Invoke": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function_arn(runtime.aws, RECORD_FAILURE), "Payload": {}},
                "End": True,
            }
        },
    }
    described = run(runtime, definition)
    assert wrote  # the handler ran ...
    assert (described["status"], described["error"]) == ("FAILED", TIMED_OUT)  # ... and timed out
