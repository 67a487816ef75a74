"""The suppressions table (accepted risks) and the audit table, and the matcher evaluations use.

Rules are keyed by policy (``ALL`` for every policy) and rule id, so an evaluation reads only the
rules of its own policies: one query each, once per store (a task call). A rule matches a finding
when every criterion it gives matches (accounts, OU path prefixes, ARN glob, resource tags; within
one criterion any value), it is ACTIVE and it has not expired: a scan after the expiry never
suppresses again, even before the daily expiry task has marked it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import translate
from functools import cached_property
from typing import Any
from uuid import uuid4

from pydantic import BaseModel, Field

from qrie_lib.models import Account, Resource
from qrie_lib.stores.dynamo import from_item, query_pages, to_item, values

ALL = "ALL"  # the policy key of a rule that applies to every policy


class RuleStatus(StrEnum):
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    REMOVED = "REMOVED"


class Suppression(BaseModel):
    rule_id: str
    policy_id: str  # a catalogue id, or ALL
    accounts: list[str] = Field(default_factory=list)
    ou_paths: list[str] = Field(default_factory=list)
    arn_glob: str | None = None
    resource_tags: dict[str, str] = Field(default_factory=dict)
    reason: str
    owner: str
    created_by: str
    created_at: str
    expires_at: str
    status: RuleStatus = RuleStatus.ACTIVE
    ended_at: str | None = None
    ended_by: str | None = None
    everything: bool = (
        False  # every finding of every policy: said explicitly (suppressions.SuppressionRequest)
    )

    @cached_property
    def glob_pattern(self) -> re.Pattern[str] | None:
        return re.compile(translate(self.arn_glob)) if self.arn_glob else None

    def live(self, now: str) -> bool:
        return self.status is RuleStatus.ACTIVE and self.expires_at > now

    def matches(self, resource: Resource, account: Callable[[str], Account | None]) -> bool:
        if self.accounts and resource.account_id not in self.accounts:
            return False
        if self.glob_pattern is not None and not self.glob_pattern.match(resource.arn):
            return False
        if self.resource_tags and not any(resource.tags.get(k) == v for k, v in self.resource_tags.items()):
            return False
        if self.ou_paths:
            found = account(resource.account_id)
            return found is not None and any(found.ou_path.startswith(p) for p in self.ou_paths)
        return True

    def row(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _attribute(name: str) -> str:
    return "".join(word.capitalize() for word in name.split("_"))


FIELDS = {name: _attribute(name) for name in Suppression.model_fields}


def rule_from_item(item: dict[str, Any]) -> Suppression:
    return Suppression(**{k: item[v] for k, v in FIELDS.items() if v in item})


def new_rule_id(policy_id: str) -> str:
    """``{policy or ALL}.{12 hex}``: the id says which partition holds the rule."""
    return f"{policy_id}.{uuid4().hex[:12]}"


@dataclass
class Matcher:
    """The live rules of some policies, for one evaluator."""

    rules: dict[str, list[Suppression]]  # policy id (or ALL) → rules
    account: Callable[[str], Account | None]
    now: str

    def match(self, policy_id: str, resource: Resource) -> str | None:
        """The id of the first live rule (by id) that suppresses this policy's finding on the resource."""
        for rule in (*self.rules.get(policy_id, ()), *self.rules.get(ALL, ())):
            if rule.live(self.now) and rule.matches(resource, self.account):
                return rule.rule_id
        return None


@dataclass
class SuppressionsStore:
    client: Any
    table: str
    account_of: Callable[[str], Account | None] = lambda _: None
    _by_policy: dict[str, list[Suppression]] = field(default_factory=dict)

    def put(
        self, rule: Suppression, condition: str | None = None, vals: dict[str, Any] | None = None
    ) -> bool:
        """Write a rule; with ``condition``, only if it holds (False otherwise)."""
        request: dict[str, Any] = {"TableName": self.table, "Item": to_item(self._item(rule))}
        if condition:
            request["ConditionExpression"] = condition
            if "#st" in condition:
                request["ExpressionAttributeNames"] = {"#st": "Status"}
            if vals:
                request["ExpressionAttributeValues"] = values(vals)
        try:
            self.client.put_item(**request)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        self._by_policy.pop(rule.policy_id, None)
        return True

    @staticmethod
    def _item(rule: Suppression) -> dict[str, Any]:
        return {FIELDS[k]: v for k, v in rule.model_dump(mode="json").items()}

    def get(self, rule_id: str) -> Suppression | None:
        policy_id = rule_id.rsplit(".", 1)[0]
        answer = self.client.get_item(
            TableName=self.table, Key=to_item({"PolicyId": policy_id, "RuleId": rule_id}), ConsistentRead=True
        )
        return rule_from_item(from_item(answer["Item"])) if "Item" in answer else None

    def of_policy(self, policy_id: str) -> list[Suppression]:
        """A policy's rules (or ALL's), by id; read once per store."""
        if policy_id not in self._by_policy:
            items = query_pages(
                self.client,
                TableName=self.table,
                KeyConditionExpression="PolicyId = :p",
                ExpressionAttributeValues=values({":p": policy_id}),
            )
            self._by_policy[policy_id] = [rule_from_item(i) for i in items]
        return self._by_policy[policy_id]

    def list(self) -> list[Suppression]:
        """Every rule (the table holds rules only: a bounded, operator-sized set)."""
        items = [
            from_item(i)
            for page in self.client.get_paginator("scan").paginate(TableName=self.table)
            for i in page["Items"]
        ]
        return sorted((rule_from_item(i) for i in items), key=lambda r: (r.created_at, r.rule_id))

    def matcher(self, policy_ids: Iterable[str], now: str) -> Matcher:
        accounts: dict[str, Account | None] = {}

        def account(account_id: str) -> Account | None:
            if account_id not in accounts:
                accounts[account_id] = self.account_of(account_id)
            return accounts[account_id]

        wanted = {*policy_ids, ALL}
        if len(wanted) > 2:  # a scan's many policies: one read of every rule, not a query each
            every = sorted(self.list(), key=lambda r: r.rule_id)  # a query's order: by RuleId
            for policy_id in wanted:
                self._by_policy.setdefault(policy_id, [r for r in every if r.policy_id == policy_id])
        rules = {p: [r for r in self.of_policy(p) if r.live(now)] for p in wanted}
        return Matcher({p: rs for p, rs in rules.items() if rs}, account, now)


class AuditStore:
    """Who changed what and when: one row per change, its state before and after."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def record(self, subject: str, action: str, who: str, at: str, before: Any, after: Any) -> None:
        self.client.put_item(
            TableName=self.table,
            Item=to_item(
                {
                    "Subject": subject,
                    "At": f"{at}#{uuid4().hex[:8]}",
                    "Action": action,
                    "Who": who,
                    "Before": before,
                    "After": after,
                }
            ),
            ConditionExpression="attribute_not_exists(Subject)",
        )

    def of(self, subject: str) -> list[dict[str, Any]]:
        rows = query_pages(
            self.client,
            TableName=self.table,
            KeyConditionExpression="Subject = :s",
            ExpressionAttributeValues=values({":s": subject}),
            ConsistentRead=True,
        )
        return [
            {
                "at": r["At"].split("#")[0],
                "action": r["Action"],
                "who": r["Who"],
                "before": r.get("Before"),
                "after": r.get("After"),
            }
            for r in rows
        ]
