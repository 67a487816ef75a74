"""IAM Access Analyzer policies."""

from __future__ import annotations

from qrie_lib.models import Resource
from qrie_lib.policies.base import COMPLIANT, Policy, Related, Verdict, violation
from qrie_lib.services.accessanalyzer import ANALYZERS


def no_active_analyzer(region: Resource, _: Related) -> Verdict:
    analyzers = region.configuration.get("Analyzers") or []
    if any(a.get("status") == "ACTIVE" for a in analyzers):
        return COMPLIANT
    return violation(Analyzers=[{k: a.get(k) for k in ("name", "type", "status")} for a in analyzers])


POLICIES: tuple[Policy, ...] = (
    Policy(
        policy_id="AccessAnalyzerDisabled",
        service="accessanalyzer",
        resource_type=ANALYZERS,
        title="IAM Access Analyzer has no active analyzer in the region",
        description="ListAnalyzers lists no analyzer whose status is ACTIVE in this region.",
        severity=40,
        remediation="aws accessanalyzer create-analyzer --analyzer-name NAME --type ACCOUNT (or ORGANIZATION "
        "from the management or delegated administrator account) --region REGION",
        rule=no_active_analyzer,
        compliance=("CIS AWS Foundations v3.0 1.20",),
        needs={"Analyzers": "ListAnalyzers"},
    ),
)
