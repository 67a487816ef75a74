"""The console's REQUEST authorizer (tasks/console_authorizer.py) on Cognito-shaped ID tokens signed
here with a generated RSA key, verified against that key's JWKS (no network): a valid session is
allowed the console's methods only; anything else is API Gateway's 401, and no token is logged."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from qrie_lib.console.render import SESSION_COOKIE
from qrie_lib.console.session import issuer
from qrie_lib.settings import get_settings
from tasks import console_authorizer

REGION, POOL, CLIENT = "eu-west-1", "eu-west-1_AbCdEf123", "3n4b5urk1ft4fl3mg5e62d9ado"
METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/v1/GET/console/findings"
CONSOLE_ARNS = [
    "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/v1/*/console",
    "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/v1/*/console/*",
]


def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


POOL_KEY, OTHER_KEY = private_key(), private_key()


def jwks(*keys: tuple[str, rsa.RSAPrivateKey]) -> jwt.PyJWKSet:
    """The pool's ``/.well-known/jwks.json`` as Cognito publishes it (RS256 public keys by kid)."""
    return jwt.PyJWKSet.from_dict(
        {
            "keys": [
                json.loads(RSAAlgorithm.to_jwk(key.public_key())) | {"kid": kid, "alg": "RS256", "use": "sig"}
                for kid, key in keys
            ]
        }
    )


def id_token(key: rsa.RSAPrivateKey = POOL_KEY, kid: str = "pool-key", **changes: Any) -> str:
    """A Cognito ID token's claims (the documented shape), signed RS256."""
    now = int(time.time())
    claims = {
        "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "aud": CLIENT,
        "email": "alice@example.com",
        "email_verified": True,
        "token_use": "id",
        "auth_time": now - 60,
        "iss": issuer(REGION, POOL),
        "cognito:username": "alice",
        "exp": now + 3600,
        "iat": now - 60,
    } | changes
    return jwt.encode(
        {k: v for k, v in claims.items() if v is not None}, key, algorithm="RS256", headers={"kid": kid}
    )


@pytest.fixture(autouse=True)
def deployed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The authorizer's environment as the stack sets it, and the pool's keys."""
    for name, value in {
        "QRIE_REGION": REGION,
        "QRIE_CONSOLE_USER_POOL_ID": POOL,
        "QRIE_CONSOLE_CLIENT_ID": CLIENT,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    monkeypatch.setattr(console_authorizer, "keys", lambda: jwks(("pool-key", POOL_KEY)))
    yield
    get_settings.cache_clear()


def event(cookie: str | None) -> dict[str, Any]:
    headers = {"Cookie": cookie} if cookie is not None else {}
    return {"type": "REQUEST", "methodArn": METHOD_ARN, "headers": headers, "path": "/console/findings"}


def authorize(cookie: str | None) -> dict[str, Any]:
    return console_authorizer.handler(event(cookie), None)


def test_a_valid_session_is_allowed_the_console_only() -> None:
    result = authorize(f"qrie_csrf=abc; {SESSION_COOKIE}={id_token()}")
    assert result["principalId"] == "alice@example.com"
    statement = result["policyDocument"]["Statement"]
    assert statement == [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": CONSOLE_ARNS}]


@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param(None, id="no-cookie-header"),
        pytest.param("qrie_csrf=abc", id="no-session-cookie"),
        pytest.param(f"{SESSION_COOKIE}=not.a.jwt", id="garbage"),
        pytest.param(f"{SESSION_COOKIE}={id_token(exp=int(time.time()) - 1)}", id="expired"),
        pytest.param(f"{SESSION_COOKIE}={id_token(aud='another-client')}", id="wrong-audience"),
        pytest.param(
            f"{SESSION_COOKIE}={id_token(iss=issuer(REGION, 'eu-west-1_Other'))}", id="wrong-issuer"
        ),
        pytest.param(f"{SESSION_COOKIE}={id_token(key=OTHER_KEY)}", id="bad-signature"),
        pytest.param(f"{SESSION_COOKIE}={id_token(key=OTHER_KEY, kid='unknown')}", id="unknown-key"),
        pytest.param(f"{SESSION_COOKIE}={id_token(token_use='access')}", id="access-token"),
        pytest.param(f"{SESSION_COOKIE}={id_token(sub=None)}", id="no-subject"),
    ],
)
def test_anything_else_is_unauthorized(cookie: str | None) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):  # API Gateway's 401 for an authorizer
        authorize(cookie)


def test_an_hmac_token_keyed_with_the_public_key_is_refused() -> None:
    """The algorithm is fixed to RS256: a token cannot choose HS256 and sign with public material."""
    token = jwt.encode(
        {"sub": "x", "aud": CLIENT, "iss": issuer(REGION, POOL), "token_use": "id", "exp": 2**31, "iat": 0},
        "pool-key-public-material-guessed-by-an-attacker",
        algorithm="HS256",
        headers={"kid": "pool-key"},
    )
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(f"{SESSION_COOKIE}={token}")


def test_without_a_configured_pool_nothing_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QRIE_CONSOLE_USER_POOL_ID")
    get_settings.cache_clear()
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(f"{SESSION_COOKIE}={id_token()}")


def test_no_token_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    token = id_token(aud="another-client")
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(f"{SESSION_COOKIE}={token}")
    authorize(f"{SESSION_COOKIE}={id_token()}")
    logged = [json.dumps(vars(r), default=str) for r in caplog.records]
    refusal = [r for r in caplog.records if r.getMessage() == "console session refused"]
    assert [r.reason for r in refusal] == ["InvalidAudienceError"]  # the reason only
    for secret in (token, token.split(".")[2], token.split(".")[1]):
        assert not any(secret in line for line in logged)
