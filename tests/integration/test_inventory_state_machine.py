"""The inventory state machine end to end: the real ASL on moto's engine, real task handlers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from orchestration import asl
from orchestration.schedules import SCHEDULES, TASK_SCHEDULES
from orchestration.simulated_org import account_id
from qrie_lib.services.registry import SERVICES
from qrie_lib.stores import Stores
from tasks.registry import BY_NAME

pytestmark = pytest.mark.slow
A1, A2 = account_id(1), account_id(2)


def test_all_accounts_services_and_regions_are_collected(harness):
    outcome, summary = harness.run("inventory", {"service": "all"})
    assert outcome.status == "SUCCEEDED", outcome.cause
    regions = len(harness.aws.settings.regions)
    per_account = sum(regions if s.regional else 1 for s in SERVICES.values())
    assert summary["items"] == summary["succeeded"] == 2 * per_account
    assert summary["failed"] == 0
    stored = harness.table_items("resources_table")
    assert sum(summary["resources_by_type"].values()) == len(stored)
    for acct in (A1, A2):
        for region in harness.aws.settings.regions:
            arns = harness.resource_arns(acct)
            assert f"arn:aws:ec2:{region}:{acct}:ebs-encryption-by-default" in arns
        assert f"arn:aws:s3:::sim{int(acct[-2:]):02d}-secure" in arns
        assert f"arn:aws:iam::{acct}:password-policy" in arns
    # The execution output is the run summary, small and explicit.
    assert outcome.output["resources_by_type"] == summary["resources_by_type"]


def test_task_invokes_reach_the_real_handlers_in_process(harness):
    """Fails if the Lambda dispatch patch stops taking effect (moto would echo the payload)."""
    before = dict(harness.runtime.dispatch.invocations)
    outcome, _ = harness.run("inventory", {"service": "iam", "account_id": A1})
    assert outcome.status == "SUCCEEDED"
    calls = {k: v - before.get(k, 0) for k, v in harness.runtime.dispatch.invocations.items()}
    assert calls["qrie-inventory-plan"] == 1
    assert calls["qrie-inventory-finalize"] == 1
    # Page size 3 and one page per call: the collect loop ran several times for one item.
    assert calls["qrie-inventory-collect"] > 3


def test_rerun_is_idempotent(harness):
    first, _ = harness.run("inventory", {"service": "all"})
    before = harness.table_items("resources_table")
    second, summary = harness.run("inventory", {"service": "all"})
    after = harness.table_items("resources_table")
    assert first.status == second.status == "SUCCEEDED"
    assert summary["swept"] == 0
    assert {i["ARN"]["S"] for i in before} == {i["ARN"]["S"] for i in after}


def test_resource_deleted_between_runs_is_swept(harness):
    harness.run("inventory", {"service": "s3"})
    s3 = harness.org.session(A1).client("s3")
    s3.create_bucket(Bucket="sim01-short-lived")
    harness.run("inventory", {"service": "s3", "account_id": A1})
    assert "arn:aws:s3:::sim01-short-lived" in harness.resource_arns(A1)

    s3.delete_bucket(Bucket="sim01-short-lived")
    outcome, summary = harness.run("inventory", {"service": "s3", "account_id": A1})
    assert outcome.status == "SUCCEEDED"
    assert summary["swept"] == 1
    assert "arn:aws:s3:::sim01-short-lived" not in harness.resource_arns(A1)
    assert "arn:aws:s3:::sim01-secure" in harness.resource_arns(A1)


def test_an_account_whose_role_cannot_be_assumed_fails_alone(harness):
    harness.run("inventory", {"service": "all"})
    kept = harness.resource_arns(A2)
    iam = harness.org.session(A2).client("iam")
    trust = iam.get_role(RoleName=harness.aws.settings.role_name)["Role"]["AssumeRolePolicyDocument"]
    iam.delete_role(RoleName=harness.aws.settings.role_name)
    harness.aws.forget(A2)
    try:
        harness.org.session(A1).client("s3").create_bucket(Bucket="sim01-while-a2-down")
        outcome, summary = harness.run("inventory", {"service": "all"})
    finally:
        iam.create_role(RoleName=harness.aws.settings.role_name, AssumeRolePolicyDocument=json.dumps(trust))
    # Some items failed, the others ran: the run succeeded with failures, each recorded with its reason.
    assert outcome.status == "SUCCEEDED"
    assert summary["status"] == outcome.output["status"] == "SUCCEEDED_WITH_FAILURES"
    assert (summary["failed_accounts"], summary["accounts"]) == (1, 2)
    assert A2 in summary["message"]
    assert "AccountAccessDenied" in summary["message"]
    rows = Stores.of(harness.aws).runs.summaries(summary["run_id"])
    assert (rows[A1]["Status"], rows[A2]["Status"]) == ("SUCCEEDED", "FAILED")
    assert rows[A2]["Failed"] == rows[A2]["Items"] == len(rows[A2]["FailedItems"])
    failed = {(f["account_id"], f["service"]) for f in summary["failed_items"]}
    assert {a for a, _ in failed} == {A2}
    assert {s for _, s in failed} == set(SERVICES)
    assert all("AssumeRole" in f["cause"] for f in summary["failed_items"])
    # The other account was collected; the failed one's inventory is untouched (nothing swept).
    assert "arn:aws:s3:::sim01-while-a2-down" in harness.resource_arns(A1)
    assert harness.resource_arns(A2) == kept


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ({"service": "dynamodb"}, "service"),  # not a collected service
        ({"service": "all", "account_id": "12345"}, "account_id"),
        ({"service": 3}, "service"),
        ({"service": "all", "account_id": "999999999999"}, "account_id"),
        ({"service": "iam", "region": "eu-west-1"}, "region"),
        ({"service": "ec2", "region": "moon-1"}, "region"),
        ({"service": "all", "servce": "s3"}, "servce"),
    ],
)
def test_invalid_input_fails_at_the_first_state_and_writes_nothing(harness, request_, field):
    runs_before = len(harness.table_items("runs_table"))
    resources_before = len(harness.table_items("resources_table"))
    items_before = (
        harness.aws.client("s3").list_objects_v2(Bucket=harness.aws.settings.items_bucket).get("KeyCount")
    )
    outcome, summary = harness.run("inventory", request_)
    assert outcome.status == "FAILED"
    assert outcome.error == "InvalidInput"
    assert field in json.loads(outcome.cause)["errorMessage"]
    assert summary is None
    assert len(harness.table_items("runs_table")) == runs_before
    assert len(harness.table_items("resources_table")) == resources_before
    after = harness.aws.client("s3").list_objects_v2(Bucket=harness.aws.settings.items_bucket).get("KeyCount")
    assert after == items_before


def throttled_retries(machine: str) -> int:
    definition = json.loads(
        (Path(asl.__file__).parents[1] / "statemachines" / f"{machine}.asl.json").read_text()
    )
    found: list[int] = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("ErrorEquals") == ["Throttled"] and "MaxAttempts" in node:
                found.append(node["MaxAttempts"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(definition)
    return min(found)


def test_throttled_api_is_retried_with_the_same_result(harness):
    baseline, _ = harness.run("inventory", {"service": "ec2", "account_id": A1, "region": "us-east-1"})
    expected = harness.resource_arns(A1)
    # As many throttled calls as the state machine's Retry on Throttled absorbs (the collect call's
    # first attempt and each retry meet one).
    throttled = {"left": throttled_retries("inventory")}

    def throttle(model, **_):
        if model.name == "DescribeSecurityGroups" and throttled["left"]:
            throttled["left"] -= 1
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, model.name)

    external_id = Stores.of(harness.aws).accounts.get(A1).external_id
    client = harness.aws.customer_client(A1, "ec2", "us-east-1", external_id)
    client.meta.events.register_first("before-call.ec2.DescribeSecurityGroups", throttle)
    try:
        outcome, summary = harness.run(
            "inventory", {"service": "ec2", "account_id": A1, "region": "us-east-1"}
        )
    finally:
        client.meta.events.unregister("before-call.ec2.DescribeSecurityGroups", throttle)
    assert baseline.status == outcome.status == "SUCCEEDED"
    assert throttled["left"] == 0
    assert summary["failed"] == 0
    assert harness.resource_arns(A1) == expected


def test_local_runtime_carries_the_same_schedules_as_the_stack(harness):
    scheduler = harness.aws.client("scheduler")
    deployed = {}
    for summary in scheduler.list_schedules()["Schedules"]:
        schedule = scheduler.get_schedule(Name=summary["Name"])
        deployed[schedule["Name"]] = (
            schedule["ScheduleExpression"],
            schedule["Target"]["Arn"].rsplit(":", 1)[-1],
            json.loads(schedule["Target"]["Input"]),
        )
    assert deployed == {
        f"qrie-{s.name}": (s.expression, f"qrie-{s.state_machine}", s.input) for s in SCHEDULES
    } | {f"qrie-{s.name}": (s.expression, BY_NAME[s.task].function_name, s.input) for s in TASK_SCHEDULES}


def test_a_failed_item_map_still_finalizes_the_run_with_its_true_status(harness, monkeypatch):
    """The map itself fails (its ResultWriter cannot write, as without s3:PutObject): the Catch
    still runs Finalize, so the run record ends FAILED instead of staying RUNNING."""
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (
        resource_eval_s3,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    def refuse(env, *_):
        raise FailureEventException(
            FailureEvent(
                env=env,
                error_name=StatesErrorName(typ=StatesErrorNameType.StatesResultWriterFailed),
                event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(
                    taskFailedEventDetails=TaskFailedEventDetails(
                        error="States.ResultWriterFailed", cause="AccessDenied: s3:PutObject"
                    )
                ),
            )
        )

    monkeypatch.setattr(resource_eval_s3.ResourceEvalS3, "_handle_put_object", staticmethod(refuse))
    outcome, summary = harness.run("inventory", {"service": "iam", "account_id": A1})
    assert (outcome.status, outcome.error) == ("FAILED", "RunFailed")
    assert "States.ResultWriterFailed" in outcome.cause
    assert summary["status"] == "FAILED"
    assert summary["failed"] == 0  # every item itself succeeded: the failure is the map's


def test_a_page_holds_account_ids_only_and_each_account_summarizes_its_items(harness):
    outcome, summary = harness.run("inventory", {"service": "all"})
    s3 = harness.aws.client("s3")
    bucket = harness.aws.settings.items_bucket
    name = outcome.execution_arn.rsplit(":", 1)[-1]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"runs/inventory/{name}/")["Contents"]]
    assert keys == [f"runs/inventory/{name}/accounts/first.json"]
    page = json.loads(s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read())
    assert page == [{"account_id": A1}, {"account_id": A2}]
    rows = Stores.of(harness.aws).runs.summaries(summary["run_id"])
    assert sorted(rows) == [A1, A2]
    assert sum(int(r["Items"]) for r in rows.values()) == summary["items"]
    assert all(r["Status"] == "SUCCEEDED" and r["Failed"] == 0 for r in rows.values())
