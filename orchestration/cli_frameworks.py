"""``qrie frameworks list``: the compliance frameworks of the registry (qrie_lib/frameworks), each
with its controls and the catalogue's policies that cite it; ``qrie compliance ID`` reports one."""

from __future__ import annotations

import typer

from orchestration.cli_common import AsJson, Results, out, print_json

app = typer.Typer(help="Compliance frameworks (qrie compliance reports one).", no_args_is_help=True)


@app.command("list")
def frameworks_list(as_json: AsJson = False) -> None:
    """The frameworks, their controls (automated ones) and the policies citing them."""
    from qrie_lib.frameworks.registry import FRAMEWORKS

    rows = [
        {
            "framework_id": f.id,
            "name": f.name,
            "version": f.version,
            "published": f.published,
            "controls": len(f.controls),
            "automated_controls": sum(c.automated for c in f.controls),
            "policies": len({p for ids in f.policies_by_control.values() for p in ids}),
        }
        for f in sorted(FRAMEWORKS.values(), key=lambda f: f.id)
    ]
    if as_json:
        print_json(rows)
        return
    table = Results("framework", "name", "version", "controls", "automated", "policies", ids=("framework",))
    for r in rows:
        table.add_row(
            r["framework_id"],
            r["name"],
            r["version"],
            str(r["controls"]),
            str(r["automated_controls"]),
            str(r["policies"]),
        )
    out.print(table)
