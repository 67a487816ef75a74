"""CIS 5.1 (network ACLs and remote administration ports) and CIS 1.18 (instances' IAM roles)."""

from __future__ import annotations

from typing import Any

import pytest

from qrie_lib.models import Resource
from qrie_lib.policies.registry import get_policy
from qrie_lib.services.ec2 import INSTANCE, NETWORK_ACL
from qrie_lib.timeutil import now_iso


def resource(resource_type: str, **config: Any) -> Resource:
    return Resource(
        arn="arn:aws:ec2:us-east-1:111111111111:x/x",
        account_id="111111111111",
        service="ec2",
        region="us-east-1",
        resource_type=resource_type,
        configuration=config,
        describe_time=now_iso(),
    )


def entry(
    protocol: str, ports: tuple[int, int] | None, cidr: str, action: str = "allow", egress: bool = False
):
    span = {"PortRange": {"From": ports[0], "To": ports[1]}} if ports else {}
    return {
        "RuleNumber": 100,
        "Protocol": protocol,
        "RuleAction": action,
        "Egress": egress,
        "CidrBlock": cidr,
        **span,
    }


def acl(*entries: dict[str, Any]) -> Resource:
    return resource(NETWORK_ACL, NetworkAclId="acl-1", Entries=list(entries))


DENY_ALL = entry("-1", None, "0.0.0.0/0", action="deny")
CIS51 = "EC2NetworkAclAdminPortOpenToIpv4"

CASES = [
    (CIS51, acl(entry("-1", None, "0.0.0.0/0"), DENY_ALL), False),  # a default network ACL
    (CIS51, acl(entry("6", (22, 22), "0.0.0.0/0")), False),
    (CIS51, acl(entry("17", (3000, 3400), "0.0.0.0/0")), False),  # UDP counts: a port range with 3389
    (CIS51, acl(entry("6", (0, 1024), "0.0.0.0/1"), entry("6", (22, 22), "128.0.0.0/1")), False),
    # the rule order is not weighed: the audit asks for no such ALLOW entry
    (CIS51, acl(entry("6", (22, 22), "0.0.0.0/0", action="deny"), entry("6", (22, 22), "0.0.0.0/0")), False),
    (CIS51, acl(entry("6", (443, 443), "0.0.0.0/0"), DENY_ALL), True),
    (CIS51, acl(entry("6", (22, 22), "10.0.0.0/8"), DENY_ALL), True),
    (CIS51, acl(entry("6", (0, 1024), "0.0.0.0/1"), entry("6", (23, 1024), "128.0.0.0/1")), True),
    (CIS51, acl(entry("1", None, "0.0.0.0/0")), True),  # ICMP has no ports
    (CIS51, acl(entry("-1", None, "0.0.0.0/0", egress=True), DENY_ALL), True),  # outbound
    (CIS51, acl(entry("6", (22, 22), "0.0.0.0/0", action="deny")), True),
    ("EC2InstanceNoIamRole", resource(INSTANCE, State="running", IamInstanceProfileArn=None), False),
    ("EC2InstanceNoIamRole", resource(INSTANCE, State="stopped"), False),
    (
        "EC2InstanceNoIamRole",
        resource(
            INSTANCE, State="running", IamInstanceProfileArn="arn:aws:iam::111111111111:instance-profile/app"
        ),
        True,
    ),
    ("EC2InstanceNoIamRole", resource(INSTANCE, State="shutting-down"), True),
]


@pytest.mark.parametrize(("policy_id", "target", "compliant"), CASES)
def test_policy(policy_id: str, target: Resource, compliant: bool) -> None:
    assert get_policy(policy_id).evaluate(target, {}).compliant is compliant


def test_the_evidence_names_the_ports_and_entries() -> None:
    verdict = get_policy(CIS51).evaluate(acl(entry("6", (20, 25), "0.0.0.0/0"), DENY_ALL), {})
    assert verdict.evidence == {
        "ExposedPorts": [{"Port": 22, "Service": "SSH"}],
        "Entries": [entry("6", (20, 25), "0.0.0.0/0")],
    }
