"""The policy scan flow, one function per state-machine task: plan (launched policies × accounts
in scope, grouped by service), evaluate one bounded chunk of a partition, finalize the run.
Scans read only the inventory; they never call the customers' APIs."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from pydantic import Field, field_validator

from qrie_lib import runs
from qrie_lib.aws import Aws, get_aws
from qrie_lib.errors import InvalidInput
from qrie_lib.evaluation import (
    EVALUATED,
    NEW,
    OUT_OF_SCOPE,
    REOPENED,
    RESOLVED,
    STILL_ACTIVE,
    Evaluator,
    known_accounts,
)
from qrie_lib.inventory import RemainingMs
from qrie_lib.models import AccountId, Strict, parse_input
from qrie_lib.policies.registry import CATALOGUE, get_policy
from qrie_lib.services.registry import SERVICES
from qrie_lib.stores import Stores
from qrie_lib.stores.coverage import CoverageStore
from qrie_lib.stores.policies import PolicyStatus
from qrie_lib.stores.runs import counts_of
from qrie_lib.timeutil import now_iso

KINDS = (EVALUATED, NEW, STILL_ACTIVE, RESOLVED, REOPENED, OUT_OF_SCOPE)


class ScanRequest(Strict):
    """The scan state machine's input: everything, or narrowed by policy, service or account."""

    policy_id: str | None = None
    service: str | None = None
    account_id: AccountId | None = None

    @field_validator("policy_id")
    @classmethod
    def known_policy(cls, value: str | None) -> str | None:
        if value is not None and value not in CATALOGUE:
            raise ValueError(f"unknown policy {value!r}")
        return value

    @field_validator("service")
    @classmethod
    def known_service(cls, value: str | None) -> str | None:
        if value is not None and value not in SERVICES:
            raise ValueError(f"unknown service {value!r}; expected one of {', '.join(SERVICES)}")
        return value


class ScanItem(Strict):
    account_id: AccountId
    service: str
    policy_ids: list[str] = Field(min_length=1)

    @property
    def item_id(self) -> str:
        return f"{self.account_id}/{self.service}"


class EvaluateInput(Strict):
    run_id: str
    started_at: str
    item: ScanItem
    cursor: str | None = None


def plan(event: Any, aws: Aws | None = None) -> dict[str, Any]:
    """Validate the request, expand it to work items, store them for the Distributed Map."""
    return runs.plan(event, "scan", ScanRequest, scan_items, aws)


def scan_items(request: ScanRequest, stores: Stores, _: Aws) -> list[ScanItem]:
    launched = [p for p in stores.policies.active() if request.policy_id in (None, p.policy_id)]
    if request.policy_id and not launched:
        raise InvalidInput(f"policy_id: {request.policy_id} is not launched (or is suspended)")
    if request.service:
        launched = [p for p in launched if get_policy(p.policy_id).service == request.service]
    accounts = runs.target_accounts(stores, request.account_id)

    items = []
    for account in accounts:
        by_service: dict[str, list[str]] = defaultdict(list)
        for policy in launched:
            if policy.scope.covers_account(account):
                by_service[get_policy(policy.policy_id).service].append(policy.policy_id)
        items += [
            ScanItem(account_id=account.account_id, service=service, policy_ids=sorted(ids))
            for service, ids in sorted(by_service.items())
        ]
    return items


def evaluate(event: Any, remaining_ms: RemainingMs, aws: Aws | None = None) -> dict[str, Any]:
    """Read pages of the item's partition (once for all its policies) and evaluate them."""
    aws = aws or get_aws()
    stores, settings = Stores.of(aws), aws.settings
    request = parse_input(EvaluateInput, event)
    item, token = request.item, request.cursor
    launched = [p for p in stores.policies.get_many(item.policy_ids) if p.status is PolicyStatus.ACTIVE]
    known = known_accounts(stores.accounts, launched)
    evaluator = Evaluator(stores.findings, stores.resources, launched, known)
    pages = 0
    while launched and pages < settings.pages_per_call and remaining_ms() >= settings.time_margin_ms:
        page = stores.resources.page(item.account_id, item.service, token, settings.scan_page_size)
        evaluator.evaluate(page.resources)
        token = page.next_token
        pages += 1
        if token is None:
            break
    done = token is None or not launched
    stores.runs.add_counts(
        request.run_id,
        item.item_id,
        {f"{pid}|{kind}": n for (pid, kind), n in evaluator.counts.items()},
        account_id=item.account_id,
        service=item.service,
        policy_ids=item.policy_ids,  # what the item covered (stores/coverage.py)
        **({"Status": "SUCCEEDED"} if done else {}),
    )
    return {"cursor": None if done else token}


def finalize(event: Any, aws: Aws | None = None) -> dict[str, Any]:
    """Counts per policy (evaluated, new, resolved, reopened, active) and per account."""
    stores = Stores.of(aws)
    run_id, summary, items = runs.outcome(event, stores)
    CoverageStore(stores.runs.client, stores.runs.table).record(run_id, items, now_iso())
    by_policy: dict[str, Counter[str]] = defaultdict(Counter)
    by_account: dict[str, Counter[str]] = defaultdict(Counter)
    for row in items:
        for name, n in counts_of(row).items():
            policy_id, kind = name.split("|")
            by_policy[policy_id][kind] += n
            by_account[row.get("account_id", "?")][kind] += n
    summary |= {
        "by_policy": {pid: _totals(c) for pid, c in sorted(by_policy.items())},
        "findings": _totals(sum(by_policy.values(), Counter())),
    }
    runs.finish(
        stores, run_id, summary | {"by_account": {a: _totals(c) for a, c in sorted(by_account.items())}}
    )
    return summary


def _totals(counts: Counter[str]) -> dict[str, int]:
    """Active after the scan = still active + new + reopened."""
    return {
        "evaluated": counts[EVALUATED],
        "new": counts[NEW],
        "resolved": counts[RESOLVED] + counts[OUT_OF_SCOPE],
        "reopened": counts[REOPENED],
        "active": counts[STILL_ACTIVE] + counts[NEW] + counts[REOPENED],
    }
