"""Real-time event throughput on the embedded runtime: a burst of CloudTrail events on the queue,
drained through the event processor (ten records per invocation, as the SQS event source mapping).

One simulated account gets extra buckets and security groups, is inventoried and scanned with the
whole catalogue; then a burst of events touches them, in runs of one to five events on the same
resource as a person's change produces (duplicates by design). Timed in the same run: the describe
calls alone, the same describe functions called directly once for each distinct resource.

    python -m bench.events [--events 5000] [--resources 100] [--small]
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from orchestration import cloudtrail, events_queue
from orchestration.runtime import LocalRuntime
from orchestration.simulated_org import SimulatedOrg
from qrie_lib import executions, lifecycle
from qrie_lib.aws import Aws
from qrie_lib.models import GLOBAL
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.services import ec2, s3
from qrie_lib.services.base import CollectContext
from qrie_lib.stores import Stores

REGION = "us-east-1"
BUCKET_EVENTS = ("PutBucketAcl", "PutBucketTagging", "PutBucketVersioning", "PutBucketPolicy")
GROUP_EVENTS = ("AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress", "ModifySecurityGroupRules")
# The call each describe of a kind starts with: describes performed = these calls.
FIRST_CALL = {s3.BUCKET: "s3.GetBucketLocation", ec2.SECURITY_GROUP: "ec2.DescribeSecurityGroups"}


def create_resources(org: SimulatedOrg, account: str, n: int) -> list[tuple[str, str]]:
    """n new resources in the account, half buckets, half security groups: (kind, id)."""
    session = org.session(account)
    s3_client, ec2_client = session.client("s3"), session.client("ec2", REGION)
    created = []
    for i in range(n):
        if i % 2 == 0:
            bucket = f"bench-{i:05d}"
            s3_client.create_bucket(Bucket=bucket)
            created.append((s3.BUCKET, bucket))
        else:
            group = ec2_client.create_security_group(GroupName=f"bench-{i:05d}", Description="bench")
            created.append((ec2.SECURITY_GROUP, group["GroupId"]))
    return created


def event_for(account: str, kind: str, rid: str, rng: random.Random) -> dict[str, Any]:
    if kind == s3.BUCKET:
        return cloudtrail.s3_call(rng.choice(BUCKET_EVENTS), account, rid)
    return cloudtrail.ec2_call(rng.choice(GROUP_EVENTS), account, REGION, {"groupId": rid})


def burst(account: str, resources: list[tuple[str, str]], n: int, rng: random.Random) -> list[dict]:
    """n events; every resource touched at least once, then runs of 1-5 events on random ones."""
    events = [event_for(account, kind, rid, rng) for kind, rid in resources]
    while len(events) < n:
        kind, rid = rng.choice(resources)
        events += [event_for(account, kind, rid, rng) for _ in range(rng.randint(1, 5))]
    return events[:n]


def describe_alone(aws: Aws, account: str, resources: list[tuple[str, str]]) -> dict[str, float]:
    """Mean seconds of one describe, per kind: each resource described once, directly."""
    contexts = {
        s3.BUCKET: CollectContext(aws, account, GLOBAL, aws.settings.page_size),
        ec2.SECURITY_GROUP: CollectContext(aws, account, REGION, aws.settings.page_size),
    }
    kinds = {s3.BUCKET: s3.SERVICE.kind(s3.BUCKET), ec2.SECURITY_GROUP: ec2.SERVICE.kind(ec2.SECURITY_GROUP)}
    spent: dict[str, list[float]] = {kind: [] for kind in kinds}
    for kind, rid in resources:
        started = time.perf_counter()
        assert kinds[kind].describe(contexts[kind], rid) is not None
        spent[kind].append(time.perf_counter() - started)
    return {kind: sum(times) / len(times) for kind, times in spent.items() if times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--resources", type=int, default=100)
    parser.add_argument("--small", action="store_true", help="500 events across 20 resources")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    n_events, n_resources = (500, 20) if args.small else (args.events, args.resources)
    rng = random.Random(args.seed)

    with LocalRuntime() as runtime:
        aws = runtime.aws
        assert aws is not None
        org = SimulatedOrg(aws, 1)
        org.create()
        account = org.account_ids[0]
        print(f"creating {n_resources} resources, inventory and scan ...", flush=True)
        resources = create_resources(org, account, n_resources)
        for kind, request in (("inventory", {"service": "all"}), ("scan", {})):
            if kind == "scan":
                lifecycle.launch(Stores.of(aws), sorted(CATALOGUE))
            arn = executions.start(aws, kind, request)
            assert executions.follow(aws, kind, arn, poll_s=0.2).succeeded, kind

        events = burst(account, resources, n_events, rng)
        print(f"queueing {len(events)} events ...", flush=True)
        events_queue.send_events(aws, events)

        print("draining ...", flush=True)
        aws.calls.clear()
        report = events_queue.drain(aws)
        describes = {kind: aws.calls[call] for kind, call in FIRST_CALL.items()}
        alone = describe_alone(aws, account, resources)

    assert report.count("failed") == 0, report.as_dict()["records"][:3]
    show(report, describes, alone, len(resources))


def show(
    report: events_queue.DrainReport, describes: dict[str, int], alone: dict[str, float], resources: int
) -> None:
    processed, elapsed = report.count("processed"), report.seconds
    performed = sum(describes.values())
    describes_alone_s = sum(n * alone[kind] for kind, n in describes.items())  # the same describes, direct
    one_describe_ms = describes_alone_s / performed * 1000
    p50, p99 = report.percentile_ms(50), report.percentile_ms(99)
    # The processor's own time; the rest of the drain is the emulated queue (moto's SQS checks
    # every message's visibility on each receive, so a 5,000-message queue is slow to drain).
    processor_s = sum(i["ms"] for i in report.invocations) / 1000
    print(f"\n{processed} events across {resources} resources, {len(report.invocations)} invocations")
    print(
        f"pipeline: {elapsed:.1f} s, {processed / elapsed:.1f} events/s;"
        f" per-event processing time p50 {p50:.0f} ms, p99 {p99:.0f} ms"
    )
    print(
        f"processor alone: {processor_s:.1f} s, {processed / processor_s:.1f} events/s"
        f" (the rest of the drain is the emulated queue)"
    )
    print(
        f"describes performed: {performed} ({processed / performed:.2f} events per describe after coalescing)"
    )
    print(
        "describe alone: "
        + ", ".join(f"{kind} {seconds * 1000:.1f} ms" for kind, seconds in alone.items())
        + f"; the pipeline's {performed} describes would take {describes_alone_s:.1f} s"
    )
    print(
        f"ratios: pipeline / its describes alone {elapsed / describes_alone_s:.1f}x,"
        f" processor / its describes alone {processor_s / describes_alone_s:.1f}x;"
        f" per-event p50 / one describe {p50 / one_describe_ms:.1f}x,"
        f" p99 / one describe {p99 / one_describe_ms:.1f}x"
    )


if __name__ == "__main__":
    main()
