"""The ``qrie`` command line.

Only typer, rich and ``cli_common`` load at import: ``qrie --help`` and the read-only commands
start fast, and moto and the local runtime load only inside the commands that run them."""

from __future__ import annotations

import json
import signal
import socket
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestration import (
    cli_accounts,
    cli_api,
    cli_counters,
    cli_events,
    cli_frameworks,
    cli_notifications,
    cli_onboarding,
    cli_schedules,
    cli_securityhub,
    cli_suppressions,
)
from orchestration.cli_common import (
    AsJson,
    Endpoint,
    Results,
    StackName,
    console,
    fail,
    out,
    print_json,
    progress_bar,
    target,
    user_errors,
)
from orchestration.cli_compliance import compliance
from orchestration.cli_migrate import migrate
from orchestration.cli_resources import resources
from orchestration.cli_trends import history, trends

if TYPE_CHECKING:
    from qrie_lib.aws import Aws

app = typer.Typer(help="Qrie: cloud security posture for many AWS accounts.", no_args_is_help=True)
local_app = typer.Typer(help="The embedded runtime as a local AWS endpoint.", no_args_is_help=True)
policies_app = typer.Typer(help="The policy catalogue and launched policies.", no_args_is_help=True)
app.add_typer(local_app, name="local")
app.add_typer(cli_accounts.app, name="accounts")
app.add_typer(policies_app, name="policies")
app.add_typer(cli_onboarding.app, name="onboarding")
app.add_typer(cli_api.app, name="api")
app.command("console")(cli_api.console_command)
app.add_typer(cli_events.app, name="events")
app.add_typer(cli_notifications.app, name="notifications")
app.add_typer(cli_schedules.app, name="schedules")
app.command("compliance")(compliance)
app.add_typer(cli_frameworks.app, name="frameworks")
app.command("resources")(resources)
app.add_typer(cli_suppressions.app, name="suppressions")
app.add_typer(cli_counters.app, name="counters")
app.add_typer(cli_securityhub.app, name="securityhub")
app.command("trends")(trends)
findings_app = typer.Typer(help="Findings, and one finding's history.")
findings_app.command("history")(history)
app.add_typer(findings_app, name="findings")
app.command("migrate")(migrate)


def print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        typer.echo(f"qrie {version('qrie')}")
        raise typer.Exit()


@app.callback()
def qrie(
    version: Annotated[
        bool, typer.Option("--version", callback=print_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Qrie: cloud security posture for many AWS accounts."""


def run_and_follow(
    aws: Aws, kind: str, request: dict[str, Any], stack_name: str | None, wait: bool, as_json: bool
) -> None:
    """Start an execution and, with ``wait``, follow it; exits 1 if it failed (2 if it refused its
    input), naming the error in one line. A run that succeeded with some failed items, or was
    skipped (another inventory holds the lease), exits 0 with a warning: what could run did, and
    each failure is listed with its reason (the run alarms, not the exit code, watch their share)."""
    from qrie_lib import executions

    with user_errors():
        arn = executions.start(aws, kind, request, stack_name)
        console.print(f"started {kind} execution [bold]{arn}[/]")
        if not wait:
            if as_json:
                print_json({"execution_arn": arn})
            return
        with progress_bar(f"{kind} accounts") as bar:
            task = bar.add_task(kind, total=None)
            outcome = executions.follow(
                aws, kind, arn, lambda done, total: bar.update(task, completed=done, total=total)
            )
        result = {**outcome.as_dict(), "run": executions.run_summary(aws, kind, arn)}
    result["cause"] = readable_cause(result.get("cause"))
    if as_json:
        print_json(result)
    else:
        show_run(kind, result)
    status = (result.get("run") or {}).get("status")
    if outcome.succeeded and status in WARNED:
        console.print(f"[yellow]warning[/]: {kind} run {status}: {result['run'].get('message')}")
    if not outcome.succeeded:
        error = result.get("error") or result["execution_status"]
        cause = result["cause"] or f"{kind} execution {result['execution_status']}"
        raise fail(error, cause, 2 if error == "InvalidInput" else 1)


WARNED = ("SUCCEEDED_WITH_FAILURES", "SKIPPED")  # exit 0 with a warning (qrie_lib.models.RunStatus)


def readable_cause(cause: str | None) -> str | None:
    """A Lambda task's failure reaches the execution as the Lambda error payload: its message."""
    try:
        payload = json.loads(cause or "")
    except json.JSONDecodeError:
        return cause
    return payload.get("errorMessage", cause) if isinstance(payload, dict) else cause


def port_in_use(port: int) -> str | None:
    """Why 127.0.0.1:``port`` cannot be listened on, or None (checked before the server starts:
    its own bind fails in a thread, where nobody would hear of it)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.strerror
    return None


def show_run(kind: str, result: dict[str, Any]) -> None:
    """A run's outcome, on stdout (what ``--json`` prints, for people)."""
    run = result.get("run") or {}
    status = run.get("status") or result["execution_status"]  # the run's own outcome when it has one
    colour = "yellow" if status in WARNED else "green" if status == "SUCCEEDED" else "red"
    out.print(f"{kind}: [{colour}]{status}[/]")
    if run.get("resources_by_type"):
        table = Results("resource type", "count", ids=("resource type",))
        for resource_type, count in run["resources_by_type"].items():
            table.add_row(resource_type, str(count))
        out.print(table)
    if run.get("by_policy"):
        table = Results("policy", "evaluated", "new", "resolved", "reopened", "active", ids=("policy",))
        for policy_id, c in run["by_policy"].items():
            table.add_row(
                policy_id, *(str(c[k]) for k in ("evaluated", "new", "resolved", "reopened", "active"))
            )
        out.print(table)
    if run.get("changes"):
        show_changes(run["changes"])
    for failed in run.get("failed_items", []):
        where = "/".join(str(failed[k]) for k in ("account_id", "service", "region") if k in failed)
        out.print(f"  [red]failed[/] {where}: {failed['error']}: {failed['cause']}")


def show_changes(changes: dict[str, dict[str, int | None]]) -> None:
    """What a scan changed, by severity (``qrie_lib.scan.changes``); unchanged: still open as before."""
    kinds = ("opened", "resolved", "suppressed", "unchanged")
    table = Results("findings", *kinds)  # rows: severities
    for name, counts in changes.items():
        table.add_row(name, *("-" if counts[k] is None else str(counts[k]) for k in kinds))
    out.print(table)


@app.command()
def demo(
    accounts: Annotated[int, typer.Option(min=1, max=200, help="Simulated customer accounts.")] = 3,
    as_json: AsJson = False,
) -> None:
    """Run the whole pipeline on a simulated organisation, embedded (no AWS account, no Docker)."""
    from orchestration.demo import run_demo

    with progress_bar("inventory accounts") as bar:
        task = bar.add_task("inventory", total=None)
        result = run_demo(
            accounts, say=console.print, progress=lambda d, t: bar.update(task, completed=d, total=t)
        )
    if as_json:
        print_json(result)
        return
    show_demo(result)


def show_demo(result: dict[str, Any]) -> None:
    """The demo's summary on stdout, then what to try next on stderr (guidance, not results)."""
    from orchestration.demo import NEXT_STEPS
    from qrie_lib.policies.base import band
    from qrie_lib.policies.registry import CATALOGUE

    show_run(
        "inventory", {"execution_status": result["inventory"]["execution_status"], "run": result["inventory"]}
    )
    out.print(f"customer API calls: {result['inventory']['api_calls']}")
    scan = result["scan"]
    findings = ", ".join(f"{n} {state}" for state, n in scan["findings"].items())
    out.print(f"scan: {scan['execution_status']}; findings: {findings}")
    table = Results("severity", "policy", "active findings", ids=("policy",))
    by_severity = sorted(scan["by_policy"].items(), key=lambda kv: (-CATALOGUE[kv[0]].severity, kv[0]))
    for policy_id, n in by_severity:  # launched with the catalogue's severities
        severity = CATALOGUE[policy_id].severity
        table.add_row(f"{severity} {band(severity)}", policy_id, str(n))
    out.print(table)
    events = result["events"]
    out.print(
        f"events: {events['processed']} processed, {events['failed']} failed; findings opened "
        f"{events['findings_opened']}, resolved {events['findings_resolved']};"
        f" p99 {events['p99_ms']} ms per event"
    )
    for change in events["changes"]:
        out.print(f"  {change['change']} ({', '.join(change['events'])})")
        for policy in change["opened"]:
            out.print(f"    [red]opened[/]   {policy}")
        for policy in change["resolved"]:
            out.print(f"    [green]resolved[/] {policy}")
    console.print("\n[bold]Next[/] (the demo kept nothing; these keep a Qrie running):", highlight=False)
    width = max(len(command) for command, why in NEXT_STEPS if why)
    for command, why in NEXT_STEPS:
        console.print(
            f"  {command.ljust(width)}  # {why}" if why else f"  {command}", highlight=False, markup=False
        )


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
    from qrie_lib.inventory import ValidInventoryRequest
    from qrie_lib.models import parse_input

    request: dict[str, Any] = {"service": service}
    if account:
        request["account_id"] = account
    if region:
        request["region"] = region
    with user_errors():
        checked_account(account)
        parse_input(ValidInventoryRequest, request)  # refused here rather than by a failed execution
    run_and_follow(target(endpoint), "inventory", request, stack_name, wait, as_json)


@local_app.command("up")
def local_up(
    port: Annotated[int, typer.Option(help="Port of the local endpoint.")] = 4566,
    accounts: Annotated[int, typer.Option(min=0, max=200, help="Simulated customer accounts.")] = 3,
    simulated_org: Annotated[bool, typer.Option(help="Seed the simulated organisation.")] = True,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Where the operator state is kept (default: $XDG_DATA_HOME/qrie)."),
    ] = None,
    ephemeral: Annotated[bool, typer.Option("--ephemeral", help="Keep no state: all in memory.")] = False,
    customers: Annotated[
        str,
        typer.Option(
            help="Where customer accounts are: 'simulated' (the simulated organisation, here) or "
            "'aws' (real AWS with your credentials; onboard accounts with qrie accounts add)."
        ),
    ] = "simulated",
    customer_profile: Annotated[
        str | None, typer.Option(help="The AWS profile for customer accounts (with --customers aws).")
    ] = None,
    schedules: Annotated[bool, typer.Option(help="Fire the declared schedules.")] = True,
    cloudtrail: Annotated[
        bool, typer.Option(help="Poll the accounts' CloudTrail event history for changes (every minute).")
    ] = True,
    self_account: Annotated[
        bool,
        typer.Option(
            "--self",
            help="With --customers aws: also scan the account of your own credentials, with them (no role).",
        ),
    ] = False,
    latency: Annotated[
        str,
        typer.Option(
            help="'aws': the tasks' operator calls take AWS's typical latency on their Lambda clock "
            "(not slept: it counts towards their timeouts and profiles); 'none': they take what "
            "the emulator takes."
        ),
    ] = "aws",
    latency_override: Annotated[
        str | None, typer.Option(help="Seconds per call, e.g. 'dynamodb.Query=0.012,s3=0.05'.")
    ] = None,
) -> None:
    """Keep the embedded runtime running as a local AWS endpoint, until Ctrl-C or SIGTERM. Its operator
    state (tables, runs, item lists, events queue) is kept in --state-dir across restarts."""
    from orchestration import latency as latencies
    from qrie_lib.errors import InvalidInput

    with user_errors():
        if customers not in ("simulated", "aws"):
            raise InvalidInput(f"customers: {customers!r} is not one of simulated, aws")
        if self_account and customers != "aws":
            raise InvalidInput("--self: only with --customers aws (the account of your AWS credentials)")
        if latency not in ("aws", "none"):
            raise InvalidInput(f"latency: {latency!r} is not one of aws, none")
        overrides = latencies.parse(latency_override or "")
    charged = latencies.Latency().overridden(overrides) if latency == "aws" else None
    busy = port_in_use(port)
    if busy:
        raise fail("PortInUse", f"127.0.0.1:{port}: {busy}; choose another with --port", 1)
    from orchestration.runtime import serve
    from qrie_lib.settings import Settings

    directory = None if ephemeral else (state_dir or default_state_dir())
    given = {
        "customers": "aws" if customers == "aws" else None,
        "customer_profile": customer_profile,
        "customer_self": self_account,
    }
    settings = Settings().model_copy(update={k: v for k, v in given.items() if v})

    def say(line: str) -> None:
        console.print(line, highlight=False)

    with user_errors():  # a state that cannot be read whole, or that another process keeps
        local = serve(settings, port, state_dir=directory, say=say, latency=charged)
    signal.signal(signal.SIGTERM, _interrupt)  # systemd, Docker and kill stop it as Ctrl-C does
    try:
        start_local(local, settings, directory, accounts if simulated_org else 0, schedules, cloudtrail, say)
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        local.stop()
        say(f"stopped; state kept in {directory}" if directory else "stopped; nothing kept (--ephemeral)")


def start_local(
    local: Any,
    settings: Any,
    directory: Path | None,
    accounts: int,
    schedules: bool,
    cloudtrail: bool,
    say: Callable[[str], None],
) -> None:
    """What ``qrie local up`` starts once its runtime serves: the simulated organisation, the
    schedules and the CloudTrail poller, each announced on one line."""
    from orchestration.simulated_org import SimulatedOrg

    if directory:
        say(f"state kept in [bold]{directory}[/]")
    for run_id in local.interrupted:
        say(f"run interrupted by the last stop, now FAILED: {run_id}")
    if accounts and not settings.customers_separate:
        SimulatedOrg(local.aws, accounts).create()
    say(f"local AWS endpoint on [bold]{local.url}[/]")
    for name, arn in local.machines.items():
        say(f"  {name}: {arn}")
    if settings.customers_separate:
        say("customer accounts: AWS, with your credentials (onboard them with qrie accounts add)")
    if settings.customer_self:
        with user_errors():
            own = onboard_self(local.aws)
        say(f"  your own account {own}: read with your credentials, no role (--self)")
    if schedules:
        for name, when in local.start_scheduler(say).next_fires().items():
            next_fire = f"next {when:%Y-%m-%d %H:%M} UTC" if when else "never"
            say(f"  schedule {name}: {next_fire}")
    if cloudtrail:
        local.start_poller(say)
        say("  cloudtrail: polling each account's event history every minute (CloudTrail is ~5 min late)")
    local.report_events()
    say(f"try: qrie inventory --endpoint {local.url}")


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def onboard_self(aws: Any) -> str:
    """The customer side's own account in the accounts table (once); its id."""
    from qrie_lib.models import Account
    from qrie_lib.stores import Stores

    account_id = aws.self_account()
    accounts = Stores.of(aws).accounts
    if accounts.get(account_id) is None:
        accounts.put(Account(account_id=account_id, name="self", regions=list(aws.settings.regions)))
    return account_id


def default_state_dir() -> Path:
    """``$XDG_DATA_HOME/qrie``, or ``~/.local/share/qrie``."""
    import os

    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "qrie"


@app.command()
def scan(
    policy: Annotated[str | None, typer.Option(help="One launched policy id.")] = None,
    service: Annotated[str | None, typer.Option(help="One service's policies.")] = None,
    account: Annotated[str | None, typer.Option(help="One account id.")] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Evaluate every resource, changed since the last scan or not.")
    ] = False,
    endpoint: Endpoint = None,
    stack_name: StackName = None,
    wait: Annotated[bool, typer.Option(help="Follow the execution to its end.")] = True,
    as_json: AsJson = False,
) -> None:
    """Start a policy scan execution and follow it; exits non-zero if it failed."""
    from qrie_lib.models import parse_input
    from qrie_lib.scan import ScanRequest

    asked = {"policy_id": policy, "service": service, "account_id": account, "full": full}
    request = {k: v for k, v in asked.items() if v}
    with user_errors():
        checked_account(account)
        parse_input(ScanRequest, request)  # refused here rather than by a failed execution
    run_and_follow(target(endpoint), "scan", request, stack_name, wait, as_json)


@policies_app.command("list")
def policies_list(
    launched_only: Annotated[bool, typer.Option("--launched", help="Only launched policies.")] = False,
    framework: Annotated[
        str | None, typer.Option(help="Only the policies citing a framework (qrie frameworks list).")
    ] = None,
    service: Annotated[str | None, typer.Option(help="Only one service's policies.")] = None,
    severity: Annotated[
        str | None, typer.Option(help="Only a band of effective severity: critical, high, medium or low.")
    ] = None,
    endpoint: Endpoint = None,
    as_json: AsJson = False,
) -> None:
    """The catalogue, with each policy's launch state and effective severity."""
    from qrie_lib.policies.base import band

    with user_errors():
        wanted = catalogue_filter(framework, service, severity)  # bad filters before any call
    rows = [r for r in catalogue_rows(endpoint) if wanted(r)]
    rows = [r for r in rows if r["status"] != "AVAILABLE"] if launched_only else rows
    if as_json:
        print_json(rows)
        return
    table = Results("policy", "service", "severity", "status", "title", ids=("policy",))
    for r in rows:
        table.add_row(
            r["policy_id"],
            r["service"],
            f"{r['effective_severity']} {band(r['effective_severity'])}",
            r["status"],
            r["title"],
        )
    out.print(table)


def catalogue_filter(
    framework: str | None, service: str | None, severity: str | None
) -> Callable[[dict[str, Any]], bool]:
    """Which catalogue rows ``policies list`` shows; an unknown framework, service or band is
    InvalidInput (exit 2)."""
    from qrie_lib.errors import InvalidInput
    from qrie_lib.frameworks.registry import get_framework
    from qrie_lib.policies.base import BANDS, band
    from qrie_lib.policies.registry import CATALOGUE
    from qrie_lib.services.registry import get_service

    cited = get_framework(framework).cited_by if framework else None
    if service:
        get_service(service)
    if severity and severity not in BANDS:
        raise InvalidInput(f"severity: {severity!r} is not a band ({', '.join(BANDS)})")
    return lambda row: (
        (cited is None or bool(cited(CATALOGUE[row["policy_id"]])))
        and service in (None, row["service"])
        and severity in (None, band(row["effective_severity"]))
    )


def catalogue_rows(endpoint: str | None) -> list[dict[str, Any]]:
    """The catalogue with each policy's launch state; the catalogue needs no AWS, so without an
    endpoint or AWS credentials it shows, launch state UNKNOWN, without a word; a launch state
    that could not be read (a stack not deployed, an endpoint down) is warned about."""
    from botocore.exceptions import BotoCoreError, ClientError

    from qrie_lib import lifecycle
    from qrie_lib.aws import credentials_found
    from qrie_lib.policies.registry import CATALOGUE
    from qrie_lib.stores import Stores

    if endpoint or credentials_found():
        try:
            return lifecycle.catalogue_view(Stores.of(target(endpoint)))
        except (BotoCoreError, ClientError) as exc:
            console.print(f"[yellow]launch state unknown[/]: {type(exc).__name__}: {exc}", highlight=False)
    unknown = {"status": "UNKNOWN", "scope": None, "launched_at": None}
    return [
        policy.describe() | unknown | {"effective_severity": policy.severity}
        for _, policy in sorted(CATALOGUE.items())
    ]


def checked_account(account_id: str | None) -> None:
    """An ``--account`` must be an account id (12 digits), as everywhere in Qrie."""
    from pydantic import TypeAdapter, ValidationError

    from qrie_lib.errors import InvalidInput
    from qrie_lib.models import AccountId

    if account_id is None:
        return
    try:
        TypeAdapter(AccountId).validate_python(account_id)
    except ValidationError:
        raise InvalidInput(f"account: {account_id!r} is not an account id (12 digits)") from None


@policies_app.command("show")
def policies_show(policy_id: str, endpoint: Endpoint = None) -> None:
    """One policy: its declaration and launch state."""
    from qrie_lib import lifecycle
    from qrie_lib.policies.registry import get_policy
    from qrie_lib.stores import Stores

    with user_errors():
        get_policy(policy_id)
        row = next(
            r for r in lifecycle.catalogue_view(Stores.of(target(endpoint))) if r["policy_id"] == policy_id
        )
    print_json(row)


ScopeOption = Annotated[
    str | None, typer.Option(help='Scope as JSON, e.g. \'{"include_ou_paths": ["/root/prod/"]}\'.')
]
SeverityOption = Annotated[int | None, typer.Option(help="Severity override, 0-100.")]


def parse_json_option(text: str | None) -> Any:
    from qrie_lib.errors import InvalidInput

    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"scope: not JSON ({exc})") from None


@policies_app.command("launch")
def policies_launch(
    policy_ids: Annotated[list[str] | None, typer.Argument(help="Catalogue ids.")] = None,
    launch_all: Annotated[bool, typer.Option("--all", help="Launch the whole catalogue (one scan).")] = False,
    scope: ScopeOption = None,
    severity: SeverityOption = None,
    endpoint: Endpoint = None,
    stack_name: StackName = None,
    wait: Annotated[
        bool, typer.Option(help="Follow the scan it starts to its end (--no-wait: return at once).")
    ] = True,
    as_json: AsJson = False,
) -> None:
    """Launch policies and start a scan for them (one scan, whatever their number), followed like
    qrie scan; exits non-zero if it failed."""
    from qrie_lib import lifecycle
    from qrie_lib.errors import InvalidInput
    from qrie_lib.policies.registry import CATALOGUE
    from qrie_lib.stores import Stores

    aws = target(endpoint)
    with user_errors():
        ids = sorted(CATALOGUE) if launch_all else list(policy_ids or [])
        if not ids:
            raise InvalidInput("name policy ids or use --all")
        launched = lifecycle.launch(Stores.of(aws), ids, parse_json_option(scope), severity)
    console.print(f"launched {len(launched)} policies")
    # Several policies with a scope: a full scan, which also resolves their findings out of scope.
    request = {"policy_id": ids[0]} if not launch_all and len(ids) == 1 else {"full": True} if scope else {}
    run_and_follow(aws, "scan", request, stack_name, wait, as_json)


@policies_app.command("update")
def policies_update(
    policy_id: str,
    scope: ScopeOption = None,
    severity: SeverityOption = None,
    clear_severity: Annotated[bool, typer.Option(help="Back to the catalogue's severity.")] = False,
    endpoint: Endpoint = None,
    stack_name: StackName = None,
    wait: Annotated[bool, typer.Option(help="Follow the rescan.")] = False,
) -> None:
    """Change a launched policy's scope or severity, then rescan it."""
    from qrie_lib import lifecycle
    from qrie_lib.stores import Stores

    aws = target(endpoint)
    with user_errors():
        lifecycle.update(Stores.of(aws), policy_id, parse_json_option(scope), severity, clear_severity)
    run_and_follow(aws, "scan", {"policy_id": policy_id}, stack_name, wait, as_json=False)


@policies_app.command("suspend")
def policies_suspend(
    policy_id: str,
    endpoint: Endpoint = None,
    stack_name: StackName = None,
    wait: Annotated[bool, typer.Option(help="Follow the scan that resolves its findings.")] = False,
) -> None:
    """Suspend a policy; the scan it starts resolves its ACTIVE findings as POLICY_SUSPENDED."""
    from qrie_lib import lifecycle
    from qrie_lib.stores import Stores

    aws = target(endpoint)
    with user_errors():
        lifecycle.suspend(Stores.of(aws), policy_id)
    console.print(f"suspended {policy_id}")
    run_and_follow(aws, "scan", {"policy_id": policy_id}, stack_name, wait, as_json=False)


def choice(kind: type[StrEnum], value: str, option: str) -> Any:
    """An option's value as one of an enum's, or a one-line InvalidInput (typer's own check would
    print a usage panel)."""
    from qrie_lib.errors import InvalidInput

    try:
        return kind(value)
    except ValueError:
        raise InvalidInput(f"{option}: {value!r} is not one of {', '.join(kind)}") from None


class Format(StrEnum):
    table = "table"
    json = "json"  # every format but the table streams page by page (qrie_lib.exports.stream)
    csv = "csv"
    jsonl = "jsonl"
    ocsf = "ocsf"
    asff = "asff"


@findings_app.callback(invoke_without_command=True)
def findings(
    ctx: typer.Context,
    state: Annotated[str, typer.Option(help="ACTIVE, RESOLVED or SUPPRESSED.")] = "ACTIVE",
    severity: Annotated[str | None, typer.Option(help="A band: critical, high, medium or low.")] = None,
    account: Annotated[str | None, typer.Option(help="One account id.")] = None,
    policy: Annotated[str | None, typer.Option(help="One policy id.")] = None,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="table, json, csv, jsonl, ocsf (OCSF Detection Findings) or asff (Security Hub's format).",
        ),
    ] = "table",
    fail_on: Annotated[
        str | None,
        typer.Option(
            help="A CI gate: exit 3, once the results are printed, when an ACTIVE finding is at or "
            "above this band (critical, high, medium or low)."
        ),
    ] = None,
    endpoint: Endpoint = None,
) -> None:
    """Findings, read through the table's indexes (never a full scan)."""
    if ctx.invoked_subcommand:
        return
    from qrie_lib.policies.base import band
    from qrie_lib.policies.registry import get_policy
    from qrie_lib.stores import Stores
    from qrie_lib.stores.findings import FindingState
    from qrie_lib.views import findings_rows

    with user_errors():
        output = choice(Format, output_format, "format")
        checked_account(account)
        if policy:
            get_policy(policy)  # UnknownPolicy, rather than no findings
        filters = {
            "state": choice(FindingState, state.upper(), "state"),
            "band_name": severity,
            "account_id": account,
            "policy_id": policy,
        }
        gate = SeverityGate(fail_on, filters["state"])
        aws = target(endpoint)
        if output is not Format.table:
            from qrie_lib.exports import stream

            fmt = asff_format(aws) if output is Format.asff else output.value
            stream.write(sys.stdout, fmt, map(gate.watch, stream.pages(Stores.of(aws), **filters)))
            gate.verdict()
            return
        rows = gate.watch(findings_rows(Stores.of(aws), **filters))
    table = Results(
        "severity",
        "policy",
        "resource",
        "account",
        "region",
        "state",
        "first seen",
        ids=("policy", "resource", "account"),
    )
    for r in rows:
        table.add_row(
            f"{r['severity']} {band(r['severity'])}",
            r["policy_id"],
            r["arn"],
            r["account_id"],
            r["region"],
            r["state"],
            r["first_seen"],
        )
    out.print(table)
    console.print(f"{len(rows)} findings")
    gate.verdict()


class SeverityGate:
    """``qrie findings --fail-on BAND``, a CI gate: the ACTIVE findings at or above a severity band
    among the results, counted as they are printed; ``verdict`` exits 3 if there are any."""

    EXIT = 3  # not 1 (the command failed) nor 2 (bad usage): the command worked and found these

    def __init__(self, band_name: str | None, state: Any) -> None:
        from qrie_lib.errors import InvalidInput
        from qrie_lib.stores.findings import FindingState
        from qrie_lib.views import BAND_RANGES

        self.band_name, self.hits = band_name, 0
        if band_name is None:
            return
        if band_name not in BAND_RANGES:
            raise InvalidInput(f"fail-on: {band_name!r} is not a band ({', '.join(BAND_RANGES)})")
        if state is not FindingState.ACTIVE:
            raise InvalidInput(f"fail-on gates open findings: it needs --state ACTIVE, not {state.value}")
        self.floor = BAND_RANGES[band_name][0]

    def watch(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.band_name is not None:
            self.hits += sum(r["state"] == "ACTIVE" and r["severity"] >= self.floor for r in rows)
        return rows

    def verdict(self) -> None:
        if self.hits:
            console.print(
                f"[red]fail-on {self.band_name}[/]: {self.hits} ACTIVE findings at or above {self.band_name}"
            )
            raise typer.Exit(self.EXIT)


def asff_format(aws: Aws) -> Any:
    """ASFF for the Security Hub of the account the CLI targets (its default product)."""
    from qrie_lib.exports import stream
    from qrie_lib.exports.asff import default_product
    from qrie_lib.timeutil import now_iso

    return stream.asff(*default_product(aws), now_iso())
