"""How the registries find their entries: every module of a package that declares a name (a
service, policies), keyed uniquely, so adding one is adding a module (or a data file)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any, TypeVar

T = TypeVar("T")


def declared(package: ModuleType, name: str) -> Iterator[Any]:
    """``name`` of each module of ``package`` that declares it, in module name order."""
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if hasattr(module, name):
            yield getattr(module, name)


def unique(entries: Iterable[T], key: Callable[[T], str], kind: str) -> dict[str, T]:
    """Entries by key; one declared twice is a bug, refused at import."""
    found: dict[str, T] = {}
    for entry in entries:
        if key(entry) in found:
            raise ValueError(f"{kind} {key(entry)!r} is declared twice")
        found[key(entry)] = entry
    return found
