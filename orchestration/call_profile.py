"""What one task invocation did in the operator account: its calls per ``service.Operation``, the
DynamoDB items they read and wrote per table (and the write units those cost), the S3 bytes, and
its time: real (this machine) and simulated (AWS latency charged by ``orchestration.latency``).
The local runtime records one per invocation (``Dispatch.profiles``); ``bench.simulate`` builds its
model of a deployed run from them."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
WRITE_UNIT_BYTES = 1024  # DynamoDB: a write unit is one write of up to 1 KB


@dataclass
class Profile:
    function: str
    item: str = ""  # account/service/region of its work item, if it has one
    calls: Counter[str] = field(default_factory=Counter)  # "service.Operation"
    items_read: Counter[str] = field(default_factory=Counter)  # DynamoDB items, per table
    items_written: Counter[str] = field(default_factory=Counter)
    write_units: int = 0  # from the request's size: a lower bound for an UpdateItem of a larger item
    s3_bytes_read: int = 0
    s3_bytes_written: int = 0
    real_s: float = 0.0  # on this machine, the handler's whole run
    real_in_calls_s: float = 0.0  # of which waiting on the operator emulator's answers
    simulated_s: float = 0.0  # AWS latency charged for those calls
    locked_s: float = 0.0  # locally, of real_s: holding the runtime's one-at-a-time handler lock
    unlocked_s: float = 0.0  # locally, of real_s: customer I/O with the lock let go (not its waits)
    error: str = ""

    @property
    def aws_s(self) -> float:
        """Its duration on AWS: its own compute, and AWS's latency instead of the emulator's."""
        return max(0.0, self.real_s - self.real_in_calls_s) + self.simulated_s

    @property
    def items(self) -> int:
        """The DynamoDB items it read and wrote."""
        return sum(self.items_read.values()) + sum(self.items_written.values())

    def request(self, service: str, operation: str, params: dict[str, Any]) -> None:
        """Count a call from its API parameters (before it is sent)."""
        self.calls[f"{service}.{operation}"] += 1
        if service == "dynamodb":
            transactional = 2 if operation == "TransactWriteItems" else 1  # AWS bills it twice
            for table, item in written_items(operation, params):
                self.items_written[table] += 1
                self.write_units += transactional * write_units(item)
        elif service == "s3" and operation == "PutObject":
            body = params.get("Body", b"")
            self.s3_bytes_written += len(body) if isinstance(body, bytes | str) else 0

    def response(self, service: str, operation: str, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        """Count what a call's answer read."""
        if service == "dynamodb":
            table = params.get("TableName", "")
            if operation in ("Query", "Scan"):
                self.items_read[table] += parsed.get("ScannedCount", parsed.get("Count", 0))
            elif operation == "GetItem":
                self.items_read[table] += "Item" in parsed
            elif operation == "BatchGetItem":
                for name, items in parsed.get("Responses", {}).items():
                    self.items_read[name] += len(items)
        elif service == "s3" and operation == "GetObject":
            self.s3_bytes_read += int(parsed.get("ContentLength", 0))


def written_items(operation: str, params: dict[str, Any]) -> list[tuple[str, Any]]:
    """(table, item or key) of each item a DynamoDB request writes."""
    if operation in DYNAMODB_WRITES:
        return [(params.get("TableName", ""), params.get("Item") or params.get("Key"))]
    if operation == "BatchWriteItem":
        return [
            (table, next(iter(request.values())).get("Item") or next(iter(request.values())).get("Key"))
            for table, requests in params.get("RequestItems", {}).items()
            for request in requests
        ]
    if operation == "TransactWriteItems":  # a finding with its history item, ...
        return [
            (action["TableName"], action.get("Item") or action.get("Key"))
            for entry in params.get("TransactItems", [])
            for kind, action in entry.items()
            if kind != "ConditionCheck"
        ]
    return []


def write_units(item: Any) -> int:
    size = len(json.dumps(item, default=str)) if item is not None else 0
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))
