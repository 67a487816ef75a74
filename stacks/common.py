"""What both stacks share: the operator role path that customer trust policies name, the
CloudTrail event patterns generated from the service registry, and cdk-nag acknowledgements."""

from __future__ import annotations

import re

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_events as events
from constructs import IConstruct

from qrie_lib.services.registry import SERVICES

# Every operator task role lives under this IAM path. A customer's read-only role trusts the
# operator account only for principals whose ARN is under it (aws:PrincipalArn includes the path),
# so CloudFormation can keep generating role names (no clash between regions or stacks).
OPERATOR_ROLE_PATH = "/qrie/"

CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"


def event_source_name(event_source: str) -> str:
    """CloudTrail's ``s3.amazonaws.com`` is EventBridge's source ``aws.s3``."""
    return "aws." + event_source.removesuffix(".amazonaws.com")


def cloudtrail_patterns() -> dict[str, events.EventPattern]:
    """One pattern per registered service with events: its CloudTrail source and event names.

    Both the customer forwarding rules and the operator's queue rule are built from this, so a
    service added to the registry is forwarded and processed without touching the stacks."""
    return {
        name: events.EventPattern(
            source=[event_source_name(svc.event_source)],
            detail_type=[CLOUDTRAIL_DETAIL_TYPE],
            detail={"eventSource": [svc.event_source], "eventName": sorted(set(svc.event_names))},
        )
        for name, svc in SERVICES.items()
        if svc.event_source and svc.event_names
    }


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on ``scope`` (and the constructs under it)."""
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def pascal(name: str) -> str:
    """``weekly-inventory`` → ``WeeklyInventory``: construct ids from data names."""
    return "".join(part.capitalize() for part in re.split(r"[-_ ]", name))
