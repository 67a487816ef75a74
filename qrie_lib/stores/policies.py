"""The policies table: launched policies only (definitions live in the catalogue).

A policy launched by a newer CLI or deployment than this one (sharing the tables) is not in this
catalogue: the listings leave it out, with a warning, so scans, events and summaries go on with
the policies this code can evaluate instead of failing on the one it cannot."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from qrie_lib.policies.registry import CATALOGUE, get_policy
from qrie_lib.scope import PolicyScope
from qrie_lib.stores.dynamo import batch_get, from_item, to_item

log = logging.getLogger(__name__)


class PolicyStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"


class LaunchedPolicy(BaseModel):
    policy_id: str
    status: PolicyStatus = PolicyStatus.ACTIVE
    scope: PolicyScope = Field(default_factory=PolicyScope)
    severity_override: int | None = Field(None, ge=0, le=100)
    launched_at: str
    updated_at: str

    @property
    def severity(self) -> int:
        """Effective severity: the override, else the catalogue's default."""
        return (
            self.severity_override
            if self.severity_override is not None
            else get_policy(self.policy_id).severity
        )


FIELDS = {
    "policy_id": "PolicyId",
    "status": "Status",
    "scope": "Scope",
    "severity_override": "SeverityOverride",
    "launched_at": "LaunchedAt",
    "updated_at": "UpdatedAt",
}


class PoliciesStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def put(self, policy: LaunchedPolicy) -> None:
        data = policy.model_dump(mode="json")
        self.client.put_item(TableName=self.table, Item=to_item({FIELDS[k]: v for k, v in data.items()}))

    def get(self, policy_id: str) -> LaunchedPolicy | None:
        item = self.client.get_item(TableName=self.table, Key=to_item({"PolicyId": policy_id})).get("Item")
        return self._policy(from_item(item)) if item else None

    def get_many(self, policy_ids: list[str]) -> list[LaunchedPolicy]:
        items = batch_get(self.client, self.table, [{"PolicyId": p} for p in policy_ids])
        return known(self._policy(i) for i in items)

    def list(self) -> list[LaunchedPolicy]:
        return known(
            self._policy(from_item(item))
            for page in self.client.get_paginator("scan").paginate(TableName=self.table)
            for item in page.get("Items", [])
        )

    def active(self) -> list[LaunchedPolicy]:
        return [p for p in self.list() if p.status is PolicyStatus.ACTIVE]

    @staticmethod
    def _policy(data: dict[str, Any]) -> LaunchedPolicy:
        return LaunchedPolicy(**{k: data[v] for k, v in FIELDS.items() if v in data})


def known(policies: Iterable[LaunchedPolicy]) -> list[LaunchedPolicy]:
    """Those of this deployment's catalogue, by id."""
    policies = list(policies)
    if unknown := sorted(p.policy_id for p in policies if p.policy_id not in CATALOGUE):
        log.warning("launched policies unknown to this deployment's catalogue, left out: %s", unknown)
    return sorted((p for p in policies if p.policy_id in CATALOGUE), key=lambda p: p.policy_id)
