"""The ``qrie`` command line."""

from __future__ import annotations

import json
import signal
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestration import executions
from qrie_lib.aws import Aws
from qrie_lib.models import Account, AccountStatus
from qrie_lib.settings import Settings
from qrie_lib.stores.accounts import AccountsStore

app = typer.Typer(help="Qrie: cloud security posture for many AWS accounts.", no_args_is_help=True)
local_app = typer.Typer(help="The embedded runtime as a local AWS endpoint.", no_args_is_help=True)
accounts_app = typer.Typer(help="Onboarded customer accounts.", no_args_is_help=True)
app.add_typer(local_app, name="local")
app.add_typer(accounts_app, name="accounts")
console = Console(stderr=True)

Endpoint = Annotated[str | None, typer.Option(help="A local endpoint (qrie local up), e.g. http://127.0.0.1:4566.")]
StackName = Annotated[str | None, typer.Option(help="A deployed operator stack (uses your AWS credentials).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def target(endpoint: str | None) -> Aws:
    return Aws(Settings(endpoint_url=endpoint) if endpoint else Settings())


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def progress_bar(label: str) -> Progress:
    return Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True
    )


def run_and_follow(aws: Aws, kind: str, request: dict[str, Any], stack_name: str | None, wait: bool,
                   as_json: bool) -> None:
    arn = executions.start(aws, kind, request, stack_name)
    console.print(f"started {kind} execution [bold]{arn}[/]")
    if not wait:
        if as_json:
            print_json({"execution_arn": arn})
        return
    with progress_bar(f"{kind} items") as bar:
        task = bar.add_task(kind, total=None)
        outcome = executions.follow(aws, kind, arn, lambda done, total: bar.update(task, completed=done, total=total))
    result = {**outcome.as_dict(), "run": executions.run_summary(aws, kind, arn)}
    if as_json:
        print_json(result)
    else:
        show_run(kind, result)
    if not outcome.succeeded:
        raise typer.Exit(1)


def show_run(kind: str, result: dict[str, Any]) -> None:
    colour = "green" if result["execution_status"] == "SUCCEEDED" else "red"
    console.print(f"{kind}: [{colour}]{result['execution_status']}[/]")
    if result.get("error"):
        console.print(f"  {result['error']}: {result.get('cause')}")
    run = result.get("run") or {}
    if run.get("resources_by_type"):
        table = Table("resource type", "count")
        for resource_type, count in run["resources_by_type"].items():
            table.add_row(resource_type, str(count))
        console.print(table)
    for failed in run.get("failed_items", []):
        console.print(f"  [red]failed[/] {failed['account_id']}/{failed['service']}/{failed['region']}: "
                      f"{failed['error']}: {failed['cause']}")


@app.command()
def demo(
    accounts: Annotated[int, typer.Option(min=1, max=200, help="Simulated customer accounts.")] = 3,
    as_json: AsJson = False,
) -> None:
    """Run the whole pipeline on a simulated organisation, embedded (no AWS account, no Docker)."""
    from orchestration.demo import run_demo

    with progress_bar("inventory items") as bar:
        task = bar.add_task("inventory", total=None)
        result = run_demo(
            accounts, say=console.print, progress=lambda d, t: bar.update(task, completed=d, total=t)
        )
    if as_json:
        print_json(result)
        return
    show_run("inventory", {"execution_status": result["inventory"]["execution_status"],
                           "run": result["inventory"]})
    console.print(f"customer API calls: {result['inventory']['api_calls']}")


@app.command()
def inventory(
    service: Annotated[str, typer.Option(help="all, or one service (s3, ec2, iam).")] = "all",
    account: Annotated[str | None, typer.Option(help="One account id.")] = None,
    region: Annotated[str | None, typer.Option(help="One region (regional services).")] = None,
    endpoint: Endpoint = None,
    stack_name: StackName = None,
    wait: Annotated[bool, typer.Option(help="Follow the execution to its end.")] = True,
    as_json: AsJson = False,
) -> None:
    """Start an inventory execution and follow it; exits non-zero if it failed."""
    request: dict[str, Any] = {"service": service}
    if account:
        request["account_id"] = account
    if region:
        request["region"] = region
    run_and_follow(target(endpoint), "inventory", request, stack_name, wait, as_json)


@local_app.command("up")
def local_up(
    port: Annotated[int, typer.Option(help="Port of the local endpoint.")] = 4566,
    accounts: Annotated[int, typer.Option(min=0, max=200, help="Simulated customer accounts.")] = 3,
    simulated_org: Annotated[bool, typer.Option(help="Seed the simulated organisation.")] = True,
) -> None:
    """Keep the embedded runtime running as a local AWS endpoint, until Ctrl-C."""
    from orchestration.runtime import serve
    from orchestration.simulated_org import SimulatedOrg

    server, aws, machines = serve(Settings(), port)
    if simulated_org and accounts:
        SimulatedOrg(aws, accounts).create()
    console.print(f"local AWS endpoint on [bold]http://127.0.0.1:{port}[/]")
    for name, arn in machines.items():
        console.print(f"  {name}: {arn}")
    console.print(f"try: qrie inventory --endpoint http://127.0.0.1:{port}")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()  # type: ignore[attr-defined]


@accounts_app.command("add")
def accounts_add(
    account_id: str,
    name: Annotated[str, typer.Option()] = "",
    regions: Annotated[str, typer.Option(help="Comma-separated regions.")] = "",
    external_id: Annotated[str | None, typer.Option(help="The ExternalId its role requires.")] = None,
    endpoint: Endpoint = None,
) -> None:
    """Onboard an account (its read-only role must exist; see the onboarding template)."""
    aws = target(endpoint)
    try:
        account = Account(
            account_id=account_id, name=name, status=AccountStatus.ACTIVE,
            regions=[r for r in regions.split(",") if r], external_id=external_id,
        )
    except ValueError as exc:
        console.print(f"[red]InvalidInput[/]: {exc}")
        raise typer.Exit(2) from None
    AccountsStore(aws.client("dynamodb"), aws.settings.accounts_table).put(account)
    console.print(f"onboarded {account_id}")


@accounts_app.command("list")
def accounts_list(endpoint: Endpoint = None, as_json: AsJson = False) -> None:
    """List onboarded accounts."""
    aws = target(endpoint)
    accounts = AccountsStore(aws.client("dynamodb"), aws.settings.accounts_table).list()
    if as_json:
        print_json([a.model_dump() for a in accounts])
        return
    table = Table("account", "name", "status", "OU", "regions")
    for a in accounts:
        table.add_row(a.account_id, a.name, a.status, a.ou_path, ",".join(a.regions))
    console.print(table)
