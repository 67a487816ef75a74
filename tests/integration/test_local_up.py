"""``qrie local up`` as a user runs it: a separate process serving the embedded runtime with a
simulated organisation, driven only through the ``qrie`` command line (each command its own
process). The one thing not done through ``qrie`` is the person's change in a customer account,
made with an AWS SDK client as that person would."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from orchestration import cloudtrail
from orchestration.credentials import FAKE_CREDENTIALS
from orchestration.simulated_org import SEED_ROLE, WORLD, account_id
from qrie_lib.aws import Aws
from qrie_lib.frameworks.registry import get_framework
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.settings import Settings
from tests.integration.conftest import QRIE, local_up

pytestmark = pytest.mark.slow

A1, A2 = account_id(1), account_id(2)


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with local_up(tmp_path_factory.mktemp("local-up"), accounts=2) as url:
        yield url


def qrie(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [QRIE, *args, "--endpoint", endpoint]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"qrie {' '.join(args)}: {result.returncode}\n{result.stderr}"
    return result


def qrie_json(endpoint: str, *args: str) -> Any:
    return json.loads(qrie(endpoint, *args).stdout)


def findings(endpoint: str, *filters: str) -> set[tuple[str, str, str]]:
    rows = qrie_json(endpoint, "findings", "--format", "json", *filters)
    return {(r["policy_id"], r["account_id"], r["arn"]) for r in rows}


def fsbp_report(endpoint: str) -> dict[str, dict[str, Any]]:
    """``qrie compliance aws-fsbp``: every control listed; one no policy implements is never PASS."""
    report = qrie_json(endpoint, "compliance", "aws-fsbp", "--format", "json")
    assert [c["id"] for c in report["controls"]] == [c.id for c in get_framework("aws-fsbp").controls]
    for control in report["controls"]:
        if not control["policy_ids"]:
            assert control["status"] == "NOT_EVALUATED", control["id"]
            assert {r["code"] for o in control["accounts"].values() for r in o["reasons"]} == {"NO_POLICY"}
    return {c["id"]: c for c in report["controls"]}


def test_a_user_session_against_qrie_local_up(endpoint, tmp_path):
    accounts = qrie_json(endpoint, "accounts", "list", "--json")
    assert [(a["account_id"], a["ou_path"]) for a in accounts] == [(A1, "/root/prod/"), (A2, "/root/dev/")]

    inventory = qrie_json(endpoint, "inventory", "--json")
    assert inventory["execution_status"] == "SUCCEEDED", inventory
    # four planted buckets and the trail's, per account
    assert inventory["run"]["resources_by_type"]["AWS::S3::Bucket"] == 10
    assert inventory["run"]["failed_items"] == []

    qrie(endpoint, "policies", "launch", "--all", "--wait")
    launched = qrie_json(endpoint, "policies", "list", "--launched", "--json")
    assert sorted(p["policy_id"] for p in launched) == sorted(CATALOGUE)
    assert {p["status"] for p in launched} == {"ACTIVE"}
    scan = qrie_json(endpoint, "scan", "--json")
    assert scan["execution_status"] == "SUCCEEDED", scan

    # The simulated org's planted misconfigurations, and not their correct counterparts.
    active = findings(endpoint)
    for acct in (A1, A2):
        assert ("IAMUserMfaDisabled", acct, f"arn:aws:iam::{acct}:user/alice") in active
        assert ("IAMUserMfaDisabled", acct, f"arn:aws:iam::{acct}:user/bob") not in active
    assert ("S3BucketPublicWriteAcl", A1, "arn:aws:s3:::sim01-public-assets") in active
    assert ("S3BucketPublicWriteAcl", A2, "arn:aws:s3:::sim02-public-assets") not in active
    assert findings(endpoint, "--account", A2) == {f for f in active if f[1] == A2}
    fsbp = fsbp_report(endpoint)
    assert {o["status"] for o in fsbp["S3.5"]["accounts"].values()} == {"FAIL"}  # none denies plain HTTP

    # A person opens SSH to the world on the "web" group; CloudTrail's record goes through the queue.
    for key, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    ec2 = Aws(Settings(endpoint_url=endpoint)).in_account(A1, SEED_ROLE).client("ec2", "us-east-1")
    group = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["web"]}])[
        "SecurityGroups"
    ][0]["GroupId"]
    web = ("EC2SecurityGroupSshOpenToWorld", A1, f"arn:aws:ec2:us-east-1:{A1}:security-group/{group}")
    ssh_open = ("--policy", "EC2SecurityGroupSshOpenToWorld", "--account", A1)
    assert web not in findings(endpoint, *ssh_open)
    assert web[2] not in {f["arn"] for f in fsbp["EC2.13"]["accounts"][A1]["failing_resources"]}
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": WORLD}]}],
    )
    rule = {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipRanges": {"items": [{"cidrIp": WORLD}]}}
    change = tmp_path / "change.json"
    record = cloudtrail.ec2_call(
        "AuthorizeSecurityGroupIngress",
        A1,
        "us-east-1",
        {"groupId": group, "ipPermissions": {"items": [rule]}},
    )["detail"]  # the bare CloudTrail record, as the console's event history shows it
    change.write_text(json.dumps(record))

    assert qrie_json(endpoint, "events", "send", str(change), "--json")["sent"] == 1
    drained = qrie_json(endpoint, "events", "drain", "--json")
    assert (drained["processed"], drained["failed"]) == (1, 0), drained
    assert web in findings(endpoint, *ssh_open)
    failing = fsbp_report(endpoint)["EC2.13"]["accounts"][A1]["failing_resources"]
    assert web[2] in {f["arn"] for f in failing}
