"""RDS (regional): DB instances, DB clusters and manual DB snapshots.

A page is one Describe* call (RDS answers full descriptions, 20-100 per page). Instances add one
DescribeRouteTables for the page's publicly accessible ones (CIS 2.3.3 asks whether their subnets
route 0.0.0.0/0 to an internet gateway); snapshots one DescribeDBSnapshotAttributes each (RDS has no
bulk way to tell a public snapshot: automated snapshots cannot be shared, so only manual ones are
collected)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from qrie_lib.aws import error_code
from qrie_lib.models import Resource
from qrie_lib.services.base import (
    CollectContext,
    EventRule,
    Page,
    ResourceCalls,
    ResourceKind,
    Service,
    Touch,
    require,
    tags_dict,
)
from qrie_lib.timeutil import now_iso

DB_INSTANCE = "AWS::RDS::DBInstance"
DB_CLUSTER = "AWS::RDS::DBCluster"
DB_SNAPSHOT = "AWS::RDS::DBSnapshot"

MIN_RECORDS, MAX_RECORDS = 20, 100  # RDS's MaxRecords bounds
FILTER_VALUES = 200  # EC2's limit on the values of one filter
WORLD = "0.0.0.0/0"
SEGMENTS = {DB_INSTANCE: "db", DB_CLUSTER: "cluster", DB_SNAPSHOT: "snapshot"}
GONE = ("DBInstanceNotFound", "DBInstanceNotFoundFault", "DBClusterNotFoundFault", "DBSnapshotNotFound")
GONE += ("DBSnapshotNotFoundFault",)

Item = dict[str, Any]
Build = Callable[[CollectContext, list[Item], str], list[Resource]]


def arn_for(resource_type: str) -> Callable[[CollectContext, str], str]:
    segment = SEGMENTS[resource_type]
    return lambda ctx, rid: f"arn:aws:rds:{ctx.region}:{ctx.account_id}:{segment}:{rid}"


@dataclass(frozen=True)
class DescribeApi:
    """A Describe* call answering full descriptions, paged by MaxRecords/Marker."""

    method: str  # e.g. "describe_db_instances"
    key: str  # e.g. "DBInstances"
    id_param: str  # e.g. "DBInstanceIdentifier"
    params: tuple[tuple[str, Any], ...] = ()

    def call(self, ctx: CollectContext, **kwargs: Any) -> tuple[list[Item], str | None]:
        answer = getattr(ctx.client("rds"), self.method)(**dict(self.params), **kwargs)
        return require(answer, self.key, self.method), answer.get("Marker") or None


def paged_kind(resource_type: str, api: DescribeApi, build: Build) -> ResourceKind:
    def list_page(ctx: CollectContext, token: str | None) -> Page:
        describe_time = now_iso()
        size = min(max(ctx.page_size, MIN_RECORDS), MAX_RECORDS)
        items, marker = api.call(ctx, MaxRecords=size, **({"Marker": token} if token else {}))
        return Page(build(ctx, items, describe_time), marker)

    def describe(ctx: CollectContext, rid: str) -> Resource | None:
        describe_time = now_iso()
        try:
            items, _ = api.call(ctx, **{api.id_param: rid})
        except ClientError as exc:
            if error_code(exc) in GONE:
                return None
            raise
        found = build(ctx, items, describe_time)
        return found[0] if found else None

    return ResourceKind(resource_type, list_page, describe, arn_for(resource_type))


def rds_resource(
    ctx: CollectContext, resource_type: str, rid: str, item: Item, config: Item, t: str
) -> Resource:
    return ctx.resource(
        service="rds",
        resource_type=resource_type,
        arn=arn_for(resource_type)(ctx, rid),
        configuration=config,
        tags=tags_dict(item.get("TagList")),
        describe_time=t,
    )


# ---- DB instances ----------------------------------------------------------------------------


def subnets_of(db: Item) -> list[str]:
    group = db.get("DBSubnetGroup") or {}
    return [s["SubnetIdentifier"] for s in group.get("Subnets") or () if s.get("SubnetIdentifier")]


def internet_routed_subnets(ctx: CollectContext, by_vpc: dict[str, set[str]]) -> set[str]:
    """Which of the subnets (by VPC) route 0.0.0.0/0 to an internet gateway: through the route table
    associated with the subnet, else through their VPC's main route table (CIS 2.3.3's audit).
    One DescribeRouteTables per 200 VPCs."""
    explicit: dict[str, bool] = {}
    main: dict[str, bool] = {}
    vpc_ids = sorted(by_vpc)
    paginator = ctx.client("ec2").get_paginator("describe_route_tables")
    for start in range(0, len(vpc_ids), FILTER_VALUES):
        chunk = vpc_ids[start : start + FILTER_VALUES]
        for answer in paginator.paginate(Filters=[{"Name": "vpc-id", "Values": chunk}]):
            for table in require(answer, "RouteTables", "DescribeRouteTables"):
                to_igw = any(
                    r.get("DestinationCidrBlock") == WORLD and str(r.get("GatewayId", "")).startswith("igw-")
                    for r in table.get("Routes") or ()
                )
                for association in table.get("Associations") or ():
                    if association.get("Main"):
                        main[table.get("VpcId", "")] = to_igw
                    elif association.get("SubnetId"):
                        explicit[association["SubnetId"]] = to_igw
    return {s for vpc, subnets in by_vpc.items() for s in subnets if explicit.get(s, main.get(vpc, False))}


def db_instances(ctx: CollectContext, items: list[Item], t: str) -> list[Resource]:
    public = {
        db["DBInstanceIdentifier"]: db
        for db in items
        if db.get("PubliclyAccessible") and db.get("DBSubnetGroup") and "DBInstanceIdentifier" in db
    }
    calls = ResourceCalls()  # the page's one call: a denial is recorded on its public instances
    by_vpc: dict[str, set[str]] = {}
    for db in public.values():
        by_vpc.setdefault(db["DBSubnetGroup"].get("VpcId", ""), set()).update(subnets_of(db))
    routed = (
        calls.call("DescribeRouteTables", lambda: internet_routed_subnets(ctx, by_vpc)) if by_vpc else set()
    )

    def internet_routed(db: Item) -> list[str] | None:
        """Its subnets routing 0.0.0.0/0 to an internet gateway, asked only of publicly accessible
        instances (None: not known: no subnet group, or the route tables were denied)."""
        if not db.get("PubliclyAccessible"):
            return []
        if db["DBInstanceIdentifier"] not in public or routed is None:
            return None
        return sorted(set(subnets_of(db)) & routed)

    def config(db: Item) -> Item:
        configuration = {
            "DBInstanceIdentifier": db["DBInstanceIdentifier"],
            "DBClusterIdentifier": db.get("DBClusterIdentifier"),
            "Engine": db.get("Engine"),
            "EngineVersion": db.get("EngineVersion"),
            "DBInstanceStatus": db.get("DBInstanceStatus"),
            "StorageEncrypted": bool(db.get("StorageEncrypted")),
            "KmsKeyId": db.get("KmsKeyId"),
            "PubliclyAccessible": bool(db.get("PubliclyAccessible")),
            "AutoMinorVersionUpgrade": bool(db.get("AutoMinorVersionUpgrade")),
            "VpcId": (db.get("DBSubnetGroup") or {}).get("VpcId"),
            "SubnetIds": subnets_of(db),
            "InternetRoutedSubnets": internet_routed(db),
            "VpcSecurityGroupIds": [g.get("VpcSecurityGroupId") for g in db.get("VpcSecurityGroups") or ()],
            "DeletionProtection": bool(db.get("DeletionProtection")),
        }
        return calls.stamp(configuration) if db["DBInstanceIdentifier"] in public else configuration

    ids = [require(db, "DBInstanceIdentifier", "DescribeDBInstances") for db in items]
    return [
        rds_resource(ctx, DB_INSTANCE, rid, db, config(db), t) for rid, db in zip(ids, items, strict=True)
    ]


# ---- DB clusters and snapshots ---------------------------------------------------------------


def db_clusters(ctx: CollectContext, items: list[Item], t: str) -> list[Resource]:
    def config(c: Item) -> Item:
        return {
            "DBClusterIdentifier": c["DBClusterIdentifier"],
            "Engine": c.get("Engine"),
            "EngineVersion": c.get("EngineVersion"),
            "Status": c.get("Status"),
            "StorageEncrypted": bool(c.get("StorageEncrypted")),
            "KmsKeyId": c.get("KmsKeyId"),
            "PubliclyAccessible": c.get("PubliclyAccessible"),  # Multi-AZ DB clusters only
            "AutoMinorVersionUpgrade": c.get("AutoMinorVersionUpgrade"),  # Multi-AZ DB clusters only
            "DeletionProtection": bool(c.get("DeletionProtection")),
            "Members": [m.get("DBInstanceIdentifier") for m in c.get("DBClusterMembers") or ()],
        }

    return [
        rds_resource(
            ctx, DB_CLUSTER, require(c, "DBClusterIdentifier", "DescribeDBClusters"), c, config(c), t
        )
        for c in items
    ]


def db_snapshots(ctx: CollectContext, items: list[Item], t: str) -> list[Resource]:
    rds = ctx.client("rds")
    found = []
    for s in items:
        sid = require(s, "DBSnapshotIdentifier", "DescribeDBSnapshots")
        calls = ResourceCalls()
        answer = calls.call(
            "DescribeDBSnapshotAttributes",
            lambda sid=sid: rds.describe_db_snapshot_attributes(DBSnapshotIdentifier=sid),
        )
        attributes = (answer or {}).get("DBSnapshotAttributesResult", {}).get("DBSnapshotAttributes") or []
        restore = [
            v
            for a in attributes
            if a.get("AttributeName") == "restore"
            for v in a.get("AttributeValues") or ()
        ]
        config = {
            "DBSnapshotIdentifier": sid,
            "DBInstanceIdentifier": s.get("DBInstanceIdentifier"),
            "SnapshotType": s.get("SnapshotType"),
            "Engine": s.get("Engine"),
            "Encrypted": bool(s.get("Encrypted")),
            "KmsKeyId": s.get("KmsKeyId"),
            "Status": s.get("Status"),
            "Public": None if answer is None else "all" in restore,
            "RestorableBy": None if answer is None else sorted(restore),
        }
        found.append(rds_resource(ctx, DB_SNAPSHOT, sid, s, calls.stamp(config), t))
    return found


# ---- CloudTrail ------------------------------------------------------------------------------


def _strings(detail: Any, side: str, *keys: str) -> list[str]:
    values = detail.get(side) if isinstance(detail, dict) else None
    values = values if isinstance(values, dict) else {}
    return [v for k in keys if isinstance(v := values.get(k), str) and v]


def named(resource_type: str, *keys: str, side: str = "requestParameters") -> Callable[[Item], list[Touch]]:
    """The identifiers at ``keys`` of the record's ``side``; an ARN stands for its identifier."""
    return lambda detail: [
        Touch(resource_type, v.rsplit(":", 1)[-1]) for v in dict.fromkeys(_strings(detail, side, *keys))
    ]


def tagged(detail: Item) -> list[Touch]:
    """AddTagsToResource/RemoveTagsFromResource name the resource by ARN (resourceName)."""
    arns = _strings(detail, "requestParameters", "resourceName")
    kinds = {f":{segment}:": kind for kind, segment in SEGMENTS.items()}
    return [Touch(kind, arn.rsplit(":", 1)[-1]) for arn in arns for seg, kind in kinds.items() if seg in arn]


def rule(names: str, touches: Callable[[Item], list[Touch]]) -> EventRule:
    return EventRule(tuple(names.split()), touches)


INSTANCE_KEY, CLUSTER_KEY, SNAPSHOT_KEY = (
    "dBInstanceIdentifier",
    "dBClusterIdentifier",
    "dBSnapshotIdentifier",
)

SERVICE = Service(
    name="rds",
    regional=True,
    read_actions=(
        "rds:DescribeDBInstances",
        "rds:DescribeDBClusters",
        "rds:DescribeDBSnapshots",
        "rds:DescribeDBSnapshotAttributes",
        "ec2:DescribeRouteTables",
    ),
    clients=("rds", "ec2"),  # ec2: the route tables of publicly accessible instances
    kinds=(
        paged_kind(
            DB_INSTANCE,
            DescribeApi("describe_db_instances", "DBInstances", "DBInstanceIdentifier"),
            db_instances,
        ),
        paged_kind(
            DB_CLUSTER, DescribeApi("describe_db_clusters", "DBClusters", "DBClusterIdentifier"), db_clusters
        ),
        paged_kind(
            DB_SNAPSHOT,
            DescribeApi(
                "describe_db_snapshots", "DBSnapshots", "DBSnapshotIdentifier", (("SnapshotType", "manual"),)
            ),
            db_snapshots,
        ),
    ),
    event_source="rds.amazonaws.com",
    events=(
        rule(
            "CreateDBInstance DeleteDBInstance CreateDBInstanceReadReplica RestoreDBInstanceFromDBSnapshot",
            named(DB_INSTANCE, INSTANCE_KEY),
        ),
        rule("ModifyDBInstance", named(DB_INSTANCE, INSTANCE_KEY, "newDBInstanceIdentifier")),  # may rename
        # the restored instance is the target; the source is unchanged
        rule("RestoreDBInstanceToPointInTime", named(DB_INSTANCE, "targetDBInstanceIdentifier")),
        rule("CreateDBCluster DeleteDBCluster RestoreDBClusterFromSnapshot", named(DB_CLUSTER, CLUSTER_KEY)),
        rule("ModifyDBCluster", named(DB_CLUSTER, CLUSTER_KEY, "newDBClusterIdentifier")),
        rule("CreateDBSnapshot DeleteDBSnapshot ModifyDBSnapshotAttribute", named(DB_SNAPSHOT, SNAPSHOT_KEY)),
        rule("CopyDBSnapshot", named(DB_SNAPSHOT, "targetDBSnapshotIdentifier")),
        rule("AddTagsToResource RemoveTagsFromResource", tagged),
    ),
)
