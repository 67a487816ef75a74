"""The CIS report on the local runtime: a simulated organisation inventoried, the whole catalogue
launched and scanned; the report through ``qrie_lib.compliance``, the CLI and the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.simulated_org import account_id
from qrie_lib import compliance, lifecycle
from qrie_lib.compliance import Status, Why
from qrie_lib.frameworks.registry import get_framework
from qrie_lib.models import Account
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.schema import FINDINGS_BY_PARTITION
from qrie_lib.services.registry import SERVICES
from qrie_lib.stores import Stores
from qrie_lib.stores.findings import FindingState
from qrie_lib.views import findings_rows
from tests.integration.conftest import Harness, inventoried_org
from tests.integration.test_api import call

pytestmark = pytest.mark.slow
A1, A2 = account_id(1), account_id(2)
UNSCANNED = account_id(9)
CIS = get_framework("cis-aws-3.0")
runner = CliRunner()


@pytest.fixture(scope="module")
def h() -> Iterator[Harness]:
    with inventoried_org(2) as harness:
        lifecycle.launch(Stores.of(harness.aws), sorted(CATALOGUE))
        outcome, _ = harness.run("scan", {})
        assert outcome.status == "SUCCEEDED", outcome.cause
        # Onboarded after the scan: nothing evaluated it yet.
        Stores.of(harness.aws).accounts.put(Account(account_id=UNSCANNED, name="new"))
        yield harness


@pytest.fixture(scope="module")
def report(h: Harness) -> compliance.Report:
    return compliance.report(Stores.of(h.aws), "cis-aws-3.0")


def test_every_recommendation_for_every_account(report):
    assert [c.id for c in report.controls] == [c.id for c in CIS.controls]
    assert len(report.controls) == 62
    assert {a.account_id for a in report.accounts} == {A1, A2, UNSCANNED}
    for row, control in zip(report.controls, CIS.controls, strict=True):
        for account, o in row.accounts.items():
            if not control.automated:
                assert o.status is Status.MANUAL
            elif o.status is Status.NOT_EVALUATED:
                assert o.reasons, (control.id, account)
            else:
                assert o.status in {Status.PASS, Status.FAIL}
                assert account != UNSCANNED
            if account == UNSCANNED and row.policy_ids:
                assert {r.code for r in o.reasons} == {Why.NOT_SCANNED}, control.id


def test_scanned_accounts_have_verdicts(report):
    for a in (A1, A2):
        statuses = {c.id: c.accounts[a].status for c in report.controls}
        assert statuses["2.1.1"] is Status.FAIL  # no simulated bucket policy denies plain HTTP
        assert statuses["1.17"] in {Status.PASS, Status.FAIL}
        assert [
            r.code for c in report.controls for r in c.accounts[a].reasons if r.code is Why.NOT_SCANNED
        ] == []


def test_a_failing_control_lists_its_failing_resources(h, report):
    o = next(c for c in report.controls if c.id == "2.1.1").accounts[A1]
    expected = {
        r["arn"]
        for r in findings_rows(
            Stores.of(h.aws),
            state=FindingState.ACTIVE,
            account_id=A1,
            policy_id="S3BucketSecureTransportNotEnforced",
        )
    }
    assert "arn:aws:s3:::sim01-public-assets" in expected
    assert {f.arn for f in o.failing_resources} == expected
    assert o.failing_count == len(expected)
    assert {f.policy_id for f in o.failing_resources} == {"S3BucketSecureTransportNotEnforced"}


def test_scores_are_passed_over_evaluated_automated_controls(report):
    for score in report.accounts:
        statuses = [c.accounts[score.account_id].status for c in report.controls]
        passed, failed = statuses.count(Status.PASS), statuses.count(Status.FAIL)
        assert (score.passed, score.evaluated) == (passed, passed + failed)
        assert score.score == (round(100 * passed / (passed + failed), 1) if passed + failed else None)
    total = sum(a.evaluated for a in report.accounts)
    assert report.overall.score == round(100 * sum(a.passed for a in report.accounts) / total, 1)


def test_one_account(h, report):
    one = compliance.report(Stores.of(h.aws), "cis-aws-3.0", A1)
    assert [a.account_id for a in one.accounts] == [A1]
    assert [c.accounts[A1] for c in one.controls] == [c.accounts[A1] for c in report.controls]


def test_one_account_reads_only_its_own_findings(h):
    stores, read = Stores.of(h.aws), []
    table = stores.findings.table

    def count(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == table:
            partition = params.get("ExpressionAttributeValues", {}).get(":k", {}).get("S")
            read.append((params.get("IndexName", "table"), partition))

    client = stores.findings.client
    client.meta.events.register("before-parameter-build.dynamodb.Query", count)
    try:
        compliance.report(stores, "cis-aws-3.0", A1)
    finally:
        client.meta.events.unregister("before-parameter-build.dynamodb.Query", count)
    # A1's service partitions (a large one in pages), none of another account's, none by policy
    assert set(read) == {(FINDINGS_BY_PARTITION.name, f"{A1}_{s}") for s in SERVICES}


def test_pages_of_accounts_walk_every_account_once(h, report):
    seen, token = [], None
    while True:
        query = {"limit": "1"} | ({"next_token": token} if token else {})
        code, body = call("GET", "/compliance/cis-aws-3.0", **query)
        assert code == 200, body
        [account] = body["accounts"]
        seen.append(account["account_id"])
        expected = {c.id: c.accounts[account["account_id"]].model_dump(mode="json") for c in report.controls}
        assert {c["id"]: c["accounts"][account["account_id"]] for c in body["controls"]} == expected
        token = body["next_token"]
        if token is None:
            break
    assert seen == sorted(a.account_id for a in report.accounts)


def test_a_page_holds_fewer_accounts_when_theirs_would_not_fit_the_response(h, report, monkeypatch):
    one = compliance.report(Stores.of(h.aws), "cis-aws-3.0", A1)
    monkeypatch.setattr(compliance, "PAGE_BYTES", len(one.model_dump_json()) + 100)  # about one account
    seen, token = [], None
    while True:
        query = compliance.ComplianceQuery(limit=3, next_token=token)
        page = compliance.page(Stores.of(h.aws), "cis-aws-3.0", query)
        assert len(page.accounts) < 3
        seen += [a.account_id for a in page.accounts]
        if (token := page.next_token) is None:
            break
    assert seen == sorted(a.account_id for a in report.accounts)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compliance", "cis-aws-9"], "UnknownFramework"),
        (["compliance", "cis-aws-3.0", "--format", "pdf"], "format"),
        (["compliance", "cis-aws-3.0", "--account", "12"], "account"),
        (["compliance", "cis-aws-3.0", "--account", "999999999999"], "not an onboarded"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(h, args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_formats(h, tmp_path):
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["compliance", "cis-aws-3.0", "--format", "html", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "sim01-public-assets" in out.read_text()
    as_json = runner.invoke(app, ["compliance", "cis-aws-3.0", "--account", A2, "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    assert len(json.loads(as_json.stdout)["controls"]) == 62
    as_csv = runner.invoke(app, ["compliance", "cis-aws-3.0", "--format", "csv"])
    assert as_csv.stdout.count("\n") == 1 + 62 * 3
    table = runner.invoke(app, ["compliance", "cis-aws-3.0"])
    assert table.exit_code == 0
    assert "2.1.1" in table.stdout


def test_fsbp_through_the_cli_and_the_api(h):
    fsbp = get_framework("aws-fsbp")
    as_json = runner.invoke(app, ["compliance", "aws-fsbp", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    rows = {c["id"]: c for c in json.loads(as_json.stdout)["controls"]}
    assert list(rows) == [c.id for c in fsbp.controls]
    assert {rows[c]["status"] for c in rows if not rows[c]["policy_ids"]} == {"NOT_EVALUATED"}
    assert {o["status"] for o in rows["S3.5"]["accounts"].values()} >= {"FAIL"}
    as_csv = runner.invoke(app, ["compliance", "aws-fsbp", "--format", "csv"])
    assert as_csv.stdout.count("\n") == 1 + len(fsbp.controls) * 3
    table = runner.invoke(app, ["compliance", "aws-fsbp"])
    assert "severity" in table.stdout
    assert "EC2.19" in table.stdout
    status, body = call("GET", "/compliance/aws-fsbp", account=A1)
    assert status == 200
    assert [c["id"] for c in body["controls"]] == list(rows)


@pytest.mark.parametrize(
    ("path", "query", "status", "error"),
    [
        ("/compliance/cis-aws-3.0", {}, 200, None),
        ("/compliance/cis-aws-3.0", {"account": A1}, 200, None),
        ("/compliance/cis-aws-3.0", {"account": "12"}, 400, "InvalidInput"),
        ("/compliance/cis-aws-3.0", {"account": "999999999999"}, 400, "InvalidInput"),
        ("/compliance/cis-aws-3.0", {"acount": A1}, 400, "InvalidInput"),
        ("/compliance/cis-aws-3.0", {"next_token": "x"}, 400, "InvalidInput"),
        ("/compliance/cis-aws-3.0", {"limit": "0"}, 400, "InvalidInput"),
        ("/compliance/cis-aws-3.0", {"limit": "51"}, 400, "InvalidInput"),
        ("/compliance/nope", {}, 404, "UnknownFramework"),
    ],
)
def test_api(h, path: str, query: dict[str, Any], status: int, error: str | None):
    code, body = call("GET", path, **query)
    assert code == status, body
    if error:
        assert body["error"] == error
    else:
        assert len(body["controls"]) == 62
        assert {a["account_id"] for a in body["accounts"]} >= {A1}
