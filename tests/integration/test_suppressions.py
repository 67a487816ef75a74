"""Suppressions end to end on the local runtime: rules added and removed through the API, the scan
executions they start, scope by account, OU path, ARN glob and resource tag, a suppressed finding
that becomes compliant, expiry with an injected clock, the audit trail, refused input, and the
counters against a recount throughout."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestration.cli import app as cli
from orchestration.cli_api import API, proxy_event
from orchestration.dispatch import LocalContext
from orchestration.simulated_org import account_id
from qrie_lib import executions, lifecycle, suppressions
from qrie_lib.policies.base import band
from qrie_lib.stores import Stores
from qrie_lib.stores.findings import FindingState, ResolvedReason
from qrie_lib.timeutil import iso, now_iso, parse_iso
from tasks import api
from tests.integration.conftest import Harness, inventoried_org

pytestmark = pytest.mark.slow
A1, A2 = account_id(1), account_id(2)
POLICY = "S3BucketVersioningDisabled"  # logs, public-assets and shared violate in each account
USER = "arn:aws:iam::123456789012:user/tester"
CONTEXT_ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{API.function_name}"


@pytest.fixture(scope="module")
def h() -> Iterator[Harness]:
    with inventoried_org(2) as harness:
        harness.org.session(A2).client("s3").put_bucket_tagging(
            Bucket="sim02-logs", Tagging={"TagSet": [{"Key": "risk", "Value": "accepted"}]}
        )
        assert harness.run("inventory", {"service": "s3", "account_id": A2})[0].status == "SUCCEEDED"
        lifecycle.launch(Stores.of(harness.aws), [POLICY, "S3BucketPublic"])
        assert harness.run("scan", {})[0].status == "SUCCEEDED"
        yield harness


def call(method: str, path: str, body: Any = None, **query: str) -> tuple[int, dict[str, Any]]:
    event = proxy_event(
        method,
        path,
        {k: [v] for k, v in query.items()} or None,
        {"Content-Type": "application/json", "Host": "api.example"},
        None if body is None else json.dumps(body),
    )
    event["requestContext"]["identity"]["userArn"] = USER
    response = api.handler(event, LocalContext(API, CONTEXT_ARN))
    return response["statusCode"], json.loads(response["body"])


def finish(h: Harness, arn: str | None) -> None:
    assert arn is not None
    assert executions.follow(h.aws, "scan", arn, poll_s=0.05).status == "SUCCEEDED"


def states(h: Harness) -> dict[str, tuple[str, str | None]]:
    """The policy's findings: ARN → (state, suppression id)."""
    return {
        i["ARN"]["S"]: (i["State"]["S"], i.get("SuppressionId", {}).get("S"))
        for i in h.table_items("findings_table")
        if i["PolicyId"]["S"] == POLICY
    }


def recount(h: Harness) -> tuple[dict[str, Counter[str]], dict[str, Counter[str]]]:
    by_policy: dict[str, Counter[str]] = {}
    by_account: dict[str, Counter[str]] = {}
    for item in h.table_items("findings_table"):
        cell = f"{item['State']['S']}|{band(int(item['Severity']['N']))}"
        by_policy.setdefault(item["PolicyId"]["S"], Counter())[cell] += 1
        by_account.setdefault(item["AccountId"]["S"], Counter())[cell] += 1
    return by_policy, by_account


def counted(h: Harness) -> tuple[dict[str, Counter[str]], dict[str, Counter[str]]]:
    stores = Stores.of(h.aws)
    by_policy = stores.counters.policies(p.policy_id for p in stores.policies.list())
    by_account = {a: +stores.counters.account(a) for a in (A1, A2)}
    return {p: +c for p, c in by_policy.items() if +c}, {a: c for a, c in by_account.items() if c}


def in_a_month() -> str:
    return iso(parse_iso(now_iso()) + timedelta(days=30))


def rule(**scope: Any) -> dict[str, Any]:
    return {
        "policy_id": POLICY,
        "reason": "legacy buckets",
        "owner": "team-a",
        "expires_at": in_a_month(),
    } | scope


def accounts_of(h: Harness) -> dict[str, str]:
    return {i["ARN"]["S"]: i["AccountId"]["S"] for i in h.table_items("findings_table")}


# Each scope: the rule's criteria, and which of the policy's findings (ARN, account) it covers.
SCOPES = {
    "account": ({"accounts": [A2]}, lambda arn, account: account == A2),
    "ou": ({"ou_paths": ["/root/prod/"]}, lambda arn, account: account == A1),
    "arn_glob": ({"arn_glob": "arn:aws:s3:::sim0?-public-*"}, lambda arn, _: "-public-" in arn),
    "tag": ({"resource_tags": {"risk": "accepted"}}, lambda arn, _: arn == "arn:aws:s3:::sim02-logs"),
}


@pytest.mark.parametrize("scope", SCOPES)
def test_a_suppression_moves_its_findings_only_and_its_removal_moves_them_back(h, scope):
    given, covers = SCOPES[scope]
    before, owner = states(h), accounts_of(h)
    expected = {arn for arn in before if covers(arn, owner[arn])}
    assert 0 < len(expected) < len(before)
    assert {s for s, _ in before.values()} == {"ACTIVE"}
    assert expected <= before.keys()
    status, body = call("POST", "/suppressions", rule(**given))
    assert status == 201, body
    rule_id = body["suppression"]["rule_id"]
    finish(h, body["execution_arn"])
    after = states(h)
    assert {a for a, (s, r) in after.items() if s == "SUPPRESSED" and r == rule_id} == expected
    assert {a for a, (s, _) in after.items() if s == "ACTIVE"} == before.keys() - expected
    assert counted(h) == recount(h)
    # not counted as open: the summary's ACTIVE total dropped by exactly the suppressed findings
    status, page = call("GET", "/findings", policy=POLICY, state="SUPPRESSED")
    assert {r["arn"] for r in page["findings"]} == expected

    status, body = call("DELETE", f"/suppressions/{rule_id}")
    assert (status, body["suppression"]["status"]) == (202, "REMOVED")
    finish(h, body["execution_arn"])
    assert states(h) == before
    assert counted(h) == recount(h)
    trail = call("GET", f"/suppressions/{rule_id}")[1]["audit"]
    assert [(a["action"], a["who"]) for a in trail] == [("created", USER), ("removed", USER)]
    assert trail[0]["before"] is None
    assert trail[0]["after"]["status"] == "ACTIVE"
    assert (trail[1]["before"]["status"], trail[1]["after"]["status"]) == ("ACTIVE", "REMOVED")


def test_a_suppressed_finding_that_becomes_compliant_resolves(h):
    arn = "arn:aws:s3:::sim01-logs"
    _status, body = call("POST", "/suppressions", rule(arn_glob=arn))
    finish(h, body["execution_arn"])
    assert states(h)[arn][0] == "SUPPRESSED"
    s3 = h.org.session(A1).client("s3")
    s3.put_bucket_versioning(Bucket="sim01-logs", VersioningConfiguration={"Status": "Enabled"})
    h.run("inventory", {"service": "s3", "account_id": A1})
    assert h.run("scan", {})[0].status == "SUCCEEDED"
    finding = Stores.of(h.aws).findings.get_many([(arn, POLICY)])[(arn, POLICY)]
    assert (finding.state, finding.resolved_reason, finding.suppression_id) == (
        FindingState.RESOLVED,
        ResolvedReason.COMPLIANT,
        None,
    )
    assert counted(h) == recount(h)
    s3.put_bucket_versioning(Bucket="sim01-logs", VersioningConfiguration={"Status": "Suspended"})
    h.run("inventory", {"service": "s3", "account_id": A1})
    h.run("scan", {})
    assert states(h)[arn] == ("SUPPRESSED", body["suppression"]["rule_id"])  # reopened, still accepted
    finish(h, call("DELETE", f"/suppressions/{body['suppression']['rule_id']}")[1]["execution_arn"])
    assert states(h)[arn] == ("ACTIVE", None)


def test_expiry_reactivates_the_findings_that_still_violate(h):
    stores = Stores.of(h.aws)
    created, rematched = suppressions.add(h.aws, stores, rule(accounts=[A1]), "local:tester")
    finish(h, rematched)
    suppressed = {a for a, (s, _) in states(h).items() if s == "SUPPRESSED"}
    assert suppressed
    assert all("sim01-" in a for a in suppressed)
    # The day before it expires nothing happens; after it, the task ends it and reactivates.
    assert suppressions.expire(h.aws, stores, now=iso(parse_iso(created.expires_at) - timedelta(days=1))) == {
        "expired": [],
        "executions": [],
    }
    outcome = suppressions.expire(
        h.aws, stores, now=iso(parse_iso(created.expires_at) + timedelta(minutes=1))
    )
    assert outcome["expired"] == [created.rule_id]
    assert len(outcome["executions"]) == 1
    finish(h, outcome["executions"][0])
    assert {s for s, _ in states(h).values()} == {"ACTIVE"}
    assert counted(h) == recount(h)
    trail = stores.audit.of(suppressions.subject(created.rule_id))
    assert [(a["action"], a["who"]) for a in trail] == [
        ("created", "local:tester"),
        ("expired", "system:expiry"),
    ]
    assert suppressions.get(stores, created.rule_id).status.value == "EXPIRED"


BAD = {
    "no reason": rule(reason=""),
    "blank reason": rule(reason="   "),
    "no owner": {k: v for k, v in rule().items() if k != "owner"},
    "past expiry": rule(expires_at="2020-01-01"),
    "too distant expiry": rule(expires_at="2999-01-01"),
    "no expiry": {k: v for k, v in rule().items() if k != "expires_at"},
    "unknown policy": rule(policy_id="NoSuchPolicy"),
    "malformed glob": rule(arn_glob="arn:aws:s3:::[bucket"),
    "not an ARN glob": rule(arn_glob="bucket-*"),
    "bad account id": rule(accounts=["12345"]),
    "bad OU path": rule(ou_paths=["root/prod"]),
    "unknown field": rule(scope={"accounts": [A1]}),
    # Issue 20 item 7: one call hiding every finding of the organisation must say so.
    "ALL with no criterion": rule(policy_id="ALL"),
    "everything with a criterion": rule(policy_id="ALL", accounts=[A1], everything=True),
    "everything of one policy": rule(everything=True),
}


def table_counts(h: Harness) -> tuple[int, int]:
    return len(h.table_items("suppressions_table")), len(h.table_items("audit_table"))


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_a_400_and_writes_nothing(h, case):
    before = table_counts(h)
    status, body = call("POST", "/suppressions", BAD[case])
    assert status == 400, body
    assert body["error"] == "InvalidInput"
    assert body["message"]
    assert table_counts(h) == before


@pytest.mark.parametrize(
    "case", ["past expiry", "unknown policy", "malformed glob", "bad account id", "no reason"]
)
def test_bad_input_is_a_cli_exit_2(case):
    given = BAD[case]
    args = ["suppressions", "add", "--policy", given["policy_id"], "--reason", given["reason"]]
    args += ["--owner", given["owner"], "--expires", given["expires_at"]]
    args += [a for acct in given.get("accounts", []) for a in ("--account", acct)]
    args += ["--arn-glob", given["arn_glob"]] if "arn_glob" in given else []
    # No endpoint and no AWS: the input is refused before any call is made.
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "InvalidInput" in result.output


def test_all_with_no_criterion_is_a_cli_usage_error_without_everything():
    args = [
        "suppressions",
        "add",
        "--policy",
        "ALL",
        "--reason",
        "r",
        "--owner",
        "o",
        "--expires",
        in_a_month(),
    ]
    result = CliRunner().invoke(cli, args)  # no endpoint: refused before any call
    assert result.exit_code == 2, result.output
    assert "everything" in result.output


def console_page(path: str) -> str:
    event = proxy_event("GET", path, None, {"Host": "api.example"})
    response = api.handler(event, LocalContext(API, CONTEXT_ARN))
    assert response["statusCode"] == 200
    return str(response["body"])


def test_an_org_wide_suppression_needs_everything_and_the_overview_shows_it(h):
    assert "Every finding of the organisation" not in console_page("/console/")
    status, body = call("POST", "/suppressions", rule(policy_id="ALL", everything=True))
    assert status == 201, body
    rule_id = body["suppression"]["rule_id"]
    assert body["suppression"]["everything"] is True
    finish(h, body["execution_arn"])
    overview = console_page("/console/")
    assert "Every finding of the organisation is suppressed" in overview
    assert rule_id in overview
    finish(h, call("DELETE", f"/suppressions/{rule_id}")[1]["execution_arn"])
    assert "Every finding of the organisation" not in console_page("/console/")
    assert counted(h) == recount(h)


def test_a_rule_past_its_expiry_reads_expired_before_the_daily_task_marks_it(h):
    """Issue 20 item 8: its state comes from its expiry at read time (API, CLI, matcher)."""
    stores = Stores.of(h.aws)
    created, rematched = suppressions.add(h.aws, stores, rule(accounts=[A1]), "local:tester")
    finish(h, rematched)
    lapsed = created.model_copy(update={"expires_at": iso(parse_iso(now_iso()) - timedelta(minutes=1))})
    stores.suppressions.put(lapsed)  # as if its expiry passed: still ACTIVE in the table
    listed = {r["rule_id"]: r for r in call("GET", "/suppressions")[1]["suppressions"]}
    assert listed[created.rule_id]["status"] == "EXPIRED"
    assert created.rule_id not in {
        r["rule_id"] for r in call("GET", "/suppressions", status="ACTIVE")[1]["suppressions"]
    }
    assert call("GET", f"/suppressions/{created.rule_id}")[1]["suppression"]["status"] == "EXPIRED"
    status, body = call("DELETE", f"/suppressions/{created.rule_id}")
    assert (status, body["message"]) == (400, f"suppression {created.rule_id} is EXPIRED already")
    result = CliRunner().invoke(cli, ["suppressions", "list", "--json"])  # the embedded runtime
    assert {r["rule_id"]: r["status"] for r in json.loads(result.stdout)}[created.rule_id] == "EXPIRED"
    # A scan no longer applies it: the findings it held open again, before the daily task ran.
    finish(h, executions.start(h.aws, "scan", {"policy_id": POLICY, "suppressions": True}))
    assert "SUPPRESSED" not in {s for s, _ in states(h).values()}
    outcome = suppressions.expire(h.aws, stores)  # the daily task still marks it, once
    assert outcome["expired"] == [created.rule_id]
    finish(h, outcome["executions"][0])
    assert counted(h) == recount(h)


def test_unknown_rules_are_404_and_an_ended_rule_cannot_be_removed_again(h):
    assert call("GET", "/suppressions/S3BucketPublic.0123456789ab")[0] == 404
    assert call("DELETE", "/suppressions/not-an-id")[0] == 404
    status, body = call("POST", "/suppressions", rule(policy_id="ALL", accounts=[A2]))
    finish(h, body["execution_arn"])
    rule_id = body["suppression"]["rule_id"]
    assert rule_id.startswith("ALL.")
    assert {r["rule_id"] for r in call("GET", "/suppressions", status="ACTIVE")[1]["suppressions"]} == {
        rule_id
    }
    finish(h, call("DELETE", f"/suppressions/{rule_id}")[1]["execution_arn"])
    status, body = call("DELETE", f"/suppressions/{rule_id}")
    assert status == 400
    assert "REMOVED" in body["message"]
    assert counted(h) == recount(h)


def test_suspending_the_policy_resolves_its_suppressed_findings_too(h):
    """Suspension (and a scope change) resolve the policy's findings the scan no longer sees: the
    SUPPRESSED ones too, or they would stay suppressed, and counted, for ever."""
    status, body = call("POST", "/suppressions", rule(accounts=[A2]))
    finish(h, body["execution_arn"])
    suppressed = {a for a, (s, _) in states(h).items() if s == "SUPPRESSED"}
    assert suppressed
    status, body = call("DELETE", f"/policies/{POLICY}")
    assert status == 202
    finish(h, body["execution_arn"])
    after = {i["ARN"]["S"]: i for i in h.table_items("findings_table") if i["PolicyId"]["S"] == POLICY}
    outcome = {a: (i["State"]["S"], i["ResolvedReason"]["S"]) for a, i in after.items()}
    assert outcome == dict.fromkeys(after, ("RESOLVED", "POLICY_SUSPENDED"))
    assert suppressed <= after.keys()
    assert counted(h) == recount(h)
