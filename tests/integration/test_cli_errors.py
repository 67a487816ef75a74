"""What a user sees when something is wrong: one line naming the error, no traceback, and typer's
exit codes (2 for a bad argument, 1 for a failure). Against moto's emulation (the embedded
runtime) or, for the process-level cases, the ``qrie`` command itself."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.runtime import LocalRuntime
from orchestration.simulated_org import SimulatedOrg, account_id
from qrie_lib.models import Account
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.stores import Stores
from tasks import common  # noqa: F401 - the handlers' log handler binds the real stderr, not a runner's

runner = CliRunner()
QRIE = str(Path(sys.executable).with_name("qrie"))


def one_line_error(output: str, name: str) -> None:
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(f"{name}: ")]
    assert len(errors) == 1, output
    assert "Traceback" not in output
    assert "errorType" not in output  # no raw Lambda error payload


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["findings", "--format", "xml"], "InvalidInput"),
        (["findings", "--account", "12"], "InvalidInput"),
        (["findings", "--policy", "Nope"], "UnknownPolicy"),
        (["findings", "--state", "OPEN"], "InvalidInput"),
        (["scan", "--account", "12"], "InvalidInput"),
        (["local", "up", "--self"], "InvalidInput"),  # --self needs --customers aws
    ],
)
def test_a_bad_argument_is_one_line_and_exit_2(args, name):
    with LocalRuntime():
        result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    one_line_error(result.output, name)


@pytest.mark.parametrize(
    "args", [["findings"], ["migrate"], ["counters", "recount"], ["api", "serve"], ["scan", "--no-wait"]]
)
@pytest.mark.parametrize("endpoint", ["nonsense", "http://127.0.0.1:abc", "ftp://127.0.0.1:4566"])
def test_an_endpoint_that_is_not_a_url_is_a_usage_error(args, endpoint):
    result = runner.invoke(app, [*args, "--endpoint", endpoint])
    assert result.exit_code == 2, result.output
    panel_text = " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())  # typer's panel wraps
    assert "is not a URL" in panel_text
    assert "Traceback" not in result.output


def test_a_dead_endpoint_is_one_line_and_exit_1():
    result = runner.invoke(app, ["findings", "--endpoint", "http://127.0.0.1:1"])
    assert result.exit_code == 1, result.output
    one_line_error(result.output, "EndpointConnectionError")


@pytest.mark.parametrize(
    ("args", "kind", "message"),
    [
        (["inventory", "--service", "nope"], "inventory", "unknown service 'nope'"),
        (["scan", "--policy", "nope", "--full"], "scan", "unknown policy 'nope'"),
    ],
)
def test_an_input_the_state_machine_would_refuse_starts_no_execution(args, kind, message):
    with LocalRuntime() as runtime:
        result = runner.invoke(app, args)
        sfn = runtime.aws.client("stepfunctions")
        machines = sfn.list_state_machines()["stateMachines"]
        started = [
            e
            for m in machines
            for e in sfn.list_executions(stateMachineArn=m["stateMachineArn"])["executions"]
        ]
    assert result.exit_code == 2, result.output
    one_line_error(result.output, "InvalidInput")
    assert message in result.output
    assert any(kind in m["name"] for m in machines)
    assert started == []


@pytest.mark.slow
@pytest.mark.parametrize("command", ["launch", "update"])
def test_policies_wait_exits_1_when_its_scan_failed(command):
    with LocalRuntime() as runtime:
        aws = runtime.aws
        Stores.of(aws).accounts.put(Account(account_id="200000000001", regions=["us-east-1"]))
        if command == "update":
            assert runner.invoke(app, ["policies", "launch", "S3BucketPublic"]).exit_code == 0
        # An account's items read the resources table, the findings shards' the findings table:
        # without them every scan item fails, and so does the run.
        for table in (aws.settings.resources_table, aws.settings.findings_table):
            aws.client("dynamodb").delete_table(TableName=table)
        result = runner.invoke(app, ["policies", command, "S3BucketPublic", "--wait"])
    assert result.exit_code == 1, result.output
    one_line_error(result.output, "RunFailed")  # every item failed: the run failed as a whole


@pytest.mark.slow
def test_an_inventory_with_some_failed_items_exits_0_with_a_warning_naming_them():
    with LocalRuntime(fast_retries=True) as runtime:
        org = SimulatedOrg(runtime.aws, 2)
        org.create()
        org.session(account_id(2)).client("iam").delete_role(RoleName=runtime.aws.settings.role_name)
        result = runner.invoke(app, ["inventory", "--service", "iam"])
    assert result.exit_code == 0, result.output
    assert "warning: inventory run SUCCEEDED_WITH_FAILURES" in result.output
    assert f"failed {account_id(2)}/iam/global: AccountAccessDenied" in result.output


def test_local_up_on_a_busy_port_fails_fast():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [QRIE, "local", "up", "--port", str(port)],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,  # a bound for a hang, not a wait: it fails before starting anything
        )
    assert result.returncode == 1, result.stderr
    one_line_error(result.stderr, "PortInUse")


@pytest.mark.parametrize("output", [["--json"], []])
def test_policies_list_needs_no_aws_credentials(tmp_path, output):
    no_credentials = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    result = subprocess.run(
        [QRIE, "policies", "list", *output],
        check=False,
        capture_output=True,
        text=True,
        env=no_credentials,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # the catalogue, without a warning
    if output:
        rows = json.loads(result.stdout)
        assert sorted(r["policy_id"] for r in rows) == sorted(CATALOGUE)
        assert {r["status"] for r in rows} == {"UNKNOWN"}
    else:
        assert all(policy_id in result.stdout for policy_id in CATALOGUE)
