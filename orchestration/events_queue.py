"""The events queue from the operator's side: put CloudTrail events on it (``qrie events send``) and,
where no Lambda event source mapping consumes it (the local runtime), drain it through the event
processor the way that mapping would: up to ten records per invocation, delete the records that
succeeded, leave the failed ones to be received again (after three receives the queue's redrive
moves them to the DLQ)."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import redirect_stdout
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orchestration.cloudtrail import envelope, is_envelope
from orchestration.provision import MAX_MESSAGE_BYTES
from qrie_lib.aws import Aws
from qrie_lib.errors import InvalidInput, MalformedEvent, QrieError
from qrie_lib.events import parse
from qrie_lib.realtime import Status, read
from tasks.registry import TASKS

EVENT_PROCESSOR = next(t for t in TASKS if t.name == "EventProcessor")
BATCH = 10  # SQS's receive and send limit, and the event source mapping's default batch
DRAIN_VISIBILITY_S = 30  # long enough for one invocation; failures are released when the drain ends

Invoke = Callable[[dict[str, Any]], dict[str, Any]]  # an SQS event → the processor's response


class ProcessorFailed(QrieError):
    """The processor's invocation itself failed: every record of its batch is retried."""


@dataclass(frozen=True)
class Queues:
    url: str
    arn: str
    dlq_url: str

    @classmethod
    def of(cls, aws: Aws) -> Queues:
        sqs, name = aws.client("sqs"), aws.settings.events_queue
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return cls(url, arn, sqs.get_queue_url(QueueName=f"{name}_dlq")["QueueUrl"])


def depth(aws: Aws, url: str) -> int:
    """Messages in a queue, visible or in flight."""
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


# ---- send ------------------------------------------------------------------------------------


def load_events(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Events from files: each holds one EventBridge event or a JSON array of them; a bare CloudTrail
    record is wrapped in its envelope. Each must be what the event processor accepts (its own
    parser checks it) within the queue's size limit: one that is not is InvalidInput, naming the
    file and the event, and nothing is sent."""
    events = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidInput(f"{path}: {exc}") from None
        items = data if isinstance(data, list) else [data]
        for n, item in enumerate(items, 1):
            where = f"{path}, event {n} of {len(items)}" if isinstance(data, list) else str(path)
            if not isinstance(item, dict):
                raise InvalidInput(f"{where}: expected an event object, found {type(item).__name__}")
            bare = not is_envelope(item) and {"eventName", "eventSource"} <= item.keys()
            event = envelope(item) if bare else item
            try:
                parse(checked_body(event))
            except (MalformedEvent, InvalidInput) as exc:
                raise InvalidInput(f"{where}: {exc}") from None
            events.append(event)
    return events


def checked_body(event: dict[str, Any]) -> str:
    """An event as a queue message body, or InvalidInput if the queue would refuse its size."""
    body = json.dumps(event)
    size = len(body.encode())
    if size > MAX_MESSAGE_BYTES:
        raise InvalidInput(
            f"{size:,} bytes, over the events queue's limit of {MAX_MESSAGE_BYTES:,} (256 KiB)"
        )
    return body


def send_events(aws: Aws, events: Iterable[dict[str, Any]]) -> list[str]:
    return send_bodies(aws, [checked_body(e) for e in events])


def batches(bodies: Sequence[str]) -> Iterator[Sequence[str]]:
    """Bodies in send batches: at most ten, and at most the size limit together (SQS's batch limit)."""
    batch: list[str] = []
    size = 0
    for body in bodies:
        length = len(body.encode())
        if batch and (len(batch) == BATCH or size + length > MAX_MESSAGE_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(body)
        size += length
    if batch:
        yield batch


def send_bodies(aws: Aws, bodies: Sequence[str]) -> list[str]:
    """Put message bodies on the events queue, in as few calls as SQS takes; their message ids, in
    order."""
    sqs, url = aws.client("sqs"), Queues.of(aws).url
    ids: list[str] = []
    for chunk in batches(bodies):
        answer = sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": body} for n, body in enumerate(chunk)]
        )
        if answer.get("Failed"):
            raise QrieError(f"the queue refused {len(answer['Failed'])} messages: {answer['Failed'][0]}")
        ids += [e["MessageId"] for e in sorted(answer["Successful"], key=lambda e: int(e["Id"]))]
    return ids


# ---- drain -----------------------------------------------------------------------------------


def sqs_event(messages: Sequence[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping would invoke the processor with."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def lambda_invoke(aws: Aws) -> Invoke:
    """Invoke the processor through Lambda: the local runtime dispatches it to the handler."""
    client = aws.client("lambda")

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        # In process, the handler prints its EMF metrics on stdout as in Lambda; ours carries --json.
        with redirect_stdout(sys.stderr):
            answer = client.invoke(FunctionName=EVENT_PROCESSOR.function_name, Payload=json.dumps(event))
        payload = json.loads(answer["Payload"].read() or b"{}")
        if answer.get("FunctionError"):
            raise ProcessorFailed(f"{payload.get('errorType')}: {payload.get('errorMessage')}")
        return payload

    return invoke


@dataclass(frozen=True)
class RecordReport:
    message_id: str
    outcome: str  # "processed" (acknowledged and deleted) or "failed" (left on the queue)
    event_id: str | None
    event_name: str | None
    account_id: str | None
    receive_count: int
    ms: float  # the invocation that processed it
    note: str = ""  # what the record itself says: ignored (why) or malformed (why)


@dataclass
class DrainReport:
    records: list[RecordReport] = field(default_factory=list)
    invocations: list[dict[str, Any]] = field(default_factory=list)  # message ids, failures, ms
    seconds: float = 0.0
    left: int = 0  # still on the queue (the failed ones)
    dead_letter: int = 0  # on the DLQ

    def count(self, outcome: str) -> int:
        return sum(r.outcome == outcome for r in self.records)

    def percentile_ms(self, q: float) -> float:
        return percentile([r.ms for r in self.records], q)

    def as_dict(self) -> dict[str, Any]:
        return {
            "processed": self.count("processed"),
            "failed": self.count("failed"),
            "invocations": len(self.invocations),
            "seconds": round(self.seconds, 3),
            "p50_ms": round(self.percentile_ms(50), 1),
            "p99_ms": round(self.percentile_ms(99), 1),
            "left_on_queue": self.left,
            "dead_letter": self.dead_letter,
            "records": [asdict(r) for r in self.records],
        }


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def drain(
    aws: Aws,
    invoke: Invoke | None = None,
    visibility_timeout: int = DRAIN_VISIBILITY_S,
    retry_after_s: int | None = 0,
) -> DrainReport:
    """Process what is queued, ten records per invocation, until the queue is empty or only records
    that failed in this drain remain. Each record is received at most once per drain; the failed
    ones are made visible again ``retry_after_s`` after the drain (None: after the visibility
    timeout), so each drain is one retry."""
    invoke = invoke or lambda_invoke(aws)
    sqs, queues = aws.client("sqs"), Queues.of(aws)
    report, failed = DrainReport(), {}  # failed: message id → its latest receipt handle
    started = time.perf_counter()
    while True:
        messages = sqs.receive_message(
            QueueUrl=queues.url,
            MaxNumberOfMessages=BATCH,
            VisibilityTimeout=visibility_timeout,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in failed]
        failed |= {m["MessageId"]: m["ReceiptHandle"] for m in messages if m["MessageId"] in failed}
        if not fresh:
            break
        for message_id, handle in process(sqs, queues, invoke, fresh, report).items():
            failed[message_id] = handle
    handles = list(failed.values()) if retry_after_s is not None else []
    for start in range(0, len(handles), BATCH):
        sqs.change_message_visibility_batch(
            QueueUrl=queues.url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": retry_after_s}
                for n, handle in enumerate(handles[start : start + BATCH])
            ],
        )
    report.seconds = time.perf_counter() - started
    report.left, report.dead_letter = depth(aws, queues.url), depth(aws, queues.dlq_url)
    return report


def process(
    sqs: Any, queues: Queues, invoke: Invoke, messages: list[dict[str, Any]], report: DrainReport
) -> dict[str, str]:
    """One invocation; deletes what succeeded and returns the failed records' receipt handles."""
    started = time.perf_counter()
    try:
        response = invoke(sqs_event(messages, queues.arn, queues.arn.split(":")[3]))
        failures = {f["itemIdentifier"] for f in response.get("batchItemFailures") or []}
        error = ""
    except ProcessorFailed as exc:
        failures, error = {m["MessageId"] for m in messages}, str(exc)
    ms = (time.perf_counter() - started) * 1000
    done = [m for m in messages if m["MessageId"] not in failures]
    if done:
        sqs.delete_message_batch(
            QueueUrl=queues.url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)],
        )
    report.invocations.append(
        {"message_ids": [m["MessageId"] for m in messages], "failures": sorted(failures), "ms": ms}
    )
    report.records += [record_report(m, m["MessageId"] in failures, ms, error) for m in messages]
    return {m["MessageId"]: m["ReceiptHandle"] for m in messages if m["MessageId"] in failures}


def record_report(message: dict[str, Any], failed: bool, ms: float, error: str) -> RecordReport:
    """A record's outcome, with what its body says read the way the processor reads it."""
    seen = read(message["MessageId"], message["Body"])
    detail = seen.event.detail if seen.event else None
    note = seen.reason if seen.status in (Status.IGNORED, Status.FAILED) else ""
    return RecordReport(
        message_id=message["MessageId"],
        outcome="failed" if failed else "processed",
        event_id=detail.eventID if detail else None,
        event_name=detail.eventName if detail else None,
        account_id=seen.event.account_id if seen.event else None,
        receive_count=int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
        ms=ms,
        note=error or note,
    )
