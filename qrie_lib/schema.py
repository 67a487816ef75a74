"""The DynamoDB tables, declared once: the local runtime creates them from this, and the CDK
operator stack deploys them from this."""

from __future__ import annotations

from dataclasses import dataclass

from qrie_lib.settings import Settings


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: str
    sort_key: str


@dataclass(frozen=True)
class Table:
    setting: str  # the Settings field that holds the table's name
    partition_key: str
    sort_key: str | None = None
    indexes: tuple[Index, ...] = ()

    def name(self, settings: Settings) -> str:
        return getattr(settings, self.setting)

    @property
    def attributes(self) -> tuple[str, ...]:
        keys = [self.partition_key, *([self.sort_key] if self.sort_key else [])]
        keys += [k for ix in self.indexes for k in (ix.partition_key, ix.sort_key)]
        return tuple(dict.fromkeys(keys))


FINDINGS_BY_PARTITION = Index("AccountServiceState", "AccountService", "State")
FINDINGS_BY_POLICY = Index("PolicyState", "PolicyId", "State")

TABLES: dict[str, Table] = {
    "accounts": Table("accounts_table", "AccountId"),
    "resources": Table("resources_table", "AccountService", "ARN"),
    "findings": Table("findings_table", "ARN", "PolicyId", (FINDINGS_BY_PARTITION, FINDINGS_BY_POLICY)),
    "policies": Table("policies_table", "PolicyId"),
    "runs": Table("runs_table", "RunId", "Item"),
}
