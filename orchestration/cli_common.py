"""What every ``qrie`` sub-command shares: the endpoint options, the client factory it targets, the
console, one-line errors. ``cli.py`` and its sub-apps (``cli_events``, ``cli_api``, ...) import this
module, never each other, so registering the sub-apps makes no import cycle.

Kept light on purpose: ``qrie --help`` imports it, so moto and the local runtime load only inside
the commands that need them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from orchestration.credentials import FAKE_CREDENTIALS

if TYPE_CHECKING:
    from rich.progress import Progress

    from qrie_lib.aws import Aws

console = Console(stderr=True)


def endpoint_url(value: str | None) -> str | None:
    """An endpoint is an http(s) URL with a host (botocore would fail on anything else mid-command)."""
    from urllib.parse import urlsplit

    if value is None:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise typer.BadParameter(f"{value!r} is not a URL such as http://127.0.0.1:4566")
    return value


Endpoint = Annotated[
    str | None,
    typer.Option(help="A local endpoint (qrie local up), e.g. http://127.0.0.1:4566.", callback=endpoint_url),
]
StackName = Annotated[str | None, typer.Option(help="A deployed operator stack (uses your AWS credentials).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def target(endpoint: str | None) -> Aws:
    """A local endpoint (any credentials do) or AWS with the caller's credentials."""
    from qrie_lib.aws import Aws
    from qrie_lib.settings import Settings

    if endpoint:
        for key, value in FAKE_CREDENTIALS.items():
            os.environ.setdefault(key, value)
        # Nothing throttles locally: an endpoint that does not answer fails after one more try.
        return Aws(Settings(endpoint_url=endpoint, max_retry_attempts=2))
    return Aws(Settings())


def fail(name: str, message: str, code: int = 1) -> typer.Exit:
    """Print a one-line named error; the caller raises what this returns."""
    one_line = " ".join(message.split())
    console.print(f"[red]{name}[/]: {escape(one_line)}", soft_wrap=True, highlight=False)
    return typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Errors a user can act on become one line and an exit code, not a traceback: bad input
    (``InvalidInput``) exits 2 like a bad argument; a named failure, or AWS's answer (no
    credentials, an endpoint that does not answer, an API error), exits 1."""
    from botocore.exceptions import BotoCoreError, ClientError

    from qrie_lib.errors import InvalidInput, QrieError

    try:
        yield
    except InvalidInput as exc:
        raise fail(type(exc).__name__, str(exc), 2) from None
    except (QrieError, BotoCoreError, ClientError) as exc:
        raise fail(type(exc).__name__, str(exc), 1) from None


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def progress_bar(label: str) -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
