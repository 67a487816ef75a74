"""The findings table: PK ``ARN`` (the finding's subject, ``qrie_lib.subjects``), SK ``PolicyId``;
GSIs by ``AccountService``+``State`` and by ``PolicyShard``+``State`` (a policy's findings over
``POLICY_SHARDS`` keys), each projecting only what their readers need (``FindingRef``). Writes are
conditional: a finding moves only on an evaluation of a describe at least as fresh as the one it
was last evaluated on. Every write that moves a finding between states or severity bands moves its
counters (``stores.counters``); every state change (and severity change) bumps its ``Version`` and
is recorded in its history in the same transaction (``stores.history``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from qrie_lib.schema import (
    FINDINGS_BY_PARTITION,
    FINDINGS_BY_POLICY,
    FINDINGS_BY_SEVERITY,
    policy_shard,
    policy_shards,
    rank_key,
    severity_rank,
    severity_shard,
)
from qrie_lib.stores.counters import CountersStore, Tally
from qrie_lib.stores.dynamo import (
    Write,
    batch_get,
    conditional_write,
    decode_token,
    encode_token,
    from_item,
    query_pages,
    to_item,
    values,
)
from qrie_lib.stores.history import RESOLVED, HistoryStore, Transition
from qrie_lib.stores.suppressions import SuppressionsStore
from qrie_lib.subjects import subject, subject_arn


class FindingState(StrEnum):
    ACTIVE = "ACTIVE"
    RESOLVED = "RESOLVED"
    SUPPRESSED = "SUPPRESSED"  # violating, but an accepted risk (qrie_lib.suppressions): not open


UNRESOLVED = (FindingState.ACTIVE, FindingState.SUPPRESSED)  # what a finding no longer covered leaves


class ResolvedReason(StrEnum):
    COMPLIANT = "COMPLIANT"
    RESOURCE_DELETED = "RESOURCE_DELETED"
    POLICY_SUSPENDED = "POLICY_SUSPENDED"
    OUT_OF_SCOPE = "OUT_OF_SCOPE"
    REGION_REMOVED = "REGION_REMOVED"  # the account's inventory no longer covers the region
    ACCOUNT_REMOVED = "ACCOUNT_REMOVED"  # the account was offboarded (qrie accounts remove)


class Finding(BaseModel):
    arn: str
    policy_id: str
    account_service: str
    account_id: str
    service: str
    region: str
    resource_type: str
    state: FindingState
    severity: int
    evidence: dict[str, Any] = Field(default_factory=dict)
    first_seen: str
    last_evaluated: str
    describe_time: str
    resolved_at: str | None = None
    resolved_reason: ResolvedReason | None = None
    reopen_count: int = 0
    suppression_id: str | None = None  # the rule that suppresses it (SUPPRESSED only)
    version: int = 0  # transitions so far (its history's last entry)
    opened_at: str | None = None  # when it last opened (new or reopened)

    @property
    def subject(self) -> str:
        return subject(self.arn, self.account_id)


FIELDS = {
    "arn": "ARN",
    "policy_id": "PolicyId",
    "account_service": "AccountService",
    "account_id": "AccountId",
    "service": "Service",
    "region": "Region",
    "resource_type": "ResourceType",
    "state": "State",
    "severity": "Severity",
    "evidence": "Evidence",
    "first_seen": "FirstSeen",
    "last_evaluated": "LastEvaluated",
    "describe_time": "DescribeTime",
    "resolved_at": "ResolvedAt",
    "resolved_reason": "ResolvedReason",
    "reopen_count": "ReopenCount",
    "suppression_id": "SuppressionId",
    "version": "Version",
    "opened_at": "OpenedAt",
}


def finding_from_item(item: dict[str, Any]) -> Finding:
    fields = {k: item[v] for k, v in FIELDS.items() if v in item}
    return Finding(**fields | {"arn": subject_arn(item["ARN"])})


def finding_item(finding: Finding) -> dict[str, Any]:
    # The evidence as the policy gave it: a JSON dump would make AWS's numbers (Decimal) strings.
    fields = finding.model_dump(mode="json", exclude={"evidence"}) | {"evidence": finding.evidence}
    item = {FIELDS[k]: v for k, v in fields.items()}
    return (
        item
        | {"ARN": finding.subject, "PolicyShard": policy_shard(finding.policy_id, finding.subject)}
        | severity_order(
            finding.subject, finding.policy_id, finding.state.value, finding.severity, finding.first_seen
        )
    )


def severity_order(key: str, policy_id: str, state: str, severity: int, first_seen: str) -> dict[str, str]:
    """The attributes that place a finding in the severity-order index (``schema.FINDINGS_BY_SEVERITY``)."""
    return {
        "SeverityShard": severity_shard(state, key, policy_id),
        "SeverityRank": severity_rank(severity, first_seen, key, policy_id),
    }


@dataclass(frozen=True)
class FindingRef:
    """A finding as its indexes project it: enough to filter, resolve it and move its counters."""

    arn: str
    policy_id: str
    account_service: str
    account_id: str
    region: str
    severity: int
    state: FindingState
    version: int = 0
    opened_at: str | None = None

    @property
    def subject(self) -> str:
        return subject(self.arn, self.account_id)

    @classmethod
    def of(cls, item: dict[str, Any]) -> FindingRef:
        return cls(
            subject_arn(item["ARN"]),
            item["PolicyId"],
            item["AccountService"],
            item["AccountId"],
            item["Region"],
            int(item["Severity"]),
            FindingState(item["State"]),
            int(item.get("Version", 0)),
            item.get("OpenedAt"),
        )


def tally(
    finding: Finding | FindingRef, state: FindingState | None = None, severity: int | None = None
) -> Tally:
    """What a finding counts toward, or would once moved to ``state`` / ``severity``."""
    return Tally(
        finding.subject,
        finding.policy_id,
        finding.account_id,
        (state or finding.state).value,
        finding.severity if severity is None else severity,
    )


class FindingsStore:
    def __init__(
        self,
        client: Any,
        table: str,
        counters: CountersStore | None = None,
        history: HistoryStore | None = None,
        rules: SuppressionsStore | None = None,
    ) -> None:
        self.client = client
        self.table = table
        self.counters = counters
        self.history = history
        # The suppression rules every evaluation through this store applies (qrie_lib.evaluation).
        self.rules = rules
        self.writes = 0  # items written through this store (benchmarks and tests count them)

    # ---- reads ----------------------------------------------------------------------------

    def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Finding]:
        """Existing findings for (subject, PolicyId) pairs, in bulk, by those pairs."""
        unique = list(dict.fromkeys(keys))
        items = batch_get(self.client, self.table, [{"ARN": a, "PolicyId": p} for a, p in unique])
        return {(i["ARN"], i["PolicyId"]): finding_from_item(i) for i in items}

    def get(self, key: str, policy_id: str) -> Finding | None:
        return self.get_many([(key, policy_id)]).get((key, policy_id))

    def for_resource(
        self, arn: str, state: FindingState | None = None, *, account_id: str | None = None
    ) -> list[Finding]:
        """The findings of a resource; with ``account_id``, only that account's (a bucket ARN names
        no account, and a bucket name can pass from one account to another; an AWS managed policy's
        findings are keyed by account, ``qrie_lib.subjects``)."""
        names, vals, conditions = {}, {":a": subject(arn, account_id) if account_id else arn}, []
        if state:
            names["#s"], vals[":s"] = "State", state.value
            conditions.append("#s = :s")
        if account_id:
            names["#acct"], vals[":acct"] = "AccountId", account_id
            conditions.append("#acct = :acct")
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "ARN = :a",
            "ExpressionAttributeValues": values(vals),
            "ConsistentRead": True,
        }
        if conditions:
            kwargs["FilterExpression"] = " AND ".join(conditions)
            kwargs["ExpressionAttributeNames"] = names
        return [finding_from_item(i) for i in query_pages(self.client, **kwargs)]

    def active_for_policy(self, policy_id: str) -> Iterator[FindingRef]:
        """Every ACTIVE finding of a policy, shard after shard of its index."""
        for shard in policy_shards(policy_id):
            yield from self.in_state(shard, FindingState.ACTIVE)

    def in_state(self, shard: str, state: FindingState, page_size: int = 500) -> Iterator[FindingRef]:
        """Every finding of a policy shard in one state, page after page of its index."""
        token: str | None = None
        while True:
            page, token = self.state_page(shard, state, token, page_size)
            yield from page
            if token is None:
                return

    def state_page(
        self, shard: str, state: FindingState, token: str | None, limit: int
    ) -> tuple[list[FindingRef], str | None]:
        """One page of a policy shard's findings in one state (``schema.policy_shards``)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": FINDINGS_BY_POLICY.name,
            "KeyConditionExpression": "PolicyShard = :p AND #s = :s",
            "ExpressionAttributeNames": {"#s": "State"},
            "ExpressionAttributeValues": values({":p": shard, ":s": state.value}),
            "Limit": limit,
        }
        if token:
            kwargs["ExclusiveStartKey"] = decode_token(token)
        answer = self.client.query(**kwargs)
        refs = [FindingRef.of(from_item(i)) for i in answer.get("Items", [])]
        return refs, encode_token(answer.get("LastEvaluatedKey"))

    def unresolved_in_partition(self, account_service: str, page_size: int = 100) -> Iterator[FindingRef]:
        """The unresolved (ACTIVE, then SUPPRESSED) findings of one ``{account}_{service}`` partition, read
        through its index in pages of ``page_size``: what offboarding or a scope change resolves
        (a suppressed finding of an account no longer covered is no longer a finding either)."""
        for state in UNRESOLVED:
            for item in query_pages(
                self.client,
                TableName=self.table,
                IndexName=FINDINGS_BY_PARTITION.name,
                KeyConditionExpression="AccountService = :p AND #s = :s",
                ExpressionAttributeNames={"#s": "State"},
                ExpressionAttributeValues=values({":p": account_service, ":s": state.value}),
                Limit=page_size,
            ):
                yield FindingRef.of(item)

    def query_page(
        self,
        *,
        state: FindingState | None,
        policy_shard: str | None = None,
        account_service: str | None = None,
        min_severity: int | None = None,
        max_severity: int | None = None,
        token: str | None = None,
        limit: int = 100,
    ) -> tuple[list[Finding], str | None]:
        """One page of findings through a GSI (never a table scan): by one shard of a policy's
        findings, or by partition; the index gives the keys, the rows are read from the table."""
        if not (policy_shard or account_service):
            raise ValueError("query by policy_shard or by account_service")
        index, key_name, key = (
            (FINDINGS_BY_POLICY, "PolicyShard", policy_shard)
            if policy_shard
            else (FINDINGS_BY_PARTITION, "AccountService", account_service)
        )
        names = {"#k": key_name}
        vals: dict[str, Any] = {":k": key}
        condition = "#k = :k"
        if state:
            names["#s"], vals[":s"] = "State", state.value
            condition += " AND #s = :s"
        filters = []
        if policy_shard and account_service:
            names["#p"], vals[":p"] = "AccountService", account_service
            filters.append("#p = :p")
        if min_severity is not None:
            vals[":min"] = min_severity
            filters.append("Severity >= :min")
        if max_severity is not None:
            vals[":max"] = max_severity
            filters.append("Severity <= :max")
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": index.name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values(vals),
            "Limit": limit,
        }
        if filters:
            kwargs["FilterExpression"] = " AND ".join(filters)
        if token:
            kwargs["ExclusiveStartKey"] = decode_token(token)
        answer = self.client.query(**kwargs)
        keys = [(i["ARN"]["S"], i["PolicyId"]["S"]) for i in answer.get("Items", [])]
        found = self.get_many(keys)
        return [found[k] for k in keys if k in found], encode_token(answer.get("LastEvaluatedKey"))

    def severity_page(
        self, shard: str, low: int | None, high: int | None, after: str | None, limit: int
    ) -> tuple[list[str], bool]:
        """Up to ``limit`` ranks of one severity-order shard, most severe first, after the rank
        ``after`` (None: from the top), within the band ``low``-``high``; and whether more follow."""
        vals: dict[str, Any] = {
            ":k": shard,
            ":lo": f"{low or 0:03d}#",
            ":hi": f"{100 if high is None else high:03d}#~",
        }
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": FINDINGS_BY_SEVERITY.name,
            "KeyConditionExpression": "SeverityShard = :k AND SeverityRank BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": values(vals),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if after is not None:
            start = rank_key(after) | {"SeverityShard": shard, "SeverityRank": after}
            kwargs["ExclusiveStartKey"] = to_item(start)
        answer = self.client.query(**kwargs)
        ranks = [i["SeverityRank"]["S"] for i in answer.get("Items", [])]
        return ranks, "LastEvaluatedKey" in answer

    # ---- writes ---------------------------------------------------------------------------

    def write(
        self,
        write: Write,
        was: Tally | None = None,
        now: Tally | None = None,
        transition: Transition | None = None,
    ) -> bool:
        """Apply a conditional write (with its history item, for a transition); when applied, move
        the finding's counters from ``was`` (None: it did not exist) to ``now``, and its rollups."""
        if transition is not None and self.history is not None:
            applied = self.history.transact(write, transition)
        else:
            applied = conditional_write(self.client, write)
        self.writes += applied
        if applied and self.counters is not None:
            self.counters.move(was, now)
        if applied and transition is not None and self.history is not None:
            self.history.roll(transition, was, now)
        return applied

    def resolve(
        self, finding: Finding | FindingRef, reason: ResolvedReason, at: str, cause: str = ""
    ) -> bool:
        """ACTIVE (or SUPPRESSED) → RESOLVED for a reason that needs no new evaluation (deleted,
        suspended, out of scope); conditional on the state and version it was read in."""
        if finding.state is FindingState.RESOLVED:
            return False
        version = finding.version + 1
        return self.write(
            Write(
                "Update",
                {
                    "TableName": self.table,
                    "Key": to_item({"ARN": finding.subject, "PolicyId": finding.policy_id}),
                    "UpdateExpression": "SET #s = :r, ResolvedAt = :at, ResolvedReason = :why, #v = :v, "
                    "SeverityShard = :shard REMOVE SuppressionId",
                    # Still the account's it was read as (a bucket ARN names no account).
                    "ConditionExpression": "#s = :a AND AccountId = :acct AND "
                    + version_condition(finding.version),
                    "ExpressionAttributeNames": {"#s": "State", "#v": "Version"},
                    "ExpressionAttributeValues": values(
                        {
                            ":r": FindingState.RESOLVED.value,
                            ":a": finding.state.value,
                            ":at": at,
                            ":why": reason.value,
                            ":acct": finding.account_id,
                            ":v": version,
                            ":was": finding.version,
                            ":shard": severity_shard(
                                FindingState.RESOLVED.value, finding.subject, finding.policy_id
                            ),
                        }
                    ),
                },
            ),
            tally(finding),
            tally(finding, FindingState.RESOLVED),
            Transition(
                subject=finding.subject,
                policy_id=finding.policy_id,
                account_id=finding.account_id,
                version=version,
                kind=RESOLVED,
                at=at,
                cause=cause,
                state=FindingState.RESOLVED.value,
                severity=finding.severity,
                previous_state=finding.state.value,
                previous_severity=finding.severity,
                reason=reason.value,
                opened_at=finding.opened_at,
            ),
        )


def version_condition(version: int) -> str:
    """The finding is still at ``:was`` = ``version`` (findings from before versions have none)."""
    return "(attribute_not_exists(#v) OR #v = :was)" if version == 0 else "#v = :was"
