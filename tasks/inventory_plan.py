"""Inventory: validate the input, take the inventory lease and open the run."""

from typing import Any

from qrie_lib import inventory
from tasks.common import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return inventory.plan(event)
