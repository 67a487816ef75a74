"""The policy lifecycle: launch from the catalogue, update scope or severity, suspend.

Everything is validated before anything is written. Only the policy's row is written here: the
findings a change leaves out of scope, or a suspension leaves without a policy, are resolved by
the scan execution the caller (CLI, API) starts next — ``{"policy_id": P}`` walks P's findings
index shard by shard in bounded task calls (``scan.ResolveItem``), never inside an API request."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from qrie_lib.errors import InvalidInput, PolicyNotLaunched
from qrie_lib.policies.registry import CATALOGUE, get_policy
from qrie_lib.scope import PolicyScope
from qrie_lib.stores import Stores
from qrie_lib.stores.policies import LaunchedPolicy, PolicyStatus
from qrie_lib.timeutil import now_iso


def parse_scope(scope: Any) -> PolicyScope:
    if scope is None:
        return PolicyScope()
    try:
        return PolicyScope.model_validate(scope)
    except ValidationError as exc:
        problems = "; ".join(f"scope.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(problems) from None


def check_severity(severity: Any) -> int | None:
    if severity is None:
        return None
    if isinstance(severity, bool) or not isinstance(severity, int) or not 0 <= severity <= 100:
        raise InvalidInput(f"severity: {severity!r} is not an integer from 0 to 100")
    return severity


def launch(
    stores: Stores, policy_ids: list[str], scope: Any = None, severity: Any = None
) -> list[LaunchedPolicy]:
    """Launch (or re-launch) policies; every id is checked before any is written."""
    for policy_id in policy_ids:
        get_policy(policy_id)
    parsed, override, now = parse_scope(scope), check_severity(severity), now_iso()
    previous_of = {p.policy_id: p for p in stores.policies.get_many(policy_ids)}  # one batch read
    launched = []
    for policy_id in policy_ids:
        previous = previous_of.get(policy_id)
        policy = LaunchedPolicy(
            policy_id=policy_id,
            status=PolicyStatus.ACTIVE,
            scope=parsed,
            severity_override=override,
            launched_at=previous.launched_at if previous else now,
            updated_at=now,
        )
        stores.policies.put(policy)
        launched.append(policy)
    return launched


def update(
    stores: Stores, policy_id: str, scope: Any = None, severity: Any = None, clear_severity: bool = False
) -> LaunchedPolicy:
    """Change scope and/or severity override (the rescan resolves findings now out of scope)."""
    current = launched_or_fail(stores, policy_id)
    changes: dict[str, Any] = {"updated_at": now_iso()}
    if scope is not None:
        changes["scope"] = parse_scope(scope)
    if severity is not None or clear_severity:
        changes["severity_override"] = None if clear_severity else check_severity(severity)
    policy = current.model_copy(update=changes)
    stores.policies.put(policy)
    return policy


def suspend(stores: Stores, policy_id: str) -> LaunchedPolicy:
    """Suspend a policy (the scan of it that follows resolves its findings as POLICY_SUSPENDED)."""
    policy = launched_or_fail(stores, policy_id).model_copy(
        update={"status": PolicyStatus.SUSPENDED, "updated_at": now_iso()}
    )
    stores.policies.put(policy)
    return policy


def launched_or_fail(stores: Stores, policy_id: str) -> LaunchedPolicy:
    get_policy(policy_id)
    policy = stores.policies.get(policy_id)
    if policy is None:
        raise PolicyNotLaunched(f"policy_id: {policy_id} is not launched")
    return policy


def catalogue_view(stores: Stores) -> list[dict[str, Any]]:
    """Every catalogue policy with its launch state (for `policies list` and `GET /policies`)."""
    launched = {p.policy_id: p for p in stores.policies.list()}
    rows = []
    for policy_id, policy in sorted(CATALOGUE.items()):
        state = launched.get(policy_id)
        rows.append(
            policy.describe()
            | {
                "status": state.status.value if state else "AVAILABLE",
                "effective_severity": state.severity if state else policy.severity,
                "scope": state.scope.model_dump() if state else None,
                "launched_at": state.launched_at if state else None,
            }
        )
    return rows
