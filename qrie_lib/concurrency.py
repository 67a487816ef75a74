"""Customer calls in parallel, without touching the operator state from more than one thread.

Two pieces, the same code in a Lambda and in the local runtime:

- ``fan_out(width, read, items)``: a collector's per-resource describes (one S3 bucket's calls,
  one KMS key's) run on up to ``width`` threads. The threads make customer calls only.
- ``customer_io()``: marks a stretch of a handler that makes customer calls only. In a Lambda it
  does nothing. The local runtime runs its in-process handlers under one ``HandlerLock`` (moto's
  backends are not thread-safe, and the operator state is moto's), and a handler lets go of it
  for that stretch: customer I/O overlaps, operator reads and writes stay one at a time.

The per-account bound on calls in flight is the client factory's (``Aws``), whatever the threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from typing import Any, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def fan_out(width: int, read: Callable[[Item], Result], items: Iterable[Item]) -> list[Result]:
    """``[read(i) for i in items]``, up to ``width`` at a time; in order; the first error raised."""
    items = list(items)
    if width <= 1 or len(items) <= 1:
        return [read(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(width, len(items)), thread_name_prefix="qrie-describe") as pool:
        return list(pool.map(read, items))


class HandlerLock:
    """The local runtime's lock around an in-process handler; ``released()`` lets go of it in the
    thread that holds it, for customer I/O, and takes it back after."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder = threading.local()

    def __enter__(self) -> HandlerLock:
        self._lock.acquire()
        self._holder.held = True
        return self

    def __exit__(self, *_: object) -> None:
        self._holder.held = False
        self._lock.release()

    @contextmanager
    def released(self) -> Iterator[None]:
        if not getattr(self._holder, "held", False):  # not a handler's thread: nothing to let go
            yield
            return
        self.__exit__()
        try:
            yield
        finally:
            self.__enter__()


_handler_lock: HandlerLock | None = None


def install_handler_lock(lock: HandlerLock | None) -> None:
    """The local runtime's dispatch installs its lock (None: uninstalled)."""
    global _handler_lock  # noqa: PLW0603 - one in-process Lambda dispatch per process
    _handler_lock = lock


def customer_io() -> Any:
    """Customer calls only, until the block ends: the handler lock, if any, is let go meanwhile."""
    lock = _handler_lock
    return lock.released() if lock is not None else nullcontext()
