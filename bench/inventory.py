"""Inventory throughput on the embedded runtime.

Runs the inventory state machine over a simulated organisation (default 20 accounts) and, in the
same process against the same emulated accounts, a minimal hand-written boto3 walk that makes
the textbook per-resource calls (list, then describe each resource). Prints resources/second and
AWS API calls per resource by service for both, and their ratios.

    python -m bench.inventory [--accounts 20]
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections import Counter
from typing import Any

from orchestration.runtime import LocalRuntime
from orchestration.simulated_org import SimulatedOrg
from qrie_lib import executions
from qrie_lib.aws import AccountSession
from qrie_lib.services.registry import service_of_client


def naive_walk(session: AccountSession, account: str, regions: tuple[str, ...]) -> Counter[str]:
    """The per-resource walk a first script would do; returns resources found per service (the
    factory counts its calls)."""

    def client(service: str, region: str = "us-east-1") -> Any:
        return session.client(service, region)

    found: Counter[str] = Counter()
    s3 = client("s3")
    for bucket in s3.list_buckets()["Buckets"]:
        name = bucket["Name"]
        for call in ("get_bucket_location", "get_bucket_acl", "get_bucket_versioning", "get_bucket_logging"):
            getattr(s3, call)(Bucket=name)
        for call in (
            "get_public_access_block",
            "get_bucket_policy",
            "get_bucket_policy_status",
            "get_bucket_encryption",
            "get_bucket_ownership_controls",
            "get_bucket_tagging",
        ):
            with contextlib.suppress(s3.exceptions.ClientError):
                getattr(s3, call)(Bucket=name)
        found["s3"] += 1
    with contextlib.suppress(Exception):
        client("s3control").get_public_access_block(AccountId=account)
    found["s3"] += 1

    for region in regions:
        ec2 = client("ec2", region)
        for reservation in ec2.describe_instances()["Reservations"]:
            found["ec2"] += len(reservation["Instances"])
        found["ec2"] += len(ec2.describe_security_groups()["SecurityGroups"])
        found["ec2"] += len(ec2.describe_volumes()["Volumes"])
        for snapshot in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]:
            ec2.describe_snapshot_attribute(
                SnapshotId=snapshot["SnapshotId"], Attribute="createVolumePermission"
            )
            found["ec2"] += 1
        for vpc in ec2.describe_vpcs()["Vpcs"]:
            ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc["VpcId"]]}])
            found["ec2"] += 1
        ec2.get_ebs_encryption_by_default()
        found["ec2"] += 1

    iam = client("iam")
    for user in iam.list_users()["Users"]:
        name = user["UserName"]
        for call in (
            "list_access_keys",
            "list_mfa_devices",
            "list_attached_user_policies",
            "list_user_policies",
            "list_groups_for_user",
        ):
            getattr(iam, call)(UserName=name)
        with contextlib.suppress(iam.exceptions.NoSuchEntityException):
            iam.get_login_profile(UserName=name)
        found["iam"] += 1
    for role in iam.list_roles()["Roles"]:
        iam.list_attached_role_policies(RoleName=role["RoleName"])
        iam.list_role_policies(RoleName=role["RoleName"])
        found["iam"] += 1
    for group in iam.list_groups()["Groups"]:
        iam.list_attached_group_policies(GroupName=group["GroupName"])
        iam.list_group_policies(GroupName=group["GroupName"])
        found["iam"] += 1
    for policy in iam.list_policies(Scope="Local")["Policies"]:
        iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
        found["iam"] += 1
    iam.get_account_summary()
    with contextlib.suppress(iam.exceptions.NoSuchEntityException):
        iam.get_account_password_policy()
    found["iam"] += 2
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20)
    args = parser.parse_args()

    with LocalRuntime() as runtime:
        aws = runtime.aws
        assert aws is not None
        org = SimulatedOrg(aws, args.accounts)
        print(f"seeding {args.accounts} accounts ...", flush=True)
        org.create()

        aws.calls.clear()
        start = time.perf_counter()
        arn = executions.start(aws, "inventory", {"service": "all"})
        outcome = executions.follow(aws, "inventory", arn)
        qrie_s = time.perf_counter() - start
        summary = executions.run_summary(aws, "inventory", arn) or {}
        qrie_resources: Counter[str] = Counter()
        for resource_type, n in summary["resources_by_type"].items():
            qrie_resources[resource_type.split("::")[1].lower()] += n
        qrie_calls: Counter[str] = Counter()
        for call, n in aws.calls.items():
            client = call.split(".")[0]
            service = "sts" if client == "sts" else getattr(service_of_client(client), "name", None)
            if service:
                qrie_calls[service] += n

        naive_resources: Counter[str] = Counter()
        before = Counter(aws.calls)
        start = time.perf_counter()
        for account in org.account_ids:
            naive_resources += naive_walk(org.session(account), account, aws.settings.regions)
        naive_s = time.perf_counter() - start
        naive_calls: Counter[str] = Counter({"sts": len(org.account_ids)})  # one AssumeRole each
        for call, n in (aws.calls - before).items():
            client = call.split(".")[0]
            naive_calls["s3" if client == "s3control" else client] += n

    total_q, total_n = sum(qrie_resources.values()), sum(naive_resources.values())
    print(f"\ninventory of {args.accounts} accounts: execution {outcome.status}, {total_q} resources")
    print(f"{'':8}{'qrie calls/res':>16}{'naive calls/res':>17}{'ratio':>8}")
    for service in ("s3", "ec2", "iam"):
        q = qrie_calls[service] / max(qrie_resources[service], 1)
        n = naive_calls[service] / max(naive_resources[service], 1)
        print(f"{service:8}{q:16.2f}{n:17.2f}{q / n:8.2f}")
    for service in sorted(set(qrie_resources) - {"s3", "ec2", "iam"}):  # no naive walk for these
        q = qrie_calls[service] / max(qrie_resources[service], 1)
        print(f"{service:8}{q:16.2f}{'-':>17}{'-':>8}   ({qrie_resources[service]} resources)")
    q_all = sum(qrie_calls.values()) / total_q
    n_all = sum(naive_calls.values()) / total_n
    print(
        f"{'all':8}{q_all:16.2f}{n_all:17.2f}{q_all / n_all:8.2f}"
        f"   (sts: qrie {qrie_calls['sts']}, naive {naive_calls['sts']})"
    )
    print(
        f"\nresources/second: qrie pipeline {total_q / qrie_s:.1f} (state machine, DynamoDB writes, sweep)"
        f" vs bare walk {total_n / naive_s:.1f} (calls only);"
        f" ratio {(total_q / qrie_s) / (total_n / naive_s):.2f}"
    )


if __name__ == "__main__":
    main()
