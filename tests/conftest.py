"""Shared fixtures: moto's AWS emulation in process, an Aws factory, and a customer account."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# Before moto is imported: its default AMI catalogue would seed ~1,300 snapshots per account.
os.environ.setdefault(
    "MOTO_AMIS_PATH", str(Path(__file__).parents[1] / "orchestration" / "data" / "amis.json")
)
for var, value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_METRICS_NAMESPACE": "QrieTests",
    "POWERTOOLS_SERVICE_NAME": "qrie",
}.items():
    os.environ[var] = value

import boto3  # noqa: E402
import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402

from qrie_lib.aws import Aws, reset_aws  # noqa: E402
from qrie_lib.services.base import CollectContext  # noqa: E402
from qrie_lib.settings import Settings  # noqa: E402

CUSTOMER = "111111111111"
TEST_EXTERNAL_ID = "unit-tests-external-id"  # the unit tests' fallback (moto does not check it)
REGION = "us-east-1"


@pytest.fixture
def moto_env() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def aws(moto_env: None) -> Iterator[Aws]:
    factory = Aws(Settings(page_size=2, external_id=TEST_EXTERNAL_ID))
    reset_aws(factory)
    yield factory
    reset_aws(None)


def session_in(account: str) -> boto3.Session:
    """A boto3 session inside ``account`` (moto switches account on AssumeRole)."""
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/seed", RoleSessionName="seed"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )


@pytest.fixture
def customer(moto_env: None) -> boto3.Session:
    """A boto3 session inside the customer account."""
    return session_in(CUSTOMER)


def make_ctx(aws: Aws, region: str = REGION, page_size: int = 2) -> CollectContext:
    return CollectContext(aws=aws, account_id=CUSTOMER, region=region, page_size=page_size)


def collect_all(ctx: CollectContext, kind) -> tuple[list, int]:
    """Every resource of one kind, page by page; also how many pages it took."""
    found, token, pages = [], None, 0
    while True:
        page = kind.list_page(ctx, token)
        found.extend(page.resources)
        pages += 1
        token = page.next_token
        if token is None:
            return found, pages
