"""The one catalogue of policies, discovered: every module of this package that declares
``POLICIES`` contributes them. Adding a policy is declaring it in a module here."""

from __future__ import annotations

from qrie_lib import policies as _package
from qrie_lib.discovery import declared, unique
from qrie_lib.errors import UnknownPolicy
from qrie_lib.policies.base import Policy

CATALOGUE: dict[str, Policy] = unique(
    (policy for policies in declared(_package, "POLICIES") for policy in policies),
    lambda policy: policy.policy_id,
    "policy",
)


def get_policy(policy_id: str) -> Policy:
    try:
        return CATALOGUE[policy_id]
    except KeyError:
        raise UnknownPolicy(f"unknown policy {policy_id!r}") from None


def policies_for(service: str) -> list[Policy]:
    return [p for p in CATALOGUE.values() if p.service == service]
