"""What a policy declares. Evaluation is pure: a policy sees the resource and, where it needs them,
account-level settings of the same account (``related``, e.g. the account's S3 public access
block), all read from the inventory — never from the customer's APIs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from qrie_lib.models import Resource

Related = Mapping[str, Resource | None]  # resource type -> that account's (region's) singleton


@dataclass(frozen=True)
class Verdict:
    compliant: bool
    evidence: dict[str, Any] = field(default_factory=dict)  # the offending configuration; never secrets


COMPLIANT = Verdict(True)


def violation(**evidence: Any) -> Verdict:
    return Verdict(False, evidence)


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
    evaluate: Callable[[Resource, Related], Verdict]
    compliance: tuple[str, ...] = ()  # e.g. "CIS AWS Foundations v3.0 2.1.4"
    related: tuple[str, ...] = ()  # account-level resource types evaluate() reads

    def __post_init__(self) -> None:
        if not 0 <= self.severity <= 100:
            raise ValueError(f"{self.policy_id}: severity {self.severity} outside 0-100")

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
