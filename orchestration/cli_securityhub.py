"""``qrie securityhub export``: send findings to the operator account's Security Hub now, as the
scan's Report step does when ``QRIE_SECURITYHUB_EXPORT`` is on (qrie_lib.exports.securityhub)."""

from __future__ import annotations

import typer

from orchestration.cli_common import AsJson, Endpoint, console, out, print_json, target, user_errors

app = typer.Typer(help="Findings in AWS Security Hub (ASFF).", no_args_is_help=True)


@app.command("export")
def export(endpoint: Endpoint = None, as_json: AsJson = False) -> None:
    """Import every finding that changed since its last export into the Security Hub of the
    account the CLI targets (BatchImportFindings, 100 a call): new and changed ones ACTIVE,
    resolved ones ARCHIVED. Exits 1 when some were refused (they go again next time)."""
    from qrie_lib.exports.securityhub import SecurityHubExport
    from qrie_lib.stores import Stores

    aws = target(endpoint)
    with user_errors(), console.status("exporting findings..."):
        result = SecurityHubExport(aws, Stores.of(aws)).export_all(lambda: 10**9).as_dict()
    if as_json:
        print_json(result)
    else:
        out.print(
            f"sent {result['sent']} findings ({result['archived']} archived), "
            f"{result['unchanged']} unchanged, {result['failed']} refused, in {result['calls']} calls"
        )
    if result["failed"]:
        raise typer.Exit(1)
