"""A simulated organisation inside the emulated AWS: customer accounts with the customer role
(trusting the operator, requiring the ExternalId), realistic S3/EC2/IAM resources in two regions,
some misconfigured, registered in the accounts table. Account ``n`` is ``2000000000nn``.

The seed varies by account index so that every policy fails somewhere and passes somewhere."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from qrie_lib.aws import Aws
from qrie_lib.models import Account
from qrie_lib.stores.accounts import AccountsStore

SEED_ROLE = "OrganizationAccountAccessRole"  # how an org admin reaches member accounts
WORLD = "0.0.0.0/0"


def account_id(n: int) -> str:
    return f"{200_000_000_000 + n:012d}"


def trust_policy(operator_account: str, external_id: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{operator_account}:root"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
                }
            ],
        }
    )


def admin_document() -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


@dataclass
class SimulatedOrg:
    aws: Aws
    accounts: int = 3

    @property
    def account_ids(self) -> list[str]:
        return [account_id(n) for n in range(1, self.accounts + 1)]

    def create(self) -> list[Account]:
        operator = self.aws.client("sts").get_caller_identity()["Account"]
        store = AccountsStore(self.aws.client("dynamodb"), self.aws.settings.accounts_table)
        created = []
        for n, acct in enumerate(self.account_ids, start=1):
            session = self.session(acct)
            session.client("iam").create_role(
                RoleName=self.aws.settings.role_name,
                AssumeRolePolicyDocument=trust_policy(operator, self.aws.settings.external_id),
            )
            seed_account(session, acct, n, self.aws.settings.regions)
            created.append(
                store.put(
                    Account(
                        account_id=acct,
                        name=f"sim-{n:02d}",
                        ou_path="/root/prod/" if n % 2 else "/root/dev/",
                        tags={"env": "prod" if n % 2 else "dev"},
                        regions=list(self.aws.settings.regions),
                    )
                )
            )
        return created

    def session(self, acct: str) -> boto3.Session:
        """An administrator's session in a member account (used to seed and to change things)."""
        creds = self.aws.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{acct}:role/{SEED_ROLE}", RoleSessionName="seed"
        )["Credentials"]
        return boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=self.aws.settings.region,
        )


def seed_account(session: boto3.Session, acct: str, n: int, regions: tuple[str, ...]) -> None:
    seed_s3(session, acct, n, regions)
    for region in regions:
        seed_ec2(session.client("ec2", region_name=region), n, region == regions[0])
    seed_iam(session.client("iam"), acct, n)


def seed_s3(session: boto3.Session, acct: str, n: int, regions: tuple[str, ...]) -> None:
    s3 = session.client("s3")
    logs, public, shared, secure = (f"sim{n:02d}-{name}" for name in ("logs", "public-assets", "shared", "secure"))
    s3.create_bucket(Bucket=logs)
    s3.put_bucket_acl(Bucket=logs, ACL="log-delivery-write")
    s3.create_bucket(Bucket=public)
    s3.put_bucket_acl(Bucket=public, ACL="public-read" if n % 2 else "public-read-write")
    other = regions[-1]
    s3_other = session.client("s3", region_name=other)
    s3_other.create_bucket(Bucket=shared, CreateBucketConfiguration={"LocationConstraint": other})
    s3_other.put_bucket_policy(
        Bucket=shared,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{shared}/*",
                        # Even accounts restrict by org: not public.
                        **({"Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-sim"}}} if n % 2 == 0 else {}),
                    }
                ],
            }
        ),
    )
    s3.create_bucket(Bucket=secure)
    s3.put_public_access_block(
        Bucket=secure,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=secure,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    )
    s3.put_bucket_versioning(Bucket=secure, VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"})
    s3.put_bucket_logging(
        Bucket=secure, BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": logs, "TargetPrefix": "secure/"}}
    )
    s3.put_bucket_ownership_controls(
        Bucket=secure, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    )
    s3.put_bucket_policy(
        Bucket=secure,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [f"arn:aws:s3:::{secure}", f"arn:aws:s3:::{secure}/*"],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            }
        ),
    )
    s3.put_bucket_tagging(Bucket=secure, Tagging={"TagSet": [{"Key": "data-class", "Value": "restricted"}]})
    if n % 2 == 0:
        session.client("s3control").put_public_access_block(
            AccountId=acct,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )


def ingress(group_id: str, ec2: Any, protocol: str, from_port: int, to_port: int, cidr: str) -> None:
    ranges = {"Ipv6Ranges": [{"CidrIpv6": cidr}]} if ":" in cidr else {"IpRanges": [{"CidrIp": cidr}]}
    ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[{"IpProtocol": protocol, "FromPort": from_port, "ToPort": to_port, **ranges}],
    )


def seed_ec2(ec2: Any, n: int, home: bool) -> None:
    vpc_id = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    groups = {}
    for name, rule in {
        "ssh-open": ("tcp", 22, 22, WORLD),
        "rdp-open": ("tcp", 3389, 3389, "::/0"),
        "db-range-open": ("tcp", 3000, 3400, WORLD),  # covers MySQL 3306
        "web": ("tcp", 443, 443, WORLD),
        "ssh-internal": ("tcp", 22, 22, "10.0.0.0/8"),
        **({"wide-open": ("-1", -1, -1, WORLD)} if n % 2 else {}),
    }.items():
        group_id = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc_id)["GroupId"]
        ingress(group_id, ec2, *rule)
        groups[name] = group_id

    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.run_instances(
        ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.micro", SecurityGroupIds=[groups["ssh-open"]],
        MetadataOptions={"HttpTokens": "optional", "HttpEndpoint": "enabled"},
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "legacy-web"}]}],
    )
    ec2.run_instances(
        ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.micro", SecurityGroupIds=[groups["web"]],
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "app"}]}],
    )
    zone = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    plain = ec2.create_volume(AvailabilityZone=zone, Size=8, Encrypted=False)["VolumeId"]
    ec2.create_volume(AvailabilityZone=zone, Size=8, Encrypted=True)
    public_snapshot = ec2.create_snapshot(VolumeId=plain, Description="shared build cache")["SnapshotId"]
    ec2.create_snapshot(VolumeId=plain, Description="nightly backup")
    if home:
        ec2.modify_snapshot_attribute(
            SnapshotId=public_snapshot, Attribute="createVolumePermission", OperationType="add", GroupNames=["all"]
        )
    logged_vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    ec2.create_flow_logs(
        ResourceIds=[logged_vpc], ResourceType="VPC", TrafficType="ALL", LogDestinationType="s3",
        LogDestination=f"arn:aws:s3:::sim{n:02d}-logs/flow/",
    )
    if n % 2 == 0 or not home:
        ec2.enable_ebs_encryption_by_default()


def seed_iam(iam: Any, acct: str, n: int) -> None:
    iam.create_user(UserName="alice")  # console user, no MFA
    iam.create_login_profile(UserName="alice", Password="Sim-Passw0rd!x")
    iam.create_access_key(UserName="alice")

    iam.create_user(UserName="bob")  # console user with MFA
    iam.create_login_profile(UserName="bob", Password="Sim-Passw0rd!y")
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="bob")["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(UserName="bob", SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321")

    iam.create_user(UserName="ci-bot")  # machine user: two active keys, admin attached directly
    iam.create_access_key(UserName="ci-bot")
    iam.create_access_key(UserName="ci-bot")
    iam.attach_user_policy(UserName="ci-bot", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    iam.put_user_policy(UserName="ci-bot", PolicyName="everything", PolicyDocument=admin_document())

    iam.create_group(GroupName="admins")
    iam.put_group_policy(GroupName="admins", PolicyName="admin", PolicyDocument=admin_document())
    iam.add_user_to_group(GroupName="admins", UserName="bob")

    iam.create_policy(PolicyName="too-broad", PolicyDocument=admin_document())
    iam.create_policy(
        PolicyName="read-logs",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"arn:aws:s3:::sim{n:02d}-logs/*"}
                ],
            }
        ),
    )

    iam.create_role(
        RoleName="partner-audit",  # cross-account trust, no ExternalId
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999988887777:root"},
                     "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )
    if n % 2:
        iam.create_role(
            RoleName="anyone",
            AssumeRolePolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                                                         "Action": "sts:AssumeRole"}]}
            ),
        )
    else:
        iam.create_role(
            RoleName="support",
            AssumeRolePolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{acct}:root"},
                                                         "Action": "sts:AssumeRole"}]}
            ),
        )
        iam.attach_role_policy(RoleName="support", PolicyArn="arn:aws:iam::aws:policy/AWSSupportAccess")

    if n % 2:
        iam.update_account_password_policy(MinimumPasswordLength=8, RequireSymbols=False)
    else:
        iam.update_account_password_policy(
            MinimumPasswordLength=14, RequireSymbols=True, RequireNumbers=True, RequireUppercaseCharacters=True,
            RequireLowercaseCharacters=True, PasswordReusePrevention=24, MaxPasswordAge=90,
        )
