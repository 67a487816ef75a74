"""Any run: record a failed work item (error and cause from the Catch) so the run reports it."""

from typing import Any

from qrie_lib import runs
from qrie_lib.stores import Stores
from tasks.common import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.warning("work item failed", extra={"item": event.get("item"), "error": event.get("error")})
    return runs.record_failure(event, Stores.of())
