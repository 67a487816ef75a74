"""CloudTrail policies (CIS AWS Foundations v3.0 section 3): per trail (log file validation, KMS
encryption, access logging on its bucket) and per account, on the account's coverage anchor, what
the account's trails cover (a logging multi-region trail with all management events; S3 object
data events)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from qrie_lib.models import Resource
from qrie_lib.policies.base import COMPLIANT, Policy, Related, Verdict, missing, not_evaluated, violation
from qrie_lib.services.cloudtrail import COVERAGE, TRAIL
from qrie_lib.services.s3 import BUCKET

SELECTOR_NEEDS = {"EventSelectors": "GetEventSelectors", "AdvancedEventSelectors": "GetEventSelectors"}
STATUS_NEED = {"IsLogging": "GetTrailStatus"}
S3_OBJECT = "AWS::S3::Object"
ALL_BUCKETS = ("arn:aws:s3", "arn:aws:s3:::")  # "All current and future S3 buckets"


def fields(selector: dict[str, Any]) -> dict[str, list[str] | None]:
    """An advanced selector's field selectors: field → its Equals values (None: another operator)."""
    return {
        f.get("Field"): (f.get("Equals") if set(f) <= {"Field", "Equals"} else None)
        for f in selector.get("FieldSelectors") or ()
    }


def all_management_events(trail: Resource) -> bool:
    """CIS 3.1: an event selector with IncludeManagementEvents true and ReadWriteType All; with
    advanced selectors, its equivalent: management events with no read-only or other narrowing."""
    c = trail.configuration
    basic = any(
        s.get("IncludeManagementEvents") is True and s.get("ReadWriteType") == "All"
        for s in c.get("EventSelectors") or ()
    )
    advanced = any(
        fields(s) == {"eventCategory": ["Management"]} for s in c.get("AdvancedEventSelectors") or ()
    )
    return basic or advanced


def multi_region_logging(trail: Resource) -> bool:
    c = trail.configuration
    return c.get("IsMultiRegionTrail") is True and c.get("IsLogging") is True and all_management_events(trail)


def unknown(trail: Resource, needs: dict[str, str]) -> list[dict[str, Any]]:
    return [{"Trail": trail.arn, **gap} for gap in missing(trail, needs)]


def trails_summary(trails: tuple[Resource, ...]) -> list[dict[str, Any]]:
    keys = ("IsMultiRegionTrail", "IsLogging")
    return [{"Trail": t.arn, **{k: t.configuration.get(k) for k in keys}} for t in trails]


def not_in_all_regions(_: Resource, related: Related) -> Verdict:
    trails = related.every(TRAIL)
    if any(multi_region_logging(t) for t in trails):
        return COMPLIANT
    if gaps := [g for t in trails for g in unknown(t, STATUS_NEED | SELECTOR_NEEDS)]:
        return not_evaluated(NotCollected=gaps)
    return violation(
        Missing="a multi-region trail that is logging, with management events Read/Write All",
        Trails=trails_summary(trails),
    )


def s3_objects_logged(trail: Resource, read_only: bool) -> bool:
    """CIS 3.8/3.9: S3 data events of all current and future buckets, for writes (3.8) or reads
    (3.9): a basic selector (ReadWriteType All or the one side) or an advanced one ("Log all
    events": data events of AWS::S3::Object, narrowed by nothing but readOnly of that side)."""
    c = trail.configuration
    side = "ReadOnly" if read_only else "WriteOnly"
    basic = any(
        s.get("ReadWriteType") in ("All", side)
        and any(
            r.get("Type") == S3_OBJECT and any(v in ALL_BUCKETS for v in r.get("Values") or ())
            for r in s.get("DataResources") or ()
        )
        for s in c.get("EventSelectors") or ()
    )
    wanted = "true" if read_only else "false"
    advanced = any(
        f.get("eventCategory") == ["Data"]
        and f.get("resources.type") == [S3_OBJECT]
        and set(f) <= {"eventCategory", "resources.type", "readOnly"}
        and f.get("readOnly", [wanted]) == [wanted]
        for f in map(fields, c.get("AdvancedEventSelectors") or ())
    )
    return basic or advanced


def s3_data_events(read_only: bool) -> Callable[[Resource, Related], Verdict]:
    def rule(_: Resource, related: Related) -> Verdict:
        trails = [t for t in related.every(TRAIL) if t.configuration.get("IsMultiRegionTrail") is True]
        if any(s3_objects_logged(t, read_only) for t in trails):
            return COMPLIANT
        if gaps := [g for t in trails for g in unknown(t, SELECTOR_NEEDS)]:
            return not_evaluated(NotCollected=gaps)
        return violation(
            Missing=f"a multi-region trail logging S3 object {'read' if read_only else 'write'} events"
            " of all buckets",
            MultiRegionTrails=[t.arn for t in trails],
        )

    return rule


def validation_disabled(trail: Resource, _: Related) -> Verdict:
    enabled = trail.configuration.get("LogFileValidationEnabled")
    return COMPLIANT if enabled is True else violation(LogFileValidationEnabled=enabled)


def not_kms_encrypted(trail: Resource, _: Related) -> Verdict:
    return COMPLIANT if trail.configuration.get("KmsKeyId") else violation(KmsKeyId=None)


def bucket_logging_disabled(trail: Resource, related: Related) -> Verdict:
    name = trail.configuration.get("S3BucketName")
    bucket = next((b for b in related.every(BUCKET) if b.configuration.get("Name") == name), None)
    if bucket is None:  # another account's bucket (a central logging account), or not inventoried
        return not_evaluated(
            NotCollected=[{"Key": BUCKET, "Bucket": name, "Problem": "not in this account's inventory"}]
        )
    if gaps := missing(bucket, {"Logging": "GetBucketLogging"}):
        return not_evaluated(NotCollected=gaps)
    return COMPLIANT if bucket.configuration.get("Logging") else violation(Bucket=name, Logging=None)


declare = partial(Policy, service="cloudtrail")

POLICIES: tuple[Policy, ...] = (
    declare(
        policy_id="CloudTrailNotEnabledInAllRegions",
        resource_type=COVERAGE,
        title="No logging multi-region CloudTrail trail records all management events",
        description=(
            "The account has no trail that is multi-region, logging, and has an event selector with "
            "IncludeManagementEvents true and ReadWriteType All (or the advanced-selector equivalent), so "
            "API activity is not recorded in every region. Reported once per account."
        ),
        severity=85,
        remediation=(
            "aws cloudtrail create-trail --name NAME --bucket-name BUCKET --is-multi-region-trail; "
            "aws cloudtrail start-logging --name NAME (management events default to Read/Write All)."
        ),
        rule=not_in_all_regions,
        compliance=("CIS AWS Foundations v3.0 3.1", "AWS FSBP v1.0.0 CloudTrail.1"),
        related_all=(TRAIL,),
    ),
    declare(
        policy_id="CloudTrailLogFileValidationDisabled",
        resource_type=TRAIL,
        title="CloudTrail log file validation is disabled",
        description="The trail writes no signed digest files, so altered or deleted log files go unnoticed.",
        severity=50,
        remediation="aws cloudtrail update-trail --name NAME --enable-log-file-validation",
        rule=validation_disabled,
        compliance=("CIS AWS Foundations v3.0 3.2", "AWS FSBP v1.0.0 CloudTrail.4"),
    ),
    declare(
        policy_id="CloudTrailBucketAccessLoggingDisabled",
        resource_type=TRAIL,
        title="The CloudTrail S3 bucket has no server access logging",
        description=(
            "Requests to the bucket the trail delivers to are not logged. Not evaluated when the bucket "
            "belongs to another account (its inventory answers for it there)."
        ),
        severity=45,
        remediation=(
            "aws s3api put-bucket-logging --bucket TRAIL-BUCKET --bucket-logging-status "
            '\'{"LoggingEnabled":{"TargetBucket":"LOG-BUCKET","TargetPrefix":"cloudtrail/"}}\'.'
        ),
        rule=bucket_logging_disabled,
        compliance=("CIS AWS Foundations v3.0 3.4",),
        related_all=(BUCKET,),
    ),
    declare(
        policy_id="CloudTrailNotEncryptedWithKms",
        resource_type=TRAIL,
        title="CloudTrail logs are not encrypted with a KMS key",
        description="The trail has no KmsKeyId: its log files are encrypted with S3-managed keys only.",
        severity=50,
        remediation="aws cloudtrail update-trail --name NAME --kms-id KEY (a key CloudTrail may use).",
        rule=not_kms_encrypted,
        compliance=("CIS AWS Foundations v3.0 3.5", "AWS FSBP v1.0.0 CloudTrail.2"),
    ),
    declare(
        policy_id="CloudTrailS3WriteDataEventsDisabled",
        resource_type=COVERAGE,
        title="S3 object-level logging for write events is not enabled",
        description=(
            "No multi-region trail logs S3 data events of all current and future buckets for write "
            "(basic selector WriteOnly/All on arn:aws:s3, or advanced: all S3 object events)."
        ),
        severity=40,
        remediation=(
            "aws cloudtrail put-event-selectors --trail-name NAME --advanced-event-selectors "
            '\'[{"Name":"S3","FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},'
            '{"Field":"resources.type","Equals":["AWS::S3::Object"]}]}]\' (keep management events).'
        ),
        rule=s3_data_events(read_only=False),
        compliance=("CIS AWS Foundations v3.0 3.8",),
        related_all=(TRAIL,),
    ),
    declare(
        policy_id="CloudTrailS3ReadDataEventsDisabled",
        resource_type=COVERAGE,
        title="S3 object-level logging for read events is not enabled",
        description=(
            "No multi-region trail logs S3 data events of all current and future buckets for reads "
            "(basic selector ReadOnly/All on arn:aws:s3, or advanced: all S3 object events)."
        ),
        severity=35,
        remediation=(
            "aws cloudtrail put-event-selectors --trail-name NAME --advanced-event-selectors "
            '\'[{"Name":"S3","FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},'
            '{"Field":"resources.type","Equals":["AWS::S3::Object"]}]}]\' (keep management events).'
        ),
        rule=s3_data_events(read_only=True),
        compliance=("CIS AWS Foundations v3.0 3.9",),
        related_all=(TRAIL,),
    ),
)
