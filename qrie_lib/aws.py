"""The one place that builds AWS clients.

Two sides, never mixed: *operator* clients (``client``) reach ``endpoint_url`` with the process's
credentials; *customer* clients (``customer_client``, ``role_client``, and the AssumeRole that
gets their credentials) reach ``Settings.customer_endpoint_url`` with the customer side's own
credential source (``customer_profile``). Unless ``customers`` separates them, both sides are the
same (AWS in a deployment; the local endpoint with its simulated organisation).

Clients get botocore's adaptive retries (client-side rate limiting plus backoff on throttling).
A customer account has at most ``customer_calls_per_account`` calls in flight from this process
(its retries and their backoff included), however many threads call it.
Customer-account clients use credentials from AssumeRole with the ExternalId, refreshed by
botocore's own ``RefreshableCredentials`` shortly before they expire, and cached per account for
the life of the process (a warm Lambda container reuses them). Every call made through a client
built here is counted, so runs and benchmarks can report AWS calls per resource.
"""

from __future__ import annotations

import functools
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import ClientError
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from qrie_lib.errors import AccountAccessDenied, Throttled
from qrie_lib.settings import Settings, get_settings
from qrie_lib.timeutil import iso

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)


def error_code(exc: BaseException) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


def is_throttling(exc: BaseException) -> bool:
    return error_code(exc) in THROTTLING_CODES


def retry_throttling(attempts: int = 5):
    """Tenacity policy for operations whose throttling outlives botocore's own retries."""
    return retry(
        retry=retry_if_exception(is_throttling),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential_jitter(multiplier=0.2, max=5),
        reraise=True,
    )


def strip_account_host_prefix(request: Any, **_: Any) -> None:
    """On a local endpoint, S3 Control's ``{account}.`` host prefix names no host: drop it."""
    scheme, _, rest = request.url.partition("://")
    host, slash, path = rest.partition("/")
    account, dot, bare = host.partition(".")
    if dot and account.isdigit() and len(account) == 12:
        request.url = f"{scheme}://{bare}{slash}{path}"


# Accounts whose credentials and clients stay cached (~0.35 MB a client, ~45 clients an account):
# a warm Lambda, or the local runtime, serving thousands of accounts would otherwise keep them all.
MAX_CACHED_ACCOUNTS = 32


class Aws:
    """Client factory for the operator account and, through AssumeRole, any account's role: the
    customer accounts' read-only role, or (simulated organisation, benchmarks) an administrator's."""

    def __init__(
        self,
        settings: Settings | None = None,
        session: boto3.Session | None = None,
        customer_session: boto3.Session | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self._session = session or boto3.Session(region_name=self.settings.region)
        if customer_session is None and self.settings.customers_separate:
            customer_session = boto3.Session(
                profile_name=self.settings.customer_profile, region_name=self.settings.region
            )
        self._customer_session = customer_session or self._session
        self._config = Config(
            retries={"mode": "adaptive", "max_attempts": self.settings.max_retry_attempts},
            max_pool_connections=50,
        )
        self._lock = threading.RLock()
        self._clients: dict[tuple[str, str, str, str], Any] = {}
        self._role_sessions: dict[tuple[str, str], boto3.Session] = {}
        self._recent_accounts: OrderedDict[str, None] = OrderedDict()  # least recently used first
        self._slots: dict[str, threading.BoundedSemaphore] = {}  # calls in flight per customer account
        self._count_lock = threading.Lock()
        self._self_account: str | None = None
        self.calls: Counter[str] = Counter()  # every call, "service.Operation"
        self.customer_calls: Counter[str] = Counter()  # those through customers' read-only role

    @classmethod
    def with_operator_credentials(cls, settings: Settings, access_key: str, secret_key: str) -> Aws:
        """A factory whose operator clients sign with these credentials (a local endpoint takes
        any), so they never come from, nor go to, the customer side's credential chain."""
        session = boto3.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=settings.region
        )
        return cls(settings, session=session)

    # ---- clients -----------------------------------------------------------------------------

    def client(self, service: str, region: str | None = None) -> Any:
        """A client in the operator account."""
        key = ("", "", service, region or self.settings.region)
        return self._cached(key, self._session, self.settings.endpoint_url)

    def customer_client(
        self,
        account_id: str,
        service: str,
        region: str | None = None,
        external_id: str | None = None,
        role_arn: str | None = None,
    ) -> Any:
        """A client in a customer account, through its read-only role (``role_arn``, default the
        ``role_name`` role) and the ExternalId (the account's own; never assumed without one: the
        role's confused-deputy protection). With ``customer_self``, the customer side's own account is
        reached with its own credentials, no role."""
        if self.settings.customer_self and account_id == self.self_account():
            key = (account_id, "#self", service, region or self.settings.region)
            return self._cached(
                key, self._customer_session, self.settings.customer_endpoint_url, read_only=True
            )
        external_id = external_id or self.settings.external_id
        if not external_id:
            raise AccountAccessDenied(
                f"account {account_id} has no ExternalId: onboard it again (qrie accounts add) to get one"
            )
        role = role_arn.split(":role/", 1)[1] if role_arn else self.settings.role_name
        return self.role_client(account_id, role, service, region, external_id, read_only=True)

    def self_account(self) -> str:
        """The account of the customer side's own credentials (asked once)."""
        if self._self_account is None:
            self._self_account = self.customer_sts().get_caller_identity()["Account"]
        return self._self_account

    def role_client(
        self,
        account_id: str,
        role_name: str,
        service: str,
        region: str | None = None,
        external_id: str | None = None,
        read_only: bool = False,
    ) -> Any:
        """A client acting in an account through one of its roles (one AssumeRole per role), on
        the customer side; ``read_only`` clients are counted in ``customer_calls``."""
        with self._lock:
            self._recent_accounts[account_id] = None
            self._recent_accounts.move_to_end(account_id)
            while len(self._recent_accounts) > MAX_CACHED_ACCOUNTS:
                self._drop(next(iter(self._recent_accounts)))
            session = self._role_sessions.get((account_id, role_name))
            if session is None:
                session = self._assumed_session(account_id, role_name, external_id)
                self._role_sessions[(account_id, role_name)] = session
        key = (account_id, role_name, service, region or self.settings.region)
        return self._cached(key, session, self.settings.customer_endpoint_url, read_only)

    def in_account(self, account_id: str, role_name: str) -> AccountSession:
        """Session-like access to an account through a role: ``.client(service, region)``."""
        return AccountSession(self, account_id, role_name)

    def _cached(
        self,
        key: tuple[str, str, str, str],
        session: boto3.Session,
        endpoint_url: str | None,
        read_only: bool = False,
    ) -> Any:
        service, region = key[2], key[3]
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = session.client(
                    service, region_name=region, endpoint_url=endpoint_url, config=self._config
                )
                client.meta.events.register("before-call", self._count)
                if read_only:
                    client.meta.events.register("before-call", self._count_customer)
                    slot = self._slots.setdefault(
                        key[0], threading.BoundedSemaphore(self.settings.customer_calls_per_account)
                    )
                    client.meta.events.register("before-call", functools.partial(_take, slot))
                    client.meta.events.register("after-call", _give_back)
                    client.meta.events.register("after-call-error", _give_back)
                if endpoint_url and service == "s3control":
                    client.meta.events.register("before-sign.s3-control", strip_account_host_prefix)
                self._clients[key] = client
            return client

    def _count(self, model: Any, **_: Any) -> None:
        with self._count_lock:  # calls come from several threads
            self.calls[f"{model.service_model.service_name}.{model.name}"] += 1

    def _count_customer(self, model: Any, **_: Any) -> None:
        with self._count_lock:
            self.customer_calls[f"{model.service_model.service_name}.{model.name}"] += 1

    # ---- cross-account access ----------------------------------------------------------------

    def role_arn(self, account_id: str, role_name: str | None = None) -> str:
        return f"arn:aws:iam::{account_id}:role/{role_name or self.settings.role_name}"

    def customer_sts(self) -> Any:
        """STS on the customer side: where customer roles are assumed (with its own credentials)."""
        key = ("", "#customer", "sts", self.settings.region)
        return self._cached(key, self._customer_session, self.settings.customer_endpoint_url)

    def _assumed_session(self, account_id: str, role_name: str, external_id: str | None) -> boto3.Session:
        sts = self.customer_sts()
        role_arn = self.role_arn(account_id, role_name)
        with_external_id = {"ExternalId": external_id} if external_id else {}

        @retry_throttling()
        def assume() -> dict[str, Any]:
            try:
                creds = sts.assume_role(
                    RoleArn=role_arn, RoleSessionName="qrie", DurationSeconds=3600, **with_external_id
                )["Credentials"]
            except ClientError as exc:
                if is_throttling(exc):
                    raise
                raise AccountAccessDenied(
                    f"cannot assume {role_arn}: {error_code(exc)}: {exc.response['Error'].get('Message', '')}"
                ) from None
            return {
                "access_key": creds["AccessKeyId"],
                "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": iso(creds["Expiration"]),
            }

        def refresh() -> dict[str, Any]:
            try:
                return assume()
            except ClientError as exc:
                raise Throttled(f"AssumeRole on {role_arn} kept throttling") from exc

        # Assume now so a missing role or a wrong ExternalId fails here, with a named error;
        # botocore refreshes through the same function shortly before expiry.
        credentials = RefreshableCredentials.create_from_metadata(
            metadata=refresh(), refresh_using=refresh, method="sts-assume-role"
        )
        core = botocore.session.get_session()
        # Share the parsed service models: loading them again per account costs ~0.2 s a client.
        core.register_component("data_loader", self._session._session.get_component("data_loader"))
        core._credentials = credentials
        return boto3.Session(botocore_session=core, region_name=self.settings.region)

    def forget(self, account_id: str) -> None:
        """Drop an account's cached credentials and clients (e.g. after its role changed)."""
        with self._lock:
            self._drop(account_id)

    def _drop(self, account_id: str) -> None:
        self._recent_accounts.pop(account_id, None)
        for session_key in [k for k in self._role_sessions if k[0] == account_id]:
            del self._role_sessions[session_key]
        for key in [k for k in self._clients if k[0] == account_id]:
            del self._clients[key]


SLOT = "qrie_account_slot"  # the request context's key for the slot a call holds


def _take(slot: threading.BoundedSemaphore, context: dict[str, Any], **_: Any) -> None:
    """Before a customer call: wait for one of its account's slots (released when it answers)."""
    slot.acquire()
    context[SLOT] = slot


def _give_back(context: dict[str, Any], **_: Any) -> None:
    slot = context.pop(SLOT, None)
    if slot is not None:
        slot.release()


@dataclass(frozen=True)
class AccountSession:
    """An account reached through one role; its clients come from (and are counted by) the factory."""

    aws: Aws
    account_id: str
    role_name: str

    def client(self, service: str, region: str | None = None) -> Any:
        return self.aws.role_client(self.account_id, self.role_name, service, region)


_default: Aws | None = None


def get_aws() -> Aws:
    """The process-wide factory (a warm Lambda reuses its clients and credentials)."""
    global _default  # noqa: PLW0603 - one factory per process is the point
    if _default is None:
        _default = Aws()
    return _default


def reset_aws(aws: Aws | None = None) -> None:
    """Install a new factory (the local runtime does, when it starts or changes endpoint)."""
    global _default  # noqa: PLW0603
    _default = aws
