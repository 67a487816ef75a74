"""EFS policies."""

from __future__ import annotations

from qrie_lib.models import Resource
from qrie_lib.policies.base import COMPLIANT, Policy, Related, Verdict, violation
from qrie_lib.services.efs import FILE_SYSTEM


def unencrypted(fs: Resource, _: Related) -> Verdict:
    return COMPLIANT if fs.configuration.get("Encrypted") else violation(Encrypted=False)


POLICIES: tuple[Policy, ...] = (
    Policy(
        policy_id="EFSFileSystemUnencrypted",
        service="efs",
        resource_type=FILE_SYSTEM,
        title="EFS file system is not encrypted at rest",
        description="The file system's Encrypted is false: its data at rest is not encrypted with KMS.",
        severity=60,
        remediation=(
            "Encryption is set at creation: aws efs create-file-system --encrypted --kms-key-id KEY, copy "
            "the data over (AWS DataSync), then aws efs delete-file-system --file-system-id OLD."
        ),
        rule=unencrypted,
        compliance=("CIS AWS Foundations v3.0 2.4.1", "AWS FSBP v1.0.0 EFS.1"),
    ),
)
