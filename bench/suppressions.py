"""Scan overhead of suppression matching, on the embedded runtime, in one run.

Writes N synthetic EC2 resources (bench.scan's: about half misconfigured) into one partition,
launches every policy and scans once (findings created). Then full re-scans of the partition,
timed: without rules, with 1,000 live rules that match nothing (the worst case for the matcher:
every rule is an ``ALL`` rule, so each violation is checked against all of them — a third by
account, a third by ARN glob, a third by resource tag), alternated three times each (medians
compared). Writes are the same in every timed scan (none): the difference is the rules' read and
the matching.

    python -m bench.suppressions [--resources 5000] [--rules 1000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta

from bench.scan import ACCOUNT, REGION, synthetic
from orchestration.runtime import LocalRuntime
from qrie_lib import executions, lifecycle
from qrie_lib.aws import Aws
from qrie_lib.models import Account
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.stores import Stores
from qrie_lib.stores.dynamo import to_item
from qrie_lib.stores.resources import resource_item
from qrie_lib.stores.suppressions import ALL, Suppression, new_rule_id
from qrie_lib.timeutil import iso, now_iso, parse_iso


def rule(n: int) -> Suppression:
    scope = (
        {"accounts": [f"{400000000000 + n}"]},
        {"arn_glob": f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/vol-zz{n:06d}*"},
        {"resource_tags": {"accepted": f"ticket-{n}"}},
    )[n % 3]
    now = now_iso()
    return Suppression(
        rule_id=new_rule_id(ALL),
        policy_id=ALL,
        reason="bench",
        owner="bench",
        created_by="bench",
        created_at=now,
        expires_at=iso(parse_iso(now) + timedelta(days=30)),
        **scope,
    )


def full_scan(aws: Aws) -> tuple[float, dict[str, int]]:
    started = time.perf_counter()
    arn = executions.start(aws, "scan", {"account_id": ACCOUNT, "service": "ec2", "full": True})
    outcome = executions.follow(aws, "scan", arn, poll_s=0.5)
    elapsed = time.perf_counter() - started
    assert outcome.status == "SUCCEEDED", outcome.cause
    return elapsed, (executions.run_summary(aws, "scan", arn) or {})["findings"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=5000)
    parser.add_argument("--rules", type=int, default=1000)
    args = parser.parse_args()

    with LocalRuntime() as runtime:
        aws = runtime.aws
        assert aws is not None
        stores = Stores.of(aws)
        stores.accounts.put(Account(account_id=ACCOUNT, name="bench", regions=[REGION]))
        ddb = aws.client("dynamodb")
        for start in range(0, args.resources, 25):
            requests = [
                {"PutRequest": {"Item": to_item(resource_item(synthetic(n), "bench", now_iso()))}}
                for n in range(start, min(start + 25, args.resources))
            ]
            ddb.batch_write_item(RequestItems={aws.settings.resources_table: requests})
        lifecycle.launch(stores, sorted(CATALOGUE))
        full_scan(aws)  # findings created
        full_scan(aws)  # warm-up: the timed scans all find the same findings

        rules = [rule(n) for n in range(args.rules)]
        timed: dict[str, list[float]] = {"without rules": [], f"with {args.rules} rules": []}
        findings = {}
        for label in ("without rules", f"with {args.rules} rules") * 3:  # alternated: drift hits both
            with_rules = label.startswith("with ")
            for r in rules:
                if with_rules:
                    stores.suppressions.put(r)
                else:
                    ddb.delete_item(
                        TableName=aws.settings.suppressions_table,
                        Key=to_item({"PolicyId": r.policy_id, "RuleId": r.rule_id}),
                    )
            elapsed, findings[label] = full_scan(aws)
            timed[label].append(elapsed)

    without = statistics.median(timed["without rules"])
    with_rules = statistics.median(timed[f"with {args.rules} rules"])
    print(f"full re-scan of one partition of {args.resources} resources, {len(CATALOGUE)} policies launched")
    for label, times in timed.items():
        print(f"{label:18} {', '.join(f'{t:.1f} s' for t in times)}; findings {findings[label]}")
    print(
        f"overhead of {args.rules} non-matching ALL rules: {with_rules / without:.2f}x the scan without rules"
    )


if __name__ == "__main__":
    main()
