"""Whatever a queue message holds, the processor neither crashes the batch nor writes: a record is
failed (malformed), ignored, or — here, where no account is onboarded — acknowledged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from orchestration import cloudtrail
from orchestration.dispatch import LocalContext
from orchestration.events_queue import EVENT_PROCESSOR, sqs_event
from orchestration.provision import create_tables
from qrie_lib.aws import Aws, reset_aws
from qrie_lib.errors import MalformedEvent
from qrie_lib.events import RULES
from qrie_lib.realtime import Status, read
from qrie_lib.settings import Settings
from tasks.event_processor import handler

ACCOUNT = "123456789012"
PARAMETER_NAMES = (
    "bucketName",
    "groupId",
    "instanceId",
    "volumeId",
    "snapshotId",
    "vpcId",
    "userName",
    "newUserName",
    "roleName",
    "groupName",
    "policyArn",
    "instancesSet",
    "resourcesSet",
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def declared_events(draw: st.DrawFn) -> dict[str, Any]:
    """An event of a declared (source, name), with odd request/response shapes and odd fields."""
    source, name = draw(st.sampled_from(sorted(RULES)))
    event = cloudtrail.api_call(
        name,
        event_source=source,
        account_id=draw(st.sampled_from([ACCOUNT, "000000000000"])),
        region=draw(st.sampled_from(["us-east-1", "eu-west-1"])),
        request=draw(st.none() | st.dictionaries(st.sampled_from(PARAMETER_NAMES), json_values, max_size=4)),
        response=draw(st.none() | st.dictionaries(st.sampled_from(PARAMETER_NAMES), json_values, max_size=3)),
    )
    for key in draw(
        st.lists(st.sampled_from(["userIdentity", "eventID", "awsRegion", "id", "time"]), max_size=2)
    ):
        holder = event if key in ("id", "time") else event["detail"]
        holder[key] = draw(json_values)
    return event


bodies = st.one_of(
    st.text(max_size=50),
    json_values.map(json.dumps),
    declared_events().map(json.dumps),
    declared_events().map(lambda e: json.dumps(e["detail"])),  # bare records
)


@pytest.fixture(scope="module")
def tables() -> Iterator[Aws]:
    with mock_aws():
        aws = Aws(Settings())
        reset_aws(aws)
        create_tables(aws)
        yield aws
        reset_aws(None)


def stored(aws: Aws) -> int:
    ddb = aws.client("dynamodb")
    return sum(
        ddb.scan(TableName=table, Select="COUNT")["Count"]
        for table in (aws.settings.resources_table, aws.settings.findings_table)
    )


@settings(max_examples=150, deadline=None)
@given(bodies)
def test_reading_any_body_never_raises(body):
    outcome = read("m", body)
    assert outcome.status in Status
    if outcome.status is Status.FAILED:
        assert isinstance(outcome.error, MalformedEvent)
    else:
        assert outcome.event is not None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(bodies, min_size=1, max_size=10))
def test_a_batch_of_anything_never_crashes_and_never_writes(tables, batch):
    messages = [
        {"MessageId": f"m-{n}", "ReceiptHandle": f"r-{n}", "Body": body} for n, body in enumerate(batch)
    ]
    context = LocalContext(EVENT_PROCESSOR, EVENT_PROCESSOR.function_name)

    response = handler(sqs_event(messages, "arn:aws:sqs:us-east-1:000000000000:q", "us-east-1"), context)

    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    expected = {f"m-{n}" for n, body in enumerate(batch) if read("m", body).status is Status.FAILED}
    assert failed == expected
    assert stored(tables) == 0
