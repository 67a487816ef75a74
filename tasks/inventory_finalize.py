"""Inventory: a page of the accounts' summaries; after the last, close the run record, give the
lease back and (weekly) start the full scan. Emits the run's items and failed items."""

from typing import Any

from qrie_lib import inventory
from tasks.common import emit_run_metrics, logger, metrics


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = inventory.finalize(event)
    if summary := result["summary"]:
        logger.info(summary["message"], extra={"run_id": summary["run_id"], "failed": summary["failed"]})
        emit_run_metrics("inventory", RunItems=summary["items"], RunItemsFailed=summary["failed"])
        metrics.flush_metrics()  # only the run's last call has metrics
    return result
