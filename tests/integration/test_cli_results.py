"""What ``qrie`` tells a user after a run and what it exports, each command its own process against
one ``qrie local up`` (issue 20): a scan reports what it changed by severity, and ``policies
launch`` waits for its scan (item 18); JSON, CSV, OCSF and ASFF exports and the Security Hub
export (item 22); the history of a finding that does not exist (item 23)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from orchestration.credentials import FAKE_CREDENTIALS
from qrie_lib.aws import Aws
from qrie_lib.policies.base import BANDS, band
from qrie_lib.policies.registry import get_policy
from qrie_lib.settings import Settings
from tests.integration.test_local_up import QRIE, endpoint, qrie, qrie_json  # noqa: F401 - the server

pytestmark = pytest.mark.slow

NARROWED = "EC2InstanceImdsV1Enabled"  # open on an instance in each region of each account


def by_band(rows: list[dict[str, Any]]) -> Counter[str]:
    return Counter(band(r["severity"]) for r in rows)


def epoch_ms(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


@pytest.fixture(scope="module")
def launched(endpoint: str) -> dict[str, Any]:  # noqa: F811 - the imported fixture
    """The inventory, then every policy launched in one go (the command waits for its scan), and
    the findings it left open."""
    assert qrie_json(endpoint, "inventory", "--json")["execution_status"] == "SUCCEEDED"
    result = qrie_json(endpoint, "policies", "launch", "--all", "--json")
    return {"result": result, "active": qrie_json(endpoint, "findings", "--format", "json")}


# ---- item 18: what a run changed ---------------------------------------------------------------


def test_launch_waits_for_its_scan_and_reports_what_it_opened_by_severity(launched):
    result, active = launched["result"], by_band(launched["active"])
    assert result["execution_status"] == "SUCCEEDED", result
    assert sum(active.values()) > 0
    assert result["run"]["changes"] == {
        b: {"opened": active[b], "resolved": 0, "suppressed": 0, "unchanged": 0} for b in BANDS
    }


def test_a_rescan_reports_the_open_findings_as_unchanged(endpoint, launched):  # noqa: F811
    active = by_band(qrie_json(endpoint, "findings", "--format", "json"))
    again = qrie_json(endpoint, "scan", "--json")["run"]["changes"]
    assert again == {b: {"opened": 0, "resolved": 0, "suppressed": 0, "unchanged": active[b]} for b in BANDS}
    shown = qrie(endpoint, "scan")  # the same, as a table for a person
    assert all(
        word in shown.stdout + shown.stderr for word in ("opened", "resolved", "unchanged", "critical")
    )


def test_narrowing_a_policy_reports_what_it_resolved_and_no_wait_returns_at_once(endpoint, launched):  # noqa: F811
    before = qrie_json(endpoint, "findings", "--format", "json", "--policy", NARROWED)
    leaving = [r for r in before if r["region"] == "us-east-1"]
    assert leaving
    assert len(leaving) < len(before)
    result = qrie_json(
        endpoint, "policies", "launch", NARROWED, "--scope", '{"regions": ["eu-west-1"]}', "--json"
    )
    changes = result["run"]["changes"]
    moved = {b: c["resolved"] for b, c in changes.items() if c["resolved"]}
    assert moved == {band(get_policy(NARROWED).severity): len(leaving)}
    assert sum(c["unchanged"] for c in changes.values()) == len(before) - len(leaving)

    started = qrie_json(endpoint, "policies", "launch", NARROWED, "--no-wait", "--json")
    assert set(started) == {"execution_arn"}


# ---- item 22: exports ---------------------------------------------------------------------------


def account_names(url: str) -> dict[str, str]:
    return {a["account_id"]: a["name"] for a in qrie_json(url, "accounts", "list", "--json")}


def test_json_and_csv_rows_carry_title_remediation_compliance_and_account_name(endpoint, launched):  # noqa: F811
    names = account_names(endpoint)
    assert all(names.values())
    rows = qrie_json(endpoint, "findings", "--format", "json")
    assert rows
    for row in rows:
        policy = get_policy(row["policy_id"])
        assert (row["title"], row["remediation"]) == (policy.title, policy.remediation)
        assert row["compliance"] == list(policy.compliance)
        assert row["account_name"] == names[row["account_id"]]
    lines = list(csv.DictReader(io.StringIO(qrie(endpoint, "findings", "--format", "csv").stdout)))
    assert len(lines) == len(rows)
    for line in lines:
        policy = get_policy(line["policy_id"])
        assert (line["title"], line["remediation"]) == (policy.title, policy.remediation)
        assert line["compliance"] == "; ".join(policy.compliance)
        assert line["account_name"] == names[line["account_id"]]


def test_ocsf_last_seen_is_the_last_confirmation_and_the_account_is_named(endpoint, launched):  # noqa: F811
    qrie(endpoint, "scan")  # confirms every open finding, writing none of them
    names = account_names(endpoint)
    rows = {
        (r["arn"], r["policy_id"], r["account_id"]): r
        for r in qrie_json(endpoint, "findings", "--format", "json")
    }
    records = qrie_json(endpoint, "findings", "--format", "ocsf")
    assert len(records) == len(rows)
    for record in records:
        row = rows[
            record["resources"][0]["uid"], record["metadata"]["event_code"], record["cloud"]["account"]["uid"]
        ]
        info = record["finding_info"]
        assert info["first_seen_time"] == epoch_ms(row["first_seen"])
        assert info["last_seen_time"] == epoch_ms(row["last_confirmed"])
        assert info["last_seen_time"] > info["first_seen_time"]  # the rescan confirmed it later
        assert info["modified_time"] == epoch_ms(row["last_evaluated"])
        account = record["cloud"]["account"]
        assert (account["name"], account["uid"]) == (names[row["account_id"]], row["account_id"])


def test_asff_export_and_the_security_hub_export(endpoint, launched):  # noqa: F811
    rows = qrie_json(endpoint, "findings", "--format", "json")
    findings = qrie_json(endpoint, "findings", "--format", "asff")
    assert len(findings) == len(rows)
    operator = "123456789012"  # the local endpoint's own account
    for finding in findings:
        assert finding["SchemaVersion"] == "2018-10-08"
        assert finding["ProductArn"] == f"arn:aws:securityhub:us-east-1:{operator}:product/{operator}/default"
        assert finding["AwsAccountId"] == operator
        assert finding["RecordState"] == "ACTIVE"
    assert {f["Resources"][0]["Id"] for f in findings} == {r["arn"] for r in rows}

    for key, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    hub = Aws(Settings(endpoint_url=endpoint)).client("securityhub")
    hub.enable_security_hub()
    sent = qrie_json(endpoint, "securityhub", "export", "--json")
    assert (sent["sent"], sent["failed"]) == (len(rows), 0), sent
    imported = [f for page in hub.get_paginator("get_findings").paginate() for f in page["Findings"]]
    assert sorted(f["Id"] for f in imported) == sorted(f["Id"] for f in findings)
    again = qrie_json(endpoint, "securityhub", "export", "--json")
    assert (again["sent"], again["unchanged"]) == (0, len(rows)), again


# ---- item 23: a finding that does not exist ------------------------------------------------------


def test_the_history_of_an_unknown_finding_is_an_error(endpoint, launched):  # noqa: F811
    result = subprocess.run(
        [
            QRIE,
            "findings",
            "history",
            "arn:aws:s3:::no-such-bucket",
            "S3BucketPublic",
            "--endpoint",
            endpoint,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "UnknownFinding: no finding of S3BucketPublic on arn:aws:s3:::no-such" in result.stderr
    assert "Traceback" not in result.stderr
    known = launched["active"][0]
    history = qrie_json(endpoint, "findings", "history", known["arn"], known["policy_id"], "--account",
                        known["account_id"], "--json")  # fmt: skip
    assert history
