"""What every ``qrie`` sub-command shares: the endpoint options, the client factory it targets, the
console, one-line errors. ``cli.py`` and its sub-apps (``cli_events``, ``cli_api``, ...) import this
module, never each other, so registering the sub-apps makes no import cycle.

Kept light on purpose: ``qrie --help`` imports it, so moto and the local runtime load only inside
the commands that need them."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from orchestration.credentials import FAKE_CREDENTIALS

if TYPE_CHECKING:
    from rich.progress import Progress

    from qrie_lib.aws import Aws

# Results (tables, JSON, CSV) go to stdout, so `qrie findings > f.txt` and `| grep` see them;
# progress, status and warnings go to stderr. Lines of text are never hard-wrapped (soft_wrap):
# an id or ARN in them stays whole, to be copied; tables fit the terminal (``Results``).
console = Console(stderr=True, soft_wrap=True)
# Piped or redirected, results have no width limit: a file or a pipe has no columns to fit.
UNLIMITED = 1 << 16
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else UNLIMITED)


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
    typer.Option(
        help="A local endpoint (qrie local up), e.g. http://127.0.0.1:4566.",
        callback=endpoint_url,
        envvar="QRIE_ENDPOINT",
    ),
]
StackName = Annotated[
    str | None,
    typer.Option(help="A deployed operator stack (uses your AWS credentials).", envvar="QRIE_STACK_NAME"),
]
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


class Results:
    """A results table that never cuts an identifier a user types next (policy, account and
    suppression ids, named in ``ids``): each stays whole on one line, the other columns wrap, a long
    word (an ARN) folds rather than ending in "…". A terminal too narrow for the ids and a few
    characters of every other column gets each row as a record instead: a "column  value" line
    per column, nothing wrapped. ``out.print`` it like a rich ``Table``."""

    NARROWEST = 8  # a non-id column narrower than this is not worth a table

    def __init__(self, *headers: str, ids: Collection[str] = ()) -> None:
        self.headers, self.ids = headers, frozenset(ids)
        self.rows: list[tuple[str, ...]] = []

    def add_row(self, *cells: str) -> None:
        self.rows.append(cells)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.fits(options.max_width):
            yield self.table()
            return
        label = max(len(h) for h in self.headers)
        for n, row in enumerate(self.rows):
            if n:
                yield Text()
            for header, cell in zip(self.headers, row, strict=True):
                yield Text(f"{header.ljust(label)}  ").append_text(Text.from_markup(cell))

    def fits(self, width: int) -> bool:
        needed = 2 * (len(self.headers) - 1)  # two spaces between columns
        for i, header in enumerate(self.headers):
            longest = max((Text.from_markup(r[i]).cell_len for r in self.rows), default=0)
            needed += max(longest, len(header)) if header in self.ids else min(longest, self.NARROWEST)
        return needed <= width

    def table(self) -> Table:
        # No box: lines as `grep` and `cut` expect them, and more room for the values.
        table = Table(box=None, pad_edge=False)
        for header in self.headers:
            table.add_column(header, no_wrap=header in self.ids, overflow="fold")
        for row in self.rows:
            table.add_row(*row)
        return table


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
