"""``qrie accounts``: onboard, list, sync from AWS Organizations, and remove customer accounts."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from orchestration.cli_common import (
    AsJson,
    Endpoint,
    Results,
    console,
    fail,
    out,
    print_json,
    target,
    user_errors,
)

app = typer.Typer(help="Onboarded customer accounts.", no_args_is_help=True)

ExternalIdOption = Annotated[
    str | None, typer.Option(help="The ExternalId its role requires (default: a new one).")
]


@app.command("add")
def add(
    account_id: str,
    name: Annotated[str | None, typer.Option()] = None,
    regions: Annotated[str | None, typer.Option(help="Comma-separated regions.")] = None,
    ou_path: Annotated[str | None, typer.Option(help="Its OU path, e.g. /root/prod/.")] = None,
    tags: Annotated[str | None, typer.Option(help="Comma-separated key=value pairs.")] = None,
    external_id: ExternalIdOption = None,
    update: Annotated[
        bool, typer.Option("--update", help="Change an onboarded account: only the fields given.")
    ] = False,
    endpoint: Endpoint = None,
) -> None:
    """Onboard an account (its read-only role must exist; see the onboarding template). An account
    onboarded already is refused unless ``--update``, which changes only the fields given; a
    removed one is onboarded anew."""
    from qrie_lib.errors import AccountExists
    from qrie_lib.external_ids import new_external_id
    from qrie_lib.models import Account, AccountStatus, parse_input
    from qrie_lib.stores.accounts import AccountsStore

    aws = target(endpoint)
    store = AccountsStore(aws.client("dynamodb"), aws.settings.accounts_table)
    with user_errors():
        given = {
            "name": name,
            "regions": None if regions is None else [r for r in regions.split(",") if r],
            "ou_path": ou_path,
            "tags": None if tags is None else parse_tags(tags),
            "external_id": external_id,
        }
        given = {k: v for k, v in given.items() if v is not None}
        parse_input(Account, {"account_id": account_id, **given})  # bad input writes nothing
        existing = store.get(account_id)
        if existing and update:
            store.put(parse_input(Account, existing.model_dump() | given))
            console.print(f"updated {account_id}: {', '.join(sorted(given)) or 'nothing to change'}")
            return
        if existing and existing.status is not AccountStatus.REMOVED:
            raise AccountExists(
                f"account {account_id} is onboarded already; --update changes the fields you give"
            )
        generated = "external_id" not in given
        new = {"account_id": account_id, "external_id": new_external_id()} | given
        account = (store.put if existing else store.add)(parse_input(Account, new))
    console.print(f"onboarded {account_id}")
    if generated:  # a result: the customer's role must require it
        out.print(f"ExternalId (its role's trust policy must require it): {account.external_id}")


def parse_tags(text: str) -> dict[str, str]:
    """``k=v,k2=v2`` as a dict; InvalidInput for a pair without ``=`` or a key."""
    from qrie_lib.errors import InvalidInput

    tags = {}
    for pair in filter(None, text.split(",")):
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise InvalidInput(f"tags: {pair!r} is not key=value")
        tags[key.strip()] = value.strip()
    return tags


@app.command("list")
def list_accounts(
    show_external_ids: Annotated[
        bool, typer.Option("--show-external-ids", help="Print each ExternalId in clear (a secret).")
    ] = False,
    endpoint: Endpoint = None,
    as_json: AsJson = False,
) -> None:
    """List onboarded accounts; ExternalIds masked unless --show-external-ids."""
    from qrie_lib.stores.accounts import AccountsStore

    aws = target(endpoint)
    with user_errors():
        accounts = AccountsStore(aws.client("dynamodb"), aws.settings.accounts_table).list()
    rows = [a.model_dump() for a in accounts]
    if not show_external_ids:
        rows = [r | {"external_id": masked(r["external_id"])} for r in rows]
    if as_json:
        print_json(rows)
        return
    table = Results("account", "name", "status", "OU", "regions", "ExternalId", ids=("account",))
    for r in rows:
        cells = (r["name"], r["status"], r["ou_path"], ",".join(r["regions"]), r["external_id"])
        table.add_row(r["account_id"], *(c or "" for c in cells))
    out.print(table)


def masked(external_id: str | None) -> str | None:
    """An ExternalId is the confused-deputy secret: printed, only its last four characters, so
    two can be told apart without either being copied from a screen or a log."""
    if not external_id:
        return external_id
    return "****" + (external_id[-4:] if len(external_id) >= 16 else "")


@app.command("sync")
def sync(
    external_id: Annotated[
        str | None,
        typer.Option(
            help="The organisation-wide ExternalId of the StackSet's roles (default: QRIE_EXTERNAL_ID)."
        ),
    ] = None,
    endpoint: Endpoint = None,
    as_json: AsJson = False,
) -> None:
    """Accounts from AWS Organizations, through the sync task (as the daily schedule runs it):
    onboard new ACTIVE accounts whose role answers, mark closed and departed ones, update OU paths."""
    from qrie_lib.accounts_sync import SyncRequest
    from qrie_lib.models import parse_input
    from tasks.registry import BY_NAME

    aws = target(endpoint)
    with user_errors():
        request = parse_input(SyncRequest, {"external_id": external_id} if external_id else {})
        answer = aws.client("lambda").invoke(
            FunctionName=BY_NAME["AccountsSync"].function_name,
            Payload=json.dumps(request.model_dump(exclude_none=True)),
        )
        report = json.loads(answer["Payload"].read() or b"{}")
    if answer.get("FunctionError"):
        raise fail(report.get("errorType", "SyncFailed"), report.get("errorMessage", "the sync failed"), 1)
    if as_json:
        print_json(report)
        return
    show_sync(report)


def show_sync(report: dict[str, Any]) -> None:
    out.print(f"organisation {report['organization_id']}")
    table = Results("account", "outcome", "detail", ids=("account",))
    for account in report["onboarded"]:
        table.add_row(account, "[green]onboarded[/]", "")
    for p in report["pending"]:
        table.add_row(p["account_id"], "[yellow]pending[/]", p["reason"])
    for account in report["deferred"]:
        table.add_row(account, "deferred", "over this call's probe budget: the next sync tries it")
    for m in report["moved"]:
        table.add_row(m["account_id"], "moved", f"{m['from']} → {m['to']}")
    for outcome in ("suspended", "reactivated", "removed"):
        for account in report[outcome]:
            table.add_row(account, outcome, "")
    for s in report["skipped"]:
        table.add_row(s["account_id"], "skipped", s["reason"])
    out.print(table)
    if report["findings_out_of_scope"]:
        out.print(f"{report['findings_out_of_scope']} findings resolved as OUT_OF_SCOPE (moved accounts)")


@app.command("remove")
def remove(
    account_id: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    endpoint: Endpoint = None,
    as_json: AsJson = False,
) -> None:
    """Offboard an account: its findings resolve as ACCOUNT_REMOVED, its resources are deleted,
    and it is marked REMOVED (a sync does not onboard it again; ``accounts add`` does)."""
    from pydantic import TypeAdapter, ValidationError

    from qrie_lib.errors import InvalidInput, UnknownAccount
    from qrie_lib.models import AccountId
    from qrie_lib.offboarding import remove_account
    from qrie_lib.stores import Stores

    with user_errors():
        try:
            TypeAdapter(AccountId).validate_python(account_id)
        except ValidationError:
            raise InvalidInput(f"account: {account_id!r} is not an account id (12 digits)") from None
        stores = Stores.of(target(endpoint))
        if stores.accounts.get(account_id) is None:
            raise UnknownAccount(f"account {account_id} is not onboarded")
        if not yes:
            typer.confirm(
                f"remove {account_id}: resolve its findings and delete its inventory?", abort=True, err=True
            )
        removed = remove_account(stores, account_id)
    if as_json:
        print_json(removed.__dict__)
        return
    out.print(
        f"removed {account_id}: {removed.findings_resolved} findings resolved (ACCOUNT_REMOVED), "
        f"{removed.resources_deleted} resources deleted"
    )
