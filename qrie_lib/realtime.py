"""Real-time refresh: for a batch of queued CloudTrail events, describe each resource they touched
(now, in the customer account), store it unless a fresher describe is stored, or delete it and
resolve its findings if it is gone; then re-evaluate the launched policies in scope for it.

Two phases, so that a burst of events on one resource costs one describe: read every record, then
refresh each distinct (account, region, type, id) once and attribute a failure to every record that
touched it. Nothing is written for a record that is malformed or unknown, comes from an account that
is not onboarded, or from a region the inventory does not cover."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from qrie_lib.aws import Aws, get_aws
from qrie_lib.concurrency import customer_io
from qrie_lib.errors import MalformedEvent
from qrie_lib.evaluation import (
    NEW,
    OUT_OF_SCOPE,
    REOPENED,
    RESOLVED,
    Evaluator,
    known_accounts,
    resolve_deleted,
)
from qrie_lib.events import CloudTrailEvent, Target, parse, rule_for, touched
from qrie_lib.inventory import named_aws_errors
from qrie_lib.models import GLOBAL, Account, AccountStatus, Resource, WorkItem
from qrie_lib.policies.registry import CATALOGUE, get_policy
from qrie_lib.services.base import CollectContext, ResourceKind
from qrie_lib.services.registry import service_of_type
from qrie_lib.stores import Stores
from qrie_lib.stores.policies import LaunchedPolicy, PolicyStatus
from qrie_lib.timeutil import now_iso

# Work bounds per refreshed target. What an event leaves past them the schedules catch up:
# dependents are re-evaluated by the daily scan (from the inventory this event already updated),
# found resources are described by the next inventory. A bounded target is logged ``truncated``.
FIND_PAGES = 4  # pages of a Describe-by-filter (a terminated instance's volumes, a region's VPCs)
DEPENDENT_PAGES = 10  # pages of ``scan_page_size`` resources re-evaluated for an account-level change


class Status(StrEnum):
    PROCESSED = "processed"
    IGNORED = "ignored"  # no service declares the event, the call failed, or it touched nothing we keep
    NOT_ONBOARDED = "not_onboarded"
    FAILED = "failed"


@dataclass
class RecordOutcome:
    message_id: str
    status: Status
    event: CloudTrailEvent | None = None  # None when the body is malformed
    targets: list[Target] = field(default_factory=list)
    reason: str = ""
    error: Exception | None = None

    @property
    def event_id(self) -> str:
        return self.event.event_id if self.event else ""

    def settle(self, status: Status, reason: str) -> None:
        self.status, self.reason, self.targets = status, reason, []

    def fail(self, error: Exception) -> None:
        self.status, self.reason, self.error = Status.FAILED, f"{type(error).__name__}: {error}", error

    def log_fields(self) -> dict[str, Any]:
        detail = self.event.detail if self.event else None
        return {
            "message_id": self.message_id,
            "status": self.status.value,
            "event_id": detail.eventID if detail else None,
            "event_name": detail.eventName if detail else None,
            "event_source": detail.eventSource if detail else None,
            "account_id": self.event.account_id if self.event else None,
            "reason": self.reason,
        }


@dataclass
class TargetResult:
    """One distinct resource's refresh, shared by every record that touched it."""

    target: Target
    account: Account
    arn: str = ""
    event_ids: list[str] = field(default_factory=list)
    gone: bool = False
    opened: int = 0
    resolved: int = 0
    describe_ms: float | None = None
    truncated: bool = False  # a work bound was reached (see FIND_PAGES, DEPENDENT_PAGES)
    error: Exception | None = None

    def add(self, counts: Counter[tuple[str, str]]) -> None:
        """Findings moved by evaluations, counted from an ``Evaluator``'s (policy, outcome) counts."""
        self.opened += sum(n for (_, kind), n in counts.items() if kind in (NEW, REOPENED))
        self.resolved += sum(n for (_, kind), n in counts.items() if kind in (RESOLVED, OUT_OF_SCOPE))

    def log_fields(self) -> dict[str, Any]:
        return {
            "arn": self.arn,
            "event_ids": self.event_ids,
            "account_id": self.target.account_id,
            "region": self.target.region,
            "gone": self.gone,
            "findings_opened": self.opened,
            "findings_resolved": self.resolved,
            "describe_ms": self.describe_ms,
            "truncated": self.truncated,
        }


@dataclass
class BatchResult:
    records: list[RecordOutcome]
    targets: list[TargetResult]
    changed: list[tuple[str, str, str]] = field(default_factory=list)  # findings moved (Evaluator.changed)

    def count(self, *statuses: Status) -> int:
        return sum(r.status in statuses for r in self.records)

    @property
    def opened(self) -> int:
        return sum(t.opened for t in self.targets)

    @property
    def resolved(self) -> int:
        return sum(t.resolved for t in self.targets)

    def outcome_of(self, message_id: str) -> str:
        """For the batch utility: a failed record raises its error, so it alone is retried."""
        outcome = next(r for r in self.records if r.message_id == message_id)
        if outcome.error is not None:
            raise outcome.error
        return outcome.status.value


def read(message_id: str, body: str) -> RecordOutcome:
    """Phase one, pure: parse the body and find the resources it touched."""
    try:
        event = parse(body)
        targets = touched(event)
    except MalformedEvent as exc:
        outcome = RecordOutcome(message_id, Status.FAILED)
        outcome.fail(exc)
        return outcome
    if rule_for(event) is None:
        return RecordOutcome(message_id, Status.IGNORED, event, reason="no service declares this event")
    if event.detail.errorCode:
        reason = f"the call failed ({event.detail.errorCode}): nothing changed"
        return RecordOutcome(message_id, Status.IGNORED, event, reason=reason)
    if not targets:
        return RecordOutcome(message_id, Status.IGNORED, event, reason="touches no resource we keep")
    return RecordOutcome(message_id, Status.PROCESSED, event, targets)


def process_batch(messages: Sequence[tuple[str, str]], aws: Aws | None = None) -> BatchResult:
    """(message id, body) pairs → what became of each record and of each resource refreshed."""
    return Refresher(aws or get_aws()).process(messages)


class Refresher:
    """One batch's refresh; reads each account and the launched policies once per batch."""

    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.stores = Stores.of(aws)
        self._accounts: dict[str, Account | None] = {}
        self._launched: list[LaunchedPolicy] | None = None
        self._resource_types: set[str] = set()
        self.changed: list[tuple[str, str, str]] = []  # every evaluator's (kind, subject, policy_id)
        self.cause = ""  # "event:{id}": what the findings' history records for the target refreshing

    def process(self, messages: Sequence[tuple[str, str]]) -> BatchResult:
        records = [read(message_id, body) for message_id, body in messages]
        results: dict[Target, TargetResult] = {}
        for record in records:
            if record.status is Status.PROCESSED and (account := self.admit(record)):
                for target in record.targets:
                    result = results.setdefault(target, TargetResult(target, account))
                    result.event_ids.append(record.event_id)
        self._resource_types = {t.touch.resource_type for t in results}
        for result in results.values():
            self.refresh(result)
        for record in records:
            if error := next((e for t in record.targets if (e := results[t].error)), None):
                record.fail(error)
        return BatchResult(records, list(results.values()), self.changed)

    def admit(self, record: RecordOutcome) -> Account | None:
        """The record's account if onboarded, with the record's targets narrowed to the regions its
        inventory covers; None (and the record settled) otherwise."""
        try:
            account = self.account(record.targets[0].account_id)
        except Exception as exc:  # the accounts table failed us: retry the record, not the batch
            record.fail(exc)
            return None
        if account is None:
            record.settle(Status.NOT_ONBOARDED, "the account is not an onboarded ACTIVE account")
            return None
        regions = {GLOBAL, *(account.regions or self.aws.settings.regions)}
        record.targets = [t for t in record.targets if t.region in regions]
        if not record.targets:
            record.settle(Status.IGNORED, "the region is not inventoried for this account")
            return None
        return account

    def account(self, account_id: str) -> Account | None:
        if account_id not in self._accounts:
            account = self.stores.accounts.get(account_id)
            active = account is not None and account.status is AccountStatus.ACTIVE
            self._accounts[account_id] = account if active else None
        return self._accounts[account_id]

    def launched(self, account: Account) -> list[LaunchedPolicy]:
        """The ACTIVE launched policies in the account's scope that evaluate the batch's resource
        types or read them as account-level settings."""
        if self._launched is None:
            types = self._resource_types
            ids = [
                pid for pid, p in CATALOGUE.items() if p.resource_type in types or any(map(p.reads, types))
            ]
            self._launched = [
                p for p in self.stores.policies.get_many(ids) if p.status is PolicyStatus.ACTIVE
            ]
        return [p for p in self._launched if p.scope.covers_account(account)]

    # ---- phase two: one resource -------------------------------------------------------------

    def refresh(self, result: TargetResult) -> None:
        try:
            self._refresh(result)
        except Exception as exc:  # one resource's failure fails its records, never the batch
            result.error = exc

    def _refresh(self, result: TargetResult) -> None:
        target, account = result.target, result.account
        service = service_of_type(target.touch.resource_type)
        kind = service.kind(target.touch.resource_type)
        ctx = CollectContext(
            aws=self.aws,
            account_id=account.account_id,
            region=target.region,
            page_size=self.aws.settings.page_size,
            external_id=account.external_id,
            role_arn=account.role_arn,
        )
        touch, run_id = target.touch, f"event:{result.event_ids[-1]}"
        self.cause = run_id
        counts: Counter[tuple[str, str]] = Counter()
        if touch.by:  # the resources a Describe filter matches: each stored, none found gone
            result.arn = f"{touch.resource_type}?{touch.by}={touch.resource_id}"  # for the log
            for resource in self.found(result, service.name, kind, ctx):
                if current := self.store(resource, run_id):
                    counts += self.evaluate(account, current)
        else:
            result.arn = kind.arn(ctx, touch.resource_id)
            checked_at = now_iso()  # taken before the describe: a describe that starts later wins
            resource = self.call(result, service.name, lambda: kind.describe(ctx, touch.resource_id))
            if resource is None:
                result.gone = True
                result.resolved += self.forget(account.account_id, service.name, result.arn, checked_at)
            elif current := self.store(resource, run_id):
                counts += self.evaluate(account, current)
        counts += self.dependents(account, result)
        result.add(counts)

    def call(self, result: TargetResult, service: str, describe: Callable[[], Any]) -> Any:
        """A describe in the customer account, timed, its AWS errors named."""
        started = time.perf_counter()
        target = result.target
        with (
            named_aws_errors(WorkItem(account_id=target.account_id, service=service, region=target.region)),
            customer_io(),
        ):
            answer = describe()
        result.describe_ms = (result.describe_ms or 0.0) + (time.perf_counter() - started) * 1000
        return answer

    def found(
        self, result: TargetResult, service: str, kind: ResourceKind, ctx: CollectContext
    ) -> list[Resource]:
        """What a by-filter touch matches, up to FIND_PAGES pages."""
        touch = result.target.touch
        if kind.find is None:
            raise TypeError(f"{kind.resource_type} cannot be found by {touch.by!r}")
        find, resources, token = kind.find, [], None
        for _ in range(FIND_PAGES):
            page = self.call(result, service, lambda t=token: find(ctx, touch.by, touch.resource_id, t))
            resources += page.resources
            if (token := page.next_token) is None:
                return resources
        result.truncated = True
        return resources

    def store(self, resource: Resource, run_id: str) -> Resource | None:
        """The freshest description: this one if stored, else the fresher one already stored."""
        if self.stores.resources.upsert([resource], run_id)[0]:
            return resource
        return self.stores.resources.get(resource.account_id, resource.service, resource.arn)

    def forget(self, account_id: str, service: str, arn: str, gone_at: str) -> int:
        """Delete a resource found gone; resolve its ACTIVE findings (RESOURCE_DELETED)."""
        deleted = self.stores.resources.delete(account_id, service, arn, gone_at)
        if not deleted and self.stores.resources.get(account_id, service, arn) is not None:
            return 0  # described since it was found gone (re-created): that describe stands
        return resolve_deleted(self.stores.findings, account_id, [arn], cause=self.cause)

    def evaluate(self, account: Account, resource: Resource) -> Counter[tuple[str, str]]:
        return self.evaluator(self.launched(account)).evaluate([resource])

    def evaluator(self, policies: list[LaunchedPolicy]) -> Evaluator:
        known = known_accounts(self.stores.accounts, policies)
        findings, resources = self.stores.findings, self.stores.resources
        return Evaluator(findings, resources, policies, known, changed=self.changed, cause=self.cause)

    def dependents(self, account: Account, result: TargetResult) -> Counter[tuple[str, str]]:
        """Re-evaluate, from the inventory, the resources whose policies read the refreshed one as an
        account-level setting (every bucket, when the account's public access block changed); at
        most DEPENDENT_PAGES pages, the daily scan re-evaluates the rest."""
        target = result.target
        resource_type = target.touch.resource_type
        policies = [p for p in self.launched(account) if get_policy(p.policy_id).reads(resource_type)]
        if not policies:
            return Counter()
        evaluator = self.evaluator(policies)
        # A setting is read in its own region; a type read account-wide matters to every region.
        account_wide = any(resource_type in get_policy(p.policy_id).related_all for p in policies)
        region = target.region if target.region != GLOBAL and not account_wide else None
        pages = 0
        for service in sorted({get_policy(p.policy_id).service for p in policies}):
            token: str | None = None
            while True:
                if pages == DEPENDENT_PAGES:
                    result.truncated = True
                    return evaluator.counts
                pages += 1
                page = self.stores.resources.page(
                    account.account_id, service, token, self.aws.settings.scan_page_size, region
                )
                evaluator.evaluate(page.resources)
                token = page.next_token
                if token is None:
                    break
        return evaluator.counts
