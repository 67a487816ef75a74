"""The accounts table: which customer accounts are onboarded, their regions and ExternalId."""

from __future__ import annotations

from typing import Any

from qrie_lib.models import Account, AccountStatus
from qrie_lib.stores.dynamo import from_item, to_item
from qrie_lib.timeutil import now_iso

FIELDS = {
    "account_id": "AccountId",
    "name": "Name",
    "status": "Status",
    "ou_path": "OuPath",
    "tags": "Tags",
    "regions": "Regions",
    "external_id": "ExternalId",
    "onboarded_at": "OnboardedAt",
}


class AccountsStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def put(self, account: Account) -> Account:
        if account.onboarded_at is None:
            account = account.model_copy(update={"onboarded_at": now_iso()})
        data = account.model_dump(mode="json")
        self.client.put_item(TableName=self.table, Item=to_item({FIELDS[k]: v for k, v in data.items()}))
        return account

    def get(self, account_id: str) -> Account | None:
        item = self.client.get_item(TableName=self.table, Key=to_item({"AccountId": account_id})).get("Item")
        return self._account(from_item(item)) if item else None

    def list(self) -> list[Account]:
        accounts = [
            self._account(from_item(item))
            for page in self.client.get_paginator("scan").paginate(TableName=self.table)
            for item in page.get("Items", [])
        ]
        return sorted(accounts, key=lambda a: a.account_id)

    def active(self) -> list[Account]:
        return [a for a in self.list() if a.status is AccountStatus.ACTIVE]

    @staticmethod
    def _account(data: dict[str, Any]) -> Account:
        return Account(**{k: data[v] for k, v in FIELDS.items() if v in data})
