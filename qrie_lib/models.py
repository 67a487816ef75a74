"""Pydantic models shared by tasks, stores and the CLI. Task inputs forbid unknown fields so a typo
in an operator's console input is an ``InvalidInput``, not a silently ignored key."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from qrie_lib.errors import InvalidInput
from qrie_lib.external_ids import check_external_id
from qrie_lib.subjects import subject

AccountId = Annotated[str, StringConstraints(pattern=r"^\d{12}$")]
Region = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")]
GLOBAL = "global"  # the region of global services' resources and work items


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


M = TypeVar("M", bound=BaseModel)


def parse_input(model: type[M], data: Any) -> M:
    """Validate a task input; the message names each bad field so operators can fix it, in the
    words of the input (the field, what is wrong), not the model's class or pydantic's."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise InvalidInput(problems) from None


class AccountStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"  # closed (suspended) in its organisation: not inventoried or scanned
    REMOVED = "REMOVED"  # left the organisation, or offboarded: kept so a sync does not re-onboard it


class Account(BaseModel):
    account_id: AccountId
    name: str = ""
    status: AccountStatus = AccountStatus.ACTIVE
    ou_path: str = "/"
    tags: dict[str, str] = Field(default_factory=dict)
    regions: list[Region] = Field(default_factory=list)
    external_id: Annotated[str | None, AfterValidator(check_external_id)] = None
    # The role Qrie assumes in it (None: the ``role_name`` role the onboarding template creates).
    role_arn: str | None = Field(None, pattern=r"^arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
    onboarded_at: str | None = None
    organization_id: str | None = None  # set when the account belongs to the synced organisation

    @model_validator(mode="after")
    def _role_in_the_account(self) -> Account:
        if self.role_arn and self.role_arn.split(":")[4] != self.account_id:
            raise ValueError(f"role_arn {self.role_arn} is not a role of account {self.account_id}")
        return self


class Resource(BaseModel):
    """One described resource. ``configuration`` is JSON-safe (timestamps as ISO strings)."""

    arn: str
    account_id: AccountId
    service: str
    region: str
    resource_type: str
    configuration: dict[str, Any]
    tags: dict[str, str] = Field(default_factory=dict)
    describe_time: str

    @property
    def account_service(self) -> str:
        return f"{self.account_id}_{self.service}"

    @property
    def subject(self) -> str:
        """What its findings are keyed by (``qrie_lib.subjects``)."""
        return subject(self.arn, self.account_id)


class WorkItem(Strict):
    """One account × service (× region) of an inventory run."""

    account_id: AccountId
    service: str
    region: str  # GLOBAL for global services

    @property
    def item_id(self) -> str:
        return f"{self.account_id}/{self.service}/{self.region}"


class Cursor(Strict):
    """Where a collector stopped: the index of the resource kind and that kind's page token; past
    the last kind (``kind`` = the number of kinds), the sweep's page token."""

    kind: int = 0
    token: str | None = None


# ---- task inputs -------------------------------------------------------------------------


class InventoryRequest(Strict):
    """The inventory state machine's input, as typed in the console or sent by the schedule."""

    service: str = "all"
    account_id: AccountId | None = None
    region: Region | None = None
    scan_type: Literal["anti-entropy", "on-demand", "onboarding"] = "on-demand"


class PlanInput(Strict):
    input: dict[str, Any]
    execution_id: str
    started_at: str


class ItemTaskInput(Strict):
    run_id: str
    started_at: str
    item: WorkItem
    cursor: Cursor | None = None


class ItemFailureInput(Strict):
    run_id: str
    item: dict[str, Any]  # as it came from the item list: it may itself be what was malformed
    error: dict[str, Any]  # {"Error": ..., "Cause": ...} from the Catch


class PageInput(Strict):
    """One page of a run's accounts: where the last page stopped, and what the plan decided."""

    run_id: str
    request: dict[str, Any]
    cursor: str | None = None
    accounts: bool = True  # the run has items per account (not a suppressions re-match)
    shards: bool = False  # the run has findings-shard items (the ``*`` group, on the first page)


class AccountInput(Strict):
    """An account's child execution: Expand's input (``account_id`` may be ``*``, the group of
    items of no one account)."""

    run_id: str
    started_at: str
    request: dict[str, Any]
    account_id: str


class SummarizeInput(AccountInput):
    """The child's state at its end: the items Expand gave (absent if it failed) and its failure."""

    per_account: int | None = None
    expand: dict[str, Any] | None = None
    failure: dict[str, Any] | None = None


class FinalizeInput(Strict):
    """The parent's state as it reaches Finalize: whatever ran (``plan``, ``page``, ``map``: the
    Distributed Map's result or its error), ``failure`` if a state failed, ``final`` from the
    previous Finalize call of the loop."""

    model_config = ConfigDict(extra="allow", frozen=True)
    execution_id: str
    state: dict[str, Any]


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    SUCCEEDED_WITH_FAILURES = "SUCCEEDED_WITH_FAILURES"  # some items failed; each is recorded with its reason
    FAILED = "FAILED"  # the run itself failed (or every item did)
    SKIPPED = "SKIPPED"  # not run: another run of its kind holds the lease
