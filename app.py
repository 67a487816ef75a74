"""The CDK app: the operator's core stack and the customer onboarding stack, checked by cdk-nag's
AwsSolutions rules at synthesis (``npx cdk synth``; see "Deploy to AWS" in README.md)."""

from __future__ import annotations

import os

# The CDK runs on Node.js through jsii, which warns about old Node versions on every run.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App, Validations
from aws_cdk.cx_api import CloudAssembly
from cdk_nag import AwsSolutionsChecks

from stacks.core_stack import CoreStack
from stacks.customer_stack import CustomerStack
from stacks.quotas import ACCOUNT_CONCURRENCY_CONTEXT, DEFAULT_ACCOUNT_CONCURRENCY, check

CORE_STACK = "QrieCore"
CUSTOMER_STACK = "QrieCustomer"


def build(app: App) -> App:
    """Both stacks and the cdk-nag plugin on ``app`` (the tests build the same app)."""
    CoreStack(app, CORE_STACK, description="Qrie: cloud security posture pipeline (operator)")
    CustomerStack(app, CUSTOMER_STACK)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def synthesize(app: App) -> CloudAssembly:
    """Synthesize ``app``; refused (``QuotaExceeded``) if a template passes an AWS quota that only
    deployment or run time would report (``stacks.quotas``)."""
    assembly = app.synth()
    concurrency = int(app.node.try_get_context(ACCOUNT_CONCURRENCY_CONTEXT) or DEFAULT_ACCOUNT_CONCURRENCY)
    for stack in assembly.stacks:
        check(stack.stack_name, stack.template, concurrency)
    return assembly


if __name__ == "__main__":
    synthesize(build(App()))
