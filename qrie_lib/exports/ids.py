"""A finding's identity outside Qrie: the same (subject, PolicyId) always gives the same id, so a
re-export updates the record it exported before instead of adding one (the subject: the ARN, or
for an AWS managed policy the ARN in one account, ``qrie_lib.subjects``)."""

from __future__ import annotations

import hashlib

from qrie_lib.subjects import subject


def finding_uid(arn: str, account_id: str, policy_id: str) -> str:
    """``qrie/<policy>/<sha256 of subject and policy>``: bounded length (Security Hub ids ≤ 512
    characters; ARNs can be longer) and readable by policy."""
    digest = hashlib.sha256(f"{subject(arn, account_id)}\n{policy_id}".encode()).hexdigest()
    return f"qrie/{policy_id}/{digest}"
