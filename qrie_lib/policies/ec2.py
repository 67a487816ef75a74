"""EC2 and VPC policies: security groups, instances, EBS volumes and snapshots, the region's EBS
encryption default, and VPC flow logs."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from qrie_lib.models import Resource
from qrie_lib.policies.base import COMPLIANT, Policy, Related, Verdict, violation
from qrie_lib.policies.networks import networks, world_families
from qrie_lib.services.ec2 import EBS_DEFAULT, INSTANCE, NETWORK_ACL, SECURITY_GROUP, SNAPSHOT, VOLUME, VPC

ALL_TRAFFIC = "-1"
TCP = frozenset({"tcp", "6", ALL_TRAFFIC})  # SSH and RDP are TCP services
TCP_UDP = frozenset({"tcp", "udp", "6", "17", ALL_TRAFFIC})  # protocols with ports
ALL_PORTS = (0, 65535)
SSH, RDP = 22, 3389
ADMIN_PORTS = {SSH: "SSH", RDP: "RDP"}
HIGH_RISK_PORTS = {  # 22 and 3389 have policies of their own
    20: "FTP data",
    21: "FTP",
    23: "Telnet",
    25: "SMTP",
    110: "POP3",
    135: "MS RPC",
    139: "NetBIOS",
    445: "SMB",
    1433: "SQL Server",
    1434: "SQL Server browser",
    2375: "Docker API",
    2376: "Docker API (TLS)",
    3306: "MySQL",
    5432: "PostgreSQL",
    5601: "Kibana",
    5984: "CouchDB",
    6379: "Redis",
    7001: "WebLogic",
    8020: "HDFS NameNode",
    8888: "Jupyter",
    9042: "Cassandra",
    9200: "Elasticsearch",
    9300: "Elasticsearch transport",
    11211: "Memcached",
    27017: "MongoDB",
    27018: "MongoDB shard",
}
FAMILIES = {4: "IPv4", 6: "IPv6"}
Rule = dict[str, Any]


def sources(permission: Rule) -> list[str]:
    """The CIDR sources of an ingress permission (group and prefix-list sources are not the world)."""
    found = [r.get("CidrIp") for r in permission.get("IpRanges") or ()]
    found += [r.get("CidrIpv6") for r in permission.get("Ipv6Ranges") or ()]
    return [s for s in found if isinstance(s, str)]


def port_range(rule: Rule) -> tuple[int, int] | None:
    """The ports a rule opens; None for protocols without ports (ICMP...)."""
    protocol = str(rule.get("IpProtocol", "")).lower()
    if protocol not in TCP_UDP:
        return None
    if protocol == ALL_TRAFFIC or rule.get("FromPort") in (None, -1):
        return ALL_PORTS
    return int(rule["FromPort"]), int(rule.get("ToPort", rule["FromPort"]))


def summary(permission: Rule) -> Rule:
    keys = ("IpProtocol", "FromPort", "ToPort")
    return {k: permission[k] for k in keys if k in permission} | {"Sources": sources(permission)}


def world_exposure(permissions: list[Rule]) -> tuple[set[int], list[Rule]]:
    """The address families whose whole space ``permissions`` jointly admit (0.0.0.0/1 in one rule
    and 128.0.0.0/1 in another are 0.0.0.0/0), and the permissions with sources that contribute."""
    families = world_families(s for p in permissions for s in sources(p))
    rules = [summary(p) for p in permissions if any(n.version in families for n in networks(sources(p)))]
    return families, rules


def ingress(group: Resource) -> list[Rule]:
    return list(group.configuration.get("IpPermissions") or ())


def open_to_world(group: Resource, _: Related) -> Verdict:
    everything = [p for p in ingress(group) if str(p.get("IpProtocol")) == ALL_TRAFFIC]
    families, rules = world_exposure(everything)
    if not families:
        return COMPLIANT
    return violation(Rules=rules, OpenTo=[FAMILIES[f] for f in sorted(families)])


def ports_open_to_world(
    ports: dict[int, str], protocols: frozenset[str], families: frozenset[int] = frozenset(FAMILIES)
) -> Callable[[Resource, Related], Verdict]:
    """An evaluate flagging groups whose ingress rules of ``protocols`` jointly admit every address
    of one of ``families`` to any of ``ports`` (by number → name)."""

    def evaluate(group: Resource, _: Related) -> Verdict:
        exposed, rules = [], []
        candidates = [p for p in ingress(group) if str(p.get("IpProtocol", "")).lower() in protocols]
        for port, name in sorted(ports.items()):
            reaching = [p for p in candidates if (span := port_range(p)) and span[0] <= port <= span[1]]
            open_families, contributing = world_exposure(reaching)
            if open_families & families:
                exposed.append({"Port": port, "Service": name})
                rules += [r for r in contributing if r not in rules]
        return violation(ExposedPorts=exposed, Rules=rules) if exposed else COMPLIANT

    return evaluate


def default_group_not_restricted(group: Resource, _: Related) -> Verdict:
    config = group.configuration
    ingress, egress = config.get("IpPermissions") or [], config.get("IpPermissionsEgress") or []
    if not config.get("IsDefault") or not (ingress or egress):
        return COMPLIANT
    return violation(IpPermissions=ingress, IpPermissionsEgress=egress)


def imds_v1_enabled(instance: Resource, _: Related) -> Verdict:
    config = instance.configuration
    options = config.get("MetadataOptions") or {}
    if config.get("State") not in ("running", "stopped") or options.get("HttpEndpoint") == "disabled":
        return COMPLIANT
    if options.get("HttpTokens") == "required":
        return COMPLIANT
    return violation(HttpTokens=options.get("HttpTokens"), HttpEndpoint=options.get("HttpEndpoint"))


def public_ip(instance: Resource, _: Related) -> Verdict:
    address = instance.configuration.get("PublicIpAddress")
    return violation(PublicIpAddress=address) if address else COMPLIANT


def volume_unencrypted(volume: Resource, _: Related) -> Verdict:
    config = volume.configuration
    if config.get("Encrypted"):
        return COMPLIANT
    return violation(Encrypted=False, AttachedInstanceIds=config.get("AttachedInstanceIds") or [])


def ebs_default_disabled(setting: Resource, _: Related) -> Verdict:
    enabled = setting.configuration.get("EbsEncryptionByDefault")
    return COMPLIANT if enabled else violation(EbsEncryptionByDefault=enabled)


def snapshot_public(snapshot: Resource, _: Related) -> Verdict:
    permissions = snapshot.configuration.get("CreateVolumePermissions") or []
    public = [p for p in permissions if p.get("Group") == "all"]
    return violation(CreateVolumePermissions=public) if public else COMPLIANT


def acl_port_range(entry: Rule) -> tuple[int, int] | None:
    """The ports a network ACL entry covers; None for protocols without ports (ICMP...)."""
    protocol = str(entry.get("Protocol", ""))
    if protocol not in TCP_UDP:
        return None
    span = entry.get("PortRange") or {}
    if protocol == ALL_TRAFFIC or span.get("From") is None:
        return ALL_PORTS
    return int(span["From"]), int(span.get("To", span["From"]))


def acl_admin_ports_open(acl: Resource, _: Related) -> Verdict:
    """CIS 5.1's audit: an inbound ALLOW entry whose port range includes 22 or 3389 (ALL included)
    with the source 0.0.0.0/0 (or entries that together cover it). Rule order is not weighed: the
    audit asks for no such entry, whatever a lower-numbered DENY does."""
    allowing = [
        e
        for e in acl.configuration.get("Entries") or ()
        if not e.get("Egress") and str(e.get("RuleAction", "")).lower() == "allow"
    ]
    exposed, entries = [], []
    for port, name in sorted(ADMIN_PORTS.items()):
        reaching = [e for e in allowing if (span := acl_port_range(e)) and span[0] <= port <= span[1]]
        if 4 in world_families(e.get("CidrBlock") for e in reaching):
            exposed.append({"Port": port, "Service": name})
            v4 = [e for e in reaching if any(n.version == 4 for n in networks([e.get("CidrBlock")]))]
            entries += [e for e in v4 if e not in entries]
    return violation(ExposedPorts=exposed, Entries=entries) if exposed else COMPLIANT


def instance_without_role(instance: Resource, _: Related) -> Verdict:
    config = instance.configuration
    if config.get("State") not in ("running", "stopped") or config.get("IamInstanceProfileArn"):
        return COMPLIANT
    return violation(IamInstanceProfileArn=None)


def flow_logs_disabled(vpc: Resource, _: Related) -> Verdict:
    logs = vpc.configuration.get("FlowLogs") or []
    active = [log for log in logs if log.get("FlowLogStatus") == "ACTIVE"]
    return COMPLIANT if active else violation(FlowLogs=logs)


declare = partial(Policy, service="ec2")
REVOKE = "aws ec2 revoke-security-group-ingress --group-id GROUP --ip-permissions ..."

POLICIES: tuple[Policy, ...] = (
    declare(
        policy_id="EC2SecurityGroupOpenToWorld",
        resource_type=SECURITY_GROUP,
        title="Security group allows all traffic from the internet",
        description=(
            "Ingress rules allowing all protocols and ports (IpProtocol -1) admit every IPv4 or every IPv6 "
            "address (0.0.0.0/0 or ::/0, or ranges that together cover it)."
        ),
        severity=85,
        remediation=(
            f"Remove the rule ({REVOKE}) and allow only the ports the workload serves, from the sources "
            "that need them."
        ),
        rule=open_to_world,
    ),
    declare(
        policy_id="EC2SecurityGroupSshOpenToWorld",
        resource_type=SECURITY_GROUP,
        title="Security group allows SSH from the internet",
        description=(
            "TCP (or all-traffic) ingress rules open TCP port 22 (SSH) to every IPv4 or IPv6 address, "
            "alone or together. UDP 22 is not SSH. CIS 5.2/5.3 (which also count UDP) are "
            "EC2SecurityGroupAdminPortOpenToIpv4/Ipv6."
        ),
        severity=80,
        remediation=(
            f"Remove the world-open rule ({REVOKE}); reach instances through SSM Session Manager, or allow "
            "22 only from a bastion or corporate CIDR."
        ),
        rule=ports_open_to_world({SSH: "SSH"}, TCP),
        compliance=("AWS FSBP v1.0.0 EC2.13",),
    ),
    declare(
        policy_id="EC2SecurityGroupRdpOpenToWorld",
        resource_type=SECURITY_GROUP,
        title="Security group allows RDP from the internet",
        description=(
            "TCP (or all-traffic) ingress rules open TCP port 3389 (RDP) to every IPv4 or IPv6 address, "
            "alone or together. CIS 5.2/5.3 (which also count UDP) are "
            "EC2SecurityGroupAdminPortOpenToIpv4/Ipv6."
        ),
        severity=80,
        remediation=(
            f"Remove the world-open rule ({REVOKE}); use SSM Session Manager / Fleet Manager, or allow 3389 "
            "only from a bastion or corporate CIDR."
        ),
        rule=ports_open_to_world({RDP: "RDP"}, TCP),
        compliance=("AWS FSBP v1.0.0 EC2.14",),
    ),
    *(
        declare(
            policy_id=f"EC2SecurityGroupAdminPortOpenToIpv{family}",
            resource_type=SECURITY_GROUP,
            title=f"Security group allows remote administration ports from {world}",
            description=(
                f"A rule with protocol TCP (6), UDP (17) or all (-1) whose port range includes 22 or 3389 "
                f"has the source {world} (or sources that together cover it): CIS {control}'s audit."
            ),
            severity=80,
            remediation=(
                f"Remove the rule ({REVOKE}); reach instances through SSM Session Manager, or allow 22/3389 "
                "only from a bastion or corporate CIDR."
            ),
            rule=ports_open_to_world(ADMIN_PORTS, TCP_UDP, frozenset({family})),
            compliance=(f"CIS AWS Foundations v3.0 {control}",),
        )
        for family, world, control in ((4, "0.0.0.0/0", "5.2"), (6, "::/0", "5.3"))
    ),
    declare(
        policy_id="EC2SecurityGroupHighRiskPortOpen",
        resource_type=SECURITY_GROUP,
        title="Security group exposes database, cache or legacy service ports to the internet",
        description=(
            "Ingress rules open to every IPv4 or IPv6 address, alone or together, cover a port of a "
            "database, cache, search, file-sharing, mail or remote-administration service "
            "(e.g. 3306, 5432, 6379, 9200, 27017, 445)."
        ),
        severity=70,
        remediation=(
            f"Remove the world-open rule ({REVOKE}); keep such services in private subnets and allow them "
            "only from the application's security group."
        ),
        rule=ports_open_to_world(HIGH_RISK_PORTS, TCP_UDP),
    ),
    declare(
        policy_id="EC2DefaultSecurityGroupNotRestricted",
        resource_type=SECURITY_GROUP,
        title="Default security group does not restrict all traffic",
        description=(
            "The VPC's default security group has ingress or egress rules; resources launched without a "
            "group get them."
        ),
        severity=55,
        remediation=(
            "Remove every inbound and outbound rule of the default group (VPC console → Security groups → "
            "default → Edit rules), and give resources purpose-made groups."
        ),
        rule=default_group_not_restricted,
        compliance=("CIS AWS Foundations v3.0 5.4", "AWS FSBP v1.0.0 EC2.2"),
    ),
    declare(
        policy_id="EC2InstanceImdsV1Enabled",
        resource_type=INSTANCE,
        title="EC2 instance allows IMDSv1",
        description=(
            "The instance metadata service is enabled without requiring session tokens (IMDSv2), which "
            "exposes instance credentials to SSRF."
        ),
        severity=60,
        remediation=(
            "aws ec2 modify-instance-metadata-options --instance-id ID --http-tokens required "
            "--http-endpoint enabled"
        ),
        rule=imds_v1_enabled,
        compliance=("CIS AWS Foundations v3.0 5.6",),
    ),
    declare(
        policy_id="EC2InstanceNoIamRole",
        resource_type=INSTANCE,
        title="EC2 instance has no IAM role",
        description=(
            "The running or stopped instance has no instance profile, so software on it that calls AWS "
            "needs stored access keys. CIS 1.18 is manual: the checkable part of its audit is whether "
            "the instance's IAM role is blank."
        ),
        severity=30,
        remediation=(
            "aws iam create-instance-profile and add-role-to-instance-profile, then aws ec2 "
            "associate-iam-instance-profile --instance-id ID --iam-instance-profile Name=PROFILE; remove "
            "access keys stored on the instance."
        ),
        rule=instance_without_role,
        compliance=("CIS AWS Foundations v3.0 1.18",),
    ),
    declare(
        policy_id="EC2NetworkAclAdminPortOpenToIpv4",
        resource_type=NETWORK_ACL,
        title="Network ACL allows remote administration ports from 0.0.0.0/0",
        description=(
            "An inbound ALLOW entry whose port range includes 22 or 3389 (protocol TCP, UDP or all) has "
            "the source 0.0.0.0/0 (or entries that together cover it), whatever the entries before it "
            "deny. VPCs' default network ACLs allow all inbound traffic and fail until restricted."
        ),
        severity=60,
        remediation=(
            "aws ec2 replace-network-acl-entry (a narrower --cidr-block) or aws ec2 "
            "delete-network-acl-entry --network-acl-id ACL --ingress --rule-number N."
        ),
        rule=acl_admin_ports_open,
        compliance=("CIS AWS Foundations v3.0 5.1",),
    ),
    declare(
        policy_id="EC2InstancePublicIp",
        resource_type=INSTANCE,
        title="EC2 instance has a public IP address",
        description="The instance is directly addressable from the internet.",
        severity=40,
        remediation=(
            "Launch into a private subnet behind a load balancer or NAT; disassociate Elastic IPs and turn "
            "off auto-assign public IPv4 on the subnet (aws ec2 modify-subnet-attribute --subnet-id SUBNET "
            "--no-map-public-ip-on-launch)."
        ),
        rule=public_ip,
        compliance=("AWS FSBP v1.0.0 EC2.9",),
    ),
    declare(
        policy_id="EC2EbsVolumeUnencrypted",
        resource_type=VOLUME,
        title="EBS volume is not encrypted",
        description="The volume's data at rest, its snapshots and volumes created from them are unencrypted.",
        severity=50,
        remediation=(
            "Snapshot the volume, copy the snapshot with --encrypted (aws ec2 copy-snapshot ... --encrypted "
            "--kms-key-id KEY), create a volume from it and swap it in; enable EBS encryption by default."
        ),
        rule=volume_unencrypted,
    ),
    declare(
        policy_id="EC2EbsEncryptionByDefaultDisabled",
        resource_type=EBS_DEFAULT,
        title="EBS encryption by default is disabled in the region",
        description="New EBS volumes and snapshot copies in this region are not encrypted unless asked.",
        severity=50,
        remediation=(
            "aws ec2 enable-ebs-encryption-by-default --region REGION "
            "(EC2 console → Settings → Data protection and security)."
        ),
        rule=ebs_default_disabled,
        compliance=("CIS AWS Foundations v3.0 2.2.1", "AWS FSBP v1.0.0 EC2.7"),
    ),
    declare(
        policy_id="EC2EbsSnapshotPublic",
        resource_type=SNAPSHOT,
        title="EBS snapshot is public",
        description="Any AWS account can create a volume from the snapshot and read its data.",
        severity=90,
        remediation=(
            "aws ec2 modify-snapshot-attribute --snapshot-id SNAP --attribute createVolumePermission "
            "--operation-type remove --group-names all; enable Block Public Access for snapshots."
        ),
        rule=snapshot_public,
        compliance=("AWS FSBP v1.0.0 EC2.1",),
    ),
    declare(
        policy_id="VPCFlowLogsDisabled",
        resource_type=VPC,
        title="VPC flow logs are not enabled",
        description="The VPC has no active flow log, so its network traffic cannot be investigated.",
        severity=40,
        remediation=(
            "aws ec2 create-flow-logs --resource-type VPC --resource-ids VPC --traffic-type REJECT "
            "(or ALL) --log-destination-type s3 --log-destination arn:aws:s3:::LOG-BUCKET"
        ),
        rule=flow_logs_disabled,
        compliance=("CIS AWS Foundations v3.0 3.7",),
    ),
)
