"""Scan: after Finalize, notify the findings the run opened and export what changed to Security
Hub (when enabled). The state machine catches this step's failure: it never fails the scan."""

from typing import Any

from qrie_lib.exports import report
from tasks.common import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = report.after_scan(event, context.get_remaining_time_in_millis)
    logger.info("scan report", extra=result)
    return result
