"""The one catalogue of policies, discovered: every module of this package that declares
``POLICIES`` contributes them. Adding a policy is declaring it in a module here."""

from __future__ import annotations

import difflib

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
        raise UnknownPolicy(unknown_policy(policy_id)) from None


def unknown_policy(policy_id: str) -> str:
    """What to tell someone who typed an id the catalogue lacks: the closest ids, if any (a typo,
    another case)."""
    by_folded = {known.casefold(): known for known in CATALOGUE}
    folded = policy_id.casefold()
    close = (
        [folded] if folded in by_folded else difflib.get_close_matches(folded, by_folded, n=3, cutoff=0.75)
    )
    hint = f" (did you mean {' or '.join(repr(by_folded[c]) for c in close)}?)" if close else ""
    return f"unknown policy {policy_id!r}{hint}"


def policies_for(service: str) -> list[Policy]:
    return [p for p in CATALOGUE.values() if p.service == service]
