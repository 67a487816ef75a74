"""The schedules of ``orchestration/schedules.py`` fire in ``qrie local up`` as EventBridge
Scheduler fires them in AWS: the same ``cron(...)`` expressions, time zones and inputs.

Expressions are EventBridge Scheduler's six fields (minutes hours day-of-month month day-of-week
year, one of the two day fields ``?``, days of week 1-7 = SUN-SAT); they are translated to the
five fields croniter iterates (``?`` is ``*``, days of week 0-6), plus a year filter. ``L``,
``W`` and ``#`` are refused by name (no declared schedule uses them).

The last fire time of each schedule is kept in the state directory: a fire missed while the
machine was off runs once at the next start. The clock is injectable, so tests never wait."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from croniter import croniter

from orchestration.schedules import SCHEDULES, Schedule
from orchestration.state_dir import write_private
from qrie_lib.errors import InvalidSchedule
from qrie_lib.timeutil import iso, parse_iso

Clock = Callable[[], datetime]
STATE_FILE = "schedules.json"
NAMES = re.compile(r"JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|SUN|MON|TUE|WED|THU|FRI|SAT")
LAST_YEAR = 2199  # EventBridge Scheduler's year range is 1970-2199
MAX_WAIT_S = 60.0  # re-read the clock at least this often (a suspended laptop wakes up late)


def utc_now() -> datetime:
    return datetime.now(UTC)


def cron_fields(expression: str) -> tuple[str, set[int] | None]:
    """``cron(m h dom mon dow year)`` as (croniter's five fields, the years allowed or None for any)."""
    text = expression.strip()
    if not (text.startswith("cron(") and text.endswith(")")):
        raise InvalidSchedule(f"{expression!r}: only cron(...) expressions fire locally")
    fields = text[5:-1].split()
    if len(fields) != 6:
        raise InvalidSchedule(f"{expression!r}: cron takes 6 fields, got {len(fields)}")
    minutes, hours, day, month, weekday, year = fields
    if (day == "?") == (weekday == "?"):
        raise InvalidSchedule(f"{expression!r}: exactly one of day-of-month and day-of-week must be ?")
    for value in fields:
        if any(c in NAMES.sub("", value.upper()) for c in "LW#"):
            raise InvalidSchedule(f"{expression!r}: L, W and # are not supported locally")
    day, weekday = ("*" if f == "?" else f for f in (day, weekday))
    return f"{minutes} {hours} {day} {month} {_zero_based_weekdays(weekday)}", _years(year, expression)


def _zero_based_weekdays(field: str) -> str:
    """AWS counts days of week 1-7 from Sunday; cron 0-6."""

    def shift(token: str) -> str:
        return str(int(token) - 1) if token.isdigit() else token

    parts = []
    for item in field.split(","):
        base, slash, step = item.partition("/")
        bounds = "-".join(shift(t) for t in base.split("-"))
        parts.append(f"{bounds}{slash}{step}")
    return ",".join(parts)


def _years(field: str, expression: str) -> set[int] | None:
    if field == "*":
        return None
    years: set[int] = set()
    try:
        for item in field.split(","):
            first, _, last = item.partition("-")
            years.update(range(int(first), int(last or first) + 1))
    except ValueError:
        raise InvalidSchedule(f"{expression!r}: year must be *, a year, a range or a list") from None
    return years


def next_fire(expression: str, timezone: str, after: datetime) -> datetime | None:
    """The first fire time strictly after ``after`` (UTC), or None if it never fires again."""
    fields, years = cron_fields(expression)
    zone = ZoneInfo(timezone)
    times = croniter(fields, after.astimezone(zone))
    while True:
        candidate: datetime = times.get_next(datetime)
        if candidate.year > LAST_YEAR or (years is not None and candidate.year > max(years)):
            return None
        if years is None or candidate.year in years:
            return candidate.astimezone(UTC)


class LocalScheduler:
    """``tick()`` starts every schedule whose next fire time has come (once, however many fires
    were missed) and records when; ``run(stop)`` ticks until ``stop`` is set."""

    def __init__(
        self,
        start: Callable[[Schedule], str],
        state_dir: Path | None = None,
        schedules: tuple[Schedule, ...] = SCHEDULES,
        clock: Clock = utc_now,
        say: Callable[[str], None] = print,
    ) -> None:
        self.start = start
        self.schedules = schedules
        self.clock = clock
        self.say = say
        self.path = state_dir / STATE_FILE if state_dir else None
        for schedule in schedules:
            cron_fields(schedule.expression)  # a bad expression fails at start, not at its fire time
        self.last = self._read()
        now = clock()
        for schedule in schedules:  # first start: no fire was missed before it
            self.last.setdefault(schedule.name, now)
        self._write()

    def next_fires(self) -> dict[str, datetime | None]:
        return {s.name: next_fire(s.expression, s.timezone, self.last[s.name]) for s in self.schedules}

    def tick(self) -> list[str]:
        """Start what is due; the execution ARNs started."""
        now = self.clock()
        started = []
        for schedule in self.schedules:
            due = next_fire(schedule.expression, schedule.timezone, self.last[schedule.name])
            if due is None or due > now:
                continue
            try:
                arn = self.start(schedule)
            except Exception as exc:  # reported; the next tick tries again
                self.say(f"schedule {schedule.name}: could not start: {exc}")
                continue
            self.last[schedule.name] = now
            self._write()
            self.say(f"schedule {schedule.name} (due {iso(due)}) started {arn.rsplit(':', 1)[-1]}")
            started.append(arn)
        return started

    def seconds_to_next(self) -> float:
        upcoming = [t for t in self.next_fires().values() if t is not None]
        if not upcoming:
            return MAX_WAIT_S
        return max(0.0, min(MAX_WAIT_S, (min(upcoming) - self.clock()).total_seconds()))

    def run(self, stop: threading.Event) -> None:
        self.tick()  # a fire missed while the machine was off
        while not stop.wait(self.seconds_to_next()):
            self.tick()

    def _read(self) -> dict[str, datetime]:
        if self.path is None or not self.path.exists():
            return {}
        return {name: parse_iso(value) for name, value in json.loads(self.path.read_text()).items()}

    def _write(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_private(self.path, json.dumps({name: iso(t) for name, t in self.last.items()}).encode())


def describe(now: datetime, schedules: list[tuple[str, str, str, str]]) -> list[dict[str, str | None]]:
    """(name, expression, timezone, target) rows with their next fire time after ``now``."""
    rows = []
    for name, expression, timezone, target in schedules:
        try:
            fire = next_fire(expression, timezone, now)
            when = iso(fire) if fire else "never"
        except InvalidSchedule as exc:
            when = f"unknown ({exc})"
        rows.append(
            {
                "name": name,
                "expression": expression,
                "timezone": timezone,
                "target": target,
                "next_fire": when,
            }
        )
    return rows
