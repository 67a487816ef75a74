"""CSV and JSON Lines: one line per finding row."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

# The finding row's columns (qrie_lib.views.finding_row) but the evidence, a nested map.
CSV_FIELDS = (
    "arn",
    "policy_id",
    "state",
    "severity",
    "account_id",
    "region",
    "resource_type",
    "first_seen",
    "last_evaluated",
    "resolved_at",
    "resolved_reason",
    "reopen_count",
)


def csv_header() -> str:
    return csv_line(dict(zip(CSV_FIELDS, CSV_FIELDS, strict=True)))


def csv_line(row: dict[str, Any]) -> str:
    buffer = io.StringIO()
    csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore").writerow(row)
    return buffer.getvalue()


def jsonl_line(row: dict[str, Any]) -> str:
    return json.dumps(row, separators=(",", ":"), default=str) + "\n"
