"""CloudWatch Logs (regional): metric filters (what the CIS monitoring checks look for on a trail's
log group), pseudo-ARN ``arn:aws:logs:{region}:{account}:log-group:{group}:metric-filter/{name}``.
A page of up to 50 filters is one DescribeMetricFilters."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from qrie_lib.aws import error_code
from qrie_lib.models import Resource
from qrie_lib.services.base import CollectContext, EventRule, Page, ResourceKind, Service, Touch, require
from qrie_lib.timeutil import now_iso

METRIC_FILTER = "AWS::Logs::MetricFilter"
MAX_PAGE = 50  # DescribeMetricFilters' limit
FILTER_ARN = re.compile(r"^arn:aws:logs:[^:]*:\d*:log-group:(?P<group>.+):metric-filter/(?P<name>[^/]+)$")


def filter_arn(ctx: CollectContext, id_or_arn: str) -> str:
    """An event names the filter by log group and name: its touch carries ``{group}:metric-filter/{name}``."""
    if id_or_arn.startswith("arn:"):
        return id_or_arn
    return f"arn:aws:logs:{ctx.region}:{ctx.account_id}:log-group:{id_or_arn}"


def metric_filter(ctx: CollectContext, item: dict[str, Any], describe_time: str) -> Resource:
    group, name = require(item, "logGroupName", "DescribeMetricFilters"), item.get("filterName", "")
    return ctx.resource(
        service="logs",
        resource_type=METRIC_FILTER,
        arn=filter_arn(ctx, f"{group}:metric-filter/{name}"),
        configuration={
            "FilterName": name,
            "LogGroupName": group,
            "FilterPattern": item.get("filterPattern"),
            "MetricTransformations": [
                {"MetricName": t.get("metricName"), "MetricNamespace": t.get("metricNamespace")}
                for t in item.get("metricTransformations") or []
            ],
        },
        describe_time=describe_time,
    )


def list_filters(ctx: CollectContext, token: str | None) -> Page:
    describe_time = now_iso()
    paging = {"limit": min(max(ctx.page_size, 1), MAX_PAGE)} | ({"nextToken": token} if token else {})
    answer = ctx.client("logs").describe_metric_filters(**paging)
    items = require(answer, "metricFilters", "DescribeMetricFilters")
    return Page([metric_filter(ctx, i, describe_time) for i in items], answer.get("nextToken") or None)


def describe_filter(ctx: CollectContext, id_or_arn: str) -> Resource | None:
    describe_time = now_iso()
    match = FILTER_ARN.match(filter_arn(ctx, id_or_arn))
    if match is None:
        return None
    try:
        answer = ctx.client("logs").describe_metric_filters(
            logGroupName=match["group"], filterNamePrefix=match["name"]
        )
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":  # the log group is gone
            return None
        raise
    items = require(answer, "metricFilters", "DescribeMetricFilters")
    found = next((i for i in items if i.get("filterName") == match["name"]), None)
    return metric_filter(ctx, found, describe_time) if found else None


def filter_touch(detail: dict[str, Any]) -> Iterable[Touch]:
    request = detail.get("requestParameters") or {}
    group, name = request.get("logGroupName"), request.get("filterName")
    if isinstance(group, str) and group and isinstance(name, str) and name:
        return [Touch(METRIC_FILTER, f"{group}:metric-filter/{name}")]
    return []


SERVICE = Service(
    name="logs",
    regional=True,
    read_actions=("logs:DescribeMetricFilters",),
    kinds=(ResourceKind(METRIC_FILTER, list_filters, describe_filter, filter_arn),),
    event_source="logs.amazonaws.com",
    events=(EventRule(("PutMetricFilter", "DeleteMetricFilter"), filter_touch),),
)
