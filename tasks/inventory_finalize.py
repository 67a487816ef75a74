"""Inventory: summarise the run from its item rows and close the run record."""

from typing import Any

from qrie_lib import inventory
from tasks.common import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    summary = inventory.finalize(event)
    logger.info(summary["message"], extra={"run_id": summary["run_id"], "failed": summary["failed"]})
    return summary
