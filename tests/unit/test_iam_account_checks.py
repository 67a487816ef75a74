"""CIS 1.6, 1.19 and 1.22: the IAM collector's server certificates, the root's virtual MFA and
AWSCloudShellFullAccess attachments, on moto with the local runtime's emulation (any AWS managed
policy attachable; certificates report their own notAfter), and the policies' fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestration import emulation
from orchestration.seed_storage import self_signed_certificate
from qrie_lib.models import Resource
from qrie_lib.policies.registry import get_policy
from qrie_lib.services import iam
from qrie_lib.timeutil import now_iso
from tests.conftest import CUSTOMER, collect_all, make_ctx

CLOUDSHELL = "arn:aws:iam::aws:policy/AWSCloudShellFullAccess"


@pytest.fixture
def emulated(moto_env: None) -> Iterator[None]:
    emulation.install("GuardedElsewhere")  # the AssumeRole guard is not under test here
    yield
    emulation.uninstall()


def test_any_aws_managed_policy_can_be_attached_and_read(emulated, customer):
    client = customer.client("iam")
    client.create_user(UserName="ops")
    client.attach_user_policy(UserName="ops", PolicyArn=CLOUDSHELL)  # not among the eagerly loaded
    assert client.get_policy(PolicyArn=CLOUDSHELL)["Policy"]["AttachmentCount"] == 1
    with pytest.raises(client.exceptions.NoSuchEntityException):
        client.get_policy(PolicyArn="arn:aws:iam::aws:policy/NoSuchPolicyAnywhere")


def test_server_certificates_report_their_expiry_and_describe_by_name(emulated, aws, customer):
    client = customer.client("iam")
    for name, days in (("www", 300), ("old", -10)):
        body, key = self_signed_certificate(f"{name}.example.com", days)
        client.upload_server_certificate(ServerCertificateName=name, CertificateBody=body, PrivateKey=key)
    ctx = make_ctx(aws)
    kind = iam.SERVICE.kind(iam.SERVER_CERTIFICATE)
    found, _ = collect_all(ctx, kind)
    by_name = {r.configuration["ServerCertificateName"]: r for r in found}
    expiry = {n: datetime.fromisoformat(r.configuration["Expiration"]) for n, r in by_name.items()}
    now = datetime.now(UTC)
    assert now + timedelta(days=299) < expiry["www"] < now + timedelta(days=301)
    assert now - timedelta(days=11) < expiry["old"] < now - timedelta(days=9)
    assert by_name["www"].arn == f"arn:aws:iam::{CUSTOMER}:server-certificate/www"
    assert kind.describe(ctx, "old").configuration == by_name["old"].configuration
    client.delete_server_certificate(ServerCertificateName="old")
    assert kind.describe(ctx, "old") is None


def test_root_carries_its_virtual_mfa_and_cloudshell_attachments(emulated, aws, customer):
    client = customer.client("iam")
    ctx = make_ctx(aws)
    root = iam.describe_root(ctx)
    assert root.configuration["RootVirtualMfa"] is False
    assert root.configuration["CloudShellFullAccessEntities"] == {"Users": [], "Groups": [], "Roles": []}

    client.create_group(GroupName="ops")
    client.attach_group_policy(GroupName="ops", PolicyArn=CLOUDSHELL)
    # moto has no root user: its virtual device, as AWS names it, enabled for a stand-in user
    client.create_user(UserName="stand-in")
    serial = client.create_virtual_mfa_device(VirtualMFADeviceName="root-account-mfa-device")[
        "VirtualMFADevice"
    ]["SerialNumber"]
    assert serial == f"arn:aws:iam::{CUSTOMER}:mfa/root-account-mfa-device"
    client.enable_mfa_device(
        UserName="stand-in", SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321"
    )
    root = iam.describe_root(make_ctx(aws))
    assert root.configuration["RootVirtualMfa"] is True
    assert root.configuration["CloudShellFullAccessEntities"] == {"Users": [], "Groups": ["ops"], "Roles": []}


def resource(resource_type: str, **config: Any) -> Resource:
    return Resource(
        arn="arn:aws:iam::111111111111:x",
        account_id="111111111111",
        service="iam",
        region="global",
        resource_type=resource_type,
        configuration=config,
        describe_time=now_iso(),
    )


def days(n: int) -> str:
    return (datetime.now(UTC) + timedelta(days=n)).strftime("%Y-%m-%dT%H:%M:%SZ")


NOBODY = {"Users": [], "Groups": [], "Roles": []}
CASES = [
    ("IAMRootHardwareMfaDisabled", resource(iam.ROOT_ACCOUNT, AccountMFAEnabled=False), False),
    (
        "IAMRootHardwareMfaDisabled",
        resource(iam.ROOT_ACCOUNT, AccountMFAEnabled=True, RootVirtualMfa=True),
        False,
    ),
    (
        "IAMRootHardwareMfaDisabled",
        resource(iam.ROOT_ACCOUNT, AccountMFAEnabled=True, RootVirtualMfa=False),
        True,
    ),
    ("IAMServerCertificateExpired", resource(iam.SERVER_CERTIFICATE, Expiration=days(-1)), False),
    ("IAMServerCertificateExpired", resource(iam.SERVER_CERTIFICATE, Expiration=days(30)), True),
    (
        "IAMCloudShellFullAccessAttached",
        resource(iam.ROOT_ACCOUNT, CloudShellFullAccessEntities=NOBODY | {"Roles": ["deployer"]}),
        False,
    ),
    (
        "IAMCloudShellFullAccessAttached",
        resource(iam.ROOT_ACCOUNT, CloudShellFullAccessEntities=NOBODY),
        True,
    ),
]


@pytest.mark.parametrize(("policy_id", "target", "compliant"), CASES)
def test_policy(policy_id: str, target: Resource, compliant: bool) -> None:
    assert get_policy(policy_id).evaluate(target, {}).compliant is compliant


def test_attaching_cloudshell_or_support_access_refreshes_the_root_account():
    rule = next(r for r in iam.SERVICE.events if "AttachUserPolicy" in r.event_names)
    detail = {
        "recipientAccountId": CUSTOMER,
        "requestParameters": {"userName": "ops", "policyArn": CLOUDSHELL},
    }
    touched = {(t.resource_type, t.resource_id) for t in rule.touches(detail)}
    assert (iam.ROOT_ACCOUNT, CUSTOMER) in touched
