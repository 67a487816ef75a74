"""Elastic Load Balancing v2 on moto: the collector (a page of load balancers with their
attributes, describe-one, a deleted one gone), the records that touch one, and FSBP's ELB.4, ELB.6
and ELB.12 on careless and tidy load balancers."""

from __future__ import annotations

import pytest

from qrie_lib.policies.registry import get_policy
from qrie_lib.services import elbv2
from tests.conftest import REGION, collect_all, make_ctx


def balancer(customer, name: str, kind: str = "application", **attributes: str) -> str:
    ec2 = customer.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/24", AvailabilityZone=f"{REGION}{zone}")[
            "Subnet"
        ]["SubnetId"]
        for n, zone in enumerate("ab")
    ]
    client = customer.client("elbv2")
    arn = client.create_load_balancer(Name=name, Subnets=subnets, Type=kind)["LoadBalancers"][0][
        "LoadBalancerArn"
    ]
    if attributes:
        client.modify_load_balancer_attributes(
            LoadBalancerArn=arn, Attributes=[{"Key": k, "Value": v} for k, v in attributes.items()]
        )
    return arn


TIDY = {
    "deletion_protection.enabled": "true",
    "routing.http.drop_invalid_header_fields.enabled": "true",
    "routing.http.desync_mitigation_mode": "strictest",
}
CARELESS = {"routing.http.desync_mitigation_mode": "monitor"}
POLICIES = (
    "ELBv2AlbInvalidHeadersNotDropped",
    "ELBv2DeletionProtectionDisabled",
    "ELBv2AlbDesyncMitigationWeak",
)


def test_load_balancers_page_with_their_attributes_and_describe_one(aws, customer):
    arns = [balancer(customer, f"lb-{n}", **TIDY) for n in range(3)]
    ctx = make_ctx(aws, page_size=2)
    kind = elbv2.SERVICE.kind(elbv2.LOAD_BALANCER)
    found, pages = collect_all(ctx, kind)
    assert pages == 2
    assert sorted(r.arn for r in found) == sorted(arns)
    one = kind.describe(ctx, arns[0])
    assert one.configuration["Type"] == "application"
    assert one.configuration["Attributes"]["deletion_protection.enabled"] == "true"
    assert len(one.configuration["AvailabilityZones"]) == 2
    customer.client("elbv2").modify_load_balancer_attributes(
        LoadBalancerArn=arns[1], Attributes=[{"Key": "deletion_protection.enabled", "Value": "false"}]
    )
    customer.client("elbv2").delete_load_balancer(LoadBalancerArn=arns[1])
    assert kind.describe(ctx, arns[1]) is None


@pytest.mark.parametrize(
    ("attributes", "kind", "failing"),
    [
        (CARELESS, "application", set(POLICIES)),
        (
            {},
            "application",
            {"ELBv2AlbInvalidHeadersNotDropped", "ELBv2DeletionProtectionDisabled"},
        ),  # defaults
        (TIDY, "application", set()),
        ({}, "network", {"ELBv2DeletionProtectionDisabled"}),  # ELB.4 and ELB.12 are about ALBs
        ({"deletion_protection.enabled": "true"}, "network", set()),
    ],
)
def test_fsbp_elb_controls_on_careless_and_tidy_load_balancers(aws, customer, attributes, kind, failing):
    arn = balancer(customer, "web", kind, **attributes)
    lb = elbv2.SERVICE.kind(elbv2.LOAD_BALANCER).describe(make_ctx(aws), arn)
    verdicts = {p: get_policy(p).evaluate(lb) for p in POLICIES}
    assert {p for p, v in verdicts.items() if v.compliant is False} == failing
    assert all(v.evaluated for v in verdicts.values())


def test_a_denied_attributes_call_leaves_the_policies_undecided(aws, customer):
    lb = elbv2.SERVICE.kind(elbv2.LOAD_BALANCER).describe(make_ctx(aws), balancer(customer, "web"))
    denied = lb.model_copy(
        update={
            "configuration": lb.configuration
            | {"CollectErrors": [{"call": elbv2.ATTRIBUTES, "code": "AccessDenied"}]}
        }
    )
    assert {get_policy(p).evaluate(denied).compliant for p in POLICIES} == {None}


ARN = f"arn:aws:elasticloadbalancing:{REGION}:123456789012:loadbalancer/app/web/50dc6c495c0c9188"


@pytest.mark.parametrize(
    ("detail", "touched"),
    [
        ({"responseElements": {"loadBalancers": [{"loadBalancerArn": ARN}]}}, [ARN]),
        ({"requestParameters": {"loadBalancerArn": ARN, "attributes": []}}, [ARN]),
        ({"requestParameters": {"loadBalancerName": "classic"}}, []),  # a Classic Load Balancer's
        ({"requestParameters": None, "responseElements": None}, []),
    ],
)
def test_records_touch_the_load_balancer_they_name(detail, touched):
    assert [t.resource_id for t in elbv2.load_balancer_touch(detail)] == touched
