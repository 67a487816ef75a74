"""The local runtime keeps time and refuses like AWS for the task handlers' operator calls
(orchestration.operator_calls): AWS's latency is charged on the handler's Lambda clock (no
sleeping), so a handler whose calls would outlast its timeout fails with Sandbox.Timedout; a call
its TaskSpec does not grant is refused with the service's AccessDenied code; and each invocation's
calls, items and times are recorded."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from orchestration.dispatch import TIMED_OUT
from orchestration.latency import Latency
from orchestration.runtime import LocalRuntime
from orchestration.simulated_org import SimulatedOrg
from qrie_lib import executions
from qrie_lib.settings import Settings
from tasks.registry import BY_NAME

pytestmark = pytest.mark.slow
RECORD_FAILURE = BY_NAME["RecordItemFailure"]  # granted the runs table only


@pytest.fixture(scope="module")
def runtime() -> Iterator[LocalRuntime]:
    with LocalRuntime(Settings(), fast_retries=True, latency=Latency()) as rt:
        assert rt.aws is not None
        SimulatedOrg(rt.aws, 2).create()
        yield rt


def invoke(rt: LocalRuntime, handler: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], Any]:
    """Invoke RecordItemFailure's function with ``handler`` in its place: (answer, its profile)."""
    monkeypatch.setattr(type(RECORD_FAILURE), "load", lambda self: handler)
    headers: dict[str, str] = {}
    answer = json.loads(rt.dispatch.invoke(RECORD_FAILURE.function_name, b"{}", headers))
    return answer, rt.dispatch.profiles[-1]


def test_an_ungranted_table_is_refused_with_access_denied_and_a_granted_one_answers(runtime, monkeypatch):
    ddb, settings = runtime.aws.client("dynamodb"), runtime.settings

    def handler(event: Any, context: Any) -> dict[str, Any]:
        ddb.get_item(TableName=settings.runs_table, Key={"RunId": {"S": "r"}, "Item": {"S": "i"}})  # granted
        try:
            ddb.get_item(TableName=settings.findings_table, Key={"ARN": {"S": "a"}, "PolicyId": {"S": "p"}})
        except ClientError as exc:
            return {"code": exc.response["Error"]["Code"], "message": exc.response["Error"]["Message"]}
        return {"code": None}

    answer, profile = invoke(runtime, handler, monkeypatch)
    assert answer["code"] == "AccessDeniedException"
    assert f"perform: dynamodb:GetItem on resource: {settings.findings_table}" in answer["message"]
    assert profile.calls["dynamodb.GetItem"] == 2
    # outside a task (the CLI, this test) the same call is not a task's, and is not checked
    runtime.aws.client("dynamodb").get_item(
        TableName=settings.findings_table, Key={"ARN": {"S": "a"}, "PolicyId": {"S": "p"}}
    )


def test_an_ungranted_bucket_prefix_is_refused_with_s3s_access_denied(runtime, monkeypatch):
    s3 = runtime.aws.client("s3")
    bucket = runtime.settings.items_bucket

    def handler(event: Any, context: Any) -> dict[str, Any]:
        try:
            s3.put_object(Bucket=bucket, Key="runs/x.json", Body=b"{}")  # RecordItemFailure: no bucket
        except ClientError as exc:
            return {"code": exc.response["Error"]["Code"]}
        return {"code": None}

    answer, _ = invoke(runtime, handler, monkeypatch)
    assert answer["code"] == "AccessDenied"


def test_latency_is_charged_on_the_lambda_clock_and_recorded(runtime, monkeypatch):
    ddb, settings = runtime.aws.client("dynamodb"), runtime.settings
    seen: list[int] = []

    def handler(event: Any, context: Any) -> dict[str, Any]:
        seen.append(context.get_remaining_time_in_millis())
        for n in range(10):
            ddb.put_item(TableName=settings.runs_table, Item={"RunId": {"S": "r"}, "Item": {"S": str(n)}})
        ddb.query(
            TableName=settings.runs_table,
            KeyConditionExpression="RunId = :r",
            ExpressionAttributeValues={":r": {"S": "r"}},
        )
        seen.append(context.get_remaining_time_in_millis())
        return {}

    _, profile = invoke(runtime, handler, monkeypatch)
    latency = Latency()
    expected = 10 * latency.of("dynamodb", "PutItem") + latency.of("dynamodb", "Query")
    assert profile.simulated_s == pytest.approx(expected)
    assert seen[0] - seen[1] >= expected * 1000 - 1  # the handler saw its time go
    assert profile.items_written[settings.runs_table] == 10
    assert profile.items_read[settings.runs_table] == 10
    assert profile.write_units == 10
    assert profile.aws_s >= expected
    assert profile.error == ""


def test_a_handler_whose_calls_outlast_its_timeout_stops_with_sandbox_timedout(runtime, monkeypatch):
    """1 s a query (overridden): the 61st query of a 60 s task never returns, nor does the task
    (on a clock that stands still, so only the charged latency counts)."""
    monkeypatch.setattr(runtime.operator_calls, "latency", Latency().overridden({"dynamodb.Query": 1.0}))
    ddb, settings = runtime.aws.client("dynamodb"), runtime.settings
    made: list[int] = []

    def handler(event: Any, context: Any) -> dict[str, Any]:
        while True:
            with contextlib.suppress(Exception):  # a handler's catch-all does not stop the timeout
                ddb.query(
                    TableName=settings.runs_table,
                    KeyConditionExpression="RunId = :r",
                    ExpressionAttributeValues={":r": {"S": "r"}},
                )
            made.append(1)

    spec = BY_NAME["InventoryPlan"]
    monkeypatch.setattr(type(spec), "load", lambda self: handler)
    monkeypatch.setattr(runtime.dispatch, "clock", lambda: 1000.0)  # only the charged latency passes
    answer = json.loads(runtime.dispatch.invoke(spec.function_name, b"{}", {}))
    assert answer["errorType"] == TIMED_OUT
    assert len(made) == spec.timeout_s  # 60 queries of 1 s fit in 60 s; the 61st does not
    assert runtime.dispatch.profiles[-1].error == TIMED_OUT


def test_a_slow_plan_times_out_in_the_state_machine(runtime, monkeypatch):
    """The inventory's Plan at 31 s per DynamoDB call (overridden): two calls outlast its 60 s
    Lambda timeout, so the run fails as it would on AWS, and every Plan attempt timed out."""
    monkeypatch.setattr(runtime.operator_calls, "latency", Latency().overridden({"dynamodb": 31.0}))
    plan = BY_NAME["InventoryPlan"].function_name
    before = len(runtime.dispatch.profiles)
    arn = executions.start(runtime.aws, "inventory", {"service": "all"})
    outcome = executions.follow(runtime.aws, "inventory", arn, poll_s=0.05)
    assert outcome.status == "FAILED"
    attempts = [p for p in list(runtime.dispatch.profiles)[before:] if p.function == plan]
    assert attempts, attempts
    assert all(p.error == TIMED_OUT for p in attempts), attempts
