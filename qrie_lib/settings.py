"""Settings from the environment (prefix ``QRIE_``), with defaults that suit the embedded runtime."""

from functools import cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from qrie_lib.external_ids import check_external_id


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QRIE_", frozen=True)

    # Where the operator's own resources live.
    region: str = "us-east-1"
    endpoint_url: str | None = None  # a local endpoint (``qrie local up``); None means AWS

    accounts_table: str = "qrie_accounts"
    resources_table: str = "qrie_resources"
    findings_table: str = "qrie_findings"
    policies_table: str = "qrie_policies"
    runs_table: str = "qrie_runs"
    partitions_table: str = "qrie_partitions"  # what the scans evaluated per resources partition
    counters_table: str = "qrie_counters"  # findings counted per policy shard and per account
    suppressions_table: str = "qrie_suppressions"  # accepted risks (qrie_lib.suppressions)
    audit_table: str = "qrie_audit"  # who changed a suppression, when, before and after
    history_table: str = "qrie_history"  # findings' transitions and their daily rollups
    items_bucket: str = "qrie-run-items"  # work-item lists read by the Distributed Map
    events_queue: str = "qrie_events"
    inventory_state_machine_arn: str | None = None  # set on the API Lambda by the stack; None: local name
    scan_state_machine_arn: str | None = None

    # Where customer accounts are reached. "operator": where the operator's own resources are (AWS
    # when deployed; the local endpoint and its simulated organisation); "aws": AWS with
    # ``customer_profile``'s credentials, whatever ``endpoint_url`` is (``qrie local up --customers
    # aws``); or a URL (another emulator standing in for AWS).
    customers: str = Field("operator", pattern=r"^(operator|aws|https?://\S+)$")
    customer_profile: str | None = None  # the customer side's credentials; None: the default chain
    # The customer side's own account (that of ``customer_profile``'s credentials) is read with those
    # credentials, no role assumed: how a single account starts (``qrie local up --self``).
    customer_self: bool = False

    # Cross-account access.
    role_name: str = "QrieReadOnly"
    # Each account row carries its own ExternalId (generated at onboarding). This one is only a
    # fallback for rows onboarded without one; there is no shared default.
    external_id: str | None = None
    regions: tuple[str, ...] = ("us-east-1", "eu-west-1")
    # Where ``qrie accounts sync`` reads AWS Organizations: None means with the task's own role, so
    # the operator account must be the management account or a delegated administrator; else a
    # role in the management account that the sync task assumes (with ``external_id`` if set).
    organizations_role_arn: str | None = Field(None, pattern=r"^arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
    accounts_sync_probes: int = Field(100, ge=1, le=1000)  # new accounts' roles tried per sync call

    # Work bounds per task call: a call stops at whichever comes first and returns a cursor.
    page_size: int = Field(50, ge=1, le=1000)
    pages_per_call: int = Field(20, ge=1)
    scan_page_size: int = Field(200, ge=1, le=1000)  # resources read per page of a partition scan
    time_margin_ms: int = Field(60_000, ge=0)  # stop taking new pages this close to the Lambda timeout

    max_retry_attempts: int = Field(10, ge=1)

    # Concurrency of a run (the Plan task passes them to the state machine): customer accounts in
    # flight at once (the Distributed Map's children), and work items of one account at once.
    accounts_in_flight: int = Field(10, ge=1, le=10_000)
    items_per_account_in_flight: int = Field(2, ge=1, le=40)
    # Customer calls in flight at once in one account (its API quota, not Qrie, is the limit; a
    # throttled call backs off with botocore's adaptive retries). An item describes its resources
    # on up to customer_calls_per_account // items_per_account_in_flight threads, so the Map's items
    # of one account stay within it in AWS too; one process also caps each account's calls at it.
    customer_calls_per_account: int = Field(10, ge=1, le=100)
    # Accounts per page of a run: each page is one bounded Page call and one Distributed Map run
    # (pages run one after another), so no invocation reads the whole organisation.
    accounts_per_page: int = Field(1000, ge=1, le=10_000)
    # How long an inventory holds the lease that keeps a second one from starting; a run that died
    # without releasing it blocks the next ones this long at most.
    inventory_lease_hours: float = Field(6, gt=0, le=48)

    # Exports and notifications (qrie_lib.exports, qrie_lib.notifications).
    securityhub_export: bool = False  # import findings into the operator account's Security Hub
    notify_min_severity: int = Field(70, ge=0, le=100)  # findings opened at or above it notify
    notifications_topic_arn: str | None = None  # set by the stack; None: the local topic by name
    suppression_max_days: int = Field(365, ge=1, le=3650)  # the furthest a suppression may expire

    # The console's browser sign-in in AWS (set by the stack: stacks/console_auth.py); None locally.
    console_user_pool_id: str | None = None
    console_client_id: str | None = None
    console_auth_domain: str | None = None  # https://<prefix>.auth.<region>.amazoncognito.com
    console_url: str | None = None  # https://<api>/v1/console, the callback's base

    @property
    def describe_threads(self) -> int:
        """Threads one work item describes its resources on (``concurrency.fan_out``)."""
        return max(1, self.customer_calls_per_account // self.items_per_account_in_flight)

    @property
    def customers_separate(self) -> bool:
        """Customer calls have an endpoint and credentials of their own."""
        return self.customers != "operator"

    @property
    def customer_endpoint_url(self) -> str | None:
        """Where customer clients connect (None: AWS)."""
        return {"operator": self.endpoint_url, "aws": None}.get(self.customers, self.customers)

    @field_validator("external_id")
    @classmethod
    def _no_public_external_id(cls, value: str | None) -> str | None:
        return check_external_id(value)


@cache
def get_settings() -> Settings:
    return Settings()
