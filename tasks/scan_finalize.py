"""Scan: summarise the findings per policy and per account, close the run record."""

from typing import Any

from qrie_lib import scan
from tasks.common import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return scan.finalize(event)
