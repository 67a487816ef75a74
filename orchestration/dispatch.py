"""The in-process Lambda: moto's Step Functions engine invokes a Task's Lambda through
``LambdaSimpleBackend.invoke``; we replace it with a dispatch to the registered task handler, so
the real ASL runs the real handlers. A handler's exception becomes the Lambda error payload
(``errorType`` = class name) with the ``x-amz-function-error`` header, as on AWS, so Retry and
Catch match named errors. Each handler gets its TaskSpec's timeout: the context's remaining time
counts down from it, and a handler that runs past it fails with ``Sandbox.Timedout`` as on AWS
(the clock is injectable, so tests never sleep)."""

from __future__ import annotations

import functools
import json
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from qrie_lib.concurrency import HandlerLock, install_handler_lock
from tasks.registry import BY_FUNCTION_NAME, TaskSpec

Clock = Callable[[], float]  # seconds, monotonic
TIMED_OUT = "Sandbox.Timedout"  # the error Step Functions reports for a Lambda that timed out


@dataclass
class LocalContext:
    """The parts of the Lambda context object that handlers and powertools use."""

    spec: TaskSpec
    invoked_function_arn: str
    clock: Clock = time.monotonic
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    deadline: float = 0.0

    def __post_init__(self) -> None:
        self.deadline = self.clock() + self.spec.timeout_s

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
        return max(0, int((self.deadline - self.clock()) * 1000))

    def timed_out(self) -> bool:
        return self.clock() > self.deadline


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
        self._lock = HandlerLock()
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
        try:
            with self._lock:
                try:
                    result = spec.load()(event, context)
                finally:
                    # Disabled metrics are still kept, and powertools prints them once a metric
                    # holds 100 values: each invocation starts with none, as a Lambda's does.
                    from tasks.common import metrics

                    metrics.clear_metrics()
        except Exception as exc:
            response_headers["x-amz-function-error"] = "Unhandled"
            return _error(type(exc).__name__, str(exc), traceback.format_exception(exc))
        if context.timed_out():  # AWS would have stopped it at the deadline: its work is not returned
            response_headers["x-amz-function-error"] = "Unhandled"
            return _error(TIMED_OUT, f"Task timed out after {spec.timeout_s:.2f} seconds")
        return json.dumps(result, default=str).encode()


def _error(error_type: str, message: str, trace: list[str] | None = None) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": trace or []}).encode()
