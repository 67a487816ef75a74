"""The DynamoDB tables, declared once: the local runtime creates them from this, and the CDK
operator stack deploys them from this."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from qrie_lib.settings import Settings

# One policy's findings across thousands of accounts spread over this many index partitions
# (``PolicyShard`` = "{policy_id}#{shard}", shard from the ARN), so no index key takes every write
# of a popular policy; a query by policy fans out over the shards. Changing it needs a backfill.
POLICY_SHARDS = 8


def policy_shard(policy_id: str, arn: str) -> str:
    return f"{policy_id}#{zlib.crc32(arn.encode()) % POLICY_SHARDS}"


def policy_shards(policy_id: str) -> list[str]:
    return [f"{policy_id}#{n}" for n in range(POLICY_SHARDS)]


# The findings in severity order (the console's "critical first", across pages): a state's findings
# spread over this many index keys (``SeverityShard`` = "{state}#{shard}", shard from the key), so
# no key takes every finding write of the organisation; a page merges the shards' heads.
SEVERITY_SHARDS = 8


def severity_shard(state: str, key: str, policy_id: str) -> str:
    return f"{state}#{zlib.crc32(f'{key}#{policy_id}'.encode()) % SEVERITY_SHARDS}"


def severity_shards(state: str) -> list[str]:
    return [f"{state}#{n}" for n in range(SEVERITY_SHARDS)]


def severity_rank(severity: int, first_seen: str, key: str, policy_id: str) -> str:
    """``SeverityRank``: descending, the most severe first, then the newest; unique per finding, and
    it names the finding (the key between the second ``#`` and the last), so a rank alone resumes."""
    return f"{severity:03d}#{first_seen}#{key}#{policy_id}"


def rank_key(rank: str) -> dict[str, str]:
    """The table key a ``severity_rank`` names."""
    key, _, policy_id = rank.split("#", 2)[2].rpartition("#")
    return {"ARN": key, "PolicyId": policy_id}


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: str
    sort_key: str
    # The non-key attributes the index carries: None projects ALL, () KEYS_ONLY, names INCLUDE.
    projection: tuple[str, ...] | None = None


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


# What the findings indexes' readers need beside the keys: the filters (severity, partition), and
# enough to resolve a finding and move its counters (account, region, severity). A page of rows
# for the API is then read from the table by key; evidence and timestamps never fill the indexes.
# ``Version`` and ``OpenedAt``: a resolution conditions on the one and records how long it stayed open.
FINDING_INDEX_ATTRIBUTES = ("AccountService", "AccountId", "Region", "Severity", "Version", "OpenedAt")
FINDINGS_BY_PARTITION = Index("AccountServiceState", "AccountService", "State", FINDING_INDEX_ATTRIBUTES)
# The scan digest filters this one to the openings not yet notified (``notifications``): it reads
# only those from the table, not every ACTIVE finding of every policy at each scan.
FINDINGS_BY_POLICY = Index(
    "PolicyShardState", "PolicyShard", "State", (*FINDING_INDEX_ATTRIBUTES, "ReopenCount", "NotifiedOpen")
)
# Keys only: a page of ranks is merged across shards, then its rows are read from the table by key.
FINDINGS_BY_SEVERITY = Index("SeverityOrder", "SeverityShard", "SeverityRank", ())
# Sparse: only resources changed since their partition was last evaluated carry ``DirtyPartition``
# (= their ``AccountService``). The incremental scan reads them whole from here, so ALL.
RESOURCES_CHANGED = Index("Changed", "DirtyPartition", "ARN")

# Sparse: only a run's header row carries ``Kind``. The console lists recent runs from here, which
# survive a restart of the local runtime (Step Functions' executions do not).
RUNS_BY_KIND = Index("KindStarted", "Kind", "StartedAt")

TABLES: dict[str, Table] = {
    "accounts": Table("accounts_table", "AccountId"),
    "resources": Table("resources_table", "AccountService", "ARN", (RESOURCES_CHANGED,)),
    "findings": Table(
        "findings_table", "ARN", "PolicyId", (FINDINGS_BY_PARTITION, FINDINGS_BY_POLICY, FINDINGS_BY_SEVERITY)
    ),
    "policies": Table("policies_table", "PolicyId"),
    "runs": Table("runs_table", "RunId", "Item", (RUNS_BY_KIND,)),
    # One row per resources partition: which policies the scans evaluated on it and when, and when
    # resource types that policies read beside the evaluated one (account settings) last changed.
    "partitions": Table("partitions_table", "AccountService"),
    # Findings counted by state and severity band, per policy shard and per account (atomic ADD).
    "counters": Table("counters_table", "Counter"),
    # Suppression rules by policy ("ALL": every policy), so an evaluation reads its policies' only.
    "suppressions": Table("suppressions_table", "PolicyId", "RuleId"),
    # Audit rows: "suppression/{rule_id}" with "{at}#{nonce}", before and after each change.
    "audit": Table("audit_table", "Subject", "At"),
    # A finding's transitions ("{ARN}#{PolicyId}", "v{version}") and daily rollups ("trend/{day}",
    # "{dimension}/{value}"), written with the transitions (qrie_lib.stores.history).
    "history": Table("history_table", "Key", "Sort"),
}
