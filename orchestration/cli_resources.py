"""``qrie resources``: the inventory, as the last inventory (or event) left it: what ``qrie
inventory`` found. Read an account's partitions ("{account}_{service}") a bounded page at a time,
through the view the API's ``GET /resources`` serves (qrie_lib.api_models.resources_page)."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestration.cli_common import Endpoint, Results, console, out, print_json, target, user_errors

if TYPE_CHECKING:
    from qrie_lib.stores import Stores

PAGE = 200  # rows per read: what one call holds, whatever the inventory's size
CSV_FIELDS = ("arn", "account_id", "service", "resource_type", "region", "describe_time", "last_seen_at")


class ResourcesFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def resources(
    account: Annotated[
        str | None, typer.Option(help="One account id (default: every onboarded one).")
    ] = None,
    service: Annotated[str | None, typer.Option(help="One service, e.g. s3.")] = None,
    resource_type: Annotated[
        str | None, typer.Option("--type", help="One type, e.g. AWS::S3::Bucket.")
    ] = None,
    region: Annotated[str | None, typer.Option(help="One region, or global.")] = None,
    output_format: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    endpoint: Endpoint = None,
) -> None:
    """The inventory's resources, filtered by account, service, type and region."""
    from qrie_lib.errors import InvalidInput
    from qrie_lib.stores import Stores

    with user_errors():
        try:
            chosen = ResourcesFormat(output_format)
        except ValueError:
            raise InvalidInput(
                f"format: {output_format!r} is not one of {', '.join(ResourcesFormat)}"
            ) from None
        filters = checked_filters(account, service, resource_type, region)  # before any call
        stores = Stores.of(target(endpoint))
        accounts = [account] if account else [a.account_id for a in stores.accounts.list()]
        rows = (row for account_id in accounts for row in read(stores, account_id, filters))
        if chosen is ResourcesFormat.csv:
            write_csv(rows)
            return
        found = list(rows)
    if chosen is ResourcesFormat.json:
        print_json(found)
        return
    table = Results("resource", "type", "account", "region", "last seen", ids=("resource", "account"))
    for r in found:
        table.add_row(r["arn"], r["resource_type"], r["account_id"], r["region"], r["last_seen_at"] or "")
    out.print(table)
    console.print(f"{len(found)} resources in {len(accounts)} accounts")


def checked_filters(
    account: str | None, service: str | None, resource_type: str | None, region: str | None
) -> dict[str, Any]:
    """The filters as ``resources_page`` takes them; a bad one is InvalidInput (exit 2)."""
    from typing import Literal

    from pydantic import TypeAdapter, ValidationError

    from qrie_lib.api_models import partition_services
    from qrie_lib.errors import InvalidInput
    from qrie_lib.models import AccountId, Region

    checks = [("account", account, AccountId, "an account id (12 digits)")]
    checks.append(("region", region, Region | Literal["global"], "a region (e.g. eu-west-1) or global"))
    for name, value, kind, expected in checks:
        try:
            TypeAdapter(kind | None).validate_python(value)
        except ValidationError:
            raise InvalidInput(f"{name}: {value!r} is not {expected}") from None
    partition_services(service, resource_type)  # UnknownService for a service or type not collected
    return {"service": service, "resource_type": resource_type, "region": region}


def read(stores: Stores, account_id: str, filters: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One account's resources, a page at a time."""
    from qrie_lib.api_models import resources_page

    token = None
    while True:
        rows, token = resources_page(stores, account_id=account_id, token=token, limit=PAGE, **filters)
        yield from rows
        if token is None:
            return


def write_csv(rows: Iterator[dict[str, Any]]) -> None:
    """Rows as CSV on stdout as they are read (tags and configuration: see --format json)."""
    import csv
    import sys

    writer = csv.DictWriter(sys.stdout, CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
