"""``qrie compliance FRAMEWORK``: a framework's report over the findings, as a table, JSON, CSV or
one self-contained HTML file. The report itself is ``qrie_lib/compliance.py``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orchestration.cli_common import UNLIMITED, Endpoint, Results, console, fail, out, target, user_errors

if TYPE_CHECKING:
    from qrie_lib.compliance import Outcome, Report


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    html = "html"


def compliance(
    framework: Annotated[str, typer.Argument(help="A framework id: cis-aws-3.0 or aws-fsbp.")],
    account: Annotated[str | None, typer.Option(help="One account id.")] = None,
    output_format: Annotated[str, typer.Option("--format", help="table, json, csv or html.")] = "table",
    output: Annotated[Path | None, typer.Option(help="Write the report to this file.")] = None,
    endpoint: Endpoint = None,
) -> None:
    """A compliance framework's report: each control per account, failing resources, scores."""
    from pydantic import TypeAdapter, ValidationError

    from qrie_lib import compliance as reports
    from qrie_lib.errors import InvalidInput
    from qrie_lib.frameworks.registry import get_framework
    from qrie_lib.models import AccountId
    from qrie_lib.stores import Stores

    with user_errors():
        try:
            chosen = ReportFormat(output_format)
        except ValueError:
            raise InvalidInput(f"format: {output_format!r} is not one of {', '.join(ReportFormat)}") from None
        get_framework(framework)  # bad input before any call
        if account is not None:
            try:
                TypeAdapter(AccountId).validate_python(account)
            except ValidationError:
                raise InvalidInput(f"account: {account!r} is not an account id (12 digits)") from None
        report = reports.report(Stores.of(target(endpoint)), framework, account)
    if output is None and chosen is ReportFormat.table:  # fits the terminal (``Results``)
        for part in table_parts(report):
            out.print(part, highlight=False)
        return
    text = rendered(report, chosen)
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail("OutputError", f"{output}: {exc.strerror}", 1) from None
    console.print(f"wrote {output} ({report.overall.score}% overall)", highlight=False)


def rendered(report: Report, chosen: ReportFormat) -> str:
    import json

    from qrie_lib.compliance import csv_text
    from qrie_lib.compliance_html import render

    if chosen is ReportFormat.json:
        return json.dumps(report.as_json(), indent=2) + "\n"
    if chosen is ReportFormat.csv:
        return csv_text(report)
    if chosen is ReportFormat.html:
        return render(report)
    return table_text(report)


def table_text(report: Report) -> str:
    """The table as a file holds it: a line per control, however wide."""
    import io

    from rich.console import Console

    buffer = Console(record=True, width=UNLIMITED, file=io.StringIO(), soft_wrap=True)
    for part in table_parts(report):
        buffer.print(part, highlight=False)
    return buffer.export_text()


def table_parts(report: Report) -> list[Results | str]:
    """The controls (a control's id and the accounts' ids never cut), then the scores."""
    from rich.markup import escape

    accounts = [a.account_id for a in report.accounts]
    graded = "severity" if any(c.severity for c in report.controls) else "level"
    table = Results("control", "title", graded, "assessment", *accounts, ids=("control", *accounts))
    for c in report.controls:
        table.add_row(
            escape(c.id),
            escape(c.title),
            c.profile.removeprefix("Level ") if c.profile else (c.severity or ""),
            escape(c.assessment),
            *(escape(status_text(c.accounts[a])) for a in accounts),
        )
    scores = [
        f"{a.account_id}: score {a.score}% ({a.passed} of {a.evaluated} evaluated automated controls)"
        for a in report.accounts
    ]
    overall = (
        f"overall: score {report.overall.score}% ({report.overall.passed} of {report.overall.evaluated})"
    )
    return [table, *scores, overall]


def status_text(outcome: Outcome) -> str:
    text = outcome.status.value
    if outcome.audit_result:
        text += f" (audit {outcome.audit_result.value})"
    if outcome.failing_count:
        text += f" ×{outcome.failing_count}"
    return text
