"""The embedded default: moto's AWS emulation in this process (its Step Functions engine
included), the operator resources provisioned, and Lambda invokes dispatched to the real task
handlers. ``LocalRuntime`` is used by ``qrie demo`` and the tests; ``serve`` keeps the same thing
running as a local AWS endpoint for other processes (``qrie local up``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

# Before moto is imported: its default AMI catalogue would put ~1,300 snapshots in every account.
os.environ.setdefault("MOTO_AMIS_PATH", str(Path(__file__).parent / "data" / "amis.json"))

from moto import mock_aws
from moto.core.config import default_user_config

from orchestration import emulation
from orchestration.credentials import FAKE_CREDENTIALS
from orchestration.dispatch import Dispatch
from orchestration.limits import Enforcement, Limits
from orchestration.provision import provision
from qrie_lib.aws import Aws, reset_aws
from qrie_lib.settings import Settings

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


def serve(settings: Settings, port: int, fast_retries: bool = False) -> tuple[object, Aws, dict[str, str]]:
    """Start moto's server in this process with the same engine config, dispatch and guard.
    Handlers run here and reach the endpoint through ``settings.endpoint_url``."""
    from moto.server import ThreadedMotoServer

    url = f"http://127.0.0.1:{port}"
    os.environ["MOTO_PORT"] = str(port)  # where moto's Step Functions engine sends its Lambda invokes
    for key, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    os.environ.update(LOCAL_ENV)
    default_user_config.update(MOTO_CONFIG)  # type: ignore[arg-type]
    emulation.install(settings.role_name)
    Enforcement().install()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request on the console
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    Dispatch().install()
    # Every client of this process (handlers, the simulated org) comes from this factory.
    aws = Aws(settings.model_copy(update={"endpoint_url": url}))
    reset_aws(aws)
    return server, aws, provision(aws, fast_retries)
