"""The local runtime with a small simulated organisation; executions run the real ASL."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from orchestration.runtime import LocalRuntime
from orchestration.simulated_org import SimulatedOrg
from qrie_lib import executions
from qrie_lib.settings import Settings

# Small pages and one page per task call: every item loops through its cursor several times.
SETTINGS = Settings(page_size=3, pages_per_call=1)
QRIE = str(Path(sys.executable).with_name("qrie"))
READY = "local AWS endpoint on"
START_TIMEOUT_S = 300  # a bound for a stuck start, not a wait: readiness is polled


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_up(directory: Path, accounts: int) -> Iterator[str]:
    """``qrie local up`` in its own process (ephemeral, no schedules fired) with a simulated
    organisation of ``accounts``; its endpoint URL once it is ready."""
    port = free_port()
    log = directory / "stderr.log"
    with log.open("w") as err:
        server = subprocess.Popen(
            [
                QRIE,
                "local",
                "up",
                "--port",
                str(port),
                "--accounts",
                str(accounts),
                "--ephemeral",
                "--no-schedules",
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,  # a file, not a pipe: an unread pipe would block the server
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while READY not in log.read_text():
            assert server.poll() is None, f"qrie local up exited {server.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"qrie local up not ready:\n{log.read_text()}"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


class Harness:
    def __init__(self, runtime: LocalRuntime, org: SimulatedOrg) -> None:
        self.runtime, self.org = runtime, org
        assert runtime.aws is not None
        self.aws = runtime.aws

    def run(self, kind: str, request: dict[str, Any]) -> tuple[executions.Outcome, dict[str, Any] | None]:
        arn = executions.start(self.aws, kind, request)
        outcome = executions.follow(self.aws, kind, arn, poll_s=0.05)
        return outcome, executions.run_summary(self.aws, kind, arn)

    def table_items(self, setting: str) -> list[dict[str, Any]]:
        ddb = self.aws.client("dynamodb")
        return [
            item
            for page in ddb.get_paginator("scan").paginate(TableName=getattr(self.aws.settings, setting))
            for item in page["Items"]
        ]

    def resource_arns(self, account_id: str | None = None) -> set[str]:
        return {
            i["ARN"]["S"]
            for i in self.table_items("resources_table")
            if account_id is None or i["AccountId"]["S"] == account_id
        }


@contextmanager
def inventoried_org(accounts: int, settings: Settings = SETTINGS) -> Iterator[Harness]:
    """A runtime with a simulated organisation whose first inventory has run."""
    with LocalRuntime(settings, fast_retries=True) as runtime:
        assert runtime.aws is not None
        org = SimulatedOrg(runtime.aws, accounts)
        org.create()
        harness = Harness(runtime, org)
        outcome, _ = harness.run("inventory", {"service": "all"})
        assert outcome.status == "SUCCEEDED", outcome.cause
        yield harness


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    with LocalRuntime(SETTINGS, fast_retries=True) as runtime:
        assert runtime.aws is not None
        org = SimulatedOrg(runtime.aws, 2)
        org.create()
        yield Harness(runtime, org)
