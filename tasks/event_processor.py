"""Real-time events (SQS-triggered): refresh and re-evaluate the resources a batch of CloudTrail
events touched. Partial batch response: only the records that failed are retried (the queue's
redrive moves a record to the DLQ after three receives); unknown events are acknowledged."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from qrie_lib import realtime
from qrie_lib.errors import MalformedEvent
from qrie_lib.exports.report import after_events
from qrie_lib.realtime import BatchResult, Status
from tasks.common import logger, metrics

# A batch in which every record failed is still a partial response, not an invocation error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    batch = realtime.process_batch([(r["messageId"], r.get("body", "")) for r in event.get("Records", [])])
    report(batch)
    follow_up(batch, context)

    def record_handler(record: SQSRecord) -> str:
        return batch.outcome_of(record.message_id)

    return process_partial_response(event, record_handler, processor, context)  # type: ignore[return-value]


def follow_up(batch: BatchResult, context: Any) -> None:
    """Notify what the batch opened and export what it changed; a failure here is logged, never
    fails the batch (a replay would re-refresh for nothing): the next scan's report catches up."""
    try:
        outcome = after_events(batch.changed, context.get_remaining_time_in_millis)
    except Exception as exc:
        logger.exception(f"notifications or export failed: {exc!r}")
        metrics.add_metric(name="FollowUpFailed", unit=MetricUnit.Count, value=1)
    else:
        if outcome:
            logger.info("findings followed up", extra=outcome)


def report(batch: BatchResult) -> None:
    for target in batch.targets:
        if target.error is None:
            logger.info("resource refreshed", extra=target.log_fields())
        else:
            logger.error(f"refresh failed: {target.error!r}", extra=target.log_fields())
    for record in batch.records:
        if isinstance(record.error, MalformedEvent):
            logger.error(f"malformed event: {record.reason}", extra=record.log_fields())
        elif record.status is not Status.PROCESSED:
            logger.info(f"event {record.status.value}: {record.reason}", extra=record.log_fields())

    metrics.add_metric(name="EventsProcessed", unit=MetricUnit.Count, value=batch.count(Status.PROCESSED))
    metrics.add_metric(
        name="EventsIgnored", unit=MetricUnit.Count, value=batch.count(Status.IGNORED, Status.NOT_ONBOARDED)
    )
    metrics.add_metric(name="EventsFailed", unit=MetricUnit.Count, value=batch.count(Status.FAILED))
    metrics.add_metric(name="FindingsOpened", unit=MetricUnit.Count, value=batch.opened)
    metrics.add_metric(name="FindingsResolved", unit=MetricUnit.Count, value=batch.resolved)
    # a refresh that reached its work bound: the schedules catch up (qrie_lib.realtime.FIND_PAGES)
    metrics.add_metric(
        name="RefreshesTruncated", unit=MetricUnit.Count, value=sum(t.truncated for t in batch.targets)
    )
    for target in batch.targets:
        if target.describe_ms is not None:
            metrics.add_metric(name="DescribeLatency", unit=MetricUnit.Milliseconds, value=target.describe_ms)
