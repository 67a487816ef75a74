"""The scan state machine end to end, and the findings lifecycle through real runs."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

import pytest

from orchestration.simulated_org import account_id
from qrie_lib import lifecycle, scan
from qrie_lib.errors import QrieError
from qrie_lib.stores import Stores
from qrie_lib.stores.findings import FindingState, ResolvedReason
from qrie_lib.stores.runs import counts_of
from tests.integration.conftest import Harness, inventoried_org

pytestmark = pytest.mark.slow
A1 = account_id(1)
PUBLIC = "arn:aws:s3:::sim01-public-assets"
S3_POLICIES = ["S3BucketPublic", "S3BucketVersioningDisabled", "S3BucketEncryptionDisabled"]


@pytest.fixture(scope="module")
def scanned() -> Iterator[Harness]:
    with inventoried_org(1) as harness:
        yield harness


def stores(h: Harness) -> Stores:
    return Stores.of(h.aws)


def finding(h: Harness, arn: str, policy_id: str):
    return stores(h).findings.get_many([(arn, policy_id)]).get((arn, policy_id))


def findings_writes(h: Harness) -> Counter:
    """Count write calls on the findings table made through the shared client."""
    writes: Counter = Counter()

    def count(params, model, **_):
        if params.get("TableName") == h.aws.settings.findings_table and model.name in (
            "PutItem",
            "UpdateItem",
        ):
            writes[model.name] += 1

    h.aws.client("dynamodb").meta.events.register("before-parameter-build.dynamodb", count)
    return writes


def test_launch_then_scan_opens_findings_with_their_lifecycle_fields(scanned):
    lifecycle.launch(stores(scanned), S3_POLICIES)
    outcome, summary = scanned.run("scan", {})
    assert outcome.status == "SUCCEEDED", outcome.cause
    public = finding(scanned, PUBLIC, "S3BucketPublic")
    assert public.state is FindingState.ACTIVE
    assert public.severity >= 90
    assert public.first_seen == public.last_evaluated
    assert public.evidence["PublicAclGrants"]
    assert finding(scanned, "arn:aws:s3:::sim01-secure", "S3BucketPublic") is None
    assert summary["by_policy"]["S3BucketPublic"]["new"] >= 1
    assert summary["findings"]["active"] == sum(p["active"] for p in summary["by_policy"].values())


def test_unchanged_rescan_writes_no_finding(scanned):
    lifecycle.launch(stores(scanned), S3_POLICIES)
    scanned.run("scan", {})
    writes = findings_writes(scanned)
    outcome, summary = scanned.run("scan", {})
    assert outcome.status == "SUCCEEDED"
    assert writes == Counter()
    assert summary["findings"]["new"] == summary["findings"]["resolved"] == 0


def test_fixed_resource_resolves_and_a_relapse_reopens_keeping_first_seen(scanned):
    lifecycle.launch(stores(scanned), ["S3BucketPublic"])
    scanned.run("scan", {"policy_id": "S3BucketPublic"})
    opened = finding(scanned, PUBLIC, "S3BucketPublic")
    s3 = scanned.org.session(A1).client("s3")

    s3.put_bucket_acl(Bucket="sim01-public-assets", ACL="private")
    scanned.run("inventory", {"service": "s3", "account_id": A1})
    _, summary = scanned.run("scan", {"policy_id": "S3BucketPublic"})
    resolved = finding(scanned, PUBLIC, "S3BucketPublic")
    assert resolved.state is FindingState.RESOLVED
    assert resolved.resolved_reason is ResolvedReason.COMPLIANT
    assert resolved.resolved_at is not None
    assert summary["by_policy"]["S3BucketPublic"]["resolved"] == 1

    s3.put_bucket_acl(Bucket="sim01-public-assets", ACL="public-read")
    scanned.run("inventory", {"service": "s3", "account_id": A1})
    _, summary = scanned.run("scan", {"policy_id": "S3BucketPublic"})
    reopened = finding(scanned, PUBLIC, "S3BucketPublic")
    assert reopened.state is FindingState.ACTIVE
    assert reopened.first_seen == opened.first_seen
    assert reopened.reopen_count == 1
    assert reopened.resolved_at is None
    assert reopened.resolved_reason is None
    assert summary["by_policy"]["S3BucketPublic"]["reopened"] == 1


def test_severity_override_is_the_effective_severity(scanned):
    lifecycle.launch(stores(scanned), ["S3BucketVersioningDisabled"], severity=77)
    scanned.run("scan", {"policy_id": "S3BucketVersioningDisabled"})
    assert finding(scanned, PUBLIC, "S3BucketVersioningDisabled").severity == 77
    lifecycle.update(stores(scanned), "S3BucketVersioningDisabled", clear_severity=True)
    scanned.run("scan", {"policy_id": "S3BucketVersioningDisabled"})
    default = lifecycle.catalogue_view(stores(scanned))
    expected = next(r["severity"] for r in default if r["policy_id"] == "S3BucketVersioningDisabled")
    assert finding(scanned, PUBLIC, "S3BucketVersioningDisabled").severity == expected


def test_suspend_then_its_scan_resolves_every_active_finding_of_the_policy(scanned):
    lifecycle.launch(stores(scanned), ["S3BucketEncryptionDisabled"])
    scanned.run("scan", {"policy_id": "S3BucketEncryptionDisabled"})
    before = list(stores(scanned).findings.active_for_policy("S3BucketEncryptionDisabled"))
    assert before
    lifecycle.suspend(stores(scanned), "S3BucketEncryptionDisabled")
    assert len(list(stores(scanned).findings.active_for_policy("S3BucketEncryptionDisabled"))) == len(before)
    # The scan of a suspended policy evaluates nothing and resolves its findings, shard by shard.
    outcome, summary = scanned.run("scan", {"policy_id": "S3BucketEncryptionDisabled"})
    assert outcome.status == "SUCCEEDED", outcome.cause
    assert summary["by_policy"]["S3BucketEncryptionDisabled"] == {
        "evaluated": 0,
        "new": 0,
        "resolved": len(before),
        "reopened": 0,
        "active": 0,
    }
    assert not list(stores(scanned).findings.active_for_policy("S3BucketEncryptionDisabled"))
    after = finding(scanned, before[0].arn, "S3BucketEncryptionDisabled")
    assert after.resolved_reason is ResolvedReason.POLICY_SUSPENDED


def test_out_of_scope_by_account_and_by_region(scanned):
    lifecycle.launch(stores(scanned), ["EC2EbsVolumeUnencrypted"])
    scanned.run("scan", {"policy_id": "EC2EbsVolumeUnencrypted"})
    active = list(stores(scanned).findings.active_for_policy("EC2EbsVolumeUnencrypted"))
    assert {f.region for f in active} == {"us-east-1", "eu-west-1"}

    lifecycle.update(stores(scanned), "EC2EbsVolumeUnencrypted", scope={"regions": ["eu-west-1"]})
    scanned.run("scan", {"policy_id": "EC2EbsVolumeUnencrypted"})
    still = list(stores(scanned).findings.active_for_policy("EC2EbsVolumeUnencrypted"))
    assert {f.region for f in still} == {"eu-west-1"}
    dropped = next(f for f in active if f.region == "us-east-1")
    assert finding(scanned, dropped.arn, dropped.policy_id).resolved_reason is ResolvedReason.OUT_OF_SCOPE

    lifecycle.update(stores(scanned), "EC2EbsVolumeUnencrypted", scope={"exclude_accounts": [A1]})
    assert list(stores(scanned).findings.active_for_policy("EC2EbsVolumeUnencrypted"))  # the scan's job
    outcome, _ = scanned.run("scan", {"policy_id": "EC2EbsVolumeUnencrypted"})
    assert outcome.status == "SUCCEEDED", outcome.cause
    assert not list(stores(scanned).findings.active_for_policy("EC2EbsVolumeUnencrypted"))
    lifecycle.update(stores(scanned), "EC2EbsVolumeUnencrypted", scope={})


def test_swept_resource_resolves_its_findings_as_deleted(scanned):
    s3 = scanned.org.session(A1).client("s3")
    s3.create_bucket(Bucket="sim01-temp-public")
    s3.put_bucket_acl(Bucket="sim01-temp-public", ACL="public-read")
    lifecycle.launch(stores(scanned), ["S3BucketPublic"])
    scanned.run("inventory", {"service": "s3", "account_id": A1})
    scanned.run("scan", {"policy_id": "S3BucketPublic"})
    arn = "arn:aws:s3:::sim01-temp-public"
    assert finding(scanned, arn, "S3BucketPublic").state is FindingState.ACTIVE

    s3.delete_bucket(Bucket="sim01-temp-public")
    _, summary = scanned.run("inventory", {"service": "s3", "account_id": A1})
    assert summary["findings_resolved"] >= 1
    gone = finding(scanned, arn, "S3BucketPublic")
    assert gone.state is FindingState.RESOLVED
    assert gone.resolved_reason is ResolvedReason.RESOURCE_DELETED


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ({"policy_id": "NoSuchPolicy"}, "policy_id"),
        ({"policy_id": "IAMRootMfaDisabled"}, "policy_id"),  # in the catalogue, never launched
        ({"service": "nosuchservice"}, "service"),
        ({"account_id": "1234"}, "account_id"),
        ({"account_id": "999999999999"}, "account_id"),
        ({"polcy_id": "S3BucketPublic"}, "polcy_id"),
    ],
)
def test_invalid_scan_input_fails_first_state_and_writes_nothing(scanned, request_, field):
    runs = len(scanned.table_items("runs_table"))
    findings = len(scanned.table_items("findings_table"))
    outcome, summary = scanned.run("scan", request_)
    assert (outcome.status, outcome.error) == ("FAILED", "InvalidInput")
    assert field in json.loads(outcome.cause)["errorMessage"]
    assert summary is None
    assert len(scanned.table_items("runs_table")) == runs
    assert len(scanned.table_items("findings_table")) == findings


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: lifecycle.launch(s, ["NoSuchPolicy"]), "UnknownPolicy"),
        (lambda s: lifecycle.launch(s, ["S3BucketPublic", "NoSuchPolicy"]), "UnknownPolicy"),
        (lambda s: lifecycle.launch(s, ["S3BucketPublic"], severity=101), "InvalidInput"),
        (lambda s: lifecycle.launch(s, ["S3BucketPublic"], scope={"regions": "eu-west-1"}), "InvalidInput"),
        (
            lambda s: lifecycle.launch(s, ["S3BucketPublic"], scope={"include_ou_paths": ["prod"]}),
            "InvalidInput",
        ),
        (lambda s: lifecycle.launch(s, ["S3BucketPublic"], scope={"bogus": 1}), "InvalidInput"),
        (lambda s: lifecycle.update(s, "IAMRootMfaDisabled", severity=5), "PolicyNotLaunched"),
    ],
)
def test_bad_lifecycle_requests_raise_named_errors_and_write_nothing(scanned, call, error):
    before = scanned.table_items("policies_table")
    with pytest.raises(QrieError) as raised:
        call(stores(scanned))
    assert type(raised.value).__name__ == error
    assert scanned.table_items("policies_table") == before


def test_per_account_totals_are_rows_of_their_own(scanned):
    """Not one summary item: thousands of accounts would outgrow DynamoDB's 400 KB item. Each
    account's child writes its own; Finalize only adds them up."""
    lifecycle.launch(stores(scanned), S3_POLICIES)
    outcome, summary = scanned.run("scan", {})
    assert outcome.status == "SUCCEEDED"
    run_id = summary["run_id"]
    rows = stores(scanned).runs.summaries(run_id)
    assert set(rows) == {A1}
    totals = scan.policy_totals(counts_of(rows[A1]))["findings"]
    assert totals["evaluated"] == summary["findings"]["evaluated"] > 0
    assert "by_account" not in stores(scanned).runs.header(run_id)["Summary"]
