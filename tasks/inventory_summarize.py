"""Inventory: the account's summary row and its consecutive failures (a metric the alarms watch)."""

from typing import Any

from qrie_lib import inventory
from tasks.common import emit_run_metrics, logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = inventory.summarize(event)
    emit_run_metrics("inventory", ConsecutiveFailures=result["consecutive_failures"])
    return result
