"""``qrie suppressions``: accepted risks (qrie_lib.suppressions) — add, list, show, remove. Adding or
removing a rule starts the scan that moves its findings; ``--wait`` follows it."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from orchestration.cli_common import AsJson, Endpoint, Results, out, print_json, target, user_errors

app = typer.Typer(help="Suppressions (accepted risks) with an expiry.", no_args_is_help=True)
Wait = Annotated[bool, typer.Option(help="Follow the scan that moves the rule's findings.")]


@app.command("add")
def add(
    policy: Annotated[str, typer.Option(help="A catalogue policy id, or ALL.")],
    reason: Annotated[str, typer.Option(help="Why the risk is accepted.")],
    owner: Annotated[str, typer.Option(help="Whose risk it is.")],
    expires: Annotated[str, typer.Option(help="When it ends: an ISO date or UTC timestamp.")],
    account: Annotated[list[str] | None, typer.Option(help="An account id (repeatable).")] = None,
    ou_path: Annotated[
        list[str] | None, typer.Option(help="An OU path prefix, e.g. /root/dev/ (repeatable).")
    ] = None,
    arn_glob: Annotated[str | None, typer.Option(help="ARNs matching this glob (* and ?).")] = None,
    tag: Annotated[
        list[str] | None, typer.Option(help="A resource tag key=value (repeatable; any matches).")
    ] = None,
    everything: Annotated[
        bool, typer.Option("--everything", help="Policy ALL with no other criterion: every finding.")
    ] = False,
    endpoint: Endpoint = None,
    wait: Wait = False,
    as_json: AsJson = False,
) -> None:
    """Accept a risk until a date: matching findings become SUPPRESSED (kept, still evaluated)."""
    from qrie_lib import suppressions
    from qrie_lib.errors import InvalidInput
    from qrie_lib.stores import Stores

    aws = target(endpoint)
    with user_errors():
        tags = {}
        for pair in tag or []:
            key, equals, value = pair.partition("=")
            if not equals or not key:
                raise InvalidInput(f"tag: {pair!r} is not key=value")
            tags[key] = value
        request = {
            "policy_id": policy,
            "accounts": account or [],
            "ou_paths": ou_path or [],
            "arn_glob": arn_glob,
            "resource_tags": tags,
            "reason": reason,
            "owner": owner,
            "expires_at": expires,
            "everything": everything,
        }
        rule, arn = suppressions.add(aws, Stores.of(aws), request, suppressions.local_user())
    done(aws, {"suppression": rule.row(), "execution_arn": arn}, wait, as_json)


@app.command("list")
def listing(
    policy: Annotated[str | None, typer.Option(help="One policy id (or ALL).")] = None,
    status: Annotated[str | None, typer.Option(help="ACTIVE, EXPIRED or REMOVED.")] = None,
    endpoint: Endpoint = None,
    as_json: AsJson = False,
) -> None:
    """The suppression rules."""
    from qrie_lib import suppressions
    from qrie_lib.policies.registry import get_policy
    from qrie_lib.stores import Stores

    with user_errors():
        if policy not in (None, suppressions.ALL):
            get_policy(policy)  # UnknownPolicy (did you mean ...), rather than no rules
        rows = suppressions.listing(Stores.of(target(endpoint)), policy, status and status.upper())
    if as_json:
        print_json(rows)
        return
    table = Results("id", "policy", "status", "expires", "owner", "scope", "reason", ids=("id", "policy"))
    for r in rows:
        table.add_row(
            r["rule_id"], r["policy_id"], r["status"], r["expires_at"], r["owner"], scope(r), r["reason"]
        )
    out.print(table)


def scope(row: dict[str, Any]) -> str:
    parts = {k: row[k] for k in ("accounts", "ou_paths", "arn_glob", "resource_tags") if row[k]}
    return json.dumps(parts) if parts else "everything"


@app.command("show")
def show(rule_id: str, endpoint: Endpoint = None) -> None:
    """One rule and its audit trail (who changed it, when, before and after)."""
    from qrie_lib import suppressions
    from qrie_lib.stores import Stores

    with user_errors():
        print_json(suppressions.show(Stores.of(target(endpoint)), rule_id))


@app.command("remove")
def remove(rule_id: str, endpoint: Endpoint = None, wait: Wait = False, as_json: AsJson = False) -> None:
    """End a rule now: its findings that still violate become ACTIVE (in the scan it starts)."""
    from qrie_lib import suppressions
    from qrie_lib.stores import Stores

    aws = target(endpoint)
    with user_errors():
        rule, arn = suppressions.remove(aws, Stores.of(aws), rule_id, suppressions.local_user())
    done(aws, {"suppression": rule.row(), "execution_arn": arn}, wait, as_json)


def done(aws: Any, result: dict[str, Any], wait: bool, as_json: bool) -> None:
    from qrie_lib import executions

    arn = result["execution_arn"]
    if arn and wait:
        with user_errors():
            result["execution_status"] = executions.follow(aws, "scan", arn).status
    if as_json:
        print_json(result)
        return
    rule = result["suppression"]
    out.print(f"suppression [bold]{rule['rule_id']}[/] {rule['status']} (expires {rule['expires_at']})")
    if arn:
        out.print(f"scan {result.get('execution_status', 'started')}: {arn}")
