"""``qrie api serve``: the HTTP API on 127.0.0.1, for trying it with curl.

Each HTTP request becomes an API Gateway REST proxy event and is invoked as the ``Api`` task
Lambda through the same in-process dispatch the state machines' tasks use; the proxy response
becomes the HTTP response. Going through the dispatch matters: it runs one handler at a time,
and neither moto's backends nor the resolver (which holds the current event) are thread-safe.
There is no IAM auth locally: it binds to the loopback interface only, and ``Access`` keeps other
web pages out (Host, Origin and a token; the handler itself refuses bodies not declared JSON)."""

from __future__ import annotations

import base64
import hmac
import json
import os
import re
import secrets
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import Message
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs, unquote, urlsplit

import typer

from orchestration.cli_common import console, endpoint_url, fail
from tasks.registry import TASKS

if TYPE_CHECKING:  # the rest loads when the server starts: ``qrie --help`` imports this module
    from orchestration.dispatch import Dispatch

ServedEndpoint = Annotated[
    str | None,
    typer.Option(
        help="A local endpoint (qrie local up); default: embedded, in process.",
        callback=endpoint_url,
        envvar="QRIE_ENDPOINT",
    ),
]
app = typer.Typer(help="The HTTP API (API Gateway + Lambda in AWS), served locally.", no_args_is_help=True)
API = next(t for t in TASKS if t.name == "Api")
HOST = "127.0.0.1"
STAGE = "local"
LANDING = "/console/"  # where the sign-in link leads
MAX_BODY = 1 << 20  # far above any request the API takes; API Gateway's own cap is 10 MB
LINK_PATH = "/_qrie/sign-in-link"  # the running server's own route: a fresh sign-in link
# A sign-in link is void once used (whoever finds it in the history gets nothing): say what to do.
USED_LINK = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Sign-in link used</title></head><body><h1>This sign-in link was used already</h1>
<p>A console sign-in link works once. For a new one, while the console runs, type:</p>
<pre>qrie console --link --port {port}</pre>
<p>and open the link it prints in this browser.</p></body></html>
"""


@app.callback()
def api() -> None:
    """The HTTP API (API Gateway + Lambda in AWS), served locally."""


def proxy_event(
    method: str,
    path: str,
    query: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
    source_ip: str = HOST,
    caller: str | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event (``/{proxy+}`` resource), as API Gateway builds it; ``caller``:
    who the local server authenticated (IAM names the principal in ``userArn`` in AWS)."""
    if isinstance(body, bytes):
        try:
            body, encoded = body.decode(), False
        except UnicodeDecodeError:  # API Gateway base64-encodes what is not text
            body, encoded = base64.b64encode(body).decode(), True
    else:
        encoded = False
    headers = headers or {}
    now = datetime.now(UTC)
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers or None,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} if query else None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": path,  # as the browser called it: the local server has no stage prefix
            "stage": STAGE,
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "accountId": "000000000000",
            "apiId": "local",
            "identity": {"sourceIp": source_ip, "userArn": None, "caller": caller, "userAgent": None},
        },
        "body": body,
        "isBase64Encoded": encoded,
    }


class Access:
    """Who may call the local API. There is no IAM locally, and any web page the user opens can send
    requests to 127.0.0.1, so every request must come to this server by name (its Host: a DNS
    rebinding attack brings another), from no other web origin, and carry a random token printed
    at start: ``Authorization: Bearer <token>``, or the cookie a one-time sign-in URL sets
    (HttpOnly, SameSite=Strict: no script reads it, no other site's request carries it)."""

    def __init__(self, port: int, identity: str) -> None:
        self.identity = identity  # who holds the token: the user who started the server
        self.token = secrets.token_urlsafe(32)
        self.cookie = f"qrie_api_{port}"  # cookies are per host, not per port
        self.hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
        self._sign_in_code: str | None = secrets.token_urlsafe(32)
        self._lock = threading.Lock()

    @property
    def sign_in_path(self) -> str:
        return f"/?token={self._sign_in_code}"

    def new_sign_in_path(self) -> str:
        """A fresh one-time sign-in link (``qrie console --link``); the previous one is void."""
        with self._lock:
            self._sign_in_code = secrets.token_urlsafe(32)
            return self.sign_in_path

    def refusal(self, headers: Message) -> tuple[HTTPStatus, str] | None:
        """Why a request may not reach the API, or None; the token last, after where it comes from."""
        hosts = headers.get_all("Host") or []
        if len(hosts) != 1 or hosts[0].lower() not in self.hosts:
            return (
                HTTPStatus.FORBIDDEN,
                f"Host: {', '.join(hosts) or 'none'}; this server is {' or '.join(sorted(self.hosts))}",
            )
        origins = headers.get_all("Origin") or []
        if origins and origins != [f"http://{hosts[0].lower()}"]:
            return HTTPStatus.FORBIDDEN, f"Origin: {', '.join(origins)} is not this server's origin"
        if not self.authorized(headers):
            return HTTPStatus.UNAUTHORIZED, "send Authorization: Bearer <the token qrie api serve printed>"
        return None

    def authorized(self, headers: Message) -> bool:
        scheme, _, bearer = (headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer":
            return self._is_token(bearer.strip())
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get("Cookie") or "")
        except CookieError:
            return False
        return self.cookie in cookies and self._is_token(cookies[self.cookie].value)

    def _is_token(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self.token.encode())

    def sign_in(self, code: str) -> bool:
        """True once, for the code in the printed sign-in URL (a used link in the history is void)."""
        with self._lock:
            if self._sign_in_code is None or not hmac.compare_digest(
                code.encode(), self._sign_in_code.encode()
            ):
                return False
            self._sign_in_code = None
            return True

    def other_cookies(self, headers: Message) -> str:
        """The request's cookies without the token's, for the handler."""
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get("Cookie") or "")
        except CookieError:
            return ""
        return "; ".join(f"{k}={m.coded_value}" for k, m in cookies.items() if k != self.cookie)

    def set_cookie(self) -> str:
        return f"{self.cookie}={self.token}; HttpOnly; SameSite=Strict; Path=/"


class ApiServer(ThreadingHTTPServer):
    access: Access


def make_server(port: int, dispatch: Dispatch | None = None) -> ApiServer:
    """An HTTP server on 127.0.0.1:``port`` (0: any free port) in front of the Api handler, its
    ``access`` holding the token. Pass the runtime's dispatch when the state machines run in this
    process, so API calls and task calls take turns; ``server.serve_forever()`` runs it."""
    from orchestration.dispatch import Dispatch
    from qrie_lib.suppressions import local_user
    from tasks.api import SECURITY_HEADERS

    invoke = (dispatch or Dispatch()).invoke

    class ProxyHandler(BaseHTTPRequestHandler):
        server: ApiServer

        def proxy(self) -> None:
            access, url = self.server.access, urlsplit(self.path)
            refusal = access.refusal(self.headers)
            query = parse_qs(url.query, keep_blank_values=True)
            if refusal and refusal[0] is HTTPStatus.UNAUTHORIZED and url.path == "/" and "token" in query:
                if self.command == "GET" and access.sign_in(query["token"][-1]):
                    self.reply(303, {"Location": LANDING, "Set-Cookie": access.set_cookie()}, b"")
                    return
                html = USED_LINK.format(port=self.server.server_port).encode()
                self.reply(401, {"Content-Type": "text/html; charset=utf-8"}, html)
                return
            if refusal is None and url.path == LINK_PATH:
                self.fresh_link()
                return
            if refusal is None:
                refusal, body = self.read_body()
            if refusal is not None:
                status, message = refusal
                extra = {"WWW-Authenticate": "Bearer"} if status is HTTPStatus.UNAUTHORIZED else {}
                self.reply_error(status, message, extra)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("authorization", "cookie")}
            if cookies := access.other_cookies(self.headers):  # the console's CSRF cookie; never the token
                headers["Cookie"] = cookies
            event = proxy_event(
                self.command, unquote(url.path), query, headers, body, self.client_address[0], access.identity
            )
            errors: dict[str, str] = {}
            result = json.loads(invoke(API.function_name, json.dumps(event).encode(), errors))
            if "x-amz-function-error" in errors:
                # What API Gateway answers when the Lambda itself fails.
                console.print(f"[red]{result.get('errorType')}[/]: {result.get('errorMessage')}")
                result = {"statusCode": 502, "headers": {}, "body": '{"message": "Internal server error"}'}
            text = result.get("body") or ""
            payload = base64.b64decode(text) if result.get("isBase64Encoded") else text.encode()
            headers = {k: vs[-1] for k, vs in (result.get("multiValueHeaders") or {}).items()}
            self.reply(int(result["statusCode"]), headers | (result.get("headers") or {}), payload)

        def fresh_link(self) -> None:
            """A new one-time sign-in link, for the holder of the token only (not a cookie)."""
            scheme, _, _ = (self.headers.get("Authorization") or "").partition(" ")
            if self.command != "POST" or scheme.lower() != "bearer":
                self.reply_error(HTTPStatus.FORBIDDEN, f"POST {LINK_PATH} with Authorization: Bearer <token>")
                return
            base = f"http://{HOST}:{self.server.server_port}"
            payload = json.dumps({"url": base + self.server.access.new_sign_in_path()}).encode()
            self.reply(200, {"Content-Type": "application/json"}, payload)

        def read_body(self) -> tuple[tuple[HTTPStatus, str] | None, bytes | None]:
            """The body by its Content-Length (http.server reads no chunked bodies), bounded."""
            if self.headers.get("Transfer-Encoding"):
                return (
                    HTTPStatus.LENGTH_REQUIRED,
                    "Transfer-Encoding: send the body with a Content-Length",
                ), None
            lengths = self.headers.get_all("Content-Length") or ["0"]
            if len(lengths) != 1 or not re.fullmatch(r"[0-9]{1,15}", lengths[0].strip()):
                return (HTTPStatus.BAD_REQUEST, f"Content-Length: {', '.join(lengths)} is not a length"), None
            length = int(lengths[0])
            if length > MAX_BODY:
                return (
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    f"Content-Length: {length} > {MAX_BODY} bytes",
                ), None
            return None, (self.rfile.read(length) if length else None)

        def reply_error(
            self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None
        ) -> None:
            name = status.phrase.replace(" ", "")
            payload = json.dumps({"error": name, "message": message}).encode()
            self.reply(status.value, {"Content-Type": "application/json"} | (headers or {}), payload)

        def reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
            self.send_response(status)
            for name, value in (SECURITY_HEADERS | headers).items():  # the console sends its own CSP
                self.send_header(name, str(value))
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """http.server's own errors (malformed request line, unsupported method) as JSON too."""
            self.close_connection = True
            status = HTTPStatus(code)
            self.reply_error(status, message or status.description)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = proxy

        def log_message(self, format: str, *args: Any) -> None:
            # The request line only: a sign-in URL's code is void once used.
            console.print(f"{self.address_string()} {format % args}", highlight=False)

    server = ApiServer((HOST, port), ProxyHandler)
    server.access = Access(server.server_port, local_user())
    return server


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8080,
    endpoint: ServedEndpoint = None,
    accounts: Annotated[int, typer.Option(min=1, max=200, help="Simulated accounts (embedded).")] = 3,
) -> None:
    """Serve the API over HTTP until Ctrl-C, against the embedded runtime or a local endpoint."""
    run_server(port, endpoint, accounts, open_console=False)


def console_command(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8080,
    endpoint: ServedEndpoint = None,
    accounts: Annotated[int, typer.Option(min=1, max=200, help="Simulated accounts (embedded).")] = 3,
    open_browser: Annotated[bool, typer.Option("--open/--no-open", help="Open the browser.")] = True,
    link: Annotated[
        bool, typer.Option("--link", help="Print a fresh sign-in link of the console running on --port.")
    ] = False,
) -> None:
    """The console: the API served on 127.0.0.1 and its one-time sign-in link opened in a browser."""
    if link:
        typer.echo(fresh_link(port))
        return
    run_server(port, endpoint, accounts, open_console=open_browser)


def token_file(port: int) -> Path:
    """Where a running server keeps its token for ``qrie console --link`` (the user's runtime
    directory; the directory 0700, the file 0600, removed when the server stops)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR") or Path.home() / ".local" / "state"
    return Path(runtime) / "qrie" / f"console-{port}.token"


@contextmanager
def token_kept(port: int, token: str) -> Iterator[None]:
    path = token_file(port)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def fresh_link(port: int) -> str:
    """A new one-time sign-in link from the console running on ``port`` (its own route, with the
    token it keeps for its user)."""
    path = token_file(port)
    try:
        token = path.read_text().strip()
        request = urllib.request.Request(
            f"http://{HOST}:{port}{LINK_PATH}", method="POST", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return str(json.load(answer)["url"])
    except (OSError, ValueError, KeyError):  # no file, no server, or not ours answering
        raise fail(
            "NoConsole",
            f"no console of yours answers on port {port}: start one with qrie console --port {port}",
        ) from None


def run_server(port: int, endpoint: str | None, accounts: int, open_console: bool) -> None:
    """The API (and its console) on 127.0.0.1 until Ctrl-C; the sign-in link is printed, and with
    ``open_console`` opened in the default browser."""
    import webbrowser

    from orchestration.cli_common import target
    from qrie_lib import executions
    from qrie_lib.aws import reset_aws

    runtime = None
    if endpoint:
        reset_aws(target(endpoint))
        dispatch = None
    else:
        from orchestration.runtime import LocalRuntime
        from orchestration.simulated_org import SimulatedOrg

        runtime = LocalRuntime()
        runtime.start()
        assert runtime.aws is not None
        console.print(f"embedded runtime: {accounts} simulated accounts, running an inventory first")
        SimulatedOrg(runtime.aws, accounts).create()
        arn = executions.start(runtime.aws, "inventory", {"service": "all"})
        console.print(f"inventory: {executions.follow(runtime.aws, 'inventory', arn).status}")
        dispatch = runtime.dispatch
    server = make_server(port, dispatch)
    base = f"http://{HOST}:{server.server_port}"
    auth = '-H "Authorization: Bearer $QRIE_API_TOKEN"'
    console.print(f"API on [bold]{base}[/]; every request needs the token. Try:")
    console.print(f"  export QRIE_API_TOKEN={server.access.token}", highlight=False)
    console.print(f"  curl -s {auth} {base}/policies", highlight=False)
    console.print(
        f"  curl -s {auth} -H 'Content-Type: application/json' {base}/policies/launch -d '{{\"all\": true}}'",
        highlight=False,
    )
    console.print(f"  curl -s {auth} '{base}/findings?severity=high&limit=5'", highlight=False)
    sign_in = f"{base}{server.access.sign_in_path}"
    console.print(f"Console (open once, it sets a cookie): {sign_in}", highlight=False)
    console.print(f"A new sign-in link meanwhile: qrie console --link --port {server.server_port}")
    if open_console:
        webbrowser.open(sign_in)
    try:
        with token_kept(server.server_port, server.access.token):
            server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if runtime is not None:
            runtime.stop()
