"""Inventory: list and upsert pages of one work item, then sweep what it did not see; returns a
cursor until the item is done."""

from typing import Any

from qrie_lib import inventory
from tasks.common import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return inventory.collect(event, context.get_remaining_time_in_millis)
