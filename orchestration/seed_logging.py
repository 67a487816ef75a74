"""The simulated organisation's logging and monitoring (CIS v3.0 sections 3 and 4): a trail with
its bucket, KMS keys, AWS Config recorders, and on even accounts the trail's CloudWatch Logs metric
filters with alarms notifying a subscribed SNS topic. Odd accounts are careless: a single-region
trail that does not log, no validation or encryption, no Config outside the home region, a key that
does not rotate and one scheduled for deletion. What AWS's API cannot set is set in moto's backend:
a started recorder's last delivery status (moto leaves it PENDING; AWS reports SUCCESS)."""

from __future__ import annotations

from moto.config.models import config_backends

from qrie_lib.aws import AccountSession
from qrie_lib.policies.monitoring import CONTROLS

NAMESPACE = "CISBenchmark"


def seed_logging(session: AccountSession, acct: str, n: int, regions: tuple[str, ...]) -> None:
    home, careful = regions[0], n % 2 == 0
    key = seed_kms(session, n, home)
    log_group_arn = seed_monitoring(session, acct, n, home)
    seed_trail(session, acct, n, home, key if careful else None, log_group_arn if careful else None)
    for region in regions:
        if careful or region == home:
            seed_config(session, acct, region, started=careful)


def seed_kms(session: AccountSession, n: int, region: str) -> str:
    kms = session.client("kms", region)
    key = kms.create_key(Description=f"sim{n:02d} trail logs")["KeyMetadata"]["KeyId"]
    if n % 2 == 0:
        kms.enable_key_rotation(KeyId=key)
    else:
        doomed = kms.create_key(Description=f"sim{n:02d} retired")["KeyMetadata"]["KeyId"]
        kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
    kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY", Description="signing")  # no rotation
    return key


def seed_trail(
    session: AccountSession, acct: str, n: int, region: str, key: str | None, log_group_arn: str | None
) -> None:
    bucket = f"sim{n:02d}-trail"
    s3 = session.client("s3", region)
    s3.create_bucket(Bucket=bucket)
    careful = key is not None
    if careful:
        s3.put_bucket_logging(
            Bucket=bucket,
            BucketLoggingStatus={
                "LoggingEnabled": {"TargetBucket": f"sim{n:02d}-logs", "TargetPrefix": "trail/"}
            },
        )
    cloudtrail = session.client("cloudtrail", region)
    options = (
        {
            "IsMultiRegionTrail": True,
            "EnableLogFileValidation": True,
            "KmsKeyId": key,
            "CloudWatchLogsLogGroupArn": log_group_arn,
            "CloudWatchLogsRoleArn": f"arn:aws:iam::{acct}:role/cloudtrail-to-logs",
        }
        if careful
        else {}
    )
    cloudtrail.create_trail(Name="org-audit", S3BucketName=bucket, **options)
    if careful:
        cloudtrail.put_event_selectors(
            TrailName="org-audit",
            EventSelectors=[
                {
                    "ReadWriteType": "All",
                    "IncludeManagementEvents": True,
                    "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}],
                }
            ],
        )
        cloudtrail.start_logging(Name="org-audit")


# CIS 4.1's pattern as some tools write it (the exclusions joined with &&): it passes the control.
AND_FORM_PATTERN = (
    '{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") && '
    '($.sourceIPAddress!="delivery.logs.amazonaws.com") && ($.eventName!="HeadBucket") }'
)


def seed_monitoring(session: AccountSession, acct: str, n: int, region: str) -> str:
    """The trail's log group, a filter per CIS 4.x control with an alarm notifying a subscribed
    topic; odd accounts: only 4.1's filter, in another form, alarmed to a topic nobody subscribed to."""
    group = "cloudtrail/org-audit"
    session.client("logs", region).create_log_group(logGroupName=group)
    sns = session.client("sns", region)
    topic = sns.create_topic(Name="security-alerts")["TopicArn"]
    logs, cloudwatch = session.client("logs", region), session.client("cloudwatch", region)
    if n % 2:
        filters = {"4.1": (CONTROLS["4.1"][0], AND_FORM_PATTERN)}
    else:
        filters = {control: (suffix, patterns.printed) for control, (suffix, _, patterns) in CONTROLS.items()}
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=f"arn:aws:sqs:{region}:{acct}:security-alerts")
    for control, (suffix, pattern) in filters.items():
        metric = f"{suffix}Metric"
        logs.put_metric_filter(
            logGroupName=group,
            filterName=suffix,
            filterPattern=pattern,
            metricTransformations=[{"metricName": metric, "metricNamespace": NAMESPACE, "metricValue": "1"}],
        )
        cloudwatch.put_metric_alarm(
            AlarmName=f"cis-{control}",
            MetricName=metric,
            Namespace=NAMESPACE,
            Statistic="Sum",
            Period=300,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            AlarmActions=[topic],
        )
    return f"arn:aws:logs:{region}:{acct}:log-group:{group}:*"


def seed_config(session: AccountSession, acct: str, region: str, started: bool) -> None:
    config = session.client("config", region)
    config.put_configuration_recorder(
        ConfigurationRecorder={
            "name": "default",
            "roleARN": f"arn:aws:iam::{acct}:role/config-recorder",
            "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": True},
        }
    )
    config.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": f"sim-config-{acct}"})
    if started:
        config.start_configuration_recorder(ConfigurationRecorderName="default")
        config_backends[acct][region].recorders["default"].status.last_status = "SUCCESS"
