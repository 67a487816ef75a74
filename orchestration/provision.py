"""Creates the operator's resources on an emulated endpoint (the CDK stack does it in AWS): the
tables of ``qrie_lib.schema``, the run-items bucket, the events queue with its DLQ, and the state
machines from the ASL files, with task ARNs substituted."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from orchestration import asl
from orchestration.schedules import SCHEDULES, TASK_SCHEDULES
from qrie_lib.aws import Aws, error_code
from qrie_lib.executions import state_machine_arn
from qrie_lib.schema import TABLES, Index
from tasks.registry import BY_NAME, TASKS

MAX_RECEIVE_COUNT = 3
# The events queue's message size limit: SQS's former maximum and EventBridge's event size limit
# (256 KiB), so the local queue refuses what AWS's path from the bus would never deliver.
MAX_MESSAGE_BYTES = 262_144
NOTIFICATIONS_TAIL_QUEUE = "qrie_notifications_tail"  # local only: what `qrie notifications tail` reads


def function_arn(aws: Aws, function_name: str) -> str:
    account = aws.client("sts").get_caller_identity()["Account"]
    return f"arn:aws:lambda:{aws.settings.region}:{account}:function:{function_name}"


def provision(aws: Aws, fast_retries: bool = False) -> dict[str, str]:
    """Create everything (idempotent); returns the state machine ARNs by name."""
    create_tables(aws)
    create_bucket(aws)
    create_queues(aws)
    create_notifications(aws)
    machines = create_state_machines(aws, fast_retries)
    create_schedules(aws, machines)
    return machines


def create_schedules(aws: Aws, machines: dict[str, str]) -> None:
    """The same schedules as the stack (EventBridge Scheduler; the emulation stores, not fires, them)."""
    scheduler = aws.client("scheduler")
    role = f"arn:aws:iam::{machines['inventory'].split(':')[4]}:role/qrie-scheduler"
    targets = [(s, machines[s.state_machine]) for s in SCHEDULES] + [
        (s, function_arn(aws, BY_NAME[s.task].function_name)) for s in TASK_SCHEDULES
    ]
    for schedule, arn in targets:
        _idempotent(
            lambda s=schedule, a=arn: scheduler.create_schedule(
                Name=f"qrie-{s.name}",
                ScheduleExpression=s.expression,
                ScheduleExpressionTimezone=s.timezone,
                FlexibleTimeWindow={"Mode": "OFF"},
                Target={"Arn": a, "RoleArn": role, "Input": json.dumps(s.input)},
            ),
            "ConflictException",
        )


def create_tables(aws: Aws) -> None:
    ddb = aws.client("dynamodb")
    for table in TABLES.values():
        request: dict[str, Any] = {
            "TableName": table.name(aws.settings),
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in table.attributes],
            "KeySchema": [
                {"AttributeName": table.partition_key, "KeyType": "HASH"},
                *([{"AttributeName": table.sort_key, "KeyType": "RANGE"}] if table.sort_key else []),
            ],
            "SSESpecification": {"Enabled": True},
        }
        if table.indexes:
            request["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": ix.name,
                    "KeySchema": [
                        {"AttributeName": ix.partition_key, "KeyType": "HASH"},
                        {"AttributeName": ix.sort_key, "KeyType": "RANGE"},
                    ],
                    "Projection": projection(ix),
                }
                for ix in table.indexes
            ]
        _idempotent(lambda r=request: ddb.create_table(**r), "ResourceInUseException")


def projection(index: Index) -> dict[str, Any]:
    if index.projection is None:
        return {"ProjectionType": "ALL"}
    if not index.projection:
        return {"ProjectionType": "KEYS_ONLY"}
    return {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(index.projection)}


def create_bucket(aws: Aws) -> None:
    s3 = aws.client("s3")
    _idempotent(
        lambda: s3.create_bucket(Bucket=aws.settings.items_bucket),
        "BucketAlreadyOwnedByYou",
        "BucketAlreadyExists",
    )


def create_queues(aws: Aws) -> tuple[str, str]:
    """The events queue and its DLQ (a record that fails three receives moves there)."""
    sqs = aws.client("sqs")
    dlq_url = sqs.create_queue(QueueName=f"{aws.settings.events_queue}_dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName=aws.settings.events_queue,
        Attributes={
            "VisibilityTimeout": "60",
            "MaximumMessageSize": str(MAX_MESSAGE_BYTES),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
            ),
        },
    )["QueueUrl"]
    return url, dlq_url


def create_notifications(aws: Aws) -> str:
    """The notifications topic, and a queue subscribed to it that ``qrie notifications tail`` reads
    from another process (moto delivers SNS to SQS; in AWS, operators subscribe what they like)."""
    from qrie_lib.notifications import TOPIC_NAME

    topic = aws.client("sns").create_topic(Name=TOPIC_NAME)["TopicArn"]
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=NOTIFICATIONS_TAIL_QUEUE)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.client("sns").subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "false"}
    )
    return topic


def create_state_machines(aws: Aws, fast_retries: bool = False) -> dict[str, str]:
    sfn = aws.client("stepfunctions")
    values = {t.substitution: function_arn(aws, t.function_name) for t in TASKS}
    values["ItemsBucket"] = aws.settings.items_bucket
    arns = {}
    for name in asl.available():
        definition = asl.render(name, values, fast_retries)
        arn = state_machine_arn(aws, name)
        try:
            sfn.update_state_machine(stateMachineArn=arn, definition=definition)
        except ClientError as exc:
            if error_code(exc) != "StateMachineDoesNotExist":
                raise
            role = f"arn:aws:iam::{arn.split(':')[4]}:role/qrie-states"
            sfn.create_state_machine(name=f"qrie-{name}", definition=definition, roleArn=role)
        arns[name] = arn
    return arns


def _idempotent(call: Any, *already: str) -> None:
    try:
        call()
    except ClientError as exc:
        if error_code(exc) not in already:
            raise
