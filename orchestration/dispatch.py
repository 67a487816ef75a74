"""The in-process Lambda: moto's Step Functions engine invokes a Task's Lambda through
``LambdaSimpleBackend.invoke``; we replace it with a dispatch to the registered task handler, so
the real ASL runs the real handlers. A handler's exception becomes the Lambda error payload
(``errorType`` = class name) with the ``x-amz-function-error`` header, as on AWS, so Retry and
Catch match named errors. Each handler gets its TaskSpec's timeout: the context's remaining time
counts down from it (the clock's time plus the simulated latency its operator calls were charged,
``orchestration.operator_calls``), and a handler that runs past it fails with ``Sandbox.Timedout``
as on AWS (the clock is injectable, so tests never sleep). Each invocation's profile is kept."""

from __future__ import annotations

import contextvars
import functools
import json
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestration.call_profile import Profile
from qrie_lib.concurrency import HandlerLock, install_handler_lock
from tasks.registry import BY_FUNCTION_NAME, TaskSpec

Clock = Callable[[], float]  # seconds, monotonic
MAX_PROFILES = 500_000  # ~0.5 KB each
TIMED_OUT = "Sandbox.Timedout"  # the error Step Functions reports for a Lambda that timed out


@dataclass
class LocalContext:
    """The parts of the Lambda context object that handlers and powertools use."""

    spec: TaskSpec
    invoked_function_arn: str
    clock: Clock = time.monotonic
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    deadline: float = 0.0
    charged_s: float = 0.0  # simulated AWS latency of its calls, on top of the clock's time

    def __post_init__(self) -> None:
        self.deadline = self.clock() + self.spec.timeout_s

    def charge(self, seconds: float) -> None:
        self.charged_s += seconds

    @property
    def function_name(self) -> str:
        return self.spec.function_name

    @property
    def memory_limit_in_mb(self) -> int:
        return self.spec.memory_mb

    @property
    def function_version(self) -> str:
        return "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - self.clock() - self.charged_s) * 1000))

    def timed_out(self) -> bool:
        return self.clock() + self.charged_s > self.deadline


class TimedHandlerLock(HandlerLock):
    """The handler lock, keeping how long this thread held it and waited to take it back after
    customer I/O: an invocation's share of the runtime's one-at-a-time work (``Profile.locked_s``)."""

    def __init__(self) -> None:
        super().__init__()
        self._times = threading.local()

    def start(self) -> None:
        self._times.held_s = self._times.waited_s = 0.0

    def times(self) -> tuple[float, float]:
        return getattr(self._times, "held_s", 0.0), getattr(self._times, "waited_s", 0.0)

    def __enter__(self) -> TimedHandlerLock:
        asked = time.perf_counter()
        super().__enter__()
        self._times.since = time.perf_counter()
        self._times.waited_s = getattr(self._times, "waited_s", 0.0) + self._times.since - asked
        return self

    def __exit__(self, *exc: object) -> None:
        self._times.held_s = getattr(self._times, "held_s", 0.0) + time.perf_counter() - self._times.since
        super().__exit__(*exc)


class LambdaTimedOut(BaseException):  # not an Exception: no handler's `except Exception` catches it
    """Raised at a handler's next AWS call once its time is up: AWS would have stopped it there."""


@dataclass
class Invocation:
    """The task invocation running in this thread: what its operator calls are checked against and
    charged to (``CURRENT``), and its profile once it ended."""

    spec: TaskSpec
    context: LocalContext
    profile: Profile


CURRENT: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar("qrie_invocation", default=None)


class Dispatch:
    """Counts invocations per function, so tests can prove the patch took effect.

    Handlers run one at a time, except where they make customer calls only: moto's backends are
    not thread-safe (a DynamoDB transaction deep-copies the table while another thread writes it),
    and the engine runs Map iterations in threads. A handler lets go of the lock inside
    ``qrie_lib.concurrency.customer_io()`` (an inventory page's listing and describes), so the
    Map's concurrency (accounts, items per account) holds for customer calls, while operator reads
    and writes stay serial."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self.invocations: dict[str, int] = {}
        # one per invocation, in the order they ended (the latest, in a long-running `local up`)
        self.profiles: deque[Profile] = deque(maxlen=MAX_PROFILES)
        self._lock = TimedHandlerLock()
        self._original: Any = None
        self._original_client_for: Any = None

    def install(self) -> None:
        from moto.awslambda_simple.models import LambdaSimpleBackend  # moto loads only when used
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

        self._original = LambdaSimpleBackend.invoke
        # The engine builds a new Lambda client for every task it runs (~30 ms, a fifth of a small
        # task's time); one per region serves them all (botocore clients are thread-safe).
        self._original_client_for = original = lambda_eval_utils.boto_client_for
        client_for = functools.lru_cache(maxsize=None)(original)
        lambda_eval_utils.boto_client_for = lambda region, service, state_credentials=None: client_for(
            region, service
        )
        dispatch = self

        def invoke(
            backend: Any,
            function_name: str,
            qualifier: Any,
            body: Any,
            headers: Any,
            response_headers: dict[str, str],
        ) -> bytes:
            return dispatch.invoke(function_name, body, response_headers)

        LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]
        install_handler_lock(self._lock)

    def uninstall(self) -> None:
        from moto.awslambda_simple.models import LambdaSimpleBackend

        install_handler_lock(None)
        if self._original is not None:
            LambdaSimpleBackend.invoke = self._original  # type: ignore[method-assign]
        if self._original_client_for is not None:
            from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

            lambda_eval_utils.boto_client_for = self._original_client_for

    def invoke(self, function: str, body: Any, response_headers: dict[str, str]) -> bytes:
        name = function.rsplit(":", 1)[-1] if function.startswith("arn:") else function
        spec = BY_FUNCTION_NAME.get(name)
        if spec is None:
            response_headers["x-amz-function-error"] = "Unhandled"
            return _error("ResourceNotFoundException", f"no task registered as {name}")
        self.invocations[name] = self.invocations.get(name, 0) + 1
        event = json.loads(body) if body else {}
        context = LocalContext(spec, function, self.clock)
        invocation = Invocation(spec, context, Profile(name, work_item(event)))
        token = CURRENT.set(invocation)
        try:
            with self._lock:
                started = time.perf_counter()  # its own time, not the wait for its turn
                self._lock.start()
                try:
                    result = spec.load()(event, context)
                finally:
                    # Disabled metrics are still kept, and powertools prints them once a metric
                    # holds 100 values: each invocation starts with none, as a Lambda's does.
                    from tasks.common import metrics

                    metrics.clear_metrics()
        except LambdaTimedOut:
            error: tuple[str, str, list[str]] | None = (TIMED_OUT, timed_out(spec), [])
        except Exception as exc:
            error = (type(exc).__name__, str(exc), traceback.format_exception(exc))
        else:  # AWS would have stopped it at the deadline: its work is not returned
            error = (TIMED_OUT, timed_out(spec), []) if context.timed_out() else None
        finally:
            CURRENT.reset(token)
        self._record(invocation, time.perf_counter() - started, error[0] if error else "")
        if error:
            response_headers["x-amz-function-error"] = "Unhandled"
            return _error(*error)
        return json.dumps(result, default=str).encode()

    def _record(self, invocation: Invocation, real_s: float, error: str) -> None:
        profile = invocation.profile
        profile.real_s, profile.simulated_s, profile.error = real_s, invocation.context.charged_s, error
        profile.locked_s, waited_s = self._lock.times()
        profile.unlocked_s = max(0.0, real_s - profile.locked_s - waited_s)
        self.profiles.append(profile)


def work_item(event: Any) -> str:
    """``account/service/region`` of the work item an invocation works on ("" if none)."""
    item = event.get("item") if isinstance(event, dict) else None
    if not isinstance(item, dict):
        return ""
    return "/".join(str(item.get(k) or "") for k in ("account_id", "service", "region"))


def timed_out(spec: TaskSpec) -> str:
    return f"Task timed out after {spec.timeout_s:.2f} seconds"


def _error(error_type: str, message: str, trace: list[str] | None = None) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": trace or []}).encode()
