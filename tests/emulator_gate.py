"""A delayed emulator that counts overlapping requests, with no clock in the assertions.

``Gate`` wraps moto's in-process request handling: each gated request (signed with a key
``gated`` accepts, by default an account role's) is held until ``open_when(in_flight)`` has been
true once (the gate then stays open), or for at most ``bound_s``. Code that makes its calls one
at a time never opens it: each call waits the bound, and one call is in flight at a time;
concurrent code opens it at once. The most requests in flight, in all and per signing key (one
key per account's role), are kept."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from moto.core.botocore_stubber import BotocoreStubber

from bench.latency import signing_key


def role_key(key: str) -> bool:
    """Temporary credentials (AssumeRole's, ASIA...): the accounts' roles. The process's own calls,
    AssumeRole itself and the Step Functions engine's Lambda invokes use other keys: not gated."""
    return key.startswith("ASIA")


class Gate:
    def __init__(
        self,
        open_when: Callable[[Counter[str]], bool],
        gated: Callable[[str], bool] = role_key,
        bound_s: float = 5.0,
    ) -> None:
        self.open_when, self.gated, self.bound_s = open_when, gated, bound_s
        self.in_flight: Counter[str] = Counter()
        self.max_total = 0
        self.max_per_key: Counter[str] = Counter()
        self.max_keys = 0  # most distinct keys with a request in flight at once
        self.opened = False
        self._cond = threading.Condition()

    def hold(self, key: str) -> None:
        with self._cond:
            self.in_flight[key] += 1
            self.max_total = max(self.max_total, sum(self.in_flight.values()))
            self.max_per_key[key] = max(self.max_per_key[key], self.in_flight[key])
            self.max_keys = max(self.max_keys, sum(1 for n in self.in_flight.values() if n))
            if self.open_when(self.in_flight):
                self.opened = True
                self._cond.notify_all()
            self._cond.wait_for(lambda: self.opened, timeout=self.bound_s)

    def done(self, key: str) -> None:
        with self._cond:
            self.in_flight[key] -= 1

    @contextmanager
    def installed(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
        process = BotocoreStubber.process_request
        gate = self

        def held(stubber: BotocoreStubber, request: Any) -> Any:
            key = signing_key({"Authorization": _text(request.headers.get("Authorization"))})
            if not gate.gated(key):
                return process(stubber, request)
            gate.hold(key)
            try:
                return process(stubber, request)
            finally:
                gate.done(key)

        with monkeypatch.context() as patch:
            patch.setattr(BotocoreStubber, "process_request", held)
            yield self


def _text(value: str | bytes | None) -> str:
    return value.decode() if isinstance(value, bytes) else value or ""
