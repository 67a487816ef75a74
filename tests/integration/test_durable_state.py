"""``qrie local up --state-dir``: a ``kill -9`` in the middle of an inventory loses no
acknowledged write; at restart the interrupted run is closed FAILED (``Interrupted``) with its
items kept, and the next run corrects the inventory. SIGTERM stops it as Ctrl-C does; the state
directory is private; a damaged state refuses the start with one line and changes nothing.
A real subprocess, real signals."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
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
from orchestration.state_store import FILE, create
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


def start(state_dir: Path, log: Path, port: int) -> subprocess.Popen:
    command = [QRIE, "local", "up", "--port", str(port), "--accounts", "1"]
    with log.open("w") as err:
        return subprocess.Popen(
            [*command, "--state-dir", str(state_dir), "--no-schedules"],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, **SLOW_INVENTORY},
            umask=0o022,  # the usual umask: the state is private whatever it is
        )


@contextmanager
def local_up(state_dir: Path, log: Path) -> Iterator[tuple[subprocess.Popen, Aws]]:
    port = free_port()
    server = start(state_dir, log, port)
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


def test_sigterm_stops_like_ctrl_c_and_the_state_directory_is_private(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    (state / "schedules.json").write_text("{}")  # as an earlier version left it: 0644
    os.chmod(state, 0o755)
    os.chmod(state / "schedules.json", 0o644)
    log = tmp_path / "first.log"
    with local_up(state, log) as (server, aws):
        assert f"{state}: permissions tightened" in log.read_text()
        ddb = aws.client("dynamodb")
        for n in range(50):
            item = to_item({"RunId": "test/term", "Item": str(n)})
            ddb.put_item(TableName=aws.settings.runs_table, Item=item)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
    assert log.read_text().splitlines()[-1] == f"stopped; state kept in {state}"
    assert "Traceback" not in log.read_text()
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in state.iterdir()} == {
        "schedules.json": 0o600,
        FILE: 0o600,  # its WAL checkpointed and removed by the clean stop
    }

    with local_up(state, tmp_path / "second.log") as (_, aws):
        assert set(rows(aws, "test/term")) == {str(n) for n in range(50)}


def refused(state_dir: Path, log: Path) -> tuple[int, str]:
    """Start on a state that must be refused: (exit code, stderr)."""
    server = start(state_dir, log, free_port())
    deadline = time.monotonic() + START_TIMEOUT_S
    while server.poll() is None:
        if READY in log.read_text():
            server.kill()
            server.wait()
            raise AssertionError(f"qrie local up started on a damaged state:\n{log.read_text()}")
        assert time.monotonic() < deadline, f"qrie local up neither started nor refused:\n{log.read_text()}"
        time.sleep(0.2)
    return server.returncode, log.read_text()


def fingerprint(directory: Path) -> dict[str, tuple[int, str]]:
    """Each file's mode and content, and the directory's mode."""

    def content(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""

    return {p.name: (p.stat().st_mode, content(p)) for p in [directory, *directory.iterdir()]}


def test_a_damaged_row_in_the_middle_refuses_the_start_with_one_line_and_changes_nothing(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    records = []
    for n in range(3000):
        key = to_item({"RunId": "test/many", "Item": f"{n:05d}"})
        item = {**key, **to_item({"Status": "OK"})}
        records.append({"ddb": Settings().runs_table, "key": key, "item": item})
    create(state / FILE, records)
    data = (state / FILE).read_bytes()
    where = data.index(b'"Item":{"S":"01500"},"Status"')  # the item of row 1,501 (its key is another column)
    (state / FILE).write_bytes(data[:where] + b"#" * 10 + data[where + 10 :])
    before = fingerprint(state)

    code, err = refused(state, tmp_path / "refused.log")
    assert code == 1
    assert err.strip().splitlines() == [err.strip()]
    assert err.startswith(f"CorruptState: {state / FILE}: row 1501 of ddb_items (qrie_runs) is not JSON;")
    assert "--ephemeral" in err
    assert fingerprint(state) == before


def old_record(n: int) -> bytes:
    key = {"RunId": {"S": "test/old"}, "Item": {"S": f"{n:05d}"}}
    return json.dumps({"ddb": Settings().runs_table, "key": key, "item": key}).encode() + b"\n"


def test_an_old_state_damaged_in_the_middle_or_truncated_refuses_the_start_naming_the_file(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    snapshot = json.dumps({"generation": 1}).encode() + b"\n" + b"".join(old_record(n) for n in range(100))
    (state / "snapshot.jsonl").write_bytes(snapshot)
    lines = [old_record(n) for n in range(100, 4580)]
    lines[2000] = lines[2000][:40] + b"#" * 10 + lines[2000][50:]  # line 2,001 of 4,480
    (state / "wal.1.jsonl").write_bytes(b"".join(lines))
    before = fingerprint(state)
    code, err = refused(state, tmp_path / "wal.log")
    assert code == 1
    assert err.strip() == " ".join(
        f"CorruptState: {state}/wal.1.jsonl: line 2001 is damaged; qrie local up changed nothing: move the "
        "directory aside (or restore a backup of it) and start again, or start with --ephemeral".split()
    )
    assert fingerprint(state) == before

    (state / "wal.1.jsonl").write_bytes(b"".join(lines[:2000]))
    (state / "snapshot.jsonl").write_bytes(snapshot[:-30])  # truncated
    before = fingerprint(state)
    code, err = refused(state, tmp_path / "snapshot.log")
    assert code == 1
    assert err.startswith(f"CorruptState: {state}/snapshot.jsonl: line 101 is damaged;")
    assert "Traceback" not in err
    assert fingerprint(state) == before
