"""``qrie local up --state-dir``: a ``kill -9`` in the middle of an inventory loses no
acknowledged write; at restart the interrupted run is closed FAILED (``Interrupted``) with its
items kept, and the next run corrects the inventory. A real subprocess, a real SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from orchestration.credentials import FAKE_CREDENTIALS
from orchestration.simulated_org import SEED_ROLE, account_id
from qrie_lib import executions
from qrie_lib.aws import Aws
from qrie_lib.settings import Settings
from qrie_lib.stores.dynamo import to_item

pytestmark = pytest.mark.slow

QRIE = str(Path(sys.executable).with_name("qrie"))
A1 = account_id(1)
READY = "local AWS endpoint on"
START_TIMEOUT_S = 300  # a bound for a stuck start, not a wait: readiness is polled
# One resource per page and one page per task call: the inventory loops long enough to be killed in.
SLOW_INVENTORY = {"QRIE_PAGE_SIZE": "1", "QRIE_PAGES_PER_CALL": "1"}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_up(state_dir: Path, log: Path) -> Iterator[tuple[subprocess.Popen, Aws]]:
    port = free_port()
    with log.open("w") as err:
        server = subprocess.Popen(
            [
                QRIE,
                "local",
                "up",
                "--port",
                str(port),
                "--accounts",
                "1",
                "--state-dir",
                str(state_dir),
                "--no-schedules",
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, **SLOW_INVENTORY},
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while READY not in log.read_text():
            assert server.poll() is None, f"qrie local up exited {server.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"qrie local up not ready:\n{log.read_text()}"
            time.sleep(0.2)
        for key, value in FAKE_CREDENTIALS.items():
            os.environ.setdefault(key, value)
        yield server, Aws(Settings(endpoint_url=f"http://127.0.0.1:{port}", max_retry_attempts=1))
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=30)


class AckedWrites(threading.Thread):
    """Writes rows one after another; remembers those the endpoint acknowledged."""

    def __init__(self, aws: Aws) -> None:
        super().__init__(daemon=True)
        self.ddb, self.table = aws.client("dynamodb"), aws.settings.runs_table
        self.acked: list[str] = []

    def run(self) -> None:
        for n in range(1_000_000):
            try:
                self.ddb.put_item(TableName=self.table, Item=to_item({"RunId": "test/acked", "Item": str(n)}))
            except Exception:  # the endpoint died: this write was never acknowledged
                return
            self.acked.append(str(n))


def rows(aws: Aws, run_id: str) -> dict[str, dict]:
    ddb = aws.client("dynamodb")
    return {
        i["Item"]["S"]: i
        for page in ddb.get_paginator("query").paginate(
            TableName=aws.settings.runs_table,
            KeyConditionExpression="RunId = :r",
            ExpressionAttributeValues={":r": {"S": run_id}},
            ConsistentRead=True,
        )
        for i in page["Items"]
    }


def resource_arns(aws: Aws, service: str) -> set[str]:
    ddb = aws.client("dynamodb")
    return {
        i["ARN"]["S"]
        for page in ddb.get_paginator("query").paginate(
            TableName=aws.settings.resources_table,
            KeyConditionExpression="AccountService = :p",
            ExpressionAttributeValues={":p": {"S": f"{A1}_{service}"}},
        )
        for i in page["Items"]
    }


def test_kill_9_mid_inventory_loses_no_acknowledged_write(tmp_path):
    state = tmp_path / "state"
    with local_up(state, tmp_path / "first.log") as (server, aws):
        arn = executions.start(aws, "inventory", {"service": "ec2"})
        run_id = executions.run_id_for("inventory", arn)
        writer = AckedWrites(aws)
        writer.start()
        deadline = time.monotonic() + 300
        while True:  # until the run is under way: some items reported, the run still RUNNING
            seen = rows(aws, run_id)
            if len(seen) > 1 and len(writer.acked) >= 20:
                break
            assert time.monotonic() < deadline, "the inventory made no progress"
            time.sleep(0.1)
        before = resource_arns(aws, "ec2")
        server.send_signal(signal.SIGKILL)
        server.wait()
        writer.join(timeout=60)
        assert seen["#run"]["Status"]["S"] == "RUNNING"
        assert before, "nothing was inventoried before the kill"

    log = tmp_path / "second.log"
    with local_up(state, log) as (_, aws):
        assert f"run interrupted by the last stop, now FAILED: {run_id}" in log.read_text()
        # Every acknowledged write is there, the ones made by the inventory included.
        assert set(rows(aws, "test/acked")) >= set(writer.acked)
        assert resource_arns(aws, "ec2") >= before
        after = rows(aws, run_id)
        assert set(after) >= set(seen)  # the run's item rows are kept
        header = after["#run"]
        assert header["Status"]["S"] == "FAILED"
        assert "Interrupted" in header["Summary"]["M"]["message"]["S"]

        # The simulated organisation was seeded again (new ids): the next run corrects the inventory.
        outcome = executions.follow(aws, "inventory", executions.start(aws, "inventory", {"service": "ec2"}))
        assert outcome.status == "SUCCEEDED", outcome.cause
        ec2 = aws.in_account(A1, SEED_ROLE).client("ec2", "us-east-1")
        groups = {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]}
        stored = {
            a.rsplit("/", 1)[1]
            for a in resource_arns(aws, "ec2")
            if ":us-east-1:" in a and "security-group/" in a
        }
        assert stored == groups
