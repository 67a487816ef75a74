"""The embedded default: moto's AWS emulation in this process (its Step Functions engine
included), the operator resources provisioned, and Lambda invokes dispatched to the real task
handlers. ``LocalRuntime`` is used by ``qrie demo`` and the tests; ``serve`` keeps the same thing
running as a local AWS endpoint for other processes (``qrie local up``)."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Before moto is imported: its default AMI catalogue would put ~1,300 snapshots in every account.
os.environ.setdefault("MOTO_AMIS_PATH", str(Path(__file__).parent / "data" / "amis.json"))

from moto import mock_aws
from moto.core.config import default_user_config

from orchestration import emulation
from orchestration.cloudtrail_poller import CloudTrailPoller
from orchestration.credentials import FAKE_CREDENTIALS
from orchestration.dispatch import Dispatch
from orchestration.durable import DurableState, OperatorChanges, Scope, fail_interrupted_runs
from orchestration.limits import Enforcement, Limits
from orchestration.local_scheduler import LocalScheduler
from orchestration.local_status import LocalStatus
from orchestration.provision import function_arn, provision
from qrie_lib.aws import Aws, reset_aws
from qrie_lib.settings import Settings
from tasks.registry import BY_NAME

# In process, the handlers' EMF metrics would be printed among the command's own output: only a
# Lambda's stdout reaches CloudWatch, so locally they are not emitted.
LOCAL_ENV = {"POWERTOOLS_METRICS_DISABLED": "true"}
MOTO_CONFIG = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
    "iam": {"load_aws_managed_policies": True},  # AdministratorAccess, AWSSupportAccess, ...
}


class LocalRuntime:
    """``with LocalRuntime() as rt:`` — an emulated operator account, ready to run executions."""

    def __init__(
        self, settings: Settings | None = None, fast_retries: bool = False, limits: Limits | None = None
    ) -> None:
        self.settings = settings or Settings()
        self.fast_retries = fast_retries
        self.dispatch = Dispatch()
        self.limits = Enforcement(limits)  # AWS quotas moto ignores; .peaks records the largest seen
        self.aws: Aws | None = None
        self.state_machines: dict[str, str] = {}
        self._mock = mock_aws(config=MOTO_CONFIG)  # type: ignore[arg-type]
        self._env: dict[str, str | None] = {}

    def __enter__(self) -> LocalRuntime:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
        for key, value in {
            **FAKE_CREDENTIALS,
            **LOCAL_ENV,
            "AWS_DEFAULT_REGION": self.settings.region,
        }.items():
            self._env[key] = os.environ.get(key)
            os.environ[key] = value
        emulation.install(self.settings.role_name)
        quiet_moto()
        self.limits.install()
        self._mock.start()
        self.dispatch.install()
        self.aws = Aws(self.settings)
        reset_aws(self.aws)
        self.state_machines = provision(self.aws, self.fast_retries)

    def stop(self) -> None:
        self.dispatch.uninstall()
        self.limits.uninstall()
        emulation.uninstall()
        self._mock.stop()
        reset_aws(None)
        for key, value in self._env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# moto warns, at every state machine it parses, that ToleratedFailurePercentage has no effect: the
# ASL tolerates every failed item on purpose (items record their own failures), so it is noise.
class _NoEffectWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "declarations currently have no effect" not in record.getMessage()


def quiet_moto() -> None:
    """The console shows the runtime's own status lines (``local_status``), not moto's logs."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request on the console
    # A failing task is a failure event the state machine catches; the run reports it.
    logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").setLevel(logging.CRITICAL)
    preprocessor = logging.getLogger("moto.stepfunctions.parser.asl.parse.preprocessor")
    if not any(isinstance(f, _NoEffectWarnings) for f in preprocessor.filters):
        preprocessor.addFilter(_NoEffectWarnings())


@dataclass
class LocalServer:
    """A running ``qrie local up``: the endpoint, the factory its handlers use, the state
    machines, and what keeps its state, tells its progress and fires its schedules."""

    url: str
    aws: Aws
    machines: dict[str, str]
    server: Any
    status: LocalStatus
    durable: DurableState | None
    changes: OperatorChanges
    interrupted: list[str]
    stopping: threading.Event = field(default_factory=threading.Event)
    scheduler: LocalScheduler | None = None
    poller: CloudTrailPoller | None = None

    def start_scheduler(self, say: Callable[[str], None]) -> LocalScheduler:
        """Fire the declared schedules (a fire missed while the state was off runs now)."""
        from orchestration.schedules import SCHEDULES, TASK_SCHEDULES

        state_dir = self.durable.directory if self.durable else None
        self.scheduler = LocalScheduler(
            lambda s: fire_schedule(self.aws, s),
            state_dir,
            schedules=(*SCHEDULES, *TASK_SCHEDULES),  # type: ignore[arg-type]
            say=say,
        )
        threading.Thread(target=self.scheduler.run, args=(self.stopping,), daemon=True).start()
        return self.scheduler

    def start_poller(self, say: Callable[[str], None]) -> CloudTrailPoller:
        """Read the accounts' CloudTrail event history into the event processor, every minute."""
        self.poller = CloudTrailPoller(self.aws)
        threading.Thread(target=self.poller.run, args=(self.stopping, say), daemon=True).start()
        return self.poller

    def report_events(self, every_s: float = 5.0) -> None:
        """Events processed are counted, and reported at most every ``every_s`` seconds."""

        def loop() -> None:
            while not self.stopping.wait(every_s):
                self.status.flush()

        threading.Thread(target=loop, daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()
        self.server.stop()
        if self.durable:
            self.durable.close()  # every acknowledged change is already kept
        else:
            self.changes.uninstall()


def fire_schedule(aws: Aws, schedule: Any) -> str:
    """What EventBridge Scheduler does at a fire: start the execution (``Schedule``) or invoke the
    task's Lambda (``TaskSchedule``); returns the execution's or the function's ARN."""
    from qrie_lib import executions

    if hasattr(schedule, "state_machine"):
        return executions.start(aws, schedule.state_machine, schedule.input)
    name = BY_NAME[schedule.task].function_name
    answer = aws.client("lambda").invoke(FunctionName=name, Payload=json.dumps(schedule.input))
    if answer.get("FunctionError"):
        payload = json.loads(answer["Payload"].read() or b"{}")
        raise RuntimeError(f"{name}: {payload.get('errorType')}: {payload.get('errorMessage')}")
    return function_arn(aws, name)


def serve(
    settings: Settings,
    port: int,
    fast_retries: bool = False,
    state_dir: Path | None = None,
    say: Callable[[str], None] = print,
) -> LocalServer:
    """Start moto's server in this process with the same engine config, dispatch and guard, the
    operator state restored from ``state_dir`` and kept there (None: in memory only).
    Handlers run here and reach the endpoint through ``settings.endpoint_url``. Customer calls go
    where ``settings.customers`` says; with customers elsewhere, operator clients use fixed local
    credentials, so the customer side's credential chain never sees them."""
    from moto.server import ThreadedMotoServer

    url = f"http://127.0.0.1:{port}"
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ["MOTO_PORT"] = str(port)  # where moto's Step Functions engine sends its Lambda invokes
    if not settings.customers_separate:
        for key, value in FAKE_CREDENTIALS.items():
            os.environ.setdefault(key, value)
    os.environ.update(LOCAL_ENV)
    default_user_config.update(MOTO_CONFIG)  # type: ignore[arg-type]
    emulation.install(settings.role_name)
    Enforcement().install()
    quiet_moto()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    Dispatch().install()
    # Every client of this process (handlers, the simulated org) comes from this factory.
    aws = Aws.with_operator_credentials(
        settings.model_copy(update={"endpoint_url": url}),
        FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    reset_aws(aws)
    machines = provision(aws, fast_retries)
    scope = Scope.of(aws.settings, aws.client("sts").get_caller_identity()["Account"])
    status = LocalStatus(settings.runs_table, settings.events_queue, say)
    durable = DurableState(state_dir, scope, [status], say=say) if state_dir else None
    changes = durable.changes if durable else OperatorChanges(scope, [status])
    if durable:
        try:
            durable.restore()
        except Exception:  # refused (CorruptState, StateInUse): the endpoint goes with it
            server.stop()
            raise
        durable.install()
    else:
        changes.install()
    interrupted = fail_interrupted_runs(aws) if durable else []
    return LocalServer(url, aws, machines, server, status, durable, changes, interrupted)
