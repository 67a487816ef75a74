"""The client factory: adaptive retries on throttling, one AssumeRole per account, named errors."""

from __future__ import annotations

import pytest
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse

from orchestration import emulation
from qrie_lib.errors import AccountAccessDenied
from tests.conftest import CUSTOMER, REGION

THROTTLED = (
    b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded."
    b"</Message></Error></Errors><RequestID>r-1</RequestID></Response>"
)


def test_throttling_is_retried_by_the_client_itself(aws, customer):
    client = aws.customer_client(CUSTOMER, "ec2", REGION)
    left = {"throttles": 2}

    def throttle(request, **_):
        if left["throttles"]:
            left["throttles"] -= 1
            return AWSResponse(request.url, 503, {}, MockRawResponse(THROTTLED))
        return None

    client.meta.events.register_first("before-send.ec2.DescribeVpcs", throttle)
    vpcs = client.describe_vpcs()["Vpcs"]
    assert left["throttles"] == 0
    assert vpcs  # the default VPC, once the throttling passed
    assert aws.calls["ec2.DescribeVpcs"] == 1  # one call for the caller; the retries are botocore's


def test_one_assume_role_per_account_for_all_its_clients(aws, customer):
    for service in ("ec2", "s3", "iam"):
        aws.customer_client(CUSTOMER, service, REGION)
    aws.customer_client(CUSTOMER, "ec2", "eu-west-1")
    assert aws.calls["sts.AssumeRole"] == 1


def test_a_role_that_cannot_be_assumed_is_a_named_error(aws, customer):
    emulation.guard_assume_role(aws.settings.role_name)
    try:
        with pytest.raises(AccountAccessDenied, match="QrieReadOnly"):
            aws.customer_client(CUSTOMER, "ec2", REGION)
    finally:
        emulation.uninstall()


def test_only_the_most_recent_accounts_keep_their_clients(aws, customer, monkeypatch):
    """A warm task serving thousands of accounts keeps a bounded number of sessions and clients."""
    monkeypatch.setattr("qrie_lib.aws.MAX_CACHED_ACCOUNTS", 2)
    accounts = [f"{n:012d}" for n in (111111111111, 222222222222, 333333333333)]
    for account in accounts:
        for service in ("ec2", "s3"):
            aws.customer_client(account, service, REGION)
    cached = {key[0] for key in aws._clients if key[0]}
    assert cached == set(accounts[1:])
    assert aws.calls["sts.AssumeRole"] == 3
    aws.customer_client(accounts[1], "ec2", REGION)  # still cached: no new AssumeRole
    aws.customer_client(accounts[0], "ec2", REGION)  # evicted: assumed again
    assert aws.calls["sts.AssumeRole"] == 4
    assert {key[0] for key in aws._clients if key[0]} == {accounts[0], accounts[1]}


def test_the_customer_sides_own_account_is_read_with_its_credentials_without_a_role(moto_env):
    from qrie_lib.aws import Aws
    from qrie_lib.settings import Settings

    aws = Aws(Settings(customer_self=True))  # no ExternalId anywhere: none is needed for one's own
    own = aws.self_account()
    aws.customer_client(own, "s3").list_buckets()
    assert aws.customer_calls["s3.ListBuckets"] == 1  # counted (and capped) as a customer call
    assert "sts.AssumeRole" not in aws.calls
    with pytest.raises(AccountAccessDenied, match="no ExternalId"):  # any other account: its role
        aws.customer_client(CUSTOMER, "s3")
