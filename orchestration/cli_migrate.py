"""``qrie migrate``: move findings stored by an earlier version to this version's keys
(qrie_lib.migrations), then recount the counters."""

from __future__ import annotations

from orchestration.cli_common import AsJson, Endpoint, console, out, print_json, target, user_errors


def migrate(endpoint: Endpoint = None, as_json: AsJson = False) -> None:
    """Bring stored findings up to this version (safe to run again; run it while no scan runs).

    Findings of AWS managed policies (arn:aws:iam::aws:policy/...) become one per account."""
    from qrie_lib import migrations

    with user_errors(), console.status("migrating findings..."):
        report = migrations.migrate(target(endpoint))
    counters = report.counters
    if as_json:
        fields = {k: v for k, v in report.__dict__.items() if k != "exported"}
        print_json(fields | {"counters": counters.__dict__ if counters else None})
        return
    for line in report.moved:
        out.print(f"moved {line}")
    for key in report.superseded:
        out.print(f"dropped {key} (its account's finding was already written under its new key)")
    out.print(
        f"{len(report.moved)} findings moved ({report.history_items} history items), "
        f"{len(report.superseded)} superseded; counters: "
        f"{counters.rewritten if counters else 0} rows rewritten"
    )
    if report.ordered:
        console.print(f"{report.ordered} findings placed in the severity order (critical first)")
    if report.archived:
        out.print(f"{report.archived} Security Hub records archived under their old ids")
    for error in report.archive_errors:
        console.print(f"[yellow]not archived in Security Hub[/] (archive it there by hand): {error}")
    if report.rescan:
        out.print(f"the next scan evaluates {', '.join(report.rescan)} in every account again")
