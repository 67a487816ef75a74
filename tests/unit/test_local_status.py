"""What ``qrie local up`` prints comes from the operator changes: one line per run start, run end
and failed item, events counted and reported when they changed."""

from __future__ import annotations

from orchestration.local_status import LocalStatus
from qrie_lib.stores.dynamo import to_item

RUNS, QUEUE = "qrie_runs", "qrie_events"


def run_row(item: str, **attributes: object) -> dict:
    return {"ddb": RUNS, "key": {}, "item": to_item({"RunId": "inventory/x", "Item": item, **attributes})}


def test_runs_items_and_events_each_make_one_readable_line():
    lines: list[str] = []
    status = LocalStatus(RUNS, QUEUE, lines.append)
    status(run_row("#run", Status="RUNNING"))
    status(run_row("#run", Status="RUNNING", AccountsDone=1))  # rewritten: not announced twice
    status(run_row("1/s3/global", Status="SUCCEEDED"))
    status(run_row("1/ec2/us-east-1", Status="FAILED", Error="AccountAccessDenied", Cause="cannot assume"))
    status(run_row("#run", Status="SUCCEEDED_WITH_FAILURES", Summary={"message": "1 of 3 items failed"}))
    status({"ddb": "qrie_resources", "key": {}, "item": to_item({"Status": "RUNNING"})})  # not a run
    assert lines == [
        "run started   inventory/x",
        "  item failed inventory/x 1/ec2/us-east-1: AccountAccessDenied: cannot assume",
        "run finished  inventory/x: SUCCEEDED_WITH_FAILURES; 1 of 3 items failed",
    ]
    lines.clear()
    status.flush()
    assert lines == []  # no events: nothing to say
    for _ in range(3):
        status({"sqs": QUEUE, "id": "m", "body": None})  # processed: deleted from the queue
    status({"sqs": QUEUE, "id": "n", "body": "{}"})  # queued: not processed yet
    status({"sqs": f"{QUEUE}_dlq", "id": "o", "body": "{}"})
    status.flush()
    status.flush()
    assert lines == ["events: 3 processed, 1 dead-lettered"]
