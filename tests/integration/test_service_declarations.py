"""A service is one module: what it declares (read actions, clients) must match what its
collectors actually do. Runs every collector on an inventoried simulated account, then describes
one resource of every kind (the event path), and checks each customer call it made."""

from __future__ import annotations

from collections import Counter

import pytest

from qrie_lib.services.base import CollectContext
from qrie_lib.services.registry import SERVICES, service_of_client
from qrie_lib.stores import Stores
from tests.integration.conftest import inventoried_org

# Operations whose IAM action has another name (AWS's "Actions, resources, and condition keys for
# Amazon S3" page lists them: the action is named after the permission, not the API).
ACTION_OF_OPERATION = {
    "s3.ListBuckets": "s3:ListAllMyBuckets",
    "s3.GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "s3.GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "s3control.GetPublicAccessBlock": "s3:GetAccountPublicAccessBlock",
    # clients named unlike their IAM service prefix
    "efs.DescribeFileSystems": "elasticfilesystem:DescribeFileSystems",
    "accessanalyzer.ListAnalyzers": "access-analyzer:ListAnalyzers",
    "elbv2.DescribeLoadBalancers": "elasticloadbalancing:DescribeLoadBalancers",
    "elbv2.DescribeLoadBalancerAttributes": "elasticloadbalancing:DescribeLoadBalancerAttributes",
}


def iam_action(call: str) -> str:
    client, operation = call.split(".", 1)
    return ACTION_OF_OPERATION.get(call, f"{client}:{operation}")


@pytest.fixture(scope="module")
def calls() -> Counter[str]:
    with inventoried_org(1) as harness:
        calls = Counter(harness.aws.customer_calls)
        account = harness.org.account_ids[0]
        stores = Stores.of(harness.aws)
        external_id = stores.accounts.get(account).external_id
        for service in SERVICES.values():
            stored = stores.resources.page(account, service.name, None, 1000).resources
            described: set[str] = set()
            for resource in stored:
                ctx = CollectContext(harness.aws, account, resource.region, 10, external_id)
                kind = service.kind(resource.resource_type)
                # the id an event would name, found through the kind's own ARN builder
                candidates = (
                    resource.arn,
                    *{resource.arn.rsplit(sep, 1)[-1] for sep in "/:"},
                    resource.region,
                )
                resource_id = next((c for c in candidates if kind.arn(ctx, c) == resource.arn), None)
                if resource.resource_type in described or resource_id is None:
                    continue
                harness.aws.customer_calls.clear()
                assert kind.describe(ctx, resource_id) is not None
                calls.update(harness.aws.customer_calls)
                described.add(resource.resource_type)
            assert described == set(service.resource_types)
        return calls


def declared_for(client: str) -> set[str]:
    """The read actions of the services using this client (RDS reads EC2's route tables too)."""
    return {a for svc in SERVICES.values() if client in svc.clients for a in svc.read_actions}


def test_every_call_a_collector_makes_is_a_declared_read_action(calls: Counter[str]) -> None:
    undeclared = {
        call: iam_action(call)
        for call in calls
        if service_of_client(call.split(".")[0]) is not None
        and iam_action(call) not in declared_for(call.split(".")[0])
    }
    assert not undeclared


def test_every_service_was_exercised(calls: Counter[str]) -> None:
    exercised = {svc.name for call in calls if (svc := service_of_client(call.split(".")[0]))}
    assert exercised == set(SERVICES)


def test_read_actions_are_read_only() -> None:
    for service in SERVICES.values():
        for action in service.read_actions:
            verb = action.split(":", 1)[1]
            # Lookup: cloudtrail:LookupEvents, of access level Read in IAM's service reference
            assert verb.startswith(("Describe", "Get", "List", "Generate", "Lookup")), action
