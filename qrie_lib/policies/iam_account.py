"""IAM checks of CIS v3.0 kept apart from ``iam.py``'s: the root's hardware MFA (1.6), expired
server certificates (1.19) and AWSCloudShellFullAccess attachments (1.22)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

from qrie_lib.models import Resource
from qrie_lib.policies.base import COMPLIANT, Policy, Related, Verdict, violation
from qrie_lib.services.iam import ROOT_ACCOUNT, SERVER_CERTIFICATE
from qrie_lib.timeutil import parse_iso


def root_mfa_not_hardware(root: Resource, _: Related) -> Verdict:
    """CIS 1.6's audit: AccountMFAEnabled, and the root's MFA is not the virtual device
    ``arn:aws:iam::<account>:mfa/root-account-mfa-device`` that ListVirtualMFADevices lists."""
    config = root.configuration
    if not config.get("AccountMFAEnabled"):
        return violation(AccountMFAEnabled=False)
    return violation(AccountMFAEnabled=True, VirtualMfa=True) if config.get("RootVirtualMfa") else COMPLIANT


def certificate_expired(certificate: Resource, _: Related) -> Verdict:
    expiration = certificate.configuration.get("Expiration")
    if expiration and parse_iso(expiration) < datetime.now(UTC):
        return violation(Expiration=expiration)
    return COMPLIANT


def cloudshell_attached(root: Resource, _: Related) -> Verdict:
    entities = root.configuration.get("CloudShellFullAccessEntities") or {}
    attached = {kind: names for kind, names in entities.items() if names}
    return (
        violation(PolicyArn="arn:aws:iam::aws:policy/AWSCloudShellFullAccess", **attached)
        if attached
        else COMPLIANT
    )


declare = partial(Policy, service="iam")

POLICIES: tuple[Policy, ...] = (
    declare(
        policy_id="IAMRootHardwareMfaDisabled",
        resource_type=ROOT_ACCOUNT,
        title="Root user has no hardware MFA",
        description=(
            "The root user has no MFA, or its MFA is the virtual device "
            "arn:aws:iam::ACCOUNT:mfa/root-account-mfa-device (CIS 1.6, Level 2)."
        ),
        severity=50,
        remediation=(
            "Sign in as root → Security credentials → Multi-factor authentication → assign a hardware "
            "TOTP token or FIDO security key, then remove the virtual device."
        ),
        rule=root_mfa_not_hardware,
        compliance=("CIS AWS Foundations v3.0 1.6", "AWS FSBP v1.0.0 IAM.6"),
    ),
    declare(
        policy_id="IAMServerCertificateExpired",
        resource_type=SERVER_CERTIFICATE,
        title="Expired SSL/TLS certificate stored in IAM",
        description="A server certificate stored in IAM is past its Expiration date.",
        severity=40,
        remediation=(
            "Move the load balancer or distribution using it to a valid certificate, then aws iam "
            "delete-server-certificate --server-certificate-name NAME."
        ),
        rule=certificate_expired,
        compliance=("CIS AWS Foundations v3.0 1.19",),
        ages=True,
    ),
    declare(
        policy_id="IAMCloudShellFullAccessAttached",
        resource_type=ROOT_ACCOUNT,
        title="AWSCloudShellFullAccess is attached",
        description=(
            "The AWS managed policy AWSCloudShellFullAccess (file transfer in and out of CloudShell, "
            "sudo, internet access) is attached to a user, group or role (CIS 1.22, manual: its "
            "console audit asks for no attached entity)."
        ),
        severity=40,
        remediation=(
            "Detach it (aws iam detach-user-policy / detach-group-policy / detach-role-policy --policy-arn "
            "arn:aws:iam::aws:policy/AWSCloudShellFullAccess) and grant a policy denying "
            "cloudshell:GetFileDownloadUrls and cloudshell:GetFileUploadUrls."
        ),
        rule=cloudshell_attached,
        compliance=("CIS AWS Foundations v3.0 1.22",),
    ),
)
