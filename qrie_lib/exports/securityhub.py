"""Publishing findings to the operator account's Security Hub (``BatchImportFindings``).

Only what changed since the last export is sent: each exported finding records the digest of what
Security Hub was told (``ExportedDigest``, ``ExportedAt``); a finding whose digest is unchanged is
skipped, a RESOLVED one never exported is not sent at all. The digest is recorded only after
Security Hub accepted the finding, and records what was sent: if the finding changed meanwhile, the
digests differ and the next export sends it again, so the marks need no condition beyond the item
still existing. Ids come from (subject, PolicyId), so a re-export updates, never duplicates.

Batches of 100 findings (the API's maximum per request); a whole-call throttle is botocore's
adaptive retry (``Aws``); findings the answer lists as failed are sent again, at most
``RETRY_ROUNDS`` more times with backoff, and those still failing stay unmarked for the next
export. Work stops when ``remaining_ms`` runs low: unexported findings simply wait for the next run."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from qrie_lib.aws import Aws
from qrie_lib.exports.asff import asff_finding, content_digest, default_product
from qrie_lib.exports.walk import by_keys, by_policy, row_of
from qrie_lib.stores import Stores
from qrie_lib.stores.dynamo import Write, conditional_write, to_item, values
from qrie_lib.stores.findings import FindingState
from qrie_lib.subjects import subject
from qrie_lib.timeutil import now_iso

BATCH = 100  # BatchImportFindings accepts at most 100 findings per request
RETRY_ROUNDS = 3  # more sends of the findings a batch's answer listed as failed
RETRY_BASE_S = 1.0  # backoff before retry round n: RETRY_BASE_S * 2**(n-1)
TIME_MARGIN_MS = 20_000  # stop taking findings this close to the task's end


@dataclass
class ExportResult:
    sent: int = 0  # accepted by Security Hub (new, updated or archived)
    archived: int = 0  # of which resolved: RecordState ARCHIVED
    unchanged: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)  # {"Id", "ErrorCode", "ErrorMessage"}
    calls: int = 0
    truncated: bool = False  # the time budget ended the walk: the rest goes with the next export

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "archived": self.archived,
            "unchanged": self.unchanged,
            "failed": len(self.failed),
            "calls": self.calls,
            "truncated": self.truncated,
        }


class SecurityHubExport:
    def __init__(self, aws: Aws, stores: Stores, sleep: Callable[[float], None] = time.sleep) -> None:
        self.aws, self.stores, self.sleep = aws, stores, sleep
        self.client = aws.client("securityhub")
        self.product, self.account = default_product(aws)
        self.result = ExportResult()

    # ---- what to send -----------------------------------------------------------------------

    def changed(self) -> Iterable[dict[str, Any]]:
        """Every finding of the launched policies, in every state (``export`` skips those whose
        digest is unchanged, and those never exported that are no longer ACTIVE)."""
        for state in FindingState:
            yield from by_policy(self.stores, state)

    def export_all(self, remaining_ms: Callable[[], int]) -> ExportResult:
        """After a scan: everything that changed (whoever changed it: scan, event, sweep)."""
        return self.export(self.changed(), remaining_ms)

    def export_keys(self, keys: Iterable[tuple[str, str]], remaining_ms: Callable[[], int]) -> ExportResult:
        """After events: the findings they changed."""
        return self.export(by_keys(self.stores, list(keys)), remaining_ms)

    def export(self, items: Iterable[dict[str, Any]], remaining_ms: Callable[[], int]) -> ExportResult:
        batch: list[tuple[dict[str, Any], str]] = []  # (ASFF finding, digest)
        now = now_iso()
        for item in items:
            if remaining_ms() < TIME_MARGIN_MS:
                self.result.truncated = True
                break
            row = row_of(item)
            digest = content_digest(row)
            exported = item.get("ExportedDigest")
            if digest == exported or (row["state"] != FindingState.ACTIVE.value and exported is None):
                self.result.unchanged += 1
                continue
            batch.append(
                (asff_finding(row, product=self.product, operator_account=self.account, now=now), digest)
            )
            if len(batch) == BATCH:
                self.send(batch, now)
                batch = []
        if batch:
            self.send(batch, now)
        return self.result

    def archive_ids(self, records: Iterable[tuple[dict[str, Any], str]]) -> ExportResult:
        """Archive the records Security Hub holds under ids no finding has any more (a finding
        re-keyed by ``qrie migrate``): (its item, the id it was exported under)."""
        now, sent = now_iso(), []
        for item, old_id in records:
            finding = asff_finding(row_of(item), product=self.product, operator_account=self.account, now=now)
            sent.append(finding | {"Id": old_id, "RecordState": "ARCHIVED"})
        for start in range(0, len(sent), BATCH):
            answer = self.client.batch_import_findings(Findings=sent[start : start + BATCH])
            self.result.calls += 1
            self.result.failed += answer.get("FailedFindings", [])
            self.result.archived += answer.get("SuccessCount", 0)
        return self.result

    # ---- sending ----------------------------------------------------------------------------

    def send(self, batch: list[tuple[dict[str, Any], str]], now: str) -> None:
        pending = {finding["Id"]: (finding, digest) for finding, digest in batch}
        for round_ in range(RETRY_ROUNDS + 1):
            if round_:
                self.sleep(RETRY_BASE_S * 2 ** (round_ - 1))
            answer = self.client.batch_import_findings(Findings=[f for f, _ in pending.values()])
            self.result.calls += 1
            failed = {f["Id"]: f for f in answer.get("FailedFindings", [])}
            for finding_id in [i for i in pending if i not in failed]:
                finding, digest = pending.pop(finding_id)
                self.mark(finding, digest, now)
            if not pending:
                return
        self.result.failed += [failed[i] for i in pending]

    def mark(self, finding: dict[str, Any], digest: str, now: str) -> None:
        self.result.sent += 1
        self.result.archived += finding["RecordState"] == "ARCHIVED"
        fields = finding["ProductFields"]
        key = {
            "ARN": subject(finding["Resources"][0]["Id"], fields["qrie/AccountId"]),
            "PolicyId": fields["qrie/PolicyId"],
        }
        conditional_write(
            self.stores.findings.client,
            Write(
                "Update",
                {
                    "TableName": self.stores.findings.table,
                    "Key": to_item(key),
                    "UpdateExpression": "SET ExportedDigest = :d, ExportedAt = :at",
                    "ConditionExpression": "attribute_exists(ARN)",  # never resurrect a deleted finding
                    "ExpressionAttributeValues": values({":d": digest, ":at": now}),
                },
            ),
        )
