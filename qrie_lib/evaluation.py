"""Evaluating launched policies on resources and moving findings through their lifecycle.

Shared by the scan (a page of a partition at a time) and the event processor (one resource):
existing findings are read in bulk, verdicts computed purely, and only changes are written —
new, resolved, reopened, and severity/evidence (with ``LastEvaluated``) of findings that stay
active. A finding confirmed unchanged is not written: its partition's scan stamp says when it
was last confirmed (``views.finding_row``'s ``last_confirmed``).

A violation that a live suppression rule matches (``stores.suppressions``) is SUPPRESSED rather than
ACTIVE, with the rule's id; it is still evaluated (compliant, it resolves) and becomes ACTIVE again
once no rule matches. Each state or severity change is one versioned transition recorded in the
finding's history with its cause (``stores.history``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from qrie_lib.models import Resource
from qrie_lib.policies.base import Policy, Related, Verdict
from qrie_lib.policies.registry import get_policy
from qrie_lib.services.registry import service_of_type, singleton_arn
from qrie_lib.stores import history
from qrie_lib.stores.accounts import AccountsStore
from qrie_lib.stores.counters import Tally
from qrie_lib.stores.dynamo import Write, to_item, values
from qrie_lib.stores.findings import (
    Finding,
    FindingsStore,
    FindingState,
    ResolvedReason,
    finding_item,
    severity_order,
    tally,
    version_condition,
)
from qrie_lib.stores.history import Transition
from qrie_lib.stores.policies import LaunchedPolicy
from qrie_lib.stores.resources import ResourcesStore
from qrie_lib.stores.suppressions import Matcher
from qrie_lib.timeutil import now_iso

# Outcome kinds counted per policy.
EVALUATED, NEW, STILL_ACTIVE, RESOLVED, REOPENED, OUT_OF_SCOPE, NOT_EVALUATED = (
    "evaluated",
    "new",
    "still_active",
    "resolved",
    "reopened",
    "out_of_scope",
    "not_evaluated",
)
# Suppression outcomes: moved to SUPPRESSED (new, reopened or active before), back to ACTIVE, and
# confirmed suppressed (counted apart from STILL_ACTIVE: a suppressed finding is not open).
SUPPRESSED, UNSUPPRESSED, STILL_SUPPRESSED = "suppressed", "unsuppressed", "still_suppressed"

COLLECTION_PAGE = 500  # rows per query when a policy reads every resource of a type


@dataclass
class Evaluator:
    """Evaluates a fixed set of launched policies for one account."""

    findings: FindingsStore
    resources: ResourcesStore
    launched: Sequence[LaunchedPolicy]
    known_accounts: frozenset[str] = frozenset()  # accounts Qrie knows: trusted, not foreign
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (policy_id, outcome kind)
    # (outcome kind, subject, policy_id) of each finding opened, reopened or resolved: what notifications
    # and exports follow up on (qrie_lib.exports.report); a caller may pass a list to share.
    changed: list[tuple[str, str, str]] = field(default_factory=list)
    cause: str = ""  # what the history records as the cause: "run:{id}", "event:{id}"
    _related: dict[tuple[str, str, str], Resource | None] = field(default_factory=dict)
    _collections: dict[tuple[str, str], tuple[Resource, ...]] = field(default_factory=dict)

    def evaluate(self, resources: Iterable[Resource]) -> Counter[tuple[str, str]]:
        """Evaluate every applicable policy on every resource; write what changed."""
        declared = [(launched, get_policy(launched.policy_id)) for launched in self.launched]
        pairs = [
            (resource, launched, policy)
            for resource in resources
            for launched, policy in declared
            if policy.resource_type == resource.resource_type
        ]
        existing = self.findings.get_many([(r.subject, lp.policy_id) for r, lp, _ in pairs])
        now = now_iso()
        for resource, launched, policy in pairs:
            previous = existing.get((resource.subject, launched.policy_id))
            if not launched.scope.covers_region(resource.region):
                # resolve() refuses a RESOLVED finding: only an open (or suppressed) one moves
                if previous and self.findings.resolve(previous, ResolvedReason.OUT_OF_SCOPE, now, self.cause):
                    self.counts[launched.policy_id, OUT_OF_SCOPE] += 1
                    self.changed.append((OUT_OF_SCOPE, resource.subject, launched.policy_id))
                continue
            verdict = policy.evaluate(resource, self.related(policy, resource))
            if not verdict.evaluated:  # missing data neither opens nor resolves a finding
                self.counts[launched.policy_id, NOT_EVALUATED] += 1
                continue
            self.counts[launched.policy_id, EVALUATED] += 1
            rule = None if verdict.compliant else self.matcher.match(launched.policy_id, resource)
            step = transition(
                self.findings.table, resource, launched, verdict, previous, now, rule, self.cause
            )
            if step is None:
                continue
            applied = step.write is None or self.findings.write(
                step.write, *moves(resource, launched.policy_id, previous, step), step.transition
            )
            # A write refused by its condition lost to a fresher evaluation: not this change.
            if applied:
                self.counts[launched.policy_id, step.kind] += 1
                if step.kind not in (STILL_ACTIVE, STILL_SUPPRESSED):
                    self.changed.append((step.kind, resource.subject, launched.policy_id))
        return self.counts

    @cached_property
    def matcher(self) -> Matcher:
        """The live suppression rules of this evaluator's policies, read once."""
        rules = self.findings.rules
        ids = [p.policy_id for p in self.launched]
        return rules.matcher(ids, now_iso()) if rules else Matcher({}, lambda _: None, now_iso())

    def related(self, policy: Policy, resource: Resource) -> Related:
        """The account-level settings a policy reads, each fetched once per evaluator."""
        found = {}
        for resource_type in policy.related:
            key = (resource_type, resource.account_id, resource.region)
            if key not in self._related:
                service, arn = singleton_arn(resource_type, resource.account_id, resource.region)
                self._related[key] = self.resources.get(resource.account_id, service, arn)
            found[resource_type] = self._related[key]
        collections = {t: self.every(t, resource.account_id) for t in policy.related_all}
        return Related(
            found, self.known_accounts if policy.reads_known_accounts else frozenset(), collections
        )

    def every(self, resource_type: str, account_id: str) -> tuple[Resource, ...]:
        """Every stored resource of a type in the account, all regions: its partition read once."""
        key = (resource_type, account_id)
        if key not in self._collections:
            service, found, token = service_of_type(resource_type).name, [], None
            while True:
                page = self.resources.page(account_id, service, token, COLLECTION_PAGE)
                found += [r for r in page.resources if r.resource_type == resource_type]
                if (token := page.next_token) is None:
                    break
            self._collections[key] = tuple(found)
        return self._collections[key]


def known_accounts(accounts: AccountsStore, launched: Sequence[LaunchedPolicy]) -> frozenset[str]:
    """The accounts Qrie knows: every account in the accounts table (onboarded, suspended, and the
    organisation's management account once registered), read only when a launched policy needs them."""
    if not any(get_policy(p.policy_id).reads_known_accounts for p in launched):
        return frozenset()
    return frozenset(a.account_id for a in accounts.list())


@dataclass(frozen=True)
class Step:
    """One verdict's lifecycle step: the outcome kind, the write it needs (None: none), the state
    and severity after it, and the transition its history records (None: not a state change)."""

    kind: str
    write: Write | None
    state: FindingState
    severity: int
    transition: Transition | None = None


def transition(
    table: str,
    resource: Resource,
    launched: LaunchedPolicy,
    verdict: Verdict,
    previous: Finding | None,
    now: str,
    rule: str | None = None,
    cause: str = "",
) -> Step | None:
    """The lifecycle step for one verdict (``rule``: the suppression matching a violation)."""
    key = to_item({"ARN": resource.subject, "PolicyId": launched.policy_id})
    severity = launched.severity
    open_state = FindingState.SUPPRESSED if rule else FindingState.ACTIVE

    def record(kind: str, state: FindingState, **extra: Any) -> Transition:
        return Transition(
            subject=resource.subject,
            policy_id=launched.policy_id,
            account_id=resource.account_id,
            version=(previous.version if previous else 0) + 1,
            kind=kind,
            at=now,
            cause=cause,
            state=state.value,
            severity=severity
            if state is not FindingState.RESOLVED or previous is None
            else previous.severity,
            previous_state=previous.state.value if previous else None,
            previous_severity=previous.severity if previous else None,
            suppression_id=rule if state is FindingState.SUPPRESSED else None,
            **extra,
        )

    if verdict.compliant:
        if previous is None or previous.state is FindingState.RESOLVED:
            return None
        moved = record(
            history.RESOLVED,
            FindingState.RESOLVED,
            reason=ResolvedReason.COMPLIANT.value,
            opened_at=previous.opened_at,
        )
        return Step(
            RESOLVED,
            _update(
                table,
                key,
                resource,
                previous,
                {
                    "#s": FindingState.RESOLVED.value,
                    "ResolvedAt": now,
                    "ResolvedReason": ResolvedReason.COMPLIANT.value,
                    "LastEvaluated": now,
                },
                remove=("SuppressionId",),
            ),
            FindingState.RESOLVED,
            previous.severity,
            moved,
        )
    if previous is None:
        finding = Finding(
            arn=resource.arn,
            policy_id=launched.policy_id,
            account_service=resource.account_service,
            account_id=resource.account_id,
            service=resource.service,
            region=resource.region,
            resource_type=resource.resource_type,
            state=open_state,
            severity=severity,
            evidence=verdict.evidence,
            first_seen=now,
            last_evaluated=now,
            describe_time=resource.describe_time,
            suppression_id=rule,
            version=1,
            opened_at=now,
        )
        return Step(
            SUPPRESSED if rule else NEW,
            Write(
                "Put",
                {
                    "TableName": table,
                    "Item": to_item(finding_item(finding)),
                    # Versioned: a finding written meanwhile wins, and the next evaluation moves it.
                    "ConditionExpression": "attribute_not_exists(ARN)",
                },
            ),
            open_state,
            severity,
            record(history.OPENED, open_state, opened_at=now),
        )
    changes: dict[str, Any] = {"LastEvaluated": now}
    if previous.severity != severity:
        changes["Severity"] = severity
    if previous.evidence != verdict.evidence:
        changes["Evidence"] = verdict.evidence
    was = previous.state
    if was is FindingState.RESOLVED:
        changes |= {"#s": open_state.value, "ReopenCount": previous.reopen_count + 1, "OpenedAt": now}
        changes |= {"SuppressionId": rule} if rule else {}
        return Step(
            SUPPRESSED if rule else REOPENED,
            _update(table, key, resource, previous, changes, remove=("ResolvedAt", "ResolvedReason")),
            open_state,
            severity,
            record(history.REOPENED, open_state, opened_at=now),
        )
    if was is not open_state or (rule and previous.suppression_id != rule):
        kind, moved = (
            (SUPPRESSED, record(history.SUPPRESSED, open_state))
            if rule
            else (UNSUPPRESSED, record(history.UNSUPPRESSED, open_state))
        )
        changes |= {"#s": open_state.value} | ({"SuppressionId": rule} if rule else {})
        remove = () if rule else ("SuppressionId",)
        return Step(
            kind, _update(table, key, resource, previous, changes, remove), open_state, severity, moved
        )
    kind = STILL_SUPPRESSED if rule else STILL_ACTIVE
    if changes.keys() == {"LastEvaluated"}:  # confirmed: the partition's scan stamp says when
        return Step(kind, None, open_state, severity)
    if "Severity" in changes:  # a severity change is a transition of its own
        moved = record(history.SEVERITY, open_state)
        return Step(kind, _update(table, key, resource, previous, changes), open_state, severity, moved)
    return Step(kind, _update(table, key, resource, previous, changes, versioned=False), open_state, severity)


def moves(
    resource: Resource, policy_id: str, previous: Finding | None, step: Step
) -> tuple[Tally | None, Tally | None]:
    """What a lifecycle step moves in the counters: (counted as before, counted as after)."""
    now = Tally(resource.subject, policy_id, resource.account_id, step.state.value, step.severity)
    return (tally(previous) if previous else None), now


def _update(
    table: str,
    key: dict[str, Any],
    resource: Resource,
    previous: Finding,
    changes: dict[str, Any],
    remove: tuple[str, ...] = (),
    versioned: bool = True,
) -> Write:
    """An update of a describe at least as fresh; ``versioned``: a transition, which bumps the
    finding's version and conditions on the one it read (its history item is keyed by it)."""
    changes = {**changes, "DescribeTime": resource.describe_time}
    if "#s" in changes or "Severity" in changes:  # its place in the severity order moves with it
        state = changes.get("#s", previous.state.value)
        severity = changes.get("Severity", previous.severity)
        changes |= severity_order(previous.subject, previous.policy_id, state, severity, previous.first_seen)
    condition = "DescribeTime <= :dt"
    extra: dict[str, Any] = {":dt": resource.describe_time}
    names = {"#s": "State"} if "#s" in changes else {}
    if versioned:
        changes["#v"] = previous.version + 1
        condition += f" AND {version_condition(previous.version)}"
        names["#v"], extra[":was"] = "Version", previous.version
    assignments = [f"{name} = :v{n}" for n, name in enumerate(changes)]
    expression = "SET " + ", ".join(assignments) + (" REMOVE " + ", ".join(remove) if remove else "")
    request: dict[str, Any] = {
        "TableName": table,
        "Key": key,
        "UpdateExpression": expression,
        "ConditionExpression": condition,
        "ExpressionAttributeValues": values(
            {**{f":v{n}": value for n, value in enumerate(changes.values())}, **extra}
        ),
    }
    if names:
        request["ExpressionAttributeNames"] = names
    return Write("Update", request)


def resolve_deleted(
    findings: FindingsStore,
    account_id: str,
    arns: Iterable[str],
    reason: ResolvedReason = ResolvedReason.RESOURCE_DELETED,
    cause: str = "",
) -> int:
    """Resolve the ACTIVE and SUPPRESSED findings of one account's resources that it no longer has
    (deleted, or in a region no longer inventoried); another account's findings on the same ARN stand."""
    now, resolved = now_iso(), 0
    for arn in arns:
        for finding in findings.for_resource(arn, account_id=account_id):
            resolved += findings.resolve(finding, reason, now, cause)
    return resolved
