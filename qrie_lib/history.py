"""Finding history and trends, read without a table scan: a finding's transitions are one query;
trends read one rollup partition per day (``stores.history``) and today's open counts from the
counters (``stores.counters``). Open at the end of a day = open now − the ACTIVE deltas of the days
after it. The p90 time to resolve is read from the rollups' histogram: the bound of the bucket that
holds the 90th percentile (``history.BUCKETS_H``)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import Field

from qrie_lib.models import AccountId, Strict
from qrie_lib.policies.base import BANDS
from qrie_lib.policies.registry import get_policy
from qrie_lib.stores import Stores
from qrie_lib.stores.findings import FindingState
from qrie_lib.stores.history import BUCKETS_H, transition_row
from qrie_lib.subjects import requested
from qrie_lib.timeutil import now_iso

DIMENSION = {"severity": "band", "policy": "policy", "account": "account"}
ACTIVE = FindingState.ACTIVE.value


class TrendsQuery(Strict):
    days: int = Field(30, ge=1, le=366)
    by: Literal["severity", "policy", "account"] = "severity"


class HistoryQuery(Strict):
    arn: str = Field(min_length=1, max_length=2048)
    policy: str
    account: AccountId | None = None  # required for an AWS managed policy (qrie_lib.subjects)


def finding_history(stores: Stores, q: HistoryQuery) -> list[dict[str, Any]]:
    get_policy(q.policy)  # UnknownPolicy rather than an empty history
    key = requested(q.arn, q.account)
    return [transition_row(item) for item in stores.history.of_finding(key, q.policy)]


def open_now(stores: Stores, by: str) -> Counter[str]:
    """ACTIVE findings now, per value of the dimension, from the counters."""
    if by == "account":
        return Counter(
            {
                a.account_id: sum(
                    n for k, n in stores.counters.account(a.account_id).items() if k.startswith(ACTIVE + "|")
                )
                for a in stores.accounts.list()
            }
        )
    by_policy = stores.counters.policies(p.policy_id for p in stores.policies.list())
    if by == "policy":
        return Counter(
            {p: sum(n for k, n in c.items() if k.startswith(ACTIVE + "|")) for p, c in by_policy.items()}
        )
    cells: Counter[str] = sum(by_policy.values(), Counter())
    return Counter({b: cells[f"{ACTIVE}|{b}"] for b in BANDS})


def _active(cells: Counter[str]) -> int:
    return sum(n for k, n in cells.items() if k.startswith(ACTIVE + "|"))


def p90_hours(cells: Counter[str]) -> float | None:
    total = cells["ResolveCount"]
    if not total:
        return None
    seen = 0
    for n in range(len(BUCKETS_H) + 1):
        seen += cells[f"H{n}"]
        if seen >= 0.9 * total:
            return float(BUCKETS_H[min(n, len(BUCKETS_H) - 1)])  # the last bucket: at least its bound
    return None


def trends(stores: Stores, days: int = 30, by: str = "severity", today: date | None = None) -> dict[str, Any]:
    """Per day of the last ``days`` (today included): findings opened, resolved and open at the
    day's end, per value of ``by``; and the mean and p90 time to resolve over the window."""
    dimension = DIMENSION[by]
    today = today or date.fromisoformat(now_iso()[:10])
    dates = [(today - timedelta(days=n)).isoformat() for n in reversed(range(days))]
    rows = stores.history.days(dates, dimension)
    now = open_now(stores, by)
    values = sorted({*now, *(v for d in rows.values() for v in d)}, key=_order(by))
    for value in values:  # an account no longer listed (offboarded) still has its counter row
        if by == "account" and value not in now:
            now[value] = _active(stores.counters.account(value))
    series: dict[str, dict[str, list[int]]] = {}
    window: dict[str, Counter[str]] = {}
    for value in values:
        opened = [rows[d].get(value, Counter())["Opened"] for d in dates]
        resolved = [rows[d].get(value, Counter())["Resolved"] for d in dates]
        deltas = [rows[d].get(value, Counter())["OpenDelta"] for d in dates]
        # The end of a day: now minus what the days after it changed.
        open_at, after = [], 0
        for delta in reversed(deltas):
            open_at.append(now[value] - after)
            after += delta
        series[value] = {"opened": opened, "resolved": resolved, "open": list(reversed(open_at))}
        window[value] = sum((rows[d].get(value, Counter()) for d in dates), Counter())
    return {
        "by": by,
        "days": dates,
        "series": series,
        "time_to_resolve": {
            value: {
                "resolved": c["ResolveCount"],
                "mean_hours": round(c["ResolveSeconds"] / c["ResolveCount"] / 3600, 2)
                if c["ResolveCount"]
                else None,
                "p90_hours": p90_hours(c),
            }
            for value, c in window.items()
        },
    }


def _order(by: str) -> Any:
    if by == "severity":
        return lambda b: BANDS.index(b) if b in BANDS else len(BANDS)
    return lambda v: v
