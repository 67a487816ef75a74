"""Real-time events end to end: CloudTrail-shaped events on the SQS queue, drained through the event
processor (dispatched by the local runtime's Lambda), against an inventoried and scanned account."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from orchestration import cloudtrail, events_queue
from orchestration.runtime import LocalRuntime
from orchestration.simulated_org import ALL_PAB, EVERYONE, SimulatedOrg
from qrie_lib import executions, lifecycle, realtime
from qrie_lib.aws import Aws
from qrie_lib.evaluation import Evaluator
from qrie_lib.models import GLOBAL, Account
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.services import s3
from qrie_lib.services.base import CollectContext
from qrie_lib.stores import Stores
from qrie_lib.stores.findings import Finding, FindingState, ResolvedReason


class Env:
    def __init__(self, runtime: LocalRuntime, org: SimulatedOrg) -> None:
        assert runtime.aws is not None
        self.aws, self.org = runtime.aws, org
        self.account = org.account_ids[0]
        self.stores = Stores.of(self.aws)
        self.s3 = org.session(self.account).client("s3")

    def run(self, kind: str, request: dict[str, Any]) -> None:
        arn = executions.start(self.aws, kind, request)
        assert executions.follow(self.aws, kind, arn, poll_s=0.05).succeeded

    def send(self, *events: dict[str, Any]) -> list[str]:
        return events_queue.send_events(self.aws, events)

    def drain(self) -> events_queue.DrainReport:
        return events_queue.drain(self.aws)

    def bucket_event(self, name: str, bucket: str, account: str | None = None, **request: Any) -> dict:
        return cloudtrail.s3_call(name, account or self.account, bucket, **request)

    def create_bucket(self, bucket: str) -> None:
        self.s3.create_bucket(Bucket=bucket)
        self.send(self.bucket_event("CreateBucket", bucket))
        assert self.drain().count("failed") == 0

    def bucket(self, bucket: str) -> Any:
        return self.stores.resources.get(self.account, "s3", f"arn:aws:s3:::{bucket}")

    def findings(self, bucket: str) -> dict[str, Finding]:
        return {f.policy_id: f for f in self.stores.findings.for_resource(f"arn:aws:s3:::{bucket}")}

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        ddb = self.aws.client("dynamodb")
        return {
            table: sorted(
                (i for p in ddb.get_paginator("scan").paginate(TableName=table) for i in p["Items"]),
                key=json.dumps,
            )
            for table in (self.aws.settings.resources_table, self.aws.settings.findings_table)
        }

    def describes(self) -> int:
        """Bucket describes so far (each starts with one GetBucketLocation)."""
        return self.aws.calls["s3.GetBucketLocation"]


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    with LocalRuntime(fast_retries=True) as runtime:
        assert runtime.aws is not None
        org = SimulatedOrg(runtime.aws, 1)
        org.create()
        env = Env(runtime, org)
        env.run("inventory", {"service": "all"})
        lifecycle.launch(env.stores, sorted(CATALOGUE))
        env.run("scan", {})
        yield env


@pytest.fixture(autouse=True)
def empty_queues(env: Env) -> None:
    """Each test starts with empty queues (PurgeQueue is allowed once a minute)."""
    sqs, queues = env.aws.client("sqs"), events_queue.Queues.of(env.aws)
    for url in (queues.url, queues.dlq_url):
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in messages],
            )


def public_acl(env: Env, bucket: str) -> None:
    owner = env.s3.get_bucket_acl(Bucket=bucket)["Owner"]["ID"]
    env.s3.put_bucket_acl(Bucket=bucket, GrantFullControl=f'id="{owner}"', GrantRead=EVERYONE)


def test_a_change_opens_a_finding_and_the_fix_resolves_it(env):
    env.create_bucket("evt-open")
    assert env.findings("evt-open")["S3BucketVersioningDisabled"].state is FindingState.ACTIVE
    assert "S3BucketPublic" not in env.findings("evt-open")

    public_acl(env, "evt-open")
    env.send(env.bucket_event("PutBucketAcl", "evt-open"))
    report = env.drain()
    assert (report.count("processed"), report.count("failed")) == (1, 0)
    assert env.findings("evt-open")["S3BucketPublic"].state is FindingState.ACTIVE

    env.s3.put_bucket_acl(Bucket="evt-open", ACL="private")
    env.send(env.bucket_event("PutBucketAcl", "evt-open"))
    env.drain()
    fixed = env.findings("evt-open")["S3BucketPublic"]
    assert (fixed.state, fixed.resolved_reason) == (FindingState.RESOLVED, ResolvedReason.COMPLIANT)


@pytest.fixture
def broken(env: Env) -> Iterator[str]:
    """An onboarded account whose role was never created: its describes fail."""
    account = "200000000099"
    env.stores.accounts.put(Account(account_id=account, name="broken"))
    yield account
    env.aws.client("dynamodb").delete_item(
        TableName=env.aws.settings.accounts_table, Key={"AccountId": {"S": account}}
    )


def test_a_poison_record_alone_fails_and_the_good_ones_are_processed_once(env, broken):
    for bucket in ("evt-good-1", "evt-good-2"):
        env.s3.create_bucket(Bucket=bucket)
    good = env.send(env.bucket_event("CreateBucket", "evt-good-1"))
    poison = events_queue.send_bodies(env.aws, ['{"detail-type": "AWS API Call via CloudTrail"'])
    failing = env.send(env.bucket_event("PutBucketAcl", "anything", account=broken))
    good += env.send(env.bucket_event("CreateBucket", "evt-good-2"))
    describes = env.describes()

    report = env.drain()

    [invocation] = report.invocations
    assert invocation["failures"] == sorted(poison + failing)
    assert {r.message_id for r in report.records if r.outcome == "processed"} == set(good)
    assert env.describes() - describes == 2
    assert env.bucket("evt-good-1") is not None
    assert env.bucket("evt-good-2") is not None
    assert "MalformedEvent" in next(r.note for r in report.records if r.message_id == poison[0])

    describes = env.describes()
    retry = env.drain()  # only the failed records come back
    assert {r.message_id for r in retry.records} == set(poison + failing)
    assert {r.receive_count for r in retry.records} == {2}
    assert env.describes() == describes


def test_duplicate_and_out_of_order_events_leave_the_latest_state(env):
    env.create_bucket("evt-order")
    env.s3.put_bucket_versioning(Bucket="evt-order", VersioningConfiguration={"Status": "Enabled"})
    enabled = env.bucket_event(
        "PutBucketVersioning", "evt-order", VersioningConfiguration={"Status": "Enabled"}
    )
    env.s3.put_bucket_versioning(Bucket="evt-order", VersioningConfiguration={"Status": "Suspended"})
    suspended = env.bucket_event(
        "PutBucketVersioning", "evt-order", VersioningConfiguration={"Status": "Suspended"}
    )
    describes = env.describes()

    env.send(suspended, enabled, suspended)  # the later change first, and twice
    report = env.drain()

    assert report.count("processed") == 3
    assert env.describes() - describes == 1  # one batch: one describe for the bucket
    assert env.bucket("evt-order").configuration["Versioning"]["Status"] == "Suspended"

    env.send(enabled)  # a straggler in a later batch: described now, so still the latest state
    env.drain()
    assert env.bucket("evt-order").configuration["Versioning"]["Status"] == "Suspended"
    assert env.findings("evt-order")["S3BucketVersioningDisabled"].state is FindingState.ACTIVE


def test_an_older_inventory_page_never_overwrites_what_an_event_described(env):
    env.create_bucket("evt-race")
    external_id = Stores.of(env.aws).accounts.get(env.account).external_id
    ctx = CollectContext(env.aws, env.account, GLOBAL, page_size=50, external_id=external_id)
    stale = s3.describe_bucket(ctx, "evt-race")  # an inventory page, described before the change
    assert stale is not None
    env.s3.put_bucket_versioning(Bucket="evt-race", VersioningConfiguration={"Status": "Enabled"})
    env.send(env.bucket_event("PutBucketVersioning", "evt-race"))
    env.drain()
    assert env.findings("evt-race")["S3BucketVersioningDisabled"].state is FindingState.RESOLVED

    # The slow page is written after the event's describe, carrying its older DescribeTime.
    assert env.stores.resources.upsert([stale], "inventory-slow-page") == [False]
    stored = env.bucket("evt-race")
    assert stored.configuration["Versioning"]["Status"] == "Enabled"
    assert stored.describe_time > stale.describe_time
    # Nor does evaluating it move the finding back.
    Evaluator(env.stores.findings, env.stores.resources, env.stores.policies.active()).evaluate([stale])
    assert env.findings("evt-race")["S3BucketVersioningDisabled"].state is FindingState.RESOLVED


def test_a_deleted_bucket_is_removed_and_its_findings_resolved(env):
    env.create_bucket("evt-gone")
    assert any(f.state is FindingState.ACTIVE for f in env.findings("evt-gone").values())

    env.s3.delete_bucket(Bucket="evt-gone")
    env.send(env.bucket_event("DeleteBucket", "evt-gone"))
    report = env.drain()

    assert report.count("processed") == 1
    assert env.bucket("evt-gone") is None
    findings = env.findings("evt-gone").values()
    assert findings
    assert {(f.state, f.resolved_reason) for f in findings} == {
        (FindingState.RESOLVED, ResolvedReason.RESOURCE_DELETED)
    }


def test_unknown_events_are_acknowledged_and_malformed_ones_fail_and_nothing_is_written(env):
    before = env.tables()
    unknown = [
        env.bucket_event("GetBucketAcl", "sim01-logs"),  # read-only: declared by no service
        cloudtrail.api_call(
            "CreateFunction20150331",
            event_source="lambda.amazonaws.com",
            account_id=env.account,
            region="us-east-1",
            request={"functionName": "f"},
        ),
        cloudtrail.api_call(  # a call that failed changed nothing
            "PutBucketAcl",
            event_source="s3.amazonaws.com",
            account_id=env.account,
            region="us-east-1",
            request={"bucketName": "sim01-logs"},
            error_code="AccessDenied",
        ),
    ]
    acknowledged = env.send(*unknown)
    missing_id = env.bucket_event("PutBucketAcl", "sim01-logs")
    del missing_id["detail"]["eventID"]
    bare = env.bucket_event("PutBucketAcl", "sim01-logs")["detail"]
    malformed = env.send(missing_id, bare) + events_queue.send_bodies(env.aws, ["not json", "[]"])

    report = env.drain()

    outcome = {r.message_id: r.outcome for r in report.records}
    assert outcome == {**dict.fromkeys(acknowledged, "processed"), **dict.fromkeys(malformed, "failed")}
    assert env.tables() == before


def test_an_account_not_onboarded_is_acknowledged_and_nothing_is_written(env):
    before, assumed, describes = env.tables(), env.aws.calls["sts.AssumeRole"], env.describes()
    stranger = "999999999999"
    [message] = env.send(env.bucket_event("PutBucketAcl", "sim01-logs", account=stranger))

    report = env.drain()

    assert [(r.message_id, r.outcome) for r in report.records] == [(message, "processed")]
    assert env.tables() == before
    assert (env.aws.calls["sts.AssumeRole"], env.describes()) == (assumed, describes)


def test_a_malformed_record_ends_in_the_dlq_after_three_receives(env):
    [poison] = events_queue.send_bodies(env.aws, ['{"version": "0"}'])
    for receive in (1, 2, 3):
        report = env.drain()
        assert [(r.message_id, r.outcome, r.receive_count) for r in report.records] == [
            (poison, "failed", receive)
        ]
    report = env.drain()  # the fourth receive finds it moved to the DLQ
    assert report.records == []
    assert (report.left, report.dead_letter) == (0, 1)


def test_each_drain_receives_every_failed_record_once(env):
    poison = events_queue.send_bodies(env.aws, [f"not json {n}" for n in range(12)])
    for receive in (1, 2):
        report = env.drain()
        assert sorted(r.message_id for r in report.records) == sorted(poison)
        assert {(r.outcome, r.receive_count) for r in report.records} == {("failed", receive)}


REGION = "us-east-1"
AMI = "ami-760aaa0f"  # the one AMI of tests' MOTO_AMIS_PATH catalogue


def ec2_arn(env: Env, segment: str, rid: str) -> str:
    return f"arn:aws:ec2:{REGION}:{env.account}:{segment}/{rid}"


def stored_ec2(env: Env, segment: str, rid: str) -> Any:
    return env.stores.resources.get(env.account, "ec2", ec2_arn(env, segment, rid))


def test_run_instances_and_create_image_refresh_the_volumes_and_snapshots_they_make(env):
    ec2 = env.org.session(env.account).client("ec2", REGION)
    [instance] = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"]
    iid = instance["InstanceId"]
    attached = {"Name": "attachment.instance-id", "Values": [iid]}
    volumes = [v["VolumeId"] for v in ec2.describe_volumes(Filters=[attached])["Volumes"]]
    image = ec2.create_image(InstanceId=iid, Name="evt-image")["ImageId"]
    made_by = {"Name": "description", "Values": [f"*for {image}"]}
    snapshots = [s["SnapshotId"] for s in ec2.describe_snapshots(Filters=[made_by])["Snapshots"]]
    assert volumes
    assert snapshots
    launched = {"instancesSet": {"items": [{"instanceId": iid, "blockDeviceMapping": {}}]}}  # no ids yet
    request = {"instancesSet": {"items": [{"imageId": AMI, "minCount": 1, "maxCount": 1}]}}
    env.send(
        cloudtrail.ec2_call("RunInstances", env.account, REGION, request, launched),
        cloudtrail.ec2_call(
            "CreateImage", env.account, REGION, {"instanceId": iid, "name": "evt-image"}, {"imageId": image}
        ),
    )

    report = env.drain()

    assert (report.count("processed"), report.count("failed")) == (2, 0)
    assert stored_ec2(env, "instance", iid) is not None
    assert all(stored_ec2(env, "volume", v).configuration["AttachedInstanceIds"] == [iid] for v in volumes)
    assert all(stored_ec2(env, "snapshot", s) is not None for s in snapshots)


def test_delete_flow_logs_refreshes_the_region_vpcs(env):
    ec2 = env.org.session(env.account).client("ec2", REGION)
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    [flow_log] = ec2.create_flow_logs(
        ResourceIds=[vpc],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="cloud-watch-logs",
        LogGroupName="evt-flow-logs",
        DeliverLogsPermissionArn=f"arn:aws:iam::{env.account}:role/flow-logs",
    )["FlowLogIds"]
    created = {"CreateFlowLogsRequest": {"ResourceId": {"content": vpc, "tag": 1}, "ResourceType": "VPC"}}
    env.send(cloudtrail.ec2_call("CreateFlowLogs", env.account, REGION, created))
    env.drain()
    assert [f["FlowLogId"] for f in stored_ec2(env, "vpc", vpc).configuration["FlowLogs"]] == [flow_log]

    ec2.delete_flow_logs(FlowLogIds=[flow_log])
    deleted = {"DeleteFlowLogsRequest": {"FlowLogId": {"content": flow_log, "tag": 1}}}
    env.send(cloudtrail.ec2_call("DeleteFlowLogs", env.account, REGION, deleted))
    report = env.drain()

    assert (report.count("processed"), report.count("failed")) == (1, 0)
    assert stored_ec2(env, "vpc", vpc).configuration["FlowLogs"] == []


def pab_event(env: Env) -> dict[str, Any]:
    return cloudtrail.api_call(
        "PutAccountPublicAccessBlock",
        event_source="s3.amazonaws.com",
        account_id=env.account,
        region=REGION,
        request={"PublicAccessBlockConfiguration": ALL_PAB},
    )


@pytest.mark.parametrize(("bound", "truncated"), [(1, True), (1000, False)])
def test_an_account_level_change_re_evaluates_at_most_its_bound_of_pages(env, monkeypatch, bound, truncated):
    """One bucket per page: every bucket past the bound waits for the daily scan."""
    assert len(list(env.stores.resources.page(env.account, "s3", None, 100).resources)) > 1
    aws = Aws(env.aws.settings.model_copy(update={"scan_page_size": 1}))
    monkeypatch.setattr(realtime, "DEPENDENT_PAGES", bound)

    batch = realtime.process_batch([("m-1", json.dumps(pab_event(env)))], aws)

    [target] = batch.targets
    assert (target.error, target.truncated) == (None, truncated)


def test_the_account_public_access_block_re_evaluates_every_bucket(env):
    """Runs last in this module: it blocks public access for the whole account."""
    env.create_bucket("evt-pab")
    public_acl(env, "evt-pab")
    env.send(env.bucket_event("PutBucketAcl", "evt-pab"))
    env.drain()
    assert env.findings("evt-pab")["S3BucketPublic"].state is FindingState.ACTIVE

    env.org.session(env.account).client("s3control").put_public_access_block(
        AccountId=env.account, PublicAccessBlockConfiguration=ALL_PAB
    )
    env.send(
        cloudtrail.api_call(
            "PutAccountPublicAccessBlock",
            event_source="s3.amazonaws.com",
            account_id=env.account,
            region="us-east-1",
            request={"PublicAccessBlockConfiguration": ALL_PAB},
        )
    )
    report = env.drain()

    assert report.count("processed") == 1
    assert env.findings("evt-pab")["S3BucketPublic"].state is FindingState.RESOLVED
    assert env.findings("sim01-public-assets")["S3BucketPublic"].state is FindingState.RESOLVED
