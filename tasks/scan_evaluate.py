"""Scan: evaluate the item's policies on pages of its partition; a cursor until done."""

from typing import Any

from qrie_lib import scan
from tasks.common import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return scan.evaluate(event, context.get_remaining_time_in_millis)
