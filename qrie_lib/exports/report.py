"""What follows a change of findings: notifications and, where the deployment enables it, the
Security Hub export. After a scan (the scan state machine's Report step, caught so that it never
fails the scan) and after an event batch (for the findings the batch changed; its failure is
logged and never fails the batch: the next scan's Report catches up)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from qrie_lib.aws import Aws, get_aws
from qrie_lib.evaluation import NEW, REOPENED
from qrie_lib.exports.securityhub import SecurityHubExport
from qrie_lib.models import Strict, parse_input
from qrie_lib.notifications import Notifier
from qrie_lib.stores import Stores

Change = tuple[str, str, str]  # (outcome kind, subject, PolicyId), as an Evaluator records them


class ReportInput(Strict):
    run_id: str


def after_scan(event: Any, remaining_ms: Callable[[], int], aws: Aws | None = None) -> dict[str, Any]:
    aws = aws or get_aws()
    request = parse_input(ReportInput, event)
    stores = Stores.of(aws)
    result: dict[str, Any] = {
        "notifications": Notifier(aws, stores).scan_digest(request.run_id, remaining_ms)
    }
    if aws.settings.securityhub_export:
        result["securityhub"] = SecurityHubExport(aws, stores).export_all(remaining_ms).as_dict()
    return result


def after_events(
    changes: Iterable[Change], remaining_ms: Callable[[], int], aws: Aws | None = None
) -> dict[str, Any]:
    aws = aws or get_aws()
    changes = list(changes)
    if not changes:
        return {}
    stores = Stores.of(aws)
    opened = [(key, policy_id) for kind, key, policy_id in changes if kind in (NEW, REOPENED)]
    result: dict[str, Any] = {"notified": Notifier(aws, stores).event_openings(opened) if opened else 0}
    if aws.settings.securityhub_export:
        keys = [(key, policy_id) for _, key, policy_id in changes]
        result["securityhub"] = SecurityHubExport(aws, stores).export_keys(keys, remaining_ms).as_dict()
    return result
