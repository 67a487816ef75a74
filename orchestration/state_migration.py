"""A state directory of an earlier ``qrie local up`` (``snapshot.jsonl`` plus ``wal.G.jsonl``,
after-image records) is moved once into ``state.sqlite3``.

Read strictly: the snapshot was renamed into place whole, so any bad line in it is damage; in the
log only a torn *final* line (the process killed while writing it, so never acknowledged) is
dropped. Any other bad line refuses the start, naming the file and line, with nothing changed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from orchestration.state_dir import fsync_directory
from orchestration.state_store import FILE, Record, create, refuse

SNAPSHOT = "snapshot.jsonl"


def legacy_files(directory: Path) -> list[Path]:
    return sorted([*directory.glob("snapshot.jsonl*"), *directory.glob("wal.*.jsonl")])


def migrate(directory: Path) -> int | None:
    """Copy an old state into ``state.sqlite3``: the number of records copied (None: nothing to
    copy). The old files stay until ``remove_legacy``, once the new file has been read."""
    if not legacy_files(directory) or (directory / FILE).exists():
        return None
    records = list(_records(directory))  # all read (and checked) before anything is written
    create(directory / FILE, records)
    return len(records)


def remove_legacy(directory: Path) -> None:
    for path in legacy_files(directory):
        path.unlink()
    fsync_directory(directory)


def _records(directory: Path) -> Iterator[Record]:
    generation = 0
    snapshot = directory / SNAPSHOT
    if snapshot.exists():
        lines = _lines(snapshot, torn_last_line_allowed=False, header=True)
        generation = next(lines)["generation"]
        yield from lines
    wal = directory / f"wal.{generation}.jsonl"  # an older generation's log is in the snapshot
    if wal.exists():
        yield from _lines(wal, torn_last_line_allowed=True)


def _lines(path: Path, torn_last_line_allowed: bool, header: bool = False) -> Iterator[Record]:
    """The records of a file (a snapshot's header first: ``{"generation": G}``)."""
    with path.open("rb") as lines:
        line = next(lines, None)
        number = 1
        if line is None and header:
            raise refuse(path, "it is empty")
        while line is not None:
            following = next(lines, None)
            try:
                record = json.loads(line)
                shaped = _header(record) if header and number == 1 else _well_formed(record)
                complete = line.endswith(b"\n") and shaped
            except ValueError:
                complete = False
            if not complete:
                if following is None and torn_last_line_allowed:
                    return  # torn by a kill while it was written: never acknowledged
                raise refuse(path, f"line {number} is damaged")
            yield record
            line, number = following, number + 1


def _header(record: object) -> bool:
    return isinstance(record, dict) and isinstance(record.get("generation"), int)


def _well_formed(record: object) -> bool:
    if not isinstance(record, dict):
        return False
    if "ddb" in record:
        return isinstance(record.get("key"), dict) and isinstance(record.get("item", 0), dict | None)
    if "s3" in record:
        return isinstance(record.get("body", 0), str | None)
    if "sqs" in record:
        body = record.get("body", 0)
        return record.get("purge") is True or ("id" in record and isinstance(body, str | None))
    return False
