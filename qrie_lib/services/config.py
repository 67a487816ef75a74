"""AWS Config (regional): the region's recording setup as one resource, pseudo-ARN
``arn:aws:config:{region}:{account}:recording`` — its configuration recorders (what they record),
their status (recording, last status) and its delivery channels. A region without a recorder still
has this resource, so "Config is enabled in all regions" can fail there. Three calls per region."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qrie_lib.models import Resource
from qrie_lib.services.base import (
    CollectContext,
    EventRule,
    ResourceCalls,
    ResourceKind,
    Service,
    Touch,
    one_per_context,
    require,
)
from qrie_lib.timeutil import now_iso

RECORDING = "AWS::Config::RegionRecording"
STATUS_KEYS = ("name", "recording", "lastStatus", "lastErrorCode")


def recording_arn(ctx: CollectContext, _: str = "") -> str:
    return f"arn:aws:config:{ctx.region}:{ctx.account_id}:recording"


def read_recording(ctx: CollectContext) -> tuple[Resource, bool]:
    """The region's recording setup, and whether none of its calls answered."""
    describe_time = now_iso()
    config, calls = ctx.client("config"), ResourceCalls()
    recorders = calls.call("DescribeConfigurationRecorders", config.describe_configuration_recorders)
    statuses = calls.call(
        "DescribeConfigurationRecorderStatus", config.describe_configuration_recorder_status
    )
    channels = calls.call("DescribeDeliveryChannels", config.describe_delivery_channels)
    by_name = {
        s.get("name"): {k: s.get(k) for k in STATUS_KEYS}
        for s in (
            require(statuses, "ConfigurationRecordersStatus", "DescribeConfigurationRecorderStatus")
            if statuses
            else []
        )
    }
    configuration = {
        "Recorders": None
        if recorders is None
        else [
            {
                "Name": r.get("name"),
                "RecordingGroup": r.get("recordingGroup"),
                "Status": by_name.get(r.get("name")) if statuses is not None else None,
            }
            for r in require(recorders, "ConfigurationRecorders", "DescribeConfigurationRecorders")
        ],
        "DeliveryChannels": None
        if channels is None
        else [
            {
                "Name": c.get("name"),
                "S3BucketName": c.get("s3BucketName"),
                "SnsTopicARN": c.get("snsTopicARN"),
            }
            for c in require(channels, "DeliveryChannels", "DescribeDeliveryChannels")
        ],
    }
    resource = ctx.resource(
        service="config",
        resource_type=RECORDING,
        arn=recording_arn(ctx),
        configuration=calls.stamp(configuration),
        describe_time=describe_time,
    )
    return resource, calls.none_answered


list_recording, describe_recording = one_per_context(read_recording)


def region_touch(detail: dict[str, Any]) -> Iterable[Touch]:
    region = detail.get("awsRegion")
    return [Touch(RECORDING, region)] if isinstance(region, str) and region else []


SERVICE = Service(
    name="config",
    regional=True,
    read_actions=(
        "config:DescribeConfigurationRecorders",
        "config:DescribeConfigurationRecorderStatus",
        "config:DescribeDeliveryChannels",
    ),
    kinds=(ResourceKind(RECORDING, list_recording, describe_recording, recording_arn),),
    event_source="config.amazonaws.com",
    events=(
        EventRule(
            (
                "PutConfigurationRecorder",
                "DeleteConfigurationRecorder",
                "StartConfigurationRecorder",
                "StopConfigurationRecorder",
                "PutDeliveryChannel",
                "DeleteDeliveryChannel",
            ),
            region_touch,
        ),
    ),
)
