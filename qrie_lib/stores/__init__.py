"""DynamoDB stores, one per table of DESIGN.md, bundled for the tasks."""

from __future__ import annotations

from dataclasses import dataclass

from qrie_lib.aws import Aws, get_aws
from qrie_lib.stores.accounts import AccountsStore
from qrie_lib.stores.findings import FindingsStore
from qrie_lib.stores.policies import PoliciesStore
from qrie_lib.stores.resources import ResourcesStore
from qrie_lib.stores.runs import RunsStore


@dataclass(frozen=True)
class Stores:
    accounts: AccountsStore
    resources: ResourcesStore
    findings: FindingsStore
    policies: PoliciesStore
    runs: RunsStore

    @classmethod
    def of(cls, aws: Aws | None = None) -> Stores:
        aws = aws or get_aws()
        ddb, s = aws.client("dynamodb"), aws.settings
        return cls(
            accounts=AccountsStore(ddb, s.accounts_table),
            resources=ResourcesStore(ddb, s.resources_table),
            findings=FindingsStore(ddb, s.findings_table),
            policies=PoliciesStore(ddb, s.policies_table),
            runs=RunsStore(ddb, s.runs_table),
        )
