"""The compliance report computed on a crafted set: statuses and their reasons per account, manual
controls with their audit result, scores, and the HTML/CSV/JSON renderings."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser

import pytest

from qrie_lib.compliance import CSV_FIELDS, Status, Why, build, csv_text
from qrie_lib.compliance_html import render
from qrie_lib.frameworks.registry import Control, Framework, get_framework
from qrie_lib.models import Account
from qrie_lib.scope import PolicyScope
from qrie_lib.stores.coverage import Coverage
from qrie_lib.stores.findings import Finding, FindingState
from qrie_lib.stores.policies import LaunchedPolicy
from qrie_lib.views import finding_row

A1, A2 = "111111111111", "222222222222"
LAUNCHED_AT, BEFORE, AFTER = "2024-03-01T00:00:00Z", "2024-02-01T00:00:00Z", "2024-03-02T00:00:00Z"
EVIL = 'arn:aws:s3:::<script>alert("x")</script>'
CIS = get_framework("cis-aws-3.0")
CONTROLS = ("1.1", "1.4", "1.5", "1.7", "1.14", "2.1.1")
UNCITED = Control(
    id="9.9", title="A control no policy cites", section="9", profile="Level 1", assessment="Automated"
)
SMALL = Framework(
    id="cis-small",
    name="CIS subset <b>",
    version="3.0.0",
    published="2024-01-31",
    cited_as=CIS.cited_as,
    sections={k: v for k, v in CIS.sections.items() if k in {"1", "2", "2.1"}} | {"9": "Uncited"},
    controls=(*(c for c in CIS.controls if c.id in CONTROLS), UNCITED),
)


def launched(policy_id: str, scope: PolicyScope | None = None) -> LaunchedPolicy:
    return LaunchedPolicy(
        policy_id=policy_id, scope=scope or PolicyScope(), launched_at=LAUNCHED_AT, updated_at=LAUNCHED_AT
    )


def finding(account: str, policy_id: str, arn: str, severity: int = 50) -> Finding:
    return Finding(
        arn=arn,
        policy_id=policy_id,
        account_service=f"{account}_s3",
        account_id=account,
        service="s3",
        region="us-east-1",
        resource_type="AWS::S3::Bucket",
        state=FindingState.ACTIVE,
        severity=severity,
        evidence={"Policy": "<none>"},
        first_seen=AFTER,
        last_evaluated=AFTER,
        describe_time=AFTER,
    )


@pytest.fixture(scope="module")
def report():
    s3 = "S3BucketSecureTransportNotEnforced"
    policies = [
        launched("IAMRootAccessKeysPresent"),
        launched("IAMRootAccountActive"),
        launched("IAMAccessKeyNotRotated"),
        launched("IAMRootAccessKeyNotRotated"),
        launched(s3, PolicyScope(exclude_accounts=[A2])),
    ]  # IAMRootMfaDisabled (1.5) is not launched
    coverage = {
        A1: {p.policy_id: Coverage(3, 0, AFTER, "scan/1") for p in policies},
        A2: {
            "IAMRootAccessKeysPresent": Coverage(1, 1, AFTER, "scan/1"),
            "IAMAccessKeyNotRotated": Coverage(2, 0, AFTER, "scan/1"),
            "IAMRootAccessKeyNotRotated": Coverage(1, 0, AFTER, "scan/1"),
            "IAMRootAccountActive": Coverage(1, 0, BEFORE, "scan/0"),  # before its launch
        },
    }
    findings = [
        finding(A1, s3, EVIL),
        finding(A1, s3, "arn:aws:s3:::logs", severity=70),
        finding(A1, "IAMRootAccountActive", f"arn:aws:iam::{A1}:root-account"),
        finding(A2, s3, "arn:aws:s3:::stale"),  # out of scope in A2: not its failure to report
    ]
    accounts = [Account(account_id=A1, name="prod"), Account(account_id=A2, name="dev")]
    findings[3] = findings[3].model_copy(update={"state": FindingState.RESOLVED})
    return build(SMALL, accounts, policies, [finding_row(f) for f in findings], coverage, AFTER)


def outcome(report, control_id, account):
    return next(c for c in report.controls if c.id == control_id).accounts[account]


@pytest.mark.parametrize(
    ("control_id", "account", "status", "audit", "reasons"),
    [
        ("1.1", A1, Status.MANUAL, None, [Why.NO_POLICY]),
        ("1.4", A1, Status.PASS, None, []),
        ("1.4", A2, Status.NOT_EVALUATED, None, [Why.MISSING_DATA]),
        ("1.5", A1, Status.NOT_EVALUATED, None, [Why.POLICY_NOT_LAUNCHED]),
        ("1.7", A1, Status.MANUAL, Status.FAIL, []),
        ("1.7", A2, Status.MANUAL, Status.NOT_EVALUATED, [Why.NOT_SCANNED]),
        ("1.14", A1, Status.PASS, None, []),
        ("1.14", A2, Status.PASS, None, []),
        ("2.1.1", A1, Status.FAIL, None, []),
        ("2.1.1", A2, Status.NOT_EVALUATED, None, [Why.OUT_OF_SCOPE]),
        ("9.9", A2, Status.NOT_EVALUATED, None, [Why.NO_POLICY]),
    ],
)
def test_status_per_control_and_account(report, control_id, account, status, audit, reasons):
    o = outcome(report, control_id, account)
    assert (o.status, o.audit_result, [r.code for r in o.reasons]) == (status, audit, reasons)


def test_a_failing_control_lists_its_failing_resources_most_severe_first(report):
    o = outcome(report, "2.1.1", A1)
    assert o.failing_count == 2
    assert [(f.arn, f.severity) for f in o.failing_resources] == [("arn:aws:s3:::logs", 70), (EVIL, 50)]
    assert o.failing_resources[1].evidence == '{"Policy": "<none>"}'


def test_scores_count_evaluated_automated_controls(report):
    scores = {a.account_id: (a.passed, a.failed, a.evaluated, a.score) for a in report.accounts}
    assert scores == {A1: (2, 1, 3, 66.7), A2: (1, 0, 1, 100.0)}
    o = report.overall
    assert (o.passed, o.failed, o.evaluated, o.score, o.manual) == (3, 1, 4, 75.0, 4)


def test_control_status_over_accounts_and_section_summary(report):
    overall = {c.id: c.status for c in report.controls}
    assert overall == {
        "1.1": Status.MANUAL,
        "1.4": Status.NOT_EVALUATED,
        "1.5": Status.NOT_EVALUATED,
        "1.7": Status.MANUAL,
        "1.14": Status.PASS,
        "2.1.1": Status.FAIL,
        "9.9": Status.NOT_EVALUATED,
    }
    sections = {s.id: {k.value: v for k, v in s.counts.items() if v} for s in report.sections}
    assert sections == {
        "1": {"PASS": 1, "NOT_EVALUATED": 2, "MANUAL": 2},
        "2": {"FAIL": 1},
        "9": {"NOT_EVALUATED": 1},
    }


def test_no_account_scores_none():
    empty = build(SMALL, [], [], [], {}, AFTER)
    assert (empty.overall.score, empty.overall.evaluated) == (None, 0)
    assert {c.status for c in empty.controls} == {Status.MANUAL, Status.NOT_EVALUATED}


class Parsed(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.metas: list[dict[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs
        if tag == "meta":
            self.metas.append(dict(attrs))

    def handle_data(self, data):
        self.text.append(data)


def test_html_is_self_contained_and_escapes_everything(report):
    page = render(report)
    parsed = Parsed()
    parsed.feed(page)
    assert "script" not in parsed.tags
    assert not {"link", "img", "iframe", "object", "embed", "form", "base"} & set(parsed.tags)
    assert [v for k, v in parsed.attrs if k in {"href", "src", "action", "srcset", "data"}] == []
    assert not [v for _, v in parsed.attrs if v and ("//" in v or "url(" in v)]
    assert "url(" not in page
    assert "@import" not in page
    csp = next(m for m in parsed.metas if m.get("http-equiv") == "Content-Security-Policy")
    assert csp["content"].startswith("default-src 'none'")
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert EVIL in "".join(parsed.text)  # shown to the reader as text
    assert "CIS subset &lt;b&gt;" in page
    for control in SMALL.controls:
        assert f"{control.id} " in "".join(parsed.text)


def test_csv_has_one_row_per_control_and_account(report):
    rows = list(csv.DictReader(io.StringIO(csv_text(report))))
    assert tuple(rows[0]) == CSV_FIELDS
    assert len(rows) == len(SMALL.controls) * 2
    failing = next(r for r in rows if (r["control_id"], r["account_id"]) == ("2.1.1", A1))
    assert (failing["status"], failing["failing_count"]) == ("FAIL", "2")
    assert failing["failing_resources"].split(" ")[0] == "arn:aws:s3:::logs"


def test_json_shape(report):
    data = json.loads(json.dumps(report.as_json()))
    assert set(data) == {
        "framework",
        "generated_at",
        "accounts",
        "overall",
        "sections",
        "controls",
        "next_token",
    }
    control = data["controls"][0]
    assert set(control) == {
        "id",
        "title",
        "section",
        "profile",
        "severity",
        "assessment",
        "note",
        "policy_ids",
        "status",
        "accounts",
    }
    assert set(control["accounts"][A1]) == {
        "status",
        "audit_result",
        "reasons",
        "failing_count",
        "failing_resources",
        "resources_evaluated",
    }


def test_an_fsbp_control_no_policy_implements_is_never_pass():
    """Every mapped policy launched, evaluated and clean: its control passes; a control no policy
    implements stays NOT_EVALUATED (NO_POLICY), with its note carried to the report."""
    fsbp = get_framework("aws-fsbp")
    mapped = sorted({p for ids in fsbp.policies_by_control.values() for p in ids})
    policies = [launched(p) for p in mapped]
    coverage = {A1: {p: Coverage(2, 0, AFTER, "scan/1") for p in mapped}}
    report = build(fsbp, [Account(account_id=A1, name="prod")], policies, [], coverage, AFTER)
    rows = {r.id: r for r in report.controls}
    assert len(rows) == len(fsbp.controls)
    for row in rows.values():
        o = row.accounts[A1]
        if row.policy_ids:
            assert (row.status, o.status) == (Status.PASS, Status.PASS), row.id
        else:
            assert (row.status, o.status) == (Status.NOT_EVALUATED, Status.NOT_EVALUATED), row.id
            assert [r.code for r in o.reasons] == [Why.NO_POLICY]
    assert rows["EC2.19"].severity == "CRITICAL"
    assert rows["EC2.19"].note.startswith("Not mapped")
    assert report.overall.evaluated == len(mapped) == report.overall.passed
    assert {s.id for s in report.sections} == set(fsbp.sections)
