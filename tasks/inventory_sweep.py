"""Inventory: after a complete listing, delete what the run did not see; cursor until done."""

from typing import Any

from qrie_lib import inventory
from tasks.common import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return inventory.sweep(event, context.get_remaining_time_in_millis)
