"""API Gateway's REQUEST authorizer of ``/console``: the session cookie's Cognito ID token verified
(qrie_lib/console/session.py), then a policy that allows the console's methods only. A missing or
invalid session raises ``Unauthorized``: API Gateway answers 401, which the stack's gateway response
turns into a redirect to the sign-in. Neither the token nor the cookie is logged."""

from __future__ import annotations

from functools import cache
from typing import Any

import jwt

from qrie_lib.console.render import PREFIX, SESSION_COOKIE, parse_cookies
from qrie_lib.console.session import InvalidSession, jwks_client, verify
from qrie_lib.settings import get_settings
from tasks.common import logger


@cache
def pool_keys() -> jwt.PyJWKClient:
    s = get_settings()
    return jwks_client(s.region, s.console_user_pool_id or "")


def keys() -> jwt.PyJWKSet:
    return pool_keys().get_jwk_set()  # cached by the client for its lifespan


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    s = get_settings()
    token = cookies_of(event).get(SESSION_COOKIE)
    try:
        if not token or not (s.console_user_pool_id and s.console_client_id):
            raise InvalidSession("no session cookie")
        claims = verify(
            token,
            keys(),
            region=s.region,
            user_pool_id=s.console_user_pool_id,
            client_id=s.console_client_id,
        )
    except InvalidSession as exc:
        logger.info("console session refused", extra={"reason": str(exc)})
        raise Exception("Unauthorized") from None  # API Gateway's 401 for a REQUEST authorizer
    return allow_console(claims, event["methodArn"])


def cookies_of(event: dict[str, Any]) -> dict[str, str]:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    return parse_cookies(headers.get("cookie") or "")


def allow_console(claims: dict[str, Any], method_arn: str) -> dict[str, Any]:
    """Allow every method of ``/console`` and below on this API's stage (the result is cached per
    cookie, so it must cover every console path), and nothing else."""
    # arn:aws:execute-api:<region>:<account>:<api id>/<stage>/<method>/<path>
    arn, stage = method_arn.split("/", 2)[:2]
    base = f"{arn}/{stage}/*{PREFIX}"
    principal = claims.get("email") or claims["sub"]
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [base, f"{base}/*"]}
            ],
        },
        "context": {"sub": claims["sub"]},
    }
