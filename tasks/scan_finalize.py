"""Scan: a page of the accounts' summaries; after the last, the findings per policy on the run
record. Emits the run's items and failed items."""

from typing import Any

from qrie_lib import scan
from tasks.common import emit_run_metrics, logger, metrics


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = scan.finalize(event)
    if summary := result["summary"]:
        emit_run_metrics("scan", RunItems=summary["items"], RunItemsFailed=summary["failed"])
        metrics.flush_metrics()  # only the run's last call has metrics
    return result
