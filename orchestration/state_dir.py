"""The state directory of ``qrie local up``: private to its owner (it holds every account's
ExternalId, the confused-deputy secret, and every configuration) and used by one process at a time.

The directory is 0700 and its files 0600 whatever the umask; a directory left looser (by an older
version, or by hand) is tightened at start. The lock is ``flock`` on the directory itself, so that
claiming it writes nothing in it."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from qrie_lib.errors import QrieError

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


class StateInUse(QrieError):
    """Another ``qrie local up`` keeps its state in this directory."""


def claim(directory: Path) -> int:
    """Create ``directory`` (0700) if it is not there and lock it for this process: the lock's
    descriptor, to ``release``."""
    directory.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        in_use = f"{directory} is in use by another qrie local up; stop it or choose another --state-dir"
        raise StateInUse(in_use) from None
    return fd


def release(fd: int) -> None:
    os.close(fd)  # closing the descriptor releases the flock


def tighten(directory: Path) -> str | None:
    """Make ``directory`` 0700 and its files 0600: a line saying what was looser, or None."""
    was = directory.stat().st_mode & 0o777
    loose_files = [p for p in directory.iterdir() if p.is_file() and p.stat().st_mode & 0o077]
    if was == DIRECTORY_MODE and not loose_files:
        return None
    directory.chmod(DIRECTORY_MODE)
    for path in loose_files:
        path.chmod(FILE_MODE)
    return (
        f"{directory}: permissions tightened (it holds every account's ExternalId): the directory "
        f"to 0700 (was {was:04o}), {len(loose_files)} file(s) to 0600"
    )


def create_private(path: Path) -> None:
    """An empty file only its owner can read (``chmod`` too: the umask may take bits from 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically by ``data``, in a file only its owner can read."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    create_private(partial)
    partial.write_bytes(data)
    os.replace(partial, path)
