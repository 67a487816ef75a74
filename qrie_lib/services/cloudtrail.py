"""CloudTrail (regional): trails, each kept in its home region (a multi-region or organization trail
shows in every region's DescribeTrails; only its home region's item stores it), with its logging
status and event selectors; plus one anchor per account for the account-wide checks (is there a
logging multi-region trail, are its logs monitored by metric filters and alarms), pseudo-ARN
``arn:aws:cloudtrail::{account}:coverage`` (``ResourceKind.account_level``).

A trail costs DescribeTrails (one per region) + GetTrailStatus + GetEventSelectors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from qrie_lib.aws import error_code
from qrie_lib.models import GLOBAL, Resource
from qrie_lib.services.base import (
    CollectContext,
    EventRule,
    Page,
    ResourceCalls,
    ResourceKind,
    Service,
    Touch,
    require,
    slice_page,
)
from qrie_lib.timeutil import now_iso

TRAIL = "AWS::CloudTrail::Trail"
COVERAGE = "AWS::CloudTrail::AccountCoverage"
TRAIL_KEYS = (
    "Name",
    "TrailARN",
    "HomeRegion",
    "IsMultiRegionTrail",
    "IsOrganizationTrail",
    "IncludeGlobalServiceEvents",
    "LogFileValidationEnabled",
    "KmsKeyId",
    "S3BucketName",
    "S3KeyPrefix",
    "CloudWatchLogsLogGroupArn",
    "SnsTopicARN",
)
GONE = ("TrailNotFoundException", "CloudTrailARNInvalidException", "InvalidTrailNameException")


def trail_arn(ctx: CollectContext, name_or_arn: str) -> str:
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    return f"arn:aws:cloudtrail:{ctx.region}:{ctx.account_id}:trail/{name_or_arn}"


def home_trails(ctx: CollectContext) -> list[dict[str, Any]]:
    """This region's DescribeTrails, shadow trails included (how a member account sees its
    organization's trail), kept to those whose home is this region; one call, shared by the page."""
    if "trails" not in ctx.cache:
        answer = ctx.client("cloudtrail").describe_trails(includeShadowTrails=True)
        trails = require(answer, "trailList", "DescribeTrails")
        ctx.cache["trails"] = [t for t in trails if t.get("HomeRegion", ctx.region) == ctx.region]
    return ctx.cache["trails"]


def read_trail(ctx: CollectContext, trail: dict[str, Any], describe_time: str) -> Resource | None:
    arn = require(trail, "TrailARN", "DescribeTrails")
    cloudtrail, calls = ctx.client("cloudtrail"), ResourceCalls()
    try:  # by ARN: a shadow trail's status and selectors are asked of it by ARN
        status = calls.call("GetTrailStatus", lambda: cloudtrail.get_trail_status(Name=arn))
        selectors = calls.call("GetEventSelectors", lambda: cloudtrail.get_event_selectors(TrailName=arn))
    except ClientError as exc:
        if error_code(exc) in GONE:  # deleted since it was listed
            return None
        raise
    configuration = {key: trail.get(key) for key in TRAIL_KEYS} | {
        "IsLogging": None if status is None else bool(status.get("IsLogging")),
        "EventSelectors": None if selectors is None else selectors.get("EventSelectors") or [],
        "AdvancedEventSelectors": None
        if selectors is None
        else selectors.get("AdvancedEventSelectors") or [],
    }
    return ctx.resource(
        service="cloudtrail",
        resource_type=TRAIL,
        arn=arn,
        configuration=calls.stamp(configuration),
        describe_time=describe_time,
    )


def list_trails(ctx: CollectContext, token: str | None) -> Page:
    describe_time = now_iso()
    trails = {t["TrailARN"]: t for t in home_trails(ctx) if t.get("TrailARN")}
    arns, next_token = slice_page(list(trails), token, ctx.page_size)
    found = ctx.each(lambda arn: read_trail(ctx, trails[arn], describe_time), arns)
    return Page([r for r in found if r is not None], next_token)


def describe_trail(ctx: CollectContext, name_or_arn: str) -> Resource | None:
    describe_time = now_iso()
    arn = trail_arn(ctx, name_or_arn)
    trail = next((t for t in home_trails(ctx) if arn in (t.get("TrailARN"), t.get("Name"))), None)
    return read_trail(ctx, trail, describe_time) if trail else None


def coverage_arn(ctx: CollectContext, _: str = "") -> str:
    return f"arn:aws:cloudtrail::{ctx.account_id}:coverage"


def describe_coverage(ctx: CollectContext, _: str = "") -> Resource:
    """The account's anchor (``ResourceKind.account_level``): the checks it carries (CIS 3.1, 3.8,
    3.9, 4.x) read the account's multi-region trails, filters, alarms and topics in every region,
    so their verdict is the account's, reported once, not once per region."""
    return ctx.resource(
        service="cloudtrail", resource_type=COVERAGE, arn=coverage_arn(ctx), configuration={}, region=GLOBAL
    )


def list_coverage(ctx: CollectContext, _: str | None) -> Page:
    return Page([describe_coverage(ctx)], None)


# ---- CloudTrail ---------------------------------------------------------------------------


def trail_touch(detail: dict[str, Any]) -> Iterable[Touch]:
    """The trail a request names (``name``: its name or ARN; CreateTrail's response has its ARN)."""
    request = detail.get("requestParameters") or {}
    response = detail.get("responseElements") or {}
    named = response.get("trailARN") or request.get("name") or request.get("trailName")
    return [Touch(TRAIL, named)] if isinstance(named, str) and named else []


SERVICE = Service(
    name="cloudtrail",
    regional=True,
    read_actions=(
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetTrailStatus",
        "cloudtrail:GetEventSelectors",
        "cloudtrail:LookupEvents",  # qrie local up's poller of the event history (no EventBridge there)
    ),
    kinds=(
        ResourceKind(TRAIL, list_trails, describe_trail, trail_arn),
        ResourceKind(COVERAGE, list_coverage, describe_coverage, coverage_arn, account_level=True),
    ),
    event_source="cloudtrail.amazonaws.com",
    events=(
        EventRule(
            (
                "CreateTrail",
                "UpdateTrail",
                "DeleteTrail",
                "StartLogging",
                "StopLogging",
                "PutEventSelectors",
            ),
            trail_touch,
        ),
    ),
)
