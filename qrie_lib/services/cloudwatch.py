"""CloudWatch (regional): metric alarms (which metric they watch, whom they notify). A page is one
DescribeAlarms."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qrie_lib.models import Resource
from qrie_lib.services.base import CollectContext, EventRule, Page, ResourceKind, Service, Touch, require
from qrie_lib.timeutil import now_iso

ALARM = "AWS::CloudWatch::Alarm"
MAX_PAGE = 100  # DescribeAlarms' MaxRecords
ALARM_KEYS = ("AlarmName", "MetricName", "Namespace", "AlarmActions", "ActionsEnabled", "StateValue")


def alarm_arn(ctx: CollectContext, name: str) -> str:
    return (
        name if name.startswith("arn:") else f"arn:aws:cloudwatch:{ctx.region}:{ctx.account_id}:alarm:{name}"
    )


def alarms(ctx: CollectContext, answer: dict[str, Any], describe_time: str) -> list[Resource]:
    return [
        ctx.resource(
            service="cloudwatch",
            resource_type=ALARM,
            arn=alarm_arn(ctx, require(a, "AlarmName", "DescribeAlarms")),
            configuration={k: a.get(k) for k in ALARM_KEYS},
            describe_time=describe_time,
        )
        for a in require(answer, "MetricAlarms", "DescribeAlarms")
    ]


def list_alarms(ctx: CollectContext, token: str | None) -> Page:
    describe_time = now_iso()
    paging = {"MaxRecords": min(max(ctx.page_size, 1), MAX_PAGE)} | ({"NextToken": token} if token else {})
    answer = ctx.client("cloudwatch").describe_alarms(AlarmTypes=["MetricAlarm"], **paging)
    return Page(alarms(ctx, answer, describe_time), answer.get("NextToken") or None)


def describe_alarm(ctx: CollectContext, name: str) -> Resource | None:
    describe_time = now_iso()
    name = name.rsplit(":alarm:", 1)[-1]
    answer = ctx.client("cloudwatch").describe_alarms(AlarmNames=[name], AlarmTypes=["MetricAlarm"])
    return next(iter(alarms(ctx, answer, describe_time)), None)


def alarm_touch(detail: dict[str, Any]) -> Iterable[Touch]:
    request = detail.get("requestParameters") or {}
    names = request.get("alarmNames") if "alarmNames" in request else [request.get("alarmName")]
    return [Touch(ALARM, n) for n in names or () if isinstance(n, str) and n]


SERVICE = Service(
    name="cloudwatch",
    regional=True,
    read_actions=("cloudwatch:DescribeAlarms",),
    kinds=(ResourceKind(ALARM, list_alarms, describe_alarm, alarm_arn),),
    event_source="monitoring.amazonaws.com",
    events=(EventRule(("PutMetricAlarm", "DeleteAlarms"), alarm_touch),),
)
