"""What durable operator state (``orchestration/durable.py``, kept in SQLite by ``state_store``) costs.

- Writes per second through the DynamoDB API (in process, moto's request handling included),
  with the change hooks but nothing kept (``--ephemeral``), kept in SQLite without fsync
  (``synchronous=OFF``), and kept with ``synchronous=FULL`` (the default: on disk before the
  answer): the ratio of each to the first, same run.
- Restart time and file size for N resources: reading and checking the file alone
  (``quick_check``, every row's JSON), and the whole restart (rows loaded into moto).

    python -m bench.durability [--writes 2000] [--resources 1000 10000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")

from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends

from orchestration.durable import DurableState, OperatorChanges, Scope
from orchestration.provision import create_bucket, create_queues, create_tables
from orchestration.state_store import FILE, checked
from qrie_lib.aws import Aws
from qrie_lib.settings import Settings
from qrie_lib.stores.dynamo import to_item

SETTINGS = Settings()
ACCOUNT = "123456789012"  # moto's default account: the operator's in the embedded runtime


def resource(n: int) -> dict[str, Any]:
    """A resource row of a realistic size (~1.3 KB: an S3 bucket's configuration)."""
    account = f"{100000000000 + n % 500:012d}"
    return {
        "AccountService": f"{account}_s3",
        "ARN": f"arn:aws:s3:::bucket-{n:07d}",
        "AccountId": account,
        "Service": "s3",
        "Region": "us-east-1",
        "ResourceType": "AWS::S3::Bucket",
        "DescribeTime": "2026-01-01T00:00:00.000Z",
        "Configuration": {
            "Name": f"bucket-{n:07d}",
            "Location": "us-east-1",
            "Acl": {"Owner": {"ID": "a" * 64}, "Grants": [{"Permission": "FULL_CONTROL"}] * 2},
            "PublicAccessBlock": dict.fromkeys(
                ("BlockPublicAcls", "IgnorePublicAcls", "RestrictPublicBuckets"), True
            ),
            "Encryption": {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]},
            "Versioning": {"Status": "Enabled"},
            "Logging": {"TargetBucket": "logs", "TargetPrefix": f"bucket-{n:07d}/"},
            "Policy": '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*",'
            '"Action":"s3:*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}',
        },
        "Tags": {"team": "platform", "env": "prod"},
    }


def operator() -> tuple[Aws, Scope]:
    aws = Aws(SETTINGS)
    create_tables(aws)
    create_bucket(aws)
    create_queues(aws)
    return aws, Scope.of(SETTINGS, ACCOUNT)


def timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


MODES = ("hooks only (--ephemeral)", "SQLite, synchronous=OFF", "SQLite, synchronous=FULL (default)")


def writes_per_second(writes: int, rounds: int = 5) -> dict[str, float]:
    """The modes take turns, ``rounds`` times, on the same table: a machine shared with other
    work slows them alike, so the ratios hold even when the absolute rates do not."""
    seconds = dict.fromkeys(MODES, 0.0)
    with tempfile.TemporaryDirectory() as directory, mock_aws():
        aws, scope = operator()
        ddb = aws.client("dynamodb")
        durables = {
            mode: DurableState(Path(directory) / str(n), scope, fsync="FULL" in mode, say=lambda _: None)
            for n, mode in enumerate(MODES[1:])
        }
        for durable in durables.values():
            durable.restore()
        per_round = writes // rounds
        for r in range(rounds):
            for m, mode in enumerate(MODES):
                hooks = durables[mode].changes if mode in durables else OperatorChanges(scope, [])
                first = (r * len(MODES) + m) * per_round  # every write a new item, in every mode
                items = [to_item(resource(n)) for n in range(first, first + per_round)]
                hooks.install()
                seconds[mode] += timed(lambda i=items: [put(ddb, item) for item in i])
                hooks.uninstall()
        for durable in durables.values():
            durable.close()
    return {mode: per_round * rounds / s for mode, s in seconds.items()}


def put(ddb: Any, item: dict[str, Any]) -> None:
    ddb.put_item(TableName=SETTINGS.resources_table, Item=item)


def restart(resources: int) -> dict[str, float]:
    """Fill the resources table through the hooks (every write kept), stop, then time reading
    and checking the file alone, and a whole restart."""
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        with mock_aws():
            _, scope = operator()
            durable = DurableState(directory, scope, fsync=False, say=lambda _: None)
            durable.restore()
            durable.install()
            backend = dynamodb_backends[ACCOUNT][SETTINGS.region]
            for n in range(resources):  # the backend directly: the HTTP layer is not what is measured
                backend.put_item(SETTINGS.resources_table, to_item(resource(n)))
            durable.changes.uninstall()
            durable.close()
        figures = {"file bytes": float((directory / FILE).stat().st_size)}

        def read_and_check() -> None:
            with checked(directory / FILE) as rows:
                assert sum(1 for _ in rows.items(scope.tables)) == resources

        figures["read and check s"] = timed(read_and_check)
        with mock_aws():
            _, scope = operator()
            durable = DurableState(directory, scope, say=lambda _: None)
            figures["restart s"] = timed(durable.restore)
            durable.close()
            table = dynamodb_backends[ACCOUNT][SETTINGS.region].tables[SETTINGS.resources_table]
            assert sum(len(v) for v in table.items.values()) == resources
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--resources", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    rates = writes_per_second(args.writes)
    base = next(iter(rates.values()))
    print(f"PutItem through the DynamoDB API, {args.writes} writes of ~1.3 KB items:")
    for mode, rate in rates.items():
        print(f"  {mode:36} {rate:8.0f} writes/s  ratio {rate / base:.2f}")
    for n in args.resources:
        figures = restart(n)
        print(
            f"{n:>7} resources: {FILE} {figures['file bytes'] / 1e6:.1f} MB; read and checked in"
            f" {figures['read and check s']:.2f} s; restart {figures['restart s']:.2f} s"
        )


if __name__ == "__main__":
    main()
