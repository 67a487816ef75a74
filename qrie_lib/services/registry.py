"""The one registry of services. Adding a service is adding its module here."""

from __future__ import annotations

from qrie_lib.errors import UnknownService
from qrie_lib.models import GLOBAL
from qrie_lib.services import ec2, iam, s3
from qrie_lib.services.base import CollectContext, Service

SERVICES: dict[str, Service] = {svc.name: svc for svc in (s3.SERVICE, ec2.SERVICE, iam.SERVICE)}


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


def singleton_arn(resource_type: str, account_id: str, region: str) -> tuple[str, str]:
    """(service, ARN) of an account-level setting (one per account, or per region for regional
    services), e.g. the account's S3 public access block, as its collector names it."""
    service = service_of_type(resource_type)
    ctx = CollectContext(
        aws=None, account_id=account_id, region=region if service.regional else GLOBAL, page_size=0
    )  # type: ignore[arg-type]
    return service.name, service.kind(resource_type).arn(ctx, region)
