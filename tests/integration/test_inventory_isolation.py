"""Tenant isolation and robustness of the inventory, end to end on the local runtime: an event in
one account naming another account's bucket changes nothing of either; a region removed from an
account is swept with its findings resolved as REGION_REMOVED; one bucket whose every call is
denied is kept as it was while the rest of the account is swept."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from orchestration import cloudtrail, events_queue
from qrie_lib import lifecycle
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.stores import Stores
from qrie_lib.stores.findings import Finding, FindingState, ResolvedReason
from qrie_lib.stores.resources import region_prefix
from tests.integration.conftest import Harness, inventoried_org

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def org() -> Iterator[Harness]:
    with inventoried_org(2) as harness:
        lifecycle.launch(Stores.of(harness.aws), sorted(CATALOGUE))
        outcome, _ = harness.run("scan", {})
        assert outcome.status == "SUCCEEDED", outcome.cause
        yield harness


def findings_of(harness: Harness, account: str, service: str) -> dict[tuple[str, str], Finding]:
    stores = Stores.of(harness.aws)
    found, token = {}, None
    while True:
        page, token = stores.findings.query_page(
            state=None, account_service=f"{account}_{service}", token=token
        )
        found |= {(f.arn, f.policy_id): f for f in page}
        if token is None:
            return found


def succeeded(harness: Harness, request: dict) -> dict:
    outcome, summary = harness.run("inventory", request)
    assert outcome.status == "SUCCEEDED", outcome.cause
    return summary


def test_an_event_in_one_account_naming_anothers_bucket_changes_nothing_of_either(org):
    a, b = org.org.account_ids
    theirs = next(
        f for f in findings_of(org, b, "s3").values() if f.state is FindingState.ACTIVE and ":::" in f.arn
    )
    bucket = theirs.arn.rsplit(":", 1)[-1]
    b_findings, b_resources = findings_of(org, b, "s3"), org.resource_arns(b)

    events_queue.send_events(org.aws, [cloudtrail.s3_call("PutBucketAcl", a, bucket)])
    report = events_queue.drain(org.aws)
    assert report.count("failed") == 0
    assert theirs.arn not in org.resource_arns(a)
    assert not [k for k in findings_of(org, a, "s3") if k[0] == theirs.arn]
    assert findings_of(org, b, "s3") == b_findings

    succeeded(org, {"service": "s3", "account_id": a})
    succeeded(org, {"service": "s3", "account_id": b})
    assert theirs.arn not in org.resource_arns(a)
    assert theirs.arn in org.resource_arns(b)
    assert org.resource_arns(b) == b_resources
    after = findings_of(org, b, "s3")[theirs.arn, theirs.policy_id]
    assert (after.state, after.account_id, after.first_seen) == (FindingState.ACTIVE, b, theirs.first_seen)


def test_a_region_removed_from_an_account_is_swept_and_its_findings_resolved(org):
    a, b = org.org.account_ids
    stores = Stores.of(org.aws)
    kept, removed = org.aws.settings.regions
    gone = region_prefix("ec2", removed)
    active = [
        f for f in findings_of(org, a, "ec2").values() if f.arn.startswith(gone) and f.state == "ACTIVE"
    ]
    assert active
    assert any(arn.startswith(gone) for arn in org.resource_arns(a))
    b_before = {arn for arn in org.resource_arns(b) if arn.startswith(gone)}
    # The account's CloudTrail anchor (account-level, listed by every region alike): one item.
    anchor = f"arn:aws:cloudtrail::{a}:coverage"
    assert [arn for arn in org.resource_arns(a) if arn.endswith(":coverage")] == [anchor]
    anchor_findings = {k: f.state for k, f in findings_of(org, a, "cloudtrail").items() if k[0] == anchor}
    assert "ACTIVE" in anchor_findings.values()  # the first account's trail is careless

    account = stores.accounts.get(a)
    stores.accounts.put(account.model_copy(update={"regions": [kept]}))
    try:
        summary = succeeded(org, {"service": "all", "account_id": a})
        assert not [arn for arn in org.resource_arns(a) if arn.startswith(gone)]
        assert any(arn.startswith(region_prefix("ec2", kept)) for arn in org.resource_arns(a))
        resolved = findings_of(org, a, "ec2")
        for finding in active:
            now = resolved[finding.arn, finding.policy_id]
            assert (now.state, now.resolved_reason) == (FindingState.RESOLVED, ResolvedReason.REGION_REMOVED)
        assert summary["findings_resolved"] >= len(active)
        assert {arn for arn in org.resource_arns(b) if arn.startswith(gone)} == b_before
        assert anchor in org.resource_arns(a)  # no region's sweep or removal touches it
        after = findings_of(org, a, "cloudtrail")
        assert {k: f.state for k, f in after.items() if k[0] == anchor} == anchor_findings
        # The next run has no region left to retire: the removed region is no work item any more.
        assert succeeded(org, {"service": "ec2", "account_id": a})["items"] == 1
    finally:
        stores.accounts.put(account)
    succeeded(org, {"service": "ec2", "account_id": a})
    assert any(arn.startswith(gone) for arn in org.resource_arns(a))


def test_a_bucket_whose_every_call_is_denied_is_kept_as_stored_and_the_account_still_swept(org):
    a, _ = org.org.account_ids
    s3 = org.org.session(a).client("s3")
    s3.create_bucket(Bucket="sim01-vault")
    s3.create_bucket(Bucket="sim01-doomed")
    succeeded(org, {"service": "s3", "account_id": a})
    stores = Stores.of(org.aws)
    vault = stores.resources.get(a, "s3", "arn:aws:s3:::sim01-vault")
    s3.delete_bucket(Bucket="sim01-doomed")

    def refuse(params, model, **_):
        if params.get("Bucket") == "sim01-vault":
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "bucket policy"}}, model.name)

    external_id = stores.accounts.get(a).external_id
    clients = [org.aws.customer_client(a, "s3", r, external_id) for r in org.aws.settings.regions]
    for client in clients:
        client.meta.events.register("before-parameter-build.s3", refuse)
    try:
        summary = succeeded(org, {"service": "s3", "account_id": a})
    finally:
        for client in clients:
            client.meta.events.unregister("before-parameter-build.s3", refuse)
    assert summary["swept"] == 1
    assert "arn:aws:s3:::sim01-doomed" not in org.resource_arns(a)
    kept = stores.resources.get(a, "s3", "arn:aws:s3:::sim01-vault")
    assert (kept.configuration, kept.describe_time) == (vault.configuration, vault.describe_time)
