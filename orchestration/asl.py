"""The ASL files in ``statemachines/``: the single source of truth for both runtimes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tasks.registry import TASKS

ASL_DIR = Path(__file__).resolve().parents[1] / "statemachines"
STATE_MACHINES = ("inventory", "scan")
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")  # CDK's DefinitionSubstitutions syntax; JSONPath's "$." is not one


def asl_path(name: str) -> Path:
    return ASL_DIR / f"{name}.asl.json"


def available() -> tuple[str, ...]:
    return tuple(n for n in STATE_MACHINES if asl_path(n).exists())


def raw(name: str) -> str:
    return asl_path(name).read_text()


def substitutions_in(name: str) -> set[str]:
    """Every ``${...}`` the definition needs (CDK must provide each one)."""
    return set(PLACEHOLDER.findall(raw(name)))


def render(name: str, values: dict[str, str], fast_retries: bool = False) -> str:
    """The definition with its substitutions made; a missing one raises KeyError.

    ``fast_retries`` is for tests only: moto's engine really sleeps between retries, so every
    Retry interval becomes one second with no growth (the retry logic itself is unchanged)."""
    check_timeouts(name)
    definition: Any = json.loads(PLACEHOLDER.sub(lambda m: values[m.group(1)], raw(name)))
    if fast_retries:
        _shorten_retries(definition)
    return json.dumps(definition)


def tasks_in(node: Any) -> Iterator[dict[str, Any]]:
    """Every Task state of a definition, nested ones (map item processors) included."""
    if isinstance(node, dict):
        if node.get("Type") == "Task":
            yield node
        for value in node.values():
            yield from tasks_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from tasks_in(value)


def check_timeouts(name: str) -> None:
    """Every Task's TimeoutSeconds is its task's ``TaskSpec.state_timeout_s``, so the deployed
    Lambda timeouts (CDK reads the same TaskSpecs) and the ASL cannot drift apart."""
    by_substitution = {t.substitution: t for t in TASKS}
    for task in tasks_in(json.loads(raw(name))):
        function = PLACEHOLDER.fullmatch(task["Parameters"]["FunctionName"])
        spec = by_substitution[function.group(1)] if function else None
        if spec is None or task.get("TimeoutSeconds") != spec.state_timeout_s:
            expected = spec.state_timeout_s if spec else "a registered task"
            raise ValueError(
                f"statemachines/{name}.asl.json: a Task invoking {task['Parameters']['FunctionName']} "
                f"has TimeoutSeconds {task.get('TimeoutSeconds')}, expected {expected}"
            )


def _shorten_retries(node: Any) -> None:
    if isinstance(node, dict):
        for retrier in node.get("Retry", []):
            retrier.update(IntervalSeconds=1, BackoffRate=1)
            retrier.pop("JitterStrategy", None)
        for value in node.values():
            _shorten_retries(value)
    elif isinstance(node, list):
        for value in node:
            _shorten_retries(value)
