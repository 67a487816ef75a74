"""What every handler shares: the powertools logger and metrics (service name, namespace and
level come from the POWERTOOLS_* environment the stack sets). Logs go to stderr so that a
command's JSON on stdout stays clean when the handlers run in process."""

import logging
import sys

from aws_lambda_powertools import Logger, Metrics


class CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at each record (a CLI test runner swaps and closes it;
    a handler bound to the stream at import would then write to a closed file)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


logger = Logger(service="qrie", logger_handler=CurrentStderr())
metrics = Metrics(namespace="Qrie", service="qrie")
