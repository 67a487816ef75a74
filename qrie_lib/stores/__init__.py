"""DynamoDB stores, one per table of DESIGN.md, bundled for the tasks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from qrie_lib.aws import Aws, get_aws
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.stores.accounts import AccountsStore
from qrie_lib.stores.counters import CountersStore
from qrie_lib.stores.findings import FindingsStore
from qrie_lib.stores.history import HistoryStore
from qrie_lib.stores.partitions import PartitionsStore
from qrie_lib.stores.policies import PoliciesStore
from qrie_lib.stores.resources import ResourcesStore
from qrie_lib.stores.runs import RunsStore
from qrie_lib.stores.suppressions import AuditStore, SuppressionsStore


@dataclass(frozen=True)
class Stores:
    accounts: AccountsStore
    resources: ResourcesStore
    findings: FindingsStore
    policies: PoliciesStore
    runs: RunsStore
    partitions: PartitionsStore
    counters: CountersStore
    history: HistoryStore
    suppressions: SuppressionsStore
    audit: AuditStore

    @classmethod
    def of(cls, aws: Aws | None = None) -> Stores:
        aws = aws or get_aws()
        ddb, s = aws.client("dynamodb"), aws.settings
        partitions, counters = PartitionsStore(ddb, s.partitions_table), CountersStore(ddb, s.counters_table)
        accounts, history = AccountsStore(ddb, s.accounts_table), HistoryStore(ddb, s.history_table)
        suppressions = SuppressionsStore(ddb, s.suppressions_table, accounts.get)
        return cls(
            accounts=accounts,
            resources=ResourcesStore(ddb, s.resources_table, partitions, read_beside()),
            findings=FindingsStore(ddb, s.findings_table, counters, history, suppressions),
            policies=PoliciesStore(ddb, s.policies_table),
            runs=RunsStore(ddb, s.runs_table),
            partitions=partitions,
            counters=counters,
            history=history,
            suppressions=suppressions,
            audit=AuditStore(ddb, s.audit_table),
        )


@contextmanager
def batched_counts(stores: Stores) -> Iterator[None]:
    """The finding counters' and daily rollups' ADDs made inside, merged by row (``cell_adds``)."""
    with stores.counters.adds.batched(), stores.history.adds.batched():
        yield


def read_beside() -> frozenset[str]:
    """The resource types some policy reads beside the one it evaluates (changes are stamped)."""
    return frozenset(t for p in CATALOGUE.values() for t in (*p.related, *p.related_all))
