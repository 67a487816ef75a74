"""Scan throughput on the embedded runtime: one partition of many resources, the whole catalogue.

Writes N synthetic EC2 resources (security groups, volumes, instances; about half misconfigured)
into one account's partition, launches every policy, and runs the scan state machine twice: the
first scan (findings created) and an unchanged re-scan (only ``LastEvaluated`` of active findings
written). A bare loop that only reads the same partition, page by page, is timed in the same run.

    python -m bench.scan [--resources 50000]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any

from orchestration.runtime import LocalRuntime
from qrie_lib import executions, lifecycle
from qrie_lib.models import Account, Resource
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.stores import Stores
from qrie_lib.stores.dynamo import to_item
from qrie_lib.stores.resources import resource_item
from qrie_lib.timeutil import now_iso

ACCOUNT, REGION = "300000000001", "us-east-1"
WORLD = [{"CidrIp": "0.0.0.0/0"}]


def synthetic(n: int) -> Resource:
    """Resource number n: a security group, volume or instance, misconfigured when n is odd."""
    bad = n % 2 == 1
    kind = n % 5
    if kind < 2:
        rule = {
            "IpProtocol": "tcp",
            "FromPort": 22 if bad else 443,
            "ToPort": 22 if bad else 443,
            "IpRanges": WORLD,
        }
        resource_type, name, config = (
            "AWS::EC2::SecurityGroup",
            f"security-group/sg-{n:08x}",
            {
                "GroupId": f"sg-{n:08x}",
                "GroupName": f"g{n}",
                "IsDefault": False,
                "IpPermissions": [rule],
                "IpPermissionsEgress": [],
            },
        )
    elif kind < 4:
        resource_type, name, config = (
            "AWS::EC2::Volume",
            f"volume/vol-{n:08x}",
            {
                "VolumeId": f"vol-{n:08x}",
                "Encrypted": not bad,
                "State": "in-use",
            },
        )
    else:
        resource_type, name, config = (
            "AWS::EC2::Instance",
            f"instance/i-{n:08x}",
            {
                "InstanceId": f"i-{n:08x}",
                "State": "running",
                "PublicIpAddress": "198.51.100.7" if bad else None,
                "MetadataOptions": {
                    "HttpTokens": "optional" if bad else "required",
                    "HttpEndpoint": "enabled",
                },
            },
        )
    return Resource(
        arn=f"arn:aws:ec2:{REGION}:{ACCOUNT}:{name}",
        account_id=ACCOUNT,
        service="ec2",
        region=REGION,
        resource_type=resource_type,
        configuration=config,
        describe_time=now_iso(),
    )


class DynamoMeter:
    """Items read and written through the shared DynamoDB client, from the responses themselves."""

    def __init__(self, client: Any, findings_table: str) -> None:
        self.read: Counter[str] = Counter()
        self.written: Counter[str] = Counter()
        self.findings_table = findings_table
        client.meta.events.register("after-call.dynamodb", self.count)

    def count(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "Query":
            self.read["query items"] += parsed.get("Count", 0)
        elif model.name == "BatchGetItem":
            self.read["batch-get items"] += sum(len(v) for v in parsed.get("Responses", {}).values())
        elif model.name == "GetItem":
            self.read["get items"] += "Item" in parsed
        elif model.name in ("PutItem", "UpdateItem", "DeleteItem"):
            self.written[model.name] += 1

    def reset(self) -> None:
        self.read.clear()
        self.written.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=50_000)
    args = parser.parse_args()

    with LocalRuntime() as runtime:
        aws = runtime.aws
        assert aws is not None
        stores = Stores.of(aws)
        stores.accounts.put(Account(account_id=ACCOUNT, name="bench", regions=[REGION]))
        ddb = aws.client("dynamodb")
        print(f"writing {args.resources} resources ...", flush=True)
        for start in range(0, args.resources, 25):
            requests = [
                {"PutRequest": {"Item": to_item(resource_item(synthetic(n), "bench", now_iso()))}}
                for n in range(start, min(start + 25, args.resources))
            ]
            ddb.batch_write_item(RequestItems={aws.settings.resources_table: requests})
        lifecycle.launch(stores, sorted(CATALOGUE))
        meter = DynamoMeter(ddb, aws.settings.findings_table)

        runs = {}
        for label in ("first scan", "unchanged re-scan"):
            meter.reset()
            started = time.perf_counter()
            arn = executions.start(aws, "scan", {"account_id": ACCOUNT, "service": "ec2"})
            outcome = executions.follow(aws, "scan", arn, poll_s=1.0)
            elapsed = time.perf_counter() - started
            summary = executions.run_summary(aws, "scan", arn) or {}
            runs[label] = (
                elapsed,
                summary["findings"],
                dict(meter.read),
                dict(meter.written),
                outcome.status,
            )

        meter.reset()
        started = time.perf_counter()
        token, pages = None, 0
        while True:
            page = stores.resources.page(ACCOUNT, "ec2", token, aws.settings.scan_page_size)
            pages += 1
            token = page.next_token
            if token is None:
                break
        bare = time.perf_counter() - started
        bare_read = sum(meter.read.values())

    print(
        f"\nscan of one partition of {args.resources} resources, whole catalogue ({len(CATALOGUE)} policies)"
    )
    for label, (elapsed, findings, read, written, status) in runs.items():
        evaluations = findings["evaluated"]
        print(
            f"{label:18} {status}: {elapsed:7.1f} s, {evaluations / elapsed:8.0f} evaluations/s, "
            f"items read {sum(read.values())} {read}, items written {sum(written.values())} {written}, "
            f"findings new {findings['new']} active {findings['active']}"
        )
    first, rescan = runs["first scan"][0], runs["unchanged re-scan"][0]
    print(f"bare partition read: {bare:.1f} s, {pages} pages, {bare_read} items read")
    print(
        f"ratios: first scan / bare read {first / bare:.1f}x, re-scan / bare read {rescan / bare:.1f}x, "
        f"re-scan / first scan {rescan / first:.2f}"
    )


if __name__ == "__main__":
    main()
