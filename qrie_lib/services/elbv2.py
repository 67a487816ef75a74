"""Elastic Load Balancing v2 (regional): Application, Network and Gateway Load Balancers. A page is
one DescribeLoadBalancers (up to 400) and one DescribeLoadBalancerAttributes per load balancer (the
attributes FSBP's ELB controls read: deletion protection, desync mitigation, invalid headers).

Tags are not collected (DescribeTags is another call per 20 load balancers): a policy scope by tag
does not select load balancers yet."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from qrie_lib.aws import error_code
from qrie_lib.models import Resource
from qrie_lib.services.base import (
    CollectContext,
    EventRule,
    Page,
    ResourceCalls,
    ResourceKind,
    Service,
    Touch,
    require,
)
from qrie_lib.timeutil import now_iso

LOAD_BALANCER = "AWS::ElasticLoadBalancingV2::LoadBalancer"
MAX_ITEMS = 400  # DescribeLoadBalancers' PageSize maximum
ATTRIBUTES = "DescribeLoadBalancerAttributes"
RECORD_SIDES = ("responseElements", "requestParameters")


def load_balancer_arn(_: CollectContext, arn: str) -> str:
    """Events and describe name a load balancer by its ARN."""
    return arn


def load_balancer(ctx: CollectContext, lb: dict[str, Any], t: str) -> Resource:
    arn = require(lb, "LoadBalancerArn", "DescribeLoadBalancers")
    calls = ResourceCalls()
    answer = calls.call(
        ATTRIBUTES, lambda: ctx.client("elbv2").describe_load_balancer_attributes(LoadBalancerArn=arn)
    )
    config = {
        "LoadBalancerName": lb.get("LoadBalancerName"),
        "Type": lb.get("Type"),
        "Scheme": lb.get("Scheme"),
        "VpcId": lb.get("VpcId"),
        "State": (lb.get("State") or {}).get("Code"),
        "AvailabilityZones": sorted(z.get("ZoneName", "") for z in lb.get("AvailabilityZones") or ()),
        "SecurityGroups": lb.get("SecurityGroups") or [],
        "Attributes": {a["Key"]: a.get("Value") for a in (answer or {}).get("Attributes") or ()},
    }
    return ctx.resource(
        service="elbv2",
        resource_type=LOAD_BALANCER,
        arn=arn,
        configuration=calls.stamp(config),
        tags={},
        describe_time=t,
    )


def list_load_balancers(ctx: CollectContext, token: str | None) -> Page:
    t = now_iso()
    size = min(max(ctx.page_size, 1), MAX_ITEMS)
    answer = ctx.client("elbv2").describe_load_balancers(
        PageSize=size, **({"Marker": token} if token else {})
    )
    items = require(answer, "LoadBalancers", "DescribeLoadBalancers")
    return Page([load_balancer(ctx, lb, t) for lb in items], answer.get("NextMarker") or None)


def describe_load_balancer(ctx: CollectContext, arn: str) -> Resource | None:
    t = now_iso()
    try:
        answer = ctx.client("elbv2").describe_load_balancers(LoadBalancerArns=[arn])
    except ClientError as exc:
        if error_code(exc) in ("LoadBalancerNotFound", "ValidationError"):
            return None
        raise
    items = require(answer, "LoadBalancers", "DescribeLoadBalancers")
    return load_balancer(ctx, items[0], t) if items else None


def load_balancer_touch(detail: dict[str, Any]) -> Iterable[Touch]:
    """The load balancer a record names: CreateLoadBalancer's response, the others' request. Classic
    Load Balancers' records (same source and some same names) name none: they have no ARN there."""
    found: list[str] = []
    response, request = (detail.get(k) if isinstance(detail, dict) else None for k in RECORD_SIDES)
    if isinstance(response, dict):
        created = response.get("loadBalancers") or ()
        found += [lb.get("loadBalancerArn") for lb in created if isinstance(lb, dict)]
    if isinstance(request, dict):
        found.append(request.get("loadBalancerArn"))
    return [Touch(LOAD_BALANCER, arn) for arn in dict.fromkeys(a for a in found if isinstance(a, str) and a)]


SERVICE = Service(
    name="elbv2",
    regional=True,
    arn_namespace="elasticloadbalancing",
    read_actions=(
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeLoadBalancerAttributes",
    ),
    kinds=(ResourceKind(LOAD_BALANCER, list_load_balancers, describe_load_balancer, load_balancer_arn),),
    event_source="elasticloadbalancing.amazonaws.com",
    events=(
        EventRule(
            (
                "CreateLoadBalancer",
                "DeleteLoadBalancer",
                "ModifyLoadBalancerAttributes",
                "SetSubnets",
                "SetSecurityGroups",
            ),
            load_balancer_touch,
        ),
    ),
)
