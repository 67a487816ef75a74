"""Security Hub policies."""

from __future__ import annotations

from qrie_lib.models import Resource
from qrie_lib.policies.base import COMPLIANT, Policy, Related, Verdict, violation
from qrie_lib.services.securityhub import HUB


def hub_disabled(hub: Resource, _: Related) -> Verdict:
    return COMPLIANT if hub.configuration.get("Enabled") else violation(Enabled=False)


POLICIES: tuple[Policy, ...] = (
    Policy(
        policy_id="SecurityHubDisabled",
        service="securityhub",
        resource_type=HUB,
        title="Security Hub is not enabled in the region",
        description=(
            "DescribeHub answers that the account is not subscribed to Security Hub in this region "
            "(InvalidAccessException)."
        ),
        severity=50,
        remediation="aws securityhub enable-security-hub --region REGION (or through the organization's "
        "delegated administrator).",
        rule=hub_disabled,
        compliance=("CIS AWS Foundations v3.0 4.16",),
        needs={"Enabled": "DescribeHub"},
    ),
)
