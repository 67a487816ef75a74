from decimal import Decimal
from typing import Any

import pytest

from qrie_lib.policies.documents import (
    account_of,
    action_covers,
    admin_statements,
    condition_values,
    denies_insecure_transport,
    near_admin_statements,
    principals,
    public_statements,
    statements,
)

BUCKET = "arn:aws:s3:::data"


def allow(**statement: Any) -> dict[str, Any]:
    return {"Effect": "Allow", **statement}


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_statement_may_be_one_object_or_a_list() -> None:
    one = allow(Action="*", Resource="*")
    assert statements({"Statement": one}) == [one]
    assert statements(doc(one, "junk")) == [one]  # type: ignore[arg-type]
    assert statements(None) == statements({}) == []


@pytest.mark.parametrize(
    ("pattern", "service", "covers"),
    [
        ("*", None, True),
        ("*:*", None, True),
        ("s3:*", None, False),
        ("iam:*", None, False),
        ("*", "s3", True),
        ("s3:*", "s3", True),
        ("S3:*", "s3", True),
        ("s3*", "s3", True),
        ("s3:Get*", "s3", False),
        ("s3:GetObject", "s3", False),
        ("ec2:*", "s3", False),
        ("s3:?", "s3", False),
        ("?*", None, True),
    ],
)
def test_action_covers(pattern: str, service: str | None, covers: bool) -> None:
    assert action_covers(pattern, service) is covers


@pytest.mark.parametrize(
    ("statement", "admin"),
    [
        (allow(Action="*", Resource="*"), True),
        (allow(Action=["s3:GetObject", "*"], Resource=["*"]), True),
        (allow(Action="*:*", Resource="*"), True),
        (allow(NotAction=["iam:*", "organizations:*"], Resource="*"), False),  # not CIS 1.16's "*"
        (allow(Action="*", NotResource="arn:aws:s3:::secret/*"), False),
        (allow(Action="iam:*", Resource="*"), False),
        (allow(Action="*", Resource="arn:aws:s3:::data/*"), False),
        (allow(NotAction="iam:*", Resource="arn:aws:s3:::data/*"), False),
        ({"Effect": "Deny", "Action": "*", "Resource": "*"}, False),
    ],
)
def test_admin_statements(statement: dict[str, Any], admin: bool) -> None:
    assert admin_statements(doc(statement)) == ([statement] if admin else [])


@pytest.mark.parametrize(
    ("statement", "near"),
    [
        (allow(Action="*", Resource="*"), True),
        (allow(NotAction=["iam:*", "organizations:*"], Resource="*"), True),
        (allow(NotAction="iam:*", Resource="arn:aws:s3:::data/*"), False),
        ({"Effect": "Deny", "NotAction": "iam:*", "Resource": "*"}, False),
    ],
)
def test_near_admin_statements(statement: dict[str, Any], near: bool) -> None:
    assert near_admin_statements(doc(statement)) == ([statement] if near else [])


@pytest.mark.parametrize(
    ("sources", "public"),
    [(["0.0.0.0/1", "128.0.0.0/1"], True), (["0.0.0.0/1"], False), (["::/1", "8000::/1"], True)],
)
def test_source_ip_ranges_covering_everything_restrict_nothing(sources: list[str], public: bool) -> None:
    statement = allow(Principal="*", Action="s3:GetObject", Resource=f"{BUCKET}/*")
    statement["Condition"] = {"IpAddress": {"aws:SourceIp": sources}}
    assert public_statements(doc(statement)) == ([statement] if public else [])


def test_principal_forms() -> None:
    assert principals({"Principal": "*"}) == {"AWS": ["*"]}
    assert principals({"Principal": {"AWS": "*"}}) == {"AWS": ["*"]}
    assert principals({"Principal": {"AWS": ["arn:aws:iam::1:root"], "Service": "ec2.amazonaws.com"}}) == {
        "AWS": ["arn:aws:iam::1:root"],
        "Service": ["ec2.amazonaws.com"],
    }
    assert principals({"Principal": {"Federated": "cognito-identity.amazonaws.com"}}) == {
        "Federated": ["cognito-identity.amazonaws.com"]
    }
    assert principals({}) == {}


READ = {"Action": "s3:GetObject", "Resource": f"{BUCKET}/*"}


@pytest.mark.parametrize(
    ("statement", "public"),
    [
        (allow(Principal="*", **READ), True),
        (allow(Principal={"AWS": "*"}, **READ), True),
        (allow(Principal={"AWS": ["arn:aws:iam::123456789012:root", "*"]}, **READ), True),
        (allow(NotPrincipal={"AWS": "arn:aws:iam::123456789012:root"}, **READ), True),
        (allow(Principal={"AWS": "arn:aws:iam::123456789012:root"}, **READ), False),
        (allow(Principal={"AWS": "123456789012"}, **READ), False),
        (allow(Principal={"AWS": "arn:aws:iam::*:root"}, **READ), True),
        (allow(Principal={"Service": "cloudtrail.amazonaws.com"}, **READ), False),
        ({"Effect": "Deny", "Principal": "*", **READ}, False),
        # conditions on who the caller is restrict; negations and transport do not
        *(
            (allow(Principal="*", Condition={op: {key: value}}, **READ), False)
            for op, key, value in [
                ("StringEquals", "aws:PrincipalOrgID", "o-abc123"),
                ("StringEquals", "aws:SourceVpce", "vpce-1a2b"),
                ("StringEquals", "aws:SourceVpc", "vpc-1a2b"),
                ("IpAddress", "aws:SourceIp", "203.0.113.0/24"),
                ("StringEquals", "aws:PrincipalAccount", "123456789012"),
                ("StringEquals", "aws:SourceAccount", "123456789012"),
                ("ArnLike", "aws:SourceArn", "arn:aws:cloudtrail:us-east-1:123456789012:trail/t"),
                ("ArnEquals", "aws:PrincipalArn", "arn:aws:iam::123456789012:role/r"),
            ]
        ),
        (allow(Principal="*", Condition={"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}, **READ), True),
        # as read back from DynamoDB, where a JSON number is a Decimal
        (
            allow(
                Principal="*",
                Condition={"StringEquals": {"aws:SourceAccount": Decimal(123456789012)}},
                **READ,
            ),
            False,
        ),
        (
            allow(Principal="*", Condition={"StringNotEquals": {"aws:PrincipalOrgID": "o-abc123"}}, **READ),
            True,
        ),
        (allow(Principal="*", Condition={"Bool": {"aws:SecureTransport": "true"}}, **READ), True),
    ],
)
def test_public_statements(statement: dict[str, Any], public: bool) -> None:
    assert public_statements(doc(statement)) == ([statement] if public else [])


def test_condition_values_ignore_negated_and_null_operators() -> None:
    statement = {
        "Condition": {
            "StringEquals": {"STS:ExternalId": ["a", "b"]},
            "StringNotEquals": {"sts:ExternalId": "c"},
            "Null": {"sts:ExternalId": "false"},
        }
    }
    assert condition_values(statement, "sts:ExternalId") == ["a", "b"]
    assert condition_values({}, "sts:ExternalId") == []


@pytest.mark.parametrize(
    ("principal", "account"),
    [
        ("123456789012", "123456789012"),
        ("arn:aws:iam::123456789012:root", "123456789012"),
        ("arn:aws:iam::123456789012:role/path/r", "123456789012"),
        ("arn:aws:sts::123456789012:assumed-role/r/s", "123456789012"),
        ("*", None),
        ("ec2.amazonaws.com", None),
    ],
)
def test_account_of(principal: str, account: str | None) -> None:
    assert account_of(principal) == account


DENY_HTTP = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": [BUCKET, f"{BUCKET}/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


@pytest.mark.parametrize(
    ("changes", "denies"),
    [
        ({}, True),
        ({"Principal": {"AWS": "*"}, "Action": ["*"], "Resource": "*"}, True),
        ({"Condition": {"Bool": {"aws:SecureTransport": False}}}, True),
        ({"Effect": "Allow"}, False),
        ({"Principal": {"AWS": "arn:aws:iam::123456789012:root"}}, False),
        ({"Action": "s3:GetObject"}, False),
        ({"Resource": f"{BUCKET}/*"}, False),
        ({"Resource": [BUCKET, f"{BUCKET}/?"]}, False),
        ({"Resource": f"{BUCKET}*"}, True),
        ({"Condition": {"Bool": {"aws:SecureTransport": "true"}}}, False),
        (
            {
                "Condition": {
                    "Bool": {"aws:SecureTransport": "false"},
                    "StringEquals": {"aws:PrincipalAccount": "123456789012"},
                }
            },
            False,
        ),
    ],
)
def test_denies_insecure_transport(changes: dict[str, Any], denies: bool) -> None:
    assert denies_insecure_transport(DENY_HTTP | changes, BUCKET) is denies
