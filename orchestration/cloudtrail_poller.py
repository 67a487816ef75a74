"""Changes seen without EventBridge: ``qrie local up`` polls each onboarded account's CloudTrail
event history (LookupEvents, management write events) per region, and puts what is new on the
events queue in EventBridge's envelope, then drains it through the event processor, as the
deployed pipeline's EventBridge rule and SQS event source would.

How late a change appears: CloudTrail's own delay (its user guide: "CloudTrail typically delivers
logs within an average of about 5 minutes of an API call. This time is not guaranteed."), plus up
to one poll interval. Each lookup starts ``LOOK_BACK`` before the previous one ended, so an event
that reached the history late is still found; events are de-duplicated by event id.

LookupEvents allows two requests per second per account and Region (its API reference): the
poller keeps its calls of one account and region at least ``LOOKUP_SPACING_S`` apart."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from orchestration import events_queue
from orchestration.cloudtrail import envelope
from qrie_lib.aws import Aws, error_code
from qrie_lib.inventory import enabled_regions
from qrie_lib.models import Account
from qrie_lib.stores import Stores

LOOKUP_SPACING_S = 0.5  # two LookupEvents a second per account and region
LOOK_BACK = timedelta(minutes=15)  # events reach the history late: look again this far back
EVERY_S = 60.0  # between two polls of every account and region

Now = Callable[[], datetime]


@dataclass
class Source:
    """One account and region's history: where the next lookup starts, the event ids already fed."""

    since: datetime
    seen: dict[str, datetime] = field(default_factory=dict)  # event id -> event time
    last_call: float = 0.0


@dataclass
class PollRound:
    queued: int  # new events put on the queue
    polled_until: datetime
    failed: dict[str, str]  # "account region" -> error code, for sources that could not be read


class CloudTrailPoller:
    def __init__(
        self,
        aws: Aws,
        now: Now = lambda: datetime.now(UTC),
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self.aws, self.now, self.pause = aws, now, pause
        self.started = now()
        self.sources: dict[tuple[str, str], Source] = {}
        self.polled_until: datetime | None = None

    def poll(self) -> PollRound:
        """One round over every active account and its regions; queues and drains what is new."""
        until, bodies, failed = self.now(), [], {}
        for account in Stores.of(self.aws).accounts.active():
            for region in enabled_regions(account, self.aws.settings):
                try:
                    bodies += self.lookup(account, region, until)
                except ClientError as exc:  # one account's refusal never stops the others'
                    failed[f"{account.account_id} {region}"] = error_code(exc) or "Error"
        if bodies:
            events_queue.send_bodies(self.aws, bodies)
            events_queue.drain(self.aws)
        self.polled_until = until
        return PollRound(len(bodies), until, failed)

    def lookup(self, account: Account, region: str, until: datetime) -> list[str]:
        """The envelopes of the events of one account and region not fed before."""
        source = self.sources.setdefault((account.account_id, region), Source(self.started))
        client = self.aws.customer_client(
            account.account_id, "cloudtrail", region, account.external_id, account.role_arn
        )
        request: dict[str, Any] = {
            "StartTime": source.since - LOOK_BACK,
            "EndTime": until,
            "LookupAttributes": [{"AttributeKey": "ReadOnly", "AttributeValue": "false"}],
            "MaxResults": 50,
        }
        bodies = []
        while True:
            self.pace(source)
            answer = client.lookup_events(**request)
            for event in answer.get("Events", []):
                if event["EventId"] in source.seen or "CloudTrailEvent" not in event:
                    continue
                source.seen[event["EventId"]] = event["EventTime"]
                bodies.append(json.dumps(envelope(json.loads(event["CloudTrailEvent"]))))
            if not answer.get("NextToken"):
                break
            request["NextToken"] = answer["NextToken"]
        source.since = until
        source.seen = {i: t for i, t in source.seen.items() if t >= until - 2 * LOOK_BACK}  # bounded
        return bodies

    def pace(self, source: Source) -> None:
        wait = source.last_call + LOOKUP_SPACING_S - time.monotonic()
        if wait > 0:
            self.pause(wait)
        source.last_call = time.monotonic()

    def behind_s(self) -> float | None:
        """How far behind now the history has been read (None: not yet polled)."""
        return None if self.polled_until is None else (self.now() - self.polled_until).total_seconds()

    def run(self, stopping: threading.Event, say: Callable[[str], None], every_s: float = EVERY_S) -> None:
        """Poll until ``stopping``; a line when a round queued events or could not read a source."""
        while not stopping.is_set():
            try:
                round_ = self.poll()
            except Exception as exc:
                say(f"cloudtrail: poll failed: {type(exc).__name__}: {exc}")
            else:
                if round_.queued or round_.failed:
                    unread = f"; unread: {', '.join(f'{k} ({v})' for k, v in round_.failed.items())}"
                    say(
                        f"cloudtrail: {round_.queued} new events processed, history read up to "
                        f"{round_.polled_until:%H:%M:%S} UTC (CloudTrail itself is ~5 min behind)"
                        + (unread if round_.failed else "")
                    )
            stopping.wait(every_s)
