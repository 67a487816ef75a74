"""ExternalIds: one per customer account, generated at onboarding and stored with the account.

The ExternalId is the confused-deputy protection of the customer's read-only role: it must be a
value only that customer and the operator know. A value shared by every customer (such as the
public constant earlier versions defaulted to) protects nothing, so it is refused everywhere."""

from __future__ import annotations

import re
import secrets

# The public default of Qrie ≤ 0.1: anyone who read the source knew it.
PUBLIC_DEFAULT = "qrie-external-id"
# What sts:AssumeRole accepts (2–1,224 characters of this set).
PATTERN = re.compile(r"^[\w+=,.@:/-]{2,1224}$")


def new_external_id() -> str:
    """192 random bits, URL-safe (fits sts:ExternalId's character set)."""
    return secrets.token_urlsafe(24)


def check_external_id(value: str | None) -> str | None:
    """``value`` if it can be an ExternalId; ``ValueError`` naming the problem otherwise."""
    if value is None:
        return None
    if value == PUBLIC_DEFAULT:
        raise ValueError(
            f"{PUBLIC_DEFAULT!r} is a public value shared by every installation: it gives no "
            "confused-deputy protection; let Qrie generate one per account"
        )
    if not PATTERN.fullmatch(value):
        raise ValueError("an ExternalId is 2 to 1,224 characters of letters, digits and +=,.@:/-_")
    return value
