"""CloudTrail, Config, KMS, Logs, CloudWatch and SNS collectors against moto's emulation."""

from qrie_lib.services import cloudtrail, cloudwatch, config, kms, logs, sns
from tests.conftest import CUSTOMER, REGION, collect_all, make_ctx

EU = "eu-west-1"


def test_trails_are_kept_in_their_home_region_with_status_and_selectors(aws, customer):
    customer.client("s3").create_bucket(Bucket="trail-bucket")
    us, eu = customer.client("cloudtrail", region_name=REGION), customer.client("cloudtrail", region_name=EU)
    us.create_trail(
        Name="audit", S3BucketName="trail-bucket", IsMultiRegionTrail=True, EnableLogFileValidation=True
    )
    us.start_logging(Name="audit")
    us.put_event_selectors(
        TrailName="audit", EventSelectors=[{"ReadWriteType": "All", "IncludeManagementEvents": True}]
    )
    eu.create_trail(Name="local", S3BucketName="trail-bucket")

    home, _ = collect_all(make_ctx(aws), cloudtrail.SERVICE.kind(cloudtrail.TRAIL))
    away, _ = collect_all(make_ctx(aws, EU), cloudtrail.SERVICE.kind(cloudtrail.TRAIL))

    assert [t.configuration["Name"] for t in home] == ["audit"]  # not the EU trail, nor its shadow there
    assert [t.configuration["Name"] for t in away] == ["local"]  # the multi-region trail only at home
    audit = home[0].configuration
    assert audit["IsLogging"] is True
    assert audit["IsMultiRegionTrail"] is True
    assert audit["EventSelectors"][0]["ReadWriteType"] == "All"
    assert away[0].configuration["IsLogging"] is False
    assert cloudtrail.describe_trail(make_ctx(aws), "audit").arn == home[0].arn
    assert cloudtrail.describe_trail(make_ctx(aws), "gone") is None


def test_config_recording_is_one_resource_per_region_even_without_a_recorder(aws, customer):
    client = customer.client("config", region_name=REGION)
    client.put_configuration_recorder(
        ConfigurationRecorder={
            "name": "default",
            "roleARN": f"arn:aws:iam::{CUSTOMER}:role/config",
            "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": True},
        }
    )
    client.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": "config-bucket"})
    client.start_configuration_recorder(ConfigurationRecorderName="default")

    [us], _ = collect_all(make_ctx(aws), config.SERVICE.kinds[0])
    [eu], _ = collect_all(make_ctx(aws, EU), config.SERVICE.kinds[0])

    recorder = us.configuration["Recorders"][0]
    assert recorder["RecordingGroup"]["allSupported"] is True
    assert recorder["Status"]["recording"] is True
    assert us.configuration["DeliveryChannels"][0]["S3BucketName"] == "config-bucket"
    assert eu.configuration == {"Recorders": [], "DeliveryChannels": []}
    assert eu.arn == f"arn:aws:config:{EU}:{CUSTOMER}:recording"


def test_customer_keys_with_rotation_and_aws_managed_keys_skipped(aws, customer):
    client = customer.client("kms", region_name=REGION)
    rotated = client.create_key()["KeyMetadata"]["KeyId"]
    client.enable_key_rotation(KeyId=rotated)
    plain = client.create_key()["KeyMetadata"]["KeyId"]
    signing = client.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    doomed = client.create_key()["KeyMetadata"]["KeyId"]
    client.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)

    found, _ = collect_all(make_ctx(aws), kms.SERVICE.kinds[0])

    by_id = {k.configuration["KeyId"]: k.configuration for k in found}
    assert set(by_id) == {rotated, plain, signing, doomed}  # moto ignores ListKeys Limit: one page
    assert by_id[rotated]["KeyRotationEnabled"] is True
    assert by_id[plain]["KeyRotationEnabled"] is False
    assert by_id[signing]["KeyRotationEnabled"] is None  # rotation does not apply
    assert by_id[doomed]["KeyState"] == "PendingDeletion"
    assert kms.describe_key(make_ctx(aws), plain).configuration["KeyId"] == plain


def test_metric_filters_alarms_and_topics(aws, customer):
    client = customer.client("logs", region_name=REGION)
    client.create_log_group(logGroupName="trail-logs")
    client.put_metric_filter(
        logGroupName="trail-logs",
        filterName="root",
        filterPattern='{ $.userIdentity.type = "Root" }',
        metricTransformations=[{"metricName": "Root", "metricNamespace": "CIS", "metricValue": "1"}],
    )
    topics = customer.client("sns", region_name=REGION)
    alerts = topics.create_topic(Name="alerts")["TopicArn"]
    topics.subscribe(TopicArn=alerts, Protocol="sqs", Endpoint=f"arn:aws:sqs:{REGION}:{CUSTOMER}:q")
    quiet = topics.create_topic(Name="quiet")["TopicArn"]
    customer.client("cloudwatch", region_name=REGION).put_metric_alarm(
        AlarmName="root", MetricName="Root", Namespace="CIS", Statistic="Sum", Period=300,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
        AlarmActions=[alerts],
    )  # fmt: skip
    ctx = make_ctx(aws)

    [mf], _ = collect_all(ctx, logs.SERVICE.kinds[0])
    [alarm], _ = collect_all(ctx, cloudwatch.SERVICE.kinds[0])
    found, _ = collect_all(ctx, sns.SERVICE.kinds[0])

    assert mf.configuration["FilterPattern"] == '{ $.userIdentity.type = "Root" }'
    assert mf.configuration["MetricTransformations"] == [{"MetricName": "Root", "MetricNamespace": "CIS"}]
    assert logs.describe_filter(ctx, "trail-logs:metric-filter/root").arn == mf.arn
    assert alarm.configuration["AlarmActions"] == [alerts]
    assert alarm.configuration["MetricName"] == "Root"
    assert cloudwatch.describe_alarm(ctx, "root").arn == alarm.arn
    confirmed = {t.arn: t.configuration["ConfirmedSubscriptions"] for t in found}
    assert confirmed == {alerts: 1, quiet: 0}
