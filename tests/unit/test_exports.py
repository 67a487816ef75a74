"""Exports: OCSF validated by py-ocsf-models, ASFF imported into moto's Security Hub (new,
resolved → ARCHIVED/PASSED, idempotent re-runs, failed entries retried), and streaming exports
whose memory does not grow with the number of findings."""

from __future__ import annotations

import io
import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from moto.securityhub.models import SecurityHubBackend
from py_ocsf_models.events.findings.detection_finding import DetectionFinding
from pydantic import ValidationError

from orchestration.provision import create_tables
from qrie_lib import lifecycle
from qrie_lib.exports import stream
from qrie_lib.exports.ids import finding_uid
from qrie_lib.exports.ocsf import ocsf_record
from qrie_lib.exports.securityhub import BATCH, SecurityHubExport
from qrie_lib.stores import Stores
from qrie_lib.stores.dynamo import to_item
from qrie_lib.stores.findings import Finding, FindingState, ResolvedReason, finding_item
from tests.conftest import CUSTOMER

POLICY = "S3BucketPublic"  # a catalogue policy of S3 buckets
ALWAYS = lambda: 10**9  # noqa: E731 - a task with all the time it needs


def row(n: int, state: str = "ACTIVE", severity: int = 92) -> dict[str, Any]:
    return {
        "arn": f"arn:aws:s3:::bucket-{n}",
        "policy_id": POLICY,
        "state": state,
        "severity": severity,
        "account_id": CUSTOMER,
        "region": "us-east-1",
        "resource_type": "AWS::S3::Bucket",
        "evidence": {"Grants": [{"Grantee": "AllUsers", "Permission": "READ"}], "n": n},
        "first_seen": "2026-01-01T00:00:00.000Z",
        "last_evaluated": "2026-01-02T00:00:00.000Z",
        "resolved_at": "2026-01-02T00:00:00.000Z" if state == "RESOLVED" else None,
        "resolved_reason": "COMPLIANT" if state == "RESOLVED" else None,
        "reopen_count": 0,
    }


# ---- OCSF ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "activity", "status"), [("ACTIVE", 1, 1), ("RESOLVED", 3, 4)])
def test_ocsf_records_are_detection_findings_that_py_ocsf_models_validates(state, activity, status):
    record = ocsf_record(row(1, state))
    parsed = DetectionFinding.model_validate(json.loads(json.dumps(record)))
    assert (parsed.class_uid, parsed.category_uid) == (2004, 2)
    assert (parsed.activity_id, parsed.status_id, parsed.type_uid) == (activity, status, 200400 + activity)
    assert parsed.severity_id == 5  # 92: critical
    assert parsed.finding_info.uid == finding_uid("arn:aws:s3:::bucket-1", CUSTOMER, POLICY)
    assert parsed.resources[0].uid == "arn:aws:s3:::bucket-1"
    assert parsed.cloud.account.uid == CUSTOMER
    # The validation can fail: a record without its finding_info is refused.
    del record["finding_info"]
    with pytest.raises(ValidationError):
        DetectionFinding.model_validate(record)


# ---- streaming -------------------------------------------------------------------------------


def generated(n: int, page: int = 200) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, n, page):
        yield [row(i) for i in range(start, min(n, start + page))]


class Counting(io.TextIOBase):
    """A sink that keeps only the number of characters written."""

    def __init__(self) -> None:
        self.chars = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        return len(text)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "ocsf"])
def test_streamed_exports_are_complete_and_parse(fmt):
    out = io.StringIO()
    assert stream.write(out, fmt, generated(450)) == 450
    text = out.getvalue()
    if fmt == "csv":
        lines = text.splitlines()
        assert lines[0].startswith("arn,policy_id,state")
        assert len(lines) == 451
    elif fmt == "jsonl":
        assert [json.loads(line)["arn"] for line in text.splitlines()][-1] == "arn:aws:s3:::bucket-449"
    else:
        records = json.loads(text)
        assert len(records) == 450
        assert {r["class_uid"] for r in records} == {2004}
    assert json.loads(stream_text("ocsf", 0)) == []


def stream_text(fmt: str, n: int) -> str:
    out = io.StringIO()
    stream.write(out, fmt, generated(n))
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["csv", "ocsf"])
def test_streaming_memory_stays_a_page_not_the_whole_export(fmt):
    n = 10_000
    tracemalloc.start()
    sink = Counting()
    stream.write(sink, fmt, generated(n))
    _, streamed_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    tracemalloc.start()
    held = [r for page in generated(n) for r in page]  # what an all-in-memory export holds
    text = "".join(stream.FORMATS[fmt].line(r) for r in held)
    _, held_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert sink.chars >= len(text)
    assert streamed_peak * 10 < held_peak, (streamed_peak, held_peak)


# ---- Security Hub (moto) ------------------------------------------------------------------------


@pytest.fixture
def stores(aws) -> Stores:
    create_tables(aws)
    stores = Stores.of(aws)
    lifecycle.launch(stores, [POLICY])
    aws.client("securityhub").enable_security_hub()
    return stores


def put(stores: Stores, n: int, state: FindingState = FindingState.ACTIVE) -> Finding:
    r = row(n)
    finding = Finding(
        **{k: v for k, v in r.items() if k not in ("state", "resolved_at", "resolved_reason")},
        account_service=f"{CUSTOMER}_s3",
        service="s3",
        state=state,
        describe_time=r["last_evaluated"],
    )
    stores.findings.client.put_item(TableName=stores.findings.table, Item=to_item(finding_item(finding)))
    return finding


def hub(aws) -> dict[str, dict[str, Any]]:
    client = aws.client("securityhub")
    return {f["Id"]: f for page in client.get_paginator("get_findings").paginate() for f in page["Findings"]}


def test_new_findings_import_in_batches_and_a_rerun_sends_nothing(aws, stores):
    for n in range(BATCH + 30):
        put(stores, n)
    first = SecurityHubExport(aws, stores, sleep=lambda _: None).export_all(ALWAYS)
    assert (first.sent, first.calls, first.failed) == (BATCH + 30, 2, [])
    imported = hub(aws)
    assert len(imported) == BATCH + 30
    one = imported[finding_uid("arn:aws:s3:::bucket-0", CUSTOMER, POLICY)]
    assert (one["RecordState"], one["Compliance"]["Status"]) == ("ACTIVE", "FAILED")
    assert one["AwsAccountId"] == aws.client("sts").get_caller_identity()["Account"]
    assert one["ProductFields"]["qrie/AccountId"] == CUSTOMER
    again = SecurityHubExport(aws, stores, sleep=lambda _: None).export_all(ALWAYS)
    assert (again.sent, again.calls, again.unchanged) == (0, 0, BATCH + 30)


def test_a_resolved_finding_is_archived_and_passed_once(aws, stores):
    kept, fixed = put(stores, 1), put(stores, 2)
    put(stores, 3, FindingState.RESOLVED)  # resolved before any export: never sent
    SecurityHubExport(aws, stores).export_all(ALWAYS)
    assert stores.findings.resolve(fixed, ResolvedReason.COMPLIANT, "2026-01-03T00:00:00.000Z")
    result = SecurityHubExport(aws, stores).export_all(ALWAYS)
    assert (result.sent, result.archived) == (1, 1)
    imported = hub(aws)
    assert len(imported) == 2
    archived = imported[finding_uid(fixed.arn, CUSTOMER, POLICY)]
    assert (archived["RecordState"], archived["Compliance"]["Status"]) == ("ARCHIVED", "PASSED")
    assert imported[finding_uid(kept.arn, CUSTOMER, POLICY)]["RecordState"] == "ACTIVE"
    assert SecurityHubExport(aws, stores).export_all(ALWAYS).sent == 0


def test_throttled_entries_are_retried_a_bounded_number_of_times(aws, stores, monkeypatch):
    for n in range(5):
        put(stores, n)
    real = SecurityHubBackend.batch_import_findings
    throttled = {
        finding_uid("arn:aws:s3:::bucket-1", CUSTOMER, POLICY): 2,
        finding_uid("arn:aws:s3:::bucket-2", CUSTOMER, POLICY): 99,
    }

    def flaky(self, findings):
        """moto's import, with some entries answered as throttled (as FailedFindings)."""
        failing = [f for f in findings if throttled.get(f["Id"], 0) > 0]
        for f in failing:
            throttled[f["Id"]] -= 1
        failed, ok, errors = real(self, [f for f in findings if f not in failing])
        errors += [
            {"Id": f["Id"], "ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}
            for f in failing
        ]
        return failed + len(failing), ok, errors

    monkeypatch.setattr(SecurityHubBackend, "batch_import_findings", flaky)
    sleeps: list[float] = []
    result = SecurityHubExport(aws, stores, sleep=sleeps.append).export_all(ALWAYS)
    assert result.sent == 4  # bucket-1 got through on its third try
    assert [f["Id"] for f in result.failed] == [finding_uid("arn:aws:s3:::bucket-2", CUSTOMER, POLICY)]
    assert result.calls == 4
    assert sleeps == [1.0, 2.0, 4.0]
    # What failed stays unexported: the next export sends it (and only it).
    throttled.clear()
    assert SecurityHubExport(aws, stores).export_all(ALWAYS).sent == 1


# ---- the Security Hub control id of a policy implementing an FSBP control ----------------------

PRODUCT, OPERATOR = "arn:aws:securityhub:us-east-1:111111111111:product/111111111111/default", "111111111111"
FSBP_STANDARD = "standards/aws-foundational-security-best-practices/v/1.0.0"


def test_asff_and_ocsf_carry_the_security_hub_control_id_of_an_fsbp_policy():
    import botocore.session
    from botocore.validate import validate_parameters

    from qrie_lib.exports.asff import BEST_PRACTICE_TYPE, CIS_TYPE, asff_finding

    def asff(policy_id: str) -> dict[str, Any]:
        r = row(1) | {"policy_id": policy_id}
        return asff_finding(r, product=PRODUCT, operator_account=OPERATOR, now="2026-01-03T00:00:00.000Z")

    fsbp_only, cis_and_fsbp, neither = (
        asff("EC2SecurityGroupSshOpenToWorld"),
        asff("CloudTrailLogFileValidationDisabled"),
        asff("S3BucketPublic"),
    )
    assert fsbp_only["Compliance"]["SecurityControlId"] == "EC2.13"
    assert fsbp_only["Compliance"]["AssociatedStandards"] == [{"StandardsId": FSBP_STANDARD}]
    assert fsbp_only["Types"] == [BEST_PRACTICE_TYPE]  # an FSBP reference alone is not CIS
    assert (cis_and_fsbp["Compliance"]["SecurityControlId"], cis_and_fsbp["Types"]) == (
        "CloudTrail.4",
        [CIS_TYPE],
    )
    assert "SecurityControlId" not in neither["Compliance"]  # S3BucketPublic implements no control exactly
    hub = botocore.session.get_session().get_service_model("securityhub")
    shape = hub.operation_model("BatchImportFindings").input_shape
    validate_parameters({"Findings": [fsbp_only, cis_and_fsbp, neither]}, shape)  # Security Hub's names

    record = ocsf_record(row(1) | {"policy_id": "EC2SecurityGroupSshOpenToWorld"})
    DetectionFinding.model_validate(json.loads(json.dumps(record)))
    assert record["unmapped"]["compliance_control"] == {"control": "EC2.13", "standards": [FSBP_STANDARD]}
    assert "compliance_control" not in ocsf_record(row(1))["unmapped"]
