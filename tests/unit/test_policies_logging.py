"""CIS v3.0 section 3 (CloudTrail, Config, KMS) and section 4 (metric filters and alarms) policies:
a failing and a passing fixture each, and the edges of each audit."""

from typing import Any

import pytest

from qrie_lib.models import Resource
from qrie_lib.policies.base import Related
from qrie_lib.policies.monitoring import CONTROLS, canonical
from qrie_lib.policies.registry import get_policy
from qrie_lib.services.cloudtrail import COVERAGE, TRAIL
from qrie_lib.services.cloudwatch import ALARM
from qrie_lib.services.config import RECORDING
from qrie_lib.services.kms import KEY
from qrie_lib.services.logs import METRIC_FILTER
from qrie_lib.services.s3 import BUCKET
from qrie_lib.services.sns import TOPIC
from qrie_lib.timeutil import now_iso

A, R = "111111111111", "us-east-1"
GROUP_ARN = f"arn:aws:logs:{R}:{A}:log-group:trail-logs:*"
TOPIC_ARN = f"arn:aws:sns:{R}:{A}:alerts"
MGMT_ALL = [{"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": []}]


def res(resource_type: str, arn: str, service: str, **config: Any) -> Resource:
    return Resource(
        arn=arn, account_id=A, service=service, region=R, resource_type=resource_type,
        configuration=config, describe_time=now_iso(),
    )  # fmt: skip


def trail(**config: Any) -> Resource:
    base = {
        "Name": "audit", "IsMultiRegionTrail": True, "IsLogging": True, "EventSelectors": MGMT_ALL,
        "AdvancedEventSelectors": [], "LogFileValidationEnabled": True, "KmsKeyId": "k",
        "S3BucketName": "trail-bucket", "CloudWatchLogsLogGroupArn": GROUP_ARN,
    }  # fmt: skip
    return res(TRAIL, f"arn:aws:cloudtrail:{R}:{A}:trail/audit", "cloudtrail", **(base | config))


COVER = res(COVERAGE, f"arn:aws:cloudtrail::{A}:coverage", "cloudtrail")


def verdict(policy_id: str, resource: Resource, **every: list[Resource]) -> bool | None:
    policy = get_policy(policy_id)
    collections = {t: tuple(every.get(t.split("::")[1].lower(), [])) for t in policy.related_all}
    return policy.evaluate(resource, Related(collections=collections)).compliant


def test_cis_3_1_needs_a_logging_multi_region_trail_with_all_management_events():
    p = "CloudTrailNotEnabledInAllRegions"
    assert verdict(p, COVER, cloudtrail=[trail()]) is True
    assert verdict(p, COVER, cloudtrail=[]) is False
    assert verdict(p, COVER, cloudtrail=[trail(IsLogging=False)]) is False
    assert verdict(p, COVER, cloudtrail=[trail(IsMultiRegionTrail=False)]) is False
    write_only = [{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}]
    assert verdict(p, COVER, cloudtrail=[trail(EventSelectors=write_only)]) is False
    advanced = [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}]
    assert verdict(p, COVER, cloudtrail=[trail(EventSelectors=[], AdvancedEventSelectors=advanced)]) is True
    read_only = advanced[0]["FieldSelectors"] + [{"Field": "readOnly", "Equals": ["true"]}]
    narrowed = [{"FieldSelectors": read_only}]
    assert verdict(p, COVER, cloudtrail=[trail(EventSelectors=[], AdvancedEventSelectors=narrowed)]) is False
    denied = trail(IsLogging=None, CollectErrors=[{"call": "GetTrailStatus", "code": "AccessDenied"}])
    assert verdict(p, COVER, cloudtrail=[denied]) is None


@pytest.mark.parametrize(
    ("policy_id", "failing"),
    [
        ("CloudTrailLogFileValidationDisabled", {"LogFileValidationEnabled": False}),
        ("CloudTrailNotEncryptedWithKms", {"KmsKeyId": None}),
    ],
)
def test_per_trail_checks(policy_id, failing):
    assert verdict(policy_id, trail()) is True
    assert verdict(policy_id, trail(**failing)) is False


def test_cis_3_4_reads_the_trail_bucket_logging():
    p = "CloudTrailBucketAccessLoggingDisabled"
    logged = res(
        BUCKET, "arn:aws:s3:::trail-bucket", "s3", Name="trail-bucket", Logging={"TargetBucket": "x"}
    )
    unlogged = res(BUCKET, "arn:aws:s3:::trail-bucket", "s3", Name="trail-bucket", Logging=None)
    assert verdict(p, trail(), s3=[logged]) is True
    assert verdict(p, trail(), s3=[unlogged]) is False
    assert verdict(p, trail(), s3=[]) is None  # another account's bucket


@pytest.mark.parametrize(("policy_id", "side"), [("CloudTrailS3WriteDataEventsDisabled", "WriteOnly"),
                                             ("CloudTrailS3ReadDataEventsDisabled", "ReadOnly")])  # fmt: skip
def test_cis_3_8_and_3_9_s3_object_events_of_all_buckets(policy_id, side):
    def selectors(rw: str, values: list[str]) -> list[dict[str, Any]]:
        return [{"ReadWriteType": rw, "IncludeManagementEvents": True,
                 "DataResources": [{"Type": "AWS::S3::Object", "Values": values}]}]  # fmt: skip

    assert (
        verdict(policy_id, COVER, cloudtrail=[trail(EventSelectors=selectors("All", ["arn:aws:s3"]))]) is True
    )
    assert (
        verdict(policy_id, COVER, cloudtrail=[trail(EventSelectors=selectors(side, ["arn:aws:s3"]))]) is True
    )
    other = "ReadOnly" if side == "WriteOnly" else "WriteOnly"
    assert (
        verdict(policy_id, COVER, cloudtrail=[trail(EventSelectors=selectors(other, ["arn:aws:s3"]))])
        is False
    )
    one_bucket = selectors("All", ["arn:aws:s3:::one/"])
    assert verdict(policy_id, COVER, cloudtrail=[trail(EventSelectors=one_bucket)]) is False
    log_all = [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]},
                                   {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}]}]  # fmt: skip
    assert verdict(policy_id, COVER, cloudtrail=[trail(AdvancedEventSelectors=log_all)]) is True
    single = trail(IsMultiRegionTrail=False, AdvancedEventSelectors=log_all)
    assert verdict(policy_id, COVER, cloudtrail=[single]) is False


def recording(recording: bool, last: str | None, **group: bool) -> Resource:
    rg = {"allSupported": True, "includeGlobalResourceTypes": True} | group
    recorder = {
        "Name": "default",
        "RecordingGroup": rg,
        "Status": {"recording": recording, "lastStatus": last},
    }
    return res(RECORDING, f"arn:aws:config:{R}:{A}:recording", "config", Recorders=[recorder])


def test_cis_3_3_config_recording_everything_successfully():
    p = "ConfigNotEnabledInRegion"
    assert verdict(p, recording(True, "SUCCESS")) is True
    assert verdict(p, recording(True, "PENDING")) is False
    assert verdict(p, recording(False, "SUCCESS")) is False
    assert verdict(p, recording(True, "SUCCESS", includeGlobalResourceTypes=False)) is False
    assert verdict(p, res(RECORDING, "arn:aws:config:x", "config", Recorders=[])) is False


def key(**config: Any) -> Resource:
    base = {
        "KeyManager": "CUSTOMER",
        "KeySpec": "SYMMETRIC_DEFAULT",
        "KeyState": "Enabled",
        "KeyRotationEnabled": True,
    }
    return res(KEY, f"arn:aws:kms:{R}:{A}:key/k", "kms", **(base | config))


def test_cis_3_6_rotation_of_symmetric_keys_and_pending_deletion():
    assert verdict("KmsKeyRotationDisabled", key()) is True
    assert verdict("KmsKeyRotationDisabled", key(KeyRotationEnabled=False)) is False
    assert verdict("KmsKeyRotationDisabled", key(KeySpec="RSA_2048", KeyRotationEnabled=None)) is True
    assert verdict("KmsKeyPendingDeletion", key()) is True
    assert verdict("KmsKeyPendingDeletion", key(KeyState="PendingDeletion")) is False


def monitoring(pattern: str, confirmed: int = 1, namespace: str = "CIS") -> dict[str, list[Resource]]:
    mf = res(METRIC_FILTER, f"arn:aws:logs:{R}:{A}:log-group:trail-logs:metric-filter/f", "logs",
             FilterName="f", LogGroupName="trail-logs", FilterPattern=pattern,
             MetricTransformations=[{"MetricName": "m", "MetricNamespace": "CIS"}])  # fmt: skip
    alarm = res(ALARM, f"arn:aws:cloudwatch:{R}:{A}:alarm:a", "cloudwatch", AlarmName="a",
                MetricName="m", Namespace=namespace, AlarmActions=[TOPIC_ARN])  # fmt: skip
    topic = res(TOPIC, TOPIC_ARN, "sns", ConfirmedSubscriptions=confirmed, PendingSubscriptions=0)
    return {"cloudtrail": [trail()], "logs": [mf], "cloudwatch": [alarm], "sns": [topic]}


ROOT = (
    '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && '
    '$.eventType != "AwsServiceEvent" }'
)


def test_section_4_needs_filter_alarm_and_confirmed_subscriber_on_the_active_trail():
    p = "CloudTrailRootUsageNotMonitored"
    assert verdict(p, COVER, **monitoring(ROOT)) is True
    assert verdict(p, COVER, **monitoring(ROOT, confirmed=0)) is False
    assert verdict(p, COVER, **monitoring(ROOT, namespace="Other")) is False
    assert verdict(p, COVER, **(monitoring(ROOT) | {"cloudtrail": [trail(IsLogging=False)]})) is False
    assert (
        verdict(p, COVER, **(monitoring(ROOT) | {"cloudtrail": [trail(IsMultiRegionTrail=False)]})) is False
    )


def test_section_4_patterns_tolerate_whitespace_only():
    p = "CloudTrailRootUsageNotMonitored"
    squeezed = (
        '{$.userIdentity.type="Root"&&$.userIdentity.invokedBy NOT EXISTS&&$.eventType!="AwsServiceEvent"}'
    )
    assert verdict(p, COVER, **monitoring(squeezed)) is True
    assert verdict(p, COVER, **monitoring(ROOT.replace('"Root"', '"root"'))) is False
    assert verdict(p, COVER, **monitoring(ROOT.replace(" && $.eventType", " || $.eventType"))) is False
    assert canonical('($.errorMessage = "Failed authentication")') != canonical(
        '($.errorMessage="Failedauthentication")'
    )
    # 4.4 written with spaces, and squeezed
    accepts = CONTROLS["4.4"][2]
    spaced = "{ " + " || ".join(f"($.eventName = {name})" for name in IAM_POLICY_EVENTS_NAMES) + " }"
    assert accepts(spaced)
    assert accepts(canonical(spaced))
    assert not accepts(spaced.replace("DeleteGroupPolicy", "DeleteGroupPolicies"))
    assert len(CONTROLS) == 15


IAM_POLICY_EVENTS_NAMES = ("DeleteGroupPolicy", "DeleteRolePolicy", "DeleteUserPolicy", "PutGroupPolicy",
    "PutRolePolicy", "PutUserPolicy", "CreatePolicy", "DeletePolicy", "CreatePolicyVersion",
    "DeletePolicyVersion", "AttachRolePolicy", "DetachRolePolicy", "AttachUserPolicy", "DetachUserPolicy",
    "AttachGroupPolicy", "DetachGroupPolicy")  # fmt: skip

# CIS 4.1 as v3.0.0's audit prints it (unquoted), as its remediation does (quoted), the form some
# tools write (the exclusions joined with &&), and Security Hub CloudWatch.2's two-term form.
UNAUTHORIZED_AS_PRINTED = (
    "{ ($.errorCode = *UnauthorizedOperation) || ($.errorCode = AccessDenied*) || "
    "($.sourceIPAddress!=delivery.logs.amazonaws.com) || ($.eventName!=HeadBucket) }"
)
UNAUTHORIZED_QUOTED = (
    '{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") || '
    '($.sourceIPAddress!="delivery.logs.amazonaws.com") || ($.eventName!="HeadBucket") }'
)
UNAUTHORIZED_AND_FORM = (
    '{($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") && '
    '($.sourceIPAddress != "delivery.logs.amazonaws.com") && ($.eventName != "HeadBucket")}'
)
UNAUTHORIZED_TWO_TERMS = '{($.errorCode="*UnauthorizedOperation") || ($.errorCode="AccessDenied*")}'


@pytest.mark.parametrize(
    "pattern",
    [
        UNAUTHORIZED_AS_PRINTED,
        UNAUTHORIZED_QUOTED,
        UNAUTHORIZED_AND_FORM,
        UNAUTHORIZED_TWO_TERMS,
        # fully parenthesised, as Terraform modules write it
        '{(($.errorCode="*UnauthorizedOperation") || ($.errorCode="AccessDenied*")) && '
        '(($.sourceIPAddress!="delivery.logs.amazonaws.com") && ($.eventName!="HeadBucket"))}',
    ],
)
def test_cis_4_1_passes_a_filter_matching_every_unauthorized_call_of_the_benchmark(pattern):
    p = "CloudTrailUnauthorizedApiCallsNotMonitored"
    assert verdict(p, COVER, **monitoring(pattern)) is True


@pytest.mark.parametrize(
    "pattern",
    [
        '{ ($.errorCode = "AccessDenied*") }',  # no EC2 UnauthorizedOperation
        '{ ($.errorCode = "*UnauthorizedOperation") }',  # no AccessDenied
        '{ ($.errorCode = "AccessDenied") || ($.errorCode = "*UnauthorizedOperation") }',  # no ...Exception
        # the && form with the exclusions mistyped: it now leaves out ordinary callers
        '{($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") && '
        '($.sourceIPAddress = "delivery.logs.amazonaws.com")}',
        '{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") && '
        '($.userIdentity.type = "IAMUser") }',
        "{ ($.errorCode = *UnauthorizedOperation) || ($.errorCode = AccessDenied* }",  # unbalanced
        "AccessDenied",  # a text pattern, not JSON
    ],
)
def test_cis_4_1_fails_a_filter_that_misses_some_of_the_benchmark_s_events(pattern):
    p = "CloudTrailUnauthorizedApiCallsNotMonitored"
    assert verdict(p, COVER, **monitoring(pattern)) is False
