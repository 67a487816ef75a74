"""Every registered event against a record of the shape CloudTrail documents, as EventBridge delivers
it (tests/data/cloudtrail/). Each file holds the event and, under ``qrie_expected`` (stripped before
parsing), what the processor must make of it: its status, the touches, or the error it fails with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qrie_lib.errors import MalformedEvent
from qrie_lib.events import RULES
from qrie_lib.models import GLOBAL
from qrie_lib.realtime import Status, read
from qrie_lib.services.registry import service_of_type

CORPUS = Path(__file__).parents[1] / "data" / "cloudtrail"
FILES = sorted(CORPUS.rglob("*.json"))


def load(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    data = json.loads(path.read_text())
    return data.pop("qrie_expected"), data


def record_of(event: dict[str, Any]) -> dict[str, Any]:
    return event.get("detail", event)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CORPUS)) for p in FILES])
def test_a_corpus_record_touches_what_it_expects(path):
    expected, event = load(path)
    outcome = read("m-1", json.dumps(event))

    assert outcome.status is Status(expected["status"]), outcome.reason
    if outcome.status is Status.FAILED:
        assert isinstance(outcome.error, MalformedEvent)
        assert expected["error"] in str(outcome.error)
        return
    touches = [
        [t.touch.resource_type, t.touch.resource_id, *([t.touch.by] if t.touch.by else [])]
        for t in outcome.targets
    ]
    assert touches == expected["touches"]
    record = record_of(event)
    account = record.get("recipientAccountId") or event["account"]
    for target in outcome.targets:
        regional = service_of_type(target.touch.resource_type).regional
        assert (target.account_id, target.region) == (account, record["awsRegion"] if regional else GLOBAL)


def test_every_registered_event_has_a_successful_corpus_record():
    """A new event needs a record of the shape CloudTrail documents before it can be registered."""
    covered = set()
    for path in FILES:
        expected, event = load(path)
        record = record_of(event)
        if expected["status"] == "processed" and not record.get("errorCode"):
            covered.add((record["eventSource"], record["eventName"]))
    assert sorted(set(RULES) - covered) == []


def test_the_corpus_has_the_variants_aws_sends():
    records = [(load(p)[0], record_of(load(p)[1]), load(p)[1]) for p in FILES]
    assert any("recipientAccountId" not in r and e["status"] == "processed" for e, r, _ in records)
    assert any(r.get("errorCode") and e["status"] == "ignored" for e, r, _ in records)
    assert any(r.get("userIdentity", {}).get("type") == "Root" for _, r, _ in records)
    assert any(r.get("userIdentity", {}).get("type") == "AssumedRole" for _, r, _ in records)
    assert any("detail" not in event and e["status"] == "failed" for e, _, event in records)
    assert {r["eventVersion"] for _, r, _ in records} >= {"1.08", "1.09"}
