"""Streaming exports: rows are formatted and written page by page as the findings index is read,
so an export of any size holds one page (``qrie findings --format csv|jsonl|ocsf``)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

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


def _ocsf_item(row: dict[str, Any]) -> str:
    return "\n" + json.dumps(ocsf_record(row), separators=(",", ":"))


FORMATS = {
    "csv": Format(csv_line, header=csv_header()),
    "jsonl": Format(jsonl_line),
    # A JSON array of OCSF Detection Findings, as Prowler's json-ocsf output: one record a line.
    "ocsf": Format(_ocsf_item, header="[", separator=",", footer="\n]\n"),
}


def pages(stores: Stores, **filters: Any) -> Iterator[list[dict[str, Any]]]:
    """Finding rows a page at a time, through the findings indexes (``qrie_lib.views``)."""
    token: str | None = None
    while True:
        rows, token = findings_page(stores, token=token, limit=PAGE, **filters)
        if rows:
            yield rows
        if token is None:
            return


def write(out: TextIO, format_name: str, row_pages: Iterable[list[dict[str, Any]]]) -> int:
    """Write every row in ``format_name`` as pages arrive; the number of rows written."""
    fmt, written = FORMATS[format_name], 0
    row_pages = iter(row_pages)
    first = next(row_pages, [])  # a bad filter fails on the first query, before any output
    out.write(fmt.header)
    for page in itertools.chain([first], row_pages):
        for row in page:
            out.write((fmt.separator if written else "") + fmt.line(row))
            written += 1
    out.write(fmt.footer)
    return written
