"""The one catalogue of policies. Adding a policy is declaring it in its service's module."""

from __future__ import annotations

from qrie_lib.errors import UnknownPolicy
from qrie_lib.policies import ec2, iam, s3
from qrie_lib.policies.base import Policy

CATALOGUE: dict[str, Policy] = {p.policy_id: p for p in (*s3.POLICIES, *ec2.POLICIES, *iam.POLICIES)}


def get_policy(policy_id: str) -> Policy:
    try:
        return CATALOGUE[policy_id]
    except KeyError:
        raise UnknownPolicy(f"unknown policy {policy_id!r}") from None


def policies_for(service: str) -> list[Policy]:
    return [p for p in CATALOGUE.values() if p.service == service]
