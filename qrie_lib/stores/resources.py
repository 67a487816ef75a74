"""The resources table: PK ``AccountService`` = "{account}_{service}", SK ``ARN``.

Every write is conditional on ``DescribeTime``: an older describe (a slow inventory page, a late
event) never overwrites a newer one, and a sweep never deletes what was seen after the run began.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qrie_lib.models import Resource
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
from qrie_lib.timeutil import now_iso


def account_service(account_id: str, service: str) -> str:
    return f"{account_id}_{service}"


def region_prefix(service: str, region: str) -> str:
    """What every ARN of a regional service's resources in ``region`` begins with (EC2's own and
    Qrie's pseudo-ARNs alike; a test checks every regional kind), so a region is a sort-key range."""
    return f"arn:aws:{service}:{region}:"


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
    items: list[dict[str, Any]]  # as stored, with LastSeenAt and RunId
    next_token: str | None

    @property
    def resources(self) -> list[Resource]:
        return [resource_from_item(i) for i in self.items]


class ResourcesStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table
        self.items_read = 0  # items partition reads went through (tests and benchmarks count them)

    def upsert(self, resources: Sequence[Resource], run_id: str) -> list[bool]:
        """Write each resource unless the stored one was described later. Per resource: written?"""
        seen_at = now_iso()
        writes = [
            Write(
                "Put",
                {
                    "TableName": self.table,
                    "Item": to_item(resource_item(r, run_id, seen_at)),
                    "ConditionExpression": "attribute_not_exists(ARN) OR DescribeTime <= :t",
                    "ExpressionAttributeValues": values({":t": r.describe_time}),
                },
            )
            for r in resources
        ]
        return conditional_writes(self.client, writes)

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

    def get(self, account_id: str, service: str, arn: str) -> Resource | None:
        item = self.client.get_item(
            TableName=self.table,
            Key=to_item({"AccountService": account_service(account_id, service), "ARN": arn}),
            ConsistentRead=True,
        ).get("Item")
        return resource_from_item(from_item(item)) if item else None

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
        start, end = f"arn:aws:{service}:", f"arn:aws:{service};"
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
        return [r for r, done in zip(stale, applied, strict=True) if done], page.next_token
