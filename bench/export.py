"""Export of N findings (default 100,000) as OCSF and CSV, streamed, against a plain ``json.dumps``
of the same rows, all in the same run: wall time and peak memory (tracemalloc).

Rows come from a generator through the same formatting and streaming functions the CLI uses
(``qrie_lib.exports.stream.write``), page by page into a sink that counts characters: this measures
the formats, not moto's DynamoDB (whose in-process tables would hold every item anyway).

    python -m bench.export [--findings 100000]
"""

from __future__ import annotations

import argparse
import io
import json
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

from qrie_lib.exports import stream
from qrie_lib.policies.registry import CATALOGUE

PAGE = 200


def rows(n: int) -> Iterator[list[dict[str, Any]]]:
    policies = sorted(CATALOGUE)
    for start in range(0, n, PAGE):
        yield [
            {
                "arn": f"arn:aws:s3:::bench-bucket-{i}",
                "policy_id": policies[i % len(policies)],
                "state": "ACTIVE" if i % 5 else "RESOLVED",
                "severity": 30 + i % 70,
                "account_id": f"{100000000000 + i % 1000}",
                "region": "us-east-1",
                "resource_type": "AWS::S3::Bucket",
                "evidence": {"Grants": [{"Grantee": "AllUsers", "Permission": "READ"}]},
                "first_seen": "2026-01-01T00:00:00.000Z",
                "last_evaluated": "2026-01-02T00:00:00.000Z",
                "resolved_at": None if i % 5 else "2026-01-02T00:00:00.000Z",
                "resolved_reason": None if i % 5 else "COMPLIANT",
                "reopen_count": 0,
            }
            for i in range(start, min(n, start + PAGE))
        ]


class Sink(io.TextIOBase):
    def __init__(self) -> None:
        self.chars = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        return len(text)


def measure(run: Callable[[], int]) -> dict[str, Any]:
    tracemalloc.start()
    started = time.perf_counter()
    chars = run()
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "seconds": round(seconds, 2),
        "peak_mib": round(peak / 2**20, 1),
        "mib_out": round(chars / 2**20, 1),
    }


def streamed(fmt: str, n: int) -> Callable[[], int]:
    def run() -> int:
        sink = Sink()
        stream.write(sink, fmt, rows(n))
        return sink.chars

    return run


def plain_json(n: int) -> int:
    """The all-in-memory baseline: every row in a list, one json.dumps."""
    return len(json.dumps([r for page in rows(n) for r in page]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=100_000)
    n = parser.parse_args().findings
    results = {
        "json.dumps (all rows in memory)": measure(lambda: plain_json(n)),
        "csv (streamed)": measure(streamed("csv", n)),
        "ocsf (streamed, py-ocsf-models)": measure(streamed("ocsf", n)),
    }
    base = results["json.dumps (all rows in memory)"]
    print(f"{n:,} findings")
    for name, r in results.items():
        print(
            f"  {name:34} {r['seconds']:8.2f} s ({r['seconds'] / base['seconds']:5.1f}x)  "
            f"peak {r['peak_mib']:7.1f} MiB ({r['peak_mib'] / base['peak_mib']:6.3f}x)  "
            f"output {r['mib_out']} MiB"
        )


if __name__ == "__main__":
    main()
