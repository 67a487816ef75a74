"""EFS (CIS 2.4.1), Security Hub (CIS 4.16) and Access Analyzer (CIS 1.20) policies."""

from __future__ import annotations

from typing import Any

import pytest

from qrie_lib.models import Resource
from qrie_lib.policies.registry import get_policy
from qrie_lib.services.accessanalyzer import ANALYZERS
from qrie_lib.services.efs import FILE_SYSTEM
from qrie_lib.services.securityhub import HUB
from qrie_lib.timeutil import now_iso


def resource(resource_type: str, service: str, **config: Any) -> Resource:
    return Resource(
        arn=f"arn:aws:{service}:us-east-1:111111111111:x",
        account_id="111111111111",
        service=service,
        region="us-east-1",
        resource_type=resource_type,
        configuration=config,
        describe_time=now_iso(),
    )


def analyzer(status: str) -> dict[str, str]:
    return {"name": "a", "type": "ACCOUNT", "status": status}


CASES = [
    ("EFSFileSystemUnencrypted", resource(FILE_SYSTEM, "efs", Encrypted=False), False),
    ("EFSFileSystemUnencrypted", resource(FILE_SYSTEM, "efs", Encrypted=True), True),
    ("SecurityHubDisabled", resource(HUB, "securityhub", Enabled=False), False),
    ("SecurityHubDisabled", resource(HUB, "securityhub", Enabled=True), True),
    (
        "SecurityHubDisabled",
        resource(
            HUB, "securityhub", Enabled=None, CollectErrors=[{"call": "DescribeHub", "code": "AccessDenied"}]
        ),
        None,
    ),
    ("AccessAnalyzerDisabled", resource(ANALYZERS, "accessanalyzer", Analyzers=[]), False),
    (
        "AccessAnalyzerDisabled",
        resource(ANALYZERS, "accessanalyzer", Analyzers=[analyzer("DISABLED")]),
        False,
    ),
    (
        "AccessAnalyzerDisabled",
        resource(ANALYZERS, "accessanalyzer", Analyzers=[analyzer("CREATING")]),
        False,
    ),
    (
        "AccessAnalyzerDisabled",
        resource(ANALYZERS, "accessanalyzer", Analyzers=[analyzer("FAILED"), analyzer("ACTIVE")]),
        True,
    ),
    (
        "AccessAnalyzerDisabled",
        resource(
            ANALYZERS,
            "accessanalyzer",
            Analyzers=None,
            CollectErrors=[{"call": "ListAnalyzers", "code": "NotEmulated"}],
        ),
        None,
    ),
]


@pytest.mark.parametrize(("policy_id", "target", "compliant"), CASES)
def test_policy(policy_id: str, target: Resource, compliant: bool | None) -> None:
    assert get_policy(policy_id).evaluate(target, {}).compliant is compliant
