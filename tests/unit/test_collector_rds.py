"""The RDS collector on moto's RDS and EC2 emulation."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from qrie_lib.services import rds
from qrie_lib.services.base import Touch
from tests.conftest import CUSTOMER, REGION, collect_all, make_ctx


def network(customer, internet: bool) -> str:
    """A VPC with two subnets in a DB subnet group; with ``internet``, its main route table sends
    0.0.0.0/0 to an internet gateway."""
    ec2 = customer.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{n}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"][
            "SubnetId"
        ]
        for n, z in ((1, "a"), (2, "b"))
    ]
    if internet:
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        main = ec2.describe_route_tables(
            Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}]
        )["RouteTables"][0]["RouteTableId"]
        ec2.create_route(RouteTableId=main, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    name = f"group-{vpc}"
    customer.client("rds").create_db_subnet_group(
        DBSubnetGroupName=name, DBSubnetGroupDescription="db", SubnetIds=subnets
    )
    return name


def db(customer, name: str, **kwargs: Any) -> None:
    customer.client("rds").create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="admin_user",
        MasterUserPassword="not-a-secret-1",
        **kwargs,
    )


def test_instances_carry_encryption_upgrades_and_whether_public_subnets_expose_them(aws, customer):
    public_net, private_net = network(customer, True), network(customer, False)
    db(
        customer,
        "exposed",
        PubliclyAccessible=True,
        DBSubnetGroupName=public_net,
        AutoMinorVersionUpgrade=False,
    )
    db(customer, "flagged-private", PubliclyAccessible=True, DBSubnetGroupName=private_net)
    db(customer, "internal", PubliclyAccessible=False, DBSubnetGroupName=public_net, StorageEncrypted=True)

    ctx = make_ctx(aws)
    kind = rds.SERVICE.kind(rds.DB_INSTANCE)
    found, pages = collect_all(ctx, kind)
    by_name = {r.configuration["DBInstanceIdentifier"]: r for r in found}
    assert pages == 1
    exposed = by_name["exposed"]
    assert exposed.arn == f"arn:aws:rds:{REGION}:{CUSTOMER}:db:exposed"
    assert exposed.configuration["AutoMinorVersionUpgrade"] is False
    assert exposed.configuration["StorageEncrypted"] is False
    assert len(exposed.configuration["InternetRoutedSubnets"]) == 2
    assert by_name["flagged-private"].configuration["InternetRoutedSubnets"] == []
    assert by_name["internal"].configuration["InternetRoutedSubnets"] == []  # not asked: not public
    assert by_name["internal"].configuration["StorageEncrypted"] is True
    # one listing and one DescribeRouteTables for the page's publicly accessible instances
    assert (aws.calls["rds.DescribeDBInstances"], aws.calls["ec2.DescribeRouteTables"]) == (1, 1)

    assert kind.describe(ctx, "exposed").configuration == exposed.configuration
    assert kind.describe(ctx, "gone") is None


def test_an_instance_without_public_access_costs_no_route_table_call(aws, customer):
    db(customer, "plain")
    collect_all(make_ctx(aws), rds.SERVICE.kind(rds.DB_INSTANCE))
    assert aws.calls["ec2.DescribeRouteTables"] == 0


def test_clusters_and_manual_snapshots_public_or_not(aws, customer):
    client = customer.client("rds")
    client.create_db_cluster(
        DBClusterIdentifier="aurora",
        Engine="aurora-postgresql",
        MasterUsername="admin_user",
        MasterUserPassword="not-a-secret-1",
        StorageEncrypted=False,
    )
    db(customer, "source")
    for name in ("open", "closed"):
        client.create_db_snapshot(DBSnapshotIdentifier=name, DBInstanceIdentifier="source")
    client.modify_db_snapshot_attribute(
        DBSnapshotIdentifier="open", AttributeName="restore", ValuesToAdd=["all"]
    )

    ctx = make_ctx(aws)
    clusters, _ = collect_all(ctx, rds.SERVICE.kind(rds.DB_CLUSTER))
    assert [
        (c.configuration["DBClusterIdentifier"], c.configuration["StorageEncrypted"]) for c in clusters
    ] == [("aurora", False)]
    assert clusters[0].arn == f"arn:aws:rds:{REGION}:{CUSTOMER}:cluster:aurora"
    kind = rds.SERVICE.kind(rds.DB_SNAPSHOT)
    snapshots, _ = collect_all(ctx, kind)
    public = {s.configuration["DBSnapshotIdentifier"]: s.configuration["Public"] for s in snapshots}
    assert public == {"open": True, "closed": False}
    assert kind.describe(ctx, "open").configuration["RestorableBy"] == ["all"]
    assert kind.describe(ctx, "missing") is None
    assert rds.SERVICE.kind(rds.DB_CLUSTER).describe(ctx, "missing") is None


def test_denied_route_tables_are_recorded_on_the_public_instances(aws, customer, monkeypatch):
    db(customer, "exposed", PubliclyAccessible=True, DBSubnetGroupName=network(customer, True))

    def denied(*_: Any, **__: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "DescribeRouteTables"
        )

    monkeypatch.setattr(rds, "internet_routed_subnets", denied)
    found, _ = collect_all(make_ctx(aws), rds.SERVICE.kind(rds.DB_INSTANCE))
    config = found[0].configuration
    assert config["InternetRoutedSubnets"] is None
    assert config["CollectErrors"] == [{"call": "DescribeRouteTables", "code": "UnauthorizedOperation"}]


@pytest.mark.parametrize(
    ("name", "params", "touches"),
    [
        ("ModifyDBInstance", {"dBInstanceIdentifier": "a", "newDBInstanceIdentifier": "b"}, ["a", "b"]),
        ("CopyDBSnapshot", {"sourceDBSnapshotIdentifier": "s", "targetDBSnapshotIdentifier": "t"}, ["t"]),
        (
            "AddTagsToResource",
            {"resourceName": f"arn:aws:rds:{REGION}:{CUSTOMER}:cluster:aurora", "tags": []},
            ["aurora"],
        ),
    ],
)
def test_events_name_what_they_change(name, params, touches):
    rule = next(r for r in rds.SERVICE.events if name in r.event_names)
    found = rule.touches({"eventName": name, "requestParameters": params})
    assert [t.resource_id for t in found] == touches
    assert all(isinstance(t, Touch) for t in found)
