"""Accounts from AWS Organizations: onboard new ACTIVE member accounts whose read-only role answers,
mark closed (SUSPENDED) and departed (REMOVED) ones, and keep every account's OU path current.

The organisation is read by walking its tree (ListRoots, then ListOrganizationalUnitsForParent and
ListAccountsForParent per parent): each account's OU path comes with it, in ~2 calls per OU and
one per 20 accounts, instead of a ListParents chain per account. A new account is tried with the
organisation-wide ExternalId the StackSet deployment gave its roles; one whose role does not
answer is reported as pending and not stored, so it is tried again on the next sync. Work per call
is bounded: at most ``accounts_sync_probes`` new accounts are tried, the rest are deferred."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import AfterValidator

from qrie_lib.aws import Aws, get_aws
from qrie_lib.errors import QrieError
from qrie_lib.external_ids import check_external_id
from qrie_lib.models import Account, AccountStatus, Strict, parse_input
from qrie_lib.policies.registry import get_policy
from qrie_lib.services.registry import SERVICES
from qrie_lib.stores import Stores
from qrie_lib.stores.findings import ResolvedReason
from qrie_lib.stores.resources import account_service
from qrie_lib.timeutil import now_iso

ORGANIZATIONS_REGION = "us-east-1"  # the Organizations endpoint of the aws partition
ROOT_PATH = "/root/"  # what scopes' include_ou_paths name the organisation root as


class SyncRequest(Strict):
    """The sync task's input: the schedule sends ``{}``; ``qrie accounts sync`` may name the
    organisation-wide ExternalId (else the ``external_id`` setting is used)."""

    external_id: Annotated[str | None, AfterValidator(check_external_id)] = None


@dataclass(frozen=True)
class OrgAccount:
    account_id: str
    name: str
    active: bool  # Status ACTIVE (not SUSPENDED or PENDING_CLOSURE)
    ou_path: str


@dataclass
class SyncReport:
    organization_id: str = ""
    onboarded: list[str] = field(default_factory=list)
    pending: list[dict[str, str]] = field(default_factory=list)  # {"account_id", "reason"}
    deferred: list[str] = field(default_factory=list)  # over this call's probe budget
    moved: list[dict[str, str]] = field(default_factory=list)  # {"account_id", "from", "to"}
    suspended: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"account_id", "reason"}
    findings_out_of_scope: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def organizations_client(aws: Aws, external_id: str | None) -> Any:
    """Organizations with the task's own role, or through ``organizations_role_arn``."""
    role_arn = aws.settings.organizations_role_arn
    if not role_arn:
        return aws.client("organizations", ORGANIZATIONS_REGION)
    account, resource = role_arn.split(":", 5)[4:]
    return aws.role_client(
        account, resource.removeprefix("role/"), "organizations", ORGANIZATIONS_REGION, external_id
    )


def read_organization(client: Any) -> tuple[str, str, list[OrgAccount]]:
    """(organisation id, management account id, every account with its OU path)."""
    organization = client.describe_organization()["Organization"]
    found: list[OrgAccount] = []
    parents = [
        (root["Id"], ROOT_PATH)
        for page in client.get_paginator("list_roots").paginate()
        for root in page["Roots"]
    ]
    while parents:
        parent_id, path = parents.pop()
        for page in client.get_paginator("list_accounts_for_parent").paginate(ParentId=parent_id):
            found += [
                OrgAccount(a["Id"], a.get("Name", ""), a.get("Status") == "ACTIVE", path)
                for a in page["Accounts"]
            ]
        for page in client.get_paginator("list_organizational_units_for_parent").paginate(ParentId=parent_id):
            parents += [(ou["Id"], f"{path}{ou['Name']}/") for ou in page["OrganizationalUnits"]]
    return organization["Id"], organization["MasterAccountId"], sorted(found, key=lambda a: a.account_id)


def sync(event: Any, aws: Aws | None = None) -> dict[str, Any]:
    aws = aws or get_aws()
    request = parse_input(SyncRequest, event)
    external_id = request.external_id or aws.settings.external_id
    organization_id, management, members = read_organization(organizations_client(aws, external_id))
    stores = Stores.of(aws)
    known = {a.account_id: a for a in stores.accounts.list()}
    report = SyncReport(organization_id)
    new = []
    for member in members:
        account = known.get(member.account_id)
        if account is None:
            if member.account_id == management:
                # Service-managed StackSets never deploy to the management account.
                report.skipped.append(
                    {"account_id": member.account_id, "reason": "management account: qrie accounts add"}
                )
            elif member.active:
                new.append(member)
        elif account.status is not AccountStatus.REMOVED:
            update_known(stores, account, member, organization_id, report)
    for account in known.values():
        left = account.organization_id == organization_id and account.status is not AccountStatus.REMOVED
        if left and account.account_id not in {m.account_id for m in members}:
            stores.accounts.put(account.model_copy(update={"status": AccountStatus.REMOVED}))
            report.removed.append(account.account_id)
    budget = aws.settings.accounts_sync_probes
    report.deferred = [m.account_id for m in new[budget:]]
    for member in new[:budget]:
        onboard(aws, stores, member, organization_id, external_id, report)
    return report.as_dict()


def update_known(
    stores: Stores, account: Account, member: OrgAccount, organization_id: str, report: SyncReport
) -> None:
    """Status and OU path from the organisation; writes only what changed."""
    status = AccountStatus.ACTIVE if member.active else AccountStatus.SUSPENDED
    changes: dict[str, Any] = {}
    if account.ou_path != member.ou_path:
        changes["ou_path"] = member.ou_path
        report.moved.append({"account_id": account.account_id, "from": account.ou_path, "to": member.ou_path})
    if account.status is not status:
        changes["status"] = status
        (report.suspended if status is AccountStatus.SUSPENDED else report.reactivated).append(
            account.account_id
        )
    if account.organization_id != organization_id:
        changes["organization_id"] = organization_id
    if not changes:
        return
    updated = account.model_copy(update=changes)
    stores.accounts.put(updated)
    if "ou_path" in changes:
        report.findings_out_of_scope += resolve_out_of_scope(stores, updated)


def resolve_out_of_scope(stores: Stores, account: Account) -> int:
    """A moved account's ACTIVE and SUPPRESSED findings of policies whose scope no longer covers it resolve as
    OUT_OF_SCOPE (the scan only evaluates covered accounts, so nothing else would); read through
    the account's partitions, not every finding of every policy."""
    launched = {p.policy_id: p for p in stores.policies.active()}
    leaving = {pid for pid, p in launched.items() if not p.scope.covers_account(account)}
    if not leaving:
        return 0
    now, resolved = now_iso(), 0
    for service in {get_policy(pid).service for pid in leaving} & SERVICES.keys():
        for finding in stores.findings.unresolved_in_partition(account_service(account.account_id, service)):
            if finding.policy_id in leaving:
                resolved += stores.findings.resolve(finding, ResolvedReason.OUT_OF_SCOPE, now)
    return resolved


def onboard(
    aws: Aws,
    stores: Stores,
    member: OrgAccount,
    organization_id: str,
    external_id: str | None,
    report: SyncReport,
) -> None:
    """Store the account only if its read-only role answers the organisation-wide ExternalId."""
    if not external_id:
        reason = "no organisation-wide ExternalId: set QRIE_EXTERNAL_ID or pass --external-id"
        report.pending.append({"account_id": member.account_id, "reason": reason})
        return
    try:
        aws.customer_client(member.account_id, "sts", external_id=external_id)  # assumes the role
    except QrieError as exc:  # AccountAccessDenied, or Throttled: tried again on the next sync
        report.pending.append({"account_id": member.account_id, "reason": f"{type(exc).__name__}: {exc}"})
        return
    stores.accounts.put(
        Account(
            account_id=member.account_id,
            name=member.name,
            ou_path=member.ou_path,
            external_id=external_id,
            organization_id=organization_id,
        )
    )
    report.onboarded.append(member.account_id)
