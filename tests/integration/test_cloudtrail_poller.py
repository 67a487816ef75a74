"""The CloudTrail poller of ``qrie local up`` feeds the event processor: a change recorded in an
account's event history (LookupEvents, emulated) is queued, processed and stored once, however
often the history is read; one account and region's lookups stay two a second apart."""

from __future__ import annotations

import pytest

from orchestration import emulation
from orchestration.cloudtrail_poller import LOOKUP_SPACING_S, CloudTrailPoller
from orchestration.demo import make_bucket_public
from qrie_lib.stores import Stores
from tests.integration.conftest import inventoried_org

pytestmark = pytest.mark.slow


def test_a_change_in_the_event_history_is_processed_once():
    with inventoried_org(1) as harness:
        aws, account = harness.aws, harness.org.account_ids[0]
        pauses: list[float] = []
        poller = CloudTrailPoller(aws, pause=pauses.append)
        change = make_bucket_public(harness.org.session(account).client("s3"), account)
        [event] = change.events
        emulation.record_trail_event(event["detail"])

        first = poller.poll()
        assert first.queued == 1
        assert first.failed == {}
        assert poller.behind_s() is not None
        row = aws.client("dynamodb").get_item(
            TableName=aws.settings.resources_table,
            Key={"AccountService": {"S": f"{account}_s3"}, "ARN": {"S": change.arn}},
        )["Item"]
        assert row["RunId"]["S"] == f"event:{event['detail']['eventID']}"  # described by the processor
        bucket = Stores.of(aws).resources.get(account, "s3", change.arn)
        assert bucket is not None
        assert any("AllUsers" in str(g) for g in bucket.configuration["Acl"]["Grants"])

        again = poller.poll()  # the event is still in the looked-back window: not fed twice
        assert again.queued == 0

        # The same account and region asked twice in a row: the second lookup waits its turn.
        onboarded = Stores.of(aws).accounts.get(account)
        assert onboarded is not None
        pauses.clear()
        for _ in range(2):
            assert poller.lookup(onboarded, "us-east-1", again.polled_until) == []
        assert pauses  # at least the second waited (the first too, if the last poll was that recent)
        assert all(0 < p <= LOOKUP_SPACING_S for p in pauses)
