"""Rebuild the finding counters from the findings (``qrie counters recount``).

The counters are ADDs made after the finding writes they count (``stores.counters``): a task that
dies in between leaves them off, and a table that predates them has none. The recount reads every
finding once through the by-policy index (its projection carries the state, severity and account:
no finding item is read), computes each counter row, and rewrites only the rows that differ,
reporting each one's drift. Run it while no scan or event is moving findings: a move made during
the walk may be counted in one row and not the other."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.schema import policy_shards
from qrie_lib.stores import Stores
from qrie_lib.stores.counters import Tally
from qrie_lib.stores.findings import FindingState

PAGE = 500


@dataclass
class Recounted:
    findings: int = 0
    rows: int = 0
    rewritten: int = 0
    drift: dict[str, dict[str, int]] = field(default_factory=dict)  # row → cell → recount - stored


def recount(stores: Stores) -> Recounted:
    counted: dict[str, Counter[str]] = {}
    report = Recounted()
    for policy_id in sorted(CATALOGUE):  # launched or not: a suspended policy's findings count
        for shard in policy_shards(policy_id):
            for state in FindingState:
                for ref in stores.findings.in_state(shard, state, PAGE):
                    tally = Tally(ref.subject, ref.policy_id, ref.account_id, ref.state.value, ref.severity)
                    for row in tally.rows:
                        counted.setdefault(row, Counter())[tally.cell] += 1
                    report.findings += 1
    stored = stores.counters.rows()
    report.rows = len(counted)
    for row in sorted(stored.keys() | counted.keys()):
        now, was = counted.get(row, Counter()), +stored.get(row, Counter())
        if now != was:
            stores.counters.replace(row, now)
            report.rewritten += 1
            cells = sorted(now.keys() | was.keys())
            report.drift[row] = {c: now[c] - was[c] for c in cells if now[c] != was[c]}
    return report
