"""KMS (regional): customer managed keys (AWS managed keys are skipped), with their rotation
status for symmetric encryption keys. A page is one ListKeys; a key costs DescribeKey, plus
GetKeyRotationStatus for a symmetric key not pending deletion."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from qrie_lib.aws import error_code
from qrie_lib.models import Resource
from qrie_lib.services.base import (
    CollectContext,
    EventRule,
    Page,
    ResourceCalls,
    ResourceKind,
    Service,
    Touch,
    require,
)
from qrie_lib.timeutil import now_iso

KEY = "AWS::KMS::Key"
SYMMETRIC = "SYMMETRIC_DEFAULT"
METADATA_KEYS = ("KeyId", "Arn", "KeyManager", "KeySpec", "KeyUsage", "KeyState", "Origin", "DeletionDate")
MIN_PAGE, MAX_PAGE = 1, 1000  # ListKeys' Limit


def key_arn(ctx: CollectContext, key_id: str) -> str:
    return key_id if key_id.startswith("arn:") else f"arn:aws:kms:{ctx.region}:{ctx.account_id}:key/{key_id}"


def read_key(ctx: CollectContext, key_id: str, describe_time: str) -> Resource | None:
    """A customer managed key; None if it is gone or AWS manages it."""
    kms, calls = ctx.client("kms"), ResourceCalls()
    try:
        metadata = require(kms.describe_key(KeyId=key_id), "KeyMetadata", "DescribeKey")
    except ClientError as exc:
        if error_code(exc) in ("NotFoundException", "InvalidArnException"):
            return None
        raise
    if metadata.get("KeyManager") != "CUSTOMER":
        return None
    config: dict[str, Any] = {k: metadata.get(k) for k in METADATA_KEYS}
    # Rotation applies to symmetric keys only; KMS refuses the question for a key pending deletion.
    if metadata.get("KeySpec") == SYMMETRIC and metadata.get("KeyState") != "PendingDeletion":
        status = calls.call(
            "GetKeyRotationStatus", lambda: kms.get_key_rotation_status(KeyId=metadata["KeyId"])
        )
        config["KeyRotationEnabled"] = None if status is None else bool(status.get("KeyRotationEnabled"))
    else:
        config["KeyRotationEnabled"] = None
    return ctx.resource(
        service="kms",
        resource_type=KEY,
        arn=require(metadata, "Arn", "DescribeKey"),
        configuration=calls.stamp(config),
        describe_time=describe_time,
    )


def list_keys(ctx: CollectContext, token: str | None) -> Page:
    describe_time = now_iso()
    paging = {"Limit": min(max(ctx.page_size, MIN_PAGE), MAX_PAGE)} | ({"Marker": token} if token else {})
    answer = ctx.client("kms").list_keys(**paging)
    keys = [require(k, "KeyId", "ListKeys") for k in require(answer, "Keys", "ListKeys")]
    found = ctx.each(lambda key: read_key(ctx, key, describe_time), keys)
    return Page(
        [r for r in found if r is not None], answer.get("NextMarker") if answer.get("Truncated") else None
    )


def describe_key(ctx: CollectContext, key_id: str) -> Resource | None:
    return read_key(ctx, key_id, now_iso())


def key_touch(detail: dict[str, Any]) -> Iterable[Touch]:
    request = detail.get("requestParameters") or {}
    metadata = (detail.get("responseElements") or {}).get("keyMetadata") or {}
    key = metadata.get("keyId") or request.get("keyId")
    return [Touch(KEY, key)] if isinstance(key, str) and key else []


SERVICE = Service(
    name="kms",
    regional=True,
    read_actions=("kms:ListKeys", "kms:DescribeKey", "kms:GetKeyRotationStatus"),
    kinds=(ResourceKind(KEY, list_keys, describe_key, key_arn),),
    event_source="kms.amazonaws.com",
    events=(
        EventRule(
            (
                "CreateKey",
                "EnableKeyRotation",
                "DisableKeyRotation",
                "ScheduleKeyDeletion",
                "CancelKeyDeletion",
                "EnableKey",
                "DisableKey",
            ),
            key_touch,
        ),
    ),
)
