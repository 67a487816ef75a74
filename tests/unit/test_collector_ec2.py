from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.ec2.responses import EC2Response

from orchestration import emulation
from qrie_lib.errors import Unreadable
from qrie_lib.services import ec2
from qrie_lib.services.base import ALL, Touch
from tests.conftest import CUSTOMER, REGION, collect_all, make_ctx

AMI = "ami-760aaa0f"  # the one AMI of tests' MOTO_AMIS_PATH catalogue
EU = "eu-west-1"


@pytest.fixture
def ebs_kms(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto has no GetEbsDefaultKmsKeyId: answer what AWS answers before anyone sets a key."""
    monkeypatch.setattr(
        EC2Response, "get_ebs_default_kms_key_id", emulation.default_ebs_kms_key, raising=False
    )


def run(client, **kwargs: Any) -> str:
    return client.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, **kwargs)["Instances"][0]["InstanceId"]


def by_id(resources: list, key: str) -> dict:
    return {r.configuration[key]: r for r in resources}


def test_instances_are_collected_with_their_configuration_and_terminated_ones_skipped(aws, customer):
    profile = customer.client("iam").create_instance_profile(InstanceProfileName="web")["InstanceProfile"]
    client = customer.client("ec2")
    sg = client.create_security_group(GroupName="web", Description="web")["GroupId"]
    web = run(
        client,
        SecurityGroupIds=[sg],
        IamInstanceProfile={"Arn": profile["Arn"]},
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "web"}]}],
    )
    gone = run(client)
    client.terminate_instances(InstanceIds=[gone])

    ctx = make_ctx(aws)
    kind = ec2.SERVICE.kind(ec2.INSTANCE)
    found, pages = collect_all(ctx, kind)
    assert (pages, list(by_id(found, "InstanceId"))) == (1, [web])
    resource = found[0]
    assert resource.arn == f"arn:aws:ec2:{REGION}:{CUSTOMER}:instance/{web}"
    assert (resource.region, resource.resource_type, resource.tags) == (REGION, ec2.INSTANCE, {"team": "web"})
    config = resource.configuration
    assert config["State"] == "running"
    assert config["MetadataOptions"]["HttpTokens"] == "required"
    assert config["MetadataOptions"]["HttpEndpoint"] == "enabled"
    assert config["SecurityGroupIds"] == [sg]
    assert config["IamInstanceProfileArn"] == profile["Arn"]
    assert config["PrivateIpAddress"]
    assert (config["SubnetId"][:7], config["VpcId"][:4]) == ("subnet-", "vpc-")
    assert config["LaunchTime"].endswith("Z")
    assert aws.calls["ec2.DescribeInstances"] == 1

    assert kind.describe(ctx, web).configuration == config
    assert kind.describe(ctx, gone) is None


def test_instance_pages_are_bounded_and_resume_from_the_token(aws, customer):
    client = customer.client("ec2")
    launched = [run(client) for _ in range(7)]
    kind = ec2.SERVICE.kind(ec2.INSTANCE)
    ctx = make_ctx(aws, page_size=2)  # EC2 takes no MaxResults below 5

    first = kind.list_page(ctx, None)
    assert len(first.resources) == 5
    assert first.next_token
    resumed = kind.list_page(make_ctx(aws, page_size=2), first.next_token)
    assert resumed.next_token is None
    ids = [r.configuration["InstanceId"] for r in first.resources + resumed.resources]
    assert sorted(ids) == sorted(launched)


@pytest.mark.parametrize(
    ("resource_type", "operation"),
    [
        (ec2.SECURITY_GROUP, "DescribeSecurityGroups"),
        (ec2.VOLUME, "DescribeVolumes"),
        (ec2.SNAPSHOT, "DescribeSnapshots"),
        (ec2.VPC, "DescribeVpcs"),
    ],
)
def test_list_pages_ask_for_a_bounded_page_from_the_token(aws, customer, resource_type, operation):
    # moto pages only DescribeInstances, so for the others check what is asked of EC2.
    asked: list[dict] = []
    client = aws.customer_client(CUSTOMER, "ec2", REGION)
    client.meta.events.register(
        f"provide-client-params.ec2.{operation}", lambda params, **_: asked.append(dict(params))
    )
    kind = ec2.SERVICE.kind(resource_type)
    kind.list_page(make_ctx(aws, page_size=2), None)
    kind.list_page(make_ctx(aws, page_size=50), "token-1")
    assert [(a["MaxResults"], a.get("NextToken")) for a in asked] == [(5, None), (50, "token-1")]


def test_security_groups_carry_their_rules(aws, customer):
    client = customer.client("ec2")
    groups = [
        client.create_security_group(GroupName=f"sg-{n}", Description=f"group {n}")["GroupId"]
        for n in range(5)
    ]
    open_ssh = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    client.authorize_security_group_ingress(GroupId=groups[0], IpPermissions=[open_ssh])

    found, _ = collect_all(make_ctx(aws), ec2.SERVICE.kind(ec2.SECURITY_GROUP))
    found_by_id = by_id(found, "GroupId")
    assert set(groups) < set(found_by_id)
    config = found_by_id[groups[0]].configuration
    assert (config["GroupName"], config["Description"], config["IsDefault"]) == ("sg-0", "group 0", False)
    assert config["VpcId"].startswith("vpc-")
    assert config["IpPermissions"][0]["IpRanges"][0]["CidrIp"] == "0.0.0.0/0"
    assert config["IpPermissions"][0]["FromPort"] == 22
    assert config["IpPermissionsEgress"][0]["IpProtocol"] == "-1"
    assert found_by_id[groups[1]].configuration["IpPermissions"] == []
    [default] = [r for r in found if r.configuration["GroupName"] == "default"]
    assert default.configuration["IsDefault"] is True
    assert default.arn == f"arn:aws:ec2:{REGION}:{CUSTOMER}:security-group/{default.configuration['GroupId']}"


def test_volumes_carry_encryption_and_attachments(aws, customer):
    client = customer.client("ec2")
    instance = run(client)
    key = customer.client("kms").create_key()["KeyMetadata"]["Arn"]
    encrypted = client.create_volume(
        Size=10,
        AvailabilityZone=f"{REGION}a",
        Encrypted=True,
        KmsKeyId=key,
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "data", "Value": "pii"}]}],
    )["VolumeId"]
    plain = client.create_volume(Size=1, AvailabilityZone=f"{REGION}a")["VolumeId"]
    client.attach_volume(VolumeId=plain, InstanceId=instance, Device="/dev/sdf")

    found = by_id(collect_all(make_ctx(aws), ec2.SERVICE.kind(ec2.VOLUME))[0], "VolumeId")
    enc = found[encrypted]
    assert enc.arn == f"arn:aws:ec2:{REGION}:{CUSTOMER}:volume/{encrypted}"
    assert enc.tags == {"data": "pii"}
    assert {
        k: enc.configuration[k] for k in ("Encrypted", "KmsKeyId", "Size", "State", "AttachedInstanceIds")
    } == {
        "Encrypted": True,
        "KmsKeyId": key,
        "Size": 10,
        "State": "available",
        "AttachedInstanceIds": [],
    }
    assert found[plain].configuration["Encrypted"] is False
    assert found[plain].configuration["AttachedInstanceIds"] == [instance]


@pytest.fixture
def restorable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EC2Response, "describe_snapshots", emulation.describe_snapshots)


def test_public_snapshots_are_detected_and_only_own_snapshots_listed(aws, customer, restorable):
    client = customer.client("ec2")
    volume = client.create_volume(Size=1, AvailabilityZone=f"{REGION}a")["VolumeId"]
    shared, private, named = (client.create_snapshot(VolumeId=volume)["SnapshotId"] for _ in range(3))
    client.modify_snapshot_attribute(
        SnapshotId=shared, Attribute="createVolumePermission", OperationType="add", GroupNames=["all"]
    )
    client.modify_snapshot_attribute(
        SnapshotId=named, Attribute="createVolumePermission", OperationType="add", UserIds=["999999999999"]
    )

    kind = ec2.SERVICE.kind(ec2.SNAPSHOT)
    found = by_id(collect_all(make_ctx(aws), kind)[0], "SnapshotId")
    assert set(found) == {shared, private, named}  # not the AMI's snapshot moto lists as ours
    assert found[shared].arn == f"arn:aws:ec2:{REGION}:{CUSTOMER}:snapshot/{shared}"
    assert found[shared].configuration["CreateVolumePermissions"] == [{"Group": "all"}]
    assert found[shared].configuration["Public"] is True
    assert found[shared].configuration["VolumeId"] == volume
    assert found[shared].configuration["Encrypted"] is False
    for other in (private, named):
        assert (
            found[other].configuration["Public"],
            found[other].configuration["CreateVolumePermissions"],
        ) == (
            False,
            [],
        )
    assert "ec2.DescribeSnapshotAttribute" not in aws.calls

    client.delete_snapshot(SnapshotId=private)
    assert kind.describe(make_ctx(aws), private) is None
    assert kind.describe(make_ctx(aws), shared).configuration["Public"] is True


def test_snapshot_calls_do_not_grow_with_the_snapshots(aws, customer, restorable):
    client = customer.client("ec2")
    volume = client.create_volume(Size=1, AvailabilityZone=f"{REGION}a")["VolumeId"]
    kind = ec2.SERVICE.kind(ec2.SNAPSHOT)
    calls, created = [], 0
    for count in (2, 12):
        for _ in range(count - created):
            client.create_snapshot(VolumeId=volume)
        created = count
        aws.customer_calls.clear()
        found, pages = collect_all(make_ctx(aws, page_size=50), kind)
        assert (len(found), pages) == (count, 1)
        calls.append(sum(aws.customer_calls.values()))
    assert calls == [2, 2]  # the page, and which of it is public


def test_vpc_flow_logs_are_fetched_once_per_page(aws, customer):
    client = customer.client("ec2")
    logged, bare = (client.create_vpc(CidrBlock=f"10.{n}.0.0/16")["Vpc"]["VpcId"] for n in range(2))
    customer.client("logs").create_log_group(logGroupName="vpc-flow")
    flow_log = client.create_flow_logs(
        ResourceIds=[logged],
        ResourceType="VPC",
        TrafficType="ALL",
        LogGroupName="vpc-flow",
        DeliverLogsPermissionArn=f"arn:aws:iam::{CUSTOMER}:role/flow-logs",
    )["FlowLogIds"][0]

    kind = ec2.SERVICE.kind(ec2.VPC)
    found, pages = collect_all(make_ctx(aws), kind)
    found_by_id = by_id(found, "VpcId")
    assert (len(found), pages) == (3, 1)
    assert aws.calls["ec2.DescribeFlowLogs"] == 1
    config = found_by_id[logged].configuration
    assert config["FlowLogs"] == [
        {
            "FlowLogId": flow_log,
            "FlowLogStatus": "ACTIVE",
            "DeliverLogsStatus": "SUCCESS",
            "TrafficType": "ALL",
            "LogDestinationType": "cloud-watch-logs",
            "LogDestination": None,
        }
    ]
    assert (config["CidrBlock"], config["IsDefault"]) == ("10.0.0.0/16", False)
    assert found_by_id[bare].configuration["FlowLogs"] == []
    [default] = [r for r in found if r.configuration["IsDefault"]]
    assert default.configuration["FlowLogs"] == []
    assert kind.describe(make_ctx(aws), logged).configuration == config


def test_ebs_encryption_by_default_is_a_resource_of_the_region(aws, customer, ebs_kms):
    kind = ec2.SERVICE.kind(ec2.EBS_DEFAULT)
    ctx = make_ctx(aws)
    before = kind.list_page(ctx, None)
    assert before.next_token is None
    [resource] = before.resources
    assert resource.arn == f"arn:aws:ec2:{REGION}:{CUSTOMER}:ebs-encryption-by-default"
    assert resource.configuration == {"EbsEncryptionByDefault": False, "DefaultKmsKeyId": "alias/aws/ebs"}

    customer.client("ec2").enable_ebs_encryption_by_default()
    after = kind.describe(ctx, REGION)
    assert after.configuration == {"EbsEncryptionByDefault": True, "DefaultKmsKeyId": "alias/aws/ebs"}


def refuse(aws, *operations: str, region: str = REGION) -> None:
    """The customer's EC2 client answers UnauthorizedOperation to these operations."""

    def deny(model, **_):
        raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, model.name)

    for operation in operations:
        aws.customer_client(CUSTOMER, "ec2", region).meta.events.register(
            f"before-parameter-build.ec2.{operation}", deny
        )


def test_a_denied_flow_log_call_is_recorded_on_each_vpc_of_the_page(aws, customer):
    customer.client("ec2").create_vpc(CidrBlock="10.0.0.0/16")
    refuse(aws, "DescribeFlowLogs")
    found, _ = collect_all(make_ctx(aws), ec2.SERVICE.kind(ec2.VPC))
    assert len(found) == 2
    for vpc in found:
        assert vpc.configuration["FlowLogs"] is None  # unknown, not "none"
        assert vpc.configuration["CollectErrors"] == [
            {"call": "DescribeFlowLogs", "code": "UnauthorizedOperation"}
        ]


def test_ebs_default_records_a_denied_call_and_is_unread_when_both_are(aws, customer, ebs_kms):
    kind = ec2.SERVICE.kind(ec2.EBS_DEFAULT)
    refuse(aws, "GetEbsDefaultKmsKeyId")
    [setting] = kind.list_page(make_ctx(aws), None).resources
    assert setting.configuration == {
        "EbsEncryptionByDefault": False,
        "DefaultKmsKeyId": None,
        "CollectErrors": [{"call": "GetEbsDefaultKmsKeyId", "code": "UnauthorizedOperation"}],
    }
    refuse(aws, "GetEbsEncryptionByDefault")
    page = kind.list_page(make_ctx(aws), None)
    assert page.resources == []
    assert [r.arn for r in page.unread] == [setting.arn]
    with pytest.raises(Unreadable):
        kind.describe(make_ctx(aws), REGION)


@pytest.mark.parametrize(
    ("resource_type", "absent"),
    [
        (ec2.INSTANCE, "i-0123456789abcdef0"),
        (ec2.SECURITY_GROUP, "sg-0123456789abcdef0"),
        (ec2.VOLUME, "vol-0123456789abcdef0"),
        (ec2.SNAPSHOT, "snap-0123456789abcdef0"),
        (ec2.VPC, "vpc-0123456789abcdef0"),
    ],
)
def test_describe_of_an_absent_id_is_none(aws, customer, resource_type, absent):
    assert ec2.SERVICE.kind(resource_type).describe(make_ctx(aws), absent) is None


def test_deleted_resources_describe_as_none(aws, customer):
    client = customer.client("ec2")
    sg = client.create_security_group(GroupName="tmp", Description="tmp")["GroupId"]
    volume = client.create_volume(Size=1, AvailabilityZone=f"{REGION}a")["VolumeId"]
    client.delete_security_group(GroupId=sg)
    client.delete_volume(VolumeId=volume)
    ctx = make_ctx(aws)
    assert ec2.SERVICE.kind(ec2.SECURITY_GROUP).describe(ctx, sg) is None
    assert ec2.SERVICE.kind(ec2.VOLUME).describe(ctx, volume) is None


def test_regions_are_collected_apart(aws, customer, ebs_kms):
    home = customer.client("ec2").create_volume(Size=1, AvailabilityZone=f"{REGION}a")["VolumeId"]
    eu_client = customer.client("ec2", region_name=EU)
    away = eu_client.create_volume(Size=1, AvailabilityZone=f"{EU}a")["VolumeId"]
    eu_client.enable_ebs_encryption_by_default()

    volumes = ec2.SERVICE.kind(ec2.VOLUME)
    [eu_volume] = collect_all(make_ctx(aws, region=EU), volumes)[0]
    assert [r.configuration["VolumeId"] for r in collect_all(make_ctx(aws), volumes)[0]] == [home]
    assert eu_volume.configuration["VolumeId"] == away
    assert (eu_volume.region, eu_volume.arn) == (EU, f"arn:aws:ec2:{EU}:{CUSTOMER}:volume/{away}")

    ebs = ec2.SERVICE.kind(ec2.EBS_DEFAULT)
    assert ebs.describe(make_ctx(aws), REGION).configuration["EbsEncryptionByDefault"] is False
    eu_setting = ebs.describe(make_ctx(aws, region=EU), EU)
    assert eu_setting.configuration["EbsEncryptionByDefault"] is True
    assert (eu_setting.region, eu_setting.arn) == (
        EU,
        f"arn:aws:ec2:{EU}:{CUSTOMER}:ebs-encryption-by-default",
    )


# ---- CloudTrail ---------------------------------------------------------------------------


def detail(name: str, request: Any = None, response: Any = None, region: str = REGION) -> dict[str, Any]:
    """A CloudTrail ``detail`` as EventBridge delivers it for an EC2 management call."""
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:alice",
            "arn": f"arn:aws:sts::{CUSTOMER}:assumed-role/admin/alice",
            "accountId": CUSTOMER,
        },
        "eventTime": "2024-05-01T12:00:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": request,
        "responseElements": response,
        "requestID": "2b4a1c3e-0000-4000-8000-000000000001",
        "eventID": "7d6c5b4a-0000-4000-8000-000000000002",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": CUSTOMER,
    }


def touches(event: dict[str, Any]) -> list[Touch]:
    [rule] = [r for r in ec2.SERVICE.events if event["eventName"] in r.event_names]
    return list(rule.touches(event))


def items(key: str, *values: str) -> dict[str, Any]:
    return {"items": [{key: v} for v in values]}


def content(*values: str) -> list[dict[str, Any]]:
    return [{"tag": n, "content": v} for n, v in enumerate(values, 1)]


I1, I2, SG, VOL, SNAP, VPC1, VPC2 = "i-0a1", "i-0a2", "sg-0a1", "vol-0a1", "snap-0a1", "vpc-0a1", "vpc-0a2"
ON_I1 = [Touch(ec2.INSTANCE, I1)]
ON_SG = [Touch(ec2.SECURITY_GROUP, SG)]
ON_VOL = [Touch(ec2.VOLUME, VOL)]
ON_SNAP = [Touch(ec2.SNAPSHOT, SNAP)]
ON_VPC1 = [Touch(ec2.VPC, VPC1)]
ON_REGION = [Touch(ec2.EBS_DEFAULT, EU)]
ACL = "acl-0a1"
ON_ACL = [Touch(ec2.NETWORK_ACL, ACL)]
ACL_RULE = {"ruleAction": "allow", "aclProtocol": "6", "cidrBlock": "0.0.0.0/0"} | {
    "portRange": {"from": 22, "to": 22}
}
OK = {"_return": True}
SG_RULE = {"groupId": SG, "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22}]}}
EBS_VOL = {"deviceName": "/dev/xvda", "ebs": {"volumeId": VOL, "status": "attaching"}}
BY_ATTACHMENT = [Touch(ec2.VOLUME, i, by="attachment.instance-id") for i in (I1, I2)]
PROFILE_ASSOCIATION = {"iamInstanceProfileAssociation": {"associationId": "iip-assoc-0a1", "instanceId": I1}}


def case(name: str, request: Any, response: Any, expected: list[Touch]) -> Any:
    return pytest.param(name, request, response, expected, id=name)


CASES = [
    case(
        "RunInstances",
        {"instancesSet": {"items": [{"imageId": AMI, "minCount": 2, "maxCount": 2}]}},
        {"reservationId": "r-0a1", "ownerId": CUSTOMER, "instancesSet": items("instanceId", I1, I2)},
        [Touch(ec2.INSTANCE, I1), Touch(ec2.INSTANCE, I2), *BY_ATTACHMENT],
    ),
    case(  # the volume ids, where the response lists them
        "RunInstances",
        {"instancesSet": {"items": [{"imageId": AMI, "minCount": 1, "maxCount": 1}]}},
        {"instancesSet": {"items": [{"instanceId": I1, "blockDeviceMapping": {"items": [EBS_VOL]}}]}},
        ON_I1 + ON_VOL,
    ),
    case(
        "TerminateInstances",
        {"instancesSet": items("instanceId", I1, I2)},
        {"instancesSet": items("instanceId", I1, I2)},
        [Touch(ec2.INSTANCE, I1), Touch(ec2.INSTANCE, I2), *BY_ATTACHMENT],
    ),
    case("StartInstances", {"instancesSet": items("instanceId", I1)}, None, ON_I1),
    case("StopInstances", {"instancesSet": items("instanceId", I1), "force": False}, None, ON_I1),
    case(
        "ModifyInstanceMetadataOptions",
        {"ModifyInstanceMetadataOptionsRequest": {"InstanceId": I1, "HttpTokens": "required"}},
        {"ModifyInstanceMetadataOptionsResponse": {"instanceId": I1}},
        ON_I1,
    ),
    case("ModifyInstanceMetadataOptions", {"instanceId": I1, "httpTokens": "required"}, None, ON_I1),
    case("ModifyInstanceAttribute", {"instanceId": I1, "groupSet": items("groupId", SG)}, OK, ON_I1),
    case("AssociateAddress", {"allocationId": "eipalloc-0a1", "instanceId": I1}, OK, ON_I1),
    case("AssociateAddress", {"allocationId": "eipalloc-0a1", "networkInterfaceId": "eni-0a1"}, OK, []),
    case(
        "AssociateIamInstanceProfile",
        {"AssociateIamInstanceProfileRequest": {"InstanceId": I1, "IamInstanceProfile": {"Name": "web"}}},
        {"AssociateIamInstanceProfileResponse": PROFILE_ASSOCIATION},
        ON_I1,
    ),
    case(
        "ReplaceIamInstanceProfileAssociation",
        {"ReplaceIamInstanceProfileAssociationRequest": {"AssociationId": "iip-assoc-0a1"}},
        {"ReplaceIamInstanceProfileAssociationResponse": PROFILE_ASSOCIATION},
        ON_I1,
    ),
    case(
        "DisassociateIamInstanceProfile",
        {"DisassociateIamInstanceProfileRequest": {"AssociationId": "iip-assoc-0a1"}},
        {"DisassociateIamInstanceProfileResponse": PROFILE_ASSOCIATION},
        ON_I1,
    ),
    case("CreateSecurityGroup", {"groupName": "web", "vpcId": VPC1}, {"_return": True, "groupId": SG}, ON_SG),
    case("DeleteSecurityGroup", {"groupId": SG}, OK, ON_SG),
    case("AuthorizeSecurityGroupIngress", SG_RULE, OK, ON_SG),
    case("AuthorizeSecurityGroupEgress", SG_RULE, OK, ON_SG),
    case("RevokeSecurityGroupIngress", SG_RULE, OK, ON_SG),
    case("RevokeSecurityGroupEgress", SG_RULE, OK, ON_SG),
    case(
        "ModifySecurityGroupRules",
        {
            "ModifySecurityGroupRulesRequest": {
                "GroupId": SG,
                "SecurityGroupRule": {"SecurityGroupRuleId": "sgr-1"},
            }
        },
        {"ModifySecurityGroupRulesResponse": {"return": True}},
        ON_SG,
    ),
    case("ModifySecurityGroupRules", {"groupId": SG}, None, ON_SG),
    case("CreateVolume", {"size": 8, "zone": f"{REGION}a"}, {"volumeId": VOL, "size": "8"}, ON_VOL),
    case("DeleteVolume", {"volumeId": VOL}, OK, ON_VOL),
    case(
        "AttachVolume", {"volumeId": VOL, "instanceId": I1, "device": "/dev/sdf"}, {"volumeId": VOL}, ON_VOL
    ),
    case("DetachVolume", {"volumeId": VOL}, {"volumeId": VOL}, ON_VOL),
    case("CreateSnapshot", {"volumeId": VOL}, {"snapshotId": SNAP, "volumeId": VOL}, ON_SNAP),
    case("CopySnapshot", {"sourceSnapshotId": "snap-0b1", "sourceRegion": EU}, {"snapshotId": SNAP}, ON_SNAP),
    case("DeleteSnapshot", {"snapshotId": SNAP}, OK, ON_SNAP),
    case(
        "ModifySnapshotAttribute",
        {"snapshotId": SNAP, "createVolumePermission": {"add": items("group", "all")}},
        None,
        ON_SNAP,
    ),
    case("CreateVpc", {"cidrBlock": "10.0.0.0/16"}, {"vpc": {"vpcId": VPC1, "state": "pending"}}, ON_VPC1),
    case("DeleteVpc", {"vpcId": VPC1}, OK, ON_VPC1),
    case("CreateNetworkAcl", {"vpcId": VPC1}, {"networkAcl": {"networkAclId": ACL, "vpcId": VPC1}}, ON_ACL),
    case("DeleteNetworkAcl", {"networkAclId": ACL}, OK, ON_ACL),
    *(
        case(name, {"networkAclId": ACL, "ruleNumber": 100, "egress": False, **ACL_RULE}, OK, ON_ACL)
        for name in ("CreateNetworkAclEntry", "ReplaceNetworkAclEntry")
    ),
    case("DeleteNetworkAclEntry", {"networkAclId": ACL, "ruleNumber": 100, "egress": False}, OK, ON_ACL),
    case(
        "CreateFlowLogs",
        {
            "CreateFlowLogsRequest": {
                "ResourceId": content(VPC1)[0],
                "ResourceType": "VPC",
                "TrafficType": "ALL",
            }
        },
        {"CreateFlowLogsResponse": {"flowLogIdSet": {"item": "fl-0a1"}}},
        ON_VPC1,
    ),
    case(
        "CreateFlowLogs",
        {"CreateFlowLogsRequest": {"ResourceId": content(VPC1, VPC2), "ResourceType": "VPC"}},
        None,
        [Touch(ec2.VPC, VPC1), Touch(ec2.VPC, VPC2)],
    ),
    case("CreateFlowLogs", {"resourceIdSet": items("resourceId", VPC1)}, None, ON_VPC1),
    case("CreateFlowLogs", {"CreateFlowLogsRequest": {"ResourceId": content("subnet-0a1")}}, None, []),
    case(
        "DeleteFlowLogs",
        {"DeleteFlowLogsRequest": {"FlowLogId": content("fl-0a1")}},
        None,
        [Touch(ec2.VPC, "", by=ALL)],
    ),
    case(
        "CreateImage",
        {"instanceId": I1, "name": "web-2025-11-26", "noReboot": True},
        {"imageId": AMI},
        [Touch(ec2.SNAPSHOT, f"Created by CreateImage(*) for {AMI}", by="description")],
    ),
    case(
        "CreateTags",
        {"resourcesSet": items("resourceId", I1, SG, "subnet-0a1"), "tagSet": items("key", "team")},
        OK,
        ON_I1 + ON_SG,
    ),
    case(
        "DeleteTags", {"resourcesSet": items("resourceId", VOL, SNAP, VPC1)}, OK, ON_VOL + ON_SNAP + ON_VPC1
    ),
    case(
        "EnableEbsEncryptionByDefault",
        {"EnableEbsEncryptionByDefaultRequest": ""},
        {"EnableEbsEncryptionByDefaultResponse": {"ebsEncryptionByDefault": True}},
        ON_REGION,
    ),
    case("DisableEbsEncryptionByDefault", {"DisableEbsEncryptionByDefaultRequest": ""}, None, ON_REGION),
    case(
        "ModifyEbsDefaultKmsKeyId",
        {"ModifyEbsDefaultKmsKeyIdRequest": {"KmsKeyId": "alias/x"}},
        None,
        ON_REGION,
    ),
    case("ResetEbsDefaultKmsKeyId", {"ResetEbsDefaultKmsKeyIdRequest": ""}, None, ON_REGION),
]


@pytest.mark.parametrize(("name", "request_params", "response", "expected"), CASES)
def test_event_touches(name, request_params, response, expected):
    assert touches(detail(name, request_params, response, region=EU)) == expected


def test_every_event_name_has_one_rule_and_a_case():
    names = ec2.SERVICE.event_names
    assert len(names) == len(set(names))
    assert set(names) == {c.values[0] for c in CASES}


@pytest.mark.parametrize(
    "odd",
    [
        None,
        {},
        {"requestParameters": None, "responseElements": None},
        {"requestParameters": "groupId", "responseElements": ["i-0a1"]},
        {"requestParameters": {"groupId": 7, "instanceId": "", "instancesSet": {"items": "i-0a1"}}},
        {"responseElements": {"instancesSet": {"items": [None, 3, {"instanceId": None}]}, "vpc": []}},
        {"awsRegion": None},
    ],
)
def test_odd_event_shapes_touch_nothing(odd):
    for rule in ec2.SERVICE.events:
        assert list(rule.touches(odd)) == []
