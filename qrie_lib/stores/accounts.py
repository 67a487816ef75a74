"""The accounts table: which customer accounts are onboarded, their regions and ExternalId."""

from __future__ import annotations

from typing import Any

from qrie_lib.errors import AccountExists
from qrie_lib.models import Account, AccountStatus
from qrie_lib.stores.dynamo import Write, conditional_write, decode_token, encode_token, from_item, to_item
from qrie_lib.timeutil import now_iso

FIELDS = {
    "account_id": "AccountId",
    "name": "Name",
    "status": "Status",
    "ou_path": "OuPath",
    "tags": "Tags",
    "regions": "Regions",
    "external_id": "ExternalId",
    "role_arn": "RoleArn",
    "onboarded_at": "OnboardedAt",
    "organization_id": "OrganizationId",
}


class AccountsStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def put(self, account: Account) -> Account:
        """Write the account, whether or not it is onboarded already."""
        account = self._stamped(account)
        self.client.put_item(TableName=self.table, Item=self._item(account))
        return account

    def add(self, account: Account) -> Account:
        """Onboard a new account; ``AccountExists`` (nothing written) if it is onboarded already."""
        account = self._stamped(account)
        put = {"TableName": self.table, "Item": self._item(account)}
        if not conditional_write(
            self.client, Write("Put", put | {"ConditionExpression": "attribute_not_exists(AccountId)"})
        ):
            raise AccountExists(f"account {account.account_id} is onboarded already")
        return account

    @staticmethod
    def _stamped(account: Account) -> Account:
        if account.onboarded_at is None:
            return account.model_copy(update={"onboarded_at": now_iso()})
        return account

    @staticmethod
    def _item(account: Account) -> dict[str, Any]:
        return to_item({FIELDS[k]: v for k, v in account.model_dump(mode="json").items()})

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

    def active_page(self, token: str | None, limit: int) -> tuple[list[str], str | None]:
        """The ids of the ACTIVE accounts among the next ``limit`` rows, and the token of the rest
        (None: the last page): a run's pages, each a bounded read whatever the organisation."""
        answer = self.client.scan(
            TableName=self.table,
            Limit=limit,
            ProjectionExpression="AccountId",
            FilterExpression="#s = :active",
            ExpressionAttributeNames={"#s": "Status"},
            ExpressionAttributeValues={":active": {"S": AccountStatus.ACTIVE.value}},
            ConsistentRead=True,
            **({"ExclusiveStartKey": decode_token(token)} if token else {}),
        )
        ids = sorted(i["AccountId"]["S"] for i in answer.get("Items", []))
        return ids, encode_token(answer.get("LastEvaluatedKey"))

    @staticmethod
    def _account(data: dict[str, Any]) -> Account:
        return Account(**{k: data[v] for k, v in FIELDS.items() if v in data})
