"""Page tokens bound to their query: a token carries an HMAC-SHA256 over the query's filters and the
position, keyed per deployment, so a token issued for one query is refused on any other (it would
otherwise silently skip part of the other's results).

The key: in AWS, a Secrets Manager secret the operator stack generates (``page_token_secret_arn``,
read once per Lambda container), shared by every container of the API; locally, a random key of
this process (the API server's), so a token outlives neither the server nor a restart: a stale
token is a 400, and the client starts again from the first page."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from functools import cache
from typing import Any

from qrie_lib.aws import get_aws
from qrie_lib.errors import InvalidInput
from qrie_lib.settings import get_settings

NOT_ISSUED = "next_token was not issued for this query"
_LOCAL_KEY = secrets.token_bytes(32)


def not_issued() -> InvalidInput:
    """What answers a page token this deployment did not sign for this very query."""
    return InvalidInput(NOT_ISSUED)


def signature(query: Mapping[str, Any], position: Mapping[str, Any]) -> str:
    message = json.dumps({"query": query, "position": position}, sort_keys=True, separators=(",", ":"))
    return hmac.new(signing_key(), message.encode(), hashlib.sha256).hexdigest()


def check(query: Mapping[str, Any], position: Mapping[str, Any], sent: Any) -> None:
    if not (isinstance(sent, str) and hmac.compare_digest(sent, signature(query, position))):
        raise not_issued()


def signing_key() -> bytes:
    arn = get_settings().page_token_secret_arn
    return _secret(arn) if arn else _LOCAL_KEY


@cache
def _secret(arn: str) -> bytes:
    return get_aws().client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"].encode()
