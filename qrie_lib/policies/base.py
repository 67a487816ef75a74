"""What a policy declares. Evaluation is pure: a policy sees the resource and, where it needs them,
account-level settings of the same account (``related``, e.g. the account's S3 public access
block) and the accounts Qrie knows, all read from Qrie's own tables — never from the customer's APIs.

A verdict is compliant, non-compliant, or not evaluated: a policy that lacks the data it needs
(the collector recorded the call that fills it in the resource's ``CollectErrors``, or a related
setting is not inventoried) neither passes nor fails."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from qrie_lib.models import Resource


@dataclass(frozen=True)
class Related(Mapping[str, Resource | None]):
    """What evaluation knows beside the resource: the account-level settings a policy declared (by
    resource type: that account's, or region's, singleton; None when not inventoried), and the
    accounts Qrie knows (those in its accounts table)."""

    settings: Mapping[str, Resource | None] = field(default_factory=dict)
    known_accounts: frozenset[str] = frozenset()
    # Every resource of a type the policy reads account-wide (all regions), e.g. the account's trails.
    collections: Mapping[str, tuple[Resource, ...]] = field(default_factory=dict)

    def every(self, resource_type: str) -> tuple[Resource, ...]:
        return tuple(self.collections.get(resource_type, ()))

    def __getitem__(self, resource_type: str) -> Resource | None:
        return self.settings[resource_type]

    def __iter__(self) -> Iterator[str]:
        return iter(self.settings)

    def __len__(self) -> int:
        return len(self.settings)


@dataclass(frozen=True)
class Verdict:
    compliant: bool | None  # None: not evaluated, the data the policy needs is missing
    evidence: dict[str, Any] = field(default_factory=dict)  # the offending configuration; never secrets

    @property
    def evaluated(self) -> bool:
        return self.compliant is not None


COMPLIANT = Verdict(True)


def violation(**evidence: Any) -> Verdict:
    return Verdict(False, evidence)


def not_evaluated(**evidence: Any) -> Verdict:
    """The policy cannot decide; ``evidence`` says what is missing."""
    return Verdict(None, evidence)


def collect_errors(resource: Resource | None) -> list[dict[str, Any]]:
    """The calls whose answer the collector could not get for this resource (``CollectErrors``:
    ``[{"call": "GetBucketPolicy", "code": "AccessDenied"}, ...]``)."""
    errors = (resource.configuration.get("CollectErrors") if resource else None) or ()
    return [e for e in errors if isinstance(e, dict)]


def missing(resource: Resource | None, needs: Mapping[str, str]) -> list[dict[str, Any]]:
    """The needed configuration keys (key → the API call that fills it) that were not collected."""
    failed = {e.get("call"): e.get("code") for e in collect_errors(resource)}
    return [{"Key": k, "Call": call, "Code": failed[call]} for k, call in needs.items() if call in failed]


def band(severity: int) -> str:
    """Severity bands: ≥90 critical, 70–89 high, 40–69 medium, <40 low."""
    if severity >= 90:
        return "critical"
    if severity >= 70:
        return "high"
    if severity >= 40:
        return "medium"
    return "low"


BANDS = ("critical", "high", "medium", "low")


@dataclass(frozen=True)
class Policy:
    policy_id: str  # {Service}{NonCompliantCondition}, PascalCase
    service: str
    resource_type: str
    title: str
    description: str
    severity: int  # default, 0-100
    remediation: str
    rule: Callable[[Resource, Related], Verdict]  # the check, on a resource whose needs were collected
    compliance: tuple[str, ...] = ()  # e.g. "CIS AWS Foundations v3.0 2.1.4"
    related: tuple[str, ...] = ()  # account-level resource types the rule reads
    related_all: tuple[str, ...] = ()  # resource types the rule reads every one of, account-wide
    needs: Mapping[str, str] = field(default_factory=dict)  # configuration key -> the call filling it
    reads_known_accounts: bool = False
    ages: bool = False  # the verdict changes with the clock (ages in days): every scan evaluates it

    def __post_init__(self) -> None:
        if not 0 <= self.severity <= 100:
            raise ValueError(f"{self.policy_id}: severity {self.severity} outside 0-100")

    def evaluate(self, resource: Resource, related: Mapping[str, Resource | None] | None = None) -> Verdict:
        """The verdict, or not evaluated when a configuration key the rule needs was not collected."""
        if gaps := missing(resource, self.needs):
            return not_evaluated(NotCollected=gaps)
        context = related if isinstance(related, Related) else Related(dict(related or {}))
        return self.rule(resource, context)

    def reads(self, resource_type: str) -> bool:
        """Whether the rule reads resources of this type beside the one it evaluates."""
        return resource_type in self.related or resource_type in self.related_all

    def describe(self) -> dict[str, Any]:
        """The declaration as data (CLI, API)."""
        return {
            "policy_id": self.policy_id,
            "service": self.service,
            "resource_type": self.resource_type,
            "title": self.title,
            "description": self.description,
            "severity": self.severity,
            "severity_band": band(self.severity),
            "remediation": self.remediation,
            "compliance": list(self.compliance),
        }
