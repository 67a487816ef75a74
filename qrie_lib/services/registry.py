"""The one registry of services, discovered: every module of this package that declares a
``SERVICE`` is a service. Adding a service is adding its module; the inventory, the event
processor, the customer role's actions and its forwarding rules all read this registry."""

from __future__ import annotations

from qrie_lib import services as _package
from qrie_lib.discovery import declared, unique
from qrie_lib.errors import UnknownService
from qrie_lib.models import GLOBAL
from qrie_lib.services.base import CollectContext, Service

SERVICES: dict[str, Service] = unique(
    (svc for svc in declared(_package, "SERVICE") if isinstance(svc, Service)),
    lambda svc: svc.name,
    "service",
)


def get_service(name: str) -> Service:
    try:
        return SERVICES[name]
    except KeyError:
        raise UnknownService(f"unknown service {name!r}; known: {', '.join(sorted(SERVICES))}") from None


def service_of_type(resource_type: str) -> Service:
    for svc in SERVICES.values():
        if resource_type in svc.resource_types:
            return svc
    raise UnknownService(f"no service collects {resource_type!r}")


def service_of_client(client_name: str) -> Service | None:
    """The service whose collectors use this boto3 client (``s3control`` → s3), if any."""
    return next((svc for svc in SERVICES.values() if client_name in svc.clients), None)


def collector_actions() -> tuple[str, ...]:
    """Every IAM action a collector calls: what the customer's read-only role must allow."""
    return tuple(sorted({action for svc in SERVICES.values() for action in svc.read_actions}))


def singleton_arn(resource_type: str, account_id: str, region: str) -> tuple[str, str]:
    """(service, ARN) of an account-level setting (one per account, or per region for regional
    services), e.g. the account's S3 public access block, as its collector names it."""
    service = service_of_type(resource_type)
    ctx = CollectContext(
        aws=None, account_id=account_id, region=region if service.regional else GLOBAL, page_size=0
    )  # type: ignore[arg-type]
    return service.name, service.kind(resource_type).arn(ctx, region)
