"""Accounts from AWS Organizations (moto's emulation of it, the simulated org's organisation) and
offboarding: ``qrie accounts sync`` through the sync task's Lambda, ``qrie accounts remove``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.runtime import LocalRuntime, fire_schedule
from orchestration.schedules import TASK_SCHEDULES, TaskSchedule
from orchestration.simulated_org import SimulatedOrg, account_id, trust_policy
from qrie_lib import lifecycle
from qrie_lib.models import AccountStatus
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.scan import ScanRequest, account_items, wanted_policies
from qrie_lib.services.registry import SERVICES
from qrie_lib.settings import Settings
from qrie_lib.stores import Stores
from qrie_lib.stores.findings import FindingState, ResolvedReason
from tasks.registry import BY_NAME
from tests.integration.conftest import Harness

runner = CliRunner()
ORG_EXTERNAL_ID = "org-wide-external-id-of-the-stackset"
SETTINGS = Settings(page_size=50, external_id=ORG_EXTERNAL_ID)
OPERATOR = "123456789012"  # the simulated organisation's management account
A1, A2, A3 = account_id(1), account_id(2), account_id(3)


@contextmanager
def simulated(settings: Settings = SETTINGS) -> Iterator[SimulatedOrg]:
    """Two accounts in the organisation's OUs, onboarded, nothing inventoried."""
    with LocalRuntime(settings, fast_retries=True) as runtime:
        assert runtime.aws is not None
        org = SimulatedOrg(runtime.aws, 2)
        org.create()
        yield org


@pytest.fixture
def org() -> Iterator[SimulatedOrg]:
    with simulated() as org:
        yield org


@pytest.fixture(scope="module")
def scanned() -> Iterator[Harness]:
    """Three accounts inventoried and scanned with the whole catalogue launched."""
    with LocalRuntime(SETTINGS, fast_retries=True) as runtime:
        assert runtime.aws is not None
        simulated = SimulatedOrg(runtime.aws, 3)
        simulated.create()
        harness = Harness(runtime, simulated)
        outcome, _ = harness.run("inventory", {"service": "all"})
        assert outcome.status == "SUCCEEDED", outcome.cause
        lifecycle.launch(Stores.of(runtime.aws), sorted(CATALOGUE), None, None)
        outcome, _ = harness.run("scan", {})
        assert outcome.status == "SUCCEEDED", outcome.cause
        yield harness


def member(org: SimulatedOrg, n: int, ou: str, external_id: str | None) -> str:
    """A new member account; with ``external_id``, the StackSet's read-only role requiring it."""
    acct = account_id(n)
    org.join(acct, f"new-{n:02d}", ou)
    if external_id:
        org.session(acct).client("iam").create_role(
            RoleName=org.aws.settings.role_name, AssumeRolePolicyDocument=trust_policy(OPERATOR, external_id)
        )
    return acct


def only_schedule(name: str) -> TaskSchedule:
    (schedule,) = [s for s in TASK_SCHEDULES if s.name == name]
    return schedule


def sync(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["accounts", "sync", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def accounts(org: SimulatedOrg) -> dict[str, Any]:
    return {a.account_id: a for a in Stores.of(org.aws).accounts.list()}


def test_sync_onboards_a_new_account_whose_role_answers_and_reports_the_others_pending(org):
    answers = member(org, 3, "prod", ORG_EXTERNAL_ID)
    no_role = member(org, 4, "dev", None)
    other_id = member(org, 5, "dev", "an-individual-external-id")
    report = sync()
    assert report["onboarded"] == [answers]
    assert {p["account_id"]: p["reason"].split(":")[0] for p in report["pending"]} == {
        no_role: "AccountAccessDenied",
        other_id: "AccountAccessDenied",
    }
    assert report["skipped"] == [{"account_id": OPERATOR, "reason": "management account: qrie accounts add"}]
    stored = accounts(org)
    assert no_role not in stored
    assert other_id not in stored
    onboarded = stored[answers]
    assert (onboarded.status, onboarded.ou_path, onboarded.name) == (
        AccountStatus.ACTIVE,
        "/root/prod/",
        "new-03",
    )
    assert onboarded.external_id == ORG_EXTERNAL_ID
    # The simulated org's own accounts keep their per-account ExternalIds.
    assert stored[A1].external_id not in (None, ORG_EXTERNAL_ID)
    # Pending accounts are tried again; nothing changed, so nothing else is reported.
    again = sync()
    assert (again["onboarded"], again["moved"], again["removed"]) == ([], [], [])
    assert {p["account_id"] for p in again["pending"]} == {no_role, other_id}


def test_without_an_organisation_external_id_new_accounts_wait_for_one():
    with simulated(SETTINGS.model_copy(update={"external_id": None})) as org:
        new = member(org, 3, "prod", ORG_EXTERNAL_ID)
        report = sync()
        assert report["onboarded"] == []
        assert report["pending"][0]["account_id"] == new
        assert "--external-id" in report["pending"][0]["reason"]
        assert sync("--external-id", ORG_EXTERNAL_ID)["onboarded"] == [new]


def test_the_probe_budget_defers_the_rest_to_the_next_sync():
    with simulated(SETTINGS.model_copy(update={"accounts_sync_probes": 1})) as org:
        first, second = member(org, 3, "prod", ORG_EXTERNAL_ID), member(org, 4, "prod", ORG_EXTERNAL_ID)
        report = sync()
        assert (report["onboarded"], report["deferred"]) == ([first], [second])
        assert sync()["onboarded"] == [second]


def test_closed_and_departed_accounts_are_marked_and_skipped_by_the_next_inventory(org):
    orgs = org.organizations
    orgs.close_account(AccountId=A1)
    orgs.remove_account_from_organization(AccountId=A2)
    report = sync()
    assert (report["suspended"], report["removed"]) == ([A1], [A2])
    stored = accounts(org)
    assert (stored[A1].status, stored[A2].status) == (AccountStatus.SUSPENDED, AccountStatus.REMOVED)
    assert Stores.of(org.aws).accounts.active_page(None, 100) == ([], None)  # what a run's pages read
    assert sync()["removed"] == []  # marked once


def test_individually_onboarded_accounts_outside_the_organisation_are_left_alone(org):
    result = runner.invoke(app, ["accounts", "add", "210000000009", "--ou-path", "/partners/"])
    assert result.exit_code == 0, result.output
    report = sync()
    assert "210000000009" not in report["removed"]
    assert accounts(org)["210000000009"].status is AccountStatus.ACTIVE


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["accounts", "remove", "999999999999", "--yes"], "UnknownAccount"),
        (["accounts", "remove", "12345", "--yes"], "InvalidInput"),
        (["accounts", "sync", "--external-id", "qrie-external-id"], "InvalidInput"),
        (["accounts", "sync", "--external-id", "no spaces allowed"], "InvalidInput"),
    ],
)
def test_bad_input_is_a_one_line_error_that_writes_nothing(org, args, error):
    before = accounts(org)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"{error}: ")
    assert len(result.output.strip().splitlines()) == 1
    assert accounts(org) == before


def test_remove_asks_for_confirmation(org):
    result = runner.invoke(app, ["accounts", "remove", A1], input="n\n")
    assert result.exit_code == 1
    assert accounts(org)[A1].status is AccountStatus.ACTIVE


def test_the_local_runtime_schedules_the_sync_daily_and_its_fire_runs_it(org):
    schedule = org.aws.client("scheduler").get_schedule(Name="qrie-daily-accounts-sync")
    assert schedule["ScheduleExpression"] == "cron(0 3 * * ? *)"
    function = BY_NAME["AccountsSync"].function_name
    assert schedule["Target"]["Arn"].endswith(f":function:{function}")
    new = member(org, 3, "dev", ORG_EXTERNAL_ID)
    declared = only_schedule("daily-accounts-sync")
    assert fire_schedule(org.aws, declared).endswith(f":function:{function}")  # as `local up` fires it
    assert accounts(org)[new].ou_path == "/root/dev/"


def test_a_moved_account_gets_its_new_ou_path_and_scopes_follow_it(scanned):
    stores = Stores.of(scanned.aws)
    prod_only = "S3BucketPublic"
    before = [f for f in stores.findings.unresolved_in_partition(f"{A1}_s3") if f.policy_id == prod_only]
    assert before  # A1 (in /root/prod/) has one to lose
    lifecycle.update(stores, prod_only, {"include_ou_paths": ["/root/prod/"]})
    dev_only = "S3BucketVersioningDisabled"
    lifecycle.update(stores, dev_only, {"include_ou_paths": ["/root/dev/"]})

    def scanned_accounts(policy_id: str) -> set[str]:
        request = ScanRequest(policy_id=policy_id)
        policies = wanted_policies(request, stores)
        return {a.account_id for a in stores.accounts.active() if account_items(request, a, policies)}

    assert scanned_accounts(dev_only) == {A2}
    scanned.org.move(A1, "dev")
    report = sync()
    assert report["moved"] == [{"account_id": A1, "from": "/root/prod/", "to": "/root/dev/"}]
    assert stores.accounts.get(A1).ou_path == "/root/dev/"
    assert scanned_accounts(dev_only) == {A1, A2}
    assert A1 not in scanned_accounts(prod_only)
    # Its findings of the prod-only policy resolved as out of scope; no other account's moved.
    assert report["findings_out_of_scope"] == len(before)
    after = {
        (f.arn, f.policy_id): f
        for f in stores.findings.get_many([(f.arn, f.policy_id) for f in before]).values()
    }
    assert {(f.state, f.resolved_reason) for f in after.values()} == {
        (FindingState.RESOLVED, ResolvedReason.OUT_OF_SCOPE)
    }
    assert [f for f in stores.findings.unresolved_in_partition(f"{A3}_s3") if f.policy_id == prod_only]


def partitions(harness: Harness, account: str) -> dict[str, Any]:
    """Everything stored under an account: its resource rows and its findings."""
    return {
        "resources": sorted(
            i["ARN"]["S"] for i in harness.table_items("resources_table") if i["AccountId"]["S"] == account
        ),
        "findings": sorted(
            json.dumps(i, sort_keys=True)
            for i in harness.table_items("findings_table")
            if i["AccountId"]["S"] == account
        ),
    }


def test_remove_resolves_findings_as_account_removed_deletes_rows_and_touches_no_other_account(scanned):
    stores = Stores.of(scanned.aws)
    others_before = {a: partitions(scanned, a) for a in (A1, A3)}
    active = [f for s in SERVICES for f in stores.findings.unresolved_in_partition(f"{A2}_{s}")]
    assert active
    assert scanned.resource_arns(A2)
    result = runner.invoke(app, ["accounts", "remove", A2, "--yes", "--json"])
    assert result.exit_code == 0, result.output
    removed = json.loads(result.stdout)
    assert removed["findings_resolved"] == len(active)
    assert removed["resources_deleted"] > 0
    assert scanned.resource_arns(A2) == set()
    now = stores.findings.get_many([(f.arn, f.policy_id) for f in active])
    assert {(f.state, f.resolved_reason) for f in now.values()} == {
        (FindingState.RESOLVED, ResolvedReason.ACCOUNT_REMOVED)
    }
    assert stores.accounts.get(A2).status is AccountStatus.REMOVED
    assert {a: partitions(scanned, a) for a in (A1, A3)} == others_before
    # A sync does not onboard it again; a scan plan skips it.
    assert A2 not in sync()["onboarded"]
    assert A2 not in stores.accounts.active_page(None, 100)[0]
