"""The ``qrie`` command line as a user's shell sees it: each command its own process against a
``qrie local up`` endpoint (a simulated organisation, inventoried and scanned once per module).
Results on stdout, status on stderr; identifiers whole at 80 columns and on one line when piped;
the environment's endpoint; the CI gate; the inventory listing; catalogue filters; events checked
before they are queued; ExternalIds masked."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import termios
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from typing import Any

import pytest
from botocore.exceptions import ClientError

from orchestration import cloudtrail
from orchestration.credentials import FAKE_CREDENTIALS
from orchestration.provision import MAX_MESSAGE_BYTES
from orchestration.simulated_org import account_id
from qrie_lib.aws import Aws
from qrie_lib.frameworks.registry import FRAMEWORKS, get_framework
from qrie_lib.policies.base import band
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.settings import Settings
from tests.integration.conftest import QRIE, free_port, local_up

pytestmark = pytest.mark.slow

A1, A2 = account_id(1), account_id(2)
PUBLIC_WRITE = ("S3BucketPublicWriteAcl", "arn:aws:s3:::sim01-public-assets")  # planted in account 1
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [QRIE, *args], check=False, capture_output=True, text=True, timeout=600, env=os.environ | (env or {})
    )


def qrie(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    result = run(*args, "--endpoint", endpoint)
    assert result.returncode == 0, f"qrie {' '.join(args)}: {result.returncode}\n{result.stderr}"
    return result


def qrie_json(endpoint: str, *args: str) -> Any:
    return json.loads(qrie(endpoint, *args).stdout)


def in_terminal(*args: str, columns: int = 80) -> str:
    """What a user sees running ``qrie ARGS`` in a terminal ``columns`` wide (stdout only)."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    process = subprocess.Popen(
        [QRIE, *args],
        stdout=terminal,
        stderr=subprocess.DEVNULL,
        env=os.environ | {"COLUMNS": str(columns), "NO_COLOR": "1"},
    )
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 1 << 16)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    assert process.wait(timeout=600) == 0
    return ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")


def queued(endpoint: str) -> int:
    """Messages on the events queue, read with an AWS SDK client as an operator would."""
    sqs = sqs_client(endpoint)
    url = sqs.get_queue_url(QueueName=Settings().events_queue)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def sqs_client(endpoint: str) -> Any:
    for key, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    return Aws(Settings(endpoint_url=endpoint)).client("sqs")


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with local_up(tmp_path_factory.mktemp("cli-output"), accounts=2) as url:
        qrie(url, "inventory")
        qrie(url, "policies", "launch", "--all", "--wait")
        qrie(
            url,
            "suppressions",
            "add",
            "--policy",
            "S3BucketVersioningDisabled",
            "--arn-glob",
            "arn:aws:s3:::sim02-*",
            "--reason",
            "archive buckets",
            "--owner",
            "team-a",
            "--expires",
            (datetime.now(UTC) + timedelta(days=30)).date().isoformat(),
        )
        yield url


# ---- 15: results on stdout, status on stderr ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "marker"),
    [
        (["findings"], "first seen"),
        (["findings", "--format", "csv"], "policy_id"),
        (["findings", "history", PUBLIC_WRITE[1], PUBLIC_WRITE[0]], "change"),
        (["policies", "list"], "title"),
        (["accounts", "list"], "ExternalId"),
        (["suppressions", "list"], "expires"),
        (["schedules", "list"], "next fire"),
        (["trends"], "open now"),
        (["counters", "recount"], "findings counted"),
        (["migrate"], "findings moved"),
        (["events", "drain"], "left on the queue"),
        (["resources", "--service", "s3"], "last seen"),
        (["compliance", "cis-aws-3.0"], "assessment"),
        (["inventory", "--service", "s3"], "resource type"),
        (["scan", "--service", "s3", "--full"], "evaluated"),
    ],
)
def test_results_go_to_stdout_and_status_to_stderr(endpoint, args, marker):
    result = qrie(endpoint, *args)
    assert marker in result.stdout
    assert marker not in result.stderr


def test_findings_redirected_to_a_file_hold_the_table(endpoint, tmp_path):
    saved = tmp_path / "f.txt"
    with saved.open("w") as f:
        status = subprocess.run(
            [QRIE, "findings", "--endpoint", endpoint], check=False, stdout=f, stderr=subprocess.PIPE
        )
    assert status.returncode == 0
    rows = qrie_json(endpoint, "findings", "--format", "json")
    assert rows
    assert f"{len(rows)} findings" in status.stderr.decode()
    lines = saved.read_text().splitlines()
    assert len(lines) == len(rows) + 1  # the header, then a line per finding


# ---- 16: identifiers whole ------------------------------------------------------------------------


def test_at_80_columns_no_identifier_is_cut(endpoint):
    shown = in_terminal("findings", "--endpoint", endpoint)
    assert "…" not in shown
    lines = set(shown.splitlines())
    for r in qrie_json(endpoint, "findings", "--format", "json"):
        for identifier in (r["policy_id"], r["arn"], r["account_id"]):
            assert any(identifier in line for line in lines), identifier
    rules = qrie_json(endpoint, "suppressions", "list", "--json")
    listed = in_terminal("suppressions", "list", "--endpoint", endpoint)
    assert rules
    assert all(r["rule_id"] in listed for r in rules)


def test_the_compliance_table_fits_80_columns_with_every_id_whole(endpoint):
    shown = in_terminal("compliance", "cis-aws-3.0", "--endpoint", endpoint)
    report = qrie_json(endpoint, "compliance", "cis-aws-3.0", "--format", "json")
    lines = shown.splitlines()
    assert "…" not in shown
    assert max(len(line) for line in lines) <= 80
    for identifier in [a["account_id"] for a in report["accounts"]] + [c["id"] for c in report["controls"]]:
        assert any(re.search(rf"(^|\s){re.escape(identifier)}(\s|$)", line) for line in lines), identifier
    piped = run(
        "compliance", "cis-aws-3.0", "--endpoint", endpoint, env={"COLUMNS": "80"}
    ).stdout.splitlines()
    first = report["controls"][0]["id"] + " "
    assert len([line for line in piped if line.startswith(first)]) == 1  # piped: a line per control
    assert all(a["account_id"] in piped[0] for a in report["accounts"])  # the header, however wide


def test_piped_results_have_no_width_limit(endpoint):
    shown = run("findings", "--endpoint", endpoint, env={"COLUMNS": "80"}).stdout.splitlines()
    rows = qrie_json(endpoint, "findings", "--format", "json")
    for r in rows:  # one line per finding, whatever its width
        assert any(r["policy_id"] in line and r["arn"] in line and r["account_id"] in line for line in shown)
    assert max(len(line) for line in shown) > 80


def test_the_curl_lines_of_api_serve_paste_as_they_are(endpoint, tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as err:
        server = subprocess.Popen(
            [QRIE, "api", "serve", "--port", str(port), "--endpoint", endpoint],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=os.environ | {"COLUMNS": "80"},
        )
    try:
        deadline = time.monotonic() + 120  # a bound for a stuck start, not a wait
        while "Console (open once" not in log.read_text():
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=15)
    lines = log.read_text().splitlines()
    base = f"http://127.0.0.1:{port}"
    assert (
        f"""  curl -s -H "Authorization: Bearer $QRIE_API_TOKEN" '{base}/findings?severity=high&limit=5'"""
        in lines
    )
    assert any(
        line.startswith("Console (open once, it sets a cookie): ") and "?token=" in line for line in lines
    )


# ---- 17: version, endpoint and stack from the environment ---------------------------------------


def test_version():
    result = run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"qrie {version('qrie')}\n"


def test_endpoint_and_stack_name_come_from_the_environment(endpoint):
    listed = run("accounts", "list", "--json", env={"QRIE_ENDPOINT": endpoint})
    assert listed.returncode == 0, listed.stderr
    assert [a["account_id"] for a in json.loads(listed.stdout)] == [A1, A2]
    stack = run("scan", "--no-wait", env={"QRIE_ENDPOINT": endpoint, "QRIE_STACK_NAME": "no-such-stack"})
    assert stack.returncode == 1
    assert "no-such-stack" in stack.stderr
    assert "Traceback" not in stack.stderr


# ---- 19: the CI gate ------------------------------------------------------------------------------


def test_fail_on_exits_3_after_printing_when_an_open_finding_is_at_or_above(endpoint):
    rows = qrie_json(endpoint, "findings", "--format", "json")
    assert any(band(r["severity"]) == "critical" for r in rows)
    gate = run("findings", "--fail-on", "high", "--endpoint", endpoint)
    assert gate.returncode == 3, gate.stderr
    assert all(r["arn"] in gate.stdout for r in rows)  # printed first
    assert "fail-on high" in gate.stderr
    csv = run("findings", "--format", "csv", "--fail-on", "critical", "--endpoint", endpoint)
    assert csv.returncode == 3
    assert len(csv.stdout.splitlines()) == len(rows) + 1
    below = min(rows, key=lambda r: r["severity"])  # a policy's findings share its severity
    assert band(below["severity"]) != "critical"
    quiet = run("findings", "--policy", below["policy_id"], "--fail-on", "critical", "--endpoint", endpoint)
    assert quiet.returncode == 0, quiet.stderr
    assert below["arn"] in quiet.stdout


@pytest.mark.parametrize("args", [["--fail-on", "severe"], ["--fail-on", "high", "--state", "RESOLVED"]])
def test_a_bad_fail_on_is_a_usage_error(endpoint, args):
    result = run("findings", *args, "--endpoint", endpoint)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("InvalidInput: ")


# ---- 20: the inventory --------------------------------------------------------------------------


def test_resources_lists_the_inventory_with_filters(endpoint):
    buckets = qrie_json(
        endpoint, "resources", "--account", A1, "--type", "AWS::S3::Bucket", "--format", "json"
    )
    assert {r["arn"] for r in buckets} >= {"arn:aws:s3:::sim01-public-assets", "arn:aws:s3:::sim01-shared"}
    assert {(r["account_id"], r["resource_type"]) for r in buckets} == {(A1, "AWS::S3::Bucket")}
    everything = qrie_json(endpoint, "resources", "--service", "s3", "--format", "json")
    assert {r["account_id"] for r in everything} == {A1, A2}
    in_a1 = {r["arn"] for r in everything if (r["account_id"], r["resource_type"]) == (A1, "AWS::S3::Bucket")}
    assert {r["arn"] for r in buckets} == in_a1
    # A global service's resources by the region they are in (a bucket's ARN names none).
    eu = qrie_json(endpoint, "resources", "--service", "s3", "--region", "eu-west-1", "--format", "json")
    assert eu
    assert {r["region"] for r in eu} == {"eu-west-1"}
    assert {r["arn"] for r in eu} == {r["arn"] for r in everything if r["region"] == "eu-west-1"}
    vpcs = qrie_json(endpoint, "resources", "--service", "ec2", "--region", "eu-west-1", "--format", "json")
    assert vpcs
    assert {r["region"] for r in vpcs} == {"eu-west-1"}
    csv = qrie(endpoint, "resources", "--service", "s3", "--format", "csv").stdout.splitlines()
    assert csv[0] == "arn,account_id,service,resource_type,region,describe_time,last_seen_at"
    assert len(csv) == len(everything) + 1


@pytest.mark.parametrize(
    "args",
    [
        ["--service", "nope"],
        ["--type", "AWS::S3::Bucket", "--service", "ec2"],
        ["--type", "AWS::Nope::Thing"],
        ["--region", "mars"],
        ["--account", "12"],
        ["--format", "xml"],
    ],
)
def test_a_bad_resources_filter_is_a_usage_error(endpoint, args):
    result = run("resources", *args, "--endpoint", endpoint)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert result.stdout == ""


# ---- 21: the catalogue by framework, service and severity ---------------------------------------


def test_policies_list_by_framework_service_and_severity(endpoint):
    cis = get_framework("cis-aws-3.0")
    for service, severity in (("s3", "medium"), ("iam", "high"), ("cloudtrail", "medium")):
        rows = qrie_json(
            endpoint,
            "policies",
            "list",
            "--framework",
            cis.id,
            "--service",
            service,
            "--severity",
            severity,
            "--json",
        )
        expected = {
            p.policy_id
            for p in CATALOGUE.values()
            if cis.cited_by(p) and p.service == service and band(p.severity) == severity
        }
        assert expected
        assert {r["policy_id"] for r in rows} == expected


def test_frameworks_list():
    result = run("frameworks", "list", "--json")
    assert result.returncode == 0, result.stderr
    listed = {row["framework_id"]: row for row in json.loads(result.stdout)}
    assert set(listed) == set(FRAMEWORKS) >= {"cis-aws-3.0", "aws-fsbp"}
    for framework_id, row in listed.items():
        framework = get_framework(framework_id)
        assert row["controls"] == len(framework.controls)
        assert row["automated_controls"] == sum(c.automated for c in framework.controls)
    table = run("frameworks", "list").stdout
    assert all(framework_id in table for framework_id in listed)


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["--framework", "cis-9"], "UnknownFramework"),
        (["--service", "nope"], "UnknownService"),
        (["--severity", "huge"], "InvalidInput"),
    ],
)
def test_a_bad_catalogue_filter_is_a_usage_error(endpoint, args, name):
    result = run("policies", "list", *args, "--endpoint", endpoint)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"{name}: ")


# ---- 9: events checked before they are queued ---------------------------------------------------


def event(account: str, padding: int = 0) -> dict[str, Any]:
    detail = cloudtrail.ec2_call("DeleteVolume", account, "us-east-1", {"volumeId": "vol-0123456789abcdef0"})
    if padding:
        detail["detail"]["requestParameters"]["note"] = "x" * padding
    return detail


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"not": "cloudtrail"}, "not an EventBridge CloudTrail event"),
        ([event(A1), {"version": "0"}], "event 2 of 2"),
        ([event(A1), 3], "expected an event object"),
        (event(A1, padding=300_000), f"{MAX_MESSAGE_BYTES:,}"),
    ],
)
def test_events_send_refuses_what_the_processor_or_the_queue_would_and_sends_nothing(
    endpoint, tmp_path, content, message
):
    before = queued(endpoint)
    path = tmp_path / "events.json"
    path.write_text(json.dumps(content))
    result = run("events", "send", str(path), "--endpoint", endpoint)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("InvalidInput: ")
    assert message in result.stderr
    assert queued(endpoint) == before


def test_the_local_events_queue_refuses_messages_over_256_kib(endpoint):
    sqs = sqs_client(endpoint)
    url = sqs.get_queue_url(QueueName=Settings().events_queue)["QueueUrl"]
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        sqs.send_message(QueueUrl=url, MessageBody="x" * (MAX_MESSAGE_BYTES + 1))
    sqs.send_message(QueueUrl=url, MessageBody="x" * MAX_MESSAGE_BYTES)
    [message] = sqs.receive_message(QueueUrl=url)["Messages"]  # not left for the event processor
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


# ---- 3: ExternalIds masked --------------------------------------------------------------------


def test_accounts_list_masks_external_ids_unless_asked(endpoint):
    added = qrie(endpoint, "accounts", "add", account_id(9), "--name", "new")
    [secret] = re.findall(r"ExternalId \(its role's trust policy must require it\): (\S+)", added.stdout)
    masked = {a["account_id"]: a["external_id"] for a in qrie_json(endpoint, "accounts", "list", "--json")}
    assert masked[account_id(9)] == "****" + secret[-4:]
    clear = qrie_json(endpoint, "accounts", "list", "--json", "--show-external-ids")
    assert {a["account_id"]: a["external_id"] for a in clear}[account_id(9)] == secret
    table = qrie(endpoint, "accounts", "list").stdout
    assert secret not in table
    assert "****" + secret[-4:] in table
    assert secret in qrie(endpoint, "accounts", "list", "--show-external-ids").stdout
