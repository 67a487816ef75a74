"""CloudTrail events as they reach the events queue (EventBridge envelope, detail-type "AWS API Call
via CloudTrail"), and which resources they touch. Pure: no AWS calls, no tables.

The lookup is built from the service registry: each service declares its ``event_source`` and the
``EventRule``s that map an event's detail to the ids it touched."""

from __future__ import annotations

import json
import re
from typing import Any, Literal, NamedTuple

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from qrie_lib.errors import MalformedEvent
from qrie_lib.models import GLOBAL, AccountId, Region
from qrie_lib.services.base import EventRule, Service, Touch
from qrie_lib.services.registry import SERVICES

DETAIL_TYPE = "AWS API Call via CloudTrail"
ACCOUNT_ID = re.compile(r"\d{12}")


class CloudTrailDetail(BaseModel):
    """The CloudTrail record: the fields Qrie relies on are required, the rest kept as they came."""

    model_config = ConfigDict(extra="allow", frozen=True)

    eventVersion: str
    eventID: str = Field(min_length=1)
    eventTime: str
    eventSource: str = Field(min_length=1)
    eventName: str = Field(min_length=1)
    awsRegion: Region
    # Optional in CloudTrail's record contents ("Since: 1.02, Optional: True"): the envelope's
    # ``account`` names the account then.
    recipientAccountId: AccountId | None = None
    userIdentity: dict[str, Any] = Field(default_factory=dict)
    requestParameters: dict[str, Any] | None = None
    responseElements: dict[str, Any] | None = None
    errorCode: str | None = None  # the call failed, so it changed nothing


def eventbridge_source(event_source: str) -> str:
    """CloudTrail's ``s3.amazonaws.com`` is EventBridge's source ``aws.s3``."""
    return "aws." + event_source.removesuffix(".amazonaws.com")


class CloudTrailEvent(EventBridgeModel):
    """The envelope and its record must agree: a forwarded event names its account and service twice,
    and an event whose two names differ was not made by EventBridge from a CloudTrail record."""

    detail_type: Literal["AWS API Call via CloudTrail"] = Field(alias="detail-type")
    detail: CloudTrailDetail  # type: ignore[assignment]

    @model_validator(mode="after")
    def _consistent(self) -> CloudTrailEvent:
        recipient = self.detail.recipientAccountId
        if recipient is None and not ACCOUNT_ID.fullmatch(self.account):
            raise ValueError(f"no account: no detail.recipientAccountId and account {self.account!r}")
        if recipient is not None and self.account != recipient:
            raise ValueError(f"account {self.account!r} is not detail.recipientAccountId {recipient!r}")
        if self.source != eventbridge_source(self.detail.eventSource):
            raise ValueError(
                f"source {self.source!r} is not that of detail.eventSource {self.detail.eventSource!r}"
            )
        return self

    @property
    def event_id(self) -> str:
        return self.detail.eventID

    @property
    def account_id(self) -> str:
        """The account the event happened in: the record's recipient, else the envelope's account."""
        return self.detail.recipientAccountId or self.account


class Target(NamedTuple):
    """A resource to refresh: in which account and region (``GLOBAL`` for global services)."""

    account_id: str
    region: str
    touch: Touch


Rule = tuple[Service, EventRule]


def build_rules(services: dict[str, Service]) -> dict[tuple[str, str], Rule]:
    """(eventSource, eventName) → the service and rule that declared it; declaring one twice is a bug."""
    rules: dict[tuple[str, str], Rule] = {}
    for service in services.values():
        for rule in service.events:
            for name in rule.event_names:
                key = (service.event_source, name)
                if key in rules:
                    raise ValueError(f"{key} is declared by {rules[key][0].name} and {service.name}")
                rules[key] = (service, rule)
    return rules


RULES = build_rules(SERVICES)


def parse(body: str) -> CloudTrailEvent:
    """A queue message's body as a CloudTrail event, or ``MalformedEvent`` saying what is wrong."""
    try:
        return CloudTrailEvent.model_validate_json(body)
    except ValidationError as exc:
        raise MalformedEvent(_problem(body, exc)) from None


def _problem(body: str, exc: ValidationError) -> str:
    errors = exc.errors()
    if errors and errors[0]["type"] == "json_invalid":
        return "body is not JSON"
    if errors and errors[0]["type"] == "model_type":
        return "body is not a JSON object"
    data = json.loads(body)
    if "detail" not in data and {"eventName", "eventSource"} <= data.keys():
        return "a bare CloudTrail record: it must come wrapped in its EventBridge envelope"
    if errors[0]["type"] == "value_error" and not errors[0]["loc"]:  # the envelope/record check
        return "an inconsistent event: " + str(errors[0]["ctx"]["error"])
    missing = [_path(e["loc"]) for e in errors if e["type"] == "missing"]
    wrong = [f"{_path(e['loc'])}: {e['msg']}" for e in errors if e["type"] != "missing"]
    return "not an EventBridge CloudTrail event: " + "; ".join(
        ([f"missing {', '.join(missing)}"] if missing else []) + wrong[:3]
    )


def _path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "body"


def rule_for(event: CloudTrailEvent) -> Rule | None:
    """The rule for this event, or None if no service declares it (such events are ignored)."""
    return RULES.get((event.detail.eventSource, event.detail.eventName))


def touched(event: CloudTrailEvent) -> list[Target]:
    """The distinct resources the event touched ([] for events no service declares)."""
    found = rule_for(event)
    if found is None:
        return []
    service, rule = found
    region = event.detail.awsRegion if service.regional else GLOBAL
    detail = event.detail.model_dump() | {"recipientAccountId": event.account_id}  # the account, resolved
    try:
        touches = list(rule.touches(detail))
    except Exception as exc:  # a rule that cannot read the detail: not the shape CloudTrail sends
        raise MalformedEvent(f"{event.detail.eventName}: cannot read the touched ids: {exc!r}") from None
    return [Target(event.account_id, region, t) for t in dict.fromkeys(touches)]
