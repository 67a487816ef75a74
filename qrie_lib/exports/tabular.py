"""CSV and JSON Lines: one line per finding row."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

# The described finding row's columns (qrie_lib.exports.described) but the evidence, a nested map.
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
    # after the columns of earlier versions, so a reader of those still finds its columns
    "last_confirmed",
    "account_name",
    "title",
    "compliance",  # references joined with "; "
    "remediation",
)


def csv_header() -> str:
    return csv_line(dict(zip(CSV_FIELDS, CSV_FIELDS, strict=True)))


def csv_line(row: dict[str, Any]) -> str:
    buffer = io.StringIO()
    compliance = row.get("compliance")
    cells = row | ({"compliance": "; ".join(compliance)} if isinstance(compliance, list) else {})
    csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore").writerow(cells)
    return buffer.getvalue()


def jsonl_line(row: dict[str, Any]) -> str:
    return json.dumps(row, separators=(",", ":"), default=str) + "\n"
