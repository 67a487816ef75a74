"""Settings from the environment (prefix ``QRIE_``), with defaults that suit the embedded runtime."""

from functools import cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    items_bucket: str = "qrie-run-items"  # work-item lists read by the Distributed Map
    events_queue: str = "qrie_events"
    inventory_state_machine_arn: str | None = None  # set on the API Lambda by the stack; None: local name
    scan_state_machine_arn: str | None = None

    # Cross-account access.
    role_name: str = "QrieReadOnly"
    external_id: str = "qrie-external-id"  # the default; each account row may carry its own
    regions: tuple[str, ...] = ("us-east-1", "eu-west-1")

    # Work bounds per task call: a call stops at whichever comes first and returns a cursor.
    page_size: int = Field(50, ge=1, le=1000)
    pages_per_call: int = Field(20, ge=1)
    scan_page_size: int = Field(200, ge=1, le=1000)  # resources read per page of a partition scan
    time_margin_ms: int = Field(60_000, ge=0)  # stop taking new pages this close to the Lambda timeout

    max_retry_attempts: int = Field(10, ge=1)


@cache
def get_settings() -> Settings:
    return Settings()
