"""The quotas synthesis checks (stacks.quotas), on small templates: each refused past its limit
and accepted at it."""

from __future__ import annotations

import pytest

from stacks import quotas


def template(**resources: dict) -> dict:
    return {"Resources": resources}


def queue_policy(statements: int, padding: int = 0) -> dict:
    """``statements`` like a rule's (two references), each ~400 bytes + ``padding`` deployed."""
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": {"Fn::GetAtt": ["Queue", "Arn"]},
        "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["Rule", "Arn"]}}},
        "Sid": "x" * padding,
    }
    return {
        "Type": "AWS::SQS::QueuePolicy",
        "Properties": {"PolicyDocument": {"Statement": [statement] * statements}},
    }


def test_queue_policy_statements_past_20_are_refused() -> None:
    small = {
        "Type": "AWS::SQS::QueuePolicy",
        "Properties": {"PolicyDocument": {"Statement": [{"Effect": "Allow"}]}},
    }
    small["Properties"]["PolicyDocument"]["Statement"] *= 20
    assert quotas.violations(template(P=small)) == []
    small["Properties"]["PolicyDocument"]["Statement"] *= 2
    (found,) = quotas.violations(template(P=small))
    assert "40 queue policy statements (SQS allows 20)" in found


def test_queue_policy_past_8192_bytes_counting_references_at_deployed_length() -> None:
    """A rule's statement is ~420 bytes once its two ARNs are resolved: 19 fit, 20 do not (the
    bytes run out before the statements do)."""
    assert quotas.violations(template(P=queue_policy(19))) == []
    (found,) = quotas.violations(template(P=queue_policy(20)))
    assert "bytes (SQS allows 8,192)" in found


def test_event_pattern_past_2048_characters_is_refused() -> None:
    def rule(names: int) -> dict:
        pattern = {"detail": {"eventName": [f"Event{n:04d}" for n in range(names)]}}
        return {"Type": "AWS::Events::Rule", "Properties": {"EventPattern": pattern}}

    assert quotas.violations(template(R=rule(100))) == []  # ~1,230 characters
    (found,) = quotas.violations(template(R=rule(200)))
    assert "(EventBridge allows 2,048)" in found


def test_reserved_concurrency_must_leave_100_unreserved() -> None:
    def function(reserved: int) -> dict:
        return {"Type": "AWS::Lambda::Function", "Properties": {"ReservedConcurrentExecutions": reserved}}

    assert quotas.violations(template(A=function(850), B=function(50))) == []
    (found,) = quotas.violations(template(A=function(850), B=function(51)))
    assert "reserve 901" in found
    assert "at most 900" in found
    assert quotas.violations(template(A=function(850), B=function(51)), account_concurrency=2_000) == []


def test_state_machine_definition_past_1_mb_is_refused_substitutions_counted() -> None:
    def machine(states: int) -> dict:
        body = '{"States": {' + ",".join(f'"S{n}": {{"Resource": "${{Fn}}"}}' for n in range(states)) + "}}"
        return {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {"DefinitionString": body, "DefinitionSubstitutions": {"Fn": {"Ref": "F"}}},
        }

    assert quotas.violations(template(M=machine(5_000))) == []  # ~0.8 MB once substituted
    (found,) = quotas.violations(template(M=machine(7_000)))
    assert "(Step Functions allows 1,048,576)" in found


def test_check_names_the_stack_and_every_quota_passed() -> None:
    with pytest.raises(quotas.QuotaExceeded, match=r"^Core passes AWS quotas: P: 21 .*; P: queue policy"):
        quotas.check("Core", template(P=queue_policy(21)))
