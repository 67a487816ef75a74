"""Security Hub (regional): whether the region's hub is enabled, a resource of its own named by the
hub's ARN ``arn:aws:securityhub:{region}:{account}:hub/default`` (CIS 4.16). One DescribeHub per
region: it answers InvalidAccessException where the account is not subscribed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qrie_lib.models import Resource
from qrie_lib.services.base import (
    CollectContext,
    EventRule,
    ResourceCalls,
    ResourceKind,
    Service,
    Touch,
    one_per_context,
)
from qrie_lib.timeutil import now_iso

HUB = "AWS::SecurityHub::Hub"
NOT_SUBSCRIBED = "InvalidAccessException"


def hub_arn(ctx: CollectContext, _: str = "") -> str:
    return f"arn:aws:securityhub:{ctx.region}:{ctx.account_id}:hub/default"


def read_hub(ctx: CollectContext) -> tuple[Resource, bool]:
    """The region's hub, and whether its call was denied."""
    t, calls = now_iso(), ResourceCalls()
    answer = calls.call("DescribeHub", lambda: ctx.client("securityhub").describe_hub(), NOT_SUBSCRIBED)
    denied = calls.none_answered
    config = {
        "Enabled": None if denied else answer is not None,
        "SubscribedAt": (answer or {}).get("SubscribedAt"),
        "AutoEnableControls": (answer or {}).get("AutoEnableControls"),
    }
    resource = ctx.resource(
        service="securityhub",
        resource_type=HUB,
        arn=hub_arn(ctx),
        configuration=calls.stamp(config),
        describe_time=t,
    )
    return resource, denied


list_hub, describe_hub = one_per_context(read_hub)


def region_touch(detail: dict[str, Any]) -> Iterable[Touch]:
    region = detail.get("awsRegion") if isinstance(detail, dict) else None
    return [Touch(HUB, region)] if isinstance(region, str) and region else []


SERVICE = Service(
    name="securityhub",
    regional=True,
    read_actions=("securityhub:DescribeHub",),
    kinds=(ResourceKind(HUB, list_hub, describe_hub, hub_arn),),
    event_source="securityhub.amazonaws.com",
    events=(EventRule(("EnableSecurityHub", "DisableSecurityHub"), region_touch),),
)
