"""AWS quotas that moto's Step Functions engine ignores or enforces only in part, enforced in the
local runtime with the error AWS raises, and the largest value seen of each (``bench/scale.py``
prints them next to their limits). Installed by the local runtime next to ``emulation``.

- 256 KiB (262,144 bytes) per state input/output and Task result: moto checks a state's output
  and a Task's result, but not a Task's input after ``Parameters`` (a Lambda request payload),
  nor a Map state's gathered result, which AWS also caps (a Distributed Map without
  ``ResultWriter`` collects every child's output into it): ``States.DataLimitExceeded``.
- ``States.ALL`` does not catch ``States.DataLimitExceeded`` nor ``States.Runtime`` on AWS (they
  are terminal); moto's matches everything.
- 25,000 events per execution history; each Distributed Map child is its own execution with its
  own history on AWS, where moto pools all children of a map run in one: ``States.Runtime``.
- 400 KB per DynamoDB item: moto already refuses writes over ~405,000 bytes
  (``ItemSizeTooLarge``); only the largest item written is recorded here.
- A Lambda's timeout is enforced by ``orchestration.dispatch`` (the handler's context).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
from moto.stepfunctions.parser.asl.component.common.error_name import error_equals_decl
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state import state as state_module
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
    distributed_item_processor_worker as map_worker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task, state_task_lambda
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

PAYLOAD_BYTES = 262_144  # Step Functions: state input/output, Task input and result
HISTORY_EVENTS = 25_000  # Step Functions: events in one execution's history
ITEM_BYTES = 400 * 1024  # DynamoDB: one item, attribute names included
SIZE_CHECKING_MODULES = (state_module, state_task_lambda, state_task_service)
UNCATCHABLE_BY_ALL = (StatesErrorNameType.StatesStatesDataLimitExceeded, StatesErrorNameType.StatesRuntime)


@dataclass
class Limits:
    payload_bytes: int = PAYLOAD_BYTES
    history_events: int = HISTORY_EVENTS
    item_bytes: int = ITEM_BYTES


@dataclass
class Peaks:
    """The largest payload, history and DynamoDB item seen since the last ``reset``."""

    payload_bytes: int = 0
    history_events: int = 0
    item_bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def see(self, name: str, value: int) -> None:
        with self._lock:
            if value > getattr(self, name):
                setattr(self, name, value)

    def reset(self) -> None:
        for name in ("payload_bytes", "history_events", "item_bytes"):
            setattr(self, name, 0)


class Enforcement:
    """``install()`` patches moto's engine (process-wide, like moto itself); ``uninstall()`` undoes it."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.peaks = Peaks()
        self._saved: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        for module in SIZE_CHECKING_MODULES:
            self._patch(module, "is_within_size_quota", self.within_payload_limit)
        self._patch(StateMap, "_eval_execution", self._checked_map_result(StateMap._eval_execution))
        for task in (state_task.StateTask, state_task_lambda.StateTaskLambda):  # integrations, Lambda ARNs
            self._patch(task, "_eval_parameters", self._checked_task_input(task._eval_parameters))
        self._patch(error_equals_decl.ErrorEqualsDecl, "_eval_body", _all_but_terminal_errors)
        self._patch(EventManager, "add_event", self._counted_event(EventManager.add_event))
        state = state_module.CommonStateField
        self._patch(state, "_eval_body", self._history_guard(state._eval_body))
        worker = map_worker.DistributedItemProcessorWorker
        self._patch(worker, "_eval_job", _own_history(worker._eval_job))
        self._patch(DynamoDBBackend, "put_item", self._measured_item(DynamoDBBackend.put_item))
        self._patch(DynamoDBBackend, "update_item", self._measured_item(DynamoDBBackend.update_item))

    def uninstall(self) -> None:
        while self._saved:
            owner, name, original = self._saved.pop()
            setattr(owner, name, original)

    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        self._saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, replacement)

    # ---- payloads ----------------------------------------------------------------------------

    def within_payload_limit(self, value: Any) -> bool:
        size = len((value if isinstance(value, str) else to_json_str(value)).encode("utf-8"))
        self.peaks.see("payload_bytes", size)
        return size <= self.limits.payload_bytes

    @staticmethod
    def _checked_map_result(original: Any) -> Any:
        def eval_execution(state: StateMap, env: Any) -> None:
            original(state, env)
            state._verify_size_quota(env=env, value=env.stack[-1])  # the gathered (or written) result

        return eval_execution

    @staticmethod
    def _checked_task_input(original: Any) -> Any:
        def eval_parameters(state: Any, env: Any) -> dict:
            parameters = original(state, env)
            state._verify_size_quota(env=env, value=parameters)  # a Lambda's request payload included
            return parameters

        return eval_parameters

    # ---- execution history -------------------------------------------------------------------

    def _counted_event(self, original: Any) -> Any:
        peaks = self.peaks

        def add_event(manager: EventManager, *args: Any, **kwargs: Any) -> int:
            event_id = original(manager, *args, **kwargs)
            peaks.see("history_events", event_id)  # ids count from 1 in each history
            return event_id

        return add_event

    def _history_guard(self, original: Any) -> Any:
        limits = self.limits

        def eval_body(state: Any, env: Any) -> None:
            events = len(env.event_manager._history_event_list)
            if events >= limits.history_events:
                error = StatesErrorName(typ=StatesErrorNameType.StatesRuntime)
                cause = f"the execution history reached {events} events (quota {limits.history_events})"
                raise FailureEventException(
                    failure_event=FailureEvent(
                        env=env,
                        error_name=error,
                        event_type=HistoryEventType.ExecutionFailed,
                        event_details=EventDetails(
                            executionFailedEventDetails=ExecutionFailedEventDetails(
                                error=error.error_name, cause=cause
                            )
                        ),
                    )
                )
            original(state, env)

        return eval_body

    # ---- DynamoDB ------------------------------------------------------------------------------

    def _measured_item(self, original: Any) -> Any:
        peaks = self.peaks

        def write(backend: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
            item = original(backend, *args, **kwargs)
            if item is not None:
                peaks.see("item_bytes", item.size())
            return item

        return write


def _own_history(original: Any) -> Any:
    """Each Distributed Map child runs with its own history, as a child execution does on AWS."""

    def eval_job(worker: Any, env: Any, job: Any) -> None:
        env.event_manager = EventManager()
        original(worker, env, job)

    return eval_job


def _all_but_terminal_errors(decl: Any, env: Any) -> None:
    """``States.ALL`` matches every error except the terminal ones; a name matches itself."""
    error_name = env.stack[-1]
    terminal = isinstance(error_name, StatesErrorName) and error_name.typ in UNCATCHABLE_BY_ALL
    if terminal and error_equals_decl.ErrorEqualsDecl._STATE_ALL_ERROR in decl.error_names:
        env.stack.pop()
        env.stack.append(False)
        return
    _ORIGINAL_ERROR_EQUALS(decl, env)


_ORIGINAL_ERROR_EQUALS = error_equals_decl.ErrorEqualsDecl._eval_body
