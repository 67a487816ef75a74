"""A small discrete-event simulator: processes are generators that yield commands (``delay``,
``acquire``/``release`` of a ``Slots``, ``each`` to run sub-processes to their end), on one
simulated clock. ``bench.fanout_model`` builds the deployed fan-out from them."""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Generator, Iterable
from typing import Any

Process = Generator[Any, Any, None]
Resume = Callable[[], None]


class Sim:
    def __init__(self) -> None:
        self.now = 0.0
        self._queue: list[tuple[float, int, Resume]] = []
        self._order = itertools.count()

    def at(self, when: float, resume: Resume) -> None:
        heapq.heappush(self._queue, (when, next(self._order), resume))

    def start(self, process: Process, done: Resume | None = None) -> None:
        def step() -> None:
            try:
                command = next(process)
            except StopIteration:
                if done:
                    done()
                return
            command(self, step)

        self.at(self.now, step)

    def run(self) -> float:
        while self._queue:
            self.now, _, resume = heapq.heappop(self._queue)
            resume()
        return self.now


class Slots:
    """At most ``capacity`` holders at once (a Map's MaxConcurrency, the handler lock); waiters
    are served in arrival order. ``peak`` is the most held at once."""

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity
        self.held = 0
        self.peak = 0
        self._waiting: deque[Resume] = deque()

    def acquire(self) -> Callable[[Sim, Resume], None]:
        def command(sim: Sim, resume: Resume) -> None:
            if self.held < self.capacity:
                self._take()
                sim.at(sim.now, resume)
            else:
                self._waiting.append(resume)

        return command

    def release(self) -> Callable[[Sim, Resume], None]:
        def command(sim: Sim, resume: Resume) -> None:
            self.held -= 1
            if self._waiting:
                self._take()
                sim.at(sim.now, self._waiting.popleft())
            sim.at(sim.now, resume)

        return command

    def _take(self) -> None:
        self.held += 1
        self.peak = max(self.peak, self.held)


def delay(seconds: float) -> Callable[[Sim, Resume], None]:
    return lambda sim, resume: sim.at(sim.now + max(0.0, seconds), resume)


def each(processes: Iterable[Process]) -> Callable[[Sim, Resume], None]:
    """Start every process now; resume when all have ended."""

    def command(sim: Sim, resume: Resume) -> None:
        started = list(processes)
        left = [len(started)]
        if not started:
            sim.at(sim.now, resume)
            return

        def one_done() -> None:
            left[0] -= 1
            if left[0] == 0:
                resume()

        for process in started:
            sim.start(process, one_done)

    return command
