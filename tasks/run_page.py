"""Any run: write one page of its account ids to S3 for the Distributed Map; a cursor until the last."""

from typing import Any

from qrie_lib import runs
from tasks.common import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return runs.page(event)
