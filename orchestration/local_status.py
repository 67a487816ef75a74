"""What ``qrie local up`` tells the person running it: runs started and finished, failed items,
events processed — read from the operator state's changes (``durable.OperatorChanges``), not one
line per AWS call."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from orchestration.durable import Record

HEADER = "#run"
FINISHED = ("SUCCEEDED", "SUCCEEDED_WITH_FAILURES", "FAILED", "SKIPPED")  # qrie_lib.models.RunStatus


def _s(item: dict[str, Any], name: str) -> str:
    value = item.get(name) or {}
    return str(value.get("S") or value.get("N") or "")


class LocalStatus:
    """A listener of operator changes: one line per run start, run end and failed item; events
    processed and dead-lettered are counted and reported by ``flush`` (called every few seconds)."""

    def __init__(self, runs_table: str, events_queue: str, say: Callable[[str], None]) -> None:
        self.runs_table = runs_table
        self.events_queue = events_queue
        self.say = say
        self.running: set[str] = set()
        self.finished: set[str] = set()
        self.events = {"processed": 0, "dead-lettered": 0}
        self._reported = dict(self.events)
        self._lock = threading.Lock()

    def __call__(self, record: Record) -> None:
        if record.get("ddb") == self.runs_table and record["item"]:
            self._run_row(record["item"])
        elif record.get("sqs") == self.events_queue and record["body"] is None:
            with self._lock:
                self.events["processed"] += 1
        elif record.get("sqs") == f"{self.events_queue}_dlq" and record.get("body"):
            with self._lock:
                self.events["dead-lettered"] += 1

    def _run_row(self, item: dict[str, Any]) -> None:
        run_id, row, status = _s(item, "RunId"), _s(item, "Item"), _s(item, "Status")
        if row == HEADER and status == "RUNNING" and run_id not in self.running:
            self.running.add(run_id)
            self.say(f"run started   {run_id}")
        elif row == HEADER and status in FINISHED and run_id not in self.finished:
            self.finished.add(run_id)
            message = _s(item.get("Summary", {}).get("M", {}), "message")
            self.say(f"run finished  {run_id}: {status}; {message}")
        elif not row.startswith("#") and status == "FAILED":
            self.say(f"  item failed {run_id} {row}: {_s(item, 'Error')}: {_s(item, 'Cause')[:200]}")

    def flush(self) -> None:
        with self._lock:
            if self.events == self._reported:
                return
            self._reported = counts = dict(self.events)
        self.say(f"events: {counts['processed']} processed, {counts['dead-lettered']} dead-lettered")
