"""The console's sign-in routes in AWS (``/console/auth/*``) through ``tasks.api.handler``: the login
redirect with PKCE and state bound to an HttpOnly cookie, the callback that keeps the ID token in the
session cookie only for the browser that started it, the CSRF-checked logout, and the console's
security headers on each. Cognito's token endpoint is not emulated by moto (no managed login): the
one call to it, ``SignIn.exchange``, is replaced here and records what it was sent."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from orchestration.cli_api import API, proxy_event
from orchestration.dispatch import LocalContext
from qrie_lib.aws import Aws, reset_aws
from qrie_lib.console import session
from qrie_lib.console.render import CSP, CSRF_COOKIE, SESSION_COOKIE
from qrie_lib.settings import Settings
from tasks import api

DOMAIN = "https://qrie-123456789012.auth.eu-west-1.amazoncognito.com"
CONSOLE = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/v1/console"
HOST = "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"
CONTEXT_ARN = f"arn:aws:lambda:eu-west-1:123456789012:function:{API.function_name}"
TOKEN = "header.claims.signature-of-the-id-token"


@pytest.fixture
def deployed() -> Iterator[None]:
    settings = Settings(
        region="eu-west-1",
        console_user_pool_id="eu-west-1_AbCdEf123",
        console_client_id="client-id",
        console_auth_domain=DOMAIN,
        console_url=CONSOLE,
    )
    reset_aws(Aws(settings))
    yield
    reset_aws(None)


@pytest.fixture
def exchanged(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    calls: list[tuple[str, str]] = []

    def exchange(self: session.SignIn, code: str, verifier: str) -> str:
        calls.append((code, verifier))
        return TOKEN

    monkeypatch.setattr(session.SignIn, "exchange", exchange)
    return calls


def get(path: str, cookie: str = "", headers: dict[str, str] | None = None, **query: str) -> dict[str, Any]:
    sent = {"Host": HOST} | ({"Cookie": cookie} if cookie else {}) | (headers or {})
    event = proxy_event("GET", path, {k: [v] for k, v in query.items()} or None, sent)
    return api.handler(event, LocalContext(API, CONTEXT_ARN))


def header(response: dict[str, Any], name: str) -> str:
    return response["multiValueHeaders"][name][-1]


def set_cookies(response: dict[str, Any]) -> dict[str, Any]:
    jar: SimpleCookie = SimpleCookie()
    for line in response["multiValueHeaders"].get("Set-Cookie", []):
        jar.load(line)
    return dict(jar.items())


def assert_console_headers(response: dict[str, Any]) -> None:
    assert header(response, "Content-Security-Policy") == CSP
    assert "frame-ancestors 'none'" in CSP
    assert header(response, "Strict-Transport-Security").startswith("max-age=")
    assert header(response, "X-Content-Type-Options") == "nosniff"
    assert header(response, "X-Frame-Options") == "DENY"
    assert header(response, "Cache-Control") == "no-store"


def assert_browser_only(morsel: Any) -> None:
    assert morsel["httponly"] is True
    assert morsel["secure"] is True
    assert morsel["samesite"] == "Lax"  # sent on the managed login's cross-site redirect back


def sign_in() -> tuple[dict[str, list[str]], str]:
    """The login redirect's query and the cookie it set."""
    response = get("/console/auth/login")
    assert response["statusCode"] == 302
    assert_console_headers(response)
    location = urlsplit(header(response, "Location"))
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{DOMAIN}/oauth2/authorize"
    morsel = set_cookies(response)[session.SIGN_IN_COOKIE]
    assert_browser_only(morsel)
    assert morsel["path"] == "/console/auth"
    return parse_qs(location.query), morsel.value


def test_login_redirects_to_the_managed_login_with_pkce_bound_to_this_browser(deployed) -> None:
    query, started = sign_in()
    state, verifier = started.split(".", 1)
    assert query["response_type"] == ["code"]
    assert query["client_id"] == ["client-id"]
    assert query["redirect_uri"] == [f"{CONSOLE}/auth/callback"]
    assert query["state"] == [state]
    assert query["code_challenge_method"] == ["S256"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert query["code_challenge"] == [challenge]
    assert 43 <= len(verifier) <= 128  # RFC 7636
    assert sign_in()[1] != started  # fresh for every sign-in


def test_callback_exchanges_the_code_and_sets_the_session_cookie(deployed, exchanged) -> None:
    query, started = sign_in()
    response = get(
        "/console/auth/callback",
        cookie=f"{session.SIGN_IN_COOKIE}={started}",
        code="the-code",
        state=query["state"][0],
    )
    assert response["statusCode"] == 303, response["body"]
    assert header(response, "Location").endswith("/console/")
    assert_console_headers(response)
    assert exchanged == [("the-code", started.split(".", 1)[1])]  # with this browser's verifier
    cookies = set_cookies(response)
    assert cookies[SESSION_COOKIE].value == TOKEN
    assert_browser_only(cookies[SESSION_COOKIE])
    assert cookies[SESSION_COOKIE]["path"] == "/"
    assert cookies[session.SIGN_IN_COOKIE]["max-age"] == "0"  # the sign-in is used once


@pytest.mark.parametrize(
    ("cookie", "state"),
    [
        pytest.param("", "s", id="no-sign-in-cookie"),
        pytest.param(f"{session.SIGN_IN_COOKIE}=other-state.verifier", "s", id="another-sign-in"),
        pytest.param(f"{session.SIGN_IN_COOKIE}=s.verifier", "", id="no-state"),
    ],
)
def test_callback_for_a_sign_in_this_browser_did_not_start_is_refused(
    deployed, exchanged, cookie: str, state: str
) -> None:
    response = get("/console/auth/callback", cookie=cookie, code="the-code", state=state)
    assert response["statusCode"] == 400
    assert "sign in again" in response["body"]
    assert_console_headers(response)
    assert exchanged == []
    assert SESSION_COOKIE not in set_cookies(response)


def test_logout_needs_the_csrf_token_then_forgets_the_session(deployed) -> None:
    cookie = f"{CSRF_COOKIE}=tok; {SESSION_COOKIE}={TOKEN}"
    refused = get("/console/auth/logout", cookie=cookie, csrf="other")
    assert refused["statusCode"] == 403
    assert SESSION_COOKIE not in set_cookies(refused)
    cross_site = get(
        "/console/auth/logout", cookie=cookie, headers={"Sec-Fetch-Site": "cross-site"}, csrf="tok"
    )
    assert cross_site["statusCode"] == 403
    response = get("/console/auth/logout", cookie=cookie, csrf="tok")
    assert response["statusCode"] == 302
    assert_console_headers(response)
    location = urlsplit(header(response, "Location"))
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{DOMAIN}/logout"
    assert parse_qs(location.query) == {"client_id": ["client-id"], "logout_uri": [f"{CONSOLE}/"]}
    assert set_cookies(response)[SESSION_COOKIE]["max-age"] == "0"


def test_without_a_user_pool_there_is_no_sign_in() -> None:
    reset_aws(Aws(Settings()))
    try:
        response = get("/console/auth/login")
    finally:
        reset_aws(None)
    assert response["statusCode"] == 400
    assert "not configured" in response["body"]


def test_a_signed_in_page_links_to_sign_out_with_its_csrf_token(deployed) -> None:
    # The error page (a callback without a sign-in) is a full page that needs no stored data.
    signed_in = get("/console/auth/callback", cookie=f"{CSRF_COOKIE}=tok; {SESSION_COOKIE}={TOKEN}")
    assert 'href="/console/auth/logout?csrf=tok"' in signed_in["body"]
    assert "Sign out" not in get("/console/auth/callback", cookie=f"{CSRF_COOKIE}=tok")["body"]
