"""OCSF Detection Finding (class 2004, OCSF 1.5 as py-ocsf-models implements it), built with the
models Prowler uses, so every record is validated by them as it is made.

Mapping: ``finding_info.uid`` is the id Security Hub gets too (``ids.finding_uid``); ACTIVE is
activity Create / status New, RESOLVED activity Close / status Resolved (``status_detail`` says
why); severity bands map to ``severity_id`` and the 0–100 severity is the ``risk_score``; first
seen is ``FirstSeen``, last seen (and ``time``) when a scan last confirmed it, modified when it
last changed (``LastEvaluated``); the affected resource, its account (``cloud.account.name`` the
account's name, its id when it has none) and region follow the cloud profile; CIS references and
the lifecycle counters go in ``unmapped`` (OCSF's place for attributes without a schema field)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from py_ocsf_models import OCSF_VERSION
from py_ocsf_models.events.findings.activity_id import ActivityID
from py_ocsf_models.events.findings.detection_finding import DetectionFinding
from py_ocsf_models.events.findings.detection_finding_type_id import DetectionFindingTypeID
from py_ocsf_models.events.findings.severity_id import SeverityID
from py_ocsf_models.events.findings.status_id import StatusID
from py_ocsf_models.objects.account import Account, TypeID
from py_ocsf_models.objects.cloud import Cloud
from py_ocsf_models.objects.finding_info import FindingInformation
from py_ocsf_models.objects.metadata import Metadata
from py_ocsf_models.objects.product import Product
from py_ocsf_models.objects.remediation import Remediation
from py_ocsf_models.objects.resource_details import ResourceDetails

from qrie_lib.exports.ids import finding_uid
from qrie_lib.frameworks.registry import FSBP_STANDARDS_ID, security_control_ids
from qrie_lib.policies.base import band
from qrie_lib.policies.registry import get_policy

SCHEMA_VERSION = OCSF_VERSION
PRODUCT = Product(name="Qrie", vendor_name="Qrie", uid="qrie")
SEVERITY_IDS = {
    "critical": SeverityID.Critical,
    "high": SeverityID.High,
    "medium": SeverityID.Medium,
    "low": SeverityID.Low,
}
# (activity, type, status) by finding state; another state (e.g. SUPPRESSED) maps to Other.
BY_STATE = {
    "ACTIVE": (ActivityID.Create, DetectionFindingTypeID.Create, StatusID.New),
    "RESOLVED": (ActivityID.Close, DetectionFindingTypeID.Close, StatusID.Resolved),
    "SUPPRESSED": (ActivityID.Update, DetectionFindingTypeID.Update, StatusID.Suppressed),
}


def _epoch_ms(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


def detection_finding(row: dict[str, Any]) -> DetectionFinding:
    """One finding row (``qrie_lib.views.finding_row``) as a validated OCSF Detection Finding."""
    policy = get_policy(row["policy_id"])
    activity, type_uid, status = BY_STATE.get(
        row["state"], (ActivityID.Other, DetectionFindingTypeID.Other, StatusID.Other)
    )
    severity_id = SEVERITY_IDS[band(row["severity"])]
    first, changed = _epoch_ms(row["first_seen"]), _epoch_ms(row["last_evaluated"])
    # Last seen: when a scan last confirmed it, which an unchanged re-scan does without a write.
    last = _epoch_ms(row.get("last_confirmed") or row["last_evaluated"])
    partition = row["arn"].split(":")[1] if row["arn"].startswith("arn:") else "aws"
    return DetectionFinding(
        activity_id=activity,
        activity_name=activity.name,
        type_uid=type_uid,
        type_name=f"Detection Finding: {activity.name}",
        severity_id=severity_id,
        severity=severity_id.name,
        risk_score=row["severity"],
        status_id=status,
        status=status.name,
        status_detail=row.get("resolved_reason"),
        time=last,
        message=policy.title,
        metadata=Metadata(
            product=PRODUCT, version=SCHEMA_VERSION, event_code=policy.policy_id, profiles=["cloud"]
        ),
        finding_info=FindingInformation(
            uid=finding_uid(row["arn"], row["account_id"], row["policy_id"]),
            title=policy.title,
            desc=policy.description,
            types=list(policy.compliance) or None,
            created_time=first,
            first_seen_time=first,
            last_seen_time=last,
            modified_time=changed,
        ),
        cloud=Cloud(
            provider="AWS",
            region=row["region"],
            account=Account(
                name=row.get("account_name") or row["account_id"],  # the schema requires a name
                uid=row["account_id"],
                type_id=TypeID.AWS_Account,
            ),
        ),
        resources=[
            ResourceDetails(
                uid=row["arn"],
                type=row["resource_type"],
                region=row["region"],
                cloud_partition=partition,
                data={"evidence": row.get("evidence") or {}},
            )
        ],
        remediation=Remediation(desc=policy.remediation),
        unmapped={
            "compliance": list(policy.compliance),
            # OCSF's compliance object (control, standards); Detection Finding has no attribute for it.
            **(
                {"compliance_control": {"control": controls[0], "standards": [FSBP_STANDARDS_ID]}}
                if (controls := security_control_ids(policy))
                else {}
            ),
            "reopen_count": row.get("reopen_count", 0),
            "resolved_at": row.get("resolved_at"),
        },
    )


def ocsf_record(row: dict[str, Any]) -> dict[str, Any]:
    """The finding as OCSF JSON (unset optional attributes left out)."""
    return detection_finding(row).model_dump(mode="json", exclude_none=True)
