import json
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from moto.iam.models import AWSManagedPolicy, IAMBackend, aws_managed_policies_data, iam_backends

from qrie_lib.services import iam
from qrie_lib.services.base import Touch
from tests.conftest import CUSTOMER, collect_all, make_ctx

ACCOUNT_ARN = f"arn:aws:iam::{CUSTOMER}"
S3_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
EC2_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]}
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
CUSTOM_ARN = f"{ACCOUNT_ARN}:policy/custom"
GROUP_MANAGED_ARN = f"{ACCOUNT_ARN}:policy/group-managed"
REVIEWED = ("MfaActive", "PasswordEnabled", "AttachedManagedPolicies", "InlinePolicies")


def global_ctx(aws, page_size: int = 50):
    return make_ctx(aws, region="global", page_size=page_size)


def by_name(resources, key: str) -> dict:
    return {r.configuration[key]: r for r in resources}


@pytest.fixture
def seeded(customer):
    """alice: console password, MFA, two keys (one inactive), policies, a group; bob: nothing."""
    client = customer.client("iam")
    client.create_policy(PolicyName="custom", PolicyDocument=json.dumps(S3_ALL))
    client.create_policy_version(PolicyArn=CUSTOM_ARN, PolicyDocument=json.dumps(EC2_ALL), SetAsDefault=True)
    client.create_group(GroupName="admins")
    client.put_group_policy(GroupName="admins", PolicyName="group-inline", PolicyDocument=json.dumps(S3_ALL))
    client.create_policy(PolicyName="group-managed", PolicyDocument=json.dumps(S3_ALL))
    client.attach_group_policy(GroupName="admins", PolicyArn=GROUP_MANAGED_ARN)

    client.create_user(UserName="alice", Tags=[{"Key": "team", "Value": "sec"}])
    client.create_login_profile(UserName="alice", Password="Sup3r-Secret-Pass!")
    serial = client.create_virtual_mfa_device(VirtualMFADeviceName="alice")["VirtualMFADevice"][
        "SerialNumber"
    ]
    client.enable_mfa_device(
        UserName="alice", SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321"
    )
    client.create_access_key(UserName="alice")
    second = client.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
    client.update_access_key(UserName="alice", AccessKeyId=second, Status="Inactive")
    client.put_user_policy(UserName="alice", PolicyName="user-inline", PolicyDocument=json.dumps(S3_ALL))
    client.attach_user_policy(UserName="alice", PolicyArn=CUSTOM_ARN)
    client.add_user_to_group(GroupName="admins", UserName="alice")
    client.create_user(UserName="bob")

    client.create_role(
        RoleName="app", AssumeRolePolicyDocument=json.dumps(TRUST), Tags=[{"Key": "env", "Value": "prod"}]
    )
    client.put_role_policy(RoleName="app", PolicyName="role-inline", PolicyDocument=json.dumps(EC2_ALL))
    client.attach_role_policy(RoleName="app", PolicyArn=CUSTOM_ARN)
    return client


def listed(aws, kind: str, page_size: int = 50) -> list:
    return collect_all(global_ctx(aws, page_size), iam.SERVICE.kind(kind))[0]


# ---- users ----------------------------------------------------------------------------------


def test_users_merge_authorization_details_with_the_credential_report(aws, seeded):
    users = by_name(listed(aws, iam.USER), "UserName")
    alice, bob = users["alice"], users["bob"]
    assert alice.arn == f"{ACCOUNT_ARN}:user/alice"
    assert (alice.region, alice.account_id, alice.tags) == ("global", CUSTOMER, {"team": "sec"})
    config = alice.configuration
    assert config["PasswordEnabled"] is True
    assert config["MfaActive"] is True
    assert config["Groups"] == ["admins"]
    assert config["AttachedManagedPolicies"] == [{"PolicyName": "custom", "PolicyArn": CUSTOM_ARN}]
    assert config["InlinePolicies"] == [{"PolicyName": "user-inline", "PolicyDocument": S3_ALL}]
    assert [(k["Slot"], k["Active"]) for k in config["AccessKeys"]] == [(1, True), (2, False)]
    assert all(k["LastRotated"].endswith("Z") and k["LastUsedDate"] is None for k in config["AccessKeys"])
    assert config["PasswordLastUsed"] is None  # moto: "no_information"
    assert config["CreateDate"].endswith("Z")
    assert "Secret" not in json.dumps(config, default=str)

    assert bob.configuration["PasswordEnabled"] is False
    assert bob.configuration["MfaActive"] is False
    assert bob.configuration["AccessKeys"] == []
    assert bob.configuration["PasswordLastChanged"] is None  # moto's report says the creation date


def test_users_are_paged_by_page_size_and_the_cursor_resumes(aws, customer):
    client = customer.client("iam")
    for n in range(5):
        client.create_user(UserName=f"user-{n}")
    found, pages = collect_all(global_ctx(aws, page_size=2), iam.SERVICE.kind(iam.USER))
    assert pages == 3
    assert sorted(r.configuration["UserName"] for r in found) == [f"user-{n}" for n in range(5)]

    kind = iam.SERVICE.kind(iam.USER)
    first = kind.list_page(global_ctx(aws, page_size=2), None)
    resumed = kind.list_page(global_ctx(aws, page_size=2), first.next_token)
    assert [r.configuration["UserName"] for r in first.resources] == ["user-0", "user-1"]
    assert [r.configuration["UserName"] for r in resumed.resources] == ["user-2", "user-3"]


def test_listing_calls_do_not_grow_with_the_number_of_users(aws, customer):
    client = customer.client("iam")
    client.generate_credential_report()  # moto answers COMPLETE from then on, as AWS does for 4 hours

    def calls_to_list(users: int) -> dict[str, int]:
        for n in range(users):
            client.create_user(UserName=f"u{users}-{n}")
            client.create_login_profile(UserName=f"u{users}-{n}", Password="Sup3r-Secret-Pass!")
            client.create_access_key(UserName=f"u{users}-{n}")
        aws.calls.clear()
        found = listed(aws, iam.USER)
        assert all(r.configuration["PasswordEnabled"] for r in found)
        return {op: n for op, n in aws.calls.items() if op.startswith("iam.")}

    two = calls_to_list(2)
    eight = calls_to_list(6)  # 8 users in all
    assert (
        two
        == eight
        == {
            "iam.GetAccountAuthorizationDetails": 1,
            "iam.GenerateCredentialReport": 1,
            "iam.GetCredentialReport": 1,
        }
    )


def test_the_credential_report_is_fetched_once_per_task_call(aws, seeded):
    ctx = global_ctx(aws, page_size=1)
    aws.calls.clear()
    collect_all(ctx, iam.SERVICE.kind(iam.USER))
    collect_all(ctx, iam.SERVICE.kind(iam.ROOT_ACCOUNT))
    assert aws.calls["iam.GetCredentialReport"] == 1


def test_a_user_newer_than_the_report_is_described_on_its_own(aws, seeded):
    ctx = global_ctx(aws)
    collect_all(ctx, iam.SERVICE.kind(iam.USER))  # caches the report
    seeded.create_user(UserName="carol")
    seeded.create_login_profile(UserName="carol", Password="Sup3r-Secret-Pass!")
    aws.calls.clear()
    users = by_name(collect_all(ctx, iam.SERVICE.kind(iam.USER))[0], "UserName")
    assert (aws.calls["iam.GetUser"], aws.calls["iam.GetCredentialReport"]) == (1, 0)
    assert users["carol"].configuration["PasswordEnabled"] is True
    assert users["carol"].configuration["MfaActive"] is False


# ---- roles, groups, managed policies -------------------------------------------------------


def test_roles_carry_trust_and_permission_policies(aws, seeded):
    (role,) = listed(aws, iam.ROLE)
    assert role.arn == f"{ACCOUNT_ARN}:role/app"
    assert role.tags == {"env": "prod"}
    config = role.configuration
    assert config["RoleName"] == "app"
    assert config["AssumeRolePolicyDocument"] == TRUST
    assert config["InlinePolicies"] == [{"PolicyName": "role-inline", "PolicyDocument": EC2_ALL}]
    assert config["AttachedManagedPolicies"] == [{"PolicyName": "custom", "PolicyArn": CUSTOM_ARN}]
    assert config["RoleLastUsed"] is None


def test_groups_carry_their_policies(aws, seeded):
    (group,) = listed(aws, iam.GROUP)
    assert group.arn == f"{ACCOUNT_ARN}:group/admins"
    assert group.configuration["InlinePolicies"] == [{"PolicyName": "group-inline", "PolicyDocument": S3_ALL}]
    assert group.configuration["AttachedManagedPolicies"] == [
        {"PolicyName": "group-managed", "PolicyArn": GROUP_MANAGED_ARN}
    ]


def test_customer_managed_policies_carry_the_default_version_document(aws, seeded):
    policies = by_name(listed(aws, iam.MANAGED_POLICY), "PolicyName")
    assert sorted(policies) == ["custom", "group-managed"]
    policy = policies["custom"]
    assert policy.arn == CUSTOM_ARN
    config = policy.configuration
    assert (config["PolicyName"], config["DefaultVersionId"], config["IsAttachable"]) == (
        "custom",
        "v2",
        True,
    )
    assert config["AttachmentCount"] == 2
    assert config["Document"] == EC2_ALL


def test_attached_aws_managed_policies_are_inventoried_and_detached_ones_are_not(aws, customer):
    client = customer.client("iam")
    client.list_users()  # the account's IAM exists from its first call
    # moto loads AWS managed policies only when configured (the runtime does): add the one used here
    data = json.loads(aws_managed_policies_data)["AdministratorAccess"]
    policy = AWSManagedPolicy.from_data("AdministratorAccess", CUSTOMER, "us-east-1", data)
    iam_backends[CUSTOMER]["aws"].managed_policies[policy.arn] = policy
    client.create_policy(PolicyName="custom", PolicyDocument=json.dumps(S3_ALL))
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    client.create_user(UserName="bob")
    client.attach_user_policy(UserName="bob", PolicyArn=admin)
    policies = {p.arn: p for p in listed(aws, iam.MANAGED_POLICY)}
    assert set(policies) == {CUSTOM_ARN, admin}  # not the unattached AWS managed ones
    assert policies[admin].configuration["AttachmentCount"] == 1
    assert policies[admin].configuration["Document"]["Statement"][0]["Action"] == "*"
    describe = iam.SERVICE.kind(iam.MANAGED_POLICY).describe
    assert describe(global_ctx(aws), admin).arn == admin
    client.detach_user_policy(UserName="bob", PolicyArn=admin)
    assert describe(global_ctx(aws), admin) is None
    assert describe(global_ctx(aws), READ_ONLY) is None


def test_gaad_markers_are_the_cursor_when_the_service_honours_max_items(aws, monkeypatch):
    def role(name: str) -> dict:  # URL-encoded, as IAM's wire format has it
        return {
            "RoleName": name,
            "Arn": f"{ACCOUNT_ARN}:role/{name}",
            "AssumeRolePolicyDocument": quote(json.dumps(TRUST)),
        }

    answers = {
        None: {"RoleDetailList": [role("a"), role("b")], "IsTruncated": True, "Marker": "m1"},
        "m1": {"RoleDetailList": [role("c")], "IsTruncated": False},
    }
    requests = []

    class Iam:
        def get_account_authorization_details(self, **params):
            requests.append(params)
            return answers[params.get("Marker")]

    ctx = global_ctx(aws, page_size=2)
    monkeypatch.setattr(ctx, "client", lambda *_: Iam())
    found, pages = collect_all(ctx, iam.SERVICE.kind(iam.ROLE))
    assert pages == 2
    assert [r.configuration["RoleName"] for r in found] == ["a", "b", "c"]
    assert found[0].configuration["AssumeRolePolicyDocument"] == TRUST
    assert requests == [
        {"Filter": ["Role"], "MaxItems": 2},
        {"Filter": ["Role"], "MaxItems": 2, "Marker": "m1"},
    ]


def test_policy_documents_are_decoded_in_any_encoding():
    assert iam.document(S3_ALL) == S3_ALL
    assert iam.document(json.dumps(S3_ALL)) == S3_ALL
    assert iam.document(quote(json.dumps(S3_ALL))) == S3_ALL
    assert iam.document(None) is None


# ---- account-level resources ----------------------------------------------------------------


def test_password_policy_absent_then_present(aws, customer):
    (absent,) = listed(aws, iam.PASSWORD_POLICY)
    assert absent.arn == f"{ACCOUNT_ARN}:password-policy"
    assert absent.configuration == {"PasswordPolicy": None}
    customer.client("iam").update_account_password_policy(MinimumPasswordLength=14, RequireSymbols=True)
    (present,) = listed(aws, iam.PASSWORD_POLICY)
    assert present.configuration["PasswordPolicy"]["MinimumPasswordLength"] == 14
    assert present.configuration["PasswordPolicy"]["RequireSymbols"] is True


def test_root_account_from_the_account_summary(aws, seeded):
    (root,) = listed(aws, iam.ROOT_ACCOUNT)
    assert root.arn == f"{ACCOUNT_ARN}:root-account"
    assert (root.region, root.account_id) == ("global", CUSTOMER)
    config = root.configuration
    assert config["AccountMFAEnabled"] is False
    assert config["AccountAccessKeysPresent"] is False
    assert config["SummaryMap"]["Users"] == 2
    # moto's report has no <root_account> row
    assert (config["PasswordLastUsed"], config["AccessKeys"]) == (None, [])
    assert config["SupportRoles"] == []


def test_root_account_names_the_roles_with_aws_support_access(aws, seeded):
    # Unit tests' moto loads no AWS managed policies: add the one this reads.
    now = datetime.now(UTC).isoformat()
    data = {"Path": "/", "DefaultVersionId": "v1", "Document": S3_ALL, "CreateDate": now, "UpdateDate": now}
    policy = AWSManagedPolicy.from_data("AWSSupportAccess", CUSTOMER, "us-east-1", data)
    iam_backends[CUSTOMER]["aws"].managed_policies[policy.arn] = policy
    seeded.attach_role_policy(RoleName="app", PolicyArn=iam.SUPPORT_POLICY)
    (root,) = listed(aws, iam.ROOT_ACCOUNT)
    assert root.configuration["SupportRoles"] == ["app"]


REPORT = """\
user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,\
mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,\
access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,\
access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,\
cert_1_last_rotated,cert_2_active,cert_2_last_rotated
<root_account>,arn:aws:iam::111111111111:root,2020-01-01T00:00:00+00:00,not_supported,2024-05-01T08:30:00+00:00,\
not_supported,not_supported,true,true,2021-02-03T04:05:06+00:00,2024-04-30T10:00:00+00:00,us-east-1,s3,\
false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
dave,arn:aws:iam::111111111111:user/dave,2020-01-01T00:00:00+00:00,true,no_information,\
2023-01-01T00:00:00+00:00,N/A,false,false,N/A,N/A,N/A,N/A,true,2022-06-01T12:00:00+00:00,N/A,N/A,N/A,false,N/A,\
false,N/A
"""


def test_credential_report_rows_as_aws_writes_them(aws, customer, monkeypatch):
    monkeypatch.setattr(IAMBackend, "get_credential_report", lambda self: REPORT)
    ctx = global_ctx(aws)
    root = iam.describe_root(ctx)
    assert root.configuration["PasswordLastUsed"] == "2024-05-01T08:30:00.000Z"
    assert root.configuration["AccessKeys"] == [
        {
            "Slot": 1,
            "Active": True,
            "LastRotated": "2021-02-03T04:05:06.000Z",
            "LastUsedDate": "2024-04-30T10:00:00.000Z",
            "LastUsedService": "s3",
        }
    ]
    dave = iam.report_credentials(iam.credential_report(ctx)["dave"])
    assert dave == {
        "PasswordEnabled": True,
        "PasswordLastUsed": None,
        "PasswordLastChanged": "2023-01-01T00:00:00.000Z",
        "MfaActive": False,
        "AccessKeys": [
            {"Slot": 2, "Active": True, "LastRotated": "2022-06-01T12:00:00.000Z", "LastUsedDate": None,
             "LastUsedService": None}
        ],
    }  # fmt: skip


# ---- describe by id -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "key", "resource_id"),
    [
        (iam.USER, "UserName", "alice"),
        (iam.USER, "UserName", "bob"),
        (iam.ROLE, "RoleName", "app"),
        (iam.GROUP, "GroupName", "admins"),
        (iam.MANAGED_POLICY, "Arn", CUSTOM_ARN),
    ],
)
def test_describe_matches_the_listing(aws, seeded, kind, key, resource_id):
    listing = by_name(listed(aws, kind), key)[resource_id]
    described = iam.SERVICE.kind(kind).describe(global_ctx(aws), resource_id)
    assert (described.arn, described.tags) == (listing.arn, listing.tags)
    for field in REVIEWED:
        if field in listing.configuration:
            assert described.configuration[field] == listing.configuration[field], field
    # The rest agrees too, but moto's GAAD gives policies no PolicyId and an empty Description.
    quirks = {"PolicyId", "Description"} if kind == iam.MANAGED_POLICY else set()
    assert {k: v for k, v in described.configuration.items() if k not in quirks} == {
        k: v for k, v in listing.configuration.items() if k not in quirks
    }


@pytest.mark.parametrize("kind", [iam.PASSWORD_POLICY, iam.ROOT_ACCOUNT])
def test_describe_of_account_level_kinds_matches_the_listing(aws, seeded, kind):
    (listing,) = listed(aws, kind)
    described = iam.SERVICE.kind(kind).describe(global_ctx(aws), CUSTOMER)
    assert (described.arn, described.configuration) == (listing.arn, listing.configuration)
    assert iam.SERVICE.kind(kind).arn(global_ctx(aws), CUSTOMER) == listing.arn


def test_describe_of_deleted_entities_is_none(aws, seeded):
    seeded.delete_user(UserName="bob")
    ctx = global_ctx(aws)
    assert iam.describe_user(ctx, "bob") is None
    assert iam.describe_role(ctx, "gone") is None
    assert iam.describe_group(ctx, "gone") is None
    assert iam.describe_policy(ctx, f"{ACCOUNT_ARN}:policy/gone") is None
    assert iam.SERVICE.kind(iam.USER).arn(ctx, "bob") == f"{ACCOUNT_ARN}:user/bob"


# ---- CloudTrail -----------------------------------------------------------------------------

ADMIN = {
    "type": "AssumedRole",
    "principalId": "AROAEXAMPLEADMIN:ops",
    "arn": f"arn:aws:sts::{CUSTOMER}:assumed-role/Admin/ops",
    "accountId": CUSTOMER,
    "accessKeyId": "ASIAEXAMPLEADMIN",
    "sessionContext": {
        "sessionIssuer": {"type": "Role", "arn": f"{ACCOUNT_ARN}:role/Admin", "userName": "Admin"},
        "attributes": {"creationDate": "2025-01-15T09:58:00Z", "mfaAuthenticated": "true"},
    },
}
DEV = {
    "type": "IAMUser",
    "principalId": "AIDAEXAMPLEDEV",
    "arn": f"{ACCOUNT_ARN}:user/dev",
    "accountId": CUSTOMER,
    "accessKeyId": "AKIAEXAMPLEDEV",
    "userName": "dev",
}
ROOT = {"type": "Root", "principalId": CUSTOMER, "arn": f"{ACCOUNT_ARN}:root", "accountId": CUSTOMER}
DOC = json.dumps(S3_ALL)
KEY = "AKIAEXAMPLEKEY000001"


def cloudtrail(name: str, params: dict | None, identity: dict = ADMIN, response: dict | None = None) -> dict:
    return {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": "2025-01-15T10:00:00Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.15.0 Python/3.11.6",
        "requestParameters": params,
        "responseElements": response,
        "requestID": "0b3d7e8c-1f2a-4c5b-9d6e-7f8a9b0c1d2e",
        "eventID": "5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": CUSTOMER,
    }


ALICE, DEV_USER, ROOT_ACCOUNT = (
    Touch(iam.USER, "alice"),
    Touch(iam.USER, "dev"),
    Touch(iam.ROOT_ACCOUNT, CUSTOMER),
)
APP, ADMINS, CUSTOM = (
    Touch(iam.ROLE, "app"),
    Touch(iam.GROUP, "admins"),
    Touch(iam.MANAGED_POLICY, CUSTOM_ARN),
)
PASSWORD_POLICY = Touch(iam.PASSWORD_POLICY, CUSTOMER)
U, R, G = {"userName": "alice"}, {"roleName": "app"}, {"groupName": "admins"}
MFA = {"serialNumber": f"{ACCOUNT_ARN}:mfa/alice"}
NEW_KEY = {
    "accessKey": {"userName": "alice", "accessKeyId": KEY, "status": "Active", "createDate": "Jan 15, 2025"}
}
NEW_POLICY = {"policy": {"policyName": "custom", "policyId": "ANPAEXAMPLE", "arn": CUSTOM_ARN, "path": "/"}}


def ev(name: str, params: dict | None, expected: list, caller: dict = ADMIN, response: dict | None = None):
    return pytest.param(cloudtrail(name, params, caller, response), expected, id=f"{name}-{caller['type']}")


EVENTS = [
    ev("CreateUser", {**U, "tags": [{"key": "team", "value": "sec"}]}, [ALICE]),
    ev("DeleteUser", U, [ALICE]),
    ev("CreateLoginProfile", {**U, "passwordResetRequired": True}, [ALICE]),
    ev("DeleteLoginProfile", U, [ALICE]),
    ev("UpdateLoginProfile", {**U, "passwordResetRequired": False}, [ALICE]),
    ev("EnableMFADevice", {**U, **MFA}, [ALICE]),
    ev("EnableMFADevice", {"serialNumber": f"{ACCOUNT_ARN}:mfa/root"}, [ROOT_ACCOUNT], ROOT),
    ev("DeactivateMFADevice", {**U, **MFA}, [ALICE]),
    ev("CreateAccessKey", U, [ALICE], response=NEW_KEY),
    ev("CreateAccessKey", None, [DEV_USER], DEV, response=NEW_KEY),  # no userName: the caller's own key
    ev("CreateAccessKey", None, [ROOT_ACCOUNT], ROOT, response=NEW_KEY),
    ev("UpdateAccessKey", {"accessKeyId": KEY, "status": "Inactive"}, [DEV_USER], DEV),
    ev("UpdateAccessKey", {"accessKeyId": KEY, "status": "Inactive"}, []),  # a role has no keys of its own
    ev("DeleteAccessKey", {**U, "accessKeyId": KEY}, [ALICE]),
    ev("DeleteAccessKey", {"accessKeyId": KEY}, [DEV_USER], DEV),
    # AWS managed: inventoried while attached (CIS 1.16), so attaching refreshes it too
    ev("AttachUserPolicy", {**U, "policyArn": READ_ONLY}, [ALICE, Touch(iam.MANAGED_POLICY, READ_ONLY)]),
    ev("AttachUserPolicy", {**U, "policyArn": CUSTOM_ARN}, [ALICE, CUSTOM]),
    ev("DetachUserPolicy", {**U, "policyArn": CUSTOM_ARN}, [ALICE, CUSTOM]),
    ev("PutUserPolicy", {**U, "policyName": "inline", "policyDocument": DOC}, [ALICE]),
    ev("DeleteUserPolicy", {**U, "policyName": "inline"}, [ALICE]),
    ev("AddUserToGroup", {**G, **U}, [ALICE]),
    ev("RemoveUserFromGroup", {**G, **U}, [ALICE]),
    ev("TagUser", {**U, "tags": [{"key": "team", "value": "sec"}]}, [ALICE]),
    ev("UntagUser", {**U, "tagKeys": ["team"]}, [ALICE]),
    ev("PutUserPermissionsBoundary", {**U, "permissionsBoundary": CUSTOM_ARN}, [ALICE]),
    ev("DeleteUserPermissionsBoundary", U, [ALICE]),
    ev("UpdateUser", {**U, "newUserName": "alicia"}, [ALICE, Touch(iam.USER, "alicia")]),
    ev("CreateRole", {**R, "assumeRolePolicyDocument": json.dumps(TRUST)}, [APP]),
    ev("DeleteRole", R, [APP]),
    ev(  # the role AWS named is in the response only
        "CreateServiceLinkedRole",
        {"aWSServiceName": "elasticloadbalancing.amazonaws.com"},
        [Touch(iam.ROLE, "AWSServiceRoleForElasticLoadBalancing")],
        response={"role": {"roleName": "AWSServiceRoleForElasticLoadBalancing"}},
    ),
    ev("UpdateAssumeRolePolicy", {**R, "policyDocument": json.dumps(TRUST)}, [APP]),
    ev("AttachRolePolicy", {**R, "policyArn": CUSTOM_ARN}, [APP, CUSTOM]),
    ev("DetachRolePolicy", {**R, "policyArn": READ_ONLY}, [APP, Touch(iam.MANAGED_POLICY, READ_ONLY)]),
    ev(  # SupportRoles
        "AttachRolePolicy",
        {**R, "policyArn": iam.SUPPORT_POLICY},
        [APP, Touch(iam.MANAGED_POLICY, iam.SUPPORT_POLICY), ROOT_ACCOUNT],
    ),
    ev("PutRolePolicy", {**R, "policyName": "inline", "policyDocument": DOC}, [APP]),
    ev("DeleteRolePolicy", {**R, "policyName": "inline"}, [APP]),
    ev("TagRole", {**R, "tags": [{"key": "env", "value": "prod"}]}, [APP]),
    ev("UntagRole", {**R, "tagKeys": ["env"]}, [APP]),
    ev("PutRolePermissionsBoundary", {**R, "permissionsBoundary": CUSTOM_ARN}, [APP]),
    ev("DeleteRolePermissionsBoundary", R, [APP]),
    ev("CreateGroup", G, [ADMINS]),
    ev("DeleteGroup", G, [ADMINS]),
    ev("UpdateGroup", {**G, "newGroupName": "ops"}, [ADMINS, Touch(iam.GROUP, "ops")]),
    ev("AttachGroupPolicy", {**G, "policyArn": READ_ONLY}, [ADMINS, Touch(iam.MANAGED_POLICY, READ_ONLY)]),
    ev("DetachGroupPolicy", {**G, "policyArn": CUSTOM_ARN}, [ADMINS, CUSTOM]),
    ev("PutGroupPolicy", {**G, "policyName": "g", "policyDocument": DOC}, [ADMINS]),
    ev("DeleteGroupPolicy", {**G, "policyName": "g"}, [ADMINS]),
    ev("CreatePolicy", {"policyName": "custom", "policyDocument": DOC}, [CUSTOM], response=NEW_POLICY),
    ev("DeletePolicy", {"policyArn": CUSTOM_ARN}, [CUSTOM]),
    ev(
        "CreatePolicyVersion",
        {"policyArn": CUSTOM_ARN, "policyDocument": DOC, "setAsDefault": True},
        [CUSTOM],
    ),
    ev("SetDefaultPolicyVersion", {"policyArn": CUSTOM_ARN, "versionId": "v2"}, [CUSTOM]),
    ev(
        "UpdateAccountPasswordPolicy",
        {"minimumPasswordLength": 14, "requireSymbols": True},
        [PASSWORD_POLICY],
    ),
    ev("DeleteAccountPasswordPolicy", None, [PASSWORD_POLICY]),
    ev("UploadServerCertificate", {"serverCertificateName": "www"}, [Touch(iam.SERVER_CERTIFICATE, "www")]),
    ev("DeleteServerCertificate", {"serverCertificateName": "www"}, [Touch(iam.SERVER_CERTIFICATE, "www")]),
    ev(
        "UpdateServerCertificate",
        {"serverCertificateName": "www", "newServerCertificateName": "web"},
        [Touch(iam.SERVER_CERTIFICATE, "www"), Touch(iam.SERVER_CERTIFICATE, "web")],
    ),
]


@pytest.mark.parametrize(("detail", "expected"), EVENTS)
def test_event_touches(detail, expected):
    rule = next(rule for rule in iam.SERVICE.events if detail["eventName"] in rule.event_names)
    assert list(rule.touches(detail)) == expected


def test_every_declared_event_has_a_sample_and_none_is_declared_twice():
    names = iam.SERVICE.event_names
    assert len(names) == len(set(names))
    assert set(names) == {row.values[0]["eventName"] for row in EVENTS}
    assert iam.SERVICE.event_source == "iam.amazonaws.com"


@pytest.mark.parametrize(
    "detail",
    [
        {},
        {"requestParameters": None},
        {"requestParameters": "x", "userIdentity": 7},
        {"responseElements": []},
    ],
)
def test_touches_never_raise_on_odd_shapes(detail):
    for rule in iam.SERVICE.events:
        assert list(rule.touches(detail)) == []
