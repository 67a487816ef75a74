"""Scan: the account's summary row, coverage and consecutive failures (a metric the alarms watch)."""

from typing import Any

from qrie_lib import scan
from tasks.common import emit_run_metrics, logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = scan.summarize(event)
    emit_run_metrics("scan", ConsecutiveFailures=result["consecutive_failures"])
    return result
