"""Scan: validate the input and open the run (its accounts are paged by RunPage)."""

from typing import Any

from qrie_lib import scan
from tasks.common import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return scan.plan(event)
