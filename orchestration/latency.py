"""AWS's latency for the operator calls of in-process task handlers, charged on the handler's
clock instead of slept (``orchestration.operator_calls``): with it, a task's Lambda timeout counts
the time its calls would take on AWS, and each invocation's simulated time is recorded.

Figures (seconds per call, typical, from AWS's own documents):

- DynamoDB: "single-digit millisecond" latency for GetItem, PutItem and the other single-item
  operations (https://repost.aws/knowledge-center/dynamodb-high-latency: "For most atomic
  operations, such as GetItem and PutItem, you can expect an average latency in single-digit
  milliseconds"); Query and Scan depend on the result size, batches and transactions touch up to
  25/100 items: a few milliseconds more.
- S3: small requests (< 512 KB) have a median latency "in the tens of milliseconds" (Best Practices
  Design Patterns: Optimizing Amazon S3 Performance, "Timeouts and Retries for Latency-Sensitive
  Applications").
- Step Functions, SQS, SNS and the others: no published figure; a control-plane call over HTTPS in
  the same region is taken as tens of milliseconds (an estimate, to override when measured).

``--latency-override 'dynamodb.Query=0.012,s3=0.05'`` (``parse``) replaces any of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from qrie_lib.errors import InvalidInput

AWS_TYPICAL_S: dict[str, float] = {
    "dynamodb": 0.005,
    "dynamodb.Query": 0.008,
    "dynamodb.Scan": 0.010,
    "dynamodb.BatchGetItem": 0.010,
    "dynamodb.BatchWriteItem": 0.010,
    "dynamodb.TransactWriteItems": 0.012,
    "dynamodb.TransactGetItems": 0.010,
    "s3": 0.030,
    "stepfunctions": 0.030,
    "sqs": 0.020,
    "sns": 0.030,
    "securityhub": 0.050,
    "organizations": 0.050,
    "sts": 0.030,
}
OTHER_S = 0.030  # a service not listed


class BadLatency(InvalidInput):
    """A latency override that is not ``service[.Operation]=seconds``."""


@dataclass(frozen=True)
class Latency:
    """Seconds per call: ``service.Operation`` first, then ``service``, then ``other``."""

    per_call: Mapping[str, float] = field(default_factory=lambda: dict(AWS_TYPICAL_S))
    other: float = OTHER_S

    def of(self, service: str, operation: str) -> float:
        return self.per_call.get(f"{service}.{operation}", self.per_call.get(service, self.other))

    def overridden(self, overrides: Mapping[str, float]) -> Latency:
        """With ``overrides``; a service overridden as a whole loses its operations' own figures."""
        kept = {k: v for k, v in self.per_call.items() if k.split(".", 1)[0] not in overrides}
        return Latency({**kept, **overrides}, self.other)


def parse(text: str) -> dict[str, float]:
    """``"dynamodb=0.004,s3.PutObject=0.05"`` → overrides (seconds)."""
    overrides: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not name.strip() or seconds < 0:
            raise BadLatency(f"latency override {part!r}: expected service[.Operation]=seconds, e.g. s3=0.05")
        overrides[name.strip()] = seconds
    return overrides
