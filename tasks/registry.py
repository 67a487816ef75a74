"""Every task Lambda, declared once: the CDK stack deploys one function per entry, the ASL refers
to ``${<Name>FunctionArn}``, and the local runtime dispatches invocations by function name."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any

# A Task state's TimeoutSeconds: the Lambda's own timeout ends a slow handler first (Sandbox.Timedout);
# the state's is the backstop for an invoke that never answers. orchestration.asl checks the ASL.
STATE_TIMEOUT_MARGIN_S = 30


@dataclass(frozen=True)
class TaskSpec:
    name: str  # CamelCase; ASL substitution ``${<name>FunctionArn}``
    handler: str  # "module.function"
    timeout_s: int
    memory_mb: int = 512
    tables_read: tuple[str, ...] = ()
    tables_written: tuple[str, ...] = ()
    assumes_customer_role: bool = False
    uses_items_bucket: bool = False
    starts_executions: bool = False
    publishes_notifications: bool = False  # the notifications topic (qrie_lib.notifications)
    imports_findings: bool = False  # Security Hub BatchImportFindings, when the deployment enables it
    reads_organization: bool = False  # Organizations reads, or AssumeRole into organizations_role_arn
    configures_runs: bool = False  # reads a run's concurrency and page size (set per deployment)

    @property
    def function_name(self) -> str:
        return "qrie-" + "".join("-" + c.lower() if c.isupper() else c for c in self.name).lstrip("-")

    @property
    def state_timeout_s(self) -> int:
        return self.timeout_s + STATE_TIMEOUT_MARGIN_S

    @property
    def substitution(self) -> str:
        return f"{self.name}FunctionArn"

    def load(self) -> Any:
        module, function = self.handler.rsplit(".", 1)
        return getattr(import_module(module), function)


TASKS: tuple[TaskSpec, ...] = (
    TaskSpec(
        "InventoryPlan",
        "tasks.inventory_plan.handler",
        60,
        256,
        tables_read=("accounts",),  # the one account a request names
        tables_written=("runs",),  # the header and the lease
        configures_runs=True,
    ),
    TaskSpec(
        "RunPage",
        "tasks.run_page.handler",
        60,
        256,
        tables_read=("accounts",),
        tables_written=("runs",),
        uses_items_bucket=True,
        configures_runs=True,
    ),
    TaskSpec(
        "InventoryExpand",
        "tasks.inventory_expand.handler",
        60,
        256,
        tables_read=("accounts", "resources", "runs"),
    ),
    TaskSpec(
        "InventoryCollect",
        "tasks.inventory_collect.handler",
        900,
        1024,
        tables_read=("accounts",),
        tables_written=("resources", "partitions", "findings", "counters", "history", "runs"),
        assumes_customer_role=True,
    ),
    TaskSpec("RecordItemFailure", "tasks.record_item_failure.handler", 30, 256, tables_written=("runs",)),
    TaskSpec("InventorySummarize", "tasks.inventory_summarize.handler", 60, 256, tables_written=("runs",)),
    TaskSpec(
        "InventoryFinalize",
        "tasks.inventory_finalize.handler",
        120,
        tables_written=("runs",),
        starts_executions=True,  # the weekly inventory's end starts the full scan
    ),
    TaskSpec(
        "ScanPlan",
        "tasks.scan_plan.handler",
        60,
        256,
        tables_read=("accounts", "policies"),
        tables_written=("runs",),
        configures_runs=True,
    ),
    TaskSpec("ScanExpand", "tasks.scan_expand.handler", 60, 256, tables_read=("accounts", "policies")),
    TaskSpec(
        "ScanEvaluate",
        "tasks.scan_evaluate.handler",
        900,
        1024,
        tables_read=("accounts", "policies", "suppressions"),
        # resources: clears the change marks of what it evaluated
        tables_written=("resources", "partitions", "findings", "counters", "history", "runs"),
    ),
    TaskSpec("ScanSummarize", "tasks.scan_summarize.handler", 60, 256, tables_written=("runs",)),
    TaskSpec("ScanFinalize", "tasks.scan_finalize.handler", 120, tables_written=("runs",)),
    TaskSpec(
        "ScanReport",
        "tasks.scan_report.handler",
        300,
        tables_read=("policies",),
        tables_written=("findings",),
        publishes_notifications=True,
        imports_findings=True,
    ),
    # Not in a state machine: SQS-triggered, the API behind API Gateway, and the scheduled sync.
    TaskSpec(
        "EventProcessor",
        "tasks.event_processor.handler",
        60,
        tables_read=("accounts", "policies", "suppressions"),
        tables_written=("resources", "partitions", "findings", "counters", "history"),
        assumes_customer_role=True,
        publishes_notifications=True,
        imports_findings=True,
    ),
    TaskSpec(
        "Api",
        "tasks.api.handler",
        30,
        tables_read=("accounts", "resources", "partitions", "counters", "history"),
        tables_written=("policies", "findings", "suppressions", "audit"),
        starts_executions=True,
    ),
    # API Gateway's REQUEST authorizer of /console: verifies the session cookie; no AWS access.
    TaskSpec("ConsoleAuthorizer", "tasks.console_authorizer.handler", 10, 256),
    TaskSpec(
        "AccountsSync",
        "tasks.accounts_sync.handler",
        900,
        tables_read=("policies",),
        tables_written=("accounts", "findings", "counters", "history"),
        assumes_customer_role=True,  # tries a new account's read-only role before onboarding it
        reads_organization=True,
    ),
    TaskSpec(
        "SuppressionsExpire",
        "tasks.suppressions_expire.handler",
        120,
        256,
        tables_read=("policies",),
        tables_written=("suppressions", "audit"),
        starts_executions=True,  # the scans that reactivate the expired rules' findings
    ),
)

BY_FUNCTION_NAME = {t.function_name: t for t in TASKS}
BY_NAME = {t.name: t for t in TASKS}
