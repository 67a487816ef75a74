"""Operator state stays embedded while customer calls go elsewhere (``Settings.customers``): a
second moto server, in its own process, stands in for AWS. Each server records the requests it
receives (moto's request recorder); the operator endpoint must get no customer call and the
"AWS" one no operator call."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote

import pytest

from orchestration.credentials import FAKE_CREDENTIALS
from qrie_lib import executions
from qrie_lib.aws import Aws
from qrie_lib.models import Account
from qrie_lib.settings import Settings
from qrie_lib.stores.accounts import AccountsStore

pytestmark = pytest.mark.slow

QRIE = str(Path(sys.executable).with_name("qrie"))
CUSTOMER = "222233334444"
EXTERNAL_ID = "customer-separation-external-id"
BUCKETS = ("sep-customer-logs", "sep-customer-data")
START_TIMEOUT_S = 300  # a bound for a stuck start, not a wait: readiness is polled


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def process(command: list[str], env: dict[str, str], log: Path, ready: str) -> Iterator[None]:
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env})
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while ready not in log.read_text():
            assert proc.poll() is None, f"{command[0]} exited {proc.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"{command[0]} not ready:\n{log.read_text()}"
            time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def recorded(path: Path) -> list[dict[str, str]]:
    """Each recorded request as (service it was signed for, method, url, body)."""
    requests = []
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        body = entry.get("body") or ""
        if entry.get("body_encoded"):
            body = base64.b64decode(body).decode("utf-8", "replace")
        scope = re.search(r"Credential=[^/]+/\d+/[^/]+/([^/]+)/", entry["headers"].get("Authorization", ""))
        requests.append(
            {
                "service": scope.group(1) if scope else "",
                "method": entry["method"],
                "url": unquote(entry["url"]),
                "body": unquote(body),
            }
        )
    return requests


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Aws, Aws, Path, Path]]:
    tmp = tmp_path_factory.mktemp("separation")
    aws_port, local_port = free_port(), free_port()
    aws_log, local_log = tmp / "aws-requests.jsonl", tmp / "operator-requests.jsonl"
    stand_in = {"MOTO_ENABLE_RECORDING": "true", "MOTO_RECORDER_FILEPATH": str(aws_log)}
    operator = {
        "MOTO_ENABLE_RECORDING": "true",
        "MOTO_RECORDER_FILEPATH": str(local_log),
        "QRIE_CUSTOMERS": f"http://127.0.0.1:{aws_port}",
        "QRIE_REGIONS": '["us-east-1"]',
    }
    for key, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    moto_server = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(aws_port)]
    # No CloudTrail poller: the customer side's request log holds the inventory's calls only.
    local_up = [
        QRIE,
        "local",
        "up",
        "--port",
        str(local_port),
        "--ephemeral",
        "--no-schedules",
        "--no-cloudtrail",
    ]
    with (
        process(moto_server, stand_in, tmp / "aws.log", "Running on"),
        process(local_up, operator, tmp / "local.log", "local AWS endpoint on"),
    ):
        yield (
            Aws(Settings(endpoint_url=f"http://127.0.0.1:{aws_port}")),
            Aws(Settings(endpoint_url=f"http://127.0.0.1:{local_port}")),
            aws_log,
            local_log,
        )


def test_customer_calls_reach_only_the_customer_endpoint(servers):
    real, local, aws_log, local_log = servers
    # The customer account, on "AWS": its read-only role and two buckets.
    admin = real.in_account(CUSTOMER, "seed")
    admin.client("iam").create_role(
        RoleName="QrieReadOnly",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}},
                    }
                ],
            }
        ),
    )
    for bucket in BUCKETS:
        admin.client("s3").create_bucket(Bucket=bucket)
    AccountsStore(local.client("dynamodb"), local.settings.accounts_table).add(
        Account(account_id=CUSTOMER, name="separate", regions=["us-east-1"], external_id=EXTERNAL_ID)
    )
    aws_log.write_text("")  # from here on, only what the runtime sends
    local_log.write_text("")

    arn = executions.start(local, "inventory", {"service": "s3", "account_id": CUSTOMER})
    outcome = executions.follow(local, "inventory", arn)
    assert outcome.status == "SUCCEEDED", outcome.cause

    stored = {
        item["ARN"]["S"]
        for item in local.client("dynamodb").scan(TableName=local.settings.resources_table)["Items"]
        if item["ResourceType"]["S"] == "AWS::S3::Bucket"
    }
    assert stored == {f"arn:aws:s3:::{b}" for b in BUCKETS}  # what only "AWS" holds

    customer_side, operator_side = recorded(aws_log), recorded(local_log)
    # "AWS" got the customer calls: the AssumeRole into the customer's role, then S3 reads...
    assert any(
        r["service"] == "sts" and f"arn:aws:iam::{CUSTOMER}:role/QrieReadOnly" in r["body"]
        for r in customer_side
    )
    assert {r["service"] for r in customer_side} == {"sts", "s3"}
    # ...and nothing of the operator's: no tables, queues, state machines, Lambda, run items.
    assert not [r for r in customer_side if local.settings.items_bucket in r["url"]]
    # The operator endpoint got the run's own calls, and none of the customer's: no AssumeRole into
    # the customer, no S3 call but on the run-items bucket, no customer-side service at all.
    services = {r["service"] for r in operator_side}
    assert {"dynamodb", "states", "s3"} <= services
    assert not services & {"iam", "ec2", "kms", "cloudtrail", "config", "logs", "monitoring", "sns"}
    assert not [r for r in operator_side if r["service"] == "sts" and CUSTOMER in r["body"]]
    assert not [
        r for r in operator_side if r["service"] == "s3" and local.settings.items_bucket not in r["url"]
    ]
    assert not [
        r for r in operator_side if r["service"] != "dynamodb" and any(b in r["body"] for b in BUCKETS)
    ]
