"""``qrie api serve`` over real HTTP: the server runs on a free port in a thread, in front of the
local runtime, and every request below is a real HTTP request. What a web page in the user's
browser could send (another Host, another Origin, no token, a form body) must be refused before
anything is written."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from orchestration.cli import app as cli
from orchestration.cli_api import API, LINK_PATH, ApiServer, make_server, token_file, token_kept
from orchestration.simulated_org import account_id
from qrie_lib import executions, lifecycle
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.stores import Stores
from qrie_lib.stores.suppressions import Suppression, new_rule_id
from qrie_lib.suppressions import local_user
from qrie_lib.timeutil import iso, now_iso, parse_iso
from tests.integration.conftest import Harness

pytestmark = pytest.mark.slow
JSON = {"Content-Type": "application/json"}
SECURITY = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@pytest.fixture(scope="module")
def server(harness: Harness) -> Iterator[ApiServer]:
    server = make_server(0, harness.runtime.dispatch)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class Reply:
    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status, self.headers = response.status, response.headers
        raw = response.read()
        self.body: Any = json.loads(raw) if raw else None


def send(
    server: ApiServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    host: str | None = "default",
    token: str | None = "default",
) -> Reply:
    """One HTTP request with exactly these headers: ``host``/``token`` default to the right ones,
    None leaves them out."""
    port = server.server_port
    sent = dict(headers or {})
    if host is not None:
        sent.setdefault("Host", f"127.0.0.1:{port}" if host == "default" else host)
    if token is not None:
        sent.setdefault("Authorization", f"Bearer {server.access.token if token == 'default' else token}")
    if body is not None:
        sent.setdefault("Content-Length", str(len(body)))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in sent.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        return Reply(conn.getresponse())
    finally:
        conn.close()


def snapshot(h: Harness) -> tuple[Any, ...]:
    """Every table and the executions: what a refused request must leave as it was."""
    tables = ("accounts_table", "resources_table", "findings_table", "policies_table", "runs_table")
    sfn = h.aws.client("stepfunctions")
    runs = sum(
        len(sfn.list_executions(stateMachineArn=arn)["executions"])
        for arn in h.runtime.state_machines.values()
    )
    return (*(sorted(json.dumps(i, sort_keys=True) for i in h.table_items(t)) for t in tables), runs)


def api_calls(h: Harness) -> int:
    return h.runtime.dispatch.invocations.get(API.function_name, 0)


def assert_refused(h: Harness, server: ApiServer, status: int, *args: Any, **kwargs: Any) -> Reply:
    """The request is refused with ``status``, a JSON error, the security headers, and reaches
    neither the handler nor any table."""
    before, calls = snapshot(h), api_calls(h)
    reply = send(server, *args, **kwargs)
    assert reply.status == status, reply.body
    assert set(reply.body) == {"error", "message"}
    assert {k: reply.headers[k] for k in SECURITY} == SECURITY
    assert api_calls(h) == calls
    assert snapshot(h) == before
    return reply


# ---- where it listens and who may call ------------------------------------------------------


def test_binds_to_the_loopback_interface_only(server):
    assert server.server_address == ("127.0.0.1", server.server_port)


def test_the_token_is_required_and_compared_exactly(harness, server):
    assert send(server, "GET", "/policies").status == 200
    for token in (None, "", server.access.token[:-1], server.access.token + "x", "Bearer"):
        reply = assert_refused(harness, server, 401, "GET", "/policies", token=token)
        assert reply.headers["WWW-Authenticate"] == "Bearer"
    assert_refused(
        harness, server, 401, "GET", "/policies", headers={"Authorization": f"Basic {server.access.token}"}
    )
    forged = {"Cookie": f"{server.access.cookie}=nope"}
    assert_refused(harness, server, 401, "GET", "/policies", headers=forged, token=None)


def test_the_sign_in_url_sets_an_http_only_same_site_strict_cookie_once(harness, server):
    assert_used_link(harness, server, "/?token=wrong")
    path = server.access.sign_in_path
    reply = send(server, "GET", path, token=None)
    assert (reply.status, reply.headers["Location"]) == (303, "/console/")
    assert {k: reply.headers[k] for k in SECURITY} == SECURITY
    cookie = SimpleCookie(reply.headers["Set-Cookie"])[server.access.cookie]
    assert (cookie["httponly"], cookie["samesite"], cookie["path"]) == (True, "Strict", "/")
    jar = {"Cookie": f"{server.access.cookie}={cookie.value}"}
    assert send(server, "GET", "/summary", headers=jar, token=None).status == 200
    # The link is void once used: whoever finds it in the history gets nothing but how to get one.
    assert_used_link(harness, server, path)


def assert_used_link(harness: Harness, server: ApiServer, path: str) -> None:
    """A wrong or used sign-in link: 401, a page that says how to get a new link, nothing else."""
    before, calls = snapshot(harness), api_calls(harness)
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        page = response.read().decode()
    finally:
        conn.close()
    assert response.status == 401
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Set-Cookie" not in response.headers
    assert f"qrie console --link --port {server.server_port}" in page
    assert {k: response.headers[k] for k in SECURITY} == SECURITY
    assert (api_calls(harness), snapshot(harness)) == (calls, before)


def test_console_link_prints_a_fresh_sign_in_link_of_the_running_server(
    harness, server, tmp_path, monkeypatch
):
    """Item 13: ``qrie console --link`` asks the running server (with the token it keeps for its
    user, 0600) for a new one-time link; the old one is void, the new one signs in once."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    port = server.server_port
    missing = CliRunner().invoke(cli, ["console", "--link", "--port", str(port)])
    assert missing.exit_code == 1
    assert "qrie console" in missing.output
    with token_kept(port, server.access.token):
        assert oct(token_file(port).stat().st_mode & 0o777) == "0o600"
        assert oct(token_file(port).parent.stat().st_mode & 0o777) == "0o700"
        result = CliRunner().invoke(cli, ["console", "--link", "--port", str(port)])
    assert result.exit_code == 0, result.output
    assert not token_file(port).exists()
    link = urlsplit(result.stdout.strip())
    assert (link.scheme, link.netloc) == ("http", f"127.0.0.1:{port}")
    reply = send(server, "GET", f"/?{link.query}", token=None)
    assert (reply.status, reply.headers["Location"]) == (303, "/console/")
    assert_used_link(harness, server, f"/?{link.query}")
    # Only the token's holder gets a link: not a cookie, not a GET, not without the token.
    jar = {"Cookie": f"{server.access.cookie}={server.access.token}"}
    assert send(server, "POST", LINK_PATH, headers=jar, token=None).status == 403
    assert send(server, "GET", LINK_PATH).status == 403
    assert send(server, "POST", LINK_PATH, token=None).status == 401


@pytest.mark.parametrize(
    "host",
    [
        "evil.example:{port}",  # DNS rebinding: the attacker's name resolved to 127.0.0.1
        "127.0.0.1:1",
        "127.0.0.1",
        "localhost",
        "127.0.0.1:{port}.evil.example",
        "",
        None,
    ],
)
def test_another_host_is_403_even_with_the_token(harness, server, host):
    host = host and host.format(port=server.server_port)
    assert "Host" in assert_refused(harness, server, 403, "GET", "/policies", host=host).body["message"]


def test_both_names_of_this_server_are_accepted(server):
    for host in (f"localhost:{server.server_port}", f"LocalHost:{server.server_port}"):
        assert send(server, "GET", "/policies", host=host).status == 200


def test_a_cross_origin_post_is_403_and_writes_nothing(harness, server):
    """A page on another origin posting with the user's cookie (SameSite aside) gets nothing done."""
    signed_in = {"Cookie": f"{server.access.cookie}={server.access.token}"}
    launch = b'{"all": true}'
    for origin in (
        "http://evil.example",
        "null",
        "http://127.0.0.1:1",
        f"https://127.0.0.1:{server.server_port}",
    ):
        headers = JSON | signed_in | {"Origin": origin}
        reply = assert_refused(harness, server, 403, "POST", "/policies/launch", launch, headers, token=None)
        assert "Origin" in reply.body["message"]
    # The same request from this server's own origin does launch: the refusals above were the Origin.
    headers = JSON | signed_in | {"Origin": f"http://127.0.0.1:{server.server_port}"}
    reply = send(server, "POST", "/policies/launch", launch, headers, token=None)
    assert reply.status == 201, reply.body
    outcome = executions.follow(harness.aws, "scan", reply.body["execution_arn"], poll_s=0.05)
    assert outcome.status == "SUCCEEDED", outcome.cause


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/jsonx",
    ],
)
def test_a_body_not_declared_json_is_415_and_writes_nothing(harness, server, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    before = snapshot(harness)
    for method, path in (
        ("POST", "/policies/launch"),
        ("PUT", "/policies/S3BucketPublic"),
        ("POST", "/scans"),
    ):
        reply = send(server, method, path, b'{"all": true, "severity": 10}', headers)
        assert (reply.status, reply.body["error"]) == (415, "UnsupportedMediaType")
        assert {k: reply.headers[k] for k in SECURITY} == SECURITY
    assert snapshot(harness) == before
    # Declared JSON (with a charset), the same kind of body gets through to validation.
    reply = send(
        server, "POST", "/scans", b'{"polcy_id": "x"}', {"Content-Type": "application/json; charset=utf-8"}
    )
    assert (reply.status, reply.body["error"]) == (400, "InvalidInput")


# ---- malformed requests: 4xx, JSON, the security headers -------------------------------------


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"Content-Length": "abc"}, None, 400),
        ({"Content-Length": "-1"}, None, 400),
        ({"Content-Length": "²"}, None, 400),
        ({"Content-Length": str(10**9)}, None, 413),
        ({"Transfer-Encoding": "chunked"}, None, 411),
        (JSON, b'{"service": "s3\xff"}', 400),  # not UTF-8
        (JSON, b"{not json", 400),
    ],
)
def test_malformed_bodies_are_4xx_and_write_nothing(harness, server, headers, body, status):
    before = snapshot(harness)
    reply = send(server, "POST", "/scans", body, headers)
    assert reply.status == status, reply.body
    assert set(reply.body) == {"error", "message"}
    assert {k: reply.headers[k] for k in SECURITY} == SECURITY
    assert snapshot(harness) == before


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/policies", 200), ("GET", "/nowhere", 404), ("OPTIONS", "/policies", 501), ("TRACE", "/", 501)],
)
def test_every_response_carries_the_security_headers(server, method, path, status):
    reply = send(server, method, path)
    assert reply.status == status
    assert {k: reply.headers[k] for k in SECURITY} == SECURITY


# ---- issue 20 items 5-8 over real HTTP ---------------------------------------------------------


@pytest.fixture(scope="module")
def scanned(harness: Harness) -> None:
    """The organisation inventoried and the whole catalogue launched and scanned."""
    assert harness.run("inventory", {"service": "all"})[0].status == "SUCCEEDED"
    lifecycle.launch(Stores.of(harness.aws), sorted(CATALOGUE))
    assert harness.run("scan", {})[0].status == "SUCCEEDED"


def in_a_month() -> str:
    return iso(parse_iso(now_iso()) + timedelta(days=30))


def suppress(server: ApiServer, **rule: Any) -> Reply:
    body = {"reason": "accepted", "owner": "team-a", "expires_at": in_a_month()} | rule
    return send(server, "POST", "/suppressions", json.dumps(body).encode(), JSON)


def test_a_page_token_is_refused_on_another_query(harness, server, scanned):
    first = send(server, "GET", "/findings?limit=2")
    assert first.status == 200
    token = first.body["next_token"]
    assert send(server, "GET", f"/findings?limit=2&next_token={token}").status == 200
    reply = assert_refused_by_handler(harness, server, f"/findings?limit=2&severity=high&next_token={token}")
    assert reply.body == {"error": "InvalidInput", "message": "next_token was not issued for this query"}


def assert_refused_by_handler(harness: Harness, server: ApiServer, path: str) -> Reply:
    before = snapshot(harness)
    reply = send(server, "GET", path)
    assert reply.status == 400, reply.body
    assert snapshot(harness) == before
    return reply


def test_suppressions_made_through_the_server_are_audited_as_the_token_holder(harness, server, scanned):
    reply = suppress(server, policy_id="S3BucketPublic", accounts=[account_id(1)])
    assert reply.status == 201, reply.body
    rule_id = reply.body["suppression"]["rule_id"]
    assert reply.body["suppression"]["created_by"] == local_user()
    removed = send(server, "DELETE", f"/suppressions/{rule_id}")
    assert removed.status == 202, removed.body
    trail = send(server, "GET", f"/suppressions/{rule_id}").body["audit"]
    assert [(a["action"], a["who"]) for a in trail] == [("created", local_user()), ("removed", local_user())]
    for arn in (reply.body["execution_arn"], removed.body["execution_arn"]):
        assert executions.follow(harness.aws, "scan", arn, poll_s=0.05).status == "SUCCEEDED"


def test_an_org_wide_suppression_over_http_needs_everything(harness, server, scanned):
    before = snapshot(harness)
    refused = suppress(server, policy_id="ALL")
    assert refused.status == 400
    assert "everything: true" in refused.body["message"]
    assert snapshot(harness) == before
    accepted = suppress(server, policy_id="ALL", everything=True)
    assert accepted.status == 201, accepted.body
    removed = send(server, "DELETE", f"/suppressions/{accepted.body['suppression']['rule_id']}")
    assert removed.status == 202, removed.body


@pytest.mark.xfail(
    strict=True,
    reason="known defect: the re-match scan of every launched policy puts all their findings shards "
    "(policies x shards x 2 states) in one pseudo-account child, which fails on AWS's limits; "
    "the shard items must be split into bounded groups (closing note of stop 25)",
)
def test_the_rescan_an_org_wide_suppression_starts_succeeds(harness, server, scanned):
    accepted = suppress(server, policy_id="ALL", everything=True)
    assert accepted.status == 201, accepted.body
    try:
        outcome = executions.follow(harness.aws, "scan", accepted.body["execution_arn"], poll_s=0.05)
    finally:
        send(server, "DELETE", f"/suppressions/{accepted.body['suppression']['rule_id']}")
    assert outcome.status == "SUCCEEDED"


def test_a_rule_past_its_expiry_is_listed_expired_over_http(harness, server, scanned):
    stores = Stores.of(harness.aws)
    rule = Suppression(
        rule_id=new_rule_id("S3BucketPublic"), policy_id="S3BucketPublic", accounts=[account_id(2)],
        reason="r", owner="o", created_by="local:tester", created_at=now_iso(),
        expires_at=iso(parse_iso(now_iso()) - timedelta(seconds=1)),
    )  # fmt: skip
    stores.suppressions.put(rule)  # ACTIVE in the table: the daily task has not run
    listed = {r["rule_id"]: r["status"] for r in send(server, "GET", "/suppressions").body["suppressions"]}
    assert listed[rule.rule_id] == "EXPIRED"
    active = send(server, "GET", "/suppressions?status=ACTIVE").body["suppressions"]
    assert rule.rule_id not in {r["rule_id"] for r in active}
