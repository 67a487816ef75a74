"""Scan: one account's items (a partition per service), or the findings-shard items (``*``)."""

from typing import Any

from qrie_lib import scan
from tasks.common import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return scan.expand(event)
