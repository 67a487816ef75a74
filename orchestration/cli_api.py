"""``qrie api serve``: the HTTP API on 127.0.0.1, for trying it with curl.

Each HTTP request becomes an API Gateway REST proxy event and is invoked as the ``Api`` task
Lambda through the same in-process dispatch the state machines' tasks use; the proxy response
becomes the HTTP response. Going through the dispatch matters: it runs one handler at a time,
and neither moto's backends nor the resolver (which holds the current event) are thread-safe.
There is no IAM auth locally, which is why it binds to the loopback interface only."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any
from urllib.parse import parse_qs, unquote, urlsplit

import typer
from rich.console import Console

from orchestration.dispatch import Dispatch
from qrie_lib import executions
from qrie_lib.aws import reset_aws
from tasks.registry import TASKS

app = typer.Typer(help="The HTTP API (API Gateway + Lambda in AWS), served locally.", no_args_is_help=True)
console = Console(stderr=True)
API = next(t for t in TASKS if t.name == "Api")
HOST = "127.0.0.1"
STAGE = "local"


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
) -> dict[str, Any]:
    """An API Gateway REST proxy event (``/{proxy+}`` resource), as API Gateway builds it."""
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
            "path": f"/{STAGE}{path}",
            "stage": STAGE,
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "accountId": "000000000000",
            "apiId": "local",
            "identity": {"sourceIp": source_ip, "userArn": None, "caller": None, "userAgent": None},
        },
        "body": body,
        "isBase64Encoded": encoded,
    }


def make_server(port: int, dispatch: Dispatch | None = None) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1:``port`` (0: any free port) in front of the Api handler. Pass the
    runtime's dispatch when the state machines run in this process, so API calls and task calls
    take turns; ``server.serve_forever()`` runs it."""
    invoke = (dispatch or Dispatch()).invoke

    class ProxyHandler(BaseHTTPRequestHandler):
        def proxy(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            event = proxy_event(
                self.command,
                unquote(url.path),
                parse_qs(url.query, keep_blank_values=True),
                dict(self.headers.items()),
                self.rfile.read(length) if length else None,
                self.client_address[0],
            )
            errors: dict[str, str] = {}
            result = json.loads(invoke(API.function_name, json.dumps(event).encode(), errors))
            if "x-amz-function-error" in errors:
                # What API Gateway answers when the Lambda itself fails.
                console.print(f"[red]{result.get('errorType')}[/]: {result.get('errorMessage')}")
                result = {"statusCode": 502, "headers": {}, "body": '{"message": "Internal server error"}'}
            self.reply(result)

        def reply(self, result: dict[str, Any]) -> None:
            text = result.get("body") or ""
            payload = base64.b64decode(text) if result.get("isBase64Encoded") else text.encode()
            self.send_response(int(result["statusCode"]))
            headers = {k: vs[-1] for k, vs in (result.get("multiValueHeaders") or {}).items()}
            for name, value in (headers | (result.get("headers") or {})).items():
                self.send_header(name, str(value))
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = proxy

        def log_message(self, format: str, *args: Any) -> None:
            console.print(f"{self.address_string()} {format % args}", highlight=False)

    return ThreadingHTTPServer((HOST, port), ProxyHandler)


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8080,
    endpoint: Annotated[
        str | None, typer.Option(help="A local endpoint (qrie local up); default: embedded, in process.")
    ] = None,
    accounts: Annotated[int, typer.Option(min=1, max=200, help="Simulated accounts (embedded).")] = 3,
) -> None:
    """Serve the API over HTTP until Ctrl-C, against the embedded runtime or a local endpoint."""
    runtime = None
    if endpoint:
        from orchestration.cli import target  # deferred: cli imports this module to register it

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
    console.print(f"API on [bold]{base}[/]; try:")
    console.print(f"  curl -s {base}/policies", highlight=False)
    console.print(f"  curl -s -X POST {base}/policies/launch -d '{{\"all\": true}}'", highlight=False)
    console.print(f"  curl -s '{base}/findings?severity=high&limit=5'", highlight=False)
    console.print(f"  curl -s {base}/summary", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if runtime is not None:
            runtime.stop()
