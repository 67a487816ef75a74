"""A finding's identity outside Qrie: the same (subject, PolicyId) always gives the same id, so a
re-export updates the record it exported before instead of adding one (the subject: the ARN, or
for an AWS managed policy the ARN in one account, ``qrie_lib.subjects``)."""

from __future__ import annotations

import hashlib

from qrie_lib.subjects import subject


def finding_uid(arn: str, account_id: str, policy_id: str) -> str:
    """``qrie/<policy>/<sha256 of subject and policy>``: bounded length (Security Hub ids ≤ 512
    characters; ARNs can be longer) and readable by policy."""
    return uid_of_key(subject(arn, account_id), policy_id)


def uid_of_key(key: str, policy_id: str) -> str:
    """The id of the finding stored under ``key`` (a subject; or, before subjects, a bare ARN)."""
    digest = hashlib.sha256(f"{key}\n{policy_id}".encode()).hexdigest()
    return f"qrie/{policy_id}/{digest}"
