"""Analysis of IAM policy documents (identity policies, trust policies, bucket policies).

Documents are normalised first (``Statement`` and the Action/Resource/Principal members may each be
a single value or a list). Principal and condition analysis for "anyone may do this" is
policyuniverse's: it treats condition keys that pin the caller (aws:SourceIp, aws:SourceVpc(e),
aws:PrincipalOrgID, aws:PrincipalAccount, aws:SourceAccount, aws:SourceArn, aws:PrincipalArn, ...)
as restricting unless their value is itself a wildcard, ignores negated operators (a
``StringNotEquals`` restricts nothing), and treats an Allow with NotPrincipal as public. It is
conservative where keys are combined: one unrestricting key makes the statement public even if
another key restricts it."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from policyuniverse.statement import Statement as PuStatement

from qrie_lib.policies.networks import world_families

Document = dict[str, Any]
Stmt = dict[str, Any]


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def statements(document: Document | None) -> list[Stmt]:
    """The statements of a document as a list of dicts; malformed entries are dropped."""
    if not isinstance(document, dict):
        return []
    return [s for s in as_list(document.get("Statement")) if isinstance(s, dict)]


def allows(statement: Stmt) -> bool:
    return statement.get("Effect") == "Allow"


def covers(pattern: Any, scope: str) -> bool:
    """Whether an IAM pattern (wildcards ``*`` and ``?``) matches everything ``scope`` names, a
    trailing ``*`` in the scope meaning "anything": the pattern must match the scope's text and, for
    such an open scope, end in ``*`` itself ("s3:Get*" does not cover "s3:*", nor does "s3:?")."""
    if not isinstance(pattern, str):
        return False
    return fnmatchcase(scope, pattern) and (not scope.endswith("*") or pattern.endswith("*"))


def action_covers(pattern: Any, service: str | None = None) -> bool:
    """Whether an action pattern grants every action (``service`` None) or every action of one
    service ("*", "s3:*", "s3*" cover S3). Actions are case-insensitive."""
    return isinstance(pattern, str) and covers(pattern.lower(), f"{service}:*" if service else "*:*")


# ---- identity policies ------------------------------------------------------------------


def grants_everything(statement: Stmt) -> bool:
    """CIS 1.16's full administrative privileges: an Allow whose Action is "*" (or "*:*") and whose
    Resource is "*". NotAction/NotResource statements are not this (see ``grants_nearly_everything``),
    nor is a whole service such as "iam:*" — escalation paths are outside CIS 1.16's audit."""
    if not allows(statement):
        return False
    return any(a in ("*", "*:*") for a in as_list(statement.get("Action"))) and "*" in as_list(
        statement.get("Resource")
    )


def grants_nearly_everything(statement: Stmt) -> bool:
    """Full admin, or "admin minus a few": an Allow of NotAction (every action but the listed ones)
    on every resource. Stricter than CIS 1.16."""
    if grants_everything(statement):
        return True
    return allows(statement) and "NotAction" in statement and "*" in as_list(statement.get("Resource"))


def admin_statements(document: Document | None) -> list[Stmt]:
    """The statements that allow "*" on "*" (Deny statements never grant)."""
    return [s for s in statements(document) if grants_everything(s)]


def near_admin_statements(document: Document | None) -> list[Stmt]:
    return [s for s in statements(document) if grants_nearly_everything(s)]


# ---- resource and trust policies ---------------------------------------------------------


def principals(statement: Stmt) -> dict[str, list[str]]:
    """The statement's Principal by kind ("AWS", "Service", "Federated", ...); "*" is {"AWS": ["*"]}."""
    principal = statement.get("Principal")
    if principal is None:
        return {}
    if not isinstance(principal, dict):
        return {"AWS": [str(p) for p in as_list(principal)]}
    return {kind: [str(v) for v in as_list(values)] for kind, values in principal.items()}


def public_statements(document: Document | None) -> list[Stmt]:
    """Allow statements open to any principal with no condition restricting who the caller is. An
    ``aws:SourceIp`` whose ranges jointly cover an address family's whole space restricts nothing."""
    return [s for s in statements(document) if PuStatement(texts(open_ip_ranges(s))).is_internet_accessible()]


def open_ip_ranges(statement: Stmt) -> Stmt:
    """The statement with each ``IpAddress`` test of aws:SourceIp that admits every IPv4 or IPv6
    address written as the one range policyuniverse knows to be open ("0.0.0.0/0")."""
    condition = statement.get("Condition")
    if not isinstance(condition, dict):
        return statement
    rewritten = {
        operator: {
            key: "0.0.0.0/0"
            if key.lower() == "aws:sourceip"
            and operator.startswith("IpAddress")
            and world_families(as_list(values))
            else values
            for key, values in tests.items()
        }
        if isinstance(tests, dict)
        else tests
        for operator, tests in condition.items()
    }
    return statement | {"Condition": rewritten}


def texts(value: Any) -> Any:
    """Scalars as policy text ("true", "123"): policyuniverse expects strings, while a document read
    back from DynamoDB may carry numbers (as Decimal) where its JSON had them."""
    if isinstance(value, dict):
        return {k: texts(v) for k, v in value.items()}
    if isinstance(value, list):
        return [texts(v) for v in value]
    if isinstance(value, bool):
        return str(value).lower()
    return value if value is None or isinstance(value, str) else str(value)


def condition_values(statement: Stmt, key: str) -> list[Any]:
    """The values a statement's Condition requires ``key`` to match (keys are case-insensitive).
    Negated operators (``StringNotEquals``, ``NotIpAddress``...) and ``Null`` (presence only) require
    no value, so they are left out."""
    condition = statement.get("Condition")
    if not isinstance(condition, dict):
        return []
    return [
        value
        for operator, tests in condition.items()
        if isinstance(tests, dict) and "Not" not in operator and operator != "Null"
        for k, values in tests.items()
        if k.lower() == key.lower()
        for value in as_list(values)
    ]


def account_of(principal: str) -> str | None:
    """The account of an AWS principal: a bare account id or the account field of an IAM/STS ARN."""
    if principal.isdigit() and len(principal) == 12:
        return principal
    parts = principal.split(":")
    if len(parts) >= 6 and parts[0] == "arn" and parts[2] in ("iam", "sts"):
        return parts[4] or None
    return None


def denies_insecure_transport(statement: Stmt, bucket_arn: str) -> bool:
    """A Deny of every S3 action to everyone, on the bucket and all its objects, whenever
    aws:SecureTransport is false — and under no other condition (another key would narrow it)."""
    if statement.get("Effect") != "Deny" or principals(statement).get("AWS") != ["*"]:
        return False
    if not any(action_covers(a, "s3") for a in as_list(statement.get("Action"))):
        return False
    resources = as_list(statement.get("Resource"))
    if not all(any(covers(r, scope) for r in resources) for scope in (bucket_arn, f"{bucket_arn}/*")):
        return False
    condition = statement.get("Condition")
    if not isinstance(condition, dict) or len(condition) != 1:
        return False
    ((operator, tests),) = condition.items()
    if operator not in ("Bool", "BoolIfExists") or not isinstance(tests, dict) or len(tests) != 1:
        return False
    ((key, values),) = tests.items()
    return key.lower() == "aws:securetransport" and [str(v).lower() for v in as_list(values)] == ["false"]
