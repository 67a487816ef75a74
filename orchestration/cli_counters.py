"""``qrie counters recount``: rebuild the finding counters from the findings (qrie_lib.recount)."""

from __future__ import annotations

import typer

from orchestration.cli_common import (
    AsJson,
    Endpoint,
    Results,
    console,
    out,
    print_json,
    target,
    user_errors,
)

app = typer.Typer(help="The finding counters behind summaries and compliance.", no_args_is_help=True)


@app.command("recount")
def recount(endpoint: Endpoint = None, as_json: AsJson = False) -> None:
    """Count every finding again and rewrite the counter rows that differ.

    Findings are read through their index (no finding item is read). Run it while no scan is
    running: a finding moved during the count may be counted in one row and not the other."""
    from qrie_lib import recount as counting
    from qrie_lib.stores import Stores

    with user_errors(), console.status("counting findings..."):
        report = counting.recount(Stores.of(target(endpoint)))
    if as_json:
        print_json(report.__dict__)
        return
    out.print(
        f"{report.findings} findings counted into {report.rows} rows; {report.rewritten} rows rewritten"
    )
    if report.drift:
        table = Results("row", "cell", "recount - stored", ids=("row",))
        for row, cells in report.drift.items():
            for cell, delta in cells.items():
                table.add_row(row, cell, f"{delta:+d}")
        out.print(table)
