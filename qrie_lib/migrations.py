"""``qrie migrate``: bring findings written by an earlier version to this version's keys.

Before subjects (``qrie_lib.subjects``) a finding of an AWS managed policy was keyed by its bare
ARN, one item that every account attaching the policy overwrote in turn. Each such item is moved
to the subject of the account it last held (with its history, whose versions it counts), unless
that account's finding already exists under its subject (a scan since the upgrade wrote it: the
newer one stands). The policies moved are marked changed, so that the next scan evaluates them in
every account (the verdicts the overwrites lost come back). The counters follow the shards the
moved findings now hash to: a recount ends the migration. A finding already exported to Security
Hub is exported again under its new id at the next export, and its record under the old id is
archived now (a refusal is reported; the moves stand). Run it while no scan runs (as the
recount); a migration cut short is finished by running it again (copies are conditional, the old
item goes last but for its history). Findings written before the severity-order index get its
keys (``order_by_severity``)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from qrie_lib.aws import Aws, error_code
from qrie_lib.exports.ids import uid_of_key
from qrie_lib.exports.securityhub import SecurityHubExport
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.recount import Recounted, recount
from qrie_lib.schema import FINDINGS_BY_POLICY, policy_shard, policy_shards
from qrie_lib.stores import Stores
from qrie_lib.stores.dynamo import (
    Write,
    batch_get,
    conditional_write,
    from_item,
    query_pages,
    to_item,
    values,
)
from qrie_lib.stores.findings import FindingState, severity_order
from qrie_lib.stores.history import finding_key
from qrie_lib.subjects import AWS_OWNED, shared, subject, subject_arn
from qrie_lib.timeutil import now_iso


@dataclass
class Migrated:
    moved: list[str] = field(default_factory=list)  # "{old key} -> {subject}" per finding moved
    superseded: list[str] = field(default_factory=list)  # old keys dropped for a newer finding
    history_items: int = 0
    exported: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (item, Security Hub id)
    rescan: list[str] = field(default_factory=list)  # launched policies the next scan re-evaluates
    counters: Recounted | None = None
    archived: int = 0  # Security Hub records archived under their old ids
    archive_errors: list[str] = field(default_factory=list)  # what Security Hub refused
    ordered: int = 0  # findings placed in the severity-order index (written before it existed)


def migrate(aws: Aws) -> Migrated:
    stores, report = Stores.of(aws), Migrated()
    legacy = legacy_keys(stores)
    for key, policy_id in legacy:
        rekey(stores, key, policy_id, report)
    for policy_id in sorted({p for _, p in legacy}):
        # The other accounts' verdicts were lost to the overwrites: the next scan evaluates the
        # policy everywhere again, as after a change of the policy (qrie_lib.scan).
        if (launched := stores.policies.get(policy_id)) is not None:
            stores.policies.put(launched.model_copy(update={"updated_at": now_iso()}))
            report.rescan.append(policy_id)
    report.ordered = order_by_severity(stores)
    report.counters = recount(stores)
    if report.exported:  # exported once, whatever this CLI's settings say now
        try:
            archived = SecurityHubExport(aws, stores).archive_ids(report.exported)
        except ClientError as exc:  # e.g. Security Hub since disabled: the moves stand, say so
            report.archive_errors.append(f"{error_code(exc)}: {exc}")
        else:
            report.archived = archived.archived
            report.archive_errors += [f"{f.get('Id')}: {f.get('ErrorCode')}" for f in archived.failed]
    return report


def legacy_keys(stores: Stores) -> list[tuple[str, str]]:
    """(bare shared ARN, policy) of every finding still keyed the old way, read from the by-policy
    index (keys only; the filter keeps the ARNs AWS owns)."""
    found = []
    for policy_id in sorted(CATALOGUE):
        for shard in policy_shards(policy_id):
            for state in FindingState:
                for item in query_pages(
                    stores.findings.client,
                    TableName=stores.findings.table,
                    IndexName=FINDINGS_BY_POLICY.name,
                    KeyConditionExpression="PolicyShard = :p AND #s = :s",
                    FilterExpression="contains(ARN, :owned)",
                    ExpressionAttributeNames={"#s": "State"},
                    ExpressionAttributeValues=values(
                        {":p": shard, ":s": state.value, ":owned": f"::{AWS_OWNED}:"}
                    ),
                ):
                    key = item["ARN"]
                    if shared(key) and subject_arn(key) == key:  # a bare ARN, not yet a subject
                        found.append((key, item["PolicyId"]))
    return found


def order_by_severity(stores: Stores, page: int = 100) -> int:
    """Give findings written before the severity-order index (``schema.FINDINGS_BY_SEVERITY``) its
    keys, page by page of the by-policy index; conditional on the state and severity read, so a
    finding that moved meanwhile keeps the keys its move wrote."""
    findings, placed = stores.findings, 0
    for policy_id in sorted(CATALOGUE):
        for shard in policy_shards(policy_id):
            for state in FindingState:
                refs = findings.in_state(shard, state, page)
                while chunk := list(itertools.islice(refs, page)):
                    keys = [{"ARN": r.subject, "PolicyId": r.policy_id} for r in chunk]
                    for item in batch_get(findings.client, findings.table, keys):
                        placed += place(findings.client, findings.table, item)
    return placed


def place(client: Any, table: str, item: dict[str, Any]) -> bool:
    wanted = severity_order(
        item["ARN"], item["PolicyId"], item["State"], int(item["Severity"]), item["FirstSeen"]
    )
    if all(item.get(k) == v for k, v in wanted.items()):
        return False
    update = {
        "TableName": table,
        "Key": to_item({"ARN": item["ARN"], "PolicyId": item["PolicyId"]}),
        "UpdateExpression": "SET SeverityShard = :shard, SeverityRank = :rank",
        "ConditionExpression": "#s = :state AND Severity = :sev",
        "ExpressionAttributeNames": {"#s": "State"},
        "ExpressionAttributeValues": values(
            {
                ":shard": wanted["SeverityShard"],
                ":rank": wanted["SeverityRank"],
                ":state": item["State"],
                ":sev": item["Severity"],
            }
        ),
    }
    return conditional_write(client, Write("Update", update))


def rekey(stores: Stores, key: str, policy_id: str, report: Migrated) -> None:
    findings, history = stores.findings, stores.history
    old = findings.client.get_item(
        TableName=findings.table, Key=to_item({"ARN": key, "PolicyId": policy_id}), ConsistentRead=True
    ).get("Item")
    if old is None:
        return
    item = from_item(old)
    if "ExportedDigest" in item:  # Security Hub holds it under the id of its old key
        report.exported.append((item, uid_of_key(key, policy_id)))
        item = {k: v for k, v in item.items() if k not in ("ExportedDigest", "ExportedAt")}
    new_key = subject(key, item["AccountId"])
    entries = history.of_finding(key, policy_id)
    if findings.get(new_key, policy_id) is not None:
        report.superseded.append(key)
    else:  # the history first, so that the moved finding never lacks its versions
        for entry in entries:
            report.history_items += put_new(
                history.client, history.table, entry | {"Key": finding_key(new_key, policy_id)}, "Key"
            )
        moved = item | {"ARN": new_key, "PolicyShard": policy_shard(policy_id, new_key)}
        put_new(findings.client, findings.table, moved, "ARN")
        report.moved.append(f"{key} -> {new_key}")
    findings.client.delete_item(TableName=findings.table, Key=to_item({"ARN": key, "PolicyId": policy_id}))
    for entry in entries:
        history.client.delete_item(
            TableName=history.table, Key=to_item({"Key": entry["Key"], "Sort": entry["Sort"]})
        )


def put_new(client: Any, table: str, item: dict[str, Any], key: str) -> bool:
    """Put ``item`` unless an item with its key exists; whether it was put."""
    condition = {"ConditionExpression": "attribute_not_exists(#k)", "ExpressionAttributeNames": {"#k": key}}
    return conditional_write(client, Write("Put", {"TableName": table, "Item": to_item(item), **condition}))
