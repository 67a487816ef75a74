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
    external_id: Annotated[str | None, typer.Option(help="Pre-fill the ExternalId parameter.")] = None,
    event_bus_arn: Annotated[
        str | None,
        typer.Option(help="Pre-fill OperatorEventBusArn (the operator stack's EventBusArn output)."),
    ] = None,
    output_format: Annotated[Format, typer.Option("--format", help="yaml or json.")] = Format.yaml,
) -> None:
    """Print the customer onboarding CloudFormation template on stdout."""
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
