"""Accounts from AWS Organizations: onboard, mark and move accounts (daily, and ``qrie accounts sync``)."""

from typing import Any

from qrie_lib import accounts_sync
from tasks.common import logger


@logger.inject_lambda_context  # the event is not logged: it may carry the ExternalId
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return accounts_sync.sync(event)
