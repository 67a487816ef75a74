"""EFS (regional): file systems. A page is one DescribeFileSystems (full descriptions, tags
included)."""

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
    ResourceKind,
    Service,
    Touch,
    require,
    tags_dict,
)
from qrie_lib.timeutil import now_iso

FILE_SYSTEM = "AWS::EFS::FileSystem"
MAX_ITEMS = 100  # DescribeFileSystems' page maximum (its default)


def file_system_arn(ctx: CollectContext, fsid: str) -> str:
    return f"arn:aws:elasticfilesystem:{ctx.region}:{ctx.account_id}:file-system/{fsid}"


def file_system(ctx: CollectContext, fs: dict[str, Any], t: str) -> Resource:
    fsid = require(fs, "FileSystemId", "DescribeFileSystems")
    config = {
        "FileSystemId": fsid,
        "Name": fs.get("Name"),
        "Encrypted": bool(fs.get("Encrypted")),
        "KmsKeyId": fs.get("KmsKeyId"),
        "LifeCycleState": fs.get("LifeCycleState"),
        "PerformanceMode": fs.get("PerformanceMode"),
        "ThroughputMode": fs.get("ThroughputMode"),
        "NumberOfMountTargets": fs.get("NumberOfMountTargets"),
    }
    return ctx.resource(
        service="efs",
        resource_type=FILE_SYSTEM,
        arn=file_system_arn(ctx, fsid),
        configuration=config,
        tags=tags_dict(fs.get("Tags")),
        describe_time=t,
    )


def list_file_systems(ctx: CollectContext, token: str | None) -> Page:
    t = now_iso()
    size = min(max(ctx.page_size, 1), MAX_ITEMS)
    answer = ctx.client("efs").describe_file_systems(MaxItems=size, **({"Marker": token} if token else {}))
    items = require(answer, "FileSystems", "DescribeFileSystems")
    return Page([file_system(ctx, fs, t) for fs in items], answer.get("NextMarker") or None)


def describe_file_system(ctx: CollectContext, fsid: str) -> Resource | None:
    t = now_iso()
    try:
        answer = ctx.client("efs").describe_file_systems(FileSystemId=fsid)
    except ClientError as exc:
        if error_code(exc) in ("FileSystemNotFound", "ValidationException"):
            return None
        raise
    items = require(answer, "FileSystems", "DescribeFileSystems")
    return file_system(ctx, items[0], t) if items else None


def file_system_touch(detail: dict[str, Any]) -> Iterable[Touch]:
    """The file system a record names: CreateFileSystem's response, the others' request (the id,
    or an ARN where the API takes one: TagResource's resourceId)."""
    found = []
    for side, key in (("responseElements", "fileSystemId"), ("requestParameters", "fileSystemId")):
        values = detail.get(side) if isinstance(detail, dict) else None
        value = values.get(key) if isinstance(values, dict) else None
        if isinstance(value, str) and value:
            found.append(value.rsplit("/", 1)[-1])
    return [Touch(FILE_SYSTEM, fsid) for fsid in dict.fromkeys(found)]


SERVICE = Service(
    name="efs",
    regional=True,
    arn_namespace="elasticfilesystem",
    read_actions=("elasticfilesystem:DescribeFileSystems",),
    kinds=(ResourceKind(FILE_SYSTEM, list_file_systems, describe_file_system, file_system_arn),),
    event_source="elasticfilesystem.amazonaws.com",
    events=(EventRule(("CreateFileSystem", "DeleteFileSystem", "UpdateFileSystem"), file_system_touch),),
)
