"""Read views shared by the CLI and the API: findings through the table's GSIs (never a scan),
paginated with one opaque token across the several queries a filter may need."""

from __future__ import annotations

import base64
import json
from typing import Any

from qrie_lib.errors import InvalidInput
from qrie_lib.policies.base import BANDS
from qrie_lib.policies.registry import get_policy
from qrie_lib.services.registry import SERVICES
from qrie_lib.stores import Stores
from qrie_lib.stores.findings import Finding, FindingState
from qrie_lib.stores.resources import account_service

BAND_RANGES = {"critical": (90, 100), "high": (70, 89), "medium": (40, 69), "low": (0, 39)}


def finding_row(f: Finding) -> dict[str, Any]:
    return {
        "arn": f.arn,
        "policy_id": f.policy_id,
        "state": f.state.value,
        "severity": f.severity,
        "account_id": f.account_id,
        "region": f.region,
        "resource_type": f.resource_type,
        "evidence": json.loads(json.dumps(f.evidence, default=float)),
        "first_seen": f.first_seen,
        "last_evaluated": f.last_evaluated,
        "resolved_at": f.resolved_at,
        "resolved_reason": f.resolved_reason.value if f.resolved_reason else None,
        "reopen_count": f.reopen_count,
    }


def _queries(stores: Stores, policy_id: str | None, account_id: str | None) -> list[dict[str, str | None]]:
    """The GSI queries that together cover a filter: by policy if given, else by partition."""
    if policy_id:
        partition = account_service(account_id, get_policy(policy_id).service) if account_id else None
        return [{"policy_id": policy_id, "account_service": partition}]
    if account_id:
        return [{"policy_id": None, "account_service": account_service(account_id, s)} for s in SERVICES]
    return [{"policy_id": p.policy_id, "account_service": None} for p in stores.policies.list()]


def findings_page(
    stores: Stores,
    *,
    state: FindingState | None = FindingState.ACTIVE,
    band_name: str | None = None,
    account_id: str | None = None,
    policy_id: str | None = None,
    token: str | None = None,
    limit: int = 100,
) -> tuple[list[dict[str, Any]], str | None]:
    if band_name is not None and band_name not in BAND_RANGES:
        raise InvalidInput(f"severity: {band_name!r} is not a band ({', '.join(BANDS)})")
    low, high = BAND_RANGES[band_name] if band_name else (None, None)
    queries = _queries(stores, policy_id, account_id)
    position = _decode(token)
    index, inner = position.get("q", 0), position.get("k")
    rows: list[dict[str, Any]] = []
    while index < len(queries) and len(rows) < limit:
        found, inner = stores.findings.query_page(
            state=state,
            min_severity=low,
            max_severity=high,
            token=inner,
            limit=limit - len(rows),
            **queries[index],
        )
        rows += [finding_row(f) for f in found]
        if inner is None:
            index += 1
    more = index < len(queries)
    return rows, (_encode({"q": index, "k": inner}) if more else None)


def findings_rows(stores: Stores, **filters: Any) -> list[dict[str, Any]]:
    rows, token = findings_page(stores, **filters)
    while token:
        more, token = findings_page(stores, token=token, **filters)
        rows += more
    return rows


def _encode(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def _decode(token: str | None) -> dict[str, Any]:
    if not token:
        return {}
    try:
        position = json.loads(base64.urlsafe_b64decode(token.encode()))
        if not isinstance(position, dict) or not isinstance(position.get("q", 0), int):
            raise ValueError
        return position
    except ValueError:
        raise InvalidInput("next_token: not a token this API issued") from None
