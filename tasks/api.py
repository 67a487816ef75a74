"""The HTTP API, behind API Gateway (REST, IAM auth): the policy lifecycle, findings (with their
history and trends), suppressions, resources and a summary, and on-demand inventory and scan executions.

Every route validates its whole request before it writes or starts anything, then calls qrie_lib.
A request body must be declared ``application/json`` (415 otherwise): no HTML form can send one
across sites. Errors leave through one mapping: named input errors are 400, unknown policies 404,
anything else 500 without internals, as ``{"error": <name>, "message": <what is wrong>}``. Every
response carries headers that keep a browser from rendering, sniffing or caching it."""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from aws_lambda_powertools.logging import correlation_paths
from pydantic import BaseModel

from qrie_lib import compliance, executions, history, inventory, lifecycle, scan, suppressions
from qrie_lib.api_models import (
    FindingsQuery,
    LaunchRequest,
    PoliciesQuery,
    ResourcesQuery,
    SuppressionsQuery,
    UpdateRequest,
    resources_page,
    summary,
)
from qrie_lib.aws import get_aws
from qrie_lib.console.render import PREFIX as CONSOLE
from qrie_lib.console.routes import router as console_router
from qrie_lib.errors import (
    InvalidInput,
    PolicyNotLaunched,
    Throttled,
    UnknownFramework,
    UnknownPolicy,
    UnknownSuppression,
)
from qrie_lib.frameworks.registry import get_framework
from qrie_lib.models import parse_input
from qrie_lib.policies.registry import get_policy
from qrie_lib.stores import Stores
from qrie_lib.stores.policies import PolicyStatus
from qrie_lib.views import findings_page
from tasks.common import logger

M = TypeVar("M", bound=BaseModel)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}

# No enable_validation: requests go through parse_input like every task input (the messages read
# like the state machines'), and every error leaves through the one mapping at the end of this module.
app = APIGatewayRestResolver()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response = app.resolve(event, context)
    for name, value in SECURITY_HEADERS.items():  # the console's pages bring their own
        response.setdefault("multiValueHeaders", {}).setdefault(name, [value])
    return response


def json_bodies_only(app: APIGatewayRestResolver, next_middleware: Callable[..., Response]) -> Response:
    """A body is JSON declared as such: a cross-site form (urlencoded, multipart, text/plain) is 415."""
    event = app.current_event
    media_type = (event.headers.get("content-type") or "").split(";")[0].strip().lower()
    console_form = event.path.startswith(f"{CONSOLE}/")  # its forms carry a CSRF token instead
    if event.body and media_type != content_types.APPLICATION_JSON and not console_form:
        raise ServiceError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE.value,
            f"Content-Type: {media_type or 'none'}; a body must be {content_types.APPLICATION_JSON}",
        )
    return next_middleware(app)


app.use(middlewares=[json_bodies_only])
app.include_router(console_router)  # the console's pages, under /console


# ---- policies -----------------------------------------------------------------------------


@app.get("/policies")
def list_policies() -> dict[str, Any]:
    status = query(PoliciesQuery).status
    rows = lifecycle.catalogue_view(stores())
    return {"policies": [r for r in rows if status in (None, r["status"])]}


@app.get("/policies/<policy_id>")
def show_policy(policy_id: str) -> dict[str, Any]:
    return {"policy": policy_rows(stores(), [policy_id])[0]}


@app.post("/policies/launch")
def launch_policies() -> Response:
    request, s = body(LaunchRequest), stores()
    launched = lifecycle.launch(s, request.ids, request.scope, request.severity)
    arn = start("scan", request.scan_request)
    audit("policies launched", policy_ids=request.ids, execution_arn=arn)
    return respond(
        HTTPStatus.CREATED,
        {"policies": policy_rows(s, [p.policy_id for p in launched]), "execution_arn": arn},
    )


@app.put("/policies/<policy_id>")
def update_policy(policy_id: str) -> dict[str, Any]:
    request, s = body(UpdateRequest), stores()
    policy = lifecycle.update(s, policy_id, request.scope, request.severity, request.clear_severity)
    # A suspended policy keeps its new settings for when it is launched again; its findings were
    # resolved by the scan its suspension started. The rescan resolves what is now out of scope.
    arn = start("scan", {"policy_id": policy_id}) if policy.status is PolicyStatus.ACTIVE else None
    audit("policy updated", policy_id=policy_id, execution_arn=arn)
    return {"policy": policy_rows(s, [policy_id])[0], "execution_arn": arn}


@app.delete("/policies/<policy_id>")
def suspend_policy(policy_id: str) -> Response:
    """Suspended now; its findings resolve in the scan execution it starts (bounded task calls, not
    this request): the response names the execution."""
    s = stores()
    lifecycle.suspend(s, policy_id)
    arn = start("scan", {"policy_id": policy_id})
    audit("policy suspended", policy_id=policy_id, execution_arn=arn)
    return respond(HTTPStatus.ACCEPTED, {"policy": policy_rows(s, [policy_id])[0], "execution_arn": arn})


# ---- reads --------------------------------------------------------------------------------


@app.get("/findings")
def list_findings() -> dict[str, Any]:
    q = query(FindingsQuery)
    if q.policy is not None:
        get_policy(q.policy)  # an unknown policy is a 404, not an empty page
    rows, token = findings_page(
        stores(),
        state=q.finding_state,
        band_name=q.severity,
        account_id=q.account,
        policy_id=q.policy,
        token=q.next_token,
        limit=q.limit,
    )
    return {"findings": rows, "next_token": token}


@app.get("/findings/history")
def finding_history() -> dict[str, Any]:
    q = query(history.HistoryQuery)
    return {
        "arn": q.arn,
        "policy_id": q.policy,
        "account_id": q.account,
        "history": history.finding_history(stores(), q),
    }


@app.get("/trends")
def findings_trends() -> dict[str, Any]:
    q = query(history.TrendsQuery)
    return history.trends(stores(), q.days, q.by)


# ---- suppressions -------------------------------------------------------------------------


@app.get("/suppressions")
def list_suppressions() -> dict[str, Any]:
    q = query(SuppressionsQuery)
    return {"suppressions": suppressions.listing(stores(), q.policy, q.status)}


@app.post("/suppressions")
def add_suppression() -> Response:
    """Stored and audited now; its findings move to SUPPRESSED in the scan execution it starts."""
    request, aws = body(suppressions.SuppressionRequest), get_aws()
    rule, arn = suppressions.add(aws, Stores.of(aws), request, caller())
    audit("suppression added", rule_id=rule.rule_id, execution_arn=arn)
    return respond(HTTPStatus.CREATED, {"suppression": rule.row(), "execution_arn": arn})


@app.get("/suppressions/<rule_id>")
def show_suppression(rule_id: str) -> dict[str, Any]:
    return suppressions.show(stores(), rule_id)


@app.delete("/suppressions/<rule_id>")
def remove_suppression(rule_id: str) -> Response:
    """Removed now; its findings that still violate become ACTIVE in the execution it starts."""
    aws = get_aws()
    rule, arn = suppressions.remove(aws, Stores.of(aws), rule_id, caller())
    audit("suppression removed", rule_id=rule_id, execution_arn=arn)
    return respond(HTTPStatus.ACCEPTED, {"suppression": rule.row(), "execution_arn": arn})


@app.get("/resources")
def list_resources() -> dict[str, Any]:
    q = query(ResourcesQuery)
    rows, token = resources_page(
        stores(),
        account_id=q.account,
        service=q.service,
        resource_type=q.resource_type,
        region=q.region,
        token=q.next_token,
        limit=q.limit,
    )
    return {"resources": rows, "next_token": token}


@app.get("/summary")
def findings_summary() -> dict[str, Any]:
    return summary(stores())


@app.get("/compliance/<framework_id>")
def compliance_report(framework_id: str) -> dict[str, Any]:
    get_framework(framework_id)  # an unknown framework is a 404, whatever the query
    return compliance.page(stores(), framework_id, query(compliance.ComplianceQuery)).as_json()


# ---- executions ---------------------------------------------------------------------------


@app.post("/inventory")
def start_inventory() -> Response:
    request, aws = body(inventory.ValidInventoryRequest), get_aws()
    # The plan's own checks (account onboarded, region of a global service) before starting:
    # a request the execution would reject is a 400 now, not a failed execution later.
    inventory.check(request, Stores.of(aws))
    return started("inventory", request)


@app.post("/scans")
def start_scan() -> Response:
    request = body(scan.ScanRequest)
    scan.check(request, stores())  # the plan's checks: policy launched, account onboarded
    return started("scan", request)


def started(kind: str, request: BaseModel) -> Response:
    """Start the execution with exactly what the caller asked (the state machine fills defaults)."""
    execution_input = request.model_dump(mode="json", exclude_unset=True)
    arn = start(kind, execution_input)
    audit(f"{kind} started", input=execution_input, execution_arn=arn)
    return respond(HTTPStatus.ACCEPTED, {"execution_arn": arn, "input": execution_input})


# ---- request and response plumbing --------------------------------------------------------


def stores() -> Stores:
    return Stores.of(get_aws())


def start(kind: str, request: dict[str, Any]) -> str:
    return executions.start(get_aws(), kind, request)


def body(model: type[M]) -> M:
    """The JSON body (strict: no NaN or Infinity), validated; an empty body is ``{}``."""
    try:
        text = app.current_event.decoded_body
    except ValueError:  # API Gateway base64-encodes a body that is not UTF-8 text
        raise InvalidInput("body: not UTF-8 text") from None
    try:
        data = json.loads(text, parse_constant=not_json) if text else {}
    except ValueError as exc:
        raise InvalidInput(f"body: not JSON ({exc})") from None
    except RecursionError:
        raise InvalidInput("body: JSON nested too deeply") from None
    return parse_input(model, data)


def not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not a JSON number")


def query(model: type[M]) -> M:
    """The query string, validated; an unknown parameter is an error, not silently ignored."""
    return parse_input(model, dict(app.current_event.query_string_parameters))


def policy_rows(s: Stores, policy_ids: list[str]) -> list[dict[str, Any]]:
    """Catalogue rows (declaration and launch state) of the given policies, in that order."""
    for policy_id in policy_ids:
        get_policy(policy_id)
    rows = {r["policy_id"]: r for r in lifecycle.catalogue_view(s)}
    return [rows[p] for p in policy_ids]


def caller() -> str:
    """Who is calling: API Gateway's IAM auth puts the caller's ARN in the request context."""
    identity = app.current_event.request_context.identity
    return identity.user_arn or identity.caller or "unknown"


def audit(action: str, **details: Any) -> None:
    """Who changed what, in the logs."""
    logger.info(action, extra={"caller": caller(), **details})


def respond(status: HTTPStatus, data: dict[str, Any]) -> Response:
    return Response(status_code=status.value, content_type=content_types.APPLICATION_JSON, body=data)


ERROR_STATUS: tuple[tuple[type[Exception], HTTPStatus], ...] = (
    (UnknownPolicy, HTTPStatus.NOT_FOUND),
    (UnknownFramework, HTTPStatus.NOT_FOUND),
    (UnknownSuppression, HTTPStatus.NOT_FOUND),
    (PolicyNotLaunched, HTTPStatus.NOT_FOUND),
    (InvalidInput, HTTPStatus.BAD_REQUEST),
    (Throttled, HTTPStatus.SERVICE_UNAVAILABLE),
)


@app.exception_handler(Exception)
def error_response(exc: Exception) -> Response:
    """The one mapping from an exception to a response (powertools' unknown-route 404 included)."""
    if isinstance(exc, ServiceError):
        event = app.current_event
        message = f"no route {event.http_method} {event.path}" if exc.status_code == 404 else exc.msg
        status, name = HTTPStatus(exc.status_code), HTTPStatus(exc.status_code).phrase.replace(" ", "")
        return respond(status, {"error": name, "message": message})
    status = next((s for cls, s in ERROR_STATUS if isinstance(exc, cls)), HTTPStatus.INTERNAL_SERVER_ERROR)
    if status is HTTPStatus.INTERNAL_SERVER_ERROR:
        logger.exception("request failed")
        request_id = app.current_event.request_context.request_id
        return respond(status, {"error": "InternalError", "message": f"see the logs of request {request_id}"})
    return respond(status, {"error": type(exc).__name__, "message": str(exc)})
