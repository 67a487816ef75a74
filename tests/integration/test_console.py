"""The console's pages through ``tasks.api.handler`` on the local runtime (API Gateway proxy events,
as in test_api.py): every page renders with the console's CSP, escapes what it shows, refuses a
state-changing form without its CSRF token (writing nothing), and its forms act like the API."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest

from orchestration.cli_api import API, proxy_event
from orchestration.dispatch import LocalContext
from orchestration.simulated_org import account_id
from qrie_lib import executions, lifecycle
from qrie_lib.console.render import CSP, CSRF_COOKIE
from qrie_lib.models import RunStatus
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.stores import Stores
from tasks import api
from tests.integration.conftest import Harness, inventoried_org

pytestmark = pytest.mark.slow
A1 = account_id(1)
PUBLIC = "arn:aws:s3:::sim01-public-assets"
CONTEXT_ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{API.function_name}"
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems", "StartExecution"}
HOST = "console.example"
CSRF = "t0ken-of-this-browser"


@pytest.fixture(scope="module")
def h() -> Iterator[Harness]:
    with inventoried_org(1) as harness:
        yield harness


@pytest.fixture(scope="module")
def scanned(h: Harness) -> None:
    launched = post("/console/policies", {"policy_id": "S3BucketPublic", "action": "launch"})
    assert launched["statusCode"] == 303, launched["body"]
    name = header(launched, "Location").rsplit("/", 1)[-1]
    arn = h.runtime.aws.settings.scan_state_machine_arn or executions.resolve_state_machine(
        h.runtime.aws, "scan"
    )
    outcome = executions.follow(
        h.runtime.aws, "scan", arn.replace(":stateMachine:", ":execution:") + f":{name}"
    )
    assert outcome.status == "SUCCEEDED"


def request(
    method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None, **query: str
) -> dict[str, Any]:
    event = proxy_event(
        method, path, {k: [v] for k, v in query.items()} or None, {"Host": HOST} | (headers or {}), body
    )
    return api.handler(event, LocalContext(API, CONTEXT_ARN))


def get(path: str, **query: str) -> dict[str, Any]:
    return request("GET", path, **query)


def post(path: str, fields: dict[str, str], csrf: str | None = CSRF, **headers: str) -> dict[str, Any]:
    form = urlencode(fields | ({"csrf": csrf} if csrf is not None else {}))
    cookie = {"Cookie": f"{CSRF_COOKIE}={CSRF}"}
    kind = {"Content-Type": "application/x-www-form-urlencoded", "Origin": f"http://{HOST}"}
    return request("POST", path, form, cookie | kind | headers)


def header(response: dict[str, Any], name: str) -> str:
    return response["multiValueHeaders"][name][-1]


def writes(h: Harness) -> int:
    return sum(n for call, n in h.runtime.aws.calls.items() if call.split(".")[-1] in WRITES)


@pytest.mark.parametrize(
    "path",
    [
        "/console",
        "/console/",
        "/console/findings",
        "/console/inventory",
        "/console/policies",
        "/console/runs",
        "/console/compliance",
    ],
)
def test_every_page_renders_with_the_console_csp(h, scanned, path):
    response = get(path)
    assert response["statusCode"] == 200, response["body"][:500]
    assert header(response, "Content-Security-Policy") == CSP
    assert header(response, "Content-Type").startswith("text/html")
    assert "Strict-Transport-Security" in response["multiValueHeaders"]
    body = response["body"]
    assert "<script>" not in body
    assert "style=" not in body
    assert 'name="csrf"' in body or path not in ("/console/policies", "/console/runs")


def test_the_compliance_page_shows_the_framework_chosen(h, scanned):
    fsbp = get("/console/compliance", framework="aws-fsbp")["body"]
    assert "AWS Foundational Security Best Practices" in fsbp
    assert "EC2.13 Security groups should not allow ingress" in fsbp
    assert "Not mapped: EC2SecurityGroupHighRiskPortOpen" in fsbp  # a close policy's note
    assert '<option value="aws-fsbp" selected' in fsbp
    assert "CIS Amazon Web Services Foundations Benchmark" in get("/console/compliance")["body"]


def test_the_overview_counts_open_findings_from_the_counters(h, scanned):
    body = get("/console")["body"]
    assert "S3 bucket" in body or "S3BucketPublic" in body
    assert re.search(r'<span class="n">[1-9][0-9]*</span> open', body)


def test_findings_filters_narrow_the_rows_and_a_finding_page_shows_evidence(h, scanned):
    everything = get("/console/findings")["body"]
    assert PUBLIC in everything
    assert PUBLIC not in get("/console/findings", q="no-such-thing")["body"]
    assert PUBLIC not in get("/console/findings", resource_type="AWS::IAM::User")["body"]
    assert PUBLIC in get("/console/findings", q="public-assets", policy="S3BucketPublic")["body"]
    page = get("/console/finding", arn=PUBLIC, policy="S3BucketPublic")
    assert page["statusCode"] == 200
    assert "Remediation" in page["body"]
    assert "Evidence" in page["body"]


def test_a_resource_page_shows_its_configuration_and_what_described_it(h, scanned):
    page = get("/console/resource", account=A1, service="s3", arn=PUBLIC)
    assert page["statusCode"] == 200, page["body"][:300]
    assert "the run <code>inventory/" in page["body"]
    assert "S3BucketPublic" in page["body"]


def test_bad_filters_are_a_400_page_and_unknown_items_a_404(h, scanned):
    assert get("/console/findings", severity="severe")["statusCode"] == 400
    assert get("/console/findings", surprise="1")["statusCode"] == 400
    assert get("/console/findings", policy="NoSuchPolicy")["statusCode"] == 404
    assert get("/console/finding", arn="arn:aws:s3:::nope", policy="S3BucketPublic")["statusCode"] == 404
    assert get("/console/runs/scan/no-such-execution")["statusCode"] == 400
    assert get("/console/static/../render.py")["statusCode"] == 404


def test_what_a_page_shows_is_escaped(h, scanned):
    body = get("/console/findings", q="<script>alert(1)</script>")["body"]
    assert "<script>alert(1)" not in body
    assert "&lt;script&gt;alert(1)" in body


@pytest.mark.parametrize(
    ("csrf", "extra"),
    [
        (None, {}),  # no token
        ("forged", {}),  # not this browser's
        (CSRF, {"Origin": "https://evil.example"}),  # right token, another site
        (CSRF, {"Sec-Fetch-Site": "cross-site"}),
    ],
)
def test_a_form_without_this_browsers_token_is_403_and_writes_nothing(h, scanned, csrf, extra):
    before = writes(h)
    response = post("/console/policies", {"policy_id": "S3BucketPublic", "action": "suspend"}, csrf, **extra)
    assert response["statusCode"] == 403, response["body"][:300]
    assert writes(h) == before


def test_a_form_is_validated_like_the_api_and_writes_nothing_when_bad(h, scanned):
    before = writes(h)
    for fields in (
        {"policy_id": "S3BucketPublic", "action": "update", "scope": "{not json"},
        {"policy_id": "S3BucketPublic", "action": "update", "severity": "900"},
        {"policy_id": "NoSuchPolicy", "action": "launch"},
    ):
        response = post("/console/policies", fields)
        assert response["statusCode"] in (400, 404), fields
    assert post("/console/runs", {"kind": "inventory", "account": "999999999999"})["statusCode"] == 400
    assert writes(h) == before


def test_a_run_started_in_the_console_is_followed_on_its_page(h, scanned):
    response = post("/console/runs", {"kind": "scan", "account": A1})
    assert response["statusCode"] == 303
    location = header(response, "Location")
    assert location.startswith("/console/runs/scan/")
    page = get(location)
    assert page["statusCode"] == 200
    assert "account_id" in page["body"]
    assert A1 in page["body"]
    assert re.search(r'<progress max="[1-9]', page["body"])


def test_the_overview_draws_the_trend_without_script(h, scanned):
    body = get("/console")["body"]
    chart = re.search(r'<svg class="chart".*?</svg>', body, re.DOTALL)
    assert chart is not None
    assert re.search(r"[1-9][0-9]* opened</title>", chart.group(0))  # the scan opened findings today


def test_a_suppression_made_in_the_page_shows_in_the_api(h, scanned):
    page = get("/console/finding", arn=PUBLIC, policy="S3BucketPublic")["body"]
    assert 'action="/console/suppressions"' in page
    assert "No recorded transitions." not in page  # its history: opened by the scan
    fields = {
        "policy_id": "S3BucketPublic",
        "account": A1,
        "arn": PUBLIC,
        "reason": "public by design: static site",
        "owner": "web-team",
        "expires_at": re.search(r'name="expires_at"[^>]* value="([0-9-]+)"', page).group(1),  # the default
    }
    assert post("/console/suppressions", fields | {"expires_at": "2099-01-01"})["statusCode"] == 400
    response = post("/console/suppressions", fields)
    assert response["statusCode"] == 303, response["body"][:300]
    listed = json.loads(api_get("/suppressions")["body"])["suppressions"]
    assert [(r["arn_glob"], r["reason"], r["accounts"]) for r in listed] == [
        (PUBLIC, "public by design: static site", [A1])
    ]


def api_get(path: str) -> dict[str, Any]:
    return request("GET", path)


# ---- issue 20: triage ---------------------------------------------------------------------------


def test_run_history_comes_from_the_runs_table_when_the_executions_are_gone(h, scanned):
    """Item 12: after a restart of ``qrie local up`` the runs table keeps its headers while Step
    Functions' executions are gone; the overview, the Runs page and the run's page show the run."""
    machine = executions.resolve_state_machine(h.runtime.aws, "inventory")
    gone = machine.replace(":stateMachine:", ":execution:") + ":before-the-restart"
    stores = Stores.of(h.runtime.aws)
    run_id = executions.run_id_for("inventory", gone)
    stores.runs.create(run_id, "inventory", {"service": "all"}, gone)
    stores.runs.finish(run_id, RunStatus.SUCCEEDED, {"message": "restored run"})
    runs = get("/console/runs")["body"]
    assert "/console/runs/inventory/before-the-restart" in runs
    overview = get("/console/")["body"]
    assert "/console/runs/inventory/before-the-restart" in overview  # the newest inventory
    page = get("/console/runs/inventory/before-the-restart")
    assert page["statusCode"] == 200, page["body"][:500]
    assert "SUCCEEDED" in page["body"]
    assert get("/console/runs/inventory/never-was")["statusCode"] == 400


def test_suspending_a_policy_asks_for_confirmation_first(h, scanned):
    """Item 13: the suspend button renders what suspending resolves and a confirm form (no script);
    nothing is written until that form is sent."""
    machine = executions.resolve_state_machine(h.runtime.aws, "scan")
    sfn = h.runtime.aws.client("stepfunctions")
    started = len(sfn.list_executions(stateMachineArn=machine)["executions"])
    asked = post("/console/policies", {"policy_id": "S3BucketPublic", "action": "suspend"})
    assert asked["statusCode"] == 200, asked["body"][:500]
    assert Stores.of(h.runtime.aws).policies.get("S3BucketPublic").status.value == "ACTIVE"
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == started
    body = asked["body"]
    assert "resolves all its findings" in body
    assert 'name="confirmed" value="yes"' in body
    assert "<script>" not in body
    assert "onclick" not in body
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', body))
    assert fields == {"csrf": CSRF, "policy_id": "S3BucketPublic", "action": "suspend", "confirmed": "yes"}
    suspended = post("/console/policies", {k: v for k, v in fields.items() if k != "csrf"})
    assert suspended["statusCode"] == 303
    name = header(suspended, "Location").rsplit("/", 1)[-1]
    arn = machine.replace(":stateMachine:", ":execution:") + f":{name}"
    assert executions.follow(h.runtime.aws, "scan", arn).status == "SUCCEEDED"
    relaunched = post("/console/policies", {"policy_id": "S3BucketPublic", "action": "launch"})
    name = header(relaunched, "Location").rsplit("/", 1)[-1]
    arn = machine.replace(":stateMachine:", ":execution:") + f":{name}"
    assert executions.follow(h.runtime.aws, "scan", arn).status == "SUCCEEDED"


@pytest.mark.parametrize("path", ["/", "/console/nowhere", "/console/findings/extra"])
def test_unknown_console_routes_and_the_root_get_the_styled_error_page(h, path):
    response = get(path)
    assert response["statusCode"] == 404
    assert header(response, "Content-Type").startswith("text/html")
    assert header(response, "Content-Security-Policy") == CSP
    assert '<p class="error" role="alert">' in response["body"]
    assert "/console/" in response["body"]
    # The API's own paths still answer JSON.
    assert json.loads(get("/nowhere")["body"])["error"] == "NotFound"


@pytest.fixture(scope="module")
def catalogue(h: Harness, scanned: None) -> None:
    """The whole catalogue launched and scanned: findings of every severity, several pages."""
    lifecycle.launch(Stores.of(h.runtime.aws), sorted(CATALOGUE))
    assert h.run("scan", {})[0].status == "SUCCEEDED"


def severities(body: str) -> list[int]:
    rows = body.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [int(n) for n in re.findall(r'<span class="band \w+">\w+ \((\d+)\)</span>', rows)]


def next_link(body: str, label: str = "Next page") -> str | None:
    found = re.search(rf'<a rel="next" href="/console/findings\?([^"]+)">{label}</a>', body)
    return found and found.group(1).replace("&amp;", "&")


def follow(path_query: str) -> dict[str, Any]:
    path, _, qs = path_query.partition("?")
    return get(path, **{k: v[-1] for k, v in parse_qs(qs).items()})


def test_the_findings_page_is_most_severe_first_across_pages_with_counts(h, catalogue):
    """Items 10 and 14: pages of 2 read in severity order across pages, each saying which rows of
    how many it shows (the counters' total)."""
    total = json.loads(get("/summary")["body"])["findings"]["ACTIVE"]["total"]
    assert total > 4
    body, seen, shown = get("/console/findings", limit="2")["body"], [], 0
    while True:
        assert "Most severe first across pages" in body
        page = severities(body)
        assert f"{shown + 1}–{shown + len(page)} of {total}." in body
        seen += page
        shown += len(page)
        query = next_link(body)
        if query is None:
            break
        body = follow(f"/console/findings?{query}")["body"]
    assert seen == sorted(seen, reverse=True)
    assert shown == total


def test_a_text_search_never_says_none_after_reading_part_of_the_data(h, catalogue, monkeypatch):
    """Item 11: with a budget of 2 findings per request, a search whose matches lie further on
    says how much it searched and links to search more, until it finds them."""
    from qrie_lib.console import data

    monkeypatch.setattr(data, "SEARCH_BUDGET", 2)
    all_rows = json.loads(get("/findings", limit="500")["body"])["findings"]
    last = all_rows[-1]["arn"]  # the severity order's last: every page before it must be searched
    wanted = [r for r in all_rows if last in r["arn"]]
    body, found, requests = get("/console/findings", q=last, limit="50")["body"], 0, 0
    while True:
        requests += 1
        assert "No findings match" not in body
        found += len(severities(body))
        query = next_link(body, "Search more") or next_link(body)
        if query is None:
            break
        assert '— <a class="more"' in body or found
        assert re.search(r"searched \d+ of ~\d+ findings", body)
        body = follow(f"/console/findings?{query}")["body"]
    assert found == len(wanted) > 0
    assert requests > 1
    # Read to the end from the start with nothing found, it may say so.
    monkeypatch.setattr(data, "SEARCH_BUDGET", 10_000)
    assert "No findings match." in get("/console/findings", q="no-such-thing-anywhere")["body"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "ocsf"])
def test_the_findings_page_exports_its_filter(h, catalogue, fmt):
    """Item 14: the export links carry the page's filter; the file holds exactly its findings."""
    expected = json.loads(get("/findings", severity="high", limit="500")["body"])["findings"]
    page = get("/console/findings", severity="high")["body"]
    link = re.search(rf'href="/console/findings/export\?([^"]*format={fmt}[^"]*)"', page).group(1)
    response = follow(f"/console/findings/export?{link.replace('&amp;', '&')}")
    assert response["statusCode"] == 200, response["body"][:300]
    assert header(response, "Content-Disposition").startswith("attachment; filename=")
    text = response["body"]
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
    elif fmt == "jsonl":
        rows = [json.loads(line) for line in text.splitlines()]
    else:
        rows = json.loads(text)
    assert len(rows) == len(expected) > 0
    assert get("/console/findings/export", format="xml")["statusCode"] == 400
