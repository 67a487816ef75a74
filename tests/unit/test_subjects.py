"""Subjects: an ARN AWS owns (shared by every account) is qualified by the account; any other ARN
is its own subject; the ARN is recovered from either."""

from __future__ import annotations

import pytest

from qrie_lib.errors import AccountRequired
from qrie_lib.subjects import requested, shared, subject, subject_arn

A1 = "111122223333"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
CHINA = "arn:aws-cn:iam::aws:policy/service-role/AWSConfigRole"
OWN = (
    "arn:aws:iam::111122223333:policy/deploy@team",  # IAM names may hold "@"
    "arn:aws:s3:::logs",
    "arn:aws:ec2:us-east-1:111122223333:volume/vol-1",
    "arn:aws:iam::111122223333:root",
    "not-an-arn",
)


@pytest.mark.parametrize("arn", [ADMIN, CHINA])
def test_an_aws_owned_arn_is_keyed_per_account(arn):
    assert shared(arn)
    assert subject(arn, A1) == f"{arn}@{A1}"
    assert subject(arn, A1) != subject(arn, "444455556666")
    assert subject_arn(subject(arn, A1)) == arn
    assert requested(arn, A1) == subject(arn, A1)
    with pytest.raises(AccountRequired):
        requested(arn, None)


@pytest.mark.parametrize("arn", OWN)
def test_any_other_arn_is_its_own_subject(arn):
    assert not shared(arn)
    assert subject(arn, A1) == arn
    assert subject_arn(arn) == arn
    assert requested(arn, None) == requested(arn, A1) == arn
