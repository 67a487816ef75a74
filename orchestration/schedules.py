"""The schedules, declared once: the core stack deploys them as EventBridge Scheduler schedules and
the local runtime reads the same expressions and inputs. ``SCHEDULES`` start state machines;
``TASK_SCHEDULES`` invoke a task's Lambda."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Schedule:
    name: str
    state_machine: str  # a name in orchestration.asl.STATE_MACHINES
    expression: str  # EventBridge Scheduler syntax: cron(minutes hours day-of-month month day-of-week year)
    timezone: str
    input: dict[str, Any] = field(default_factory=dict)  # the execution input, as the console would take it


SCHEDULES: tuple[Schedule, ...] = (
    # Anti-entropy: the weekly full inventory catches whatever real-time events missed. Its end
    # (the inventory's Finalize) starts the full scan: no clock guess of how long it takes.
    Schedule(
        "weekly-inventory",
        "inventory",
        "cron(0 0 ? * SAT *)",
        "UTC",
        {"service": "all", "scan_type": "anti-entropy"},
    ),
    # Incremental: only what changed since the last scan (and policies launched or changed since).
    Schedule("daily-scan", "scan", "cron(0 4 ? * SUN-FRI *)", "UTC", {}),
)


@dataclass(frozen=True)
class TaskSchedule:
    """A schedule that invokes one task's Lambda directly: work that is one bounded call."""

    name: str
    task: str  # a TaskSpec name in tasks.registry
    expression: str
    timezone: str
    input: dict[str, Any] = field(default_factory=dict)  # the function's event


TASK_SCHEDULES: tuple[TaskSchedule, ...] = (
    # Accounts from AWS Organizations, an hour before the daily scan: its scopes see today's OUs.
    TaskSchedule("daily-accounts-sync", "AccountsSync", "cron(0 3 * * ? *)", "UTC", {}),
    # Suppressions past their expiry end at midnight; their findings that still violate reopen then.
    TaskSchedule("daily-suppressions-expiry", "SuppressionsExpire", "cron(5 0 * * ? *)", "UTC", {}),
)
