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
- moto finds the account of every request by looking for its access key in every account's IAM
  backend: each call cost O(accounts), so creating 1,000 simulated accounts, and every call of a
  run over them, grew with the organisation. The emulation remembers which account a key was
  found in (and which keys are in none, as the operator's are) and checks that entry first.
- DynamoDB: moto's Query sorts the whole table and its transactions deep-copy whole tables
  (``dynamodb_emulation``).
- moto loads ~1,000 AWS managed policies into every IAM backend it creates (one per account and
  partition), seconds per simulated account: keep the few the simulated org attaches, and load any
  other one from moto's catalogue on its first reference (attach, get), as every AWS account has
  them all.
- IAM server certificates: moto reports the same 2012 Expiration for every one; AWS reports the
  certificate's own notAfter (CIS 1.19 reads it).
- CloudTrail's event history (LookupEvents) is not emulated: answer it from the records given to
  ``record_trail_event`` (what CloudTrail would have recorded), newest first, 50 a page.
"""

from __future__ import annotations

import json
from typing import Any

import moto.iam.models
from moto.cloudtrail.responses import CloudTrailResponse
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.botocore_stubber import BotocoreStubber
from moto.core.responses import ActionResult
from moto.ec2.responses import EC2Response
from moto.iam.models import PARTITION_NAMES, AWSManagedPolicy, IAMBackend, iam_backends
from moto.iam.responses import IamResponse
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.s3.exceptions import S3ClientError
from moto.s3.models import s3_backends
from moto.s3.responses import S3Response
from moto.sts.exceptions import STSClientError
from moto.sts.models import STSBackend

from orchestration import dynamodb_emulation

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
        FULL_CATALOGUE.update(catalogue)
        moto.iam.models.aws_managed_policies_data = json.dumps(
            {name: catalogue[name] for name in MANAGED_POLICIES if name in catalogue}
        )
    for name in LAZY_POLICY_METHODS:
        setattr(IAMBackend, name, loading_managed_policy(ORIGINAL_POLICY_METHODS[name]))
    for name in CERTIFICATE_ANSWERS:
        setattr(IamResponse, name, with_certificate_expiry(ORIGINAL_CERTIFICATE_ANSWERS[name]))
    BotocoreStubber.process_request = stub_answering_not_emulated  # type: ignore[method-assign]
    DomainDispatcherApplication.__call__ = server_answering_not_emulated  # type: ignore[method-assign]
    moto.iam.models.get_account_id_from = account_of_access_key
    CloudTrailResponse.lookup_events = lookup_events  # type: ignore[attr-defined]
    dynamodb_emulation.install()


# ---- the account of an access key -------------------------------------------------------------

ORIGINAL_ACCOUNT_OF_KEY = moto.iam.models.get_account_id_from
KEY_ACCOUNTS: dict[str, str | None] = {}  # access key -> the account whose IAM holds it (None: none)


def account_of_access_key(access_key: str) -> str:
    """moto's answer, from the remembered account when the key is still there. A key in no
    account (the operator's fake credentials) stays in none: moto generates keys at random."""
    if access_key in KEY_ACCOUNTS:
        account = KEY_ACCOUNTS[access_key]
        if account is None:
            return DEFAULT_ACCOUNT_ID
        if holds_key(account, access_key):
            return account
    found = ORIGINAL_ACCOUNT_OF_KEY(access_key)  # the default account also when no account holds it
    KEY_ACCOUNTS[access_key] = found if holds_key(found, access_key) else None
    return found


def holds_key(account: str, access_key: str) -> bool:
    return any(access_key in iam_backends[account][p].access_keys for p in PARTITION_NAMES)


# ---- services moto does not emulate ----------------------------------------------------------
# moto answers them "404 Not yet implemented" in process and 500 from its server (which botocore
# retries ten times). The emulation answers one named, non-retried error instead, so a collector
# records "not evaluated" at once rather than guessing or failing its item.

NOT_EMULATED = ("access-analyzer",)  # signing names
NOT_EMULATED_STATUS = 501
ORIGINAL_STUB_PROCESS = BotocoreStubber.process_request
ORIGINAL_SERVER_CALL = DomainDispatcherApplication.__call__


def not_emulated_service(authorization: str | bytes | None) -> str | None:
    """The signing name in a SigV4 ``Authorization`` header, if moto does not emulate it."""
    if isinstance(authorization, bytes):
        authorization = authorization.decode("latin-1")
    try:
        service = (authorization or "").split("Credential=", 1)[1].split(",", 1)[0].split("/")[3]
    except IndexError:
        return None
    return service if service in NOT_EMULATED else None


def not_emulated_answer(service: str) -> tuple[int, dict[str, str], str]:
    body = json.dumps({"__type": "NotEmulated", "message": f"{service} is not emulated locally"})
    return NOT_EMULATED_STATUS, {"x-amzn-ErrorType": "NotEmulated", "Content-Type": "application/json"}, body


def stub_answering_not_emulated(self: BotocoreStubber, request: Any) -> Any:
    service = not_emulated_service(request.headers.get("Authorization"))
    return not_emulated_answer(service) if service else ORIGINAL_STUB_PROCESS(self, request)


def server_answering_not_emulated(
    self: DomainDispatcherApplication, environ: dict, start_response: Any
) -> Any:
    service = not_emulated_service(environ.get("HTTP_AUTHORIZATION"))
    if service is None:
        return ORIGINAL_SERVER_CALL(self, environ, start_response)
    status, headers, body = not_emulated_answer(service)
    start_response(f"{status} Not Implemented", list(headers.items()))
    return [body.encode()]


FULL_CATALOGUE: dict[str, Any] = {}  # moto's AWS managed policies by name, loaded on first reference
LAZY_POLICY_METHODS = (  # the backend's calls that look a policy up by ARN first
    "attach_role_policy",
    "attach_user_policy",
    "attach_group_policy",
    "get_policy",
    "get_policy_version",
    "list_policy_versions",
)
ORIGINAL_POLICY_METHODS = {name: getattr(IAMBackend, name) for name in LAZY_POLICY_METHODS}


def loading_managed_policy(original: Any) -> Any:
    def method(self: IAMBackend, *args: Any, **kwargs: Any) -> Any:
        arn = kwargs.get("policy_arn", args[0] if args else None)
        name = str(arn).rsplit("/", 1)[-1]
        if (
            isinstance(arn, str)
            and ":iam::aws:policy/" in arn
            and arn not in self.managed_policies
            and name in FULL_CATALOGUE
        ):
            policy = AWSManagedPolicy.from_data(name, self.account_id, self.region_name, FULL_CATALOGUE[name])
            if policy.arn == arn:
                self.aws_managed_policies.append(policy)
                self.managed_policies[policy.arn] = policy
        return original(self, *args, **kwargs)

    return method


CERTIFICATE_ANSWERS = ("upload_server_certificate", "list_server_certificates", "get_server_certificate")
ORIGINAL_CERTIFICATE_ANSWERS = {name: getattr(IamResponse, name) for name in CERTIFICATE_ANSWERS}


def certificate_expiry(account_id: str, name: str) -> str | None:
    """The certificate's notAfter, as AWS reports its Expiration."""
    from cryptography import x509  # moto's own dependency

    for backend in iam_backends[account_id].values():
        for certificate in backend.certificates.values():
            if certificate.cert_name == name:
                parsed = x509.load_pem_x509_certificate(certificate.cert_body.encode())
                return parsed.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


def with_certificate_expiry(original: Any) -> Any:
    def answer(self: IamResponse) -> Any:
        result = original(self)
        found = result.result if isinstance(result, ActionResult) else None
        if isinstance(found, dict):
            nested = found.get("ServerCertificate", found)
            listed = found.get("ServerCertificateMetadataList") or [nested.get("ServerCertificateMetadata")]
            for metadata in (m for m in listed if isinstance(m, dict)):
                try:
                    expiry = certificate_expiry(self.current_account, metadata["ServerCertificateName"])
                except ValueError:  # not a PEM certificate: moto's fixed date stays
                    expiry = None
                metadata["Expiration"] = expiry or metadata.get("Expiration")
        return result

    return answer


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


# ---- CloudTrail's event history ----------------------------------------------------------------

TRAIL_HISTORY: dict[tuple[str, str], list[dict[str, Any]]] = {}  # (account, region) -> records
LOOKUP_PAGE = 50  # LookupEvents' MaxResults, at most


def record_trail_event(record: dict[str, Any]) -> None:
    """What CloudTrail records of a management event, in its account's and region's history."""
    TRAIL_HISTORY.setdefault((record["recipientAccountId"], record["awsRegion"]), []).append(record)


def lookup_events(self: CloudTrailResponse) -> str:
    start, end = self._get_param("StartTime") or 0, self._get_param("EndTime") or float("inf")
    wanted = {a["AttributeKey"]: a["AttributeValue"] for a in self._get_param("LookupAttributes") or []}
    found = [
        r
        for r in TRAIL_HISTORY.get((self.current_account, self.region), [])
        if start <= _epoch(r["eventTime"]) <= end and wanted.get("ReadOnly", _read_only(r)) == _read_only(r)
    ]
    found.sort(key=lambda r: r["eventTime"], reverse=True)
    offset, size = (
        int(self._get_param("NextToken") or 0),
        min(self._get_param("MaxResults") or 50, LOOKUP_PAGE),
    )
    page = found[offset : offset + size]
    answer: dict[str, Any] = {
        "Events": [
            {
                "EventId": r["eventID"],
                "EventName": r["eventName"],
                "EventSource": r["eventSource"],
                "EventTime": _epoch(r["eventTime"]),
                "ReadOnly": _read_only(r),
                "CloudTrailEvent": json.dumps(r),
            }
            for r in page
        ]
    }
    if offset + size < len(found):
        answer["NextToken"] = str(offset + size)
    return json.dumps(answer)


def _read_only(record: dict[str, Any]) -> str:
    return str(record.get("readOnly", False)).lower()


def _epoch(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def uninstall() -> None:
    """Back to plain moto (tests that use moto directly share the process with the runtime's)."""
    STSBackend.assume_role = ORIGINAL_ASSUME_ROLE  # type: ignore[method-assign]
    EC2Response.describe_snapshots = ORIGINAL_DESCRIBE_SNAPSHOTS  # type: ignore[method-assign]
    S3Response._bucket_response = ORIGINAL_BUCKET_RESPONSE  # type: ignore[method-assign]
    for name, method in ORIGINAL_POLICY_METHODS.items():
        setattr(IAMBackend, name, method)
    for name, method in ORIGINAL_CERTIFICATE_ANSWERS.items():
        setattr(IamResponse, name, method)
    BotocoreStubber.process_request = ORIGINAL_STUB_PROCESS  # type: ignore[method-assign]
    moto.iam.models.get_account_id_from = ORIGINAL_ACCOUNT_OF_KEY
    KEY_ACCOUNTS.clear()
    if hasattr(CloudTrailResponse, "lookup_events"):
        del CloudTrailResponse.lookup_events  # type: ignore[attr-defined]
    TRAIL_HISTORY.clear()
    dynamodb_emulation.uninstall()
    DomainDispatcherApplication.__call__ = ORIGINAL_SERVER_CALL  # type: ignore[method-assign]


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
