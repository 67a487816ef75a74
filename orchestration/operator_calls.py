"""The local runtime's hooks on every operator client (``Aws.observe_operator_calls``): a call made
by an in-process task handler (``dispatch.CURRENT``) is profiled (``call_profile``), charged AWS's
latency on the handler's clock (``latency``; none with ``--latency none``), refused like IAM
would when its TaskSpec does not grant it (``grants``), and once its time is up stops the handler
as AWS's Lambda timeout would. Calls outside a task (the CLI, tests, the simulated organisation)
pass untouched."""

from __future__ import annotations

import time
from typing import Any

from orchestration import grants
from orchestration.dispatch import CURRENT, LambdaTimedOut
from orchestration.latency import Latency
from qrie_lib.aws import Aws, refused

PARAMS = "qrie_params"  # where a request's API parameters wait for its answer
SENT_AT = "qrie_sent_at"


class OperatorCalls:
    def __init__(self, latency: Latency | None = None, check_grants: bool = True) -> None:
        self.latency = latency
        self.check_grants = check_grants

    def install(self, aws: Aws) -> None:
        self.settings = aws.settings
        aws.observe_operator_calls("before-parameter-build", self._parameters)
        aws.observe_operator_calls("before-call", self._before)
        aws.observe_operator_calls("after-call", self._after)

    def _parameters(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if CURRENT.get() is not None:
            context[PARAMS] = dict(params)

    def _before(self, model: Any, context: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
        invocation = CURRENT.get()
        if invocation is None:
            return None
        service, operation = service_name(model), model.name
        params = context.get(PARAMS, {})
        invocation.profile.request(service, operation, params)
        if self.latency is not None:
            invocation.context.charge(self.latency.of(service, operation))
        if invocation.context.timed_out():  # this call would not have returned in time
            raise LambdaTimedOut
        context[SENT_AT] = time.perf_counter()
        refusal = self.check_grants and grants.refusal(
            invocation.spec, self.settings, service, operation, params
        )
        if refusal:  # answered here, as AWS would: the client raises its modelled error
            return refused(grants.denied_code(service), refusal)
        return None

    def _after(self, model: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        invocation = CURRENT.get()
        if invocation is None or SENT_AT not in context:
            return
        invocation.profile.real_in_calls_s += time.perf_counter() - context[SENT_AT]
        invocation.profile.response(service_name(model), model.name, context.get(PARAMS, {}), parsed)


def service_name(model: Any) -> str:
    return model.service_model.service_name
