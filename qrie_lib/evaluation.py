"""Evaluating launched policies on resources and moving findings through their lifecycle.

Shared by the scan (a page of a partition at a time) and the event processor (one resource):
existing findings are read in bulk, verdicts computed purely, and only changes are written —
new, resolved, reopened, and severity/evidence (with ``LastEvaluated``) of findings that stay
active. A finding confirmed unchanged is not written: its partition's scan stamp says when it
was last confirmed (``views.finding_row``'s ``last_confirmed``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from qrie_lib.models import Resource
from qrie_lib.policies.base import Policy, Related, Verdict
from qrie_lib.policies.registry import get_policy
from qrie_lib.services.registry import service_of_type, singleton_arn
from qrie_lib.stores.accounts import AccountsStore
from qrie_lib.stores.counters import Tally
from qrie_lib.stores.dynamo import Write, to_item, values
from qrie_lib.stores.findings import (
    Finding,
    FindingsStore,
    FindingState,
    ResolvedReason,
    finding_item,
    tally,
)
from qrie_lib.stores.policies import LaunchedPolicy
from qrie_lib.stores.resources import ResourcesStore
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

COLLECTION_PAGE = 500  # rows per query when a policy reads every resource of a type


@dataclass
class Evaluator:
    """Evaluates a fixed set of launched policies for one account."""

    findings: FindingsStore
    resources: ResourcesStore
    launched: Sequence[LaunchedPolicy]
    known_accounts: frozenset[str] = frozenset()  # accounts Qrie knows: trusted, not foreign
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (policy_id, outcome kind)
    # (outcome kind, ARN, policy_id) of each finding opened, reopened or resolved: what notifications
    # and exports follow up on (qrie_lib.exports.report); a caller may pass a list to share.
    changed: list[tuple[str, str, str]] = field(default_factory=list)
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
        existing = self.findings.get_many([(r.arn, lp.policy_id) for r, lp, _ in pairs])
        now = now_iso()
        for resource, launched, policy in pairs:
            previous = existing.get((resource.arn, launched.policy_id))
            if not launched.scope.covers_region(resource.region):
                if previous and previous.state is FindingState.ACTIVE:
                    self.findings.resolve(previous, ResolvedReason.OUT_OF_SCOPE, now)
                    self.counts[launched.policy_id, OUT_OF_SCOPE] += 1
                    self.changed.append((OUT_OF_SCOPE, resource.arn, launched.policy_id))
                continue
            verdict = policy.evaluate(resource, self.related(policy, resource))
            if not verdict.evaluated:  # missing data neither opens nor resolves a finding
                self.counts[launched.policy_id, NOT_EVALUATED] += 1
                continue
            self.counts[launched.policy_id, EVALUATED] += 1
            kind, write = transition(self.findings.table, resource, launched, verdict, previous, now)
            if kind:
                applied = write is None or self.findings.write(
                    write, *moves(kind, resource, launched.policy_id, launched.severity, previous)
                )
                # A write refused by its condition lost to a fresher evaluation: not this change.
                if applied:
                    self.counts[launched.policy_id, kind] += 1
                    if kind != STILL_ACTIVE:
                        self.changed.append((kind, resource.arn, launched.policy_id))
        return self.counts

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


def transition(
    table: str,
    resource: Resource,
    launched: LaunchedPolicy,
    verdict: Verdict,
    previous: Finding | None,
    now: str,
) -> tuple[str | None, Write | None]:
    """The lifecycle step for one verdict: (outcome kind or None, the write it needs or None)."""
    key = to_item({"ARN": resource.arn, "PolicyId": launched.policy_id})
    fresher = "DescribeTime <= :dt"
    if verdict.compliant:
        if previous is None or previous.state is FindingState.RESOLVED:
            return None, None
        return RESOLVED, _update(
            table,
            key,
            fresher,
            resource,
            {
                "#s": FindingState.RESOLVED.value,
                "ResolvedAt": now,
                "ResolvedReason": ResolvedReason.COMPLIANT.value,
                "LastEvaluated": now,
            },
        )
    severity = launched.severity
    if previous is None:
        finding = Finding(
            arn=resource.arn,
            policy_id=launched.policy_id,
            account_service=resource.account_service,
            account_id=resource.account_id,
            service=resource.service,
            region=resource.region,
            resource_type=resource.resource_type,
            state=FindingState.ACTIVE,
            severity=severity,
            evidence=verdict.evidence,
            first_seen=now,
            last_evaluated=now,
            describe_time=resource.describe_time,
        )
        return NEW, Write(
            "Put",
            {
                "TableName": table,
                "Item": to_item(finding_item(finding)),
                "ConditionExpression": f"attribute_not_exists(ARN) OR {fresher}",
                "ExpressionAttributeValues": values({":dt": resource.describe_time}),
            },
        )
    changes: dict[str, Any] = {"LastEvaluated": now}
    if previous.severity != severity:
        changes["Severity"] = severity
    if previous.evidence != verdict.evidence:
        changes["Evidence"] = verdict.evidence
    if previous.state is FindingState.RESOLVED:
        changes |= {"#s": FindingState.ACTIVE.value, "ReopenCount": previous.reopen_count + 1}
        return REOPENED, _update(
            table, key, fresher, resource, changes, remove=("ResolvedAt", "ResolvedReason")
        )
    if changes.keys() == {"LastEvaluated"}:  # confirmed: the partition's scan stamp says when
        return STILL_ACTIVE, None
    return STILL_ACTIVE, _update(table, key, fresher, resource, changes)


def moves(
    kind: str, resource: Resource, policy_id: str, severity: int, previous: Finding | None
) -> tuple[Tally | None, Tally | None]:
    """What a lifecycle step moves in the counters: (counted as before, counted as after)."""
    state = FindingState.RESOLVED if kind == RESOLVED else FindingState.ACTIVE
    if previous is None:
        return None, Tally(resource.arn, policy_id, resource.account_id, state.value, severity)
    return tally(previous), tally(previous, state, previous.severity if kind == RESOLVED else severity)


def _update(
    table: str,
    key: dict[str, Any],
    condition: str,
    resource: Resource,
    changes: dict[str, Any],
    remove: tuple[str, ...] = (),
) -> Write:
    changes = {**changes, "DescribeTime": resource.describe_time}
    names = {"#s": "State"} if "#s" in changes else {}
    assignments = [f"{name} = :v{n}" for n, name in enumerate(changes)]
    expression = "SET " + ", ".join(assignments) + (" REMOVE " + ", ".join(remove) if remove else "")
    request: dict[str, Any] = {
        "TableName": table,
        "Key": key,
        "UpdateExpression": expression,
        "ConditionExpression": condition,
        "ExpressionAttributeValues": values(
            {**{f":v{n}": value for n, value in enumerate(changes.values())}, ":dt": resource.describe_time}
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
) -> int:
    """Resolve the ACTIVE findings of one account's resources that it no longer has (deleted, or
    in a region no longer inventoried); another account's findings on the same ARN stand."""
    now, resolved = now_iso(), 0
    for arn in arns:
        for finding in findings.for_resource(arn, FindingState.ACTIVE, account_id=account_id):
            resolved += findings.resolve(finding, reason, now)
    return resolved
