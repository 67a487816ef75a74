"""Scan: evaluate the item's policies on pages of its partition; a cursor until done. Emits the
findings each call opened, resolved and suppressed (the operator dashboard's metrics)."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from qrie_lib import scan
from tasks.common import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = scan.evaluate(event, context.get_remaining_time_in_millis)
    moved = result.get("moved", {})
    metrics.add_metric(name="FindingsOpened", unit=MetricUnit.Count, value=moved.get("opened", 0))
    metrics.add_metric(name="FindingsResolved", unit=MetricUnit.Count, value=moved.get("resolved", 0))
    metrics.add_metric(name="FindingsSuppressed", unit=MetricUnit.Count, value=moved.get("suppressed", 0))
    return result
