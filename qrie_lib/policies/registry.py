"""The one catalogue of policies, discovered: every module of this package that declares
``POLICIES`` contributes them. Adding a policy is declaring it in a module here."""

from __future__ import annotations

import importlib
import pkgutil

from qrie_lib import policies as _package
from qrie_lib.errors import UnknownPolicy
from qrie_lib.policies.base import Policy


def _discover() -> dict[str, Policy]:
    found: dict[str, Policy] = {}
    for info in sorted(pkgutil.iter_modules(_package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{_package.__name__}.{info.name}")
        for policy in getattr(module, "POLICIES", ()):
            if policy.policy_id in found:
                raise ValueError(f"policy {policy.policy_id!r} is declared twice")
            found[policy.policy_id] = policy
    return found


CATALOGUE: dict[str, Policy] = _discover()


def get_policy(policy_id: str) -> Policy:
    try:
        return CATALOGUE[policy_id]
    except KeyError:
        raise UnknownPolicy(f"unknown policy {policy_id!r}") from None


def policies_for(service: str) -> list[Policy]:
    return [p for p in CATALOGUE.values() if p.service == service]
