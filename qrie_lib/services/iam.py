"""IAM (global). Users, roles, groups and customer managed policies come from the bulk
GetAccountAuthorizationDetails (GAAD), users merged with the credential report, so a listing page
costs the same few calls however many users there are. The account password policy and the root
account are pseudo-resources. Describe-by-id (for events) uses per-entity calls, shaped into GAAD's
detail form so both paths share one conversion and yield the same configuration keys."""

from __future__ import annotations

import csv
import functools
import io
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from qrie_lib.aws import error_code
from qrie_lib.errors import Throttled, UnexpectedResponse
from qrie_lib.models import GLOBAL, Resource
from qrie_lib.services.base import (
    CollectContext,
    EventRule,
    Page,
    ResourceKind,
    Service,
    Touch,
    optional_call,
    require,
    slice_page,
    tags_dict,
)
from qrie_lib.timeutil import iso, now_iso, parse_iso

USER = "AWS::IAM::User"
ROLE = "AWS::IAM::Role"
GROUP = "AWS::IAM::Group"
MANAGED_POLICY = "AWS::IAM::ManagedPolicy"
PASSWORD_POLICY = "AWS::IAM::PasswordPolicy"
ROOT_ACCOUNT = "AWS::IAM::RootAccount"
SERVER_CERTIFICATE = "AWS::IAM::ServerCertificate"

REPORT_CACHE_KEY = "iam:credential-report"
REPORT_POLL_DELAYS = (0.2, 1.0, 2.0, 4.0, 8.0)  # seconds between GenerateCredentialReport polls
ROOT_ROW = "<root_account>"
SUPPORT_POLICY = "arn:aws:iam::aws:policy/AWSSupportAccess"
CLOUDSHELL_POLICY = "arn:aws:iam::aws:policy/AWSCloudShellFullAccess"
ROOT_VIRTUAL_MFA = "mfa/root-account-mfa-device"  # the serial of the root's virtual MFA (CIS 1.6)
CERTIFICATE_KEYS = ("ServerCertificateName", "ServerCertificateId", "Path", "Arn", "UploadDate", "Expiration")
ACCESS_KEY_FIELDS = ("Slot", "Active", "LastRotated", "LastUsedDate", "LastUsedService")
NO_VALUE = frozenset({"", "N/A", "no_information", "not_supported"})
GAAD_MAX_ITEMS = 1000
AFTER = "after:"  # token prefix of name-paging, for a GAAD that ignored MaxItems
GAAD_LISTS = {  # entity → (GAAD Filter, answer list, the key to page by when paging by name)
    "User": (["User"], "UserDetailList", "UserName"),
    "Role": (["Role"], "RoleDetailList", "RoleName"),
    "Group": (["Group"], "GroupDetailList", "GroupName"),
    # Customer managed policies, and AWS managed ones: an attached AdministratorAccess grants as much
    # as a customer's "*" on "*" (CIS 1.16 audits every attached policy). Unattached AWS managed
    # policies (about a thousand) are not inventoried.
    "ManagedPolicy": (["LocalManagedPolicy", "AWSManagedPolicy"], "Policies", "Arn"),
}

Detail = dict[str, Any]

# ---- conversions shared by listing and describe --------------------------------------------


def document(value: Any) -> Any:
    """A policy document as a dict: boto3 decodes IAM's URL-encoded JSON, other clients may not."""
    if not isinstance(value, str):
        return value
    raw = value if value.lstrip().startswith("{") else unquote(value)
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UnexpectedResponse(f"an IAM policy document is not JSON: {value[:80]!r}") from exc


def inline_policies(policies: list[Detail] | None) -> list[Detail]:
    return [
        {"PolicyName": p["PolicyName"], "PolicyDocument": document(p.get("PolicyDocument"))}
        for p in policies or ()
    ]


def attached_policies(policies: list[Detail] | None) -> list[Detail]:
    return [{"PolicyName": p.get("PolicyName"), "PolicyArn": p["PolicyArn"]} for p in policies or ()]


def text(value: str | None) -> str | None:
    return None if value is None or value in NO_VALUE else value


def report_time(value: str | None) -> str | None:
    value = text(value)
    if value is None:
        return None
    try:
        return iso(parse_iso(value))
    except ValueError as exc:
        raise UnexpectedResponse(f"credential report timestamp {value!r}") from exc


def seconds(value: datetime | None) -> str | None:
    # The credential report has whole seconds; the per-user APIs are truncated to match it.
    return iso(value.replace(microsecond=0)) if value else None


def access_key(slot: int, active: bool, rotated: str | None, used: str | None, service: str | None) -> Detail:
    return dict(zip(ACCESS_KEY_FIELDS, (slot, active, rotated, used, service), strict=True))


def report_access_keys(row: dict[str, str]) -> list[Detail]:
    return [
        access_key(
            n,
            row.get(f"access_key_{n}_active") == "true",
            report_time(row.get(f"access_key_{n}_last_rotated")),
            report_time(row.get(f"access_key_{n}_last_used_date")),
            text(row.get(f"access_key_{n}_last_used_service")),
        )
        for n in (1, 2)
        if text(row.get(f"access_key_{n}_last_rotated"))  # the slot holds a key
    ]


def report_credentials(row: dict[str, str]) -> Detail:
    enabled = row.get("password_enabled") == "true"
    return {
        "PasswordEnabled": enabled,
        "PasswordLastUsed": report_time(row.get("password_last_used")),
        # moto fills password_last_changed for users without a password (AWS: N/A)
        "PasswordLastChanged": report_time(row.get("password_last_changed")) if enabled else None,
        "MfaActive": row.get("mfa_active") == "true",
        "AccessKeys": report_access_keys(row),
    }


USER_KEYS = ("UserName", "UserId", "Arn", "Path", "CreateDate", "PermissionsBoundary")
ROLE_KEYS = ("RoleName", "RoleId", "Arn", "Path", "CreateDate", "PermissionsBoundary")
GROUP_KEYS = ("GroupName", "GroupId", "Arn", "Path", "CreateDate")
POLICY_KEYS = ("PolicyId", "Arn", "Path", "Description", "CreateDate", "UpdateDate", "AttachmentCount")
POLICY_KEYS += ("PermissionsBoundaryUsageCount", "IsAttachable", "DefaultVersionId")


def entity(ctx: CollectContext, kind: str, detail: Detail, configuration: Detail, when: str) -> Resource:
    arn = require(detail, "Arn", "IAM")
    tags = tags_dict(detail.get("Tags"))
    return ctx.resource(
        service="iam",
        resource_type=kind,
        arn=arn,
        region=GLOBAL,
        configuration=configuration,
        tags=tags,
        describe_time=when,
    )


def principal(detail: Detail, keys: tuple[str, ...], inline_key: str) -> Detail:
    return {
        **{k: detail.get(k) for k in keys},
        "AttachedManagedPolicies": attached_policies(detail.get("AttachedManagedPolicies")),
        "InlinePolicies": inline_policies(detail.get(inline_key)),
    }


def user_resource(ctx: CollectContext, user: Detail, credentials: Detail, when: str) -> Resource:
    groups = list(user.get("GroupList") or ())
    configuration = {**principal(user, USER_KEYS, "UserPolicyList"), "Groups": groups, **credentials}
    return entity(ctx, USER, user, configuration, when)


def role_resource(ctx: CollectContext, role: Detail, when: str) -> Resource:
    configuration = {
        **principal(role, ROLE_KEYS, "RolePolicyList"),
        "AssumeRolePolicyDocument": document(role.get("AssumeRolePolicyDocument")),
        "RoleLastUsed": role.get("RoleLastUsed") or None,
    }
    return entity(ctx, ROLE, role, configuration, when)


def group_resource(ctx: CollectContext, group: Detail, when: str) -> Resource:
    return entity(ctx, GROUP, group, principal(group, GROUP_KEYS, "GroupPolicyList"), when)


def aws_managed(arn: str) -> bool:
    return arn.split(":")[4:5] == ["aws"]


def policy_resource(ctx: CollectContext, policy: Detail, when: str) -> Resource | None:
    """A managed policy; an AWS managed one only while attached (None otherwise)."""
    arn = require(policy, "Arn", "IAM")
    if aws_managed(arn) and not policy.get("AttachmentCount"):
        return None
    versions = policy.get("PolicyVersionList") or ()
    default = next((v for v in versions if v.get("VersionId") == policy.get("DefaultVersionId")), {})
    configuration = {
        "PolicyName": policy.get("PolicyName") or arn.rsplit("/", 1)[-1],  # moto's GAAD omits the name
        **{k: policy.get(k) for k in POLICY_KEYS},
        "Document": document(default.get("Document")),
    }
    # No tags: GAAD has none for policies, and the listing and describe must agree.
    return entity(ctx, MANAGED_POLICY, {"Arn": arn}, configuration, when)


# ---- bulk answers ---------------------------------------------------------------------------


def credential_report(ctx: CollectContext) -> dict[str, dict[str, str]]:
    """The report's rows by user name (root: ``<root_account>``), fetched once per task call."""
    if REPORT_CACHE_KEY not in ctx.cache:
        iam = ctx.client("iam")
        for delay in (*REPORT_POLL_DELAYS, None):
            if iam.generate_credential_report().get("State") == "COMPLETE":
                break
            if delay is None:
                raise Throttled("the IAM credential report was not ready in time; retry later")
            time.sleep(delay)
        content = require(iam.get_credential_report(), "Content", "GetCredentialReport")
        content = content.decode() if isinstance(content, bytes) else content
        ctx.cache[REPORT_CACHE_KEY] = {row["user"]: row for row in csv.DictReader(io.StringIO(content))}
    return ctx.cache[REPORT_CACHE_KEY]


def gaad_page(ctx: CollectContext, entity_filter: str, token: str | None) -> tuple[list[Detail], str | None]:
    filters, list_key, name_key = GAAD_LISTS[entity_filter]
    after = token.removeprefix(AFTER) if token and token.startswith(AFTER) else None
    marker = None if after is not None else token
    size = min(max(ctx.page_size, 1), GAAD_MAX_ITEMS)
    answer = ctx.client("iam").get_account_authorization_details(
        Filter=filters, MaxItems=size, **({"Marker": marker} if marker else {})
    )
    items = require(answer, list_key, "GetAccountAuthorizationDetails")
    if after is None and len(items) <= size:
        return items, answer.get("Marker") if answer.get("IsTruncated") else None
    # The service ignored MaxItems and Marker (moto does): page over its whole answer by name.
    by_name = {item[name_key]: item for item in items}
    names, last = slice_page(list(by_name), after, size)
    return [by_name[n] for n in names], (AFTER + last if last else None)


def gaad_lister(
    entity_filter: str, convert: Callable[[CollectContext, Detail, str], Resource | None]
) -> Callable[[CollectContext, str | None], Page]:
    def list_page(ctx: CollectContext, token: str | None) -> Page:
        when = now_iso()
        items, next_token = gaad_page(ctx, entity_filter, token)
        return Page([r for r in (convert(ctx, item, when) for item in items) if r is not None], next_token)

    return list_page


def listed_user(ctx: CollectContext, user: Detail, when: str) -> Resource | None:
    row = credential_report(ctx).get(user["UserName"])
    if row is None:  # created after the report was generated (AWS reuses one for up to 4 hours)
        return describe_user(ctx, user["UserName"])
    return user_resource(ctx, user, report_credentials(row), when)


# ---- describe by id -------------------------------------------------------------------------


def gone_is_none(
    describe: Callable[[CollectContext, str], Resource],
) -> Callable[[CollectContext, str], Resource | None]:
    @functools.wraps(describe)
    def wrapper(ctx: CollectContext, resource_id: str) -> Resource | None:
        try:
            return describe(ctx, resource_id)
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                return None
            raise

    return wrapper


def paginate(client: Any, operation: str, key: str, **params: Any) -> list[Any]:
    return [item for page in client.get_paginator(operation).paginate(**params) for item in page.get(key, ())]


def live_policies(iam: Any, kind: str, name: str) -> Detail:
    """A user's, role's or group's policies in GAAD's detail form (``kind``: user, role, group)."""
    params = {f"{kind.title()}Name": name}
    get_inline = getattr(iam, f"get_{kind}_policy")
    return {
        "AttachedManagedPolicies": paginate(
            iam, f"list_attached_{kind}_policies", "AttachedPolicies", **params
        ),
        f"{kind.title()}PolicyList": [
            {"PolicyName": n, "PolicyDocument": get_inline(PolicyName=n, **params)["PolicyDocument"]}
            for n in paginate(iam, f"list_{kind}_policies", "PolicyNames", **params)
        ],
    }


@gone_is_none
def describe_user(ctx: CollectContext, name: str) -> Resource:
    when, iam = now_iso(), ctx.client("iam")
    user = iam.get_user(UserName=name)["User"]
    detail = {
        **user,
        **live_policies(iam, "user", name),
        "GroupList": [g["GroupName"] for g in paginate(iam, "list_groups_for_user", "Groups", UserName=name)],
    }
    mfa = paginate(iam, "list_mfa_devices", "MFADevices", UserName=name)
    keys = sorted(
        paginate(iam, "list_access_keys", "AccessKeyMetadata", UserName=name), key=lambda k: k["CreateDate"]
    )
    login = optional_call(lambda: iam.get_login_profile(UserName=name), "NoSuchEntity")
    row = credential_report(ctx).get(name, {})
    access_keys = []
    for slot, key in enumerate(keys, 1):
        used = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"]).get("AccessKeyLastUsed", {})
        access_keys.append(
            access_key(
                slot,
                key.get("Status") == "Active",
                seconds(key.get("CreateDate")),
                seconds(used.get("LastUsedDate")),
                text(used.get("ServiceName")),
            )
        )
    credentials = {
        "PasswordEnabled": login is not None,
        "PasswordLastUsed": seconds(user.get("PasswordLastUsed")),
        "PasswordLastChanged": report_time(row.get("password_last_changed")) if login else None,
        "MfaActive": bool(mfa),
        "AccessKeys": access_keys,
    }
    return user_resource(ctx, detail, credentials, when)


@gone_is_none
def describe_role(ctx: CollectContext, name: str) -> Resource:
    when, iam = now_iso(), ctx.client("iam")
    return role_resource(
        ctx, {**iam.get_role(RoleName=name)["Role"], **live_policies(iam, "role", name)}, when
    )


@gone_is_none
def describe_group(ctx: CollectContext, name: str) -> Resource:
    when, iam = now_iso(), ctx.client("iam")
    group = iam.get_group(GroupName=name, MaxItems=1)["Group"]
    return group_resource(ctx, {**group, **live_policies(iam, "group", name)}, when)


@gone_is_none
def describe_policy(ctx: CollectContext, arn: str) -> Resource | None:
    when, iam = now_iso(), ctx.client("iam")
    policy = iam.get_policy(PolicyArn=arn)["Policy"]
    version = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]
    return policy_resource(ctx, {**policy, "PolicyVersionList": [version]}, when)


def describe_password_policy(ctx: CollectContext, _: str = "") -> Resource:
    when = now_iso()
    answer = optional_call(lambda: ctx.client("iam").get_account_password_policy(), "NoSuchEntity")
    configuration = {"PasswordPolicy": (answer or {}).get("PasswordPolicy")}
    return entity(ctx, PASSWORD_POLICY, {"Arn": password_policy_arn(ctx)}, configuration, when)


def describe_root(ctx: CollectContext, _: str = "") -> Resource:
    when = now_iso()
    iam = ctx.client("iam")
    summary = require(iam.get_account_summary(), "SummaryMap", "GetAccountSummary")
    row = credential_report(ctx).get(ROOT_ROW, {})
    support = paginate(  # CIS 1.17, an account-level fact: kept with the root account
        iam, "list_entities_for_policy", "PolicyRoles", PolicyArn=SUPPORT_POLICY, EntityFilter="Role"
    )
    # CIS 1.6: a root MFA listed among the virtual devices is not a hardware one
    virtual = paginate(iam, "list_virtual_mfa_devices", "VirtualMFADevices", AssignmentStatus="Assigned")
    root_serial = f"arn:aws:iam::{ctx.account_id}:{ROOT_VIRTUAL_MFA}"
    return entity(
        ctx,
        ROOT_ACCOUNT,
        {"Arn": root_arn(ctx)},
        {
            "AccountMFAEnabled": bool(summary.get("AccountMFAEnabled")),
            "AccountAccessKeysPresent": bool(summary.get("AccountAccessKeysPresent")),
            "PasswordLastUsed": report_time(row.get("password_last_used")),
            "AccessKeys": report_access_keys(row),
            "SummaryMap": summary,
            "SupportRoles": sorted(r["RoleName"] for r in support),
            "RootVirtualMfa": any(d.get("SerialNumber") == root_serial for d in virtual),
            "CloudShellFullAccessEntities": cloudshell_entities(iam),  # CIS 1.22
        },
        when,
    )


def cloudshell_entities(iam: Any) -> Detail:
    """The users, groups and roles AWSCloudShellFullAccess is attached to (one paged call)."""
    found: Detail = {"Users": [], "Groups": [], "Roles": []}
    try:
        pages = iam.get_paginator("list_entities_for_policy").paginate(PolicyArn=CLOUDSHELL_POLICY)
        for page in pages:
            for kind in found:
                found[kind] += [e[f"{kind[:-1]}Name"] for e in page.get(f"Policy{kind}", ())]
    except ClientError as exc:
        if error_code(exc) != "NoSuchEntity":  # an unknown policy is attached to nothing
            raise
    return {kind: sorted(names) for kind, names in found.items()}


def certificate_resource(ctx: CollectContext, metadata: Detail, when: str) -> Resource:
    return entity(ctx, SERVER_CERTIFICATE, metadata, {k: metadata.get(k) for k in CERTIFICATE_KEYS}, when)


def list_certificates(ctx: CollectContext, token: str | None) -> Page:
    when = now_iso()
    size = min(max(ctx.page_size, 1), GAAD_MAX_ITEMS)
    answer = ctx.client("iam").list_server_certificates(MaxItems=size, **({"Marker": token} if token else {}))
    listed = require(answer, "ServerCertificateMetadataList", "ListServerCertificates")
    next_token = answer.get("Marker") if answer.get("IsTruncated") else None
    return Page([certificate_resource(ctx, m, when) for m in listed], next_token)


@gone_is_none
def describe_certificate(ctx: CollectContext, name: str) -> Resource:
    when = now_iso()
    answer = ctx.client("iam").get_server_certificate(ServerCertificateName=name)
    return certificate_resource(ctx, answer["ServerCertificate"]["ServerCertificateMetadata"], when)


def named_arn(path: str) -> Callable[[CollectContext, str], str]:
    # Events carry names, not paths: an entity under a path other than "/" has an ARN this misses.
    return lambda ctx, name: f"arn:aws:iam::{ctx.account_id}:{path}/{name}"


def password_policy_arn(ctx: CollectContext, _: str = "") -> str:
    return f"arn:aws:iam::{ctx.account_id}:password-policy"


def root_arn(ctx: CollectContext, _: str = "") -> str:
    return f"arn:aws:iam::{ctx.account_id}:root-account"


def list_password_policy(ctx: CollectContext, _: str | None) -> Page:
    return Page([describe_password_policy(ctx)], None)


def list_root(ctx: CollectContext, _: str | None) -> Page:
    return Page([describe_root(ctx)], None)


# ---- CloudTrail -----------------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _request(detail: Any) -> dict[str, Any]:
    return _dict(_dict(detail).get("requestParameters"))


def by_params(resource_type: str, *keys: str) -> Callable[[dict[str, Any]], list[Touch]]:
    def touches(detail: dict[str, Any]) -> list[Touch]:
        request = _request(detail)
        return [Touch(resource_type, v) for k in keys if (v := _str(request.get(k)))]

    return touches


def managed_policy(detail: dict[str, Any]) -> list[Touch]:
    """The managed policy an event names (CreatePolicy: in its response)."""
    arn = _str(_request(detail).get("policyArn")) or _str(
        _dict(_dict(_dict(detail).get("responseElements")).get("policy")).get("arn")
    )
    return [Touch(MANAGED_POLICY, arn)] if arn and arn.startswith("arn:") else []


def attaching(resource_type: str, key: str) -> Callable[[dict[str, Any]], list[Touch]]:
    # Attach/detach also changes the policy's AttachmentCount (an AWS managed one is inventoried only
    # while attached: its describe answers None once detached).
    named = by_params(resource_type, key)
    return lambda detail: [*named(detail), *managed_policy(detail)]


def account_policies(detail: dict[str, Any]) -> list[Touch]:
    """Attaching or detaching AWSSupportAccess or AWSCloudShellFullAccess changes facts kept with the
    root account (SupportRoles, CloudShellFullAccessEntities)."""
    named = _request(detail).get("policyArn")
    return account_level(ROOT_ACCOUNT)(detail) if named in (SUPPORT_POLICY, CLOUDSHELL_POLICY) else []


def account_level(resource_type: str) -> Callable[[dict[str, Any]], list[Touch]]:
    def touches(detail: dict[str, Any]) -> list[Touch]:
        account = _str(_dict(detail).get("recipientAccountId"))
        return [Touch(resource_type, account)] if account else []

    return touches


def own_credentials(detail: dict[str, Any]) -> list[Touch]:
    """Access key and MFA calls without userName act on the caller: an IAM user, or the root."""
    if name := _str(_request(detail).get("userName")):
        return [Touch(USER, name)]
    identity = _dict(_dict(detail).get("userIdentity"))
    if identity.get("type") == "IAMUser" and (name := _str(identity.get("userName"))):
        return [Touch(USER, name)]
    return account_level(ROOT_ACCOUNT)(detail) if identity.get("type") == "Root" else []


def service_linked_role(detail: dict[str, Any]) -> list[Touch]:
    """CreateServiceLinkedRole names the service; the role AWS made is in its response."""
    role = _dict(_dict(_dict(detail).get("responseElements")).get("role"))
    return [Touch(ROLE, name)] if (name := _str(role.get("roleName"))) else []


def rule(names: str, touches: Callable[[dict[str, Any]], list[Touch]]) -> EventRule:
    return EventRule(tuple(names.split()), touches)


SERVICE = Service(
    name="iam",
    regional=False,
    read_actions=(
        "iam:GetAccountAuthorizationDetails",
        "iam:GenerateCredentialReport",
        "iam:GetCredentialReport",
        "iam:GetAccountSummary",
        "iam:GetAccountPasswordPolicy",
        "iam:ListEntitiesForPolicy",
        "iam:GetAccessKeyLastUsed",
        "iam:GetLoginProfile",
        "iam:GetUser",
        "iam:GetRole",
        "iam:GetGroup",
        "iam:GetPolicy",
        "iam:GetPolicyVersion",
        "iam:ListAccessKeys",
        "iam:ListGroupsForUser",
        "iam:ListMFADevices",
        "iam:ListVirtualMFADevices",
        "iam:ListServerCertificates",
        "iam:GetServerCertificate",
        # describe-one of users, roles and groups (events): their inline and attached policies
        *(
            f"iam:{verb}{kind}{noun}"
            for kind in ("User", "Role", "Group")
            for verb, noun in (("Get", "Policy"), ("List", "Policies"), ("ListAttached", "Policies"))
        ),
    ),
    kinds=(
        ResourceKind(USER, gaad_lister("User", listed_user), describe_user, named_arn("user")),
        ResourceKind(ROLE, gaad_lister("Role", role_resource), describe_role, named_arn("role")),
        ResourceKind(GROUP, gaad_lister("Group", group_resource), describe_group, named_arn("group")),
        ResourceKind(
            MANAGED_POLICY,
            gaad_lister("ManagedPolicy", policy_resource),
            describe_policy,
            lambda _, a: a,
        ),
        ResourceKind(PASSWORD_POLICY, list_password_policy, describe_password_policy, password_policy_arn),
        ResourceKind(ROOT_ACCOUNT, list_root, describe_root, root_arn),
        ResourceKind(
            SERVER_CERTIFICATE, list_certificates, describe_certificate, named_arn("server-certificate")
        ),
    ),
    event_source="iam.amazonaws.com",
    events=(
        rule(
            "CreateUser DeleteUser CreateLoginProfile DeleteLoginProfile UpdateLoginProfile PutUserPolicy"
            " DeleteUserPolicy AddUserToGroup RemoveUserFromGroup TagUser UntagUser"
            " PutUserPermissionsBoundary DeleteUserPermissionsBoundary",
            by_params(USER, "userName"),
        ),
        rule("UpdateUser", by_params(USER, "userName", "newUserName")),  # a rename: old name and new
        rule(
            "CreateAccessKey UpdateAccessKey DeleteAccessKey EnableMFADevice DeactivateMFADevice",
            own_credentials,
        ),
        rule(
            "AttachUserPolicy DetachUserPolicy",
            lambda detail: [*attaching(USER, "userName")(detail), *account_policies(detail)],
        ),
        rule(
            "CreateRole DeleteRole UpdateAssumeRolePolicy PutRolePolicy DeleteRolePolicy TagRole UntagRole"
            " PutRolePermissionsBoundary DeleteRolePermissionsBoundary",
            by_params(ROLE, "roleName"),
        ),
        rule("CreateServiceLinkedRole", service_linked_role),
        rule(
            "AttachRolePolicy DetachRolePolicy",
            lambda detail: [*attaching(ROLE, "roleName")(detail), *account_policies(detail)],
        ),
        rule("CreateGroup DeleteGroup PutGroupPolicy DeleteGroupPolicy", by_params(GROUP, "groupName")),
        rule("UpdateGroup", by_params(GROUP, "groupName", "newGroupName")),
        rule(
            "AttachGroupPolicy DetachGroupPolicy",
            lambda detail: [*attaching(GROUP, "groupName")(detail), *account_policies(detail)],
        ),
        rule(
            "UploadServerCertificate DeleteServerCertificate",
            by_params(SERVER_CERTIFICATE, "serverCertificateName"),
        ),
        rule(
            "UpdateServerCertificate",
            by_params(SERVER_CERTIFICATE, "serverCertificateName", "newServerCertificateName"),
        ),
        rule("CreatePolicy DeletePolicy CreatePolicyVersion SetDefaultPolicyVersion", managed_policy),
        rule("UpdateAccountPasswordPolicy DeleteAccountPasswordPolicy", account_level(PASSWORD_POLICY)),
    ),
)
