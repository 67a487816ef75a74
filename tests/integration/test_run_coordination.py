"""Run coordination that does not grow with the organisation, on the real ASL: Plan reads no list
of accounts, pages of accounts follow each other, each account's child summarizes itself, Finalize
pages the summaries; every state that can fail reaches Finalize; one inventory at a time (the
lease); the weekly inventory's end starts the full scan; consecutive failures per account."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from orchestration.runtime import LocalRuntime
from orchestration.simulated_org import account_id
from qrie_lib import executions, inventory, runs
from qrie_lib.models import Account
from qrie_lib.stores import Stores
from qrie_lib.stores.runs import RunsStore
from qrie_lib.timeutil import now_iso
from tests.integration.conftest import Harness

pytestmark = pytest.mark.slow
A1, A2 = account_id(1), account_id(2)
FAR = "2999-01-01T00:00:00.000Z"


def dynamodb_calls(aws, action: Callable[[], object]) -> Counter[str]:
    """The DynamoDB operations ``action`` makes, counted at the client (botocore's event hook)."""
    calls: Counter[str] = Counter()

    def count(model, **_):
        calls[model.name] += 1

    client = aws.client("dynamodb")
    client.meta.events.register("before-call.dynamodb", count)
    try:
        action()
    finally:
        client.meta.events.unregister("before-call.dynamodb", count)
    return calls


def test_plan_and_a_page_make_the_same_dynamodb_calls_at_5_and_50_accounts():
    with LocalRuntime() as runtime:
        aws = runtime.aws
        stores = Stores.of(aws)
        started: list[dict] = []

        def plan_and_page() -> None:
            execution = f"arn:aws:states:us-east-1:123456789012:execution:qrie-inventory:run-{len(started)}"
            event = {"input": {"service": "all"}, "execution_id": execution, "started_at": now_iso()}
            started.append(planned := inventory.plan(event, aws))
            page = runs.page({"run_id": planned["run_id"], "request": planned["request"]}, aws)
            started[-1]["page"] = page

        def accounts(first: int, last: int) -> None:
            for n in range(first, last + 1):
                stores.accounts.put(Account(account_id=account_id(n), regions=["us-east-1"]))

        accounts(1, 5)
        at_5 = dynamodb_calls(aws, plan_and_page)
        stores.runs.release_lease("inventory", started[-1]["run_id"])
        accounts(6, 50)
        at_50 = dynamodb_calls(aws, plan_and_page)
    assert at_5 == at_50
    assert sum(at_50.values()) <= 5  # the lease, the header, one page of account ids, its count
    assert [p["page"]["accounts"] for p in started] == [5, 50]


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    from orchestration.simulated_org import SimulatedOrg
    from tests.integration.conftest import SETTINGS

    with LocalRuntime(SETTINGS, fast_retries=True) as runtime:
        org = SimulatedOrg(runtime.aws, 2)
        org.create()
        yield Harness(runtime, org)


def invocations(harness: Harness, action: Callable[[], object]) -> Counter[str]:
    before = Counter(harness.runtime.dispatch.invocations)
    action()
    return Counter(harness.runtime.dispatch.invocations) - before


def test_a_failing_plan_still_reaches_finalize_and_closes_the_run(harness, monkeypatch):
    def refuse(*_args, **_kwargs):
        raise RuntimeError("the runs table is unreachable")

    monkeypatch.setattr(RunsStore, "acquire_lease", refuse)
    outcome, summary = harness.run("inventory", {"service": "iam"})
    assert (outcome.status, outcome.error) == ("FAILED", "RunFailed")
    assert summary["status"] == "FAILED"  # a header is written FAILED: no run stays RUNNING
    assert "RuntimeError: the runs table is unreachable" in summary["message"]


def test_the_lease_refuses_a_second_inventory_which_ends_skipped(harness):
    stores = Stores.of(harness.aws)
    assert stores.runs.acquire_lease("inventory", "inventory/the-first", FAR) is None
    ran: list = []
    try:
        calls = invocations(harness, lambda: ran.append(harness.run("inventory", {"service": "all"})))
    finally:
        stores.runs.release_lease("inventory", "inventory/the-first")
    outcome, summary = ran[0]
    assert outcome.status == "SUCCEEDED"  # not an error: the running inventory does the work
    assert outcome.output["lease"] == "HELD"
    assert summary["status"] == "SKIPPED"
    assert "inventory/the-first" in summary["message"]
    assert set(calls) == {"qrie-inventory-plan"}  # no account touched


def test_an_expired_lease_is_taken_over_and_released_at_the_end(harness):
    stores = Stores.of(harness.aws)
    assert stores.runs.acquire_lease("inventory", "inventory/died", "2000-01-01T00:00:00.000Z") is None
    outcome, summary = harness.run("inventory", {"service": "iam"})
    assert outcome.status == "SUCCEEDED", outcome.cause
    assert summary["status"] == "SUCCEEDED"
    assert stores.runs.lease("inventory") is None


def test_the_weekly_inventory_starts_the_full_scan_at_its_end(harness):
    outcome, summary = harness.run("inventory", {"service": "iam", "scan_type": "anti-entropy"})
    assert outcome.status == "SUCCEEDED", outcome.cause
    scan_arn = summary["full_scan"]
    sfn = harness.aws.client("stepfunctions")
    assert json.loads(sfn.describe_execution(executionArn=scan_arn)["input"]) == {"full": True}
    assert executions.follow(harness.aws, "scan", scan_arn, poll_s=0.05).status == "SUCCEEDED"
    # An on-demand inventory starts nothing.
    _, summary = harness.run("inventory", {"service": "iam"})
    assert "full_scan" not in summary


@contextmanager
def role_deleted(harness: Harness, acct: str) -> Iterator[None]:
    iam = harness.org.session(acct).client("iam")
    role = harness.aws.settings.role_name
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    iam.delete_role(RoleName=role)
    harness.aws.forget(acct)
    try:
        yield
    finally:
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
        harness.aws.forget(acct)


def test_an_account_failing_run_after_run_counts_its_consecutive_failures(harness):
    stores = Stores.of(harness.aws)
    with role_deleted(harness, A2):
        for _ in range(2):
            outcome, summary = harness.run("inventory", {"service": "iam"})
            assert outcome.status == "SUCCEEDED"
            assert summary["status"] == "SUCCEEDED_WITH_FAILURES"
    assert stores.runs.account_state("inventory", A2).consecutive_failures == 2
    assert stores.runs.account_state("inventory", A1).consecutive_failures == 0
    outcome, summary = harness.run("inventory", {"service": "iam"})
    assert summary["status"] == "SUCCEEDED"
    assert stores.runs.account_state("inventory", A2).consecutive_failures == 0


def test_accounts_come_in_pages_and_finalize_reads_their_summaries_in_pages(harness, monkeypatch):
    monkeypatch.setattr(
        harness.aws, "settings", harness.aws.settings.model_copy(update={"accounts_per_page": 1})
    )
    monkeypatch.setattr(runs, "SUMMARIES_PER_CALL", 1)
    ran: list = []
    calls = invocations(harness, lambda: ran.append(harness.run("inventory", {"service": "iam"})))
    outcome, summary = ran[0]
    assert outcome.status == "SUCCEEDED", outcome.cause
    assert (summary["accounts"], summary["items"], summary["failed"]) == (2, 2, 0)
    assert calls["qrie-run-page"] >= 2
    assert calls["qrie-inventory-finalize"] >= 2
    assert calls["qrie-inventory-expand"] == calls["qrie-inventory-summarize"] == 2
