"""The simulated organisation trips every policy at least once and passes it at least once, as
collected by the real collectors from the emulated accounts."""

from __future__ import annotations

from collections import Counter

from orchestration.runtime import LocalRuntime
from orchestration.simulated_org import SimulatedOrg
from qrie_lib.aws import Aws
from qrie_lib.models import GLOBAL, Resource
from qrie_lib.policies.base import Policy, Related
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.services.base import CollectContext
from qrie_lib.services.registry import SERVICES
from qrie_lib.stores import Stores

CANNOT_PASS = {"S3BucketMfaDeleteDisabled": "moto's S3 neither stores nor reports MFADelete"}
NOT_EVALUATED_LOCALLY = {"AccessAnalyzerDisabled": "moto does not emulate IAM Access Analyzer"}


def collect(aws: Aws, account_id: str) -> list[Resource]:
    found: list[Resource] = []
    external_id = Stores.of(aws).accounts.get(account_id).external_id
    for service in SERVICES.values():
        for region in aws.settings.regions if service.regional else (GLOBAL,):
            ctx = CollectContext(aws, account_id, region, page_size=100, external_id=external_id)
            for kind in service.kinds:
                token = None
                while True:
                    page = kind.list_page(ctx, token)
                    found += page.resources
                    if (token := page.next_token) is None:
                        break
    return found


def related_of(policy: Policy, resource: Resource, resources: list[Resource]) -> Related:
    """What evaluation gives the policy: the account's (or region's) settings it reads, and every
    resource of the types it reads account-wide."""
    singletons = {(r.resource_type, r.region): r for r in resources}
    settings = {
        t: singletons.get((t, resource.region)) or singletons.get((t, GLOBAL)) for t in policy.related
    }
    every = {t: tuple(r for r in resources if r.resource_type == t) for t in policy.related_all}
    return Related(settings, collections=every)


def test_every_policy_fails_somewhere_and_passes_somewhere() -> None:
    verdicts: Counter[tuple[str, bool]] = Counter()
    with LocalRuntime() as rt:
        assert rt.aws is not None
        for account in SimulatedOrg(rt.aws, 2).create():
            resources = collect(rt.aws, account.account_id)
            for policy in CATALOGUE.values():
                for resource in (r for r in resources if r.resource_type == policy.resource_type):
                    related = related_of(policy, resource, resources)
                    verdicts[policy.policy_id, policy.evaluate(resource, related).compliant] += 1
    never = {
        outcome: sorted(pid for pid in CATALOGUE if not verdicts[pid, compliant])
        for outcome, compliant in (("never fails", False), ("never passes", True))
    }
    assert never == {
        "never fails": sorted(NOT_EVALUATED_LOCALLY),
        "never passes": sorted({*CANNOT_PASS, *NOT_EVALUATED_LOCALLY}),
    }
    assert not any(verdicts[pid, outcome] for pid in NOT_EVALUATED_LOCALLY for outcome in (True, False))
