"""EC2 network ACLs on moto."""

from __future__ import annotations

from qrie_lib.services import ec2
from tests.conftest import CUSTOMER, REGION, collect_all, make_ctx


def test_network_acls_carry_their_entries_and_describe_by_id(aws, customer):
    client = customer.client("ec2")
    vpc = client.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    acl = client.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    client.create_network_acl_entry(
        NetworkAclId=acl,
        RuleNumber=100,
        Protocol="6",
        RuleAction="allow",
        Egress=False,
        CidrBlock="0.0.0.0/0",
        PortRange={"From": 22, "To": 22},
    )
    ctx = make_ctx(aws, page_size=50)
    kind = ec2.SERVICE.kind(ec2.NETWORK_ACL)
    found, _ = collect_all(ctx, kind)
    by_id = {r.configuration["NetworkAclId"]: r for r in found}
    mine = by_id[acl]
    assert mine.arn == f"arn:aws:ec2:{REGION}:{CUSTOMER}:network-acl/{acl}"
    assert (mine.configuration["VpcId"], mine.configuration["IsDefault"]) == (vpc, False)
    assert [
        (e["RuleNumber"], e["Protocol"], e["RuleAction"], e["CidrBlock"], e["PortRange"])
        for e in mine.configuration["Entries"]
    ] == [(100, "6", "allow", "0.0.0.0/0", {"From": 22, "To": 22})]
    assert any(r.configuration["IsDefault"] for r in found)  # each VPC's default ACL
    assert kind.describe(ctx, acl).configuration == mine.configuration
    client.delete_network_acl(NetworkAclId=acl)
    assert kind.describe(ctx, acl) is None
