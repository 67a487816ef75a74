"""The simulated organisation's storage, network and account-security seed: RDS, EFS, an Application
Load Balancer, Security Hub, network ACLs, IAM server certificates, instance roles and
AWSCloudShellFullAccess. Odd accounts are
the careless ones (n % 2 == 1), even ones compliant, so each policy fails and passes somewhere.

Every VPC's default network ACL allows all inbound traffic, so it fails CIS 5.1 in every account
(as in AWS); the restricted ACL each region gets passes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from qrie_lib.aws import AccountSession

CLOUDSHELL = "arn:aws:iam::aws:policy/AWSCloudShellFullAccess"
DB_PASSWORD = "sim-not-a-secret-1"  # the emulated database's, never used


def seed_storage(session: AccountSession, acct: str, n: int, regions: tuple[str, ...]) -> None:
    careless = n % 2 == 1
    home = regions[0]
    seed_rds(session.client("ec2", home), session.client("rds", home), careless)
    seed_load_balancer(session.client("ec2", home), session.client("elbv2", home), careless)
    session.client("efs", home).create_file_system(
        CreationToken="shared-files", Encrypted=not careless, Tags=[{"Key": "Name", "Value": "shared-files"}]
    )
    iam = session.client("iam")
    profile = instance_profile(iam)
    for region in regions:
        ec2 = session.client("ec2", region)
        seed_network_acl(ec2)
        give_role(ec2, "app", profile)  # legacy-web keeps none (CIS 1.18)
        if not careless:
            session.client("securityhub", region).enable_security_hub(EnableDefaultStandards=False)
    seed_certificates(iam, careless)
    if careless:
        iam.attach_role_policy(RoleName="deployer", PolicyArn=CLOUDSHELL)


# FSBP ELB.4, ELB.6 and ELB.12: what the careless accounts' load balancer lacks.
TIDY_LOAD_BALANCER = {
    "deletion_protection.enabled": "true",
    "routing.http.drop_invalid_header_fields.enabled": "true",
    "routing.http.desync_mitigation_mode": "strictest",
}


def seed_load_balancer(ec2: Any, elbv2: Any, careless: bool) -> None:
    """An internet-facing Application Load Balancer in two zones: FSBP's tidy attributes in even
    accounts; in odd ones, AWS's defaults but for a desync mitigation mode of monitor."""
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"][:2]]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for i, zone in enumerate(zones)
    ]
    arn = elbv2.create_load_balancer(Name="web-alb", Subnets=subnets, Type="application")["LoadBalancers"][0][
        "LoadBalancerArn"
    ]
    attributes = {"routing.http.desync_mitigation_mode": "monitor"} if careless else TIDY_LOAD_BALANCER
    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=arn, Attributes=[{"Key": k, "Value": v} for k, v in attributes.items()]
    )


def seed_rds(ec2: Any, rds: Any, careless: bool) -> None:
    """A database subnet group (routed to an internet gateway in careless accounts), a PostgreSQL
    instance, an Aurora cluster and a manual snapshot (public in careless accounts)."""
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"][:2]]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for i, zone in enumerate(zones)
    ]
    if careless:
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        main = ec2.describe_route_tables(
            Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}]
        )["RouteTables"][0]["RouteTableId"]
        ec2.create_route(RouteTableId=main, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    rds.create_db_subnet_group(
        DBSubnetGroupName="databases", DBSubnetGroupDescription="db", SubnetIds=subnets
    )
    rds.create_db_instance(
        DBInstanceIdentifier="orders-db",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="orders",
        MasterUserPassword=DB_PASSWORD,
        DBSubnetGroupName="databases",
        PubliclyAccessible=careless,
        StorageEncrypted=not careless,
        AutoMinorVersionUpgrade=not careless,
    )
    rds.create_db_cluster(
        DBClusterIdentifier="analytics",
        Engine="aurora-postgresql",
        MasterUsername="analytics",
        MasterUserPassword=DB_PASSWORD,
        StorageEncrypted=not careless,
    )
    rds.create_db_snapshot(DBSnapshotIdentifier="orders-nightly", DBInstanceIdentifier="orders-db")
    if careless:
        rds.modify_db_snapshot_attribute(
            DBSnapshotIdentifier="orders-nightly", AttributeName="restore", ValuesToAdd=["all"]
        )


def seed_network_acl(ec2: Any) -> None:
    """A restricted ACL on the default VPC: HTTPS from anywhere, SSH from the private range only."""
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    acl = ec2.create_network_acl(
        VpcId=vpc,
        TagSpecifications=[{"ResourceType": "network-acl", "Tags": [{"Key": "Name", "Value": "web"}]}],
    )["NetworkAcl"]["NetworkAclId"]
    for number, port, cidr in ((100, 443, "0.0.0.0/0"), (110, 22, "10.0.0.0/8")):
        ec2.create_network_acl_entry(
            NetworkAclId=acl,
            RuleNumber=number,
            Protocol="6",
            RuleAction="allow",
            Egress=False,
            CidrBlock=cidr,
            PortRange={"From": port, "To": port},
        )


def instance_profile(iam: Any) -> str:
    iam.create_role(
        RoleName="app-instance",
        AssumeRolePolicyDocument=(
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": '
            '{"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}'
        ),
    )
    arn = iam.create_instance_profile(InstanceProfileName="app")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="app", RoleName="app-instance")
    return arn


def give_role(ec2: Any, name: str, profile_arn: str) -> None:
    found = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": [name]}])["Reservations"]
    for instance in (i for r in found for i in r["Instances"]):
        ec2.associate_iam_instance_profile(
            InstanceId=instance["InstanceId"], IamInstanceProfile={"Arn": profile_arn}
        )


def seed_certificates(iam: Any, careless: bool) -> None:
    """A valid certificate everywhere; careless accounts keep one that expired last year."""
    for name, days in (("www", 300), *((("legacy-site", -400),) if careless else ())):
        body, key = self_signed_certificate(f"{name}.example.com", days)
        iam.upload_server_certificate(ServerCertificateName=name, CertificateBody=body, PrivateKey=key)


def self_signed_certificate(common_name: str, valid_days: int) -> tuple[str, str]:
    """A PEM certificate and its key, expiring ``valid_days`` from now (negative: already expired)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=max(0, -valid_days) + 30))
        .not_valid_after(now + timedelta(days=valid_days))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), pem_key.decode()
