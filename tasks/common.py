"""What every handler shares: the powertools logger and metrics (service name, namespace and
level come from the POWERTOOLS_* environment the stack sets). Logs go to stderr so that a
command's JSON on stdout stays clean when the handlers run in process."""

import logging
import sys

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service="qrie", logger_handler=logging.StreamHandler(sys.stderr))
metrics = Metrics(namespace="Qrie", service="qrie")


def emit_run_metrics(kind: str, **values: int) -> None:
    """A run's metrics, by kind (``inventory``/``scan``): what the run alarms watch."""
    metrics.add_dimension(name="Kind", value=kind)
    for name, value in values.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
