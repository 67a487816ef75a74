"""Notifications of findings that opened (new or reopened) at or above ``notify_min_severity``, on
the operator stack's notifications topic: one digest per scan run (counts and the top findings),
one message per finding an event opened.

Each opening notifies once, whichever path sees it first: a finding records the opening it was
notified for (``NotifiedOpen`` = its ``ReopenCount`` then, with ``NotifiedAt``). The mark is set
with a condition *before* publishing (mark-then-publish): a retried event batch or a second scan
finds it set and stays silent. If the publish fails, the mark is taken back so the retry notifies;
only a crash between mark and publish loses a message (at most once). Publish-then-mark would
instead notify twice on a crash between them, which is what a replayed batch must never do.

Only ACTIVE findings notify (a suppressed or resolved one never does). A finding that existed
before notifications were enabled has no mark: the first digest reports it once."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from qrie_lib.aws import Aws
from qrie_lib.exports.walk import by_keys, by_policy, row_of
from qrie_lib.policies.base import band
from qrie_lib.policies.registry import get_policy
from qrie_lib.stores import Stores
from qrie_lib.stores.dynamo import Write, conditional_write, to_item, values
from qrie_lib.stores.findings import FindingState
from qrie_lib.timeutil import now_iso

TOPIC_NAME = "qrie-notifications"  # the stack's topic name too
TOP = 10  # findings listed in a digest
TIME_MARGIN_MS = 20_000


def topic_arn(aws: Aws) -> str:
    if aws.settings.notifications_topic_arn:
        return aws.settings.notifications_topic_arn
    account = aws.client("sts").get_caller_identity()["Account"]
    return f"arn:aws:sns:{aws.settings.region}:{account}:{TOPIC_NAME}"


def summary(row: dict[str, Any]) -> dict[str, Any]:
    """A finding as a notification lists it (no evidence: it may be large)."""
    return {
        "arn": row["arn"],
        "policy_id": row["policy_id"],
        "title": get_policy(row["policy_id"]).title,
        "severity": row["severity"],
        "band": band(row["severity"]),
        "account_id": row["account_id"],
        "region": row["region"],
        "reopened": row["reopen_count"] > 0,
        "first_seen": row["first_seen"],
    }


@dataclass
class Claimed:
    rows: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False


class Notifier:
    def __init__(self, aws: Aws, stores: Stores) -> None:
        self.aws, self.stores = aws, stores
        self.min_severity = aws.settings.notify_min_severity
        self.sns = aws.client("sns")
        self.topic = topic_arn(aws)

    # ---- the once-per-opening mark --------------------------------------------------------------

    def claim(self, item: dict[str, Any], at: str) -> bool:
        """Mark this opening notified, if it is ACTIVE, still this opening, and not marked yet."""
        return conditional_write(
            self.stores.findings.client,
            Write(
                "Update",
                {
                    "TableName": self.stores.findings.table,
                    "Key": to_item({"ARN": item["ARN"], "PolicyId": item["PolicyId"]}),
                    "UpdateExpression": "SET NotifiedOpen = :rc, NotifiedAt = :at",
                    "ConditionExpression": "#s = :active AND ReopenCount = :rc AND "
                    "(attribute_not_exists(NotifiedOpen) OR NotifiedOpen <> :rc)",
                    "ExpressionAttributeNames": {"#s": "State"},
                    "ExpressionAttributeValues": values(
                        {":rc": item["ReopenCount"], ":at": at, ":active": FindingState.ACTIVE.value}
                    ),
                },
            ),
        )

    def release(self, item: dict[str, Any], at: str) -> None:
        """Take a claim back (its publish failed): the next attempt notifies."""
        conditional_write(
            self.stores.findings.client,
            Write(
                "Update",
                {
                    "TableName": self.stores.findings.table,
                    "Key": to_item({"ARN": item["ARN"], "PolicyId": item["PolicyId"]}),
                    "UpdateExpression": "REMOVE NotifiedOpen, NotifiedAt",
                    "ConditionExpression": "NotifiedAt = :at",
                    "ExpressionAttributeValues": values({":at": at}),
                },
            ),
        )

    def publish(self, subject: str, message: dict[str, Any], claimed: list[dict[str, Any]], at: str) -> None:
        try:
            self.sns.publish(TopicArn=self.topic, Subject=subject[:100], Message=json.dumps(message))
        except Exception:
            for item in claimed:
                self.release(item, at)
            raise

    # ---- the two paths -----------------------------------------------------------------------------

    def eligible(self, item: dict[str, Any]) -> bool:
        return (
            item.get("State") == FindingState.ACTIVE.value
            and item["Severity"] >= self.min_severity
            and item.get("NotifiedOpen") != item.get("ReopenCount", 0)
        )

    def scan_digest(self, run_id: str, remaining_ms: Callable[[], int]) -> dict[str, Any]:
        """One message for a scan run: every pending opening, counted, and the top ``TOP``."""
        at = now_iso()
        claimed, items = Claimed(), []
        severe = by_policy(
            self.stores,
            FindingState.ACTIVE,
            "Severity >= :min AND (attribute_not_exists(NotifiedOpen) OR NotifiedOpen <> ReopenCount)",
            {":min": self.min_severity},
        )
        for item in severe:
            if remaining_ms() < TIME_MARGIN_MS:
                claimed.truncated = True  # the rest is still pending: the next digest reports it
                break
            if self.eligible(item) and self.claim(item, at):
                items.append(item)
                claimed.rows.append(row_of(item))
        if not items:
            return {"notified": 0}
        rows = sorted(claimed.rows, key=lambda r: (-r["severity"], r["policy_id"], r["arn"]))
        bands = Counter(band(r["severity"]) for r in rows)
        reopened = sum(r["reopen_count"] > 0 for r in rows)
        message = {
            "kind": "scan_digest",
            "run_id": run_id,
            "min_severity": self.min_severity,
            "opened": len(rows),
            "new": len(rows) - reopened,
            "reopened": reopened,
            "by_band": dict(bands),
            "top": [summary(r) for r in rows[:TOP]],
            "truncated": claimed.truncated,
        }
        counts = ", ".join(f"{n} {b}" for b, n in sorted(bands.items()))
        self.publish(f"Qrie: {len(rows)} findings opened ({counts})", message, items, at)
        return {"notified": len(rows), "truncated": claimed.truncated}

    def event_openings(self, keys: Iterable[tuple[str, str]]) -> int:
        """One message per finding an event opened (and not yet notified)."""
        notified = 0
        for item in by_keys(self.stores, list(keys)):
            at = now_iso()
            if not (self.eligible(item) and self.claim(item, at)):
                continue
            row = summary(row_of(item))
            verb = "reopened" if row["reopened"] else "opened"
            subject = f"Qrie: {row['band']} finding {verb}: {row['policy_id']}"
            self.publish(subject, {"kind": "finding_opened", "finding": row}, [item], at)
            notified += 1
        return notified
