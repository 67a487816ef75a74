"""The resources table: PK ``AccountService`` = "{account}_{service}", SK ``ARN``.

Every write is conditional on ``DescribeTime``: an older describe (a slow inventory page, a late
event) never overwrites a newer one, and a sweep never deletes what was seen after the run began.

Change marking for incremental scans: a resource whose content (``ContentHash``) differs from the
stored one is written with ``DirtyPartition`` (the sparse index ``schema.RESOURCES_CHANGED``);
an unchanged one only gets its seen/describe stamps. The scan clears the mark once it evaluated
that very content. A change to, or the deletion of, a resource of a type that policies read beside
the one they evaluate is stamped on its partition row (``stores.partitions``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qrie_lib.models import Resource
from qrie_lib.schema import RESOURCES_CHANGED
from qrie_lib.stores.dynamo import (
    Write,
    conditional_write,
    conditional_writes,
    decode_token,
    encode_token,
    from_item,
    to_item,
    values,
)
from qrie_lib.stores.partitions import PartitionsStore
from qrie_lib.timeutil import now_iso


def account_service(account_id: str, service: str) -> str:
    return f"{account_id}_{service}"


def region_prefix(service: str, region: str) -> str:
    """What every ARN of a regional service's resources in ``region`` begins with (EC2's own and
    Qrie's pseudo-ARNs alike; a test checks every regional kind), so a region is a sort-key range."""
    from qrie_lib.services.registry import SERVICES  # the stores load before the collectors

    namespace = SERVICES[service].arn_namespace if service in SERVICES else service
    return f"arn:aws:{namespace}:{region}:"


def content_hash(resource: Resource) -> str:
    """What evaluation reads of a resource, hashed: equal hashes, equal verdicts."""
    content = [resource.resource_type, resource.region, resource.configuration, resource.tags]
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def resource_item(resource: Resource, run_id: str, seen_at: str) -> dict[str, Any]:
    return {
        "AccountService": resource.account_service,
        "ARN": resource.arn,
        "AccountId": resource.account_id,
        "Service": resource.service,
        "Region": resource.region,
        "ResourceType": resource.resource_type,
        "Configuration": resource.configuration,
        "Tags": resource.tags,
        "DescribeTime": resource.describe_time,
        "LastSeenAt": seen_at,
        "RunId": run_id,
    }


def resource_from_item(item: dict[str, Any]) -> Resource:
    return Resource(
        arn=item["ARN"],
        account_id=item["AccountId"],
        service=item["Service"],
        region=item["Region"],
        resource_type=item["ResourceType"],
        configuration=item.get("Configuration", {}),
        tags=item.get("Tags", {}),
        describe_time=item["DescribeTime"],
    )


@dataclass(frozen=True)
class PartitionPage:
    items: list[dict[str, Any]]  # as stored, with LastSeenAt, RunId, ContentHash, DirtyPartition
    next_token: str | None

    @property
    def resources(self) -> list[Resource]:
        return [resource_from_item(i) for i in self.items]


class ResourcesStore:
    def __init__(
        self,
        client: Any,
        table: str,
        partitions: PartitionsStore | None = None,
        watched_types: frozenset[str] = frozenset(),
    ) -> None:
        self.client = client
        self.table = table
        self.partitions = partitions  # where changes of ``watched_types`` are stamped
        self.watched_types = watched_types  # resource types policies read beside the evaluated one
        self.items_read = 0  # items partition reads went through (tests and benchmarks count them)
        self.changed_writes = 0  # resources written because their content changed (marked dirty)

    def upsert(self, resources: Sequence[Resource], run_id: str) -> list[bool]:
        """Write each resource unless the stored one was described later. Per resource: written?
        Same content: only its seen and describe stamps (one conditional update); new or changed
        content: the whole item, marked dirty."""
        seen_at = now_iso()
        written = []
        for r in resources:
            digest = content_hash(r)
            key = to_item({"AccountService": r.account_service, "ARN": r.arn})
            same = Write(
                "Update",
                {
                    "TableName": self.table,
                    "Key": key,
                    "UpdateExpression": "SET LastSeenAt = :seen, RunId = :run, DescribeTime = :t",
                    "ConditionExpression": "ContentHash = :h AND DescribeTime <= :t",
                    "ExpressionAttributeValues": values(
                        {":seen": seen_at, ":run": run_id, ":t": r.describe_time, ":h": digest}
                    ),
                },
            )
            if conditional_write(self.client, same):
                written.append(True)
                continue
            item = resource_item(r, run_id, seen_at) | {
                "ContentHash": digest,
                RESOURCES_CHANGED.partition_key: r.account_service,
            }
            changed = Write(
                "Put",
                {
                    "TableName": self.table,
                    "Item": to_item(item),
                    "ConditionExpression": "attribute_not_exists(ARN) OR DescribeTime <= :t",
                    "ExpressionAttributeValues": values({":t": r.describe_time}),
                },
            )
            applied = conditional_write(self.client, changed)
            written.append(applied)
            if applied:
                self.changed_writes += 1
                self.note_changes([r], seen_at)
        return written

    def note_changes(self, resources: Sequence[Resource], at: str) -> None:
        """Stamp, on their partitions' rows, changes to resource types policies read beside the
        evaluated one: those policies evaluate the whole partition at the next scan."""
        if self.partitions is None:
            return
        by_partition: dict[str, set[str]] = {}
        for r in resources:
            if r.resource_type in self.watched_types:
                by_partition.setdefault(r.account_service, set()).add(r.resource_type)
        for partition, types in by_partition.items():
            self.partitions.mark_changed(partition, types, at)

    def changed_page(self, account_id: str, service: str, token: str | None, limit: int) -> PartitionPage:
        """One page of the partition's dirty resources, read whole from the sparse index."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": RESOURCES_CHANGED.name,
            "KeyConditionExpression": "DirtyPartition = :p",
            "ExpressionAttributeValues": values({":p": account_service(account_id, service)}),
            "Limit": limit,
        }
        if token:
            kwargs["ExclusiveStartKey"] = decode_token(token)
        answer = self.client.query(**kwargs)
        self.items_read += answer.get("ScannedCount", 0)
        return PartitionPage(
            [from_item(i) for i in answer.get("Items", [])], encode_token(answer.get("LastEvaluatedKey"))
        )

    def clear_dirty(self, items: Sequence[dict[str, Any]]) -> int:
        """Unmark resources evaluated by every policy of their partition, each only if its content
        is still the one evaluated (a change since keeps its mark). Returns how many were cleared."""
        writes = [
            Write(
                "Update",
                {
                    "TableName": self.table,
                    "Key": to_item({"AccountService": i["AccountService"], "ARN": i["ARN"]}),
                    "UpdateExpression": "REMOVE DirtyPartition",
                    "ConditionExpression": "ContentHash = :h",
                    "ExpressionAttributeValues": values({":h": i.get("ContentHash", "")}),
                },
            )
            for i in items
            if RESOURCES_CHANGED.partition_key in i
        ]
        return sum(conditional_writes(self.client, writes))

    def mark_seen(self, resources: Sequence[Resource], run_id: str) -> None:
        """Resources this run listed but could not describe at all: seen (the sweep keeps them),
        their stored configuration untouched; one not stored yet is stored as given."""
        seen_at = now_iso()
        for resource in resources:
            item = resource_item(resource, run_id, seen_at)
            kept = [k for k in item if k not in ("AccountService", "ARN", "LastSeenAt", "RunId")]
            names = {f"#{n}": k for n, k in enumerate(kept)}
            assignments = [f"#{n} = if_not_exists(#{n}, :{n})" for n in range(len(kept))]
            self.client.update_item(
                TableName=self.table,
                Key=to_item({"AccountService": item["AccountService"], "ARN": item["ARN"]}),
                UpdateExpression="SET LastSeenAt = :seen, RunId = :run, " + ", ".join(assignments),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values(
                    {":seen": seen_at, ":run": run_id, **{f":{n}": item[k] for n, k in enumerate(kept)}}
                ),
            )

    def delete(self, account_id: str, service: str, arn: str, observed_gone_at: str) -> bool:
        """Delete a resource found gone at ``observed_gone_at``, unless described since then."""
        return conditional_write(
            self.client,
            Write(
                "Delete",
                {
                    "TableName": self.table,
                    "Key": to_item({"AccountService": account_service(account_id, service), "ARN": arn}),
                    "ConditionExpression": "attribute_exists(ARN) AND DescribeTime <= :t",
                    "ExpressionAttributeValues": values({":t": observed_gone_at}),
                },
            ),
        )

    def delete_first_page(self, account_id: str, service: str, limit: int) -> int:
        """Delete up to ``limit`` rows of a partition (offboarding: everything goes, so each call
        takes the first page again); returns how many it deleted, 0 once the partition is empty."""
        answer = self.client.query(
            TableName=self.table,
            KeyConditionExpression="AccountService = :p",
            ExpressionAttributeValues=values({":p": account_service(account_id, service)}),
            ProjectionExpression="AccountService, ARN",
            Limit=limit,
        )
        keys = answer.get("Items", [])
        for start in range(0, len(keys), 25):  # BatchWriteItem's maximum
            request = {self.table: [{"DeleteRequest": {"Key": k}} for k in keys[start : start + 25]]}
            while request:
                request = self.client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
        return len(keys)

    def get(self, account_id: str, service: str, arn: str) -> Resource | None:
        item = self.item(account_id, service, arn)
        return resource_from_item(item) if item else None

    def item(self, account_id: str, service: str, arn: str) -> dict[str, Any] | None:
        """The stored row, with ``RunId``: the run (or ``event:<id>``) that last described it."""
        item = self.client.get_item(
            TableName=self.table,
            Key=to_item({"AccountService": account_service(account_id, service), "ARN": arn}),
            ConsistentRead=True,
        ).get("Item")
        return from_item(item) if item else None

    def page(
        self, account_id: str, service: str, token: str | None, limit: int, region: str | None = None
    ) -> PartitionPage:
        """One page of a partition, in ARN order; with ``region`` (of a regional service), only that
        region's rows, read through the sort key: the other regions' rows are never read."""
        condition, keys = "AccountService = :p", {":p": account_service(account_id, service)}
        if region is not None:
            condition += " AND begins_with(ARN, :prefix)"
            keys[":prefix"] = region_prefix(service, region)
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values(keys),
            "Limit": limit,
        }
        if token:
            kwargs["ExclusiveStartKey"] = decode_token(token)
        answer = self.client.query(**kwargs)
        self.items_read += answer.get("ScannedCount", 0)
        return PartitionPage(
            [from_item(i) for i in answer.get("Items", [])], encode_token(answer.get("LastEvaluatedKey"))
        )

    def regions(self, account_id: str, service: str) -> list[str]:
        """The regions a regional service's partition holds rows in, in order: one single-item
        read per region found (each skips past its region's sort-key range), not a partition read."""
        found: list[str] = []
        # From just past "arn:aws:{service}::" (account-level rows, ResourceKind.account_level): a
        # region's name begins with a letter, which sorts after ";".
        start, end = f"arn:aws:{service}:;", f"arn:aws:{service};"
        while True:
            answer = self.client.query(
                TableName=self.table,
                KeyConditionExpression="AccountService = :p AND ARN BETWEEN :from AND :to",
                ExpressionAttributeValues=values(
                    {":p": account_service(account_id, service), ":from": start, ":to": end}
                ),
                ProjectionExpression="ARN",
                Limit=1,
            )
            self.items_read += answer.get("ScannedCount", 0)
            if not answer.get("Items"):
                return found
            region = from_item(answer["Items"][0])["ARN"].split(":")[3]
            found.append(region)
            start = region_prefix(service, region)[:-1] + ";"  # just past every "...:{region}:" ARN

    def sweep_page(
        self,
        account_id: str,
        service: str,
        region: str | None,
        run_id: str,
        started_at: str,
        token: str | None,
        limit: int,
    ) -> tuple[list[Resource], str | None]:
        """Delete, from one page of the partition, the resources this run did not see and nobody saw
        since it began (the condition re-checks at write time, against a racing event).
        Returns the deleted resources and the next page token."""
        page = self.page(account_id, service, token, limit, region)
        stale = [
            resource_from_item(i) for i in page.items if i["RunId"] != run_id and i["LastSeenAt"] < started_at
        ]
        writes = [
            Write(
                "Delete",
                {
                    "TableName": self.table,
                    "Key": to_item({"AccountService": r.account_service, "ARN": r.arn}),
                    "ConditionExpression": "RunId <> :run AND LastSeenAt < :start",
                    "ExpressionAttributeValues": values({":run": run_id, ":start": started_at}),
                },
            )
            for r in stale
        ]
        applied = conditional_writes(self.client, writes)
        deleted = [r for r, done in zip(stale, applied, strict=True) if done]
        self.note_changes(deleted, now_iso())
        return deleted, page.next_token
