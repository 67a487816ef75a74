"""The console's routes, a router the API's resolver includes, under ``/console``: server-rendered pages
over the same qrie_lib calls the JSON routes make (so a form is validated exactly like the API
request), and forms that POST, check CSRF, act, and redirect to the result.

A named error renders an error page with the API's status (400, 403, 404) and writes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from functools import wraps
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import Field

from qrie_lib import compliance, executions, history, inventory, lifecycle, scan, suppressions
from qrie_lib.api_models import MAX_PAGE, Band, resource_row, resources_page
from qrie_lib.aws import get_aws
from qrie_lib.console import data, session
from qrie_lib.console.render import (
    HEADERS,
    PREFIX,
    SESSION_COOKIE,
    Forbidden,
    check_csrf,
    cookies,
    page,
    redirect,
    static,
)
from qrie_lib.errors import InvalidInput, PolicyNotLaunched, UnknownFramework, UnknownPolicy
from qrie_lib.frameworks.registry import FRAMEWORKS
from qrie_lib.models import AccountId, Region, Strict, parse_input
from qrie_lib.policies.registry import CATALOGUE, get_policy
from qrie_lib.services.registry import SERVICES, get_service
from qrie_lib.stores import Stores
from qrie_lib.stores.findings import FindingState
from qrie_lib.stores.policies import PolicyStatus
from qrie_lib.subjects import requested
from qrie_lib.timeutil import now_iso
from qrie_lib.views import finding_row


class NotFound(InvalidInput):
    """A finding or resource the page names is not stored."""


ERROR_STATUS = (
    (Forbidden, HTTPStatus.FORBIDDEN),
    (NotFound, HTTPStatus.NOT_FOUND),
    (UnknownPolicy, HTTPStatus.NOT_FOUND),
    (UnknownFramework, HTTPStatus.NOT_FOUND),
    (PolicyNotLaunched, HTTPStatus.NOT_FOUND),
    (InvalidInput, HTTPStatus.BAD_REQUEST),
)
RESOURCE_TYPES = sorted(k.resource_type for s in SERVICES.values() for k in s.kinds)


class FindingsFilter(Strict):
    state: Literal["ACTIVE", "RESOLVED", "SUPPRESSED", "ALL"] = "ACTIVE"
    severity: Band | Literal[""] = ""
    account: AccountId | Literal[""] = ""
    policy: str = ""
    resource_type: str = ""
    q: str = Field("", max_length=200)
    sort: str = "severity"
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    next_token: str | None = None


class InventoryFilter(Strict):
    account: AccountId | Literal[""] = ""
    service: str = ""
    resource_type: str = ""
    region: Region | Literal["global", ""] = ""
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    next_token: str | None = None


class FindingKey(Strict):
    arn: str = Field(min_length=1)
    policy: str = Field(min_length=1)
    account: AccountId | None = None  # required for an AWS managed policy (qrie_lib.subjects)


class ResourceKey(Strict):
    account: AccountId
    service: str
    arn: str = Field(min_length=1)


class ComplianceFilter(Strict):
    framework: str = "cis-aws-3.0"
    account: AccountId | Literal[""] = ""
    next_token: str | None = None  # a page of accounts (compliance.page)


class PolicyForm(Strict):
    csrf: str
    policy_id: str
    action: Literal["launch", "update", "suspend"]
    scope: str = ""
    severity: str = ""
    clear_severity: Literal["", "on"] = ""


class SuppressForm(Strict):
    csrf: str
    policy_id: str
    account: AccountId
    arn: str
    reason: str
    owner: str
    expires_at: str


class RunForm(Strict):
    csrf: str
    kind: Literal["inventory", "scan"]
    service: str = ""
    account: AccountId | Literal[""] = ""


router = Router()
logger = Logger(
    service="qrie", child=True
)  # the API handler's logger (same service), with its request context


def caller() -> str:
    """The IAM caller, the console user an authorizer named, or the local console's user."""
    context = router.current_event.request_context
    named = context.authorizer.get("principalId") if context.authorizer else None
    return context.identity.user_arn or named or "console (local)"


def audit(action: str, **details: Any) -> None:
    """Who changed what, in the logs."""
    logger.info(action, extra={"caller": caller(), **details})


def query(model: type[Any]) -> Any:
    return parse_input(model, dict(router.current_event.query_string_parameters))


def form(model: type[Any]) -> Any:
    """The urlencoded body, CSRF-checked before anything else is read."""
    fields = {k: v[-1] for k, v in parse_qs(router.current_event.decoded_body or "").items()}
    check_csrf(router.current_event, fields)
    return parse_input(model, fields)


def screen(route: Callable[..., Response]) -> Callable[..., Response]:
    @wraps(route)
    def rendered(*args: Any, **kwargs: Any) -> Response:
        try:
            return route(*args, **kwargs)
        except InvalidInput as exc:
            status = next(s for cls, s in ERROR_STATUS if isinstance(exc, cls))
            return page(router.current_event, "error.html", status, title=status.phrase, error=exc)

    return rendered


def stores() -> Stores:
    return Stores.of(get_aws())


@router.get(PREFIX)  # powertools matches "/console/" too
@screen
def overview() -> Response:
    return page(router.current_event, "overview.html", title="Overview", **data.overview(stores(), get_aws()))


@router.get(f"{PREFIX}/findings")
@screen
def findings() -> Response:
    f = query(FindingsFilter)
    if f.policy:
        get_policy(f.policy)
    rows, token = data.findings_table(
        stores(),
        state=None if f.state == "ALL" else FindingState(f.state),
        band_name=f.severity or None,
        account_id=f.account or None,
        policy_id=f.policy or None,
        resource_type=f.resource_type or None,
        text=f.q or None,
        token=f.next_token,
        limit=f.limit,
    )
    filters = f.model_dump(exclude={"next_token"})
    return page(
        router.current_event,
        "findings.html",
        title="Findings",
        rows=data.sort_rows(rows, f.sort),
        filters=filters,
        next_query=urlencode(filters | {"next_token": token}) if token else None,
        accounts=stores().accounts.list(),
        policies=sorted(CATALOGUE),
        resource_types=RESOURCE_TYPES,
        sorts=list(data.SORTS),
    )


@router.get(f"{PREFIX}/finding")
@screen
def finding() -> Response:
    key, s = query(FindingKey), stores()
    policy = get_policy(key.policy)
    found = s.findings.get(requested(key.arn, key.account), key.policy)
    if found is None:
        raise NotFound(f"no finding of {key.policy} on {key.arn}")
    stamp = s.partitions.get_many([found.account_service])[found.account_service]
    row = finding_row(found, stamp.evaluated.get(found.policy_id))
    return page(
        router.current_event,
        "finding.html",
        title=f"{policy.policy_id} on {found.arn}",
        finding=row,
        evidence=json.dumps(row["evidence"], indent=2, sort_keys=True),
        policy=policy.describe(),
        service=found.service,
        history=history.finding_history(
            s, history.HistoryQuery(arn=found.arn, policy=found.policy_id, account=found.account_id)
        ),
        owner=caller(),
        expiry=expiry_bounds(get_aws().settings.suppression_max_days),
    )


@router.post(f"{PREFIX}/suppressions")
@screen
def suppress() -> Response:
    """Accept the risk of one finding: a suppression rule of its policy, account and exact ARN."""
    f, aws = form(SuppressForm), get_aws()
    request = parse_input(
        suppressions.SuppressionRequest,
        {
            "policy_id": f.policy_id,
            "accounts": [f.account],
            "arn_glob": f.arn,
            "reason": f.reason,
            "owner": f.owner,
            "expires_at": f.expires_at,
        },
    )
    rule, arn = suppressions.add(aws, Stores.of(aws), request, caller())
    audit("console: suppression added", rule_id=rule.rule_id, execution_arn=arn)
    back = "/finding?" + urlencode({"arn": f.arn, "policy": f.policy_id, "account": f.account})
    return redirect(router.current_event, run_path("scan", arn) if arn else back)


@router.get(f"{PREFIX}/inventory")
@screen
def inventory_page() -> Response:
    f, s = query(InventoryFilter), stores()
    accounts = s.accounts.list()
    account = f.account or (accounts[0].account_id if accounts else "")
    rows, token = (
        resources_page(
            s,
            account_id=account,
            service=f.service or None,
            resource_type=f.resource_type or None,
            region=f.region or None,
            token=f.next_token,
            limit=f.limit,
        )
        if account
        else ([], None)
    )
    filters = f.model_dump(exclude={"next_token"}) | {"account": account}
    return page(
        router.current_event,
        "inventory.html",
        title="Inventory",
        rows=rows,
        filters=filters,
        next_query=urlencode(filters | {"next_token": token}) if token else None,
        accounts=accounts,
        services=sorted(SERVICES),
        resource_types=RESOURCE_TYPES,
    )


@router.get(f"{PREFIX}/resource")
@screen
def resource() -> Response:
    key, s = query(ResourceKey), stores()
    service = get_service(key.service).name
    item = s.resources.item(key.account, service, key.arn)
    if item is None:
        raise NotFound(f"arn: {key.arn} is not in account {key.account}'s {service} inventory")
    found = s.findings.for_resource(key.arn, account_id=key.account)
    return page(
        router.current_event,
        "resource.html",
        title=key.arn,
        resource=(row := resource_row(item)),
        described_by=str(item.get("RunId", "")),
        configuration=json.dumps(row["configuration"], indent=2, sort_keys=True),
        tags=row["tags"],
        findings=[finding_row(f) for f in found],
    )


@router.get(f"{PREFIX}/policies")
@screen
def policies() -> Response:
    rows = lifecycle.catalogue_view(stores())
    return page(router.current_event, "policies.html", title="Policies", rows=rows)


@router.post(f"{PREFIX}/policies")
@screen
def change_policy() -> Response:
    f, s = form(PolicyForm), stores()
    scope = parse_scope_text(f.scope)
    severity = f.severity.strip() or None
    severity = parse_number(severity) if severity is not None else None
    if f.action == "launch":
        lifecycle.launch(s, [f.policy_id], scope, severity)
        request: dict[str, Any] | None = {"policy_id": f.policy_id}
    elif f.action == "update":
        clear = f.clear_severity == "on"
        policy = lifecycle.update(s, f.policy_id, scope, severity, clear)
        request = {"policy_id": f.policy_id} if policy.status is PolicyStatus.ACTIVE else None
    else:
        lifecycle.suspend(s, f.policy_id)
        request = {"policy_id": f.policy_id}
    arn = executions.start(get_aws(), "scan", request) if request else None
    audit(f"console: policy {f.action}", policy_id=f.policy_id, execution_arn=arn)
    return redirect(router.current_event, run_path("scan", arn) if arn else "/policies")


@router.get(f"{PREFIX}/runs")
@screen
def runs() -> Response:
    s, aws = stores(), get_aws()
    return page(
        router.current_event,
        "runs.html",
        title="Runs",
        runs={kind: data.recent_runs(aws, s, kind) for kind in data.RUN_KINDS},
        accounts=s.accounts.list(),
        services=sorted(SERVICES),
    )


@router.post(f"{PREFIX}/runs")
@screen
def start_run() -> Response:
    f, aws = form(RunForm), get_aws()
    s = Stores.of(aws)
    request: dict[str, Any] = {"account_id": f.account} if f.account else {}
    if f.kind == "inventory":
        valid = parse_input(inventory.ValidInventoryRequest, request | {"service": f.service or "all"})
        inventory.check(valid, s)  # the API's checks: onboarded account, global service
    else:
        valid = parse_input(scan.ScanRequest, request | ({"service": f.service} if f.service else {}))
        scan.check(valid, s)
    execution_input = valid.model_dump(mode="json", exclude_unset=True)
    arn = executions.start(aws, f.kind, execution_input)
    audit(f"console: {f.kind} started", input=execution_input, execution_arn=arn)
    return redirect(router.current_event, run_path(f.kind, arn))


@router.get(f"{PREFIX}/runs/<kind>/<name>")
@screen
def run_page(kind: str, name: str) -> Response:
    detail = data.run_detail(get_aws(), stores(), kind, name)
    return page(router.current_event, "run.html", title=f"{kind} {name}", run=detail)


@router.get(f"{PREFIX}/compliance")
@screen
def compliance_page() -> Response:
    f = query(ComplianceFilter)
    q = compliance.ComplianceQuery(account=f.account or None, next_token=f.next_token)
    report = compliance.page(stores(), f.framework, q)
    filters = f.model_dump(exclude={"next_token"})
    return page(
        router.current_event,
        "compliance.html",
        title="Compliance",
        report=report,
        frameworks=sorted(FRAMEWORKS),
        filters=filters,
        next_query=urlencode(filters | {"next_token": report.next_token}) if report.next_token else None,
    )


@router.get(f"{PREFIX}/static/<name>")
def asset(name: str) -> Response:
    return static(name)


def expiry_bounds(max_days: int) -> dict[str, str]:
    """The suppress form's date field: tomorrow to the furthest allowed, 90 days by default."""
    today = date.fromisoformat(now_iso()[:10])
    return {
        "min": (today + timedelta(days=1)).isoformat(),
        "value": (today + timedelta(days=min(90, max_days - 1))).isoformat(),
        "max": (today + timedelta(days=max_days - 1)).isoformat(),
    }


def run_path(kind: str, execution_arn: str) -> str:
    return f"/runs/{kind}/{execution_arn.rsplit(':', 1)[-1]}"


def parse_scope_text(text: str) -> Any:
    """The scope field: JSON, or empty for none; the lifecycle validates what it says."""
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"scope: not JSON ({exc})") from None


def parse_number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return text  # the lifecycle names it: "severity: ... is not an integer from 0 to 100"


# ---- sign-in in AWS (qrie_lib/console/session.py; open routes: the stack's /console/auth/*) ----


@router.get(f"{PREFIX}/auth/login")
@screen
def sign_in() -> Response:
    """To the managed login, with a state and PKCE verifier bound to this browser's cookie."""
    url, started = session.SignIn.of(get_aws().settings).start()
    # SameSite=Lax: the managed login sends the browser back with a cross-site top-level GET.
    cookie = auth_cookie(session.SIGN_IN_COOKIE, started, session.SIGN_IN_TTL_S, path=f"{PREFIX}/auth")
    return Response(
        status_code=HTTPStatus.FOUND.value, body="", headers=HEADERS | {"Location": url}, cookies=[cookie]
    )


@router.get(f"{PREFIX}/auth/callback")
@screen
def signed_in() -> Response:
    """The managed login's answer: the code exchanged for the ID token, kept in the session cookie."""
    event, sign_in_ = router.current_event, session.SignIn.of(get_aws().settings)
    params = event.query_string_parameters
    started = cookies(event).get(session.SIGN_IN_COOKIE, "")
    token = sign_in_.finish(started, params.get("state") or "", params.get("code") or "")
    response = redirect(event, "/")
    response.cookies = [
        auth_cookie(SESSION_COOKIE, token, session.SESSION_TTL_S),
        auth_cookie(session.SIGN_IN_COOKIE, "", 0, path=f"{PREFIX}/auth"),  # used once
    ]
    return response


@router.get(f"{PREFIX}/auth/logout")
@screen
def sign_out() -> Response:
    """Forget the session here and at the managed login. The link carries the CSRF token: another
    site cannot sign a user out."""
    check_csrf(router.current_event, dict(router.current_event.query_string_parameters))
    url = session.SignIn.of(get_aws().settings).logout_url()
    return Response(
        status_code=HTTPStatus.FOUND.value,
        body="",
        headers=HEADERS | {"Location": url},
        cookies=[auth_cookie(SESSION_COOKIE, "", 0)],
    )


def auth_cookie(name: str, value: str, max_age: int, path: str = "/") -> str:
    return f"{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax"
