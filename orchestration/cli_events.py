"""``qrie events``: put CloudTrail events on the events queue and drain it through the processor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestration.cli_common import AsJson, Endpoint, Results, out, print_json, target, user_errors

app = typer.Typer(
    help="Real-time events: send CloudTrail events to the events queue, drain it locally.",
    no_args_is_help=True,
)


@app.command()
def send(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="JSON files: an EventBridge event, an array of them, or a bare CloudTrail record.",
            exists=True,
            dir_okay=False,
        ),
    ],
    endpoint: Endpoint = None,
    as_json: AsJson = False,
) -> None:
    """Put CloudTrail-shaped events on the events queue."""
    from orchestration import events_queue

    with user_errors():
        events = events_queue.load_events(files)
        message_ids = events_queue.send_events(target(endpoint), events)
    if as_json:
        print_json({"sent": len(message_ids), "message_ids": message_ids})
    else:
        out.print(f"sent {len(message_ids)} events")


@app.command()
def drain(
    retry_after: Annotated[
        int, typer.Option(min=0, max=43200, help="Seconds until failed records can be received again.")
    ] = 0,
    endpoint: Endpoint = None,
    as_json: AsJson = False,
) -> None:
    """Process what is queued through the event processor; failed records stay queued (three
    receives, then the DLQ). Exits 1 if any record failed."""
    from orchestration import events_queue

    with user_errors():
        report = events_queue.drain(target(endpoint), retry_after_s=retry_after)
    if as_json:
        print_json(report.as_dict())
    else:
        # message and event ids: see --json
        table = Results("event", "account", "outcome", "receives", "ms", "note", ids=("event", "account"))
        for r in report.records:
            colour = "green" if r.outcome == "processed" else "red"
            table.add_row(
                r.event_name or "?",
                r.account_id or "",
                f"[{colour}]{r.outcome}[/]",
                str(r.receive_count),
                f"{r.ms:.0f}",
                r.note,
            )
        out.print(table)
        summary = report.as_dict()
        out.print(
            f"{summary['processed']} processed, {summary['failed']} failed in {summary['invocations']}"
            f" invocations ({summary['seconds']} s, p99 {summary['p99_ms']} ms per event);"
            f" {summary['left_on_queue']} left on the queue, {summary['dead_letter']} in the DLQ"
        )
    if report.count("failed"):
        raise typer.Exit(1)
