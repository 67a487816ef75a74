from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from qrie_lib.models import Resource
from qrie_lib.policies.base import Related, Verdict
from qrie_lib.policies.registry import get_policy
from qrie_lib.services.iam import GROUP, MANAGED_POLICY, PASSWORD_POLICY, ROLE, ROOT_ACCOUNT, USER
from qrie_lib.timeutil import iso, now_iso

ACCOUNT = "111111111111"
PARTNER = "222222222222"


def ago(days: int) -> str:
    return iso(datetime.now(UTC) - timedelta(days=days))


def resource(resource_type: str, **config: Any) -> Resource:
    return Resource(
        arn=f"arn:aws:iam::{ACCOUNT}:{resource_type.rsplit(':', 1)[-1].lower()}/x",
        account_id=ACCOUNT,
        service="iam",
        region="global",
        resource_type=resource_type,
        configuration=config,
        describe_time=now_iso(),
    )


def key(slot: int = 1, active: bool = True, rotated: int = 10, used: int | None = None) -> dict[str, Any]:
    return {
        "Slot": slot,
        "Active": active,
        "LastRotated": ago(rotated),
        "LastUsedDate": None if used is None else ago(used),
        "LastUsedService": None if used is None else "s3",
    }


def user(
    *keys: dict[str, Any], password: int | None = None, used: int | None = None, **config: Any
) -> Resource:
    """A user with access ``keys`` and, when ``password`` (days since set) is given, a console password."""
    return resource(
        USER,
        UserName="u",
        CreateDate=ago(400),
        PasswordEnabled=password is not None,
        PasswordLastChanged=None if password is None else ago(password),
        PasswordLastUsed=None if used is None else ago(used),
        MfaActive=config.pop("MfaActive", False),
        AccessKeys=list(keys),
        AttachedManagedPolicies=config.pop("AttachedManagedPolicies", []),
        InlinePolicies=config.pop("InlinePolicies", []),
        **config,
    )


def root(**config: Any) -> Resource:
    defaults = {"AccountMFAEnabled": True, "AccountAccessKeysPresent": False, "PasswordLastUsed": None}
    return resource(ROOT_ACCOUNT, **(defaults | {"AccessKeys": [], "SupportRoles": ["support"]} | config))


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def inline(*statements: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"PolicyName": "p", "PolicyDocument": doc(*statements)}]


def trust(principal: Any, **condition: Any) -> Resource:
    statement = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    return resource(
        ROLE, AssumeRolePolicyDocument=doc(statement | ({"Condition": condition} if condition else {}))
    )


def evaluate(policy_id: str, target: Resource, related: Related | None = None) -> Verdict:
    return get_policy(policy_id).evaluate(target, {} if related is None else related)


def managed(*statements: dict[str, Any], attachments: int = 1) -> Resource:
    return resource(MANAGED_POLICY, Document=doc(*statements), AttachmentCount=attachments)


def web_identity(provider: str, **condition: Any) -> Resource:
    statement = {
        "Effect": "Allow",
        "Principal": {"Federated": provider},
        "Action": "sts:AssumeRoleWithWebIdentity",
    }
    return resource(
        ROLE, AssumeRolePolicyDocument=doc(statement | ({"Condition": condition} if condition else {}))
    )


GITHUB = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
GITHUB_AUD = {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}
GITHUB_SUB = {"token.actions.githubusercontent.com:sub": "repo:acme/deploy:ref:refs/heads/main"}
MANAGEMENT = "333333333333"


ADMIN = {"Effect": "Allow", "Action": "*", "Resource": "*"}
NOT_ACTION_ADMIN = {"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"}
DENY_ALL = {"Effect": "Deny", "Action": "*", "Resource": "*"}
SCOPED = {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::logs/*"}
CIS_ONLY = {"MinimumPasswordLength": 14, "PasswordReusePrevention": 24}
STRONG = {
    "MinimumPasswordLength": 14,
    "PasswordReusePrevention": 24,
    "RequireSymbols": True,
    "RequireNumbers": True,
    "RequireUppercaseCharacters": True,
    "RequireLowercaseCharacters": True,
}
EXTERNAL_ID = {"StringEquals": {"sts:ExternalId": "f3c9"}}

CASES = [
    ("IAMRootAccessKeysPresent", root(), True),
    ("IAMRootAccessKeysPresent", root(AccountAccessKeysPresent=True), False),
    ("IAMRootAccessKeysPresent", root(AccessKeys=[key(active=True)]), False),
    ("IAMRootAccessKeysPresent", root(AccessKeys=[key(active=False)]), True),
    # CIS 1.14 rotation covers the root's keys too
    ("IAMRootAccessKeyNotRotated", root(AccessKeys=[key(rotated=100, used=1)]), False),
    ("IAMRootAccessKeyNotRotated", root(AccessKeys=[key(rotated=30, used=1)]), True),
    ("IAMRootAccessKeyNotRotated", root(AccessKeys=[key(active=False, rotated=300)]), True),
    ("IAMRootMfaDisabled", root(AccountMFAEnabled=False), False),
    ("IAMRootMfaDisabled", root(), True),
    ("IAMRootAccountActive", root(PasswordLastUsed=ago(3)), False),
    ("IAMRootAccountActive", root(AccessKeys=[key(used=10)]), False),
    ("IAMRootAccountActive", root(PasswordLastUsed=ago(200), AccessKeys=[key(rotated=900, used=300)]), True),
    ("IAMRootAccountActive", root(), True),
    ("IAMSupportRoleMissing", root(SupportRoles=[]), False),
    ("IAMSupportRoleMissing", root(), True),
    ("IAMUserMfaDisabled", user(password=5), False),
    ("IAMUserMfaDisabled", user(password=5, MfaActive=True), True),
    ("IAMUserMfaDisabled", user(key()), True),
    ("IAMUserCredentialsUnused", user(password=60), False),  # never used: counts from when it was set
    ("IAMUserCredentialsUnused", user(password=300, used=10), True),
    ("IAMUserCredentialsUnused", user(key(rotated=200, used=50)), False),
    ("IAMUserCredentialsUnused", user(key(rotated=10)), True),
    ("IAMUserCredentialsUnused", user(key(active=False, rotated=400)), True),
    ("IAMAccessKeyNotRotated", user(key(rotated=100, used=1)), False),
    ("IAMAccessKeyNotRotated", user(key(rotated=30, used=1)), True),
    ("IAMAccessKeyNotRotated", user(key(active=False, rotated=300)), True),
    # never used, aged from creation: a key created today is not yet unused
    ("IAMAccessKeyUnused", user(key(rotated=0)), True),
    ("IAMAccessKeyUnused", user(key(rotated=6)), True),
    ("IAMAccessKeyUnused", user(key(rotated=7)), False),
    ("IAMAccessKeyUnused", user(key(rotated=300)), False),
    # used once, idle since: CIS 1.12's (IAMUserCredentialsUnused), not this one's
    ("IAMAccessKeyUnused", user(key(rotated=300, used=100)), True),
    ("IAMAccessKeyUnused", user(key(active=False, rotated=300)), True),
    ("IAMAccessKeyUnused", user(), True),
    ("IAMUserCredentialsUnused", user(key(rotated=44)), True),  # never used: 45 days from creation
    ("IAMUserCredentialsUnused", user(key(rotated=45)), False),
    ("IAMUserMultipleActiveAccessKeys", user(key(1), key(2)), False),
    ("IAMUserMultipleActiveAccessKeys", user(key(1), key(2, active=False)), True),
    (
        "IAMUserDirectPolicyAttached",
        user(AttachedManagedPolicies=[{"PolicyArn": "arn:aws:iam::aws:policy/X"}]),
        False,
    ),
    ("IAMUserDirectPolicyAttached", user(InlinePolicies=inline(SCOPED)), False),
    ("IAMUserDirectPolicyAttached", user(Groups=["admins"]), True),
    # CIS 1.16: attached policies with Allow "*" on "*"; NotAction and "iam:*" are not that
    ("IAMPolicyOverlyPermissive", managed(SCOPED, ADMIN), False),
    ("IAMPolicyOverlyPermissive", managed(ADMIN | {"Action": "*:*"}), False),
    ("IAMPolicyOverlyPermissive", managed(ADMIN, attachments=0), True),
    ("IAMPolicyOverlyPermissive", managed(NOT_ACTION_ADMIN), True),
    ("IAMPolicyOverlyPermissive", managed(ADMIN | {"Action": "iam:*"}), True),
    ("IAMPolicyOverlyPermissive", managed(DENY_ALL), True),
    ("IAMPolicyOverlyPermissive", managed(SCOPED), True),
    ("IAMInlinePolicyOverlyPermissive", resource(ROLE, InlinePolicies=inline(NOT_ACTION_ADMIN)), False),
    ("IAMInlinePolicyOverlyPermissive", resource(ROLE, InlinePolicies=inline(DENY_ALL, SCOPED)), True),
    ("IAMUserInlinePolicyOverlyPermissive", user(InlinePolicies=inline(ADMIN)), False),
    ("IAMUserInlinePolicyOverlyPermissive", user(InlinePolicies=inline(SCOPED)), True),
    ("IAMGroupInlinePolicyOverlyPermissive", resource(GROUP, InlinePolicies=inline(ADMIN)), False),
    ("IAMGroupInlinePolicyOverlyPermissive", resource(GROUP, InlinePolicies=[]), True),
    ("IAMPasswordPolicyWeak", resource(PASSWORD_POLICY, PasswordPolicy=None), False),
    (
        "IAMPasswordPolicyWeak",
        resource(PASSWORD_POLICY, PasswordPolicy=STRONG | {"MaxPasswordAge": 90}),
        True,
    ),
    (
        "IAMPasswordPolicyWeak",
        resource(PASSWORD_POLICY, PasswordPolicy=STRONG | {"RequireSymbols": False}),
        False,
    ),
    # CIS 1.8 and 1.9 ask for length and reuse prevention only: complexity is not theirs
    ("IAMPasswordPolicyShortMinimumLength", resource(PASSWORD_POLICY, PasswordPolicy=CIS_ONLY), True),
    ("IAMPasswordPolicyReuseAllowed", resource(PASSWORD_POLICY, PasswordPolicy=CIS_ONLY), True),
    ("IAMPasswordPolicyWeak", resource(PASSWORD_POLICY, PasswordPolicy=CIS_ONLY), False),
    (
        "IAMPasswordPolicyShortMinimumLength",
        resource(PASSWORD_POLICY, PasswordPolicy=CIS_ONLY | {"MinimumPasswordLength": 13}),
        False,
    ),
    (
        "IAMPasswordPolicyReuseAllowed",
        resource(PASSWORD_POLICY, PasswordPolicy=CIS_ONLY | {"PasswordReusePrevention": 5}),
        False,
    ),
    ("IAMPasswordPolicyShortMinimumLength", resource(PASSWORD_POLICY, PasswordPolicy=None), False),
    ("IAMPasswordPolicyReuseAllowed", resource(PASSWORD_POLICY, PasswordPolicy=None), False),
    ("IAMRoleTrustAllowsAnyPrincipal", trust({"AWS": "*"}), False),
    ("IAMRoleTrustAllowsAnyPrincipal", trust("*", **EXTERNAL_ID), False),  # an external id is no secret
    ("IAMRoleTrustAllowsAnyPrincipal", trust("*", StringEquals={"aws:PrincipalOrgID": "o-abc123"}), True),
    ("IAMRoleTrustAllowsAnyPrincipal", trust({"Service": "lambda.amazonaws.com"}), True),
    # web identity: the provider's sub (Cognito: aud) must say which identities
    ("IAMRoleTrustAllowsAnyPrincipal", web_identity(GITHUB, StringEquals=GITHUB_AUD), False),
    ("IAMRoleTrustAllowsAnyPrincipal", web_identity(GITHUB), False),
    (
        "IAMRoleTrustAllowsAnyPrincipal",
        web_identity(GITHUB, StringLike={"token.actions.githubusercontent.com:sub": "*"}),
        False,
    ),
    ("IAMRoleTrustAllowsAnyPrincipal", web_identity(GITHUB, StringEquals=GITHUB_AUD | GITHUB_SUB), True),
    ("IAMRoleTrustAllowsAnyPrincipal", web_identity(GITHUB, StringLike=GITHUB_SUB), True),
    ("IAMRoleTrustAllowsAnyPrincipal", web_identity("cognito-identity.amazonaws.com"), False),
    (
        "IAMRoleTrustAllowsAnyPrincipal",
        web_identity(
            "cognito-identity.amazonaws.com",
            StringEquals={"cognito-identity.amazonaws.com:aud": "us-east-1:pool"},
        ),
        True,
    ),
    ("IAMRoleCrossAccountTrustWithoutExternalId", trust({"AWS": f"arn:aws:iam::{PARTNER}:root"}), False),
    ("IAMRoleCrossAccountTrustWithoutExternalId", trust({"AWS": [ACCOUNT, PARTNER]}), False),
    (
        "IAMRoleCrossAccountTrustWithoutExternalId",
        trust({"AWS": f"arn:aws:iam::{PARTNER}:root"}, **EXTERNAL_ID),
        True,
    ),
    ("IAMRoleCrossAccountTrustWithoutExternalId", trust({"AWS": f"arn:aws:iam::{ACCOUNT}:role/ops"}), True),
    ("IAMRoleCrossAccountTrustWithoutExternalId", trust({"Service": "ec2.amazonaws.com"}), True),
    (
        "IAMRoleCrossAccountTrustWithoutExternalId",
        trust({"Federated": "cognito-identity.amazonaws.com"}),
        True,
    ),
    ("IAMRoleCrossAccountTrustWithoutExternalId", trust("*"), True),  # IAMRoleTrustAllowsAnyPrincipal's
]


@pytest.mark.parametrize(("policy_id", "target", "compliant"), CASES)
def test_verdicts(policy_id: str, target: Resource, compliant: bool) -> None:
    assert evaluate(policy_id, target).compliant is compliant


def test_password_policy_evidence_lists_each_unmet_property() -> None:
    weak = resource(
        PASSWORD_POLICY,
        PasswordPolicy={"MinimumPasswordLength": Decimal(8), "RequireSymbols": False, "RequireNumbers": True},
    )
    assert evaluate("IAMPasswordPolicyWeak", weak).evidence == {
        "Unmet": {
            "RequireSymbols": {"Expected": True, "Actual": False},
            "RequireUppercaseCharacters": {"Expected": True, "Actual": None},
            "RequireLowercaseCharacters": {"Expected": True, "Actual": None},
        }
    }
    assert evaluate("IAMPasswordPolicyShortMinimumLength", weak).evidence == {
        "Unmet": {"MinimumPasswordLength": {"Expected": ">= 14", "Actual": 8}}
    }
    missing = evaluate("IAMPasswordPolicyWeak", resource(PASSWORD_POLICY, PasswordPolicy=None))
    assert missing.evidence["PasswordPolicy"] is None
    assert len(missing.evidence["Unmet"]) == 4


def test_a_password_policy_that_could_not_be_read_is_not_evaluated() -> None:
    denied = [{"call": "GetAccountPasswordPolicy", "code": "AccessDenied"}]
    unread = resource(PASSWORD_POLICY, PasswordPolicy=None, CollectErrors=denied)
    for policy_id in (
        "IAMPasswordPolicyShortMinimumLength",
        "IAMPasswordPolicyReuseAllowed",
        "IAMPasswordPolicyWeak",
    ):
        assert evaluate(policy_id, unread).compliant is None


def test_known_accounts_are_not_third_parties() -> None:
    """OrganizationAccountAccessRole trusting the organisation's management account, once known."""
    org_role = trust({"AWS": f"arn:aws:iam::{MANAGEMENT}:root"})
    policy_id = "IAMRoleCrossAccountTrustWithoutExternalId"
    assert evaluate(policy_id, org_role).compliant is False
    assert evaluate(policy_id, org_role, Related({}, frozenset({MANAGEMENT}))).compliant is True
    both = trust({"AWS": [f"arn:aws:iam::{MANAGEMENT}:root", PARTNER]})
    verdict = evaluate(policy_id, both, Related({}, frozenset({MANAGEMENT})))
    assert verdict.evidence["ExternalAccounts"] == [PARTNER]
    assert get_policy(policy_id).reads_known_accounts


def test_web_identity_evidence_names_the_missing_condition() -> None:
    verdict = evaluate("IAMRoleTrustAllowsAnyPrincipal", web_identity(GITHUB, StringEquals=GITHUB_AUD))
    ((found),) = verdict.evidence["WebIdentityWithoutSubject"]
    assert (found["Provider"], found["MissingCondition"]) == (
        GITHUB,
        "token.actions.githubusercontent.com:sub",
    )


def test_unused_credentials_evidence() -> None:
    verdict = evaluate("IAMUserCredentialsUnused", user(key(rotated=200, used=50), password=60, used=1))
    (idle,) = verdict.evidence["UnusedCredentials"]
    assert (idle["Credential"], idle["DaysUnused"]) == ("access_key_1", 50)


def test_cross_account_evidence_names_the_other_accounts() -> None:
    verdict = evaluate("IAMRoleCrossAccountTrustWithoutExternalId", trust({"AWS": [ACCOUNT, PARTNER]}))
    assert verdict.evidence["ExternalAccounts"] == [PARTNER]


def test_inline_evidence_names_the_policy_and_statement() -> None:
    verdict = evaluate(
        "IAMGroupInlinePolicyOverlyPermissive", resource(GROUP, InlinePolicies=inline(SCOPED, ADMIN))
    )
    assert verdict.evidence == {"InlinePolicies": [{"PolicyName": "p", "Statements": [ADMIN]}]}
