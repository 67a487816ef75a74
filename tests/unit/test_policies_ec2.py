from decimal import Decimal
from typing import Any

import pytest

from qrie_lib.models import Resource
from qrie_lib.policies.base import Verdict
from qrie_lib.policies.registry import get_policy
from qrie_lib.services.ec2 import EBS_DEFAULT, INSTANCE, SECURITY_GROUP, SNAPSHOT, VOLUME, VPC
from qrie_lib.timeutil import now_iso

ACCOUNT = "111111111111"


def resource(resource_type: str, **config: Any) -> Resource:
    return Resource(
        arn=f"arn:aws:ec2:us-east-1:{ACCOUNT}:{resource_type.rsplit(':', 1)[-1].lower()}/x",
        account_id=ACCOUNT,
        service="ec2",
        region="us-east-1",
        resource_type=resource_type,
        configuration=config,
        describe_time=now_iso(),
    )


def rule(protocol: str, ports: tuple[int, int] | None, *cidrs: str) -> dict[str, Any]:
    v4 = [{"CidrIp": c} for c in cidrs if ":" not in c]
    v6 = [{"CidrIpv6": c} for c in cidrs if ":" in c]
    span = {"FromPort": ports[0], "ToPort": ports[1]} if ports else {}
    return {"IpProtocol": protocol, **span, "IpRanges": v4, "Ipv6Ranges": v6}


def group(*ingress: dict[str, Any], default: bool = False, egress: list | None = None) -> Resource:
    return resource(
        SECURITY_GROUP,
        GroupName="default" if default else "app",
        IsDefault=default,
        IpPermissions=list(ingress),
        IpPermissionsEgress=egress or [],
    )


def instance(state: str = "running", tokens: str = "required", endpoint: str = "enabled", **config: Any):
    options = {"HttpTokens": tokens, "HttpEndpoint": endpoint}
    return resource(INSTANCE, State=state, MetadataOptions=options, **config)


def evaluate(policy_id: str, target: Resource) -> Verdict:
    return get_policy(policy_id).evaluate(target, {})


WORLD, WORLD6, PRIVATE = "0.0.0.0/0", "::/0", "10.0.0.0/8"
LOW, HIGH = "0.0.0.0/1", "128.0.0.0/1"  # together, every IPv4 address
LOW6, HIGH6 = "::/1", "8000::/1"
CIS52, CIS53 = "EC2SecurityGroupAdminPortOpenToIpv4", "EC2SecurityGroupAdminPortOpenToIpv6"
ALL_OUT = [rule("-1", None, WORLD)]

CASES = [
    ("EC2SecurityGroupOpenToWorld", group(rule("-1", None, WORLD)), False),
    ("EC2SecurityGroupOpenToWorld", group(rule("-1", None, WORLD6)), False),
    ("EC2SecurityGroupOpenToWorld", group(rule("-1", None, PRIVATE), rule("tcp", (443, 443), WORLD)), True),
    ("EC2SecurityGroupSshOpenToWorld", group(rule("tcp", (22, 22), WORLD)), False),
    ("EC2SecurityGroupSshOpenToWorld", group(rule("tcp", (0, 65535), WORLD6)), False),
    ("EC2SecurityGroupSshOpenToWorld", group(rule("-1", None, WORLD)), False),
    ("EC2SecurityGroupSshOpenToWorld", group(rule("tcp", (22, 22), PRIVATE)), True),
    ("EC2SecurityGroupSshOpenToWorld", group(rule("icmp", (-1, -1), WORLD)), True),
    ("EC2SecurityGroupSshOpenToWorld", group(rule("tcp", (23, 1000), WORLD)), True),
    # the world split across ranges, in one rule or several rules that reach the port
    ("EC2SecurityGroupSshOpenToWorld", group(rule("tcp", (22, 22), LOW, HIGH)), False),
    (
        "EC2SecurityGroupSshOpenToWorld",
        group(rule("tcp", (22, 22), LOW), rule("tcp", (0, 1024), HIGH)),
        False,
    ),
    (
        "EC2SecurityGroupSshOpenToWorld",
        group(rule("tcp", (22, 22), LOW), rule("tcp", (23, 1024), HIGH)),
        True,
    ),
    ("EC2SecurityGroupSshOpenToWorld", group(rule("tcp", (22, 22), LOW, "128.0.0.0/2")), True),
    ("EC2SecurityGroupSshOpenToWorld", group(rule("tcp", (22, 22), LOW6, HIGH6)), False),
    # SSH is TCP: UDP 22 is not SSH
    ("EC2SecurityGroupSshOpenToWorld", group(rule("udp", (22, 22), WORLD)), True),
    ("EC2SecurityGroupSshOpenToWorld", group(rule("6", (22, 22), WORLD)), False),
    ("EC2SecurityGroupRdpOpenToWorld", group(rule("udp", (3389, 3389), WORLD)), True),
    ("EC2SecurityGroupOpenToWorld", group(rule("-1", None, LOW), rule("-1", None, HIGH)), False),
    ("EC2SecurityGroupOpenToWorld", group(rule("-1", None, LOW), rule("tcp", (0, 65535), HIGH)), True),
    # CIS 5.2 (0.0.0.0/0) and 5.3 (::/0): TCP, UDP or all, port 22 or 3389
    (CIS52, group(rule("tcp", (22, 22), WORLD)), False),
    (CIS52, group(rule("udp", (3389, 3389), WORLD)), False),
    (CIS52, group(rule("-1", None, LOW, HIGH)), False),
    (CIS52, group(rule("tcp", (22, 22), WORLD6)), True),
    (CIS52, group(rule("tcp", (22, 22), PRIVATE), rule("tcp", (443, 443), WORLD)), True),
    (CIS52, group(rule("icmp", (-1, -1), WORLD)), True),
    (CIS53, group(rule("tcp", (3000, 3400), WORLD6)), False),
    (CIS53, group(rule("udp", (22, 22), LOW6, HIGH6)), False),
    (CIS53, group(rule("tcp", (22, 22), WORLD)), True),
    ("EC2SecurityGroupRdpOpenToWorld", group(rule("tcp", (3389, 3389), WORLD6)), False),
    ("EC2SecurityGroupRdpOpenToWorld", group(rule("tcp", (3000, 3400), WORLD)), False),
    ("EC2SecurityGroupRdpOpenToWorld", group(rule("tcp", (3389, 3389), PRIVATE)), True),
    ("EC2SecurityGroupHighRiskPortOpen", group(rule("tcp", (3000, 3300), WORLD)), True),
    ("EC2SecurityGroupHighRiskPortOpen", group(rule("tcp", (3000, 3400), WORLD)), False),
    ("EC2SecurityGroupHighRiskPortOpen", group(rule("tcp", (22, 22), WORLD)), True),  # its own policy
    ("EC2SecurityGroupHighRiskPortOpen", group(rule("tcp", (6379, 6379), PRIVATE)), True),
    ("EC2DefaultSecurityGroupNotRestricted", group(default=True), True),
    ("EC2DefaultSecurityGroupNotRestricted", group(default=True, egress=ALL_OUT), False),
    ("EC2DefaultSecurityGroupNotRestricted", group(rule("tcp", (443, 443), PRIVATE), default=True), False),
    ("EC2DefaultSecurityGroupNotRestricted", group(rule("tcp", (443, 443), WORLD), egress=ALL_OUT), True),
    ("EC2InstanceImdsV1Enabled", instance(tokens="optional"), False),
    ("EC2InstanceImdsV1Enabled", instance(state="stopped", tokens="optional"), False),
    ("EC2InstanceImdsV1Enabled", instance(tokens="required"), True),
    ("EC2InstanceImdsV1Enabled", instance(tokens="optional", endpoint="disabled"), True),
    ("EC2InstanceImdsV1Enabled", instance(state="shutting-down", tokens="optional"), True),
    ("EC2InstancePublicIp", instance(PublicIpAddress="203.0.113.7"), False),
    ("EC2InstancePublicIp", instance(PublicIpAddress=None), True),
    ("EC2EbsVolumeUnencrypted", resource(VOLUME, Encrypted=False), False),
    ("EC2EbsVolumeUnencrypted", resource(VOLUME, Encrypted=True), True),
    ("EC2EbsEncryptionByDefaultDisabled", resource(EBS_DEFAULT, EbsEncryptionByDefault=False), False),
    ("EC2EbsEncryptionByDefaultDisabled", resource(EBS_DEFAULT, EbsEncryptionByDefault=True), True),
    ("EC2EbsSnapshotPublic", resource(SNAPSHOT, CreateVolumePermissions=[{"Group": "all"}]), False),
    ("EC2EbsSnapshotPublic", resource(SNAPSHOT, CreateVolumePermissions=[{"UserId": "222222222222"}]), True),
    ("VPCFlowLogsDisabled", resource(VPC, FlowLogs=[]), False),
    ("VPCFlowLogsDisabled", resource(VPC, FlowLogs=[{"FlowLogId": "fl-1", "FlowLogStatus": "ACTIVE"}]), True),
]


@pytest.mark.parametrize(("policy_id", "target", "compliant"), CASES)
def test_verdicts(policy_id: str, target: Resource, compliant: bool) -> None:
    assert evaluate(policy_id, target).compliant is compliant


def test_a_range_lists_each_exposed_port_and_its_rule() -> None:
    wide = rule("tcp", (3000, 3400), WORLD)
    verdict = evaluate("EC2SecurityGroupHighRiskPortOpen", group(wide, rule("tcp", (443, 443), WORLD)))
    assert verdict.evidence == {
        "ExposedPorts": [{"Port": 3306, "Service": "MySQL"}],
        "Rules": [{"IpProtocol": "tcp", "FromPort": 3000, "ToPort": 3400, "Sources": [WORLD]}],
    }


def test_all_traffic_exposes_every_high_risk_port_but_not_ssh_or_rdp_twice() -> None:
    verdict = evaluate("EC2SecurityGroupHighRiskPortOpen", group(rule("-1", None, WORLD6)))
    ports = [p["Port"] for p in verdict.evidence["ExposedPorts"]]
    assert {3306, 5432, 6379, 9200, 27017, 445} <= set(ports)
    assert not {22, 3389} & set(ports)


def test_evidence_names_the_rules_that_jointly_open_the_port() -> None:
    low, high = rule("tcp", (22, 22), LOW), rule("tcp", (0, 1024), HIGH)
    verdict = evaluate("EC2SecurityGroupSshOpenToWorld", group(low, high, rule("tcp", (22, 22), "::/64")))
    assert verdict.evidence == {
        "ExposedPorts": [{"Port": 22, "Service": "SSH"}],
        "Rules": [
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "Sources": [LOW]},
            {"IpProtocol": "tcp", "FromPort": 0, "ToPort": 1024, "Sources": [HIGH]},
        ],
    }


def test_ports_read_back_from_dynamodb_as_decimals() -> None:
    stored = rule("tcp", (Decimal(3300), Decimal(3310)), WORLD)  # type: ignore[arg-type]
    assert not evaluate("EC2SecurityGroupHighRiskPortOpen", group(stored)).compliant
