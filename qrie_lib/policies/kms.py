"""KMS policies: customer managed keys."""

from __future__ import annotations

from functools import partial

from qrie_lib.models import Resource
from qrie_lib.policies.base import COMPLIANT, Policy, Related, Verdict, not_evaluated, violation
from qrie_lib.services.kms import KEY, SYMMETRIC


def rotation_disabled(key: Resource, _: Related) -> Verdict:
    """CIS 3.6: every customer managed key with key spec SYMMETRIC_DEFAULT rotates automatically."""
    c = key.configuration
    if c.get("KeySpec") != SYMMETRIC:
        return COMPLIANT  # rotation does not apply to asymmetric and HMAC keys
    if c.get("KeyState") == "PendingDeletion":  # KMS does not answer its rotation status
        return not_evaluated(KeyState="PendingDeletion")
    return (
        COMPLIANT
        if c.get("KeyRotationEnabled") is True
        else violation(KeyRotationEnabled=c.get("KeyRotationEnabled"))
    )


def pending_deletion(key: Resource, _: Related) -> Verdict:
    c = key.configuration
    if c.get("KeyState") != "PendingDeletion":
        return COMPLIANT
    return violation(KeyState="PendingDeletion", DeletionDate=c.get("DeletionDate"))


declare = partial(Policy, service="kms", resource_type=KEY)

POLICIES: tuple[Policy, ...] = (
    declare(
        policy_id="KmsKeyRotationDisabled",
        title="KMS key rotation is not enabled",
        description=(
            "A customer managed symmetric encryption key (SYMMETRIC_DEFAULT) does not rotate its key "
            "material yearly."
        ),
        severity=45,
        remediation="aws kms enable-key-rotation --key-id KEY",
        rule=rotation_disabled,
        compliance=("CIS AWS Foundations v3.0 3.6",),
        needs={"KeyRotationEnabled": "GetKeyRotationStatus"},
    ),
    declare(
        policy_id="KmsKeyPendingDeletion",
        title="KMS key is scheduled for deletion",
        description=(
            "A customer managed key is pending deletion: once deleted, whatever it encrypted cannot be "
            "decrypted. Cancel it unless nothing uses the key."
        ),
        severity=60,
        remediation="aws kms cancel-key-deletion --key-id KEY; aws kms enable-key --key-id KEY",
        rule=pending_deletion,
        compliance=("AWS FSBP v1.0.0 KMS.3",),
    ),
)
