"""A finding's subject: the resource it judges, as the findings and history tables key it.

An ARN names its account (``arn:aws:ec2:us-east-1:111122223333:volume/vol-1``) or none (an S3
bucket: one account holds it at a time, bucket names being global), and both are their own subject.
AWS managed policies are AWS's own resources, one ARN in every account
(``arn:aws:iam::aws:policy/AdministratorAccess``), which each account attaches to its own
principals: their findings are per account, so their subject is the ARN qualified by the account,
``{arn}@{account}``. ARNs show the ARN; only keys use the subject."""

from __future__ import annotations

from qrie_lib.errors import AccountRequired

AWS_OWNED = "aws"  # the account field of the ARNs AWS owns and shares with every account
SEPARATOR = "@"


def shared(arn: str) -> bool:
    """The ARN is the same resource in every account (an AWS managed policy)."""
    fields = arn.split(":", 5)
    return len(fields) == 6 and fields[0] == "arn" and fields[4] == AWS_OWNED


def subject(arn: str, account_id: str) -> str:
    return f"{arn}{SEPARATOR}{account_id}" if shared(arn) else arn


def subject_arn(key: str) -> str:
    """The ARN of a subject."""
    arn, _, account = key.rpartition(SEPARATOR)
    return arn if arn and shared(arn) and account.isdigit() else key


def requested(arn: str, account_id: str | None) -> str:
    """The subject a request names (the API's and console's ``arn`` and optional ``account``)."""
    if account_id is None and shared(arn):
        raise AccountRequired(f"{arn} is AWS's, attached in many accounts: name the account")
    return subject(arn, account_id) if account_id else arn
