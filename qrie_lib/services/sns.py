"""SNS (regional): topics with how many of their subscriptions are confirmed (a pending one's
SubscriptionArn is "PendingConfirmation", not an ARN). A page is one ListTopics (100 topics) plus
one ListSubscriptionsByTopic per topic (more only while no confirmed subscription was seen)."""

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

TOPIC = "AWS::SNS::Topic"
SUBSCRIPTION_PAGES = 3  # enough to find a confirmed subscriber; the count is then a lower bound


def topic_arn(ctx: CollectContext, name_or_arn: str) -> str:
    return (
        name_or_arn
        if name_or_arn.startswith("arn:")
        else f"arn:aws:sns:{ctx.region}:{ctx.account_id}:{name_or_arn}"
    )


def subscriptions(ctx: CollectContext, arn: str) -> dict[str, int]:
    confirmed = pending = 0
    token: str | None = None
    for _ in range(SUBSCRIPTION_PAGES):
        answer = ctx.client("sns").list_subscriptions_by_topic(
            TopicArn=arn, **({"NextToken": token} if token else {})
        )
        for sub in require(answer, "Subscriptions", "ListSubscriptionsByTopic"):
            if str(sub.get("SubscriptionArn", "")).startswith("arn:"):
                confirmed += 1
            else:
                pending += 1
        token = answer.get("NextToken")
        if confirmed or not token:
            break
    return {"ConfirmedSubscriptions": confirmed, "PendingSubscriptions": pending}


def read_topic(ctx: CollectContext, arn: str, describe_time: str) -> Resource | None:
    calls = ResourceCalls()
    try:
        counts = calls.call("ListSubscriptionsByTopic", lambda: subscriptions(ctx, arn))
    except ClientError as exc:
        if error_code(exc) == "NotFound":
            return None
        raise
    config: dict[str, Any] = {"TopicArn": arn, "Name": arn.rsplit(":", 1)[-1]}
    config |= counts or {"ConfirmedSubscriptions": None, "PendingSubscriptions": None}
    return ctx.resource(
        service="sns",
        resource_type=TOPIC,
        arn=arn,
        configuration=calls.stamp(config),
        describe_time=describe_time,
    )


def list_topics(ctx: CollectContext, token: str | None) -> Page:
    describe_time = now_iso()
    answer = ctx.client("sns").list_topics(**({"NextToken": token} if token else {}))
    arns = [require(t, "TopicArn", "ListTopics") for t in require(answer, "Topics", "ListTopics")]
    found = [read_topic(ctx, arn, describe_time) for arn in arns]
    return Page([r for r in found if r is not None], answer.get("NextToken") or None)


def describe_topic(ctx: CollectContext, name_or_arn: str) -> Resource | None:
    return read_topic(ctx, topic_arn(ctx, name_or_arn), now_iso())


def topic_touch(detail: dict[str, Any]) -> Iterable[Touch]:
    request = detail.get("requestParameters") or {}
    response = detail.get("responseElements") or {}
    subscription = request.get("subscriptionArn")  # Unsubscribe names the subscription: topic ARN + ":id"
    arn = response.get("topicArn") or request.get("topicArn")
    if not arn and isinstance(subscription, str) and subscription.count(":") >= 6:
        arn = subscription.rsplit(":", 1)[0]
    return [Touch(TOPIC, arn)] if isinstance(arn, str) and arn else []


SERVICE = Service(
    name="sns",
    regional=True,
    read_actions=("sns:ListTopics", "sns:ListSubscriptionsByTopic"),
    kinds=(ResourceKind(TOPIC, list_topics, describe_topic, topic_arn),),
    event_source="sns.amazonaws.com",
    events=(
        EventRule(
            ("CreateTopic", "DeleteTopic", "Subscribe", "ConfirmSubscription", "Unsubscribe"), topic_touch
        ),
    ),
)
