"""What the HTTP API (``tasks/api.py``) accepts, and the two read views only it serves: resources
across a partition's services, and the findings summary.

Requests are validated with ``parse_input`` like every task input, so a bad request reads the
same as a bad state-machine input. Scope and severity stay untyped here on purpose: the policy
lifecycle is the one place that checks them, and it does so before it writes anything."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, model_validator

from qrie_lib.errors import InvalidInput
from qrie_lib.models import AccountId, Region, Strict
from qrie_lib.policies.base import BANDS
from qrie_lib.policies.registry import CATALOGUE, get_policy
from qrie_lib.schema import TABLES
from qrie_lib.services.registry import SERVICES, get_service, service_of_type
from qrie_lib.stores import Stores
from qrie_lib.stores.findings import FindingState
from qrie_lib.stores.resources import account_service
from qrie_lib.views import Bound, decode_position, encode_position, key_attributes

Band = Literal["critical", "high", "medium", "low"]  # policies.base.BANDS, spelled out for pydantic
MAX_PAGE = 500

# ---- requests -----------------------------------------------------------------------------


class PageQuery(Strict):
    """What every paginated read accepts: the token is opaque and only valid with the same filters."""

    limit: int = Field(100, ge=1, le=MAX_PAGE)
    next_token: str | None = None


class FindingsQuery(PageQuery):
    account: AccountId | None = None
    policy: str | None = None
    state: Literal["ACTIVE", "RESOLVED", "SUPPRESSED", "ALL"] = "ACTIVE"
    severity: Band | None = None

    @property
    def finding_state(self) -> FindingState | None:
        return None if self.state == "ALL" else FindingState(self.state)


class ResourcesQuery(PageQuery):
    account: AccountId
    service: str | None = None  # None: every service of the account, one after the other
    resource_type: str | None = None
    region: Region | Literal["global"] | None = None


class SuppressionsQuery(Strict):
    policy: str | None = None
    status: Literal["ACTIVE", "EXPIRED", "REMOVED"] | None = None


class PoliciesQuery(Strict):
    status: Literal["AVAILABLE", "ACTIVE", "SUSPENDED"] | None = None


class LaunchRequest(Strict):
    """One policy, a list, or the whole catalogue; a list or the catalogue gets one scan of everything."""

    policy_id: str | None = None
    policy_ids: list[str] | None = Field(None, min_length=1)
    all: bool = False
    scope: Any = None
    severity: Any = None

    @model_validator(mode="after")
    def one_selector(self) -> LaunchRequest:
        named = [self.policy_id is not None, self.policy_ids is not None, self.all]
        if sum(named) != 1:
            raise ValueError("name exactly one of policy_id, policy_ids or all: true")
        return self

    @property
    def ids(self) -> list[str]:
        if self.all:
            return sorted(CATALOGUE)
        return list(dict.fromkeys(self.policy_ids or [self.policy_id or ""]))

    @property
    def scan_request(self) -> dict[str, Any]:
        """The scan input that covers what was launched: one policy, or everything launched (in
        full when a scope was given: it walks the findings of scoped policies to resolve those out
        of scope)."""
        ids = self.ids
        if len(ids) == 1 and not self.all:
            return {"policy_id": ids[0]}
        return {"full": True} if self.scope is not None else {}


class UpdateRequest(Strict):
    scope: Any = None
    severity: Any = None
    clear_severity: bool = False  # back to the catalogue's severity

    @model_validator(mode="after")
    def something_to_change(self) -> UpdateRequest:
        if self.scope is None and self.severity is None and not self.clear_severity:
            raise ValueError("nothing to change: give scope, severity or clear_severity")
        if self.severity is not None and self.clear_severity:
            raise ValueError("give severity or clear_severity, not both")
        return self


# ---- views --------------------------------------------------------------------------------


def resources_page(
    stores: Stores,
    *,
    account_id: str,
    service: str | None = None,
    resource_type: str | None = None,
    region: str | None = None,
    token: str | None = None,
    limit: int = 100,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of an account's resources, walking its partitions (one per service) in turn with
    one opaque token, the same token scheme as ``views.findings_page``. A resource type narrows
    the walk to its service's partition. A region is a sort-key range of a regional service's
    partition; a global service's resources (an S3 bucket's ARN names no region) are kept by the
    region they are in."""
    services = partition_services(service, resource_type)
    attributes = key_attributes(TABLES["resources"])
    bounds = [Bound(attributes, {"AccountService": account_service(account_id, s)}) for s in services]
    walk = {
        "walk": "resources",
        "account": account_id,
        "service": service,
        "type": resource_type,
        "region": region,
    }
    index, inner = decode_position(token, bounds, walk)
    rows: list[dict[str, Any]] = []
    while index < len(services) and len(rows) < limit:
        regional = SERVICES[services[index]].regional
        page = stores.resources.page(
            account_id, services[index], inner, limit - len(rows), region if regional else None
        )
        rows += [
            resource_row(i)
            for i in page.items
            if resource_type in (None, i["ResourceType"]) and (regional or region in (None, i["Region"]))
        ]
        inner = page.next_token
        if inner is None:
            index += 1
    return rows, (encode_position(index, inner, walk) if index < len(services) else None)


def partition_services(service: str | None, resource_type: str | None) -> list[str]:
    """The services whose partitions hold the resources asked for; UnknownService otherwise."""
    if resource_type is not None:
        owner = service_of_type(resource_type).name
        if service is not None and service != owner:
            raise InvalidInput(f"resource_type: {resource_type} is collected by {owner}, not {service}")
        return [owner]
    return [get_service(service).name] if service is not None else list(SERVICES)


def resource_row(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "arn": item["ARN"],
        "account_id": item["AccountId"],
        "service": item["Service"],
        "region": item["Region"],
        "resource_type": item["ResourceType"],
        "configuration": plain(item.get("Configuration", {})),
        "tags": plain(item.get("Tags", {})),
        "describe_time": item["DescribeTime"],
        "last_seen_at": item.get("LastSeenAt"),
    }


def plain(value: Any) -> Any:
    """DynamoDB's numbers (Decimal) and sets as JSON: integral numbers stay integers."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def summary(stores: Stores, top: int = 10) -> dict[str, Any]:
    """Findings counted by state and severity band, and the policies with the most open findings.

    Read from the counters the finding writes maintain (``stores.counters``): launched policies x
    index shards rows, however many findings there are."""
    by_policy = stores.counters.policies(p.policy_id for p in stores.policies.list())
    cells: Counter[str] = sum(by_policy.values(), Counter())
    counts = {state.value: Counter({b: cells[f"{state.value}|{b}"] for b in BANDS}) for state in FindingState}
    active = [f"{FindingState.ACTIVE.value}|{b}" for b in BANDS]
    open_by_policy = Counter({pid: n for pid, c in by_policy.items() if (n := sum(c[k] for k in active))})
    ranked = sorted(open_by_policy.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return {
        "findings": {
            state: {"total": sum(by_band.values())} | {b: by_band[b] for b in BANDS}
            for state, by_band in counts.items()
        },
        "top_policies": [
            {"policy_id": p.policy_id, "title": p.title, "service": p.service, "active_findings": n}
            for p, n in ((get_policy(pid), n) for pid, n in ranked)
        ],
    }
