"""The ``qrie`` command line, driven as a user would (typer's runner, the embedded runtime)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.runtime import LocalRuntime
from orchestration.simulated_org import account_id

pytestmark = pytest.mark.slow
runner = CliRunner()


def test_demo_json_reports_every_stage():
    result = runner.invoke(app, ["demo", "--accounts", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["accounts"] == 1
    assert report["inventory"]["execution_status"] == "SUCCEEDED"
    assert report["inventory"]["failed_items"] == []
    assert report["inventory"]["resources_by_type"]["AWS::S3::Bucket"] == 5  # 4 planted + the trail bucket
    assert report["inventory"]["api_calls"] > 0
    assert report["scan"]["execution_status"] == "SUCCEEDED"
    assert report["scan"]["findings"]["ACTIVE"] == sum(report["scan"]["by_policy"].values())
    events = report["events"]
    assert events["processed"] > 0
    assert events["failed"] == 0
    assert events["findings_opened"] >= 2
    assert events["findings_resolved"] >= 2


def test_accounts_add_list_and_bad_input():
    with LocalRuntime():
        bad = runner.invoke(app, ["accounts", "add", "12345"])
        assert bad.exit_code == 2
        assert "InvalidInput" in bad.output
        added = runner.invoke(
            app, ["accounts", "add", account_id(7), "--name", "new", "--regions", "eu-west-1"]
        )
        assert added.exit_code == 0, added.output
        listed = json.loads(runner.invoke(app, ["accounts", "list", "--json"]).stdout)
        assert [(a["account_id"], a["name"], a["regions"]) for a in listed] == [
            (account_id(7), "new", ["eu-west-1"])
        ]


def test_unknown_policy_is_a_named_error_not_a_traceback():
    with LocalRuntime():
        result = runner.invoke(app, ["policies", "launch", "NoSuchPolicy"])
    assert result.exit_code == 2
    assert "UnknownPolicy" in result.output


@pytest.fixture(scope="module")
def demo() -> subprocess.CompletedProcess[str]:
    """``qrie demo`` as ``make demo`` runs it, once for this module's tests."""
    qrie = str(Path(sys.executable).with_name("qrie"))
    result = subprocess.run(
        [qrie, "demo", "--accounts", "1"], check=False, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    return result


def test_demo_prints_no_metrics_lines(demo):
    """The handlers run in process; their powertools EMF metrics must not show among the demo's
    output (the summary on stdout nor the progress on stderr)."""
    assert "events: " in demo.stdout  # the event processor, which records metrics, ran
    lines = (demo.stdout + demo.stderr).splitlines()
    assert [line for line in lines if '"_aws"' in line] == []


def test_demo_shows_severities_and_ends_with_what_to_do_next(demo):
    lines = demo.stdout.splitlines()
    header = next(line for line in lines if "active findings" in line)
    assert header.split()[:2] == ["severity", "policy"]
    rows = lines[lines.index(header) + 1 :]
    assert any(row.split()[1] == "critical" for row in rows if row.split())
    assert not re.search(r"\{'\w+': ", demo.stdout + demo.stderr)  # no Python dict
    last = [line.strip() for line in demo.stderr.splitlines() if line.strip()][-6:]
    assert any(line.startswith("qrie local up") for line in last)
    assert any(line.startswith("qrie console") for line in last)
