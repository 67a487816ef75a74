"""An AWS managed policy has one ARN in every account (``arn:aws:iam::aws:policy/...``) and each
account attaches its own: its findings are one per account (``qrie_lib.subjects``), with their own
state, history, counters and export id, through the scan, events, the API and the console."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest

from orchestration import cloudtrail
from orchestration.cli_api import API, proxy_event
from orchestration.dispatch import LocalContext
from orchestration.simulated_org import account_id
from qrie_lib import lifecycle, realtime
from qrie_lib.exports.ids import finding_uid
from qrie_lib.recount import recount
from qrie_lib.stores import Stores
from qrie_lib.stores.findings import FindingState
from tasks import api
from tests.integration.conftest import Harness, inventoried_org
from tests.integration.test_console import get as console_get

pytestmark = pytest.mark.slow
A1, A2 = account_id(1), account_id(2)
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"  # attached to ci-bot in every simulated account
POLICY = "IAMPolicyOverlyPermissive"  # CIS 1.16


@pytest.fixture(scope="module")
def h() -> Iterator[Harness]:
    with inventoried_org(2) as harness:
        lifecycle.launch(Stores.of(harness.aws), [POLICY])
        assert harness.run("scan", {})[0].status == "SUCCEEDED"
        yield harness


def admin_findings(h: Harness) -> dict[str, dict[str, Any]]:
    """The raw finding items of AdministratorAccess, by account."""
    items = [i for i in h.table_items("findings_table") if i["ARN"]["S"].startswith(ADMIN)]
    assert len(items) == len({i["AccountId"]["S"] for i in items}), "one finding per account"
    return {i["AccountId"]["S"]: i for i in items if i["PolicyId"]["S"] == POLICY}


def get(path: str, query: dict[str, list[str]]) -> dict[str, Any]:
    event = proxy_event("GET", path, query, {"Host": "x"}, None)
    context = LocalContext(API, f"arn:aws:lambda:us-east-1:123456789012:function:{API.function_name}")
    response = api.handler(event, context)
    return {"status": response["statusCode"], **json.loads(response["body"])}


def test_each_account_has_its_own_finding_of_the_shared_policy(h):
    found = admin_findings(h)
    assert set(found) == {A1, A2}
    assert {a: i["State"]["S"] for a, i in found.items()} == {A1: "ACTIVE", A2: "ACTIVE"}
    stores = Stores.of(h.aws)
    for account in (A1, A2):
        finding = stores.findings.for_resource(ADMIN, account_id=account)[0]
        assert (finding.arn, finding.account_id) == (ADMIN, account)  # the ARN shown is AWS's
    assert finding_uid(ADMIN, A1, POLICY) != finding_uid(ADMIN, A2, POLICY)  # Security Hub ids too


def test_detaching_it_in_one_account_resolves_only_that_accounts_finding(h):
    h.org.session(A1).client("iam").detach_user_policy(UserName="ci-bot", PolicyArn=ADMIN)
    record = cloudtrail.iam_call("DetachUserPolicy", A1, {"userName": "ci-bot", "policyArn": ADMIN})
    result = realtime.process_batch([("m-1", json.dumps(record))], h.aws)
    assert result.count(realtime.Status.PROCESSED) == 1
    found = admin_findings(h)
    assert found[A1]["State"]["S"] == FindingState.RESOLVED.value
    assert found[A1]["ResolvedReason"]["S"] == "RESOURCE_DELETED"  # unattached: no longer inventoried
    assert found[A2]["State"]["S"] == FindingState.ACTIVE.value
    # Each account's history and counters follow its own finding.
    kinds = {
        a: [
            e["kind"]
            for e in get("/findings/history", {"arn": [ADMIN], "policy": [POLICY], "account": [a]})["history"]
        ]
        for a in (A1, A2)
    }
    assert kinds == {A1: ["opened", "resolved"], A2: ["opened"]}
    assert recount(Stores.of(h.aws)).drift == {}


def test_its_history_without_an_account_is_a_named_error(h):
    answer = get("/findings/history", {"arn": [ADMIN], "policy": [POLICY]})
    assert answer["status"] == 400
    assert "AccountRequired" in json.dumps(answer)


def test_the_console_links_each_accounts_finding_and_shows_it(h):
    # (the module's tests run in any order: one account's finding may be resolved by now)
    listing = "".join(
        console_get("/console/findings", policy=POLICY, state=s)["body"] for s in ("ACTIVE", "RESOLVED")
    )
    links = [parse_qs(html.unescape(q)) for q in re.findall(r'href="[^"]*/finding\?([^"]+)"', listing)]
    linked = {link["account"][0] for link in links if link["arn"] == [ADMIN]}
    assert linked == {A1, A2}
    for account in (A1, A2):
        page = console_get("/console/finding", arn=ADMIN, policy=POLICY, account=account)
        assert page["statusCode"] == 200, page["body"][:300]
        assert account in page["body"]
    assert console_get("/console/finding", arn=ADMIN, policy=POLICY)["statusCode"] == 400
