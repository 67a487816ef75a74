"""The partitions table: one row per resources partition (PK ``AccountService``) saying what the
scans evaluated on it, so a daily scan evaluates only what changed.

- ``Evaluated:{policy_id}``: the start of the last scan run that evaluated the policy on every
  resource of the partition that changed since the run before (or on all of them). A finding of
  that policy there was last confirmed then, unless the finding itself moved later.
- ``Changed:{resource_type}``: when a resource of a type that policies read beside the one they
  evaluate (an account setting, every trail) last changed or went: those policies evaluate the
  whole partition again."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from qrie_lib.stores.dynamo import batch_get, to_item, values

EVALUATED, CHANGED = "Evaluated:", "Changed:"


@dataclass(frozen=True)
class PartitionStamp:
    account_service: str
    evaluated: dict[str, str] = field(default_factory=dict)  # policy id -> run start
    changed: dict[str, str] = field(default_factory=dict)  # resource type -> when

    @classmethod
    def of(cls, item: dict[str, Any]) -> PartitionStamp:
        return cls(
            item["AccountService"],
            {k.removeprefix(EVALUATED): v for k, v in item.items() if k.startswith(EVALUATED)},
            {k.removeprefix(CHANGED): v for k, v in item.items() if k.startswith(CHANGED)},
        )


class PartitionsStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def get_many(self, partitions: Iterable[str]) -> dict[str, PartitionStamp]:
        wanted = list(dict.fromkeys(partitions))
        found = {
            i["AccountService"]: PartitionStamp.of(i)
            for i in batch_get(self.client, self.table, [{"AccountService": p} for p in wanted])
        }
        return {p: found.get(p, PartitionStamp(p)) for p in wanted}

    def mark_changed(self, partition: str, resource_types: Iterable[str], at: str) -> None:
        types = sorted(set(resource_types))
        if not types:
            return
        self.client.update_item(
            TableName=self.table,
            Key=to_item({"AccountService": partition}),
            UpdateExpression="SET " + ", ".join(f"#t{n} = :at" for n in range(len(types))),
            ExpressionAttributeNames={f"#t{n}": f"{CHANGED}{t}" for n, t in enumerate(types)},
            ExpressionAttributeValues=values({":at": at}),
        )

    def stamp(self, partition: str, policy_ids: Iterable[str], at: str, forget: Iterable[str] = ()) -> None:
        """Record that ``policy_ids`` were evaluated through the run started ``at``; ``forget`` the
        stamps of policies no longer evaluated here (out of scope, suspended): evaluated again
        from scratch when they come back."""
        ids, gone = sorted(set(policy_ids)), sorted(set(forget) - set(policy_ids))
        names = {f"#p{n}": f"{EVALUATED}{p}" for n, p in enumerate(ids)}
        names |= {f"#g{n}": f"{EVALUATED}{p}" for n, p in enumerate(gone)}
        expression = "SET " + ", ".join(f"#p{n} = :at" for n in range(len(ids)))
        if gone:
            expression += " REMOVE " + ", ".join(f"#g{n}" for n in range(len(gone)))
        self.client.update_item(
            TableName=self.table,
            Key=to_item({"AccountService": partition}),
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values({":at": at}),
        )
