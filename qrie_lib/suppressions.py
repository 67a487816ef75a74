"""Suppressions (accepted risks): a rule says which findings of a policy (or of every policy) are
accepted, why, whose risk it is, and until when.

Everything is validated before anything is written; a rule of ``ALL`` policies with no other
criterion (every finding of the organisation) must say ``everything: true``. A rule is created
ACTIVE and ends EXPIRED (read so from its expiry on; the daily expiry task marks it and moves its
findings) or REMOVED; every change writes an audit row (who, when, before, after). The findings
it covers move in a scan execution, never inside a request: ``{"policy_id": P, "suppressions":
true}`` (or every launched policy for an ``ALL`` rule) evaluates the policy's open and suppressed
findings again, which applies the rules as they are now (``scan.RematchItem``)."""

from __future__ import annotations

import getpass
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field, field_validator, model_validator

from qrie_lib import executions
from qrie_lib.aws import Aws
from qrie_lib.errors import InvalidInput, UnknownSuppression
from qrie_lib.models import AccountId, Strict, parse_input
from qrie_lib.policies.registry import CATALOGUE, unknown_policy
from qrie_lib.stores import Stores
from qrie_lib.stores.policies import PolicyStatus
from qrie_lib.stores.suppressions import ALL, RuleStatus, Suppression, new_rule_id
from qrie_lib.timeutil import iso, now_iso, parse_iso

SYSTEM_EXPIRY = "system:expiry"  # who expires rules: the daily task
# An ARN glob: an ARN with ``*`` (any run of characters) and ``?`` (one character), nothing else.
ARN_GLOB = re.compile(r"^arn:[A-Za-z0-9*?\-]*:[A-Za-z0-9*?\-]*:[A-Za-z0-9*?\-]*:[0-9*?]*:[^\s\[\]{}]+$")


class SuppressionRequest(Strict):
    """What ``POST /suppressions`` and ``qrie suppressions add`` accept."""

    policy_id: str = Field(description="a catalogue policy id, or ALL")
    accounts: list[AccountId] = Field(default_factory=list, max_length=1000)
    ou_paths: list[str] = Field(default_factory=list, max_length=100)
    arn_glob: str | None = Field(None, max_length=2048)
    resource_tags: dict[str, str] = Field(default_factory=dict, max_length=50)
    reason: str = Field(min_length=1, max_length=2000)
    owner: str = Field(min_length=1, max_length=256)
    expires_at: str = Field(description="an ISO date or UTC timestamp in the future")
    # ALL with no account, OU, ARN glob or tag hides every finding of the organisation: said explicitly.
    everything: bool = False

    @field_validator("policy_id")
    @classmethod
    def known_policy(cls, value: str) -> str:
        if value != ALL and value not in CATALOGUE:
            raise ValueError(f"{unknown_policy(value)}; a catalogue id or {ALL}")
        return value

    @field_validator("reason", "owner")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("ou_paths")
    @classmethod
    def ou_path(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not re.fullmatch(r"/([\w-]+/)*", path):
                raise ValueError(f"OU path {path!r} must look like /root/prod/")
        return paths

    @field_validator("arn_glob")
    @classmethod
    def glob(cls, value: str | None) -> str | None:
        if value is not None and not ARN_GLOB.match(value):
            raise ValueError(
                f"{value!r} is not an ARN glob (arn:partition:service:region:account:resource, "
                "with * and ? only)"
            )
        return value

    @field_validator("resource_tags")
    @classmethod
    def tags(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not key.strip() or len(key) > 128:
                raise ValueError(f"tag key {key!r} must be 1 to 128 characters")
        return value

    @model_validator(mode="after")
    def everything_said(self) -> SuppressionRequest:
        narrowed = bool(self.accounts or self.ou_paths or self.arn_glob or self.resource_tags)
        org_wide = self.policy_id == ALL and not narrowed
        if org_wide and not self.everything:
            raise ValueError(
                f"policy {ALL} with no account, OU path, ARN glob or tag suppresses every finding of "
                "the organisation: name what it covers, or say everything: true "
                "(qrie suppressions add --everything)"
            )
        if self.everything and not org_wide:
            raise ValueError(
                f"everything: true is only for policy {ALL} with no account, OU path, ARN glob or tag"
            )
        return self

    @field_validator("expires_at")
    @classmethod
    def timestamp(cls, value: str) -> str:
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO date or timestamp") from None
        return iso(when if when.tzinfo else when.replace(tzinfo=UTC))


def check_expiry(expires_at: str, now: str, max_days: int) -> None:
    if expires_at <= now:
        raise InvalidInput(f"expires_at: {expires_at} is not in the future")
    furthest = parse_iso(now) + timedelta(days=max_days)
    if parse_iso(expires_at) > furthest:
        raise InvalidInput(
            f"expires_at: {expires_at} is more than {max_days} days away (latest {iso(furthest)})"
        )


def add(
    aws: Aws, stores: Stores, data: Any, who: str, now: str | None = None
) -> tuple[Suppression, str | None]:
    """Validate and store a rule, audit it, and start the execution that suppresses its findings.
    Returns the rule and the execution ARN (None when the policy is not launched: nothing to move)."""
    request = data if isinstance(data, SuppressionRequest) else parse_input(SuppressionRequest, data)
    now = now or now_iso()
    check_expiry(request.expires_at, now, aws.settings.suppression_max_days)
    rule = Suppression(
        rule_id=new_rule_id(request.policy_id),
        **request.model_dump(),
        created_by=who,
        created_at=now,
    )
    stores.suppressions.put(rule, "attribute_not_exists(RuleId)")
    stores.audit.record(subject(rule.rule_id), "created", who, now, None, rule.row())
    return rule, rematch(aws, stores, rule.policy_id)


def get(stores: Stores, rule_id: str) -> Suppression:
    rule = stores.suppressions.get(rule_id) if re.fullmatch(r"[A-Za-z0-9]+\.[0-9a-f]{12}", rule_id) else None
    if rule is None:
        raise UnknownSuppression(f"suppression {rule_id!r} does not exist")
    return rule


def show(stores: Stores, rule_id: str) -> dict[str, Any]:
    """A rule and its audit trail, oldest first."""
    rule = as_of(get(stores, rule_id), now_iso())
    return {"suppression": rule.row(), "audit": stores.audit.of(subject(rule_id))}


def listing(
    stores: Stores, policy_id: str | None = None, status: str | None = None, now: str | None = None
) -> list[dict[str, Any]]:
    """The rules as they are now: one past its expiry is EXPIRED, whether or not the daily task has
    marked it yet (``as_of``)."""
    now = now or now_iso()
    rules = (as_of(r, now) for r in stores.suppressions.list())
    return [r.row() for r in rules if policy_id in (None, r.policy_id) and status in (None, r.status.value)]


def as_of(rule: Suppression, now: str) -> Suppression:
    """A rule's state at ``now``: an ACTIVE rule past its expiry reads EXPIRED (ended at its expiry)."""
    if rule.status is RuleStatus.ACTIVE and rule.expires_at <= now:
        return rule.model_copy(update={"status": RuleStatus.EXPIRED, "ended_at": rule.expires_at})
    return rule


def org_wide(stores: Stores, now: str | None = None) -> list[Suppression]:
    """The live rules that suppress every finding of the organisation (the overview shows them)."""
    now = now or now_iso()
    return [r for r in stores.suppressions.of_policy(ALL) if r.live(now) and r.everything]


def remove(
    aws: Aws, stores: Stores, rule_id: str, who: str, now: str | None = None
) -> tuple[Suppression, str | None]:
    """End an ACTIVE rule (an ended one is refused) and start the execution that reactivates its
    findings that still violate."""
    now = now or now_iso()
    rule = get(stores, rule_id)
    if (status := as_of(rule, now).status) is not RuleStatus.ACTIVE:
        raise InvalidInput(f"suppression {rule_id} is {status.value} already")
    ended = end(stores, rule, RuleStatus.REMOVED, who, now)
    if ended is None:  # expired or removed meanwhile
        raise InvalidInput(f"suppression {rule_id} ended meanwhile")
    return ended, rematch(aws, stores, rule.policy_id)


def end(stores: Stores, rule: Suppression, status: RuleStatus, who: str, now: str) -> Suppression | None:
    """ACTIVE → EXPIRED or REMOVED, conditionally (a concurrent end wins once), audited."""
    ended = rule.model_copy(update={"status": status, "ended_at": now, "ended_by": who})
    if not stores.suppressions.put(ended, "#st = :active", {":active": RuleStatus.ACTIVE.value}):
        return None
    stores.audit.record(subject(rule.rule_id), status.value.lower(), who, now, rule.row(), ended.row())
    return ended


def expire(aws: Aws, stores: Stores, now: str | None = None) -> dict[str, Any]:
    """Mark every ACTIVE rule past its expiry EXPIRED and start the executions that reactivate their
    findings (one per policy; one for every policy if an ALL rule expired)."""
    now = now or now_iso()
    expired = [
        ended
        for rule in stores.suppressions.list()
        if rule.status is RuleStatus.ACTIVE and rule.expires_at <= now
        if (ended := end(stores, rule, RuleStatus.EXPIRED, SYSTEM_EXPIRY, now)) is not None
    ]
    policies = {r.policy_id for r in expired}
    started = [
        arn for p in sorted({ALL} if ALL in policies else policies) if (arn := rematch(aws, stores, p))
    ]
    return {"expired": [r.rule_id for r in expired], "executions": started}


def rematch(aws: Aws, stores: Stores, policy_id: str) -> str | None:
    """Start the scan that applies the rules as they are now to the policy's findings (every
    launched policy's for ALL); None when there is nothing launched to re-match."""
    if policy_id == ALL:
        if not stores.policies.active():
            return None
        return executions.start(aws, "scan", {"suppressions": True})
    policy = stores.policies.get(policy_id)
    if policy is None or policy.status is not PolicyStatus.ACTIVE:
        return None
    return executions.start(aws, "scan", {"policy_id": policy_id, "suppressions": True})


def subject(rule_id: str) -> str:
    return f"suppression/{rule_id}"


def local_user() -> str:
    """Who the CLI acts as: ``local:$USER`` (the API takes its caller's IAM identity)."""
    return f"local:{os.environ.get('USER') or getpass.getuser()}"
