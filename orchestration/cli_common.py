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

Endpoint = Annotated[
    str | None, typer.Option(help="A local endpoint (qrie local up), e.g. http://127.0.0.1:4566.")
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
        return Aws(Settings(endpoint_url=endpoint))
    return Aws(Settings())


def fail(name: str, message: str, code: int = 1) -> typer.Exit:
    """Print a one-line named error; the caller raises what this returns."""
    console.print(f"[red]{name}[/]: {escape(message)}", soft_wrap=True, highlight=False)
    return typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Named errors become a one-line message and exit code 2, not a traceback."""
    from qrie_lib.errors import QrieError

    try:
        yield
    except QrieError as exc:
        raise fail(type(exc).__name__, str(exc), 2) from None


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
