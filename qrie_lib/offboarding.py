"""Offboarding an account (``qrie accounts remove``): its row is marked REMOVED first (inventory,
scans and events skip it from then on, and a sync does not onboard it again), then its ACTIVE
and SUPPRESSED findings resolve as ACCOUNT_REMOVED and its resource rows are deleted, a page at a
time. Every step is repeatable, so a remove that stopped half-way is finished by running it
again. Only the account's own partitions are read or written: no other account is touched."""

from __future__ import annotations

from dataclasses import dataclass

from qrie_lib.errors import UnknownAccount
from qrie_lib.models import AccountStatus
from qrie_lib.services.registry import SERVICES
from qrie_lib.stores import Stores
from qrie_lib.stores.findings import ResolvedReason
from qrie_lib.stores.resources import account_service
from qrie_lib.timeutil import now_iso


@dataclass(frozen=True)
class Removed:
    account_id: str
    findings_resolved: int
    resources_deleted: int


def remove_account(stores: Stores, account_id: str, page_size: int = 100) -> Removed:
    """UnknownAccount (nothing written) if the account was never onboarded."""
    account = stores.accounts.get(account_id)
    if account is None:
        raise UnknownAccount(f"account {account_id} is not onboarded")
    if account.status is not AccountStatus.REMOVED:
        stores.accounts.put(account.model_copy(update={"status": AccountStatus.REMOVED}))
    now, resolved, deleted = now_iso(), 0, 0
    for service in sorted(SERVICES):
        partition = account_service(account_id, service)
        for finding in stores.findings.unresolved_in_partition(partition, page_size):
            resolved += stores.findings.resolve(finding, ResolvedReason.ACCOUNT_REMOVED, now)
        while page := stores.resources.delete_first_page(account_id, service, page_size):
            deleted += page
    return Removed(account_id, resolved, deleted)
