"""How a console page leaves the API: Jinja2 templates (autoescaped), the console's own security
headers, and the CSRF token every state-changing form carries.

CSRF is a double-submit token: a random ``qrie_csrf`` cookie (HttpOnly, SameSite=Strict) that
each page renders into its forms; a POST must send the same value in the ``csrf`` field, and come
from no other origin than the console's. A cross-site page can neither read the cookie nor set it
(the local server and API Gateway serve one origin), so it cannot forge the field."""

from __future__ import annotations

import hmac
import secrets
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from qrie_lib.errors import InvalidInput

HERE = Path(__file__).parent
STATIC = HERE / "static"
PREFIX = "/console"
SESSION_COOKIE = "qrie_session"  # the signed-in browser's Cognito ID token (console/session.py)
CSRF_COOKIE = "qrie_csrf"
CSRF_FIELD = "csrf"
# Only this origin's files: no inline script or style, no eval, no framing, forms post back here.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATIC_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,  # a template naming a missing value fails in tests, not silently
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["zip_pairs"] = lambda values: [(v, v) for v in values]  # <select> options


class Forbidden(InvalidInput):
    """A state-changing request without this console's CSRF token or from another origin."""


def cookies(event: APIGatewayProxyEvent) -> dict[str, str]:
    return parse_cookies(event.headers.get("cookie") or "")


def parse_cookies(header: str) -> dict[str, str]:
    """A Cookie header's values by name (none if it does not parse)."""
    jar = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def base_path(event: APIGatewayProxyEvent) -> str:
    """What precedes the API's paths in the browser's URL: API Gateway's stage (``/v1``), or
    nothing behind a custom domain or on the local server."""
    called = event.request_context.path or event.path
    return called[: -len(event.path)] if called.endswith(event.path) else ""


def page(
    event: APIGatewayProxyEvent, template: str, status: HTTPStatus = HTTPStatus.OK, **context: Any
) -> Response:
    """A rendered page; it (re)issues the CSRF cookie its forms echo."""
    token = cookies(event).get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    root = base_path(event) + PREFIX
    signed_in = SESSION_COOKIE in cookies(event)  # AWS: the sign-out link (routes.sign_out)
    body = templates.get_template(template).render(
        root=root, csrf=token, path=event.path, signed_in=signed_in, **context
    )
    secure = "; Secure" if (event.headers.get("x-forwarded-proto") or "") == "https" else ""
    return Response(
        status_code=status.value,
        content_type="text/html; charset=utf-8",
        body=body,
        headers=HEADERS,
        cookies=[f"{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}"],
    )


def redirect(event: APIGatewayProxyEvent, location: str) -> Response:
    """303 See Other to a console path: after a POST, the browser GETs the result."""
    return Response(
        status_code=HTTPStatus.SEE_OTHER.value,
        body="",
        headers=HEADERS | {"Location": base_path(event) + PREFIX + location},
    )


def static(name: str) -> Response:
    """A vendored or own asset; a name outside the directory is not served."""
    path = (STATIC / name).resolve()
    if path.parent != STATIC.resolve() or path.suffix not in STATIC_TYPES or not path.is_file():
        return Response(status_code=404, content_type="text/plain", body="no such file", headers=HEADERS)
    return Response(
        status_code=200,
        content_type=STATIC_TYPES[path.suffix],
        body=path.read_text(),
        headers=HEADERS | {"Cache-Control": "public, max-age=3600"},
    )


def check_csrf(event: APIGatewayProxyEvent, form: dict[str, str]) -> None:
    """Refuse a state-changing request that is not this console's own form (or htmx) submission."""
    origin = event.headers.get("origin")
    host = event.headers.get("host") or ""
    if origin is not None and origin.split("://", 1)[-1] != host:
        raise Forbidden(f"Origin: {origin} is not this console's origin")
    if (event.headers.get("sec-fetch-site") or "same-origin") not in ("same-origin", "none"):
        raise Forbidden("Sec-Fetch-Site: the request came from another site")
    expected, sent = cookies(event).get(CSRF_COOKIE, ""), form.get(CSRF_FIELD, "")
    if not (expected and sent and hmac.compare_digest(expected.encode(), sent.encode())):
        raise Forbidden("csrf: the form's token does not match this browser's; reload the page")
