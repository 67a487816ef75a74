"""What a service module declares: its resource kinds (how to list a page, how to describe one
resource by id) and the CloudTrail events that touch them. The registry (``registry.py``) holds one
``Service`` per module; tasks, the event processor and the CDK stacks read only the registry."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from qrie_lib.aws import Aws, error_code
from qrie_lib.concurrency import fan_out
from qrie_lib.errors import UnexpectedResponse, Unreadable
from qrie_lib.models import GLOBAL, Resource
from qrie_lib.timeutil import iso, now_iso

Item = TypeVar("Item")
Described = TypeVar("Described")


@dataclass
class CollectContext:
    """What a collector needs for one account (× region): clients in that account, bounds, and a
    per-call cache for bulk answers shared by several kinds (e.g. IAM's authorization details)."""

    aws: Aws
    account_id: str
    region: str
    page_size: int
    external_id: str | None = None
    role_arn: str | None = None  # the account's own role, if not the default read-only role
    cache: dict[str, Any] = field(default_factory=dict)

    def each(self, read: Callable[[Item], Described], items: Iterable[Item]) -> list[Described]:
        """``read`` of every item (a resource's describe calls), in parallel up to the account's
        share of its call cap for one work item (``Settings.describe_threads``); in order."""
        return fan_out(self.aws.settings.describe_threads, read, items)

    def client(self, service: str, region: str | None = None) -> Any:
        api_region = region or (self.region if self.region != GLOBAL else None)
        return self.aws.customer_client(self.account_id, service, api_region, self.external_id, self.role_arn)

    def resource(
        self,
        *,
        service: str,
        resource_type: str,
        arn: str,
        configuration: dict[str, Any],
        region: str | None = None,
        tags: dict[str, str] | None = None,
        describe_time: str | None = None,
    ) -> Resource:
        return Resource(
            arn=arn,
            account_id=self.account_id,
            service=service,
            region=region or self.region,
            resource_type=resource_type,
            configuration=json_safe(configuration),
            tags=tags or {},
            describe_time=describe_time or now_iso(),
        )


@dataclass(frozen=True)
class Page:
    resources: list[Resource]
    next_token: str | None  # None: this kind is complete
    # Listed but none of their describe calls answered: the run saw them (the sweep keeps them)
    # and their stored configuration stands; each carries its ``CollectErrors`` for a first store.
    unread: list[Resource] = field(default_factory=list)


@dataclass(frozen=True)
class ResourceKind:
    """One resource type of a service.

    ``list_page(ctx, token)`` returns one bounded page and the token of the next.
    ``describe(ctx, resource_id)`` returns the resource as it is now, or None if it is gone.
    ``arn(ctx, resource_id)`` builds the ARN an event's resource id maps to (so a deletion can be
    applied without a describe).
    """

    resource_type: str
    list_page: Callable[[CollectContext, str | None], Page]
    describe: Callable[[CollectContext, str], Resource | None]
    arn: Callable[[CollectContext, str], str]
    # ``find(ctx, by, value, token)``: one page of the resources a Describe filter matches, for
    # events that name a related id only (a terminated instance's volumes); ``by=ALL``: every one.
    find: Callable[[CollectContext, str, str, str | None], Page] | None = None
    # One per account in a regional service (an anchor for account-wide checks), listed by the item
    # of the account's first inventoried region (inventory.lists): region GLOBAL, its ARN without a
    # region ("arn:aws:svc::acct:..."), so it sorts before every region's range and no regional
    # sweep or region removal touches it.
    account_level: bool = False


ALL = "*"


@dataclass(frozen=True)
class Touch:
    """A resource an event touched: its kind and id (as ``describe`` takes it); or, with ``by``, the
    resources of that kind whose Describe filter ``by`` matches ``resource_id`` (``ResourceKind.find``)."""

    resource_type: str
    resource_id: str
    by: str = ""


@dataclass(frozen=True)
class EventRule:
    """CloudTrail events of one source that touch resources of this service."""

    event_names: tuple[str, ...]
    touches: Callable[[dict[str, Any]], Iterable[Touch]]  # the CloudTrail ``detail`` → touched ids


@dataclass(frozen=True)
class Service:
    """Everything Qrie knows of one AWS service, declared in its module.

    ``read_actions`` are the IAM actions its collectors call (the customer role must allow them;
    a test runs every collector and checks each call it made is declared); ``clients`` are the
    boto3 clients they use (calls are attributed to the service by client)."""

    name: str
    regional: bool
    kinds: tuple[ResourceKind, ...]
    read_actions: tuple[str, ...]
    clients: tuple[str, ...] = ()  # default: the service's own name
    arn_namespace: str = ""  # the service in its ARNs (efs: elasticfilesystem); default its name
    event_source: str = ""  # e.g. "s3.amazonaws.com"
    events: tuple[EventRule, ...] = ()

    def __post_init__(self) -> None:
        if not self.clients:
            object.__setattr__(self, "clients", (self.name,))
        if not self.arn_namespace:
            object.__setattr__(self, "arn_namespace", self.name)

    def kind(self, resource_type: str) -> ResourceKind:
        for kind in self.kinds:
            if kind.resource_type == resource_type:
                return kind
        raise KeyError(resource_type)

    @property
    def resource_types(self) -> tuple[str, ...]:
        return tuple(k.resource_type for k in self.kinds)

    @property
    def event_names(self) -> tuple[str, ...]:
        return tuple(name for rule in self.events for name in rule.event_names)


# ---- helpers for collectors ---------------------------------------------------------------


def json_safe(value: Any) -> Any:
    """Timestamps to ISO strings, bytes dropped, floats kept exact for DynamoDB (as Decimal)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items() if not isinstance(v, bytes | bytearray)}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return Decimal(str(value))
    return value


# What one resource's permissions (or its resource policy, e.g. a deny-by-default bucket policy)
# answer: recorded on that resource, never failing the others. Throttling and server errors are
# not about one resource and still fail the item.
ACCESS_DENIED_CODES = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthFailure")
COLLECT_ERRORS = "CollectErrors"  # configuration key: [{"call": "GetBucketPolicy", "code": "AccessDenied"}]


@dataclass
class ResourceCalls:
    """The describe calls of one resource. A denied call answers None and is recorded; the
    configuration then carries the record (``stamp``), so a policy that needs its answer is not
    evaluated instead of reading None as 'not configured'."""

    errors: list[dict[str, str]] = field(default_factory=list)
    made: int = 0

    def call(
        self, name: str, call: Callable[[], dict[str, Any]], *missing_codes: str
    ) -> dict[str, Any] | None:
        self.made += 1
        try:
            return call()
        except ClientError as exc:
            code = error_code(exc)
            if code in missing_codes:
                return None
            if code in ACCESS_DENIED_CODES:
                self.errors.append({"call": name, "code": code})
                return None
            raise

    def denied(self, name: str) -> bool:
        """Whether the call ``name`` was denied (its answer unknown, not absent)."""
        return any(e["call"] == name for e in self.errors)

    @property
    def none_answered(self) -> bool:
        return self.made > 0 and len(self.errors) == self.made

    def stamp(self, configuration: dict[str, Any]) -> dict[str, Any]:
        return {**configuration, COLLECT_ERRORS: self.errors} if self.errors else configuration


def optional_call(call: Callable[[], dict[str, Any]], *missing_codes: str) -> dict[str, Any] | None:
    """Call an API whose 'not configured' answer is an error code; None means not configured."""
    try:
        return call()
    except ClientError as exc:
        if error_code(exc) in missing_codes:
            return None
        raise


def tags_dict(tags: Iterable[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or ()}


def require(response: dict[str, Any], key: str, api: str) -> Any:
    """A key an API must return; anything else is an ``UnexpectedResponse``, never a crash later."""
    if key not in response:
        raise UnexpectedResponse(f"{api} answered without {key!r}")
    return response[key]


def loads_json(text: str | None) -> Any:
    return json.loads(text) if text else None


def slice_page(names: list[str], token: str | None, page_size: int) -> tuple[list[str], str | None]:
    """Page over a sorted list of names by 'start after' token (for APIs with no usable paging)."""
    names = sorted(names)
    start = 0
    if token is not None:
        start = next((i for i, n in enumerate(names) if n > token), len(names))
    chunk = names[start : start + page_size]
    more = start + page_size < len(names)
    return chunk, (chunk[-1] if more and chunk else None)


Read = Callable[[CollectContext], "tuple[Resource, bool]"]


def one_per_context(
    read: Read,
) -> tuple[Callable[[CollectContext, str | None], Page], Callable[..., Resource]]:
    """``list_page`` and ``describe`` of a setting with one resource per account (× region), from
    ``read(ctx) -> (resource, every call denied)``: listed unread (kept as stored), or described as
    ``Unreadable``, when nothing could be read."""

    def list_page(ctx: CollectContext, _: str | None) -> Page:
        resource, unread = read(ctx)
        return Page([], None, unread=[resource]) if unread else Page([resource], None)

    def describe(ctx: CollectContext, _: str = "") -> Resource:
        resource, unread = read(ctx)
        if unread:
            raise Unreadable(f"{resource.arn}: every describe call was denied")
        return resource

    return list_page, describe
