"""IAM Access Analyzer (regional): the region's analyzers, a resource of their own with pseudo-ARN
``arn:aws:access-analyzer:{region}:{account}:analyzers`` (CIS 1.20: an ACTIVE analyzer in every
region). One ListAnalyzers per region (paged: accounts have a handful).

moto does not emulate Access Analyzer: the local runtime's emulation answers its calls with the error
``NotEmulated`` (orchestration/emulation.py), recorded as ``{"call": "ListAnalyzers", "code":
"NotEmulated"}`` so the policy is not evaluated locally rather than guessed; AWS never answers so."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from qrie_lib.aws import error_code
from qrie_lib.errors import Unreadable
from qrie_lib.models import Resource
from qrie_lib.services.base import (
    ACCESS_DENIED_CODES,
    CollectContext,
    EventRule,
    Page,
    ResourceKind,
    Service,
    Touch,
    require,
)
from qrie_lib.timeutil import now_iso

ANALYZERS = "AWS::AccessAnalyzer::Analyzers"
NOT_EMULATED = "NotEmulated"
ANALYZER_KEYS = ("name", "arn", "type", "status", "statusReason", "createdAt")


def analyzers_arn(ctx: CollectContext, _: str = "") -> str:
    return f"arn:aws:access-analyzer:{ctx.region}:{ctx.account_id}:analyzers"


def unanswered(exc: ClientError) -> str | None:
    """The code to record for a call that got no answer about the account, else None."""
    code = error_code(exc)
    if code in ACCESS_DENIED_CODES:
        return code
    if code == NOT_EMULATED:
        return NOT_EMULATED
    return None


def read_analyzers(ctx: CollectContext) -> tuple[Resource, bool]:
    """The region's analyzers, and whether the listing went unanswered."""
    t = now_iso()
    analyzers: list[dict[str, Any]] | None = []
    errors = []
    try:
        paginator = ctx.client("accessanalyzer").get_paginator("list_analyzers")
        for answer in paginator.paginate():
            analyzers += [
                {k: a.get(k) for k in ANALYZER_KEYS}
                for a in require(answer, "analyzers", "ListAnalyzers")  # type: ignore[operator]
            ]
    except ClientError as exc:
        if (code := unanswered(exc)) is None:
            raise
        analyzers, errors = None, [{"call": "ListAnalyzers", "code": code}]
    config: dict[str, Any] = {"Analyzers": analyzers}
    if errors:
        config["CollectErrors"] = errors
    resource = ctx.resource(
        service="accessanalyzer",
        resource_type=ANALYZERS,
        arn=analyzers_arn(ctx),
        configuration=config,
        describe_time=t,
    )
    return resource, analyzers is None


def denied(resource: Resource, unread: bool) -> bool:
    """Unread because the role was denied (the stored configuration stands); a not-emulated answer
    is stored with its CollectErrors instead: there is nothing to keep, and the policy is not
    evaluated."""
    return unread and resource.configuration["CollectErrors"][0]["code"] != NOT_EMULATED


def list_analyzers(ctx: CollectContext, _: str | None) -> Page:
    resource, unread = read_analyzers(ctx)
    return Page([], None, unread=[resource]) if denied(resource, unread) else Page([resource], None)


def describe_analyzers(ctx: CollectContext, _: str = "") -> Resource:
    resource, unread = read_analyzers(ctx)
    if denied(resource, unread):
        raise Unreadable(f"{resource.arn}: ListAnalyzers was denied")
    return resource


def region_touch(detail: dict[str, Any]) -> Iterable[Touch]:
    region = detail.get("awsRegion") if isinstance(detail, dict) else None
    return [Touch(ANALYZERS, region)] if isinstance(region, str) and region else []


SERVICE = Service(
    name="accessanalyzer",
    regional=True,
    arn_namespace="access-analyzer",
    read_actions=("access-analyzer:ListAnalyzers",),
    kinds=(ResourceKind(ANALYZERS, list_analyzers, describe_analyzers, analyzers_arn),),
    event_source="access-analyzer.amazonaws.com",
    events=(EventRule(("CreateAnalyzer", "DeleteAnalyzer"), region_touch),),
)
