"""The local scheduler fires the declared schedules at EventBridge Scheduler's times, with a
frozen clock (no test waits)."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta

import pytest

from orchestration.local_scheduler import LocalScheduler, cron_fields, describe, next_fire
from orchestration.schedules import SCHEDULES, Schedule
from qrie_lib.errors import InvalidSchedule

# The scheduler's behaviour is tested on fixed schedules (the declared set changes); every declared
# expression is checked to fire below.
WEEKLY = Schedule(
    "weekly-inventory",
    "inventory",
    "cron(0 0 ? * SAT *)",
    "UTC",
    {"service": "all", "scan_type": "anti-entropy"},
)
DAILY = Schedule("daily-scan", "scan", "cron(0 4 * * ? *)", "UTC", {})
TWO = (WEEKLY, DAILY)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # The declared ones: Saturday 00:00 UTC (2025-03-01 is a Saturday), 04:00 UTC daily.
        (WEEKLY.expression, "2025-02-26T12:00:00", "2025-03-01T00:00:00"),
        (WEEKLY.expression, "2025-03-01T00:00:00", "2025-03-08T00:00:00"),  # strictly after
        (DAILY.expression, "2025-02-26T03:59:00", "2025-02-26T04:00:00"),
        (DAILY.expression, "2025-02-26T04:00:00", "2025-02-27T04:00:00"),
        # AWS numbers days of week from Sunday = 1: 2-6 is MON-FRI.
        ("cron(30 9 ? * 2-6 *)", "2025-03-01T00:00:00", "2025-03-03T09:30:00"),
        ("cron(0 0 ? * 1 *)", "2025-03-01T00:00:00", "2025-03-02T00:00:00"),  # 1 = Sunday
        ("cron(0 0 ? * MON-WED *)", "2025-03-05T01:00:00", "2025-03-10T00:00:00"),
        ("cron(0/15 * * * ? *)", "2025-03-01T10:07:00", "2025-03-01T10:15:00"),
        ("cron(0 12 1 JAN,JUL ? *)", "2025-03-01T00:00:00", "2025-07-01T12:00:00"),
        ("cron(0 0 1 1 ? 2027)", "2025-03-01T00:00:00", "2027-01-01T00:00:00"),
    ],
)
def test_next_fire_follows_eventbridge_scheduler_cron(expression, after, expected):
    assert next_fire(expression, "UTC", at(after)) == at(expected)


def test_next_fire_in_a_time_zone_is_returned_in_utc():
    # 04:00 in New York in March 2025 (EST until the 9th) is 09:00 UTC.
    assert next_fire("cron(0 4 * * ? *)", "America/New_York", at("2025-03-03T00:00:00")) == at(
        "2025-03-03T09:00:00"
    )


def test_a_schedule_whose_years_are_over_never_fires():
    assert next_fire("cron(0 0 1 1 ? 2020)", "UTC", at("2025-03-01T00:00:00")) is None


@pytest.mark.parametrize(
    "expression",
    [
        "rate(5 minutes)",
        "cron(0 0 * * *)",  # five fields: Unix cron, not AWS's
        "cron(0 0 * * * *)",  # neither day field is ?
        "cron(0 0 ? * ? *)",  # both are
        "cron(0 0 L * ? *)",
        "cron(0 0 ? * 6#3 *)",
        "cron(0 0 1 1 ? 20x0)",
    ],
)
def test_expressions_it_cannot_fire_are_refused_by_name(expression):
    with pytest.raises(InvalidSchedule):
        cron_fields(expression)


def scheduler(clock: Clock, tmp_path, started: list[str]) -> LocalScheduler:
    def start(schedule: Schedule) -> str:
        started.append(schedule.name)
        return f"arn:aws:states:us-east-1:123456789012:execution:qrie-{schedule.state_machine}:{len(started)}"

    return LocalScheduler(start, tmp_path, schedules=TWO, clock=clock, say=lambda _: None)


def test_each_schedule_fires_once_when_due_with_its_declared_target_and_input(tmp_path):
    clock = Clock(at("2025-02-28T23:00:00"))  # a Friday
    inputs = []

    def start(schedule: Schedule) -> str:
        inputs.append((schedule.state_machine, schedule.input))
        return "arn:x:1"

    sched = LocalScheduler(start, tmp_path, schedules=TWO, clock=clock, say=lambda _: None)
    assert sched.tick() == []  # the first start: nothing was missed
    assert sched.next_fires() == {
        "weekly-inventory": at("2025-03-01T00:00:00"),
        "daily-scan": at("2025-03-01T04:00:00"),
    }
    clock.now = at("2025-03-01T00:00:00")
    assert sched.tick() == ["arn:x:1"]
    assert inputs == [("inventory", {"service": "all", "scan_type": "anti-entropy"})]
    assert sched.tick() == []  # not twice
    clock.now = at("2025-03-01T04:00:30")
    sched.tick()
    assert inputs[1] == ("scan", {})
    assert sched.seconds_to_next() == 60.0  # bounded, so a late wake-up re-reads the clock


def test_a_fire_missed_while_off_runs_once_at_the_next_start(tmp_path):
    started: list[str] = []
    clock = Clock(at("2025-02-26T12:00:00"))
    scheduler(clock, tmp_path, started)  # first start records when it was up
    # Off for three weeks: three Saturdays and ~21 daily scans were missed.
    clock.now = at("2025-03-19T12:00:00")
    again = scheduler(clock, tmp_path, started)
    assert len(again.tick()) == 2
    assert sorted(started) == ["daily-scan", "weekly-inventory"]  # once each, not once per missed fire
    assert again.tick() == []
    assert again.next_fires()["weekly-inventory"] == at("2025-03-22T00:00:00")


def test_the_fire_times_are_kept_private_whatever_the_umask(tmp_path):
    umask = os.umask(0o022)
    try:
        scheduler(Clock(at("2025-02-26T12:00:00")), tmp_path, [])
    finally:
        os.umask(umask)
    assert [(p.name, stat.S_IMODE(p.stat().st_mode)) for p in tmp_path.iterdir()] == [
        ("schedules.json", 0o600)
    ]


def test_a_start_that_fails_is_tried_again_at_the_next_tick(tmp_path):
    clock = Clock(at("2025-02-28T23:00:00"))
    calls = []

    def start(schedule: Schedule) -> str:
        calls.append(schedule.name)
        if len(calls) == 1:
            raise ConnectionError("endpoint not ready")
        return "arn:x:2"

    sched = LocalScheduler(start, tmp_path, schedules=(WEEKLY,), clock=clock, say=lambda _: None)
    clock.now += timedelta(hours=2)
    assert sched.tick() == []
    assert sched.tick() == ["arn:x:2"]
    assert calls == ["weekly-inventory", "weekly-inventory"]


def test_every_declared_schedule_fires_locally():
    for schedule in SCHEDULES:
        assert next_fire(schedule.expression, schedule.timezone, at("2025-02-26T12:00:00")) is not None
    weekly = next(s for s in SCHEDULES if s.name == "weekly-inventory")
    assert next_fire(weekly.expression, weekly.timezone, at("2025-02-26T12:00:00")) == at(
        "2025-03-01T00:00:00"
    )


def test_describe_lists_next_fire_times():
    rows = describe(
        at("2025-02-26T12:00:00"), [(s.name, s.expression, s.timezone, s.state_machine) for s in TWO]
    )
    assert {r["name"]: r["next_fire"] for r in rows} == {
        "weekly-inventory": "2025-03-01T00:00:00.000Z",
        "daily-scan": "2025-02-27T04:00:00.000Z",
    }
