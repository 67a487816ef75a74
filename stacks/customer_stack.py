"""What a customer account deploys to be onboarded: the read-only role the operator's collectors
assume (with the ExternalId), and EventBridge rules forwarding the CloudTrail events of the
registered services to the operator's bus.

The stack has no assets and no bootstrap dependency (``BootstraplessSynthesizer``), so its
synthesized template is a plain CloudFormation template a customer can deploy without the CDK
(``qrie onboarding template``), one account at a time or through service-managed StackSets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import (
    Aws,
    BootstraplessSynthesizer,
    CfnCondition,
    CfnOutput,
    CfnParameter,
    Duration,
    Fn,
    Stack,
)
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from constructs import Construct

from qrie_lib.settings import Settings, get_settings
from stacks.common import OPERATOR_ROLE_PATH, acknowledge, cloudtrail_patterns, pascal

# AWS managed, maintained as services add read-only APIs. Together they allow every call the
# collectors make (each service declares its ``read_actions``; tests/stacks checks the coverage
# against these policies' text).
READ_ONLY_POLICIES = ("SecurityAudit", "job-function/ViewOnlyAccess")

ACCOUNT_ID_PATTERN = r"^\d{12}$"
# What sts:AssumeRole accepts, except the public default of Qrie ≤ 0.1 (qrie_lib.external_ids).
EXTERNAL_ID_PATTERN = r"^(?!qrie-external-id$)[\w+=,.@:/-]{2,1224}$"
EVENT_BUS_ARN_PATTERN = r"^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus/[\w.\-/]+$"


@dataclass(frozen=True)
class ParameterDefaults:
    """Values to pre-fill in the template's parameters (the customer can still change them)."""

    operator_account_id: str | None = None
    external_id: str | None = None
    event_bus_arn: str | None = None


class CustomerStack(Stack):
    """``stackset=True``: the role is global while a StackSet deploys to several regions, so it is
    created only in the ``RoleRegion`` parameter's region; the forwarding rules go everywhere
    (CloudTrail events arrive in the region where the call was made)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stackset: bool = False,
        defaults: ParameterDefaults | None = None,
        settings: Settings | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            synthesizer=BootstraplessSynthesizer(),
            analytics_reporting=False,
            description="Qrie onboarding: read-only role for the Qrie operator, CloudTrail event forwarding.",
            **kwargs,
        )
        settings = settings or get_settings()
        defaults = defaults or ParameterDefaults()
        operator = self._parameter(
            "OperatorAccountId",
            defaults.operator_account_id,
            "The AWS account that runs Qrie.",
            allowed_pattern=ACCOUNT_ID_PATTERN,
        )
        external_id = self._parameter(
            "ExternalId",
            defaults.external_id,
            "The ExternalId the operator presents when assuming the role.",
            allowed_pattern=EXTERNAL_ID_PATTERN,
        )
        bus_arn = self._parameter(
            "OperatorEventBusArn",
            defaults.event_bus_arn,
            "The operator stack's EventBusArn output.",
            allowed_pattern=EVENT_BUS_ARN_PATTERN,
        )
        role = self._read_only_role(settings.role_name, operator, external_id)
        output = CfnOutput(self, "ReadOnlyRoleArn", value=role.role_arn)
        if stackset:
            only_in_role_region = self._role_region_condition()
            role.node.default_child.cfn_options.condition = only_in_role_region  # type: ignore[union-attr]
            output.condition = only_in_role_region
        self._forward_events(bus_arn)

    def _parameter(
        self, name: str, default: str | None, description: str, *, allowed_pattern: str
    ) -> CfnParameter:
        return CfnParameter(
            self,
            name,
            type="String",
            description=description,
            allowed_pattern=allowed_pattern,
            constraint_description=f"must match {allowed_pattern}",
            **({"default": default} if default else {}),
        )

    def _role_region_condition(self) -> CfnCondition:
        region = CfnParameter(
            self,
            "RoleRegion",
            type="String",
            default="us-east-1",
            description="The one region (of those the StackSet deploys to) that creates the global IAM role.",
        )
        return CfnCondition(
            self, "CreateReadOnlyRole", expression=Fn.condition_equals(Aws.REGION, region.value_as_string)
        )

    def _read_only_role(self, name: str, operator: CfnParameter, external_id: CfnParameter) -> iam.Role:
        """Trusts only the operator's task roles (under OPERATOR_ROLE_PATH), with the ExternalId."""
        operator_account = operator.value_as_string
        task_roles = f"arn:{Aws.PARTITION}:iam::{operator_account}:role{OPERATOR_ROLE_PATH}*"
        trusted = iam.AccountPrincipal(operator_account).with_conditions(
            {
                "StringEquals": {"sts:ExternalId": external_id.value_as_string},
                "ArnLike": {"aws:PrincipalArn": task_roles},
            }
        )
        role = iam.Role(
            self,
            "ReadOnlyRole",
            role_name=name,  # the operator builds the ARN from the account id and this name
            assumed_by=trusted,
            description="Qrie: read-only inventory of this account by the Qrie operator",
            max_session_duration=Duration.hours(1),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(p) for p in READ_ONLY_POLICIES],
        )
        for policy in READ_ONLY_POLICIES:
            acknowledge(
                role,
                f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{policy}]",
                "AWS's read-only audit policies, maintained as services add APIs; they cover every "
                "call the collectors make and grant no write or data-read access.",
            )
        return role

    def _forward_events(self, bus_arn: CfnParameter) -> None:
        """One rule per registered service, on the default bus, to the operator's bus."""
        forwarder = iam.Role(
            self,
            "ForwardEventsRole",
            assumed_by=iam.ServicePrincipal(
                "events.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
            description="Qrie: EventBridge puts this account's CloudTrail events on the operator's bus",
        )
        operator_bus = events.EventBus.from_event_bus_arn(self, "OperatorEventBus", bus_arn.value_as_string)
        target = events_targets.EventBus(operator_bus, role=forwarder)  # grants events:PutEvents on it
        for service, pattern in cloudtrail_patterns().items():
            events.Rule(
                self,
                f"Forward{pascal(service)}Events",
                description=f"Qrie: CloudTrail events that touch {service} resources",
                event_pattern=pattern,
                targets=[target],
            )
