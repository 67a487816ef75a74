"""AWS Config policies: the region's recording setup (CIS AWS Foundations v3.0 3.3)."""

from __future__ import annotations

from qrie_lib.models import Resource
from qrie_lib.policies.base import COMPLIANT, Policy, Related, Verdict, violation
from qrie_lib.services.config import RECORDING


def not_enabled(region: Resource, _: Related) -> Verdict:
    """CIS 3.3's audit: a recorder whose recordingGroup has allSupported and
    includeGlobalResourceTypes true, and whose status is recording with lastStatus SUCCESS."""
    recorders = region.configuration.get("Recorders") or []
    for recorder in recorders:
        group, status = recorder.get("RecordingGroup") or {}, recorder.get("Status") or {}
        if (
            group.get("allSupported") is True
            and group.get("includeGlobalResourceTypes") is True
            and status.get("recording") is True
            and status.get("lastStatus") == "SUCCESS"
        ):
            return COMPLIANT
    return violation(Recorders=recorders)


POLICIES: tuple[Policy, ...] = (
    Policy(
        policy_id="ConfigNotEnabledInRegion",
        service="config",
        resource_type=RECORDING,
        title="AWS Config is not recording all resources in this region",
        description=(
            "The region has no configuration recorder that records all supported resource types including "
            "global ones (allSupported and includeGlobalResourceTypes) and is recording with last status "
            "SUCCESS."
        ),
        severity=60,
        remediation=(
            "aws configservice put-configuration-recorder --configuration-recorder name=default,roleARN=ROLE "
            "--recording-group allSupported=true,includeGlobalResourceTypes=true; put-delivery-channel; "
            "aws configservice start-configuration-recorder --configuration-recorder-name default."
        ),
        rule=not_enabled,
        compliance=("CIS AWS Foundations v3.0 3.3",),
        needs={
            "Recorders": "DescribeConfigurationRecorders",
            "Recorders.Status": "DescribeConfigurationRecorderStatus",
        },
    ),
)
