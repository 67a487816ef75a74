"""CIS AWS Foundations v3.0 section 4: log metric filters and alarms on the CloudTrail log group,
evaluated once per account on CloudTrail's coverage anchor, from the account's inventory.

Each control's audit: an active multi-region trail (logging, management events Read/Write All)
delivering to a CloudWatch Logs group; a metric filter on that group with the benchmark's pattern;
an alarm on the filter's metric (namespace and name); an SNS topic among the alarm's actions with at
least one confirmed subscription. Patterns compare exactly, except for whitespace outside quoted
values; where the benchmark's remediation writes a pattern differently from its audit (the event
source of 4.13) or the audit offers two (4.2), each is accepted.

4.1 is judged by what its pattern matches instead (``filter_patterns``): v3.0.0 prints it as
``{ ($.errorCode = *UnauthorizedOperation) || ($.errorCode = AccessDenied*) ||
($.sourceIPAddress!=delivery.logs.amazonaws.com) || ($.eventName!=HeadBucket) }``. Read literally,
the last two terms match nearly every event, which is not the control (unauthorized API calls);
they name the S3 log delivery's HeadBucket noise that may be left out. So the reference is the
unauthorized calls the pattern's error terms match, less that noise, and a filter passes when it
matches at least all of those: the printed form, its ``... || ... && ... && ...`` variant and the
plain two-term form (Security Hub's CloudWatch.2) pass; a filter missing ``AccessDenied*`` or
``*UnauthorizedOperation`` calls fails."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import product
from typing import Any

from qrie_lib.models import Resource
from qrie_lib.policies.base import COMPLIANT, Policy, Related, Verdict, missing, not_evaluated, violation
from qrie_lib.policies.cloudtrail import SELECTOR_NEEDS, STATUS_NEED, multi_region_logging, unknown
from qrie_lib.policies.filter_patterns import covers
from qrie_lib.services.cloudtrail import COVERAGE, TRAIL
from qrie_lib.services.cloudwatch import ALARM
from qrie_lib.services.logs import METRIC_FILTER
from qrie_lib.services.sns import TOPIC

LOG_GROUP_ARN = re.compile(
    r"^arn:aws[\w-]*:logs:(?P<region>[^:]+):(?P<account>\d+):log-group:(?P<name>[^:]+)"
)
QUOTED = re.compile(r'("(?:[^"\\]|\\.)*")')


def canonical(pattern: str) -> str:
    """The pattern with whitespace removed around operators and brackets and collapsed between
    words, outside double-quoted values (``"Failed authentication"`` keeps its space)."""
    parts = QUOTED.split(pattern.strip())
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r" ?([^\w ]) ?", r"\1", re.sub(r"\s+", " ", parts[i]))
    return "".join(parts)


@dataclass(frozen=True)
class Patterns:
    """Which metric filter patterns meet a control; ``printed`` is the benchmark's own (what the
    simulated organisation writes)."""

    printed: str
    accepts: Callable[[str], bool]

    def __call__(self, pattern: str) -> bool:
        return self.accepts(pattern)


def either(*patterns: str) -> Patterns:
    """The benchmark's pattern(s), whitespace aside."""
    accepted = frozenset(canonical(p) for p in patterns)
    return Patterns(patterns[0], lambda pattern: canonical(pattern) in accepted)


# CIS 4.1: the unauthorized calls its pattern is about (error codes AWS returns on a denied call),
# less the log delivery's HeadBucket it leaves out; probes vary each field the pattern reads.
UNAUTHORIZED_CALLS = (
    '{ (($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*")) && '
    '($.sourceIPAddress != "delivery.logs.amazonaws.com") && ($.eventName != "HeadBucket") }'
)
CALL_PROBES = tuple(
    {
        "eventVersion": "1.09",
        "eventSource": source,
        "eventName": name,
        "sourceIPAddress": address,
        "userIdentity": {"type": identity},
        **({"errorCode": code} if code else {}),
    }
    for code, address, (source, name), identity in product(
        (
            "Client.UnauthorizedOperation",
            "UnauthorizedOperation",
            "AccessDenied",
            "AccessDeniedException",
            "ThrottlingException",
            None,
        ),
        ("203.0.113.7", "delivery.logs.amazonaws.com", "ec2.amazonaws.com"),
        (
            ("s3.amazonaws.com", "HeadBucket"),
            ("s3.amazonaws.com", "GetBucketAcl"),
            ("ec2.amazonaws.com", "RunInstances"),
            ("iam.amazonaws.com", "CreateUser"),
        ),
        ("IAMUser", "AssumedRole", "AWSService"),
    )
)


def covering(printed: str, reference: str) -> Patterns:
    """Patterns that match at least every probe event the reference matches."""
    return Patterns(printed, lambda pattern: covers(pattern, reference, CALL_PROBES))


ROUTES = (
    "($.eventName = CreateRoute) || ($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || "
    "($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || "
    "($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable) }"
)
ORGANIZATIONS = " || ".join(
    f'($.eventName = "{name}")'
    for name in [
        "AcceptHandshake",
        "AttachPolicy",
        "CreateAccount",
        "CreateOrganizationalUnit",
        "CreatePolicy",
        "DeclineHandshake",
        "DeleteOrganization",
        "DeleteOrganizationalUnit",
        "DeletePolicy",
        "DetachPolicy",
        "DisablePolicyType",
        "EnablePolicyType",
        "InviteAccountToOrganization",
        "LeaveOrganization",
        "MoveAccount",
        "RemoveAccountFromOrganization",
        "UpdatePolicy",
        "UpdateOrganizationalUnit",
    ]
)
IAM_POLICY_EVENTS = "||".join(
    f"($.eventName={name})"
    for name in [
        "DeleteGroupPolicy",
        "DeleteRolePolicy",
        "DeleteUserPolicy",
        "PutGroupPolicy",
        "PutRolePolicy",
        "PutUserPolicy",
        "CreatePolicy",
        "DeletePolicy",
        "CreatePolicyVersion",
        "DeletePolicyVersion",
        "AttachRolePolicy",
        "DetachRolePolicy",
        "AttachUserPolicy",
        "DetachUserPolicy",
        "AttachGroupPolicy",
        "DetachGroupPolicy",
    ]
)
NO_MFA = '{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes")'


# control → (policy id suffix, what is monitored, which patterns meet the benchmark's v3.0.0)
CONTROLS: dict[str, tuple[str, str, Patterns]] = {
    "4.1": (
        "UnauthorizedApiCalls",
        "unauthorized API calls",
        covering(
            "{ ($.errorCode = *UnauthorizedOperation) || ($.errorCode = AccessDenied*) || "
            "($.sourceIPAddress!=delivery.logs.amazonaws.com) || ($.eventName!=HeadBucket) }",
            UNAUTHORIZED_CALLS,
        ),
    ),
    "4.2": (
        "ConsoleSignInWithoutMfa",
        "Management Console sign-in without MFA",
        either(
            NO_MFA + " }",
            NO_MFA
            + ' && ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }',
        ),
    ),
    "4.3": (
        "RootUsage",
        "usage of the root user",
        either(
            '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && '
            '$.eventType != "AwsServiceEvent" }'
        ),
    ),
    "4.4": ("IamPolicyChanges", "IAM policy changes", either("{" + IAM_POLICY_EVENTS + "}")),
    "4.5": (
        "CloudTrailChanges",
        "CloudTrail configuration changes",
        either(
            "{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) || "
            "($.eventName = StartLogging) || ($.eventName = StopLogging) }"
        ),
    ),
    "4.6": (
        "ConsoleAuthenticationFailures",
        "Management Console authentication failures",
        either('{ ($.eventName = ConsoleLogin) && ($.errorMessage = "Failed authentication") }'),
    ),
    "4.7": (
        "KmsKeyDisableOrDeletion",
        "disabling or scheduled deletion of customer created CMKs",
        either(
            "{($.eventSource = kms.amazonaws.com) && "
            "(($.eventName=DisableKey)||($.eventName=ScheduleKeyDeletion)) }"
        ),
    ),
    "4.8": (
        "S3BucketPolicyChanges",
        "S3 bucket policy changes",
        either(
            "{ ($.eventSource = s3.amazonaws.com) && (($.eventName = PutBucketAcl) || "
            "($.eventName = PutBucketPolicy) || ($.eventName = PutBucketCors) || "
            "($.eventName = PutBucketLifecycle) || ($.eventName = PutBucketReplication) || "
            "($.eventName = DeleteBucketPolicy) || ($.eventName = DeleteBucketCors) || "
            "($.eventName = DeleteBucketLifecycle) || ($.eventName = DeleteBucketReplication)) }"
        ),
    ),
    "4.9": (
        "ConfigChanges",
        "AWS Config configuration changes",
        either(
            "{ ($.eventSource = config.amazonaws.com) && (($.eventName=StopConfigurationRecorder)||"
            "($.eventName=DeleteDeliveryChannel)||($.eventName=PutDeliveryChannel)||"
            "($.eventName=PutConfigurationRecorder)) }"
        ),
    ),
    "4.10": (
        "SecurityGroupChanges",
        "security group changes",
        either(
            "{ ($.eventName = AuthorizeSecurityGroupIngress) || "
            "($.eventName = AuthorizeSecurityGroupEgress) || "
            "($.eventName = RevokeSecurityGroupIngress) || ($.eventName = RevokeSecurityGroupEgress) || "
            "($.eventName = CreateSecurityGroup) || ($.eventName = DeleteSecurityGroup) }"
        ),
    ),
    "4.11": (
        "NetworkAclChanges",
        "changes to network ACLs",
        either(
            "{ ($.eventName = CreateNetworkAcl) || ($.eventName = CreateNetworkAclEntry) || "
            "($.eventName = DeleteNetworkAcl) || ($.eventName = DeleteNetworkAclEntry) || "
            "($.eventName = ReplaceNetworkAclEntry) || ($.eventName = ReplaceNetworkAclAssociation) }"
        ),
    ),
    "4.12": (
        "NetworkGatewayChanges",
        "changes to network gateways",
        either(
            "{ ($.eventName = CreateCustomerGateway) || ($.eventName = DeleteCustomerGateway) || "
            "($.eventName = AttachInternetGateway) || ($.eventName = CreateInternetGateway) || "
            "($.eventName = DeleteInternetGateway) || ($.eventName = DetachInternetGateway) }"
        ),
    ),
    "4.13": (
        "RouteTableChanges",
        "route table changes",
        either("{($.eventSource = ec2.amazonaws.com) && " + ROUTES, "{ " + ROUTES),
    ),
    "4.14": (
        "VpcChanges",
        "VPC changes",
        either(
            "{ ($.eventName = CreateVpc) || ($.eventName = DeleteVpc) || "
            "($.eventName = ModifyVpcAttribute) || "
            "($.eventName = AcceptVpcPeeringConnection) || ($.eventName = CreateVpcPeeringConnection) || "
            "($.eventName = DeleteVpcPeeringConnection) || ($.eventName = RejectVpcPeeringConnection) || "
            "($.eventName = AttachClassicLinkVpc) || ($.eventName = DetachClassicLinkVpc) || "
            "($.eventName = DisableVpcClassicLink) || ($.eventName = EnableVpcClassicLink) }"
        ),
    ),
    "4.15": (
        "OrganizationsChanges",
        "AWS Organizations changes",
        either("{ ($.eventSource = organizations.amazonaws.com) && (" + ORGANIZATIONS + ") }"),
    ),
}


def log_group(trail: Resource) -> dict[str, str] | None:
    match = LOG_GROUP_ARN.match(trail.configuration.get("CloudWatchLogsLogGroupArn") or "")
    return match.groupdict() if match else None


def trail_monitoring(
    trail: Resource, group: dict[str, str], accepts: Patterns, related: Related
) -> dict[str, Any]:
    """How far the audit gets on one trail's log group: its matching filters, their alarms, and the
    alarms' topics with and without a confirmed subscriber (None: a topic's subscriptions unknown)."""
    filters = [
        f
        for f in related.every(METRIC_FILTER)
        if f.region == group["region"]
        and f.configuration.get("LogGroupName") == group["name"]
        and accepts(f.configuration.get("FilterPattern") or "")
    ]
    metrics = {
        (t.get("MetricNamespace"), t.get("MetricName"))
        for f in filters
        for t in f.configuration.get("MetricTransformations") or ()
    }
    alarms = [
        a
        for a in related.every(ALARM)
        if a.region == group["region"]
        and (a.configuration.get("Namespace"), a.configuration.get("MetricName")) in metrics
    ]
    actions = {arn for a in alarms for arn in a.configuration.get("AlarmActions") or () if ":sns:" in arn}
    topics = {t.arn: t for t in related.every(TOPIC) if t.arn in actions}
    subscribed = {
        arn: (topics[arn].configuration.get("ConfirmedSubscriptions") if arn in topics else 0)
        for arn in actions
    }
    return {
        "Trail": trail.arn,
        "LogGroup": group["name"],
        "MetricFilters": [f.configuration.get("FilterName") for f in filters],
        "Alarms": [a.configuration.get("AlarmName") for a in alarms],
        "Topics": subscribed,
        "TopicsUnread": [arn for arn in topics if missing(topics[arn], {"Subs": "ListSubscriptionsByTopic"})],
    }


def monitored(accepts: Patterns) -> Callable[[Resource, Related], Verdict]:
    def rule(_: Resource, related: Related) -> Verdict:
        trails = related.every(TRAIL)
        active = [(t, g) for t in trails if multi_region_logging(t) and (g := log_group(t))]
        reached = [trail_monitoring(t, g, accepts, related) for t, g in active]
        if any(count for r in reached for count in r["Topics"].values()):
            return COMPLIANT
        gaps = [g for t in trails for g in unknown(t, STATUS_NEED | SELECTOR_NEEDS)]
        gaps += [
            {"Topic": arn, "Problem": "subscriptions not read"} for r in reached for arn in r["TopicsUnread"]
        ]
        if gaps:
            return not_evaluated(NotCollected=gaps)
        if not active:
            return violation(
                Missing="an active multi-region trail, all management events, sending to CloudWatch Logs"
            )
        return violation(
            Missing="a matching metric filter, an alarm on its metric and a confirmed subscriber",
            Trails=reached,
        )

    return rule


def policy(control: str, suffix: str, what: str, accepts: Patterns) -> Policy:
    return Policy(
        policy_id=f"CloudTrail{suffix}NotMonitored",
        service="cloudtrail",
        resource_type=COVERAGE,
        title=f"No log metric filter and alarm for {what}",
        description=(
            f"No active multi-region trail's CloudWatch Logs group has a metric filter with CIS {control}'s "
            f"pattern for {what}, an alarm on its metric and an SNS topic with a confirmed subscriber. "
            "Reported once per account."
        ),
        severity=40,
        remediation=(
            f"On the trail's log group: aws logs put-metric-filter with the CIS {control} filter pattern; "
            "aws cloudwatch put-metric-alarm on its metric (Sum >= 1 over 300 s) with --alarm-actions TOPIC; "
            "aws sns subscribe --topic-arn TOPIC and confirm the subscription."
        ),
        rule=monitored(accepts),
        compliance=(f"CIS AWS Foundations v3.0 {control}",),
        related_all=(TRAIL, METRIC_FILTER, ALARM, TOPIC),
    )


POLICIES: tuple[Policy, ...] = tuple(policy(c, *spec) for c, spec in CONTROLS.items())
