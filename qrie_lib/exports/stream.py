"""Streaming exports: rows are formatted and written page by page as the findings index is read,
so an export of any size holds one page (``qrie findings --format json|csv|jsonl|ocsf|asff``).
Rows are described (``described``: title, remediation, compliance, account name) as they come."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from qrie_lib.exports.asff import asff_finding
from qrie_lib.exports.described import described_pages
from qrie_lib.exports.ocsf import ocsf_record
from qrie_lib.exports.tabular import csv_header, csv_line, jsonl_line
from qrie_lib.stores import Stores
from qrie_lib.views import findings_page

PAGE = 200


@dataclass(frozen=True)
class Format:
    line: Callable[[dict[str, Any]], str]
    header: str = ""
    separator: str = ""  # between two records
    footer: str = ""


def json_array(record: Callable[[dict[str, Any]], dict[str, Any]]) -> Format:
    """A JSON array, one record a line (as Prowler's json-ocsf output)."""
    return Format(
        lambda row: "\n" + json.dumps(record(row), separators=(",", ":"), default=str),
        header="[",
        separator=",",
        footer="\n]\n",
    )


FORMATS = {
    "json": json_array(lambda row: row),
    "csv": Format(csv_line, header=csv_header()),
    "jsonl": Format(jsonl_line),
    "ocsf": json_array(ocsf_record),
}


def asff(product: str, operator_account: str, now: str) -> Format:
    """ASFF findings as Security Hub's BatchImportFindings takes them (at most 100 a call), for the
    operator account's default product (``exports.asff``)."""
    return json_array(
        lambda row: asff_finding(row, product=product, operator_account=operator_account, now=now)
    )


def pages(stores: Stores, **filters: Any) -> Iterator[list[dict[str, Any]]]:
    """Described finding rows a page at a time, through the findings indexes (``qrie_lib.views``)."""

    def rows() -> Iterator[list[dict[str, Any]]]:
        token: str | None = None
        while True:
            page, token = findings_page(stores, token=token, limit=PAGE, **filters)
            if page:
                yield page
            if token is None:
                return

    return described_pages(stores, rows())


def write(out: TextIO, fmt: str | Format, row_pages: Iterable[list[dict[str, Any]]]) -> int:
    """Write every row in ``fmt`` (a name of ``FORMATS``, or a Format) as pages arrive; the number
    of rows written."""
    fmt, written = FORMATS[fmt] if isinstance(fmt, str) else fmt, 0
    row_pages = iter(row_pages)
    first = next(row_pages, [])  # a bad filter fails on the first query, before any output
    out.write(fmt.header)
    for page in itertools.chain([first], row_pages):
        for row in page:
            out.write((fmt.separator if written else "") + fmt.line(row))
            written += 1
    out.write(fmt.footer)
    return written
