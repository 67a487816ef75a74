"""``qrie trends`` and ``qrie findings history``: what changed over time, read from the findings'
history (qrie_lib.history) without a table scan."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestration.cli_common import AsJson, Endpoint, Results, out, print_json, target, user_errors


def trends(
    days: Annotated[int, typer.Option(help="Days back, today included (1-366).")] = 30,
    by: Annotated[str, typer.Option(help="severity, policy or account.")] = "severity",
    endpoint: Endpoint = None,
    as_json: AsJson = False,
) -> None:
    """Findings opened, resolved and open per day; mean and p90 time to resolve."""
    from qrie_lib import history
    from qrie_lib.models import parse_input
    from qrie_lib.stores import Stores

    with user_errors():
        q = parse_input(history.TrendsQuery, {"days": days, "by": by})
        report = history.trends(Stores.of(target(endpoint)), q.days, q.by)
    if as_json:
        print_json(report)
        return
    table = Results(
        q.by, "opened", "resolved", "open now", f"open {report['days'][0]}", "mean h", "p90 h", ids=(q.by,)
    )
    for value, s in report["series"].items():
        ttr = report["time_to_resolve"][value]
        table.add_row(
            value,
            str(sum(s["opened"])),
            str(sum(s["resolved"])),
            str(s["open"][-1]),
            str(s["open"][0]),
            "-" if ttr["mean_hours"] is None else str(ttr["mean_hours"]),
            "-" if ttr["p90_hours"] is None else f"≤{ttr['p90_hours']:g}",
        )
    out.print(table)


def history(
    arn: Annotated[str, typer.Argument(help="The resource ARN.")],
    policy: Annotated[str, typer.Argument(help="The policy id.")],
    account: Annotated[
        str | None,
        typer.Option(help="The account (required for an AWS managed policy, attached in many accounts)."),
    ] = None,
    endpoint: Endpoint = None,
    as_json: AsJson = False,
) -> None:
    """Every state change of one finding, with its time and cause."""
    from qrie_lib import history as finding_history
    from qrie_lib.models import parse_input
    from qrie_lib.stores import Stores

    with user_errors():
        q = parse_input(finding_history.HistoryQuery, {"arn": arn, "policy": policy, "account": account})
        rows = finding_history.finding_history(Stores.of(target(endpoint)), q)
    if as_json:
        print_json(rows)
        return
    table = Results("#", "at", "change", "state", "severity", "cause", "detail")
    for r in rows:
        detail = r["reason"] or r["suppression_id"] or ""
        table.add_row(
            str(r["version"]), r["at"], r["kind"], r["state"], str(r["severity"]), r["cause"], detail
        )
    out.print(table)
