"""EC2 (regional): instances, security groups, volumes, snapshots and VPCs, plus the region's EBS
encryption-by-default setting as a resource of its own, with pseudo-ARN
``arn:aws:ec2:{region}:{account}:ebs-encryption-by-default``.

Listings already carry the full description, so a page is one Describe* call (VPCs add one
DescribeFlowLogs for the page, snapshots one DescribeSnapshots of the page's public ones)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError

from qrie_lib.aws import error_code
from qrie_lib.models import Resource
from qrie_lib.services.base import (
    ALL,
    CollectContext,
    EventRule,
    Page,
    ResourceCalls,
    ResourceKind,
    Service,
    Touch,
    one_per_context,
    require,
    tags_dict,
)
from qrie_lib.timeutil import now_iso

INSTANCE = "AWS::EC2::Instance"
SECURITY_GROUP = "AWS::EC2::SecurityGroup"
VOLUME = "AWS::EC2::Volume"
SNAPSHOT = "AWS::EC2::Snapshot"
VPC = "AWS::EC2::VPC"
NETWORK_ACL = "AWS::EC2::NetworkAcl"
EBS_DEFAULT = "AWS::EC2::EbsEncryptionByDefault"

MIN_PAGE = 5  # EC2's Describe* calls reject a MaxResults below 5
FILTER_VALUES = 200  # EC2's limit on the values of one filter
LIVE_FILTER = {
    "Name": "instance-state-name",
    "Values": ["pending", "running", "shutting-down", "stopping", "stopped"],
}
FLOW_LOG_KEYS = (
    "FlowLogId",
    "FlowLogStatus",
    "DeliverLogsStatus",
    "TrafficType",
    "LogDestinationType",
    "LogDestination",
)
SEGMENTS = {
    INSTANCE: "instance",
    SECURITY_GROUP: "security-group",
    VOLUME: "volume",
    SNAPSHOT: "snapshot",  # AWS's own snapshot ARNs carry no account; ours do, like the others
    VPC: "vpc",
    NETWORK_ACL: "network-acl",
}

Item = dict[str, Any]
Build = Callable[[CollectContext, list[Item], str], list[Resource]]


def arn_for(resource_type: str) -> Callable[[CollectContext, str], str]:
    segment = SEGMENTS[resource_type]
    return lambda ctx, rid: f"arn:aws:ec2:{ctx.region}:{ctx.account_id}:{segment}/{rid}"


def is_gone(exc: ClientError) -> bool:
    # e.g. InvalidInstanceID.NotFound, InvalidGroup.NotFound; an id that cannot exist is gone too.
    return error_code(exc).endswith((".NotFound", ".Malformed"))


@dataclass(frozen=True)
class DescribeApi:
    """A Describe* call answering full descriptions, paged by MaxResults/NextToken."""

    method: str  # client method, e.g. "describe_volumes"
    key: str  # the list in its answer, e.g. "Volumes"
    ids_param: str  # the parameter naming ids, e.g. "VolumeIds"
    params: dict[str, Any] = field(default_factory=dict)

    def call(self, ctx: CollectContext, **kwargs: Any) -> tuple[list[Item], str | None]:
        answer = getattr(ctx.client("ec2"), self.method)(**self.params, **kwargs)
        return require(answer, self.key, self.method), answer.get("NextToken") or None


def paged_kind(resource_type: str, api: DescribeApi, build: Build) -> ResourceKind:
    """A kind whose listing and describe-by-id are the same call, converted by the same ``build``."""

    def list_page(ctx: CollectContext, token: str | None) -> Page:
        describe_time = now_iso()
        paging = {"MaxResults": max(ctx.page_size, MIN_PAGE)} | ({"NextToken": token} if token else {})
        items, next_token = api.call(ctx, **paging)
        return Page(build(ctx, items, describe_time), next_token)

    def describe(ctx: CollectContext, rid: str) -> Resource | None:
        describe_time = now_iso()
        try:
            items, _ = api.call(ctx, **{api.ids_param: [rid]})  # ids exclude MaxResults
        except ClientError as exc:
            if is_gone(exc):
                return None
            raise
        found = build(ctx, items, describe_time)
        return found[0] if found else None

    def find(ctx: CollectContext, by: str, value: str, token: str | None) -> Page:
        narrowed = [] if by == ALL else [{"Name": by, "Values": [value]}]
        filtered = replace(api, params=api.params | {"Filters": [*api.params.get("Filters", []), *narrowed]})
        return paged_kind(resource_type, filtered, build).list_page(ctx, token)

    return ResourceKind(resource_type, list_page, describe, arn_for(resource_type), find)


def each(convert: Callable[[CollectContext, Item, str], Resource | None]) -> Build:
    return lambda ctx, items, t: [r for r in (convert(ctx, item, t) for item in items) if r is not None]


def ec2_resource(
    ctx: CollectContext, resource_type: str, rid: str, item: Item, configuration: dict[str, Any], t: str
) -> Resource:
    return ctx.resource(
        service="ec2",
        resource_type=resource_type,
        arn=arn_for(resource_type)(ctx, rid),
        configuration=configuration,
        tags=tags_dict(item.get("Tags")),
        describe_time=t,
    )


# ---- conversions, shared by listings and describes -----------------------------------------


def instance(ctx: CollectContext, i: Item, t: str) -> Resource:
    iid = require(i, "InstanceId", "DescribeInstances")
    config = {
        "InstanceId": iid,
        "InstanceType": i.get("InstanceType"),
        "ImageId": i.get("ImageId"),
        "State": (i.get("State") or {}).get("Name"),
        "PublicIpAddress": i.get("PublicIpAddress"),
        "PrivateIpAddress": i.get("PrivateIpAddress"),
        "MetadataOptions": i.get("MetadataOptions"),
        "SecurityGroupIds": [g["GroupId"] for g in i.get("SecurityGroups", []) if "GroupId" in g],
        "IamInstanceProfileArn": (i.get("IamInstanceProfile") or {}).get("Arn"),
        "SubnetId": i.get("SubnetId"),
        "VpcId": i.get("VpcId"),
        "LaunchTime": i.get("LaunchTime"),
    }
    return ec2_resource(ctx, INSTANCE, iid, i, config, t)


def instances(ctx: CollectContext, reservations: list[Item], t: str) -> list[Resource]:
    items = [i for r in reservations for i in require(r, "Instances", "DescribeInstances")]
    return each(instance)(ctx, items, t)


def security_group(ctx: CollectContext, g: Item, t: str) -> Resource:
    gid = require(g, "GroupId", "DescribeSecurityGroups")
    config = {
        "GroupId": gid,
        "GroupName": g.get("GroupName"),
        "VpcId": g.get("VpcId"),
        "Description": g.get("Description"),
        "IpPermissions": g.get("IpPermissions", []),
        "IpPermissionsEgress": g.get("IpPermissionsEgress", []),
        "IsDefault": g.get("GroupName") == "default",
    }
    return ec2_resource(ctx, SECURITY_GROUP, gid, g, config, t)


def volume(ctx: CollectContext, v: Item, t: str) -> Resource:
    vid = require(v, "VolumeId", "DescribeVolumes")
    config = {
        "VolumeId": vid,
        "Encrypted": bool(v.get("Encrypted")),
        "KmsKeyId": v.get("KmsKeyId"),
        "Size": v.get("Size"),
        "VolumeType": v.get("VolumeType"),
        "State": v.get("State"),
        "AvailabilityZone": v.get("AvailabilityZone"),
        "AttachedInstanceIds": [a["InstanceId"] for a in v.get("Attachments", []) if "InstanceId" in a],
    }
    return ec2_resource(ctx, VOLUME, vid, v, config, t)


def public_snapshots(ctx: CollectContext, snapshot_ids: list[str]) -> set[str]:
    """Which of a page of own snapshots are public: one DescribeSnapshots restricted to those
    restorable by everyone (per 200 snapshots), not one DescribeSnapshotAttribute per snapshot."""
    public: set[str] = set()
    paginator = ctx.client("ec2").get_paginator("describe_snapshots")
    for start in range(0, len(snapshot_ids), FILTER_VALUES):
        chunk = snapshot_ids[start : start + FILTER_VALUES]
        for answer in paginator.paginate(
            OwnerIds=["self"],
            RestorableByUserIds=["all"],
            Filters=[{"Name": "snapshot-id", "Values": chunk}],
        ):
            public |= {s.get("SnapshotId") for s in require(answer, "Snapshots", "DescribeSnapshots")}
    return public


def snapshots(ctx: CollectContext, items: list[Item], t: str) -> list[Resource]:
    own = [s for s in items if s.get("OwnerId") == ctx.account_id]  # moto ignores OwnerIds
    public = public_snapshots(ctx, [require(s, "SnapshotId", "DescribeSnapshots") for s in own])

    def config(s: Item) -> dict[str, Any]:
        shared = s["SnapshotId"] in public
        return {
            "SnapshotId": s["SnapshotId"],
            "VolumeId": s.get("VolumeId"),
            "Encrypted": bool(s.get("Encrypted")),
            "KmsKeyId": s.get("KmsKeyId"),
            "State": s.get("State"),
            "VolumeSize": s.get("VolumeSize"),
            # The public grant only: shares with named accounts are not collected.
            "CreateVolumePermissions": [{"Group": "all"}] if shared else [],
            "Public": shared,
        }

    return [ec2_resource(ctx, SNAPSHOT, s["SnapshotId"], s, config(s), t) for s in own]


def flow_logs_by_vpc(ctx: CollectContext, vpc_ids: list[str]) -> dict[str, list[Item]]:
    """The flow logs of a page of VPCs: one DescribeFlowLogs (per 200 VPCs), none for no VPCs."""
    found: dict[str, list[Item]] = {vid: [] for vid in vpc_ids}
    paginator = ctx.client("ec2").get_paginator("describe_flow_logs")
    for start in range(0, len(vpc_ids), FILTER_VALUES):
        chunk = vpc_ids[start : start + FILTER_VALUES]
        for answer in paginator.paginate(Filter=[{"Name": "resource-id", "Values": chunk}]):
            for log in require(answer, "FlowLogs", "DescribeFlowLogs"):
                found.setdefault(log.get("ResourceId", ""), []).append({k: log.get(k) for k in FLOW_LOG_KEYS})
    return found


def vpcs(ctx: CollectContext, items: list[Item], t: str) -> list[Resource]:
    ids = [require(v, "VpcId", "DescribeVpcs") for v in items]
    calls = ResourceCalls()  # the page's one call: a denial is recorded on each of its VPCs
    flow_logs = calls.call("DescribeFlowLogs", lambda: flow_logs_by_vpc(ctx, ids))

    def config(v: Item) -> dict[str, Any]:
        return calls.stamp(
            {
                "VpcId": v["VpcId"],
                "CidrBlock": v.get("CidrBlock"),
                "IsDefault": bool(v.get("IsDefault")),
                "State": v.get("State"),
                "FlowLogs": None if flow_logs is None else flow_logs[v["VpcId"]],
            }
        )

    return [ec2_resource(ctx, VPC, v["VpcId"], v, config(v), t) for v in items]


def network_acl(ctx: CollectContext, acl: Item, t: str) -> Resource:
    aid = require(acl, "NetworkAclId", "DescribeNetworkAcls")
    config = {
        "NetworkAclId": aid,
        "VpcId": acl.get("VpcId"),
        "IsDefault": bool(acl.get("IsDefault")),
        "Entries": acl.get("Entries", []),
        "SubnetIds": [a["SubnetId"] for a in acl.get("Associations", []) if "SubnetId" in a],
    }
    return ec2_resource(ctx, NETWORK_ACL, aid, acl, config, t)


def ebs_default_arn(ctx: CollectContext, _: str = "") -> str:
    return f"arn:aws:ec2:{ctx.region}:{ctx.account_id}:ebs-encryption-by-default"


def read_ebs_default(ctx: CollectContext) -> tuple[Resource, bool]:
    """The region's setting, and whether none of its calls answered."""
    describe_time = now_iso()
    ec2, calls = ctx.client("ec2"), ResourceCalls()
    answer = calls.call("GetEbsEncryptionByDefault", ec2.get_ebs_encryption_by_default)
    enabled = (
        None
        if answer is None
        else bool(require(answer, "EbsEncryptionByDefault", "GetEbsEncryptionByDefault"))
    )
    key = (calls.call("GetEbsDefaultKmsKeyId", ec2.get_ebs_default_kms_key_id) or {}).get("KmsKeyId")
    resource = ctx.resource(
        service="ec2",
        resource_type=EBS_DEFAULT,
        arn=ebs_default_arn(ctx),
        configuration=calls.stamp({"EbsEncryptionByDefault": enabled, "DefaultKmsKeyId": key}),
        describe_time=describe_time,
    )
    return resource, calls.none_answered


list_ebs_default, describe_ebs_default = one_per_context(read_ebs_default)


# ---- CloudTrail ---------------------------------------------------------------------------

PREFIXES = {
    "i-": INSTANCE,
    "sg-": SECURITY_GROUP,
    "vol-": VOLUME,
    "snap-": SNAPSHOT,
    "vpc-": VPC,
    "acl-": NETWORK_ACL,
}
ALIASES = {"req": "requestParameters", "resp": "responseElements"}


def nodes_at(node: Any, path: list[str]) -> list[Any]:
    """The values at ``path`` under ``node``, fanning out over lists and ``*`` (any key); odd shapes
    give []."""
    if isinstance(node, list):
        return [n for item in node for n in nodes_at(item, path)]
    if not path:
        return [node]
    if not isinstance(node, dict):
        return []
    children = node.values() if path[0] == "*" else [node.get(ALIASES.get(path[0], path[0]))]
    return [n for child in children for n in nodes_at(child, path[1:])]


def strings_at(node: Any, path: list[str]) -> list[str]:
    return [s for s in nodes_at(node, path) if isinstance(s, str) and s]


def kind_of(rid: str) -> str | None:
    return next((kind for prefix, kind in PREFIXES.items() if rid.startswith(prefix)), None)


Touches = Callable[[dict[str, Any]], list[Touch]]


def at(resource_type: str | None, *paths: str) -> Touches:
    """The ids at the dotted ``paths`` of the detail (``req.`` is requestParameters, ``resp.``
    responseElements). With no type, an id's prefix names its kind and ids of kinds not collected
    here (subnets, network interfaces...) are dropped."""

    def touches(detail: dict[str, Any]) -> list[Touch]:
        ids = dict.fromkeys(s for p in paths for s in strings_at(detail, p.split(".")))
        kinds = {rid: resource_type or kind_of(rid) for rid in ids}
        return [Touch(kind, rid) for rid, kind in kinds.items() if kind]

    return touches


def rule(names: str, resource_type: str | None, *paths: str, also: tuple[Touches, ...] = ()) -> EventRule:
    """The events ``names`` touch the ids at ``paths`` (see ``at``) and what ``also`` finds."""
    found = (at(resource_type, *paths), *also)
    return EventRule(tuple(names.split()), lambda detail: [t for f in found for t in f(detail)])


def instance_volumes(side: str) -> Touches:
    """The EBS volumes of the instances at ``side``.instancesSet (RunInstances creates them,
    TerminateInstances deletes those marked DeleteOnTermination): the volume ids the record lists
    where it has them, else the volumes attached to the instance (attachment.instance-id)."""

    def touches(detail: dict[str, Any]) -> list[Touch]:
        found: list[Touch] = []
        for item in nodes_at(detail, [side, "instancesSet", "items"]):
            volumes = strings_at(item, ["blockDeviceMapping", "items", "ebs", "volumeId"])
            instances = strings_at(item, ["instanceId"])
            attached = [Touch(VOLUME, i, by="attachment.instance-id") for i in instances]
            found += [Touch(VOLUME, v) for v in volumes] or attached
        return found

    return touches


def image_snapshots(detail: dict[str, Any]) -> list[Touch]:
    """CreateImage's snapshots: its response names only the image, and EC2 describes each snapshot
    it takes as "Created by CreateImage(<instance>) for <image>"."""
    return [
        Touch(SNAPSHOT, f"Created by CreateImage(*) for {ami}", by="description")
        for ami in strings_at(detail, ["resp", "imageId"])
    ]


def region_vpcs(detail: dict[str, Any]) -> list[Touch]:
    # DeleteFlowLogs names flow log ids only, gone by the time they could be described: the region's
    # VPCs are refreshed (a bounded listing: VPCs per region are a quota of a few).
    named = [p for p in (["FlowLogId", "content"], ["FlowLogId"]) if strings_at(detail, ["req", "*", *p])]
    return [Touch(VPC, "", by=ALL)] if named else []


def region_touch(detail: dict[str, Any]) -> Iterable[Touch]:
    region = detail.get("awsRegion") if isinstance(detail, dict) else None
    return [Touch(EBS_DEFAULT, region)] if isinstance(region, str) and region else []


EVENTS = (
    rule("RunInstances", INSTANCE, "resp.instancesSet.items.instanceId", also=(instance_volumes("resp"),)),
    rule(
        "TerminateInstances",
        INSTANCE,
        "req.instancesSet.items.instanceId",
        also=(instance_volumes("req"),),
    ),
    rule("StartInstances StopInstances", INSTANCE, "req.instancesSet.items.instanceId"),
    rule("ModifyInstanceMetadataOptions", INSTANCE, "req.*.InstanceId", "req.instanceId"),
    rule("AssociateAddress ModifyInstanceAttribute", INSTANCE, "req.instanceId"),
    # DisassociateAddress is not registered: its record names only the association id (the response
    # is requestId and return), which no longer resolves to an instance: the next inventory sees it.
    rule(
        "AssociateIamInstanceProfile ReplaceIamInstanceProfileAssociation DisassociateIamInstanceProfile",
        INSTANCE,
        "req.*.InstanceId",
        "resp.*.iamInstanceProfileAssociation.instanceId",
    ),
    rule("CreateSecurityGroup", SECURITY_GROUP, "resp.groupId"),
    rule(
        "DeleteSecurityGroup AuthorizeSecurityGroupIngress AuthorizeSecurityGroupEgress"
        " RevokeSecurityGroupIngress RevokeSecurityGroupEgress",
        SECURITY_GROUP,
        "req.groupId",
    ),
    rule("ModifySecurityGroupRules", SECURITY_GROUP, "req.*.GroupId", "req.groupId"),
    rule("CreateVolume", VOLUME, "resp.volumeId"),
    rule("DeleteVolume AttachVolume DetachVolume", VOLUME, "req.volumeId"),
    rule("CreateSnapshot CopySnapshot", SNAPSHOT, "resp.snapshotId"),
    rule("DeleteSnapshot ModifySnapshotAttribute", SNAPSHOT, "req.snapshotId"),
    rule("CreateVpc", VPC, "resp.vpc.vpcId"),
    rule("DeleteVpc", VPC, "req.vpcId"),
    rule("CreateNetworkAcl", NETWORK_ACL, "resp.networkAcl.networkAclId"),
    rule(
        "DeleteNetworkAcl CreateNetworkAclEntry ReplaceNetworkAclEntry DeleteNetworkAclEntry",
        NETWORK_ACL,
        "req.networkAclId",
    ),
    rule(
        "CreateFlowLogs",
        None,
        "req.*.ResourceId.content",
        "req.*.ResourceId",
        "req.resourceIdSet.items.resourceId",
    ),
    rule("DeleteFlowLogs", None, also=(region_vpcs,)),
    rule("CreateImage", None, also=(image_snapshots,)),
    rule("CreateTags DeleteTags", None, "req.resourcesSet.items.resourceId"),
    EventRule(
        (
            "EnableEbsEncryptionByDefault",
            "DisableEbsEncryptionByDefault",
            "ModifyEbsDefaultKmsKeyId",
            "ResetEbsDefaultKmsKeyId",
        ),
        region_touch,
    ),
)

SERVICE = Service(
    name="ec2",
    regional=True,
    read_actions=(
        "ec2:DescribeInstances",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSnapshots",
        "ec2:DescribeVolumes",
        "ec2:DescribeVpcs",
        "ec2:DescribeFlowLogs",
        "ec2:DescribeNetworkAcls",
        "ec2:GetEbsEncryptionByDefault",
        "ec2:GetEbsDefaultKmsKeyId",
    ),
    kinds=(
        paged_kind(
            INSTANCE,
            DescribeApi("describe_instances", "Reservations", "InstanceIds", {"Filters": [LIVE_FILTER]}),
            instances,
        ),
        paged_kind(
            SECURITY_GROUP,
            DescribeApi("describe_security_groups", "SecurityGroups", "GroupIds"),
            each(security_group),
        ),
        paged_kind(VOLUME, DescribeApi("describe_volumes", "Volumes", "VolumeIds"), each(volume)),
        paged_kind(
            SNAPSHOT,
            DescribeApi("describe_snapshots", "Snapshots", "SnapshotIds", {"OwnerIds": ["self"]}),
            snapshots,
        ),
        paged_kind(VPC, DescribeApi("describe_vpcs", "Vpcs", "VpcIds"), vpcs),
        paged_kind(
            NETWORK_ACL,
            DescribeApi("describe_network_acls", "NetworkAcls", "NetworkAclIds"),
            each(network_acl),
        ),
        ResourceKind(EBS_DEFAULT, list_ebs_default, describe_ebs_default, ebs_default_arn),
    ),
    event_source="ec2.amazonaws.com",
    events=EVENTS,
)
