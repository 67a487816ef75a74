"""The console's browser session in AWS: the Cognito ID token the sign-in callback stores in an
HttpOnly cookie, and its verification (signature against the user pool's published keys, issuer,
audience, ``token_use``, expiry) by the API's REQUEST authorizer (tasks/console_authorizer.py).

PyJWT does the verification: the algorithm is fixed to RS256 (Cognito's), so a token cannot pick
``none`` or an HMAC keyed with the public key."""

from __future__ import annotations

from typing import Any

import jwt

SESSION_COOKIE = "qrie_session"
ALGORITHMS = ["RS256"]
JWKS_TIMEOUT_S = 5


class InvalidSession(Exception):
    """No session cookie, or one whose token does not verify (the reason is not logged with it)."""


def issuer(region: str, user_pool_id: str) -> str:
    return f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"


def jwks_client(region: str, user_pool_id: str) -> jwt.PyJWKClient:
    """The pool's keys, fetched once per Lambda container and kept (Cognito rotates by adding)."""
    return jwt.PyJWKClient(f"{issuer(region, user_pool_id)}/.well-known/jwks.json", timeout=JWKS_TIMEOUT_S)


def verify(
    token: str, keys: jwt.PyJWKSet, *, region: str, user_pool_id: str, client_id: str
) -> dict[str, Any]:
    """The ID token's claims, or InvalidSession."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = next((k for k in keys.keys if k.key_id == kid), None)
        if key is None:
            raise InvalidSession("the token's key is not the user pool's")
        claims = jwt.decode(
            token,
            key=key,
            algorithms=ALGORITHMS,
            audience=client_id,
            issuer=issuer(region, user_pool_id),
            options={"require": ["exp", "iat", "iss", "aud", "sub", "token_use"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidSession(type(exc).__name__) from None
    if claims.get("token_use") != "id":
        raise InvalidSession("not an ID token")
    return claims
