"""The HTTP API end to end: API Gateway REST proxy events into ``tasks.api.handler`` on the local
runtime, the executions it starts run on the real state machines, and one round trip through the
local HTTP server (``qrie api serve``)."""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from orchestration.cli_api import API, make_server, proxy_event
from orchestration.dispatch import LocalContext
from orchestration.simulated_org import account_id
from qrie_lib import executions
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.schema import POLICY_SHARDS
from tasks import api
from tests.integration.conftest import Harness, inventoried_org

pytestmark = pytest.mark.slow
A1 = account_id(1)
PUBLIC = "arn:aws:s3:::sim01-public-assets"
CONTEXT_ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{API.function_name}"
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems", "StartExecution"}


@pytest.fixture(scope="module")
def h() -> Iterator[Harness]:
    with inventoried_org(1) as harness:
        yield harness


@pytest.fixture(scope="module")
def everything(h: Harness) -> dict[str, Any]:
    """The whole catalogue launched through the API, its one scan finished."""
    status, body = call("POST", "/policies/launch", {"all": True})
    assert status == 201
    finish(h, body["execution_arn"])
    return body


# ---- helpers ------------------------------------------------------------------------------


def call(
    method: str, path: str, body: Any = None, raw: str | bytes | None = None, **query: str
) -> tuple[int, dict[str, Any]]:
    """Invoke the handler as API Gateway would; ``raw`` sends a body verbatim (malformed JSON)."""
    text = raw if raw is not None else (None if body is None else json.dumps(body))
    event = proxy_event(
        method,
        path,
        {k: [v] for k, v in query.items()} or None,
        {"Content-Type": "application/json", "Host": "api.example"},
        text,
    )
    event["requestContext"]["identity"]["userArn"] = "arn:aws:iam::123456789012:user/tester"
    response = api.handler(event, LocalContext(API, CONTEXT_ARN))
    return response["statusCode"], json.loads(response["body"])


def all_pages(path: str, **query: str) -> list[dict[str, Any]]:
    key = path.strip("/")
    rows, token = [], None
    while True:
        status, body = call("GET", path, **query, **({"next_token": token} if token else {}))
        assert status == 200, body
        rows += body[key]
        token = body["next_token"]
        if token is None:
            return rows


def finish(h: Harness, arn: str) -> executions.Outcome:
    kind = arn.split(":")[-2].removeprefix("qrie-")
    outcome = executions.follow(h.aws, kind, arn, poll_s=0.05)
    assert outcome.status == "SUCCEEDED", outcome.cause
    return outcome


def execution_count(h: Harness) -> int:
    sfn = h.aws.client("stepfunctions")
    return sum(
        len(page["executions"])
        for arn in h.runtime.state_machines.values()
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn)
    )


def snapshot(h: Harness) -> tuple[Any, ...]:
    """What a rejected request must leave alone: the tables it could write, and the executions."""
    return (
        *(
            sorted(json.dumps(i, sort_keys=True) for i in h.table_items(t))
            for t in ("policies_table", "findings_table")
        ),
        execution_count(h),
    )


@contextmanager
def write_calls(h: Harness) -> Iterator[Counter[str]]:
    """Count the calls that write or start anything (an unchanged table could still be rewritten)."""
    counted: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        if model.name in WRITES:
            counted[model.name] += 1

    clients = [h.aws.client("dynamodb"), h.aws.client("stepfunctions")]
    for client in clients:
        client.meta.events.register("before-call", count)
    try:
        yield counted
    finally:
        for client in clients:
            client.meta.events.unregister("before-call", count)


def assert_rejected(h: Harness, expected: int, method: str, path: str, body: Any = None, **kw: Any) -> str:
    before = snapshot(h)
    with write_calls(h) as writes:
        got, answer = call(method, path, body, **kw)
    assert got == expected, answer
    assert set(answer) == {"error", "message"}
    assert not writes
    assert snapshot(h) == before
    return answer["message"]


def keys(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["arn"], r["policy_id"]) for r in rows]


# ---- policies -----------------------------------------------------------------------------


def test_launch_returns_201_and_the_scan_it_started_opens_findings(h):
    status, body = call("POST", "/policies/launch", {"policy_id": "S3BucketPublic", "severity": 95})
    assert status == 201
    [policy] = body["policies"]
    assert (policy["policy_id"], policy["status"], policy["effective_severity"]) == (
        "S3BucketPublic",
        "ACTIVE",
        95,
    )
    started = h.aws.client("stepfunctions").describe_execution(executionArn=body["execution_arn"])
    assert json.loads(started["input"]) == {"policy_id": "S3BucketPublic"}
    finish(h, body["execution_arn"])
    public = [r for r in all_pages("/findings", policy="S3BucketPublic") if r["arn"] == PUBLIC]
    assert [(r["state"], r["severity"]) for r in public] == [("ACTIVE", 95)]


def test_launch_of_several_or_all_starts_one_scan_of_everything(h, everything):
    assert {p["policy_id"] for p in everything["policies"]} == set(CATALOGUE)
    before = execution_count(h)
    status, body = call(
        "POST", "/policies/launch", {"policy_ids": ["S3BucketAclsEnabled", "IAMRootMfaDisabled"]}
    )
    assert status == 201
    assert execution_count(h) == before + 1
    started = h.aws.client("stepfunctions").describe_execution(executionArn=body["execution_arn"])
    assert json.loads(started["input"]) == {}
    finish(h, body["execution_arn"])


@pytest.mark.parametrize(
    ("body", "raw", "mentions"),
    [
        ({"policy_id": "S3BucketPublic", "severity": 101}, None, "severity"),
        ({"policy_id": "S3BucketPublic", "severity": "high"}, None, "severity"),
        ({"policy_id": "S3BucketPublic", "severity": True}, None, "severity"),
        ({"policy_id": "S3BucketPublic", "scope": {"regions": ["mars"]}}, None, "scope.regions"),
        ({"policy_id": "S3BucketPublic", "scope": {"include_ou_paths": ["prod"]}}, None, "scope"),
        ({"policy_id": "S3BucketPublic", "scope": {"include_acounts": [A1]}}, None, "include_acounts"),
        ({"policy_id": "S3BucketPublic", "scope": "everywhere"}, None, "scope"),
        ({"policy_id": "S3BucketPublic", "sevrity": 50}, None, "sevrity"),
        ({}, None, "exactly one"),
        ({"policy_id": "S3BucketPublic", "all": True}, None, "exactly one"),
        ({"policy_ids": []}, None, "policy_ids"),
        (None, '{"policy_id": "S3BucketPublic",', "not JSON"),
        (None, "[1, 2]", "input"),
        (None, b'{"policy_id": "S3Bucket\xff"}', "not UTF-8"),
        (None, '{"policy_id": "S3BucketPublic", "severity": NaN}', "NaN"),
        (None, "[" * 100_000, "nested too deeply"),
        (None, '{"policy_id": "S3BucketPublic", "severity": ' + "9" * 5000 + "}", "not JSON"),
    ],
)
def test_invalid_launch_is_400_and_writes_nothing(h, body, raw, mentions):
    message = assert_rejected(h, 400, "POST", "/policies/launch", body, raw=raw)
    assert mentions in message


def test_unknown_policies_are_404_and_write_nothing(h):
    assert "Nope" in assert_rejected(
        h, 404, "POST", "/policies/launch", {"policy_ids": ["S3BucketPublic", "Nope"]}
    )
    assert_rejected(h, 404, "GET", "/policies/Nope")
    assert_rejected(h, 404, "PUT", "/policies/Nope", {"severity": 10})
    assert_rejected(h, 404, "DELETE", "/policies/Nope")
    assert_rejected(h, 404, "GET", "/findings", policy="Nope")
    # In the catalogue but not launched (whatever ran before): nothing to update or suspend.
    never = "EC2EbsSnapshotPublic"
    h.aws.client("dynamodb").delete_item(
        TableName=h.aws.settings.policies_table, Key={"PolicyId": {"S": never}}
    )
    assert call("GET", f"/policies/{never}")[1]["policy"]["status"] == "AVAILABLE"
    assert "not launched" in assert_rejected(h, 404, "PUT", f"/policies/{never}", {"severity": 10})
    assert "not launched" in assert_rejected(h, 404, "DELETE", f"/policies/{never}")


def test_a_mistyped_policy_is_named_in_the_user_s_words(h):
    meant = "unknown policy 'S3BucketPublc' (did you mean 'S3BucketPublic'?)"
    assert assert_rejected(h, 404, "GET", "/policies/S3BucketPublc") == meant
    assert assert_rejected(h, 404, "GET", "/findings", policy="S3BucketPublc") == meant
    rule = {"policy_id": "S3BucketPublc", "reason": "r", "owner": "o", "expires_at": "2030-01-01"}
    message = assert_rejected(h, 400, "POST", "/suppressions", rule)
    assert message.startswith(f"policy_id: {meant}")
    assert "SuppressionRequest" not in message
    assert "Value error" not in message


def test_policies_list_show_and_status_filter(h, everything):
    status, body = call("GET", "/policies")
    assert status == 200
    assert [p["policy_id"] for p in body["policies"]] == sorted(CATALOGUE)
    launched = call("GET", "/policies", status="ACTIVE")[1]["policies"]
    assert launched
    assert {p["status"] for p in launched} == {"ACTIVE"}
    status, body = call("GET", "/policies/S3BucketPublic")
    assert (status, body["policy"]["policy_id"], body["policy"]["title"]) == (
        200,
        "S3BucketPublic",
        CATALOGUE["S3BucketPublic"].title,
    )
    assert "status" in assert_rejected(h, 400, "GET", "/policies", status="launched")
    assert "stauts" in assert_rejected(h, 400, "GET", "/policies", stauts="ACTIVE")


def test_put_updates_severity_and_scope_then_rescans(h):
    policy = "EC2EbsVolumeUnencrypted"
    finish(h, call("POST", "/policies/launch", {"policy_id": policy})[1]["execution_arn"])
    regions = {r["region"] for r in all_pages("/findings", policy=policy)}
    assert regions == {"us-east-1", "eu-west-1"}

    status, body = call("PUT", f"/policies/{policy}", {"severity": 33})
    assert (status, body["policy"]["effective_severity"]) == (200, 33)
    finish(h, body["execution_arn"])
    assert {r["severity"] for r in all_pages("/findings", policy=policy)} == {33}

    # Narrowing the scope: the rescan it starts resolves what fell out of it (not the request).
    status, body = call("PUT", f"/policies/{policy}", {"scope": {"regions": ["eu-west-1"]}})
    assert status == 200
    finish(h, body["execution_arn"])
    out = [r for r in all_pages("/findings", policy=policy, state="RESOLVED") if r["region"] == "us-east-1"]
    assert out
    assert {r["resolved_reason"] for r in out} == {"OUT_OF_SCOPE"}
    assert {r["region"] for r in all_pages("/findings", policy=policy)} == {"eu-west-1"}

    assert "nothing to change" in assert_rejected(h, 400, "PUT", f"/policies/{policy}", {})
    assert "severity" in assert_rejected(h, 400, "PUT", f"/policies/{policy}", {"severity": 101})
    assert "scope" in assert_rejected(h, 400, "PUT", f"/policies/{policy}", {"scope": {"regions": "eu"}})
    assert "not both" in assert_rejected(
        h, 400, "PUT", f"/policies/{policy}", {"severity": 5, "clear_severity": True}
    )

    status, body = call("PUT", f"/policies/{policy}", {"scope": {}, "clear_severity": True})
    assert (status, body["policy"]["effective_severity"]) == (200, CATALOGUE[policy].severity)
    finish(h, body["execution_arn"])


def test_delete_suspends_and_its_execution_resolves_the_findings_and_put_then_starts_no_scan(h):
    policy = "S3BucketVersioningDisabled"
    finish(h, call("POST", "/policies/launch", {"policy_id": policy})[1]["execution_arn"])
    active = all_pages("/findings", policy=policy)
    assert active

    status, body = call("DELETE", f"/policies/{policy}")
    assert (status, body["policy"]["status"]) == (202, "SUSPENDED")
    finish(h, body["execution_arn"])
    assert all_pages("/findings", policy=policy) == []
    resolved = all_pages("/findings", policy=policy, state="RESOLVED")
    assert {r["resolved_reason"] for r in resolved} == {"POLICY_SUSPENDED"}
    assert len(resolved) >= len(active)
    status, again = call("DELETE", f"/policies/{policy}")  # idempotent: nothing left to resolve
    assert status == 202
    finish(h, again["execution_arn"])

    before = execution_count(h)
    status, body = call("PUT", f"/policies/{policy}", {"severity": 20})
    assert (status, body["execution_arn"], body["policy"]["status"]) == (200, None, "SUSPENDED")
    assert execution_count(h) == before


def test_unknown_route_is_a_json_404(h):
    status, body = call("GET", "/nowhere")
    assert (status, body["error"]) == (404, "NotFound")
    assert "/nowhere" in body["message"]


def test_unexpected_errors_are_500_without_internals(h, monkeypatch):
    def broken(*_: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api.lifecycle, "catalogue_view", broken)
    status, body = call("GET", "/policies")
    assert (status, body["error"]) == (500, "InternalError")
    assert "secret" not in body["message"]


# ---- findings, resources, summary ---------------------------------------------------------


def test_findings_pages_return_every_item_exactly_once(h, everything):
    from qrie_lib.stores import Stores
    from qrie_lib.views import findings_rows

    expected = keys(findings_rows(Stores.of(h.aws), limit=500))
    assert len(expected) > 4  # several pages of 2
    pages = []
    token = None
    while True:
        status, body = call("GET", "/findings", limit="2", **({"next_token": token} if token else {}))
        assert status == 200
        assert len(body["findings"]) <= 2
        pages.append(body["findings"])
        token = body["next_token"]
        if token is None:
            break
    got = keys([r for page in pages for r in page])
    assert len(got) == len(set(got)) == len(expected)
    assert set(got) == set(expected)
    # Filters page the same way and only narrow.
    high = all_pages("/findings", severity="high", account=A1, limit="5")
    assert high
    assert {r["account_id"] for r in high} == {A1}
    assert all(70 <= r["severity"] <= 89 for r in high)
    assert set(keys(high)) <= set(expected)


def test_a_token_issued_for_one_query_is_refused_on_another(h, everything):
    """Issue 20 item 5: ``limit=2`` gives a token; the same token with ``severity=high`` skipped
    the queries before its position (200). Tokens are signed with their query: a 400 now."""
    status, first = call("GET", "/findings", limit="2")
    assert status == 200
    assert first["next_token"]
    assert call("GET", "/findings", limit="2", next_token=first["next_token"])[0] == 200
    assert (
        call("GET", "/findings", limit="7", next_token=first["next_token"])[0] == 200
    )  # page size may change
    for other in ({"severity": "high"}, {"state": "ALL"}, {"account": A1}, {"policy": "S3BucketPublic"}):
        message = assert_rejected(
            h, 400, "GET", "/findings", limit="2", next_token=first["next_token"], **other
        )
        assert message == "next_token was not issued for this query"
    # The position re-signed by anyone without the deployment's key is refused too.
    signed = json.loads(base64.urlsafe_b64decode(first["next_token"]))
    forged = base64.urlsafe_b64encode(json.dumps(signed | {"s": "0" * 64}).encode()).decode()
    assert assert_rejected(h, 400, "GET", "/findings", limit="2", next_token=forged) == (
        "next_token was not issued for this query"
    )
    resources = call("GET", "/resources", account=A1, limit="1")[1]["next_token"]
    assert "next_token" in assert_rejected(
        h, 400, "GET", "/resources", account=A1, service="s3", next_token=resources
    )


def test_the_default_findings_order_is_most_severe_then_newest_across_pages(h, everything):
    """Issue 20 item 10: pages of 3 concatenated are in (severity, first seen) descending order,
    every finding once, and reading a page is bounded (one query per severity shard + one batch)."""
    from qrie_lib.schema import SEVERITY_SHARDS

    rows, token = [], None
    while True:
        with queried_partitions(h) as starts:
            status, body = call("GET", "/findings", limit="3", **({"next_token": token} if token else {}))
        assert status == 200
        assert len(starts) <= SEVERITY_SHARDS
        rows += body["findings"]
        token = body["next_token"]
        if token is None:
            break
    order = [(r["severity"], r["first_seen"]) for r in rows]
    assert order == sorted(order, reverse=True)
    assert len(set(keys(rows))) == len(rows) > 6
    assert rows[0]["severity"] == max(r["severity"] for r in rows)
    high = [r["severity"] for r in call("GET", "/findings", severity="high", limit="500")[1]["findings"]]
    assert high == sorted(high, reverse=True)
    assert all(70 <= s <= 89 for s in high)


@pytest.mark.parametrize(
    "query",
    [
        {"next_token": "garbage"},
        {"next_token": base64.urlsafe_b64encode(b'{"q": 0, "k": "not-a-key"}').decode()},
        {"next_token": base64.urlsafe_b64encode(b'{"q": 0, "k": 5}').decode()},
        {"next_token": base64.urlsafe_b64encode(b'{"q": 0, "k": "e30="}').decode()},  # {}
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "ten"},
        {"severity": "urgent"},
        {"state": "OPEN"},
        {"account": "1234"},
        {"acount": A1},
    ],
)
def test_bad_findings_query_is_400(h, everything, query):
    answer = assert_rejected(h, 400, "GET", "/findings", **query)
    assert next(iter(query)) in answer


def token(position: Any, key: dict[str, str] | None) -> str:
    """A page token as this API shapes them, around ``key`` as a DynamoDB LastEvaluatedKey."""
    inner = key and base64.urlsafe_b64encode(json.dumps({k: {"S": v} for k, v in key.items()}).encode())
    return base64.urlsafe_b64encode(
        json.dumps({"q": position, "k": inner and inner.decode()}).encode()
    ).decode()


def decoded(token: str) -> tuple[int, dict[str, str]]:
    position = json.loads(base64.urlsafe_b64decode(token))["p"]
    return position["q"], {k: v["S"] for k, v in json.loads(base64.urlsafe_b64decode(position["k"])).items()}


@contextmanager
def queried_partitions(h: Harness) -> Iterator[list[dict[str, Any]]]:
    """The ExclusiveStartKey of every DynamoDB Query made meanwhile."""
    starts: list[dict[str, Any]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "Query":
            starts.append(params.get("ExclusiveStartKey") or {})

    client = h.aws.client("dynamodb")
    client.meta.events.register("before-call", record)
    try:
        yield starts
    finally:
        client.meta.events.unregister("before-call", record)


def mid_shard_token(policy: str) -> str | None:
    """A page token that stops inside one shard of the policy's findings, if any shard has two."""
    page = call("GET", "/findings", policy=policy, state="ALL", limit="1")[1]
    while page["next_token"] is not None:
        if json.loads(base64.urlsafe_b64decode(page["next_token"]))["p"]["k"] is not None:
            return page["next_token"]
        more = {"policy": policy, "state": "ALL", "limit": "1", "next_token": page["next_token"]}
        page = call("GET", "/findings", **more)[1]
    return None


def test_a_token_is_bound_to_its_query_and_never_reads_another_partition(h, everything):
    top = [p["policy_id"] for p in call("GET", "/summary")[1]["top_policies"]]
    policy, genuine = next((p, t) for p in top if (t := mid_shard_token(p)) is not None)
    index, key = decoded(genuine)
    assert key["PolicyId"] == policy
    assert key["PolicyShard"].startswith(f"{policy}#")
    # The genuine token continues; the same position moved into another policy's part of the index,
    # or presented with another policy's filter, is refused before any query runs.
    assert call("GET", "/findings", policy=policy, state="ALL", next_token=genuine)[0] == 200
    another = next(p for p in sorted(CATALOGUE) if p != policy)
    shard = key["PolicyShard"].rsplit("#", 1)[1]
    elsewhere = token(index, key | {"PolicyId": another, "PolicyShard": f"{another}#{shard}"})
    for query in (
        {"policy": policy, "state": "ALL", "next_token": elsewhere},
        {"policy": another, "state": "ALL", "next_token": genuine},
        {"policy": policy, "state": "RESOLVED", "next_token": genuine},
    ):
        with queried_partitions(h) as starts:
            assert "next_token" in assert_rejected(h, 400, "GET", "/findings", **query)
        assert starts == []

    page = call("GET", "/resources", account=A1, service="s3", limit="1")[1]
    index, key = decoded(page["next_token"])
    assert key["AccountService"] == f"{A1}_s3"
    with queried_partitions(h) as starts:
        assert "next_token" in assert_rejected(
            h, 400, "GET", "/resources", account=A1, service="s3",
            next_token=token(index, key | {"AccountService": f"{A1}_iam"}),
        )  # fmt: skip
    assert starts == []


@pytest.mark.parametrize(
    "forged",
    [
        token(0, {"PolicyId": "S3BucketPublic", "State": "ACTIVE"}),  # not the index's key attributes
        token(0, {"PolicyId": "S3BucketPublic", "State": "ACTIVE", "ARN": "a", "Extra": "x"}),
        token(0, {"PolicyId": "S3BucketPublic", "State": "ACTIVE", "ARN": ""}),
        token(POLICY_SHARDS, None),  # past the walk's queries (one per shard of the policy)
        token(-1, None),
        token("0", None),
        token(True, None),
        base64.urlsafe_b64encode(json.dumps({"q": 0, "k": {"ARN": {"S": "a"}}}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps({"q": 0, "k": None, "x": 1}).encode()).decode(),
        base64.urlsafe_b64encode(b"[" * 50_000).decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "é",
    ],
)
def test_forged_findings_token_is_400(h, forged):
    with queried_partitions(h) as starts:
        assert "next_token" in assert_rejected(
            h, 400, "GET", "/findings", policy="S3BucketPublic", next_token=forged
        )
    assert starts == []


def test_summary_agrees_with_findings(h, everything):
    status, summary = call("GET", "/summary")
    assert status == 200
    for state in ("ACTIVE", "RESOLVED"):
        rows = all_pages("/findings", state=state, limit="500")
        assert summary["findings"][state]["total"] == len(rows)
        for band in ("critical", "high", "medium", "low"):
            assert summary["findings"][state][band] == len(
                all_pages("/findings", state=state, severity=band, limit="500")
            )
    by_policy = Counter(r["policy_id"] for r in all_pages("/findings", limit="500"))
    top = summary["top_policies"]
    assert top
    assert [p["active_findings"] for p in top] == sorted((p["active_findings"] for p in top), reverse=True)
    assert all(by_policy[p["policy_id"]] == p["active_findings"] for p in top)
    assert top[0]["active_findings"] == max(by_policy.values())


def test_resources_page_across_services_and_filter(h):
    stored_items = [i for i in h.table_items("resources_table") if i["AccountId"]["S"] == A1]
    stored = {i["ARN"]["S"] for i in stored_items}
    rows = all_pages("/resources", account=A1, limit="2")
    arns = [r["arn"] for r in rows]
    assert len(arns) == len(set(arns)) == len(stored)
    assert set(arns) == stored
    assert {r["service"] for r in rows} == {i["AccountService"]["S"].split("_", 1)[1] for i in stored_items}

    buckets = all_pages("/resources", account=A1, resource_type="AWS::S3::Bucket", limit="3")
    assert PUBLIC in {r["arn"] for r in buckets}
    assert {r["resource_type"] for r in buckets} == {"AWS::S3::Bucket"}
    eu = all_pages("/resources", account=A1, service="ec2", region="eu-west-1")
    assert eu
    assert {(r["service"], r["region"]) for r in eu} == {("ec2", "eu-west-1")}
    # DynamoDB numbers come back as JSON numbers, integers as integers.
    policy = next(r for r in rows if r["resource_type"] == "AWS::IAM::PasswordPolicy")
    assert type(policy["configuration"]["PasswordPolicy"]["MinimumPasswordLength"]) is int


@pytest.mark.parametrize(
    ("query", "mentions"),
    [
        ({}, "account"),
        ({"account": A1, "service": "dynamodb"}, "dynamodb"),
        ({"account": A1, "resource_type": "AWS::DynamoDB::Table"}, "AWS::DynamoDB::Table"),
        ({"account": A1, "service": "ec2", "resource_type": "AWS::S3::Bucket"}, "resource_type"),
        ({"account": A1, "region": "moon"}, "region"),
        ({"account": A1, "next_token": "%%%"}, "next_token"),
    ],
)
def test_bad_resources_query_is_400(h, query, mentions):
    assert mentions in assert_rejected(h, 400, "GET", "/resources", **query)


# ---- executions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"service": "dynamodb"}, "dynamodb"),
        ({"service": "iam", "region": "eu-west-1"}, "global service"),
        ({"account_id": "999999999999"}, "account_id"),
        ({"accont_id": A1}, "accont_id"),
        ({"scan_type": "nightly"}, "scan_type"),
    ],
)
def test_invalid_inventory_is_400_before_any_execution(h, body, mentions):
    assert mentions in assert_rejected(h, 400, "POST", "/inventory", body)


def test_inventory_starts_an_execution_with_the_request(h):
    before = execution_count(h)
    status, body = call("POST", "/inventory", {"service": "s3", "account_id": A1})
    assert status == 202
    assert body["input"] == {"service": "s3", "account_id": A1}
    assert execution_count(h) == before + 1
    finish(h, body["execution_arn"])


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"policy_id": "NoSuchPolicy"}, "NoSuchPolicy"),
        ({"policy_id": "VPCFlowLogsDisabled", "account_id": "999999999999"}, "account_id"),
        ({"service": "dynamodb"}, "dynamodb"),
        ({"polcy_id": "S3BucketPublic"}, "polcy_id"),
    ],
)
def test_invalid_scan_is_400_before_any_execution(h, body, mentions):
    assert mentions in assert_rejected(h, 400, "POST", "/scans", body)


def test_scan_of_a_suspended_policy_resolves_its_findings_and_a_valid_scan_is_202(h):
    finish(h, call("POST", "/policies/launch", {"policy_id": "S3BucketLoggingDisabled"})[1]["execution_arn"])
    call("DELETE", "/policies/S3BucketLoggingDisabled")
    status, body = call("POST", "/scans", {"policy_id": "S3BucketLoggingDisabled"})
    assert status == 202
    finish(h, body["execution_arn"])
    assert all_pages("/findings", policy="S3BucketLoggingDisabled") == []

    status, body = call("POST", "/scans", {"service": "s3", "account_id": A1})
    assert status == 202
    assert body["input"] == {"service": "s3", "account_id": A1}
    finish(h, body["execution_arn"])


# ---- over HTTP ----------------------------------------------------------------------------


def test_local_http_server_serves_the_same_api(h, everything):
    server = make_server(0, h.runtime.dispatch)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"

    def request(method: str, path: str, data: bytes | None = None, **headers: str) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {server.access.token}"} | headers
        req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    try:
        status, body = request("GET", "/findings?severity=critical&state=ACTIVE&limit=500")
        assert status == 200
        assert keys(body["findings"]) == keys(
            call("GET", "/findings", severity="critical", limit="500")[1]["findings"]
        )
        # A body must be declared JSON: what an HTML form (or a bare curl -d) sends is refused.
        status, body = request(
            "POST",
            "/policies/launch",
            b'{"policy_id": "S3BucketPublic", "severity": 101}',
            **{"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert (status, body["error"]) == (415, "UnsupportedMediaType")
        status, body = request("POST", "/scans", b"{not json", **{"Content-Type": "application/json"})
        assert (status, body["error"]) == (400, "InvalidInput")
        status, body = request("GET", "/policies/S3BucketPublic")
        assert (status, body["policy"]["status"]) == (200, "ACTIVE")
        assert h.runtime.dispatch.invocations[API.function_name] == 4
    finally:
        server.shutdown()
        server.server_close()
