from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from qrie_lib.models import Resource
from qrie_lib.policies.base import Verdict
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


def evaluate(policy_id: str, target: Resource) -> Verdict:
    return get_policy(policy_id).evaluate(target, {})


ADMIN = {"Effect": "Allow", "Action": "*", "Resource": "*"}
NOT_ACTION_ADMIN = {"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"}
DENY_ALL = {"Effect": "Deny", "Action": "*", "Resource": "*"}
SCOPED = {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::logs/*"}
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
    ("IAMAccessKeyUnused", user(key(rotated=1)), False),  # never used
    ("IAMAccessKeyUnused", user(key(rotated=300, used=100)), False),
    ("IAMAccessKeyUnused", user(key(rotated=300, used=5)), True),
    ("IAMAccessKeyUnused", user(), True),
    ("IAMUserMultipleActiveAccessKeys", user(key(1), key(2)), False),
    ("IAMUserMultipleActiveAccessKeys", user(key(1), key(2, active=False)), True),
    (
        "IAMUserDirectPolicyAttached",
        user(AttachedManagedPolicies=[{"PolicyArn": "arn:aws:iam::aws:policy/X"}]),
        False,
    ),
    ("IAMUserDirectPolicyAttached", user(InlinePolicies=inline(SCOPED)), False),
    ("IAMUserDirectPolicyAttached", user(Groups=["admins"]), True),
    ("IAMPolicyOverlyPermissive", resource(MANAGED_POLICY, Document=doc(SCOPED, ADMIN)), False),
    ("IAMPolicyOverlyPermissive", resource(MANAGED_POLICY, Document=doc(NOT_ACTION_ADMIN)), False),
    ("IAMPolicyOverlyPermissive", resource(MANAGED_POLICY, Document=doc(DENY_ALL)), True),
    ("IAMPolicyOverlyPermissive", resource(MANAGED_POLICY, Document=doc(SCOPED)), True),
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
    ("IAMRoleTrustAllowsAnyPrincipal", trust({"AWS": "*"}), False),
    ("IAMRoleTrustAllowsAnyPrincipal", trust("*", **EXTERNAL_ID), False),  # an external id is no secret
    ("IAMRoleTrustAllowsAnyPrincipal", trust("*", StringEquals={"aws:PrincipalOrgID": "o-abc123"}), True),
    ("IAMRoleTrustAllowsAnyPrincipal", trust({"Service": "lambda.amazonaws.com"}), True),
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
    weak = {"MinimumPasswordLength": Decimal(8), "RequireSymbols": False, "RequireNumbers": True}
    verdict = evaluate("IAMPasswordPolicyWeak", resource(PASSWORD_POLICY, PasswordPolicy=weak))
    assert verdict.evidence == {
        "Unmet": {
            "MinimumPasswordLength": {"Expected": ">= 14", "Actual": 8},
            "PasswordReusePrevention": {"Expected": ">= 24", "Actual": None},
            "RequireSymbols": {"Expected": True, "Actual": False},
            "RequireUppercaseCharacters": {"Expected": True, "Actual": None},
            "RequireLowercaseCharacters": {"Expected": True, "Actual": None},
        }
    }
    missing = evaluate("IAMPasswordPolicyWeak", resource(PASSWORD_POLICY, PasswordPolicy=None))
    assert missing.evidence["PasswordPolicy"] is None
    assert len(missing.evidence["Unmet"]) == 6


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
