"""CloudTrail management events as EventBridge delivers them ("AWS API Call via CloudTrail"), for the
demo, the tests and ``qrie events send``: the shape AWS sends, with the caller an administrator
working through the organisation's access role."""

from __future__ import annotations

import uuid
from typing import Any

from qrie_lib.events import DETAIL_TYPE
from qrie_lib.timeutil import now_iso

CLI_AGENT = "aws-cli/2.17.3 md/awscrt#0.20.11 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.8"
SOURCE_IP = "203.0.113.24"  # TEST-NET-3: a documentation address
CALLER_ROLE = "OrganizationAccountAccessRole"
CALLER = "jane.doe"


def caller_identity(account_id: str) -> dict[str, Any]:
    """An administrator's assumed-role session, as CloudTrail records it."""
    role = f"arn:aws:iam::{account_id}:role/{CALLER_ROLE}"
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLEQRIE{account_id[-4:]}:{CALLER}",
        "arn": f"arn:aws:sts::{account_id}:assumed-role/{CALLER_ROLE}/{CALLER}",
        "accountId": account_id,
        "accessKeyId": "ASIAEXAMPLEQRIE00001",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": f"AROAEXAMPLEQRIE{account_id[-4:]}",
                "arn": role,
                "accountId": account_id,
                "userName": CALLER_ROLE,
            },
            "attributes": {"creationDate": now_iso(), "mfaAuthenticated": "true"},
        },
    }


def record(
    event_name: str,
    *,
    event_source: str,
    account_id: str,
    region: str,
    request: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    event_time: str | None = None,
    error_code: str | None = None,
    user_identity: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A bare CloudTrail record of a management API call."""
    detail: dict[str, Any] = {
        "eventVersion": "1.10",
        "userIdentity": user_identity or caller_identity(account_id),
        "eventTime": event_time or now_iso(),
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": SOURCE_IP,
        # S3's data plane logs the agent in brackets.
        "userAgent": f"[{CLI_AGENT}]" if event_source == "s3.amazonaws.com" else CLI_AGENT,
        "requestParameters": request,
        "responseElements": response,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account_id,
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": f"{event_source.partition('.')[0]}.{region}.amazonaws.com",
        },
    }
    if error_code:
        detail |= {"errorCode": error_code, "errorMessage": f"{error_code} (simulated)"}
    return detail


def envelope(detail: dict[str, Any]) -> dict[str, Any]:
    """Wrap a bare CloudTrail record the way EventBridge delivers it."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": "aws." + str(detail.get("eventSource", "")).partition(".")[0],
        "account": detail.get("recipientAccountId"),
        "time": _second(detail.get("eventTime") or now_iso()),
        "region": detail.get("awsRegion"),
        "resources": [],
        "detail": detail,
    }


def api_call(event_name: str, **kwargs: Any) -> dict[str, Any]:
    """An EventBridge-wrapped CloudTrail event; keyword arguments as for ``record``."""
    return envelope(record(event_name, **kwargs))


def is_envelope(data: Any) -> bool:
    return isinstance(data, dict) and "detail-type" in data


def _second(timestamp: str) -> str:
    # EventBridge's "time" has second precision ("2026-11-26T04:00:00Z").
    return timestamp[:19] + "Z" if len(timestamp) >= 19 else timestamp


# ---- the calls the demo and the tests make ---------------------------------------------------


def s3_call(event_name: str, account_id: str, bucket: str, region: str = "us-east-1", **request: Any) -> dict:
    return api_call(
        event_name,
        event_source="s3.amazonaws.com",
        account_id=account_id,
        region=region,
        request={"bucketName": bucket, "Host": f"{bucket}.s3.{region}.amazonaws.com", **request},
    )


def ec2_call(
    event_name: str,
    account_id: str,
    region: str,
    request: dict[str, Any],
    response: dict[str, Any] | None = None,
) -> dict:
    return api_call(
        event_name,
        event_source="ec2.amazonaws.com",
        account_id=account_id,
        region=region,
        request=request,
        response={"requestId": str(uuid.uuid4()), "_return": True, **(response or {})},
    )


def iam_call(
    event_name: str, account_id: str, request: dict[str, Any], response: dict[str, Any] | None = None
) -> dict:
    return api_call(
        event_name,
        event_source="iam.amazonaws.com",
        account_id=account_id,
        region="us-east-1",  # IAM is global; CloudTrail records its calls in us-east-1
        request=request,
        response=response,
    )
