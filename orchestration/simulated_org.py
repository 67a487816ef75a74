"""A simulated organisation inside the emulated AWS: customer accounts with the customer role
(trusting the operator, requiring the ExternalId), realistic S3/EC2/IAM resources in two regions,
some misconfigured, registered in the accounts table. Account ``n`` is ``2000000000nn``.

The seed varies by account index (odd accounts are the careless ones) so that every policy fails
somewhere and passes somewhere. What AWS's API cannot set — credential ages and use, the root
user — is set in moto's backend (``simulate_*``), where moto stands in for AWS."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.iam.models import AccessKeyLastUsed, iam_backends
from moto.organizations.models import organizations_backends

from orchestration.seed_logging import seed_logging
from orchestration.seed_storage import seed_storage
from qrie_lib.accounts_sync import ORGANIZATIONS_REGION
from qrie_lib.aws import AccountSession, Aws
from qrie_lib.external_ids import new_external_id
from qrie_lib.models import Account
from qrie_lib.stores.accounts import AccountsStore

SEED_ROLE = "OrganizationAccountAccessRole"  # how an org admin reaches member accounts
OUS = ("prod", "dev")  # under the root: the OU paths /root/prod/ and /root/dev/
WORLD = "0.0.0.0/0"
EVERYONE = 'uri="http://acs.amazonaws.com/groups/global/AllUsers"'
ALL_PAB = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


def account_id(n: int) -> str:
    return f"{200_000_000_000 + n:012d}"


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def trust(principal: dict[str, Any], **condition: Any) -> str:
    statement = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    return document(statement | ({"Condition": condition} if condition else {}))


def trust_policy(operator_account: str, external_id: str) -> str:
    return trust(
        {"AWS": f"arn:aws:iam::{operator_account}:root"}, StringEquals={"sts:ExternalId": external_id}
    )


ADMIN = document({"Effect": "Allow", "Action": "*", "Resource": "*"})
ALL_BUT_IAM = document({"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"})


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
        organization_id = self.organization()
        created = []
        for n, acct in enumerate(self.account_ids, start=1):
            ou = "prod" if n % 2 else "dev"
            self.join(acct, f"sim-{n:02d}", ou)
            session = self.session(acct)
            external_id = new_external_id()  # each customer its own, as onboarding generates it
            session.client("iam").create_role(
                RoleName=self.aws.settings.role_name,
                AssumeRolePolicyDocument=trust_policy(operator, external_id),
            )
            seed_account(session, acct, n, self.aws.settings.regions)
            created.append(
                store.put(
                    Account(
                        account_id=acct,
                        name=f"sim-{n:02d}",
                        ou_path=f"/root/{ou}/",
                        tags={"env": ou},
                        regions=list(self.aws.settings.regions),
                        external_id=external_id,
                        organization_id=organization_id,
                    )
                )
            )
        return created

    def session(self, acct: str) -> AccountSession:
        """An administrator's access to a member account (used to seed and to change things)."""
        return self.aws.in_account(acct, SEED_ROLE)

    # ---- AWS Organizations: the operator account is the management account ---------------------

    @property
    def organizations(self) -> Any:
        return self.aws.client("organizations", ORGANIZATIONS_REGION)

    def organization(self) -> str:
        """The organisation (created once) with the OUs /root/prod/ and /root/dev/; its id."""
        orgs = self.organizations
        try:
            organization_id = orgs.describe_organization()["Organization"]["Id"]
        except orgs.exceptions.AWSOrganizationsNotInUseException:
            organization_id = orgs.create_organization(FeatureSet="ALL")["Organization"]["Id"]
        for name in OUS:
            if name not in self.ou_ids():
                orgs.create_organizational_unit(ParentId=self.root_id(), Name=name)
        return organization_id

    def root_id(self) -> str:
        return self.organizations.list_roots()["Roots"][0]["Id"]

    def ou_ids(self) -> dict[str, str]:
        ous = self.organizations.list_organizational_units_for_parent(ParentId=self.root_id())
        return {ou["Name"]: ou["Id"] for ou in ous["OrganizationalUnits"]}

    def join(self, acct: str, name: str, ou: str) -> None:
        """Make ``acct`` a member account in the OU named ``ou`` (under the root)."""
        orgs = self.organizations
        status = orgs.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
        management = orgs.describe_organization()["Organization"]["MasterAccountId"]
        simulate_account_id(management, status["AccountId"], acct)
        self.move(acct, ou)

    def move(self, acct: str, ou: str) -> None:
        orgs = self.organizations
        source = orgs.list_parents(ChildId=acct)["Parents"][0]["Id"]
        orgs.move_account(AccountId=acct, SourceParentId=source, DestinationParentId=self.ou_ids()[ou])


def simulate_account_id(management: str, generated: str, acct: str) -> None:
    """CreateAccount picks the new account's id; the simulated org's ids are fixed: renumber the
    member in moto's backend (AWS's API cannot choose an account id)."""
    member = organizations_backends[management]["aws"].get_account_by_id(generated)
    member.id = acct
    organizations_backends.master_accounts[acct] = organizations_backends.master_accounts.pop(generated)


def seed_account(session: AccountSession, acct: str, n: int, regions: tuple[str, ...]) -> None:
    seed_s3(session, acct, n, regions)
    for region in regions:
        seed_ec2(session.client("ec2", region), n, region == regions[0])
    seed_iam(session.client("iam"), acct, n)
    seed_logging(session, acct, n, regions)
    seed_storage(session, acct, n, regions)


# ---- S3 -------------------------------------------------------------------------------------


def seed_s3(session: AccountSession, acct: str, n: int, regions: tuple[str, ...]) -> None:
    s3 = session.client("s3")
    logs, public, shared, secure = (
        f"sim{n:02d}-{name}" for name in ("logs", "public-assets", "shared", "secure")
    )
    s3.create_bucket(Bucket=logs)
    s3.put_bucket_acl(Bucket=logs, ACL="log-delivery-write")
    s3.create_bucket(Bucket=public)
    # Public read, and write in odd accounts; granted one by one: of a grant with several permissions
    # (canned "public-read-write"), moto reports only the first.
    owner = s3.get_bucket_acl(Bucket=public)["Owner"]["ID"]
    write = {"GrantWrite": EVERYONE} if n % 2 else {}
    s3.put_bucket_acl(Bucket=public, GrantFullControl=f'id="{owner}"', GrantRead=EVERYONE, **write)

    other = regions[-1]
    s3_other = session.client("s3", other)
    s3_other.create_bucket(Bucket=shared, CreateBucketConfiguration={"LocationConstraint": other})
    read = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{shared}/*",
    }
    if n % 2 == 0:  # restricted to the organisation: not public
        read["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": "o-sim"}}
    s3_other.put_bucket_policy(Bucket=shared, Policy=document(read))

    # The model bucket. MFA Delete is left out: moto's S3 neither stores nor reports it.
    s3.create_bucket(Bucket=secure)
    s3.put_public_access_block(Bucket=secure, PublicAccessBlockConfiguration=ALL_PAB)
    s3.put_bucket_encryption(
        Bucket=secure,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    )
    s3.put_bucket_versioning(Bucket=secure, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_logging(
        Bucket=secure,
        BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": logs, "TargetPrefix": "secure/"}},
    )
    s3.put_bucket_ownership_controls(
        Bucket=secure, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    )
    deny_http = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{secure}", f"arn:aws:s3:::{secure}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    s3.put_bucket_policy(Bucket=secure, Policy=document(deny_http))
    s3.put_bucket_tagging(Bucket=secure, Tagging={"TagSet": [{"Key": "data-class", "Value": "restricted"}]})
    if n % 2 == 0:
        session.client("s3control").put_public_access_block(
            AccountId=acct, PublicAccessBlockConfiguration=ALL_PAB
        )


# ---- EC2 ------------------------------------------------------------------------------------


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
    subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"][0]["SubnetId"]
    for name, tokens, public, group in (
        ("legacy-web", "optional", True, "ssh-open"),
        ("app", "required", False, "web"),
    ):
        ec2.run_instances(
            ImageId=ami,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.micro",
            NetworkInterfaces=[
                {
                    "DeviceIndex": 0,
                    "SubnetId": subnet,
                    "AssociatePublicIpAddress": public,
                    "Groups": [groups[group]],
                }
            ],
            MetadataOptions={"HttpTokens": tokens, "HttpEndpoint": "enabled"},
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}],
        )

    zone = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    plain = ec2.create_volume(AvailabilityZone=zone, Size=8, Encrypted=False)["VolumeId"]
    ec2.create_volume(AvailabilityZone=zone, Size=8, Encrypted=True)
    public_snapshot = ec2.create_snapshot(VolumeId=plain, Description="shared build cache")["SnapshotId"]
    ec2.create_snapshot(VolumeId=plain, Description="nightly backup")
    if home:
        ec2.modify_snapshot_attribute(
            SnapshotId=public_snapshot,
            Attribute="createVolumePermission",
            OperationType="add",
            GroupNames=["all"],
        )
    logged_vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    ec2.create_flow_logs(  # to the bucket itself: moto rejects a destination with a prefix
        ResourceIds=[logged_vpc],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="s3",
        LogDestination=f"arn:aws:s3:::sim{n:02d}-logs",
    )
    if n % 2 == 0 or not home:
        ec2.enable_ebs_encryption_by_default()


# ---- IAM ------------------------------------------------------------------------------------


def seed_iam(iam: Any, acct: str, n: int) -> None:
    iam.create_user(UserName="alice")  # console user, no MFA, a stale key never used
    iam.create_login_profile(UserName="alice", Password="Sim-Passw0rd!x")
    iam.create_access_key(UserName="alice")

    iam.create_user(UserName="bob")  # console user with MFA, permissions through a group
    iam.create_login_profile(UserName="bob", Password="Sim-Passw0rd!y")
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="bob")["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(
        UserName="bob", SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321"
    )

    iam.create_user(UserName="ci-bot")  # machine user: two active keys, admin attached directly
    iam.create_access_key(UserName="ci-bot")
    iam.create_access_key(UserName="ci-bot")
    iam.attach_user_policy(UserName="ci-bot", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    iam.put_user_policy(UserName="ci-bot", PolicyName="everything", PolicyDocument=ADMIN)
    simulate_key_history(acct, "alice", rotated_days=120, used_days=None)
    simulate_key_history(acct, "ci-bot", rotated_days=30, used_days=1)

    logs = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"arn:aws:s3:::sim{n:02d}-logs/*"}
    iam.create_group(GroupName="admins")
    iam.put_group_policy(GroupName="admins", PolicyName="admin", PolicyDocument=ADMIN)
    iam.add_user_to_group(GroupName="admins", UserName="bob")
    iam.create_group(GroupName="auditors")
    iam.put_group_policy(GroupName="auditors", PolicyName="read-logs", PolicyDocument=document(logs))
    too_broad = iam.create_policy(PolicyName="too-broad", PolicyDocument=ADMIN)["Policy"]["Arn"]
    iam.attach_group_policy(GroupName="admins", PolicyArn=too_broad)  # CIS 1.16 audits attached ones
    iam.create_policy(PolicyName="read-logs", PolicyDocument=document(logs))

    partner = {"AWS": "arn:aws:iam::999988887777:root"}
    iam.create_role(RoleName="partner-audit", AssumeRolePolicyDocument=trust(partner))  # no ExternalId
    iam.create_role(
        RoleName="deployer", AssumeRolePolicyDocument=trust({"Service": "codebuild.amazonaws.com"})
    )
    iam.put_role_policy(RoleName="deployer", PolicyName="all-but-iam", PolicyDocument=ALL_BUT_IAM)
    if n % 2:
        iam.create_role(RoleName="anyone", AssumeRolePolicyDocument=trust({"AWS": "*"}))
    else:
        iam.create_role(
            RoleName="support", AssumeRolePolicyDocument=trust({"AWS": f"arn:aws:iam::{acct}:root"})
        )
        iam.attach_role_policy(RoleName="support", PolicyArn="arn:aws:iam::aws:policy/AWSSupportAccess")

    if n % 2:
        iam.update_account_password_policy(MinimumPasswordLength=8, RequireSymbols=False)
    else:
        iam.update_account_password_policy(
            MinimumPasswordLength=14,
            RequireSymbols=True,
            RequireNumbers=True,
            RequireUppercaseCharacters=True,
            RequireLowercaseCharacters=True,
            PasswordReusePrevention=24,
            MaxPasswordAge=90,
        )
    simulate_root(acct, careless=bool(n % 2))


def days_ago(days: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def simulate_key_history(acct: str, user: str, rotated_days: int, used_days: int | None) -> None:
    """AWS's API cannot backdate a key or record its use: set the first key's history in moto."""
    key = iam_backends[acct]["aws"].users[user].access_keys[0]
    key.create_date = days_ago(rotated_days)
    if used_days is not None:
        key.last_used = AccessKeyLastUsed(days_ago(used_days), "s3", "us-east-1")


def simulate_root(acct: str, careless: bool) -> None:
    """moto has no root user: its account summary says no MFA and no root keys, and its credential
    report has no <root_account> row. Stand in for AWS: a careless account's root has an access key
    used yesterday and no MFA; the others' root has MFA and has not been used."""
    backend = iam_backends[acct]["aws"]
    if not careless:
        backend.account_summary._account_mfa_enabled = 1
        return
    backend.account_summary._account_access_keys_present = 1
    created, used = (days_ago(d).strftime("%Y-%m-%dT%H:%M:%S+00:00") for d in (700, 1))
    row = (
        f"<root_account>,arn:aws:iam::{acct}:root,{created},not_supported,{used},not_supported,not_supported,"
        f"false,true,{created},{used},us-east-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A"
    )
    report = backend.get_credential_report

    def with_root() -> str:
        header, _, users = report().partition("\n")
        return f"{header}\n{row}\n{users}"

    backend.get_credential_report = with_root  # type: ignore[method-assign]
