"""IAM policies: the root account, users and their credentials, policies and role trust.

Credential ages compare with the current time (UTC). A credential never used counts as idle from
when it was created (password: last changed; access key: last rotated).

Access key thresholds, and why one stale key may carry up to three findings:
- IAMUserCredentialsUnused (CIS 1.12): a password or active key unused for 45 days or more (never
  used: 45 days after it was set or created). Remedy: disable it.
- IAMAccessKeyNotRotated / IAMRootAccessKeyNotRotated (CIS 1.14): an active key created more than
  90 days ago, used or not. Remedy: rotate it. A CIS report needs both controls, so both stay.
- IAMAccessKeyUnused (not CIS): an active key never used 7 days after its creation — a key nobody
  needed, reported before CIS 1.12's 45 days. Remedy: delete it. Idle-but-once-used keys are left
  to CIS 1.12, which already covers them.
So a key created 120 days ago and never used has all three (disable, rotate, delete: one fix, the
deletion, resolves them all); a key used last week and 120 days old only CIS 1.14's.

Admin rights: IAMPolicyOverlyPermissive is CIS 1.16's audit — attached managed policies (customer
or AWS managed; ``aws iam list-policies --only-attached``) with Allow "*" on "*". Inline policies are
outside that audit: the inline policies' checks are stricter, non-CIS ones, which also count an
Allow of NotAction on "*" ("admin minus a few"). Neither counts a service wildcard such as "iam:*"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from qrie_lib.models import Resource
from qrie_lib.policies.base import COMPLIANT, Policy, Related, Verdict, violation
from qrie_lib.policies.documents import (
    account_of,
    admin_statements,
    allows,
    condition_values,
    near_admin_statements,
    principals,
    public_statements,
    statements,
)
from qrie_lib.services.iam import GROUP, MANAGED_POLICY, PASSWORD_POLICY, ROLE, ROOT_ACCOUNT, USER
from qrie_lib.timeutil import parse_iso

Stmt = dict[str, Any]

ROOT_ACTIVITY_DAYS = 90
UNUSED_CREDENTIAL_DAYS = 45
KEY_ROTATION_DAYS = 90
NEVER_USED_KEY_GRACE_DAYS = 7
PASSWORD_NEED = {"PasswordPolicy": "GetAccountPasswordPolicy"}
PASSWORD_COMPLEXITY: dict[str, int | bool] = {  # best practice, not CIS v3.0
    "RequireSymbols": True,
    "RequireNumbers": True,
    "RequireUppercaseCharacters": True,
    "RequireLowercaseCharacters": True,
}


def days_since(timestamp: str | None) -> int | None:
    return (datetime.now(UTC) - parse_iso(timestamp)).days if timestamp else None


def is_number(value: Any) -> bool:
    # Configurations read back from DynamoDB carry numbers as Decimal.
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def active_keys(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [k for k in config.get("AccessKeys") or () if k.get("Active")]


# ---- root account -----------------------------------------------------------------------


def root_keys_not_rotated(root: Resource, _: Related) -> Verdict:
    keys = [k for k in active_keys(root.configuration) if not_rotated(k)]
    return violation(AccessKeys=key_evidence(keys), MaxAgeDays=KEY_ROTATION_DAYS) if keys else COMPLIANT


def root_access_keys_present(root: Resource, _: Related) -> Verdict:
    config = root.configuration
    slots = [k.get("Slot") for k in active_keys(config)]
    if not config.get("AccountAccessKeysPresent") and not slots:
        return COMPLIANT
    return violation(
        AccountAccessKeysPresent=bool(config.get("AccountAccessKeysPresent")), ActiveKeySlots=slots
    )


def root_mfa_disabled(root: Resource, _: Related) -> Verdict:
    return COMPLIANT if root.configuration.get("AccountMFAEnabled") else violation(AccountMFAEnabled=False)


def root_account_active(root: Resource, _: Related) -> Verdict:
    config = root.configuration
    uses = {"password": config.get("PasswordLastUsed")}
    uses |= {f"access_key_{k.get('Slot')}": k.get("LastUsedDate") for k in config.get("AccessKeys") or ()}
    recent = {
        credential: used
        for credential, used in uses.items()
        if (age := days_since(used)) is not None and age < ROOT_ACTIVITY_DAYS
    }
    return violation(RecentlyUsed=recent, WithinDays=ROOT_ACTIVITY_DAYS) if recent else COMPLIANT


def support_role_missing(root: Resource, _: Related) -> Verdict:
    if root.configuration.get("SupportRoles"):
        return COMPLIANT
    return violation(SupportRoles=[], PolicyArn="arn:aws:iam::aws:policy/AWSSupportAccess")


# ---- users and credentials --------------------------------------------------------------


def user_mfa_disabled(user: Resource, _: Related) -> Verdict:
    config = user.configuration
    if not config.get("PasswordEnabled") or config.get("MfaActive"):
        return COMPLIANT
    return violation(PasswordEnabled=True, MfaActive=False)


def credentials(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The user's enabled password and active keys: name, last use, and when it was created."""
    found = []
    if config.get("PasswordEnabled"):
        since = config.get("PasswordLastChanged") or config.get("CreateDate")
        found.append({"Credential": "password", "LastUsed": config.get("PasswordLastUsed"), "Since": since})
    for key in active_keys(config):
        found.append(
            {
                "Credential": f"access_key_{key.get('Slot')}",
                "LastUsed": key.get("LastUsedDate"),
                "Since": key.get("LastRotated"),
            }
        )
    return found


def credentials_unused(user: Resource, _: Related) -> Verdict:
    idle = []
    for credential in credentials(user.configuration):
        days = days_since(credential["LastUsed"] or credential["Since"])
        if days is not None and days >= UNUSED_CREDENTIAL_DAYS:
            idle.append(credential | {"DaysUnused": days})
    return violation(UnusedCredentials=idle, ThresholdDays=UNUSED_CREDENTIAL_DAYS) if idle else COMPLIANT


def key_evidence(keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: key.get(k) for k in ("Slot", "LastRotated", "LastUsedDate")} for key in keys]


def keys_where(
    test: Callable[[dict[str, Any]], bool], **context: Any
) -> Callable[[Resource, Related], Verdict]:
    """An evaluate flagging users with active access keys that pass ``test``."""

    def evaluate(user: Resource, _: Related) -> Verdict:
        keys = [k for k in active_keys(user.configuration) if test(k)]
        return violation(AccessKeys=key_evidence(keys), **context) if keys else COMPLIANT

    return evaluate


def not_rotated(key: dict[str, Any]) -> bool:
    age = days_since(key.get("LastRotated"))
    return age is not None and age > KEY_ROTATION_DAYS


def never_used(key: dict[str, Any]) -> bool:
    """Never used, and created long enough ago that it should have been."""
    age = days_since(key.get("LastRotated"))
    return key.get("LastUsedDate") is None and age is not None and age >= NEVER_USED_KEY_GRACE_DAYS


def multiple_active_keys(user: Resource, _: Related) -> Verdict:
    keys = active_keys(user.configuration)
    return violation(ActiveAccessKeys=key_evidence(keys)) if len(keys) > 1 else COMPLIANT


def direct_policies(user: Resource, _: Related) -> Verdict:
    config = user.configuration
    managed = [p.get("PolicyArn") for p in config.get("AttachedManagedPolicies") or ()]
    inline = [p.get("PolicyName") for p in config.get("InlinePolicies") or ()]
    if not managed and not inline:
        return COMPLIANT
    return violation(AttachedManagedPolicies=managed, InlinePolicies=inline)


# ---- policies ---------------------------------------------------------------------------


def managed_policy_admin(policy: Resource, _: Related) -> Verdict:
    """CIS 1.16: only attached policies count (an unattached one grants nothing)."""
    attachments = policy.configuration.get("AttachmentCount")
    found = admin_statements(policy.configuration.get("Document"))
    if not found or not (is_number(attachments) and attachments > 0):
        return COMPLIANT
    return violation(
        Statements=found,
        DefaultVersionId=policy.configuration.get("DefaultVersionId"),
        AttachmentCount=policy.configuration.get("AttachmentCount"),
    )


def inline_policy_admin(principal: Resource, _: Related) -> Verdict:
    found = [
        {"PolicyName": p.get("PolicyName"), "Statements": admin}
        for p in principal.configuration.get("InlinePolicies") or ()
        if (admin := near_admin_statements(p.get("PolicyDocument")))
    ]
    return violation(InlinePolicies=found) if found else COMPLIANT


def password_requirements(requirements: dict[str, int | bool]) -> Callable[[Resource, Related], Verdict]:
    """An evaluate flagging a missing password policy or one that does not meet ``requirements``."""

    def evaluate(resource: Resource, _: Related) -> Verdict:
        return password_policy_unmet(resource, requirements)

    return evaluate


def password_policy_unmet(resource: Resource, requirements: dict[str, int | bool]) -> Verdict:
    policy = resource.configuration.get("PasswordPolicy")
    unmet = {}
    for name, expected in requirements.items():
        actual = (policy or {}).get(name)
        met = actual is True if isinstance(expected, bool) else is_number(actual) and actual >= expected
        if not met:
            unmet[name] = {
                "Expected": expected if isinstance(expected, bool) else f">= {expected}",
                "Actual": actual,
            }
    if not unmet:
        return COMPLIANT
    return violation(Unmet=unmet, **({} if policy else {"PasswordPolicy": None}))


# ---- role trust -------------------------------------------------------------------------


WEB_IDENTITY_PINS = {  # identity provider -> the condition key that says which identities may assume
    "cognito-identity.amazonaws.com": "cognito-identity.amazonaws.com:aud",  # the identity pool
    "accounts.google.com": "accounts.google.com:aud",  # the application's client id
    "graph.facebook.com": "graph.facebook.com:app_id",
    "www.amazon.com": "www.amazon.com:app_id",
}


def web_identity_pin(provider: str) -> str:
    """The condition key that narrows a web identity provider's tokens to the intended callers: for an
    IAM OIDC provider (GitHub Actions, GitLab, EKS...) its ``sub`` — its ``aud`` is often the same for
    every customer ("sts.amazonaws.com")."""
    if ":oidc-provider/" in provider:
        return f"{provider.split(':oidc-provider/', 1)[1]}:sub"
    return WEB_IDENTITY_PINS.get(provider, f"{provider}:sub")


def open_web_identity(statement: Stmt) -> list[str]:
    """The web identity providers an Allow trusts without pinning which identities (no positive
    condition on the provider's pinning key, or only "*")."""
    if not allows(statement):
        return []
    providers = [p for p in principals(statement).get("Federated", []) if "saml-provider/" not in p]
    return [
        provider
        for provider in providers
        if not [v for v in condition_values(statement, web_identity_pin(provider)) if str(v).strip("*")]
    ]


def trust_any_principal(role: Resource, _: Related) -> Verdict:
    trust = role.configuration.get("AssumeRolePolicyDocument")
    evidence: dict[str, Any] = {}
    if found := public_statements(trust):
        evidence["Statements"] = found
    web = [(s, p) for s in statements(trust) for p in open_web_identity(s)]
    if web:
        evidence["WebIdentityWithoutSubject"] = [
            {"Provider": p, "MissingCondition": web_identity_pin(p), "Statement": s} for s, p in web
        ]
    return violation(**evidence) if evidence else COMPLIANT


def cross_account_without_external_id(role: Resource, related: Related) -> Verdict:
    """Trust in AWS principals of other accounts without sts:ExternalId; "*" is the any-principal
    policy's, and service and federated principals are not accounts. Accounts Qrie knows (onboarded,
    e.g. the organisation's management account behind OrganizationAccountAccessRole) are not third
    parties: the confused deputy needs an outside party."""
    found, accounts = [], set()
    trusted = {None, role.account_id, *related.known_accounts}
    for statement in statements(role.configuration.get("AssumeRolePolicyDocument")):
        if not allows(statement) or condition_values(statement, "sts:ExternalId"):
            continue
        others = {account_of(p) for p in principals(statement).get("AWS", [])} - trusted
        if others:
            found.append(statement)
            accounts |= others
    return violation(ExternalAccounts=sorted(accounts), Statements=found) if found else COMPLIANT


declare = partial(Policy, service="iam")
DELETE_KEY = "aws iam update-access-key --status Inactive, then aws iam delete-access-key"
ADMIN_DESCRIPTION = 'allows every action on every resource (Action "*" on Resource "*")'
NEAR_ADMIN_DESCRIPTION = (
    'allows every action on every resource (Action "*" on Resource "*"), or every action but a few '
    '(NotAction on Resource "*"); stricter than CIS 1.16, which audits attached managed policies'
)
ADMIN_REMEDIATION = (
    "Replace the statement with the actions and resources the principal needs (IAM Access Analyzer can "
    "generate a policy from CloudTrail activity); grant administrators AdministratorAccess through a "
    "group or a role that requires MFA."
)


def inline_admin_policy(policy_id: str, resource_type: str, kind: str) -> Policy:
    return declare(
        policy_id=policy_id,
        resource_type=resource_type,
        title=f"IAM {kind} inline policy grants full administrator rights",
        description=f"An inline policy of the {kind} {NEAR_ADMIN_DESCRIPTION}.",
        severity=80,
        remediation=f"{ADMIN_REMEDIATION} aws iam delete-{kind}-policy --{kind}-name NAME --policy-name P.",
        rule=inline_policy_admin,
    )


POLICIES: tuple[Policy, ...] = (
    declare(
        policy_id="IAMRootAccessKeysPresent",
        resource_type=ROOT_ACCOUNT,
        title="Root user has access keys",
        description="The root user has active access keys, which carry unrestricted access to the account.",
        severity=95,
        remediation=(
            "Sign in as root → Security credentials → Access keys → deactivate and delete each key; use "
            "IAM roles for programmatic access."
        ),
        rule=root_access_keys_present,
        compliance=("CIS AWS Foundations v3.0 1.4", "AWS FSBP v1.0.0 IAM.4"),
    ),
    declare(
        policy_id="IAMRootAccessKeyNotRotated",
        resource_type=ROOT_ACCOUNT,
        title=f"Root access key not rotated in {KEY_ROTATION_DAYS} days",
        description=(
            f"An active access key of the root user is older than {KEY_ROTATION_DAYS} days: CIS 1.14 "
            "applies to every key of the credential report, the root's included (CIS 1.4 asks for no "
            "root keys at all: IAMRootAccessKeysPresent)."
        ),
        severity=60,
        remediation="Sign in as root → Security credentials → Access keys → delete the key (use IAM roles).",
        rule=root_keys_not_rotated,
        ages=True,
        compliance=("CIS AWS Foundations v3.0 1.14",),
    ),
    declare(
        policy_id="IAMRootMfaDisabled",
        resource_type=ROOT_ACCOUNT,
        title="Root user has no MFA",
        description="The root user can sign in with a password alone.",
        severity=95,
        remediation="Sign in as root → Security credentials → Multi-factor authentication → Assign MFA.",
        rule=root_mfa_disabled,
        compliance=("CIS AWS Foundations v3.0 1.5",),
    ),
    declare(
        policy_id="IAMRootAccountActive",
        resource_type=ROOT_ACCOUNT,
        title="Root user was used recently",
        description=f"The root user's password or an access key was used within {ROOT_ACTIVITY_DAYS} days.",
        severity=80,
        remediation=(
            "Find what used root in CloudTrail (userIdentity.type = Root), move that work to IAM roles, "
            "and keep root for the few tasks that require it."
        ),
        rule=root_account_active,
        ages=True,
        compliance=("CIS AWS Foundations v3.0 1.7",),
    ),
    declare(
        policy_id="IAMSupportRoleMissing",
        resource_type=ROOT_ACCOUNT,
        title="No role is allowed to manage AWS Support cases",
        description="No IAM role has the AWS managed policy AWSSupportAccess attached.",
        severity=20,
        remediation=(
            "Create a role for the support team and run aws iam attach-role-policy --role-name ROLE "
            "--policy-arn arn:aws:iam::aws:policy/AWSSupportAccess."
        ),
        rule=support_role_missing,
        compliance=("CIS AWS Foundations v3.0 1.17",),
    ),
    declare(
        policy_id="IAMUserMfaDisabled",
        resource_type=USER,
        title="IAM user with console access has no MFA",
        description="The user has a console password and no MFA device.",
        severity=75,
        remediation=(
            "IAM console → Users → USER → Security credentials → Assign MFA device (or enforce MFA with a "
            "policy denying actions when aws:MultiFactorAuthPresent is false)."
        ),
        rule=user_mfa_disabled,
        compliance=("CIS AWS Foundations v3.0 1.10", "AWS FSBP v1.0.0 IAM.5"),
    ),
    declare(
        policy_id="IAMUserCredentialsUnused",
        resource_type=USER,
        title=f"IAM user credentials unused for {UNUSED_CREDENTIAL_DAYS} days or more",
        description=(
            f"The user's console password or an active access key has not been used for "
            f"{UNUSED_CREDENTIAL_DAYS} days or more (never used: since it was set or created)."
        ),
        severity=45,
        remediation=(
            f"Remove the password (aws iam delete-login-profile --user-name USER) and deactivate unused keys "
            f"({DELETE_KEY})."
        ),
        rule=credentials_unused,
        ages=True,
        compliance=("CIS AWS Foundations v3.0 1.12",),
    ),
    declare(
        policy_id="IAMAccessKeyNotRotated",
        resource_type=USER,
        title=f"IAM access key not rotated in {KEY_ROTATION_DAYS} days",
        description=f"An active access key of the user is older than {KEY_ROTATION_DAYS} days.",
        severity=50,
        remediation=(
            "Create a new key (aws iam create-access-key --user-name USER), switch clients to it, then "
            f"retire the old one ({DELETE_KEY})."
        ),
        rule=keys_where(not_rotated, MaxAgeDays=KEY_ROTATION_DAYS),
        ages=True,
        compliance=("CIS AWS Foundations v3.0 1.14", "AWS FSBP v1.0.0 IAM.3"),
    ),
    declare(
        policy_id="IAMAccessKeyUnused",
        resource_type=USER,
        title="IAM access key was never used",
        description=(
            f"An active access key of the user has never been used, {NEVER_USED_KEY_GRACE_DAYS} days or "
            "more after it was created: a credential nobody needs that can still be leaked. Not CIS: an "
            "earlier signal than CIS 1.12's 45 days (IAMUserCredentialsUnused), which also covers keys "
            "idle after use."
        ),
        severity=40,
        remediation=f"Delete the key ({DELETE_KEY} --user-name USER --access-key-id KEY).",
        rule=keys_where(never_used, GraceDays=NEVER_USED_KEY_GRACE_DAYS),
        ages=True,
    ),
    declare(
        policy_id="IAMUserMultipleActiveAccessKeys",
        resource_type=USER,
        title="IAM user has more than one active access key",
        description="The user has two active access keys.",
        severity=40,
        remediation=f"Keep the key in use and retire the other ({DELETE_KEY}).",
        rule=multiple_active_keys,
        compliance=("CIS AWS Foundations v3.0 1.13",),
    ),
    declare(
        policy_id="IAMUserDirectPolicyAttached",
        resource_type=USER,
        title="IAM user has policies attached directly",
        description="Managed or inline policies are attached to the user rather than granted through groups.",
        severity=30,
        remediation=(
            "Put the user in a group carrying the permissions, then aws iam detach-user-policy and "
            "aws iam delete-user-policy for each direct policy."
        ),
        rule=direct_policies,
        compliance=("CIS AWS Foundations v3.0 1.15", "AWS FSBP v1.0.0 IAM.2"),
    ),
    declare(
        policy_id="IAMPolicyOverlyPermissive",
        resource_type=MANAGED_POLICY,
        title="Attached managed policy grants full administrator rights",
        description=(
            f"A managed policy (customer or AWS managed, e.g. AdministratorAccess) attached to a user, "
            f"group or role: its default version {ADMIN_DESCRIPTION}."
        ),
        severity=80,
        remediation=(
            f"{ADMIN_REMEDIATION} aws iam create-policy-version --policy-arn ARN --policy-document "
            "file://scoped.json --set-as-default."
        ),
        rule=managed_policy_admin,
        compliance=("CIS AWS Foundations v3.0 1.16",),
    ),
    # One id per resource type: the registry keys a policy by id and gives it one type.
    inline_admin_policy("IAMInlinePolicyOverlyPermissive", ROLE, "role"),
    inline_admin_policy("IAMUserInlinePolicyOverlyPermissive", USER, "user"),
    inline_admin_policy("IAMGroupInlinePolicyOverlyPermissive", GROUP, "group"),
    declare(
        policy_id="IAMPasswordPolicyShortMinimumLength",
        resource_type=PASSWORD_POLICY,
        title="Account password policy allows passwords shorter than 14 characters",
        description="There is no account password policy, or its MinimumPasswordLength is below 14.",
        severity=40,
        remediation="aws iam update-account-password-policy --minimum-password-length 14",
        rule=password_requirements({"MinimumPasswordLength": 14}),
        compliance=("CIS AWS Foundations v3.0 1.8",),
        needs=PASSWORD_NEED,
    ),
    declare(
        policy_id="IAMPasswordPolicyReuseAllowed",
        resource_type=PASSWORD_POLICY,
        title="Account password policy does not prevent reusing the last 24 passwords",
        description="There is no account password policy, or its PasswordReusePrevention is below 24.",
        severity=40,
        remediation="aws iam update-account-password-policy --password-reuse-prevention 24",
        rule=password_requirements({"PasswordReusePrevention": 24}),
        compliance=("CIS AWS Foundations v3.0 1.9",),
        needs=PASSWORD_NEED,
    ),
    declare(
        policy_id="IAMPasswordPolicyWeak",
        resource_type=PASSWORD_POLICY,
        title="Account password policy does not require complex passwords",
        description=(
            "There is no account password policy, or it allows passwords without symbols, numbers, "
            "upper- and lower-case letters. Not CIS v3.0 (its 1.8 and 1.9 ask for length and reuse "
            "prevention only: IAMPasswordPolicyShortMinimumLength, IAMPasswordPolicyReuseAllowed)."
        ),
        severity=30,
        remediation=(
            "aws iam update-account-password-policy --require-symbols --require-numbers "
            "--require-uppercase-characters --require-lowercase-characters (with the length and reuse "
            "settings you keep)"
        ),
        rule=password_requirements(PASSWORD_COMPLEXITY),
        needs=PASSWORD_NEED,
    ),
    declare(
        policy_id="IAMRoleTrustAllowsAnyPrincipal",
        resource_type=ROLE,
        title="IAM role can be assumed by anyone",
        description=(
            'The role\'s trust policy allows any AWS principal ("*") without a condition restricting the '
            "caller (organisation, account, ARN, source network), or a web identity (OIDC) provider "
            "without a condition on which identities (its sub; Cognito: the pool's aud): anyone with a "
            "token from that provider — e.g. any GitHub Actions workflow — can assume it."
        ),
        severity=95,
        remediation=(
            "Name the trusted accounts or roles in the Principal, or add a aws:PrincipalOrgID condition: "
            "aws iam update-assume-role-policy --role-name ROLE --policy-document file://trust.json."
        ),
        rule=trust_any_principal,
    ),
    declare(
        policy_id="IAMRoleCrossAccountTrustWithoutExternalId",
        resource_type=ROLE,
        title="Cross-account role trust without an external ID",
        description=(
            "The role trusts principals of another AWS account without an sts:ExternalId condition, "
            "leaving third-party access open to the confused-deputy problem."
        ),
        severity=60,
        remediation=(
            'Add "Condition": {"StringEquals": {"sts:ExternalId": "<id agreed with the third '
            'party>"}} to the trust statement (aws iam update-assume-role-policy).'
        ),
        rule=cross_account_without_external_id,
        reads_known_accounts=True,
    ),
)
