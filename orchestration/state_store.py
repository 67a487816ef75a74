"""The operator state's file, ``state.sqlite3``: one row per operator item, as it is now.

SQLite (stdlib) in WAL journal mode with ``synchronous=FULL``: a commit is fsync'd before it
returns, a commit torn by a kill was never acknowledged and is rolled back by SQLite, and a
restart reads the current rows (nothing to replay or compact). ``locking_mode=EXCLUSIVE``: one
process owns the file, and SQLite needs no shared-memory ``-shm`` file.

Opening refuses a damaged file (``PRAGMA quick_check``, a WAL that SQLite would read only in
part, then every row's JSON and key as it is read) with ``CorruptState``, one line naming the file
and what to do, and changes nothing on disk: the file is read from a private copy, since merely
opening a WAL database writes beside it."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orchestration.state_dir import create_private, fsync_directory
from qrie_lib.errors import QrieError

FILE = "state.sqlite3"
VERSION = 1  # PRAGMA user_version: the schema below
SCHEMA = (
    "CREATE TABLE ddb_items (tbl TEXT NOT NULL, key TEXT NOT NULL, item TEXT NOT NULL,"
    " PRIMARY KEY (tbl, key))",
    "CREATE TABLE s3_objects (key TEXT PRIMARY KEY, body BLOB NOT NULL)",
    # seq: a message's place in its queue (a message added again, e.g. to the DLQ, goes last)
    "CREATE TABLE sqs_messages (seq INTEGER PRIMARY KEY, queue TEXT NOT NULL, id TEXT NOT NULL UNIQUE,"
    " body TEXT NOT NULL, attributes TEXT NOT NULL)",
    f"PRAGMA user_version = {VERSION}",
)
WHAT_TO_DO = (
    "qrie local up changed nothing: move the directory aside (or restore a backup of it) and start "
    "again, or start with --ephemeral"
)
Record = dict[str, Any]
WAL_HEADER, FRAME_HEADER = 32, 24  # https://www.sqlite.org/fileformat2.html#walformat


class CorruptState(QrieError):
    """The state directory cannot be read as it was written."""


def refuse(path: Path, what: str) -> CorruptState:
    return CorruptState(f"{path}: {what}; {WHAT_TO_DO}")


def connect(path: Path, fsync: bool = True) -> sqlite3.Connection:
    # check_same_thread=False: moto's request threads write, always under OperatorChanges' lock.
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA locking_mode = EXCLUSIVE")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {'FULL' if fsync else 'OFF'}")
    return db


def create(path: Path, records: list[Record] | None = None) -> None:
    """A new state file holding ``records``, written aside and renamed into place: it exists
    only whole (a kill while it is made leaves no half-made file to refuse at the next start)."""
    partial = path.with_name(f"{path.name}.new")
    for stale in (partial, partial.with_name(f"{partial.name}-wal")):
        stale.unlink(missing_ok=True)
    create_private(partial)  # SQLite gives its -wal file the database's mode
    store = StateStore(partial)
    store.db.executescript(";".join(SCHEMA))
    store.write(records or [])
    store.close()
    os.replace(partial, path)
    fsync_directory(path.parent)


class StateStore:
    """Writes operator changes (after-images, as ``durable.OperatorChanges`` records them)."""

    def __init__(self, path: Path, fsync: bool = True) -> None:
        self.db = connect(path, fsync)

    def write(self, records: list[Record]) -> None:
        """One transaction: the records of a DynamoDB transaction are kept all or none."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for record in records:
                self._apply(record)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _apply(self, record: Record) -> None:
        execute = self.db.execute
        if "ddb" in record:
            key = key_json(record["key"])
            if record["item"] is None:
                execute("DELETE FROM ddb_items WHERE tbl = ? AND key = ?", (record["ddb"], key))
            else:
                item = json.dumps(record["item"], separators=(",", ":"))
                execute("INSERT OR REPLACE INTO ddb_items VALUES (?, ?, ?)", (record["ddb"], key, item))
        elif "s3" in record:
            if record["body"] is None:
                execute("DELETE FROM s3_objects WHERE key = ?", (record["s3"],))
            else:
                body = base64.b64decode(record["body"])
                execute("INSERT OR REPLACE INTO s3_objects VALUES (?, ?)", (record["s3"], body))
        elif record.get("purge"):
            execute("DELETE FROM sqs_messages WHERE queue = ?", (record["sqs"],))
        elif record["body"] is None:
            execute("DELETE FROM sqs_messages WHERE id = ?", (record["id"],))
        else:  # REPLACE deletes the message's old row: the new one is last (highest seq)
            attributes = json.dumps(record.get("attributes") or {})
            execute(
                "INSERT OR REPLACE INTO sqs_messages (queue, id, body, attributes) VALUES (?, ?, ?, ?)",
                (record["sqs"], record["id"], record["body"], attributes),
            )

    def close(self) -> None:
        self.db.close()  # the last connection checkpoints the WAL into the file and removes it


def key_json(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


class Rows:
    """The rows of a checked file, each validated as it is read (a bad one: ``CorruptState``)."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db, self.path = db, path

    def items(self, tables: frozenset[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        """(table, item) of the given tables (rows of other tables stay in the file, unread)."""
        for rowid, table, key, text in self.db.execute("SELECT rowid, tbl, key, item FROM ddb_items"):
            if table not in tables:
                continue
            item = self._json(text, f"row {rowid} of ddb_items ({table})")
            keys = self._json(key, f"the key of row {rowid} of ddb_items ({table})")
            if (
                not isinstance(item, dict)
                or not isinstance(keys, dict)
                or key_json({name: item.get(name) for name in keys}) != key
            ):
                raise refuse(self.path, f"row {rowid} of ddb_items ({table}) does not hold its key")
            yield table, item

    def objects(self) -> Iterator[tuple[str, bytes]]:
        yield from self.db.execute("SELECT key, body FROM s3_objects")

    def messages(self, queues: frozenset[str]) -> Iterator[Record]:
        """Each queue's messages, oldest first."""
        for seq, queue, message_id, body, text in self.db.execute(
            "SELECT seq, queue, id, body, attributes FROM sqs_messages ORDER BY seq"
        ):
            if queue in queues:
                attributes = self._json(text, f"row {seq} of sqs_messages")
                yield {"sqs": queue, "id": message_id, "body": body, "attributes": attributes}

    def _json(self, text: str, where: str) -> Any:
        try:
            return json.loads(text)
        except (TypeError, ValueError):
            raise refuse(self.path, f"{where} is not JSON") from None


@contextmanager
def checked(path: Path) -> Iterator[Rows]:
    """The file's rows, if it is a sound Qrie state file; read from a copy (with its WAL), so that
    a refusal leaves the directory exactly as it was."""
    with tempfile.TemporaryDirectory(prefix="qrie-state-") as scratch:
        copy = Path(scratch) / FILE
        shutil.copyfile(path, copy)
        wal = path.with_name(f"{FILE}-wal")
        log = wal.read_bytes() if wal.exists() else b""
        copy.with_name(wal.name).write_bytes(log)
        db = None
        try:
            db = connect(copy, fsync=False)
            problems = [row[0] for row in db.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise refuse(path, f"SQLite finds it damaged ({problems[0]})")
            frames_read = db.execute("PRAGMA wal_checkpoint").fetchone()[1]
            page_size = db.execute("PRAGMA page_size").fetchone()[0]
            if wal_damaged(log, frames_read, page_size):
                lost = "SQLite would drop the transactions committed after it"
                raise refuse(wal, f"damaged after frame {frames_read}: {lost}")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version != VERSION:
                raise refuse(path, f"schema version {version}, not {VERSION}: not a state this qrie wrote")
            yield Rows(db, path)
        except sqlite3.DatabaseError as exc:
            raise refuse(path, f"SQLite cannot read it ({exc})") from None
        finally:
            if db is not None:
                db.close()


def wal_damaged(log: bytes, frames_read: int, page_size: int) -> bool:
    """SQLite reads a WAL up to its first bad frame and silently ignores the rest. What it ignores
    was never acknowledged when it is the tail of the last transaction (torn by a kill, or not
    fully on disk at a power cut); it is damage when a transaction committed there is followed by
    more frames (that commit was fsync'd before the next began)."""
    size = FRAME_HEADER + page_size
    count = (len(log) - WAL_HEADER) // size
    if count <= frames_read:
        return False
    salts = log[WAL_HEADER + 8 : WAL_HEADER + 16]  # frame 1's: this generation of the WAL
    committed = False
    for number in range(frames_read + 1, count + 1):
        offset = WAL_HEADER + (number - 1) * size
        header = log[offset : offset + FRAME_HEADER]
        if header[8:16] != salts:
            continue  # left from an earlier generation
        if committed:
            return True
        committed = struct.unpack(">I", header[4:8])[0] != 0  # a commit frame holds the database size
    return False
