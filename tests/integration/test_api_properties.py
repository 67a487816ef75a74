"""Whatever arrives at the API — any method, path, query string, Content-Type and body (bytes, JSON
of any shape, near-valid requests, forged page tokens) — the answer is never a 5xx, is JSON with
the security headers, and a refused request (4xx) writes nothing and starts nothing.

Requests go through ``tasks.api.handler`` as API Gateway proxy events, on the local runtime with
an inventoried organisation; an accepted request that starts an execution is followed to its end,
so the next example starts from a quiet emulation."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import event as note_event
from hypothesis import strategies as st

from orchestration.cli_api import API, proxy_event
from orchestration.dispatch import LocalContext
from orchestration.simulated_org import account_id
from qrie_lib import executions
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.settings import Settings
from tasks import api
from tests.integration.conftest import Harness, inventoried_org

pytestmark = pytest.mark.slow
A1 = account_id(1)
CONTEXT_ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{API.function_name}"
TABLES = ("accounts_table", "findings_table", "policies_table")  # what the API itself may write
WRITES = {
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "StartExecution",
    "PutObject",
}
POLICIES = [*sorted(CATALOGUE)[:3], "S3BucketPublic"]


@pytest.fixture(scope="module")
def h() -> Iterator[Harness]:
    with inventoried_org(1, Settings()) as harness:  # default pages: fewer task calls per execution
        yield harness


# ---- strategies ---------------------------------------------------------------------------
# Mostly requests aimed at a route (its method and path, its parameters, a JSON body of its
# fields), with odd values; some entirely random ones.

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)  # API Gateway sends no lone surrogates
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=8,
)


def odd(*values: Any) -> st.SearchStrategy[Any]:
    """Mostly the given values (valid and nearly valid), sometimes anything."""
    return st.sampled_from(values) | st.sampled_from(values) | text


def b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


tokens = st.one_of(
    text,
    st.binary(max_size=30).map(lambda b: base64.urlsafe_b64encode(b).decode()),
    json_values.map(b64),
    st.builds(  # shaped like ours, with any position and start key
        lambda q, key: b64({"q": q, "k": key and b64({k: {"S": v} for k, v in key.items()})}),
        st.integers(-1, 4) | json_values,
        st.none()
        | st.dictionaries(
            st.sampled_from(["ARN", "PolicyId", "State", "AccountService", "X"]),
            odd(f"{A1}_s3", f"{A1}_iam", "999999999999_s3", "ACTIVE", "RESOLVED", *POLICIES),
            max_size=4,
        ),
    ),
)
PARAMETERS = {
    "account": odd(A1, "999999999999", "1234"),
    "policy": odd(*POLICIES, "Nope"),
    "state": odd("ACTIVE", "RESOLVED", "ALL", "OPEN"),
    "severity": odd("critical", "high", "medium", "low", "urgent"),
    "limit": st.integers(-1, 600).map(str) | text,
    "service": odd("s3", "ec2", "iam", "rds"),
    "resource_type": odd("AWS::S3::Bucket", "AWS::IAM::User", "AWS::RDS::DBInstance"),
    "region": odd("us-east-1", "eu-west-1", "global", "moon"),
    "status": odd("ACTIVE", "AVAILABLE", "SUSPENDED"),
    "next_token": tokens,
}
queries = st.lists(st.sampled_from(sorted(PARAMETERS)) | text, unique=True, max_size=4).flatmap(
    lambda names: st.fixed_dictionaries(
        {n: st.lists(PARAMETERS.get(n, text), min_size=1, max_size=2) for n in names}
    )
)
FIELDS = {
    "policy_id": odd(*POLICIES, "Nope"),
    "policy_ids": st.lists(odd(*POLICIES, "Nope"), max_size=3) | json_values,
    "all": st.booleans() | json_values,
    "scope": st.fixed_dictionaries(
        {},
        optional={
            "regions": st.lists(odd("us-east-1", "eu-west-1", "mars"), max_size=2),
            "include_accounts": st.lists(odd(A1, "999999999999"), max_size=2),
            "include_ou_paths": st.lists(odd("/root/", "prod"), max_size=2),
            "exclude_acounts": json_values,
        },
    )
    | json_values,
    "severity": st.integers(-5, 120) | json_values,
    "clear_severity": st.booleans() | json_values,
    "service": odd("all", "s3", "ec2", "iam", "rds"),
    "account_id": odd(A1, "999999999999", "12"),
    "region": odd("us-east-1", "eu-west-1", "mars"),
}
fields = st.lists(st.sampled_from(sorted(FIELDS)) | text, unique=True, max_size=3).flatmap(
    lambda names: st.fixed_dictionaries({n: FIELDS.get(n, json_values) for n in names})
)
bodies = st.one_of(
    st.none(),
    st.binary(max_size=40),
    json_values.map(lambda v: json.dumps(v).encode()),
    fields.map(lambda v: json.dumps(v).encode()),
    fields.map(lambda v: json.dumps(v).encode()),
)
policy_paths = st.sampled_from(POLICIES).map(lambda p: f"/policies/{p}") | text.map(
    lambda t: f"/policies/{t}"
)
ROUTES = [
    ("GET", st.just("/policies")),
    ("GET", policy_paths),
    ("PUT", policy_paths),
    ("DELETE", policy_paths),
    ("POST", st.just("/policies/launch")),
    ("GET", st.just("/findings")),
    ("GET", st.just("/resources")),
    ("GET", st.just("/summary")),
    ("POST", st.just("/inventory")),
    ("POST", st.just("/scans")),
]
routed = st.sampled_from(ROUTES).flatmap(lambda route: st.tuples(st.just(route[0]), route[1]))
anywhere = st.tuples(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    st.sampled_from(ROUTES).flatmap(lambda route: route[1]) | text.map(lambda t: "/" + t),
)
requests = st.fixed_dictionaries(
    {
        "route": routed | routed | routed | anywhere,
        "query": queries,
        "content_type": odd("application/json", "application/json; charset=utf-8")
        | st.sampled_from([None, "text/plain", "application/x-www-form-urlencoded"]),
        "body": bodies,
    }
)


# ---- what is compared ---------------------------------------------------------------------


def state(h: Harness) -> tuple[Any, ...]:
    """The items of every table the API itself may write; the size of those only executions write
    (reading them whole would make this test slow); the executions."""
    sfn = h.aws.client("stepfunctions")
    runs = sum(
        len(sfn.list_executions(stateMachineArn=arn)["executions"])
        for arn in h.runtime.state_machines.values()
    )
    ddb, settings = h.aws.client("dynamodb"), h.aws.settings
    sizes = [
        ddb.scan(TableName=t, Select="COUNT")["Count"]
        for t in (settings.resources_table, settings.runs_table)
    ]
    tables = (sorted(json.dumps(i, sort_keys=True) for i in h.table_items(t)) for t in TABLES)
    return (*tables, *sizes, runs)


@contextmanager
def write_calls(h: Harness) -> Iterator[Counter[str]]:
    """The calls that write or start anything (a rewrite with the same content counts too)."""
    counted: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        if model.name in WRITES:
            counted[model.name] += 1

    clients = [h.aws.client(service) for service in ("dynamodb", "stepfunctions", "s3")]
    for client in clients:
        client.meta.events.register("before-call", count)
    try:
        yield counted
    finally:
        for client in clients:
            client.meta.events.unregister("before-call", count)


def call(event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, list[str]]]:
    response = api.handler(event, LocalContext(API, CONTEXT_ARN))
    return response["statusCode"], json.loads(response["body"]), response["multiValueHeaders"]


def test_the_write_counter_sees_the_handlers_own_calls(h):
    """What the property relies on: a write the handler makes is counted (this one is accepted)."""
    with write_calls(h) as writes:
        status, answer, _ = call(proxy_event("POST", "/scans", None, {"Content-Type": "application/json"}))
    assert (status, writes["StartExecution"]) == (202, 1)
    executions.follow(h.aws, "scan", answer["execution_arn"], poll_s=0.05)


def whole_inventory(method: str, path: str, body: bytes | None) -> bool:
    """A request for an inventory of every service: followed to its end, each would cost seconds
    (test_api starts inventories; here the point is what is refused)."""
    if (method, path) != ("POST", "/inventory"):
        return False
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("service", "all") == "all"


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(request=requests)
def test_no_request_is_a_5xx_and_a_refused_one_writes_nothing(h, request):
    content_type = request["content_type"]
    headers = {"Host": "api.example"} | ({"Content-Type": content_type} if content_type else {})
    query = request["query"] or None
    method, path = request["route"]
    assume(not whole_inventory(method, path, request["body"]))
    assume(path != "/")  # a browser's address: the console's HTML 404 page (test_console.py)
    event = proxy_event(method, path, query, headers, request["body"])
    before = state(h)
    with write_calls(h) as writes:
        status, answer, response_headers = call(event)
    note_event(f"{status} {answer.get('error', '')}")
    assert status < 500, answer
    assert {k: response_headers[k] for k in api.SECURITY_HEADERS} == {
        k: [v] for k, v in api.SECURITY_HEADERS.items()
    }
    if status >= 400:
        assert set(answer) == {"error", "message"}
        assert answer["message"]
        assert not writes
        assert state(h) == before
    elif arn := answer.get("execution_arn"):
        executions.follow(h.aws, arn.split(":")[-2].removeprefix("qrie-"), arn, poll_s=0.05)
