"""Where moto's emulation falls short of AWS in ways Qrie depends on, and the one place that
closes each gap (installed by the local runtime and by the tests):

- AssumeRole: moto lets anyone assume any ARN; AWS refuses a role that does not exist or whose
  trust policy's ``sts:ExternalId`` condition does not match. Without this the simulated
  organisation could not show a failing account.
- GetEbsDefaultKmsKeyId is not implemented: answer what AWS answers before a key is chosen.
- DescribeSnapshots ignores ``OwnerIds`` and ``RestorableByUserIds``: honour them (the EC2
  collector finds public snapshots with one ``RestorableByUserIds=["all"]`` listing a page).
- S3 ignores ``ExpectedBucketOwner``: answer 403 AccessDenied, as S3 does, when the bucket belongs
  to another account (the collectors pass it on every bucket call, so a bucket named in another
  account's event is never described as theirs).
- moto loads ~1,000 AWS managed policies into every IAM backend it creates (one per account and
  partition), seconds per simulated account: keep the few the simulated org attaches.
"""

from __future__ import annotations

import json
from typing import Any

import moto.iam.models
from moto.core.responses import ActionResult
from moto.ec2.responses import EC2Response
from moto.iam.models import iam_backends
from moto.s3.exceptions import S3ClientError
from moto.s3.models import s3_backends
from moto.s3.responses import S3Response
from moto.sts.exceptions import STSClientError
from moto.sts.models import STSBackend

MANAGED_POLICIES = (
    "AdministratorAccess",
    "AWSSupportAccess",
    "SecurityAudit",
    "ViewOnlyAccess",
    "ReadOnlyAccess",
)


def install(role_name: str) -> None:
    guard_assume_role(role_name)
    EC2Response.get_ebs_default_kms_key_id = default_ebs_kms_key  # type: ignore[attr-defined]
    EC2Response.describe_snapshots = describe_snapshots  # type: ignore[method-assign]
    S3Response._bucket_response = bucket_response_checking_owner  # type: ignore[method-assign]
    catalogue = json.loads(moto.iam.models.aws_managed_policies_data)
    if len(catalogue) > len(MANAGED_POLICIES):
        moto.iam.models.aws_managed_policies_data = json.dumps(
            {name: catalogue[name] for name in MANAGED_POLICIES if name in catalogue}
        )


def default_ebs_kms_key(self: EC2Response) -> ActionResult:
    return ActionResult({"KmsKeyId": "alias/aws/ebs"})


ORIGINAL_DESCRIBE_SNAPSHOTS = EC2Response.describe_snapshots
ORIGINAL_BUCKET_RESPONSE = S3Response._bucket_response


def describe_snapshots(self: EC2Response) -> ActionResult:
    """DescribeSnapshots honouring ``OwnerIds`` (``self`` included) and ``RestorableByUserIds``
    (``all``: shared publicly; an account id: shared with it, or publicly)."""
    snapshots = self.ec2_backend.describe_snapshots(
        snapshot_ids=self._get_param("SnapshotIds", []), filters=self._filters_from_querystring()
    )
    owners = {self.current_account if o == "self" else o for o in self._get_param("OwnerIds", [])}
    restorable = set(self._get_param("RestorableByUserIds", []))
    return ActionResult(
        {
            "Snapshots": [
                s
                for s in snapshots
                if (not owners or s.owner_id in owners)
                and (
                    not restorable
                    or "all" in s.create_volume_permission_groups
                    or bool(restorable & s.create_volume_permission_userids)
                )
            ]
        }
    )


def bucket_response_checking_owner(self: S3Response, request: Any, full_url: str) -> Any:
    expected = request.headers.get("x-amz-expected-bucket-owner")
    bucket = self.parse_bucket_name_from_url(request, full_url)
    if expected and bucket in s3_backends.bucket_accounts:
        _, owner = s3_backends.bucket_accounts[bucket]
        if owner != expected:
            raise S3ClientError("AccessDenied", "Access Denied")
    return ORIGINAL_BUCKET_RESPONSE(self, request, full_url)


class AccessDenied(STSClientError):
    def __init__(self, message: str) -> None:
        super().__init__("AccessDenied", message)


ORIGINAL_ASSUME_ROLE = STSBackend.assume_role


def uninstall() -> None:
    """Back to plain moto (tests that use moto directly share the process with the runtime's)."""
    STSBackend.assume_role = ORIGINAL_ASSUME_ROLE  # type: ignore[method-assign]
    EC2Response.describe_snapshots = ORIGINAL_DESCRIBE_SNAPSHOTS  # type: ignore[method-assign]
    S3Response._bucket_response = ORIGINAL_BUCKET_RESPONSE  # type: ignore[method-assign]


def guard_assume_role(role_name: str) -> None:
    def assume_role(
        self: STSBackend,
        region_name: str,
        role_session_name: str,
        role_arn: str,
        policy: str,
        duration: int,
        external_id: str,
    ) -> Any:
        account, _, name = role_arn.split(":", 4)[4].partition(":role/")
        if name.rsplit("/", 1)[-1] == role_name:
            check(account, name, role_arn, external_id)
        return ORIGINAL_ASSUME_ROLE(
            self, region_name, role_session_name, role_arn, policy, duration, external_id
        )

    STSBackend.assume_role = assume_role  # type: ignore[method-assign]


def check(account: str, name: str, role_arn: str, external_id: str | None) -> None:
    roles = [r for r in iam_backends[account]["aws"].roles.values() if r.name == name.rsplit("/", 1)[-1]]
    if not roles:
        raise AccessDenied(f"not authorized to perform sts:AssumeRole on {role_arn}")
    trust = json.loads(roles[0].assume_role_policy_document)
    required = {
        str(value)
        for statement in trust.get("Statement", [])
        for value in _as_list(statement.get("Condition", {}).get("StringEquals", {}).get("sts:ExternalId"))
    }
    if required and external_id not in required:
        raise AccessDenied(f"not authorized to perform sts:AssumeRole on {role_arn} (ExternalId)")


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else value if isinstance(value, list) else [value]
