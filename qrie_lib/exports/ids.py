"""A finding's identity outside Qrie: the same (ARN, PolicyId) always gives the same id, so a
re-export updates the record it exported before instead of adding one."""

from __future__ import annotations

import hashlib


def finding_uid(arn: str, policy_id: str) -> str:
    """``qrie/<policy>/<sha256 of ARN and policy>``: bounded length (Security Hub ids ≤ 512
    characters; ARNs can be longer) and readable by policy."""
    digest = hashlib.sha256(f"{arn}\n{policy_id}".encode()).hexdigest()
    return f"qrie/{policy_id}/{digest}"
