"""``qrie onboarding``: the CloudFormation template a customer account deploys to be onboarded.

Synthesizes ``stacks.customer_stack.CustomerStack`` on the fly, so it needs the ``cdk`` extra
(aws-cdk-lib, which runs on Node.js); nothing is deployed and no AWS credentials are used.
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from typing import Annotated

import typer

from orchestration.cli_common import Endpoint, fail, target, user_errors

app = typer.Typer(help="Onboarding customer accounts.", no_args_is_help=True)


class Format(StrEnum):
    yaml = "yaml"
    json = "json"


@app.callback()
def onboarding() -> None:
    """Keeps ``template`` a subcommand when this app runs on its own (Typer collapses an app
    with a single command into that command)."""


@app.command()
def template(
    stackset: Annotated[
        bool,
        typer.Option(
            "--stackset",
            help="For service-managed StackSets across several regions: the global IAM role is "
            "created only in the RoleRegion parameter's region.",
        ),
    ] = False,
    operator_account_id: Annotated[
        str | None, typer.Option(help="Pre-fill the OperatorAccountId parameter.")
    ] = None,
    account_id: Annotated[
        str | None,
        typer.Option(
            help="An onboarded account (qrie accounts add): pre-fills its own ExternalId, read from "
            "the accounts table (with --endpoint or --stack-name's credentials)."
        ),
    ] = None,
    external_id: Annotated[str | None, typer.Option(help="Pre-fill the ExternalId parameter.")] = None,
    event_bus_arn: Annotated[
        str | None,
        typer.Option(help="Pre-fill OperatorEventBusArn (the operator stack's EventBusArn output)."),
    ] = None,
    output_format: Annotated[Format, typer.Option("--format", help="yaml or json.")] = Format.yaml,
    endpoint: Endpoint = None,
) -> None:
    """Print the customer onboarding CloudFormation template on stdout.

    Each account has its own ExternalId, generated when it is onboarded (``qrie accounts add``);
    ``--account-id`` pre-fills it. A StackSet shares one value across the organisation: generate
    one for it and keep it (it is the organisation's, never a public default)."""
    from qrie_lib.external_ids import check_external_id

    if account_id and external_id:
        raise fail("InvalidInput", "give --account-id or --external-id, not both", 2)
    try:
        check_external_id(external_id)
    except ValueError as exc:
        raise fail("InvalidExternalId", str(exc), 2) from None
    if account_id:
        external_id = onboarded_external_id(account_id, endpoint)
    # The CDK runs on Node.js through jsii, which warns on stderr about old Node versions.
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from stacks.customer_stack import ParameterDefaults  # the CDK loads only for this command
    from stacks.templates import customer_template, to_yaml

    document = customer_template(
        stackset=stackset,
        defaults=ParameterDefaults(
            operator_account_id=operator_account_id, external_id=external_id, event_bus_arn=event_bus_arn
        ),
    )
    text = to_yaml(document) if output_format is Format.yaml else json.dumps(document, indent=2)
    typer.echo(text.rstrip("\n"))


def onboarded_external_id(account_id: str, endpoint: str | None) -> str:
    import re

    from qrie_lib.stores import Stores

    if not re.fullmatch(r"\d{12}", account_id):
        raise fail("InvalidInput", f"--account-id {account_id!r}: an account id is 12 digits", 2)
    with user_errors():
        account = Stores.of(target(endpoint)).accounts.get(account_id)
    if account is None:
        raise fail("UnknownAccount", f"{account_id} is not onboarded: qrie accounts add {account_id}", 2)
    if not account.external_id:
        raise fail("NoExternalId", f"{account_id} has no ExternalId: give it one with qrie accounts add", 1)
    return account.external_id
