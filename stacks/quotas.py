"""AWS quotas a template can break without CloudFormation or the CDK noticing before deployment
(a deployment half done, or a queue that silently stops accepting a rule's events). Checked on the
synthesized templates (``app.synthesize``), which fail with every quota passed, named:

- SQS queue policy: at most 20 statements and 8,192 bytes (Amazon SQS Developer Guide, "Amazon SQS
  policy quotas": https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-policies.html).
  An EventBridge rule targeting a queue adds one statement to its policy.
- EventBridge event pattern: at most 2,048 characters (Amazon EventBridge User Guide, "Amazon
  EventBridge quotas", "Event pattern size": https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html).
- Lambda reserved concurrency: functions may reserve at most the account's concurrency minus 100,
  which stays unreserved for the others (AWS Lambda Developer Guide, "Configuring reserved
  concurrency": https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html).
  The account's concurrency is 1,000 by default (context ``qrie:accountConcurrency`` if raised).
- Step Functions state machine definition: at most 1 MB, a hard quota (AWS Step Functions
  Developer Guide, "Step Functions service quotas": https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html).

A reference CloudFormation resolves at deployment (``Ref``, ``Fn::GetAtt``, ``Fn::Sub``'s
variables) is counted as ``REFERENCE_CHARS`` characters, an ARN's usual length or more, so a
template within these checks is within the quotas once deployed."""

from __future__ import annotations

import json
import re
from typing import Any

SQS_POLICY_STATEMENTS = 20
SQS_POLICY_BYTES = 8_192
EVENT_PATTERN_CHARS = 2_048
UNRESERVED_CONCURRENCY = 100
DEFAULT_ACCOUNT_CONCURRENCY = 1_000
ACCOUNT_CONCURRENCY_CONTEXT = "qrie:accountConcurrency"
DEFINITION_BYTES = 1_048_576
REFERENCE_CHARS = 128
SUB_VARIABLE = re.compile(r"\$\{[^!][^}]*\}")


class QuotaExceeded(ValueError):
    """A synthesized template passes an AWS quota that deployment or run time would hit."""


def deployed_text(value: Any) -> str:
    """The JSON text ``value`` has once CloudFormation resolved its references (sized, not real)."""
    return json.dumps(_deployed(value), separators=(",", ":"))


def _deployed(value: Any) -> Any:
    if isinstance(value, list):
        return [_deployed(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Fn::Join":
            separator, parts = argument
            return separator.join(str(_deployed(p)) for p in parts)
        if key == "Fn::Sub":
            text = argument if isinstance(argument, str) else argument[0]
            return SUB_VARIABLE.sub("x" * REFERENCE_CHARS, text)
        if key in ("Ref", "Fn::GetAtt", "Fn::ImportValue", "Fn::Select", "Fn::If"):
            return "x" * REFERENCE_CHARS
    return {k: _deployed(v) for k, v in value.items()}


def violations(template: dict[str, Any], account_concurrency: int = DEFAULT_ACCOUNT_CONCURRENCY) -> list[str]:
    found: list[str] = []
    resources = template.get("Resources", {})
    reserved = 0
    for name, resource in resources.items():
        kind, props = resource.get("Type"), resource.get("Properties", {})
        if kind == "AWS::SQS::QueuePolicy":
            document = props.get("PolicyDocument", {})
            count = len(document.get("Statement", []))
            if count > SQS_POLICY_STATEMENTS:
                found.append(f"{name}: {count} queue policy statements (SQS allows {SQS_POLICY_STATEMENTS})")
            size = len(deployed_text(document).encode())
            if size > SQS_POLICY_BYTES:
                found.append(f"{name}: queue policy of ~{size:,} bytes (SQS allows {SQS_POLICY_BYTES:,})")
        elif kind == "AWS::Events::Rule" and "EventPattern" in props:
            chars = len(deployed_text(props["EventPattern"]))
            if chars > EVENT_PATTERN_CHARS:
                quota = f"EventBridge allows {EVENT_PATTERN_CHARS:,}"
                found.append(f"{name}: event pattern of {chars:,} characters ({quota})")
        elif kind == "AWS::Lambda::Function":
            reserved += int(props.get("ReservedConcurrentExecutions", 0))
        elif kind == "AWS::StepFunctions::StateMachine":
            size = len(_definition_text(props).encode())
            if size > DEFINITION_BYTES:
                found.append(
                    f"{name}: definition of ~{size:,} bytes (Step Functions allows {DEFINITION_BYTES:,})"
                )
    if reserved > account_concurrency - UNRESERVED_CONCURRENCY:
        found.append(
            f"functions reserve {reserved:,} concurrent executions of the account's {account_concurrency:,}:"
            f" Lambda keeps {UNRESERVED_CONCURRENCY} unreserved, so at most"
            f" {account_concurrency - UNRESERVED_CONCURRENCY:,} may be reserved"
        )
    return found


def _definition_text(props: dict[str, Any]) -> str:
    definition = props.get("DefinitionString") or props.get("Definition") or ""
    text = _deployed(definition)
    if isinstance(text, str):
        for key in props.get("DefinitionSubstitutions", {}):
            text = text.replace("${" + key + "}", "x" * REFERENCE_CHARS)
        return text
    return json.dumps(text)


def check(
    stack_name: str, template: dict[str, Any], account_concurrency: int = DEFAULT_ACCOUNT_CONCURRENCY
) -> None:
    if found := violations(template, account_concurrency):
        raise QuotaExceeded(f"{stack_name} passes AWS quotas: " + "; ".join(found))
