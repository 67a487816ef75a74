"""The console's browser session in AWS: the Cognito ID token the sign-in callback stores in an
HttpOnly cookie, and its verification (signature against the user pool's published keys, issuer,
audience, ``token_use``, expiry) by the API's REQUEST authorizer (tasks/console_authorizer.py).

PyJWT does the verification: the algorithm is fixed to RS256 (Cognito's), so a token cannot pick
``none`` or an HMAC keyed with the public key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import jwt

from qrie_lib.errors import InvalidInput
from qrie_lib.settings import Settings

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


# ---- sign-in: managed login, authorization code with PKCE ------------------------------------

SIGN_IN_COOKIE = "qrie_signin"  # "<state>.<PKCE verifier>" of the sign-in this browser started
SIGN_IN_TTL_S = 600
SESSION_TTL_S = 3600  # the ID token's validity (stacks/console_auth.py ID_TOKEN_VALIDITY)
TOKEN_TIMEOUT_S = 10


class SignInNotConfigured(InvalidInput):
    """The console runs without a user pool (locally): there is nothing to sign in to."""


class SignInFailed(InvalidInput):
    """The callback's state or code does not belong to the sign-in this browser started."""


@dataclass(frozen=True)
class SignIn:
    user_pool_id: str
    client_id: str
    auth_domain: str  # https://<prefix>.auth.<region>.amazoncognito.com
    console_url: str  # https://<api>/v1/console

    @classmethod
    def of(cls, settings: Settings) -> SignIn:
        values = (
            settings.console_user_pool_id,
            settings.console_client_id,
            settings.console_auth_domain,
            settings.console_url,
        )
        if not all(values):
            raise SignInNotConfigured("console sign-in is not configured (it exists in AWS only)")
        return cls(*values)  # type: ignore[arg-type]

    @property
    def callback_url(self) -> str:
        return f"{self.console_url}/auth/callback"

    def start(self) -> tuple[str, str]:
        """The managed login's URL, and the cookie value that binds its answer to this browser."""
        state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(64)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.callback_url,
            "scope": "openid email",
            "state": state,
            "code_challenge": challenge.decode(),
            "code_challenge_method": "S256",
        }
        return f"{self.auth_domain}/oauth2/authorize?{urlencode(query)}", f"{state}.{verifier}"

    def finish(self, started: str, state: str, code: str) -> str:
        """The ID token for ``code``, if ``state`` is the one this browser's sign-in started."""
        expected, _, verifier = started.partition(".")
        if not (expected and verifier and state and hmac.compare_digest(expected.encode(), state.encode())):
            raise SignInFailed("state: this sign-in was not started by this browser; sign in again")
        if not code:
            raise SignInFailed("code: missing; sign in again")
        return self.exchange(code, verifier)

    def exchange(self, code: str, verifier: str) -> str:
        """Cognito's token endpoint (authorization_code grant, public client with PKCE)."""
        body = urlencode(
            {
                "grant_type": "authorization_code",
                "client_id": self.client_id,
                "code": code,
                "redirect_uri": self.callback_url,
                "code_verifier": verifier,
            }
        ).encode()
        request = Request(
            f"{self.auth_domain}/oauth2/token",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        try:
            with urlopen(request, timeout=TOKEN_TIMEOUT_S) as response:
                return str(json.load(response)["id_token"])
        except HTTPError as exc:  # invalid_grant: a used, expired or foreign code
            raise SignInFailed(f"the token endpoint refused the code ({exc.code}); sign in again") from None

    def logout_url(self) -> str:
        query = {"client_id": self.client_id, "logout_uri": f"{self.console_url}/"}
        return f"{self.auth_domain}/logout?{urlencode(query)}"
