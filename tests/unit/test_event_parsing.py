"""The queue message → CloudTrail event → touched resources part of the processor (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestration import cloudtrail
from qrie_lib.errors import MalformedEvent
from qrie_lib.events import DETAIL_TYPE, RULES, Target, build_rules, parse, rule_for, touched
from qrie_lib.models import GLOBAL
from qrie_lib.realtime import Status, read
from qrie_lib.services import ec2, iam, s3
from qrie_lib.services.base import EventRule, Service, Touch
from qrie_lib.services.registry import SERVICES

ACCOUNT = "123456789012"


def bucket_event(**changes: Any) -> dict[str, Any]:
    event = cloudtrail.s3_call("PutBucketAcl", ACCOUNT, "photos", region="eu-west-1")
    event["detail"] |= changes
    return event


def body(event: Any) -> str:
    return json.dumps(event)


# ---- the envelope --------------------------------------------------------------------------


def test_an_eventbridge_cloudtrail_event_parses():
    event = parse(body(bucket_event()))
    assert event.detail_type == DETAIL_TYPE
    assert event.source == "aws.s3"
    assert event.account_id == ACCOUNT
    assert event.detail.eventName == "PutBucketAcl"
    assert event.detail.awsRegion == "eu-west-1"
    assert event.detail.requestParameters["bucketName"] == "photos"
    assert event.detail.managementEvent is True  # fields Qrie does not type are kept


def test_the_builder_makes_the_record_aws_sends():
    detail = bucket_event()["detail"]
    expected = {
        "eventVersion",
        "userIdentity",
        "eventTime",
        "eventSource",
        "eventName",
        "awsRegion",
        "sourceIPAddress",
        "userAgent",
        "requestParameters",
        "responseElements",
        "requestID",
        "eventID",
        "readOnly",
        "eventType",
        "managementEvent",
        "recipientAccountId",
        "eventCategory",
    }
    assert expected <= detail.keys()
    assert detail["eventType"] == "AwsApiCall"
    assert detail["eventCategory"] == "Management"


def test_a_bare_cloudtrail_record_is_refused_with_a_clear_reason():
    with pytest.raises(MalformedEvent, match="bare CloudTrail record"):
        parse(body(bucket_event()["detail"]))


def test_a_bare_record_wrapped_in_its_envelope_parses():
    wrapped = cloudtrail.envelope(bucket_event()["detail"])
    event = parse(body(wrapped))
    assert (event.source, event.account, event.region) == ("aws.s3", ACCOUNT, "eu-west-1")


def test_another_detail_type_is_malformed():
    event = bucket_event()
    event["detail-type"] = "EC2 Instance State-change Notification"
    with pytest.raises(MalformedEvent, match="detail-type"):
        parse(body(event))


@pytest.mark.parametrize("text", ["", "not json", "{", "[]", "null", '"PutBucketAcl"', "42"])
def test_a_body_that_is_not_an_object_is_malformed(text):
    with pytest.raises(MalformedEvent, match=r"body is not (JSON|a JSON object)"):
        parse(text)


@pytest.mark.parametrize("field", ["eventID", "eventName", "eventSource", "awsRegion", "eventTime"])
def test_a_missing_detail_field_is_named(field):
    event = bucket_event()
    del event["detail"][field]
    with pytest.raises(MalformedEvent, match=f"detail.{field}"):
        parse(body(event))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("recipientAccountId", "12345"),
        ("awsRegion", "mars"),
        ("requestParameters", "bucketName=photos"),
        ("eventID", ""),
    ],
)
def test_a_detail_field_of_the_wrong_shape_is_named(field, value):
    with pytest.raises(MalformedEvent, match=f"detail.{field}"):
        parse(body(bucket_event(**{field: value})))


def test_without_recipient_account_id_the_envelope_names_the_account():
    event = bucket_event()
    del event["detail"]["recipientAccountId"]  # optional in CloudTrail's record contents
    parsed = parse(body(event))
    assert parsed.account_id == ACCOUNT
    assert touched(parsed) == [Target(ACCOUNT, GLOBAL, Touch(s3.BUCKET, "photos"))]


@pytest.mark.parametrize("account", ["", "12345", "not-an-account"])
def test_with_no_account_anywhere_the_event_is_malformed(account):
    event = bucket_event()
    del event["detail"]["recipientAccountId"]
    event["account"] = account
    with pytest.raises(MalformedEvent, match="no account"):
        parse(body(event))


@pytest.mark.parametrize(
    ("envelope", "match"),
    [
        ({"account": "210987654321"}, "account '210987654321' is not detail.recipientAccountId"),
        ({"source": "aws.ec2"}, "source 'aws.ec2' is not that of detail.eventSource"),
        ({"source": "aws.s3control"}, "source 'aws.s3control'"),
        ({"detail-type": "AWS Console Sign In via CloudTrail"}, "detail-type"),
    ],
)
def test_an_envelope_that_disagrees_with_its_record_is_malformed(envelope, match):
    event = bucket_event() | envelope
    with pytest.raises(MalformedEvent, match=match):
        parse(body(event))
    assert read("m-1", body(event)).status is Status.FAILED


def test_a_missing_envelope_field_is_named():
    event = bucket_event()
    del event["time"]
    with pytest.raises(MalformedEvent, match="time"):
        parse(body(event))


def test_malformed_is_a_named_error_the_record_fails_with():
    outcome = read("m-1", "{}")
    assert outcome.status is Status.FAILED
    assert isinstance(outcome.error, MalformedEvent)
    assert outcome.targets == []


# ---- the registry --------------------------------------------------------------------------


def test_every_declared_source_and_name_maps_to_its_one_rule():
    declared = [
        (svc.event_source, name, rule)
        for svc in SERVICES.values()
        for rule in svc.events
        for name in rule.event_names
    ]
    assert len(RULES) == len(declared)
    for source, name, rule in declared:
        assert RULES[source, name][1] is rule


def test_declaring_an_event_twice_is_refused():
    rule = EventRule(("PutBucketAcl",), s3.bucket_touch)
    twice = Service(
        "twice", False, s3.SERVICE.kinds, (), event_source=s3.SERVICE.event_source, events=(rule,)
    )
    with pytest.raises(ValueError, match="PutBucketAcl"):
        build_rules({"s3": s3.SERVICE, "twice": twice})


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("s3.amazonaws.com", "GetObject"),
        ("iam.amazonaws.com", "CreateVirtualMFADevice"),
        ("lambda.amazonaws.com", "CreateFunction20150331"),
        ("ec2.amazonaws.com", "PutBucketAcl"),  # a name of another source
    ],
)
def test_unknown_events_touch_nothing_and_are_ignored(source, name):
    unknown = cloudtrail.api_call(
        name, event_source=source, account_id=ACCOUNT, region="eu-west-1", request={"bucketName": "photos"}
    )
    event = parse(body(unknown))
    assert rule_for(event) is None
    assert touched(event) == []
    assert read("m-1", body(unknown)).status is Status.IGNORED


def test_a_global_service_touches_in_the_global_region():
    assert touched(parse(body(bucket_event()))) == [Target(ACCOUNT, GLOBAL, Touch(s3.BUCKET, "photos"))]


def test_a_regional_service_touches_in_the_event_region():
    event = cloudtrail.ec2_call("AuthorizeSecurityGroupIngress", ACCOUNT, "eu-west-1", {"groupId": "sg-0abc"})
    assert touched(parse(body(event))) == [Target(ACCOUNT, "eu-west-1", Touch(ec2.SECURITY_GROUP, "sg-0abc"))]


def test_a_rename_touches_both_names_once_each():
    event = cloudtrail.iam_call("UpdateUser", ACCOUNT, {"userName": "al", "newUserName": "alice"})
    assert [t.touch for t in touched(parse(body(event)))] == [Touch(iam.USER, "al"), Touch(iam.USER, "alice")]


def test_a_failed_call_is_ignored():
    outcome = read("m-1", body(bucket_event(errorCode="AccessDenied")))
    assert outcome.status is Status.IGNORED
    assert "AccessDenied" in outcome.reason


def test_an_event_that_touches_nothing_kept_is_ignored():
    subnet = {"resourcesSet": {"items": [{"resourceId": "subnet-0abc"}]}, "tagSet": {"items": []}}
    event = cloudtrail.ec2_call("CreateTags", ACCOUNT, "us-east-1", subnet)  # subnets are not kept
    assert read("m-1", body(event)).status is Status.IGNORED


def test_a_known_event_is_read_with_its_targets():
    outcome = read("m-1", body(bucket_event()))
    assert outcome.status is Status.PROCESSED
    assert outcome.event_id == outcome.event.detail.eventID
    assert outcome.targets == [Target(ACCOUNT, GLOBAL, Touch(s3.BUCKET, "photos"))]
