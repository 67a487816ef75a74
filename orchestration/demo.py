"""``qrie demo``: the whole pipeline on the embedded default, in one process."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestration import cloudtrail, events_queue
from orchestration.runtime import LocalRuntime
from orchestration.simulated_org import EVERYONE, WORLD, SimulatedOrg
from qrie_lib import executions, lifecycle
from qrie_lib.aws import AccountSession, Aws
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.services.registry import service_of_client
from qrie_lib.stores import Stores
from qrie_lib.stores.findings import FindingState
from qrie_lib.views import findings_rows

Say = Callable[[str], None]
LOCAL = "http://127.0.0.1:4566"  # qrie local up's default endpoint
# What the demo's summary ends with: the same pipeline kept running, and where to look at it.
NEXT_STEPS = (  # (command, why)
    ("source .venv/bin/activate", "qrie on your PATH (after make demo)"),
    ("qrie local up", "this pipeline as a local AWS endpoint, until Ctrl-C"),
    (f"export QRIE_ENDPOINT={LOCAL}", "then, in another terminal, every command uses it:"),
    ("qrie inventory && qrie policies launch --all --wait", ""),
    ("qrie findings --severity critical", "or --format json|csv, --fail-on high"),
    ("qrie console", "the console, opened in your browser"),
)


def run_demo(
    accounts: int = 3, say: Say = lambda _: None, progress: executions.Progress | None = None
) -> dict[str, Any]:
    with LocalRuntime() as runtime:
        aws = runtime.aws
        assert aws is not None
        say(f"Simulated organisation: {accounts} accounts")
        org = SimulatedOrg(aws, accounts)
        org.create()
        aws.calls.clear()  # count the pipeline's calls, not the seeding's

        say("Inventory: running the inventory state machine")
        arn = executions.start(aws, "inventory", {"service": "all"})
        outcome = executions.follow(aws, "inventory", arn, progress)
        summary = executions.run_summary(aws, "inventory", arn) or {}
        api_calls = sum(n for call, n in aws.calls.items() if _customer_call(call))

        say(f"Scan: launching the catalogue ({len(CATALOGUE)} policies) and scanning")
        stores = Stores.of(aws)
        lifecycle.launch(stores, sorted(CATALOGUE))
        scan_arn = executions.start(aws, "scan", {})
        scan = executions.follow(aws, "scan", scan_arn, progress)
        active = findings_rows(stores, state=FindingState.ACTIVE)
        result = {
            "accounts": accounts,
            "inventory": {
                "execution_status": outcome.status,
                "resources_by_type": summary.get("resources_by_type", {}),
                "failed_items": summary.get("failed_items", []),
                "api_calls": api_calls,
            },
            "scan": {
                "execution_status": scan.status,
                "findings": {
                    FindingState.ACTIVE.value: len(active),
                    FindingState.RESOLVED.value: len(findings_rows(stores, state=FindingState.RESOLVED)),
                },
                "by_policy": dict(sorted(Counter(r["policy_id"] for r in active).items())),
            },
        }

        say("Events: a person changes four resources; their CloudTrail events go through the queue")
        return result | {"events": run_events(aws, org, stores, say)}


def _customer_call(call: str) -> bool:
    """Calls to customer accounts' APIs (not the operator's tables, bucket and engine)."""
    client = call.split(".", 1)[0]
    return client == "sts" or service_of_client(client) is not None


# ---- real-time events ------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """Something a person did in a customer account, and what CloudTrail recorded of it."""

    description: str
    arn: str
    events: list[dict[str, Any]]


def run_events(aws: Aws, org: SimulatedOrg, stores: Stores, say: Say) -> dict[str, Any]:
    """Change a few resources of the first account, queue the matching events, drain the queue;
    the findings that opened and resolved, per change."""
    account = org.account_ids[0]
    before = active_findings(stores, account)
    changes = person_changes(org.session(account), account, aws.settings.regions[0])
    for change in changes:
        say(f"  {change.description}")
    events_queue.send_events(aws, [event for change in changes for event in change.events])
    report = events_queue.drain(aws)
    after = active_findings(stores, account)
    opened, resolved = after - before, before - after
    return {
        "processed": report.count("processed"),
        "failed": report.count("failed"),
        "findings_opened": len(opened),
        "findings_resolved": len(resolved),
        "p99_ms": round(report.percentile_ms(99), 1),
        "changes": [
            {
                "change": change.description,
                "arn": change.arn,
                "events": [e["detail"]["eventName"] for e in change.events],
                "opened": sorted(policy for arn, policy in opened if arn == change.arn),
                "resolved": sorted(policy for arn, policy in resolved if arn == change.arn),
            }
            for change in changes
        ],
    }


def active_findings(stores: Stores, account_id: str) -> set[tuple[str, str]]:
    return {
        (r["arn"], r["policy_id"])
        for r in findings_rows(stores, state=FindingState.ACTIVE, account_id=account_id)
    }


def person_changes(session: AccountSession, account: str, region: str) -> list[Change]:
    ec2 = session.client("ec2", region)
    return [
        make_bucket_public(session.client("s3"), account),
        open_ssh(ec2, account, region),
        enable_mfa(session.client("iam"), account),
        delete_unencrypted_volume(ec2, account, region),
    ]


def make_bucket_public(s3: Any, account: str) -> Change:
    bucket = "sim01-logs"
    owner = s3.get_bucket_acl(Bucket=bucket)["Owner"]["ID"]
    grants = {"GrantFullControl": f'id="{owner}"', "GrantRead": EVERYONE}
    s3.put_bucket_acl(Bucket=bucket, **grants)
    event = cloudtrail.s3_call(
        "PutBucketAcl",
        account,
        bucket,
        acl=[""],
        **{"x-amz-grant-full-control": [grants["GrantFullControl"]]},
    )
    event["detail"]["requestParameters"]["x-amz-grant-read"] = [EVERYONE]
    return Change(f"made bucket {bucket} publicly readable", f"arn:aws:s3:::{bucket}", [event])


def open_ssh(ec2: Any, account: str, region: str) -> Change:
    group = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["web"]}])[
        "SecurityGroups"
    ][0]
    permission = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": WORLD}]}
    answer = ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[permission])
    rule = {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipRanges": {"items": [{"cidrIp": WORLD}]}}
    event = cloudtrail.ec2_call(
        "AuthorizeSecurityGroupIngress",
        account,
        region,
        {"groupId": group["GroupId"], "ipPermissions": {"items": [rule]}},
        {
            "securityGroupRuleSet": {
                "items": [
                    {
                        "groupId": group["GroupId"],
                        "securityGroupRuleId": r["SecurityGroupRuleId"],
                        "isEgress": False,
                    }
                    for r in answer.get("SecurityGroupRules", [])
                ]
            }
        },
    )
    arn = f"arn:aws:ec2:{region}:{account}:security-group/{group['GroupId']}"
    return Change(f"opened SSH to the world on security group web ({group['GroupId']})", arn, [event])


def enable_mfa(iam: Any, account: str) -> Change:
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName="alice")["VirtualMFADevice"]
    serial = device["SerialNumber"]
    iam.enable_mfa_device(
        UserName="alice", SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321"
    )
    created = cloudtrail.iam_call(  # declared by no service: acknowledged and ignored
        "CreateVirtualMFADevice",
        account,
        {"virtualMFADeviceName": "alice", "path": "/"},
        {"virtualMFADevice": {"serialNumber": serial}},
    )
    enabled = cloudtrail.iam_call("EnableMFADevice", account, {"userName": "alice", "serialNumber": serial})
    return Change(
        "enabled an MFA device for user alice", f"arn:aws:iam::{account}:user/alice", [created, enabled]
    )


def delete_unencrypted_volume(ec2: Any, account: str, region: str) -> Change:
    volumes = ec2.describe_volumes(Filters=[{"Name": "encrypted", "Values": ["false"]}])["Volumes"]
    volume = next(v["VolumeId"] for v in volumes if not v.get("Attachments"))
    ec2.delete_volume(VolumeId=volume)
    event = cloudtrail.ec2_call("DeleteVolume", account, region, {"volumeId": volume})
    arn = f"arn:aws:ec2:{region}:{account}:volume/{volume}"
    return Change(f"deleted unencrypted volume {volume}", arn, [event])
