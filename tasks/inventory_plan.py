"""Inventory: validate the input and write the run's work items for the Distributed Map."""

from typing import Any

from qrie_lib import inventory
from tasks.common import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return inventory.plan(event)
