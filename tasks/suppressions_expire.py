"""Daily: expire the suppressions past their date and start the scans that reactivate their
findings that still violate (qrie_lib.suppressions.expire)."""

from typing import Any

from qrie_lib import suppressions
from qrie_lib.aws import get_aws
from qrie_lib.stores import Stores
from tasks.common import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    aws = get_aws()
    result = suppressions.expire(aws, Stores.of(aws))
    logger.info("suppressions expired", extra=result)
    return result
