"""The local runtime runs inventory items of different accounts at the same time for their customer
calls (the Map's declared concurrency), while their operator writes stay one at a time; the
inventory and its findings are those of a run with one call at a time."""

from __future__ import annotations

import pytest

from orchestration.runtime import LocalRuntime
from orchestration.simulated_org import SimulatedOrg
from qrie_lib import executions
from qrie_lib.settings import Settings
from tests.emulator_gate import Gate

pytestmark = pytest.mark.slow


def test_items_of_two_accounts_make_their_customer_calls_at_once(monkeypatch):
    with LocalRuntime(Settings(), fast_retries=True) as runtime:
        assert runtime.aws is not None
        org = SimulatedOrg(runtime.aws, 2)
        org.create()
        aws = runtime.aws
        gate = Gate(lambda in_flight: sum(1 for n in in_flight.values() if n) >= 2)
        with gate.installed(monkeypatch):
            arn = executions.start(aws, "inventory", {"service": "s3"})
            outcome = executions.follow(aws, "inventory", arn, poll_s=0.05)
        assert outcome.status == "SUCCEEDED", outcome.cause
        # Both accounts' roles had calls in flight together: under one lock per handler, never.
        assert gate.max_keys == 2
        summary = executions.run_summary(aws, "inventory", arn) or {}
        owned = sum(len(org.session(a).client("s3").list_buckets()["Buckets"]) for a in org.account_ids)
        assert summary["resources_by_type"]["AWS::S3::Bucket"] == owned
