"""``qrie schedules``: the schedules a deployment (or a ``qrie local up`` endpoint) has, with
their next fire times computed from their expressions."""

from __future__ import annotations

import typer

from orchestration.cli_common import AsJson, Endpoint, Results, out, print_json, target, user_errors

app = typer.Typer(help="Schedules (EventBridge Scheduler) and when they fire next.", no_args_is_help=True)


@app.command("list")
def schedules_list(endpoint: Endpoint = None, as_json: AsJson = False) -> None:
    """Qrie's schedules on the endpoint (or in AWS) and their next fire times (UTC)."""
    from orchestration.local_scheduler import describe, utc_now

    aws = target(endpoint)
    with user_errors():
        scheduler = aws.client("scheduler")
        found = [
            scheduler.get_schedule(Name=s["Name"])
            for page in scheduler.get_paginator("list_schedules").paginate(NamePrefix="qrie-")
            for s in page["Schedules"]
        ]
    rows = describe(
        utc_now(),
        [
            (
                s["Name"],
                s["ScheduleExpression"],
                s.get("ScheduleExpressionTimezone", "UTC"),
                s["Target"]["Arn"],
            )
            for s in found
        ],
    )
    if as_json:
        print_json(rows)
        return
    table = Results("schedule", "expression", "time zone", "next fire", "target", ids=("schedule", "target"))
    for r in rows:
        table.add_row(r["name"], r["expression"], r["timezone"], r["next_fire"], r["target"])
    out.print(table)
