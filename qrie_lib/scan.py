"""The policy scan flow, one function per state-machine task: plan (launched policies × accounts
in scope, grouped by service), evaluate one bounded chunk of a partition, finalize the run.
Scans read only the inventory; they never call the customers' APIs.

Scans are incremental. A partition's item evaluates a policy on every resource only when the
partition's row (``stores.partitions``) says it must: never evaluated there, launched or changed
since (``UpdatedAt``), a resource type it reads beside the evaluated one changed, its verdicts age
with the clock (re-checked daily), or ``{"full": true}``. Otherwise it evaluates only the resources
marked changed (the sparse index of dirty resources): an unchanged partition costs one query that
finds nothing. A policy-narrowed or full scan also walks the policy's findings index shard by shard
(``ResolveItem``) to resolve those of a suspended policy, or out of its scope. ``{"suppressions":
true}`` (after a suppression rule changed) walks the policy's ACTIVE and SUPPRESSED findings
(``RematchItem``) and evaluates their resources again, which applies the rules as they are now."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, StrictBool, field_validator, model_validator

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
    UNSUPPRESSED,
    Evaluator,
    known_accounts,
)
from qrie_lib.evaluation import (
    SUPPRESSED as SUPPRESSED_KIND,
)
from qrie_lib.inventory import RemainingMs
from qrie_lib.models import Account, AccountId, AccountInput, Strict, SummarizeInput, parse_input
from qrie_lib.policies.base import BANDS, Policy, band
from qrie_lib.policies.registry import CATALOGUE, get_policy, unknown_policy
from qrie_lib.schema import RESOURCES_CHANGED, policy_shards
from qrie_lib.scope import PolicyScope
from qrie_lib.services.registry import SERVICES, service_of_type
from qrie_lib.stores import Stores, batched_counts
from qrie_lib.stores.coverage import CoverageStore
from qrie_lib.stores.dynamo import batch_get
from qrie_lib.stores.findings import FindingState, ResolvedReason
from qrie_lib.stores.partitions import PartitionStamp
from qrie_lib.stores.policies import LaunchedPolicy, PolicyStatus
from qrie_lib.stores.resources import PartitionPage, account_service, resource_from_item
from qrie_lib.timeutil import now_iso, parse_iso

KIND = "scan"
SUSPENDED = "suspended"  # findings resolved because their policy was suspended
KINDS = (EVALUATED, NEW, STILL_ACTIVE, RESOLVED, REOPENED, OUT_OF_SCOPE, SUSPENDED)
# Verdicts that age count whole days (or read the accounts Qrie knows): the daily scan, 24 h after
# the last, evaluates them on every resource; a re-scan the same day does not.
RECHECK_AFTER = timedelta(hours=20)


class ScanRequest(Strict):
    """The scan state machine's input: everything, or narrowed by policy, service or account."""

    policy_id: str | None = None
    service: str | None = None
    account_id: AccountId | None = None
    full: StrictBool = False  # evaluate every resource, changed or not (the weekly scan after inventory)
    # Re-match suppression rules: only the policy's (or every launched policy's) open and
    # suppressed findings are evaluated again (a rule was added, removed or expired).
    suppressions: StrictBool = False

    @model_validator(mode="after")
    def suppressions_alone(self) -> ScanRequest:
        if self.suppressions and (self.full or self.account_id or self.service):
            raise ValueError("suppressions: true combines with policy_id only")
        return self

    @field_validator("policy_id")
    @classmethod
    def known_policy(cls, value: str | None) -> str | None:
        if value is not None and value not in CATALOGUE:
            raise ValueError(unknown_policy(value))
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
    full: bool = False
    complete: bool = True  # every policy in scope for the partition: it may clear change marks

    @property
    def item_id(self) -> str:
        return f"{self.account_id}/{self.service}"


class ResolveItem(Strict):
    """One shard of a policy's findings index, whose ACTIVE findings resolve if the policy is
    suspended, or if they are out of its scope."""

    policy_id: str
    shard: str
    reason: Literal["POLICY_SUSPENDED", "OUT_OF_SCOPE"]

    @property
    def item_id(self) -> str:
        return runs.item_id(self.model_dump())


class RematchItem(Strict):
    """One shard of a policy's findings in one state, whose resources are evaluated again so that
    the suppression rules as they are now apply (``ScanRequest.suppressions``)."""

    policy_id: str
    shard: str
    state: Literal["ACTIVE", "SUPPRESSED"]

    @property
    def item_id(self) -> str:
        return runs.item_id(self.model_dump())


class ScanCursor(Strict):
    """Where an item stopped: which walk (the partition, its changed resources, a findings shard),
    the policies evaluated on every resource, and the store's page token."""

    walk: Literal["partition", "changed", "findings", "suppressed"]
    full: list[str] = []
    token: str | None = None


class EvaluateInput(Strict):
    run_id: str
    started_at: str
    item: ScanItem | ResolveItem | RematchItem
    cursor: ScanCursor | None = None


def plan(event: Any, aws: Aws | None = None) -> dict[str, Any]:
    """Validate the request and open the run; its accounts are paged, their items expanded by
    each account's child."""
    return runs.plan(event, KIND, ScanRequest, check, aws)


def check(request: ScanRequest, stores: Stores) -> runs.Scope:
    """What the plan refuses (InvalidInput): a policy not launched, an account not onboarded.
    Reads the launched policies (bounded by the catalogue) and the one account named."""
    if request.policy_id and stores.policies.get(request.policy_id) is None:
        raise InvalidInput(f"policy_id: {request.policy_id} is not launched")
    if request.account_id is not None:
        runs.target_account(stores, request.account_id)
    whole = request.account_id is None and bool(request.policy_id or request.full)
    return runs.Scope(accounts=not request.suppressions, shards=request.suppressions or whole)


def expand(event: Any, aws: Aws | None = None) -> dict[str, Any]:
    """One account's items (a partition per service, with the launched policies that cover the
    account), or for ``*`` the findings-shard items of the policies asked for."""
    aws = aws or get_aws()
    stores = Stores.of(aws)
    request = parse_input(AccountInput, event)
    scan_request = parse_input(ScanRequest, request.request)
    policies = wanted_policies(scan_request, stores)
    items: list[ScanItem] | list[ResolveItem] | list[RematchItem]
    if request.account_id == runs.NO_ACCOUNT:
        items = shard_items(scan_request, policies)
    else:
        items = account_items(scan_request, runs.target_account(stores, request.account_id), policies)
    return {"items": [i.model_dump() for i in items]}


def wanted_policies(request: ScanRequest, stores: Stores) -> list[LaunchedPolicy]:
    """The launched policies the request asks for (active or suspended)."""
    policies = [p for p in stores.policies.list() if request.policy_id in (None, p.policy_id)]
    if request.service:
        policies = [p for p in policies if get_policy(p.policy_id).service == request.service]
    return policies


def account_items(request: ScanRequest, account: Account, policies: list[LaunchedPolicy]) -> list[ScanItem]:
    """A partition per service of the account, with the active policies that cover the account."""
    by_service: dict[str, list[str]] = defaultdict(list)
    for policy in policies:
        if policy.status is PolicyStatus.ACTIVE and policy.scope.covers_account(account):
            by_service[get_policy(policy.policy_id).service].append(policy.policy_id)
    return [
        ScanItem(
            account_id=account.account_id,
            service=service,
            policy_ids=sorted(ids),
            full=request.full,
            complete=request.policy_id is None,
        )
        for service, ids in sorted(by_service.items())
    ]


def shard_items(
    request: ScanRequest, policies: list[LaunchedPolicy]
) -> list[ResolveItem] | list[RematchItem]:
    """Re-matching suppressions: each launched policy's ACTIVE and SUPPRESSED findings, shard by
    shard; else the shards whose findings may resolve (suspended or scoped policies)."""
    if request.suppressions:
        return [
            RematchItem(policy_id=p.policy_id, shard=shard, state=state.value)
            for p in policies
            if p.status is PolicyStatus.ACTIVE
            for shard in policy_shards(p.policy_id)
            for state in (FindingState.ACTIVE, FindingState.SUPPRESSED)
        ]
    return [item for policy in policies for item in resolve_items(policy, bool(request.policy_id))]


def resolve_items(policy: LaunchedPolicy, named: bool) -> list[ResolveItem]:
    """A suspended policy's shards; an active one's when named or scoped (a policy of the default
    scope covers every account and region: nothing of it is out of scope)."""
    if policy.status is PolicyStatus.SUSPENDED:
        reason = ResolvedReason.POLICY_SUSPENDED
    elif named or policy.scope != PolicyScope():
        reason = ResolvedReason.OUT_OF_SCOPE
    else:
        return []
    return [
        ResolveItem(policy_id=policy.policy_id, shard=shard, reason=reason.value)
        for shard in policy_shards(policy.policy_id)
    ]


def evaluate(event: Any, remaining_ms: RemainingMs, aws: Aws | None = None) -> dict[str, Any]:
    """Evaluate pages of the item's partition (read once for all its policies): every resource for
    the policies that need it, the changed ones for the others; or resolve a findings shard."""
    aws = aws or get_aws()
    stores = Stores.of(aws)
    request = parse_input(EvaluateInput, event)
    with batched_counts(stores):
        if isinstance(request.item, ResolveItem):
            return resolve(request, request.item, stores, aws, remaining_ms)
        if isinstance(request.item, RematchItem):
            return rematch(request, request.item, stores, aws, remaining_ms)
        return evaluate_partition(request, request.item, stores, aws, remaining_ms)


def evaluate_partition(
    request: EvaluateInput, item: ScanItem, stores: Stores, aws: Aws, remaining_ms: RemainingMs
) -> dict[str, Any]:
    settings = aws.settings
    launched = [p for p in stores.policies.get_many(item.policy_ids) if p.status is PolicyStatus.ACTIVE]
    cursor = request.cursor or first_walk(stores, item, launched, request.started_at)
    known = known_accounts(stores.accounts, launched)
    cause = f"run:{request.run_id}"
    changed = Evaluator(stores.findings, stores.resources, launched, known, cause=cause)  # every policy
    unchanged = Evaluator(
        stores.findings,
        stores.resources,
        [p for p in launched if p.policy_id in cursor.full],
        known,
        cause=cause,
    )
    token, pages = cursor.token, 0
    while launched and pages < settings.pages_per_call and remaining_ms() >= settings.time_margin_ms:
        page = (
            stores.resources.page(item.account_id, item.service, token, settings.scan_page_size)
            if cursor.walk == "partition"
            else stores.resources.changed_page(item.account_id, item.service, token, settings.scan_page_size)
        )
        dirty = [i for i in page.items if RESOURCES_CHANGED.partition_key in i]
        changed.evaluate(PartitionPage(dirty, None).resources)
        if unchanged.launched:
            clean = [i for i in page.items if RESOURCES_CHANGED.partition_key not in i]
            unchanged.evaluate(PartitionPage(clean, None).resources)
        if item.complete:  # every policy of the partition saw them: no longer changed
            stores.resources.clear_dirty(dirty)
        token = page.next_token
        pages += 1
        if token is None:
            break
    done = token is None or not launched
    if done and launched:
        stamp(stores, item, launched, request.started_at)
    stores.runs.add_counts(
        request.run_id,
        item.item_id,
        {f"{pid}|{kind}": n for (pid, kind), n in (changed.counts + unchanged.counts).items()},
        account_id=item.account_id,
        service=item.service,
        policy_ids=item.policy_ids,  # what the item covered (stores/coverage.py)
        # of them, those evaluated on every resource; the others only on the changed ones
        full_policy_ids=cursor.full,
        **({"Status": "SUCCEEDED"} if done else {}),
    )
    return {
        "cursor": None if done else cursor.model_copy(update={"token": token}).model_dump(),
        "moved": moved(changed.counts + unchanged.counts),  # for the handler's metrics (the ASL drops it)
    }


def first_walk(stores: Stores, item: ScanItem, launched: list[LaunchedPolicy], started_at: str) -> ScanCursor:
    """Which policies evaluate every resource of the partition (then the walk is the partition's),
    the others evaluating only its changed resources."""
    declared = {p.policy_id: get_policy(p.policy_id) for p in launched}
    own = account_service(item.account_id, item.service)
    read = {t: account_service(item.account_id, service_of_type(t).name) for t in reads(declared.values())}
    stamps = stores.partitions.get_many([own, *read.values()])
    full = sorted(
        p.policy_id
        for p in launched
        if item.full or must_reevaluate(p, declared[p.policy_id], stamps, own, read, started_at)
    )
    return ScanCursor(walk="partition" if full else "changed", full=full)


def reads(policies: Iterable[Policy]) -> set[str]:
    """The resource types policies read beside the one they evaluate."""
    return {t for policy in policies for t in (*policy.related, *policy.related_all)}


def must_reevaluate(
    launched: LaunchedPolicy,
    policy: Policy,
    stamps: dict[str, PartitionStamp],
    own: str,
    read: dict[str, str],
    started_at: str,
) -> bool:
    """Whether unchanged resources could get another verdict from the policy than last time."""
    at = stamps[own].evaluated.get(launched.policy_id)
    if at is None or launched.updated_at > at:
        return True
    daily = policy.ages or policy.reads_known_accounts
    if daily and parse_iso(started_at) - parse_iso(at) >= RECHECK_AFTER:
        return True
    return any(stamps[read[t]].changed.get(t, "") > at for t in reads([policy]))


def stamp(stores: Stores, item: ScanItem, launched: list[LaunchedPolicy], started_at: str) -> None:
    """The partition was evaluated through this run for these policies. A complete item also
    forgets the policies no longer evaluated here: back in scope, they start from every resource."""
    own = account_service(item.account_id, item.service)
    gone = stores.partitions.get_many([own])[own].evaluated.keys() if item.complete else ()
    stores.partitions.stamp(own, [p.policy_id for p in launched], started_at, forget=gone)


def resolve(
    request: EvaluateInput, item: ResolveItem, stores: Stores, aws: Aws, remaining_ms: RemainingMs
) -> dict[str, Any]:
    """Resolve, page by page, a findings shard's ACTIVE then SUPPRESSED findings that the policy no
    longer covers: all of them once it is suspended, else those out of its scope (account or
    region). A suppression accepts a finding's risk; it does not keep a finding that is no more."""
    settings, reason = aws.settings, ResolvedReason(item.reason)
    policy = stores.policies.get(item.policy_id)
    suspended = policy is not None and policy.status is PolicyStatus.SUSPENDED
    # Launched again, or suspended, since the plan: nothing of this item is left to do.
    current = policy is not None and suspended == (reason is ResolvedReason.POLICY_SUSPENDED)
    token = request.cursor.token if request.cursor else None
    walk = request.cursor.walk if request.cursor else "findings"
    accounts: dict[str, Account | None] = {}
    resolved, pages, now = 0, 0, now_iso()
    finished = not current  # nothing of the item is left to do
    while not finished and pages < settings.pages_per_call and remaining_ms() >= settings.time_margin_ms:
        assert policy is not None
        state = FindingState.SUPPRESSED if walk == "suppressed" else FindingState.ACTIVE
        refs, token = stores.findings.state_page(item.shard, state, token, settings.scan_page_size)
        for ref in refs:
            if ref.account_id not in accounts:
                accounts[ref.account_id] = stores.accounts.get(ref.account_id)
            account = accounts[ref.account_id]
            covered = account is not None and policy.scope.covers_account(account)
            if suspended or not (covered and policy.scope.covers_region(ref.region)):
                resolved += stores.findings.resolve(ref, reason, now, f"run:{request.run_id}")
        pages += 1
        if token is None and walk == "findings":
            walk = "suppressed"  # then the shard's suppressed findings, from their first page
        elif token is None:
            finished = True
    kind = SUSPENDED if reason is ResolvedReason.POLICY_SUSPENDED else OUT_OF_SCOPE
    stores.runs.add_counts(
        request.run_id,
        item.item_id,
        {f"{item.policy_id}|{kind}": resolved},
        policy_id=item.policy_id,
        shard=item.shard,
        **({"Status": "SUCCEEDED"} if finished else {}),
    )
    return {
        "cursor": None if finished else ScanCursor(walk=walk, token=token).model_dump(),
        "moved": {"opened": 0, "resolved": resolved, "suppressed": 0},
    }


def rematch(
    request: EvaluateInput, item: RematchItem, stores: Stores, aws: Aws, remaining_ms: RemainingMs
) -> dict[str, Any]:
    """Evaluate again, page by page, the resources of a findings shard's findings in one state (of
    accounts the policy covers): the evaluator applies the suppression rules as they are now."""
    settings = aws.settings
    policy = stores.policies.get(item.policy_id)
    live = policy is not None and policy.status is PolicyStatus.ACTIVE
    token = request.cursor.token if request.cursor else None
    accounts: dict[str, Account | None] = {}
    evaluator = Evaluator(
        stores.findings,
        stores.resources,
        [policy] if policy and live else [],
        known_accounts(stores.accounts, [policy] if policy and live else []),
        cause=f"run:{request.run_id}",
    )
    pages = 0
    while live and pages < settings.pages_per_call and remaining_ms() >= settings.time_margin_ms:
        assert policy is not None
        refs, token = stores.findings.state_page(
            item.shard, FindingState(item.state), token, settings.scan_page_size
        )
        for ref in refs:
            if ref.account_id not in accounts:
                accounts[ref.account_id] = stores.accounts.get(ref.account_id)
        covered = [r for r in refs if (a := accounts[r.account_id]) and policy.scope.covers_account(a)]
        keys = [{"AccountService": r.account_service, "ARN": r.arn} for r in covered]
        rows = batch_get(stores.resources.client, stores.resources.table, keys)
        evaluator.evaluate([resource_from_item(row) for row in rows])
        pages += 1
        if token is None:
            break
    done = token is None or not live
    stores.runs.add_counts(
        request.run_id,
        item.item_id,
        {f"{pid}|{kind}": n for (pid, kind), n in evaluator.counts.items()},
        policy_id=item.policy_id,
        shard=item.shard,
        **({"Status": "SUCCEEDED"} if done else {}),
    )
    return {
        "cursor": None if done else ScanCursor(walk="findings", token=token).model_dump(),
        "moved": moved(evaluator.counts),
    }


def moved(counts: Counter[tuple[str, str]]) -> dict[str, int]:
    """Findings a task call opened (new, reopened, unsuppressed), resolved and suppressed."""
    kinds: Counter[str] = Counter()
    for (_, kind), n in counts.items():
        kinds[kind] += n
    return {
        "opened": kinds[NEW] + kinds[REOPENED] + kinds[UNSUPPRESSED],
        "resolved": kinds[RESOLVED] + kinds[OUT_OF_SCOPE],
        "suppressed": kinds[SUPPRESSED_KIND],
    }


def summarize(event: Any, aws: Aws | None = None) -> dict[str, Any]:
    """The account's summary row, its consecutive failures, and what it covered (coverage)."""
    return runs.summarize(event, KIND, record_coverage, aws)


def record_coverage(request: SummarizeInput, rows: list[dict[str, Any]], stores: Stores) -> None:
    """The account's coverage row from its completed items: one write, by its own child."""
    CoverageStore(stores.runs.client, stores.runs.table).record(request.run_id, rows, now_iso())


def finalize(event: Any, aws: Aws | None = None) -> dict[str, Any]:
    """A page of the accounts' summaries into the totals; after the last, the run's outcome:
    counts per policy (evaluated, new, resolved, reopened, active) and in all."""
    return runs.finalize(event, KIND, policy_totals, after_scan, aws=aws)


def by_policy_kind(counts: dict[str, int]) -> dict[str, Counter[str]]:
    """The run's counters ("policy|kind") per policy."""
    by_policy: dict[str, Counter[str]] = defaultdict(Counter)
    for name, n in counts.items():
        policy_id, kind = name.split("|")
        by_policy[policy_id][kind] += n
    return by_policy


def policy_totals(counts: dict[str, int]) -> dict[str, Any]:
    by_policy = by_policy_kind(counts)
    return {
        "by_policy": {pid: _totals(c) for pid, c in sorted(by_policy.items())},
        "findings": _totals(sum(by_policy.values(), Counter())),
    }


def after_scan(
    _aws: Aws, stores: Stores, _run_id: str, request: dict[str, Any], _status: Any, counts: dict[str, int]
) -> dict[str, Any]:
    """What the run changed, by severity, from its summed counters."""
    return {"changes": changes(stores, request, by_policy_kind(counts))}


def changes(
    stores: Stores, request: dict[str, Any], by_policy: dict[str, Counter[str]]
) -> dict[str, dict[str, int | None]]:
    """What the run changed, by severity band (of each policy's effective severity): findings it
    opened (new, reopened, no longer suppressed), resolved and suppressed, from its own counters;
    and the open findings it left as they were: those open now in its scope (the finding counters:
    the launched policies' rows, or the account's) less those it opened. An incremental scan reads
    only what changed, so its own counters cannot tell; for a scope the counters do not hold (an
    account and a policy or service), unchanged is None."""
    launched = {p.policy_id: p for p in stores.policies.list()}
    moved = {name: Counter[str]() for name in ("opened", "resolved", "suppressed")}
    for policy_id, counts in by_policy.items():
        if policy_id not in launched or policy_id not in CATALOGUE:
            continue  # no longer launched, or no longer in the catalogue: no severity to band by
        name = band(launched[policy_id].severity)
        moved["opened"][name] += counts[NEW] + counts[REOPENED] + counts[UNSUPPRESSED]
        moved["resolved"][name] += counts[RESOLVED] + counts[OUT_OF_SCOPE] + counts[SUSPENDED]
        moved["suppressed"][name] += counts[SUPPRESSED_KIND]
    open_now = open_in_scope(stores, request, launched)
    return {
        name: {kind: moved[kind][name] for kind in moved}
        | {"unchanged": None if open_now is None else max(0, open_now[name] - moved["opened"][name])}
        for name in BANDS
    }


def open_in_scope(
    stores: Stores, request: dict[str, Any], launched: dict[str, LaunchedPolicy]
) -> Counter[str] | None:
    """ACTIVE findings by band now, in a scan request's scope, from the finding counters."""
    account, policy_id, service = (request.get(k) for k in ("account_id", "policy_id", "service"))
    if account and (policy_id or service):
        return None
    if account:
        cells = stores.counters.account(account)
    else:
        ids = [policy_id] if policy_id else [p for p in launched if p in CATALOGUE]
        ids = [p for p in ids if not service or get_policy(p).service == service]
        cells = sum(stores.counters.policies(ids).values(), Counter())
    return Counter({name: cells[f"{FindingState.ACTIVE.value}|{name}"] for name in BANDS})


def _totals(counts: Counter[str]) -> dict[str, int]:
    """Active after the scan = still active + new + reopened."""
    return {
        "evaluated": counts[EVALUATED],
        "new": counts[NEW],
        "resolved": counts[RESOLVED] + counts[OUT_OF_SCOPE] + counts[SUSPENDED],
        "reopened": counts[REOPENED],
        "active": counts[STILL_ACTIVE] + counts[NEW] + counts[REOPENED] + counts[UNSUPPRESSED],
    }
