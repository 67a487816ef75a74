"""Elastic Load Balancing v2 policies: FSBP's ELB controls on the load balancer's attributes.

An attribute DescribeLoadBalancerAttributes did not list has its AWS default (AWS lists every
attribute of the load balancer's type; the emulator lists only those set): desync mitigation
``defensive``, dropping invalid header fields and deletion protection ``false``."""

from __future__ import annotations

from functools import partial

from qrie_lib.models import Resource
from qrie_lib.policies.base import COMPLIANT, Policy, Related, Verdict, violation
from qrie_lib.services.elbv2 import ATTRIBUTES, LOAD_BALANCER

APPLICATION = "application"
DROP_INVALID_HEADERS = "routing.http.drop_invalid_header_fields.enabled"
DELETION_PROTECTION = "deletion_protection.enabled"
DESYNC_MODE = "routing.http.desync_mitigation_mode"
DESYNC_DEFAULT, DESYNC_ACCEPTED = "defensive", ("defensive", "strictest")  # ELB.12's default parameter
NEEDS = {"Attributes": ATTRIBUTES}


def attribute(lb: Resource, key: str, default: str) -> str:
    return str((lb.configuration.get("Attributes") or {}).get(key, default)).lower()


def drops_no_invalid_headers(lb: Resource, _: Related) -> Verdict:
    if lb.configuration.get("Type") != APPLICATION:
        return COMPLIANT  # ELB.4 evaluates Application Load Balancers only
    value = attribute(lb, DROP_INVALID_HEADERS, "false")
    return COMPLIANT if value == "true" else violation(**{DROP_INVALID_HEADERS: value})


def deletion_unprotected(lb: Resource, _: Related) -> Verdict:
    value = attribute(lb, DELETION_PROTECTION, "false")
    return COMPLIANT if value == "true" else violation(**{DELETION_PROTECTION: value})


def desync_mitigation_weak(lb: Resource, _: Related) -> Verdict:
    if lb.configuration.get("Type") != APPLICATION:
        return COMPLIANT  # ELB.12 evaluates Application Load Balancers only
    mode = attribute(lb, DESYNC_MODE, DESYNC_DEFAULT)
    return COMPLIANT if mode in DESYNC_ACCEPTED else violation(**{DESYNC_MODE: mode})


declare = partial(Policy, service="elbv2", resource_type=LOAD_BALANCER, needs=NEEDS)
MODIFY = "aws elbv2 modify-load-balancer-attributes --load-balancer-arn ARN --attributes"

POLICIES: tuple[Policy, ...] = (
    declare(
        policy_id="ELBv2AlbInvalidHeadersNotDropped",
        title="Application Load Balancer does not drop invalid HTTP headers",
        description=(
            f"The Application Load Balancer's {DROP_INVALID_HEADERS} is false: header fields that are not "
            "valid pass to the targets, which HTTP desync attacks use."
        ),
        severity=50,
        remediation=f"{MODIFY} Key={DROP_INVALID_HEADERS},Value=true",
        rule=drops_no_invalid_headers,
        compliance=("AWS FSBP v1.0.0 ELB.4",),
    ),
    declare(
        policy_id="ELBv2DeletionProtectionDisabled",
        title="Load balancer deletion protection is not enabled",
        description=(
            f"The Application, Network or Gateway Load Balancer's {DELETION_PROTECTION} is false: one "
            "call deletes it."
        ),
        severity=40,
        remediation=f"{MODIFY} Key={DELETION_PROTECTION},Value=true",
        rule=deletion_unprotected,
        compliance=("AWS FSBP v1.0.0 ELB.6",),
    ),
    declare(
        policy_id="ELBv2AlbDesyncMitigationWeak",
        title="Application Load Balancer's desync mitigation mode is monitor",
        description=(
            f"The Application Load Balancer's {DESYNC_MODE} is neither defensive nor strictest: requests "
            "that may be HTTP desync attacks reach the targets."
        ),
        severity=50,
        remediation=f"{MODIFY} Key={DESYNC_MODE},Value=defensive",
        rule=desync_mitigation_weak,
        compliance=("AWS FSBP v1.0.0 ELB.12",),
    ),
)
