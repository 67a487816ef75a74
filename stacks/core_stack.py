"""The operator's stack: tables, the run-items bucket, one Lambda per task, the two state machines
deployed from the ASL files as they are, their schedules, the real-time events path (bus → queue →
processor), the IAM-authenticated API, and alarms.

Everything is generated from the declarations the local runtime uses too: ``qrie_lib.schema.TABLES``,
``tasks.registry.TASKS``, ``orchestration.asl``, ``orchestration.schedules.SCHEDULES`` and the service
registry. Physical names are the local runtime's: tables from ``Settings`` (so the ``qrie`` CLI
finds them with the same settings), functions and state machines ``qrie-...``. Only the buckets get
generated names (S3 names are global). Tables are retained when the stack is deleted: a new
deployment then needs them deleted or imported first, which is the point for findings history.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aws_cdk import ArnFormat, Aws, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from orchestration import asl
from orchestration.provision import MAX_MESSAGE_BYTES, MAX_RECEIVE_COUNT
from orchestration.schedules import SCHEDULES, TASK_SCHEDULES
from qrie_lib.notifications import TOPIC_NAME
from qrie_lib.schema import TABLES, Table
from qrie_lib.settings import Settings, get_settings
from stacks.common import OPERATOR_ROLE_PATH, acknowledge, cloudtrail_patterns, pascal
from stacks.console_auth import DOMAIN_PREFIX_CONTEXT, STAGE, ConsoleAuth
from stacks.lambda_code import RUNTIME, task_code
from tasks.registry import TASKS, TaskSpec

RUN_ITEMS_PREFIX = "runs/"  # where qrie_lib.runs.page writes each page of a run's account ids
RUN_RESULTS_PREFIX = "runs/results/"  # where the ASL's ResultWriter writes each map run's results
# What a Distributed Map's ResultWriter needs on its prefix (Step Functions' documented policy;
# its s3:GetObject is already granted on RUN_ITEMS_PREFIX, which holds this prefix).
RESULT_WRITER_ACTIONS = ["s3:PutObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"]
RUN_ITEMS_EXPIRY = Duration.days(30)
# What the accounts sync calls (qrie_lib.accounts_sync.read_organization).
ORGANIZATIONS_READ_ACTIONS = [
    "organizations:DescribeOrganization",
    "organizations:ListRoots",
    "organizations:ListOrganizationalUnitsForParent",
    "organizations:ListAccountsForParent",
]
LOG_RETENTION = logs.RetentionDays.ONE_YEAR
# AWS's recommendation for an SQS-triggered Lambda: at least six times the function timeout, so a
# message is not redelivered while a retried batch is still being processed.
VISIBILITY_TIMEOUT_FACTOR = 6
ITEMS_BUCKET_SUBSTITUTION = "ItemsBucket"
POWERTOOLS_ENV = {
    "POWERTOOLS_SERVICE_NAME": "qrie",
    "POWERTOOLS_METRICS_NAMESPACE": "Qrie",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}
CUSTOMER_ACCOUNTS_CONTEXT = "qrie:customerAccounts"
ORGANIZATION_ID_CONTEXT = "qrie:organizationId"
# EventBridge's "Event bus policy size" quota (characters; adjustable, 10,240 by default). Each
# account listed adds ~36 characters, so a list outgrows it near 280 accounts: name the
# organization instead (one condition for every member account).
BUS_POLICY_QUOTA = 10_240
# How many event processors the queue may run at once (Lambda's SQS maximum concurrency, 2–1,000):
# a burst of CloudTrail events never takes the account's whole Lambda concurrency.
EVENTS_MAX_CONCURRENCY_CONTEXT = "qrie:eventsMaxConcurrency"
EVENTS_MAX_CONCURRENCY = 20
# Concurrency reserved for the functions that must answer while runs fan out (the collectors
# share the rest of the account's Lambda concurrency): context key and default. The event
# processor's is its SQS maximum concurrency, so the queue is never throttled below it.
RESERVED_CONCURRENCY = {
    "EventProcessor": (EVENTS_MAX_CONCURRENCY_CONTEXT, EVENTS_MAX_CONCURRENCY),
    "Api": ("qrie:apiReservedConcurrency", 10),
}
# A run's concurrency, per deployment (the Plan and Page tasks read them): context key and the
# deployed default. 400 accounts × 2 items in flight ≈ 800 task Lambdas at the peak, under the
# default 1,000 account concurrency less the reservations above; a customer account never sees
# more than 2 of its items at once.
RUN_SETTINGS_CONTEXT = {
    "accounts_in_flight": ("qrie:accountsInFlight", 400),
    "items_per_account_in_flight": ("qrie:itemsPerAccountInFlight", 2),
    "accounts_per_page": ("qrie:accountsPerPage", 1000),
}
# Run alarms: a run whose failed items pass this share of its items, and an account that failed
# this many runs in a row (one failed item is a finding about an account, not an alarm).
RUN_FAILURE_PERCENT_CONTEXT = ("qrie:runFailurePercent", 10)
CONSECUTIVE_FAILURES_CONTEXT = ("qrie:consecutiveFailuresAlarm", 3)


def setting_env(field: str) -> str:
    """The environment variable that sets ``Settings.<field>`` (a typo fails synthesis)."""
    if field not in Settings.model_fields:
        raise KeyError(f"Settings has no field {field!r}")
    return f"{Settings.model_config.get('env_prefix', '')}{field}".upper()


def state_machine_name(kind: str) -> str:
    return f"qrie-{kind}"  # as the local runtime names it (orchestration.provision)


class CoreStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: Settings | None = None, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings or get_settings()
        code = task_code(self)  # first: it may set this stack's bundling context
        self.tables = {key: self._table(key, spec) for key, spec in TABLES.items()}
        self.items_bucket = self._items_bucket(self._access_logs_bucket())
        self.notifications_topic = self._notifications_topic()  # before the functions that publish
        self.functions = {task.name: self._function(task, code) for task in TASKS}
        self.state_machines = {kind: self._state_machine(kind) for kind in asl.STATE_MACHINES}
        self._schedules()
        self.event_bus, self.events_dlq = self._events_path()
        self.api = self._api()
        self.console_auth = self._console_auth()
        self.alarm_topic = self._alarms()
        self.dashboard = self._dashboard()
        self._outputs()
        self._acknowledge_customer_role_pattern()
        self._acknowledge_stack_wide()

    def logical_id(self, construct: Construct) -> str:
        """The template logical id of an L2's resource (cdk-nag finding ids quote it)."""
        return self.get_logical_id(construct.node.default_child)  # type: ignore[arg-type]

    # ---- storage -------------------------------------------------------------------------------

    def _table(self, key: str, spec: Table) -> dynamodb.Table:
        def attribute(name: str) -> dynamodb.Attribute:
            return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)

        table = dynamodb.Table(
            self,
            f"{pascal(key)}Table",
            table_name=spec.name(self.settings),
            partition_key=attribute(spec.partition_key),
            sort_key=attribute(spec.sort_key) if spec.sort_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        for index in spec.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=attribute(index.partition_key),
                sort_key=attribute(index.sort_key),
                projection_type=(
                    dynamodb.ProjectionType.ALL
                    if index.projection is None
                    else dynamodb.ProjectionType.INCLUDE
                    if index.projection
                    else dynamodb.ProjectionType.KEYS_ONLY
                ),
                non_key_attributes=list(index.projection) if index.projection else None,
            )
        if spec.indexes:
            acknowledge(
                self,
                f"AwsSolutions-IAM5[Resource::<{self.logical_id(table)}.Arn>/index/*]",
                f"CDK's table grants cover the table's own secondary indexes "
                f"({', '.join(ix.name for ix in spec.indexes)}), which the stores query.",
            )
        return table

    def _access_logs_bucket(self) -> s3.Bucket:
        # cdk-nag's S1 accepts it unlogged: it is the items bucket's access-log destination.
        # Server access logs go through its bucket policy (ACLs stay disabled): that needs the
        # "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy" flag in cdk.json.
        return s3.Bucket(
            self,
            "AccessLogsBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,  # server access logging supports SSE-S3 only
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _items_bucket(self, access_logs: s3.Bucket) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "ItemsBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # Item lists are read once by their run's Distributed Map; kept a while for debugging.
            lifecycle_rules=[
                s3.LifecycleRule(
                    prefix=RUN_ITEMS_PREFIX,
                    expiration=RUN_ITEMS_EXPIRY,
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="items-bucket/",
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self,
            f"AwsSolutions-IAM5[Resource::<{self.logical_id(bucket)}.Arn>/{RUN_ITEMS_PREFIX}*]",
            "Each run writes its pages of account ids under its own keys "
            "(runs/<kind>/<execution>/accounts/*); the page task and the state machines get "
            "GetObject/PutObject on that prefix only.",
        )
        acknowledge(
            self,
            f"AwsSolutions-IAM5[Resource::<{self.logical_id(bucket)}.Arn>/{RUN_RESULTS_PREFIX}*]",
            "A Distributed Map's ResultWriter writes each map run's results under a generated key "
            "(runs/results/<map run id>/...); the state machines may write and read that prefix only.",
        )
        return bucket

    # ---- task functions ------------------------------------------------------------------------

    def _function(self, task: TaskSpec, code: lambda_.Code) -> lambda_.Function:
        # Under OPERATOR_ROLE_PATH: the path customer trust policies name.
        role = iam.Role(
            self,
            f"{task.name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            path=OPERATOR_ROLE_PATH,
            description=f"Qrie task {task.name}",
        )
        log_group = logs.LogGroup(self, f"{task.name}Logs", retention=LOG_RETENTION)
        log_group.grant_write(role)  # instead of the AWSLambdaBasicExecutionRole managed policy
        function = lambda_.Function(
            self,
            f"{task.name}Function",
            function_name=task.function_name,
            code=code,
            handler=task.handler,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            timeout=Duration.seconds(task.timeout_s),
            memory_size=task.memory_mb,
            tracing=lambda_.Tracing.ACTIVE,
            role=role,
            log_group=log_group,
            environment=self._task_environment(task),
            reserved_concurrent_executions=self._reserved_concurrency(task),
        )
        self._grant_task(task, role)
        return function

    def _context_int(self, key: str, default: int) -> int:
        return int(self.node.try_get_context(key) or default)

    def _reserved_concurrency(self, task: TaskSpec) -> int | None:
        reserved = RESERVED_CONCURRENCY.get(task.name)
        return self._context_int(*reserved) if reserved else None

    def _run_environment(self, task: TaskSpec) -> dict[str, str]:
        """A run's concurrency and page size, for the tasks that plan runs."""
        if not task.configures_runs:
            return {}
        return {
            setting_env(field): str(self._context_int(*ctx)) for field, ctx in RUN_SETTINGS_CONTEXT.items()
        }

    def _task_environment(self, task: TaskSpec) -> dict[str, str]:
        settings = self.settings
        # A task that starts executions finds the machines through Settings.<kind>_state_machine_arn.
        machines = {
            setting_env(f"{kind}_state_machine_arn"): self.state_machine_arn(kind)
            for kind in asl.STATE_MACHINES
            if task.starts_executions
        }
        return {
            **machines,
            **POWERTOOLS_ENV,
            setting_env("region"): Aws.REGION,
            **{setting_env(t.setting): self.tables[key].table_name for key, t in TABLES.items()},
            setting_env("items_bucket"): self.items_bucket.bucket_name,
            setting_env("role_name"): settings.role_name,
            # A fallback for accounts onboarded without their own ExternalId (none by default).
            **({setting_env("external_id"): settings.external_id} if settings.external_id else {}),
            setting_env("regions"): json.dumps(list(settings.regions)),  # pydantic-settings reads JSON
            **self._reporting_environment(task),
            **self._run_environment(task),
            **(
                {setting_env("organizations_role_arn"): settings.organizations_role_arn}
                if task.reads_organization and settings.organizations_role_arn
                else {}
            ),
        }

    def _reporting_environment(self, task: TaskSpec) -> dict[str, str]:
        """Where a task that notifies publishes, from what severity, and whether it exports."""
        env = {}
        if task.publishes_notifications:
            env[setting_env("notifications_topic_arn")] = self.notifications_topic.topic_arn
            env[setting_env("notify_min_severity")] = str(self.settings.notify_min_severity)
        if task.imports_findings and self.settings.securityhub_export:
            env[setting_env("securityhub_export")] = "true"
        return env

    def _grant_task(self, task: TaskSpec, role: iam.Role) -> None:
        """Exactly what the TaskSpec declares (DynamoDB grants include the tables' indexes)."""
        for key in task.tables_read:
            self.tables[key].grant_read_data(role)
        for key in task.tables_written:
            self.tables[key].grant_read_write_data(role)
        if task.uses_items_bucket:
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject", "s3:PutObject"],
                    resources=[self.items_bucket.arn_for_objects(f"{RUN_ITEMS_PREFIX}*")],
                )
            )
        if task.assumes_customer_role:
            role.add_to_policy(
                iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[self.customer_role_arn_pattern()])
            )
        if task.reads_organization:
            self._grant_organization_read(role)
        if task.starts_executions:
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["states:StartExecution"],
                    resources=[self.state_machine_arn(kind) for kind in asl.STATE_MACHINES],
                )
            )
        if task.publishes_notifications:
            # Explicit rather than grant_publish (its kms:GenerateDataKey* is a wildcard action):
            # publishing to an SSE topic needs exactly these two on its key.
            topic = self.notifications_topic
            role.add_to_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[topic.topic_arn]))
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[topic.master_key.key_arn]
                )
            )
        if task.imports_findings and self.settings.securityhub_export:
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["securityhub:BatchImportFindings"], resources=[self.securityhub_product_arn()]
                )
            )

    def _grant_organization_read(self, role: iam.Role) -> None:
        """Through the management account's role when one is configured; else in this account,
        which must then be the management account or a delegated administrator."""
        if self.settings.organizations_role_arn:
            statement = iam.PolicyStatement(
                actions=["sts:AssumeRole"], resources=[self.settings.organizations_role_arn]
            )
            role.add_to_policy(statement)
            return
        role.add_to_policy(iam.PolicyStatement(actions=ORGANIZATIONS_READ_ACTIONS, resources=["*"]))

    def securityhub_product_arn(self) -> str:
        """The operator account's default product: custom findings are imported into it."""
        return self.format_arn(
            service="securityhub", resource="product", resource_name=f"{Aws.ACCOUNT_ID}/default"
        )

    def customer_role_arn_pattern(self) -> str:
        """The read-only role in any customer account, and nothing else."""
        return self.format_arn(
            service="iam", region="", account="*", resource="role", resource_name=self.settings.role_name
        )

    def _acknowledge_customer_role_pattern(self) -> None:
        acknowledge(
            self,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::*:role/{self.settings.role_name}]",
            "Customer accounts are data (the accounts table), onboarded without redeploying: the "
            "collectors may assume the one read-only role name in any account, and each such role "
            "trusts only this operator's task roles presenting the ExternalId.",
        )

    # ---- state machines ------------------------------------------------------------------------

    def state_machine_arn(self, kind: str) -> str:
        # Built from the fixed name rather than read from the construct: the machine's own role and
        # the API's role need it before (or without depending on) the machine.
        return self.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=state_machine_name(kind),
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _substitutions(self, kind: str) -> dict[str, str]:
        """Every ``${...}`` of the ASL file, resolved; an unknown one fails synthesis."""
        available = {
            ITEMS_BUCKET_SUBSTITUTION: self.items_bucket.bucket_name,
            **{task.substitution: self.functions[task.name].function_arn for task in TASKS},
        }
        needed = asl.substitutions_in(kind)
        if unknown := needed - available.keys():
            raise ValueError(f"statemachines/{kind}.asl.json needs unknown substitutions {sorted(unknown)}")
        return {key: available[key] for key in sorted(needed)}

    def _state_machine(self, kind: str) -> sfn.StateMachine:
        name = state_machine_name(kind)
        asl.check_timeouts(kind)  # Task TimeoutSeconds agree with the functions' (TaskSpec) timeouts
        substitutions = self._substitutions(kind)
        role = iam.Role(
            self, f"{pascal(kind)}StateMachineRole", assumed_by=iam.ServicePrincipal("states.amazonaws.com")
        )
        invoked = [self.functions[t.name].function_arn for t in TASKS if t.substitution in substitutions]
        # The ASL invokes unqualified function ARNs, so no version/alias ARNs are granted.
        role.add_to_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=invoked))
        # The Distributed Map's ItemReader reads the run's item list ...
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[self.items_bucket.arn_for_objects(f"{RUN_ITEMS_PREFIX}*")],
            )
        )
        # ... writes the map run's results there (ResultWriter: nothing gathers in the execution) ...
        role.add_to_policy(
            iam.PolicyStatement(
                actions=RESULT_WRITER_ACTIONS,
                resources=[self.items_bucket.arn_for_objects(f"{RUN_RESULTS_PREFIX}*")],
            )
        )
        # ... and runs each account as a child execution of this same state machine.
        role.add_to_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[self.state_machine_arn(kind)])
        )
        child_executions = self.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{name}/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution", "states:StopExecution"], resources=[child_executions]
            )
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{name}/*]",
            "Distributed Map child executions get generated names under this state machine; the "
            "pattern is scoped to this state machine's own executions (as AWS documents).",
        )
        log_group = logs.LogGroup(self, f"{pascal(kind)}StateMachineLogs", retention=LOG_RETENTION)
        return sfn.StateMachine(
            self,
            f"{pascal(kind)}StateMachine",
            state_machine_name=name,
            definition_body=sfn.DefinitionBody.from_string(asl.raw(kind)),
            definition_substitutions=substitutions,
            state_machine_type=sfn.StateMachineType.STANDARD,
            tracing_enabled=True,
            # Execution data holds customer resource configurations: keep it out of the logs.
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            role=role,
        )

    def _schedules(self) -> None:
        role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["states:StartExecution"],
                resources=sorted({self.state_machines[s.state_machine].state_machine_arn for s in SCHEDULES}),
            )
        )
        task_functions = sorted({self.functions[s.task].function_arn for s in TASK_SCHEDULES})
        if task_functions:
            role.add_to_policy(
                iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=task_functions)
            )
        targets = [(s, self.state_machines[s.state_machine].state_machine_arn) for s in SCHEDULES]
        targets += [(s, self.functions[s.task].function_arn) for s in TASK_SCHEDULES]
        for schedule, arn in targets:
            scheduler.CfnSchedule(
                self,
                f"{pascal(schedule.name)}Schedule",
                description=f"Qrie {schedule.name}",
                schedule_expression=schedule.expression,
                schedule_expression_timezone=schedule.timezone,
                flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
                target=scheduler.CfnSchedule.TargetProperty(
                    arn=arn,
                    role_arn=role.role_arn,
                    input=json.dumps(schedule.input),
                ),
            )

    # ---- real-time events ----------------------------------------------------------------------

    def _events_path(self) -> tuple[events.EventBus, sqs.Queue]:  # (bus, dead-letter queue)
        """Customer CloudTrail events → this bus → a rule per service → queue → processor."""
        bus = events.EventBus(self, "EventBus")
        self._allow_customers(bus)
        processor_spec = next(t for t in TASKS if t.name == "EventProcessor")
        dlq = sqs.Queue(
            self,
            "EventsDeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        queue = sqs.Queue(
            self,
            "EventsQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,  # EventBridge can deliver to SSE-SQS queues
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(processor_spec.timeout_s * VISIBILITY_TIMEOUT_FACTOR),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=MAX_RECEIVE_COUNT),
            max_message_size_bytes=MAX_MESSAGE_BYTES,
        )
        for service, pattern in cloudtrail_patterns().items():
            events.Rule(
                self,
                f"{pascal(service)}EventsRule",
                description=f"CloudTrail events that touch {service} resources, to the events queue",
                event_bus=bus,
                event_pattern=pattern,
                targets=[events_targets.SqsQueue(queue)],
            )
        self.functions[processor_spec.name].add_event_source(
            event_sources.SqsEventSource(
                queue,
                batch_size=10,
                report_batch_item_failures=True,
                max_concurrency=self._context_int(EVENTS_MAX_CONCURRENCY_CONTEXT, EVENTS_MAX_CONCURRENCY),
            )
        )
        return bus, dlq

    def _allow_customers(self, bus: events.EventBus) -> None:
        """Only the organization's accounts (``aws:PrincipalOrgID``), and the accounts listed as a
        fallback for those outside it, may put events on the bus. With neither context value the
        bus accepts this account's events only."""
        accounts = self._context_list(CUSTOMER_ACCOUNTS_CONTEXT)
        if bad := [a for a in accounts if not re.fullmatch(r"\d{12}", a)]:
            raise ValueError(f"{CUSTOMER_ACCOUNTS_CONTEXT}: not 12-digit account ids: {bad}")
        if bus_policy_size(accounts) > BUS_POLICY_QUOTA:
            raise ValueError(
                f"{CUSTOMER_ACCOUNTS_CONTEXT}: {len(accounts)} accounts make the event bus policy larger "
                f"than EventBridge's {BUS_POLICY_QUOTA:,}-character quota; set {ORGANIZATION_ID_CONTEXT} "
                "and list only the accounts outside the organization"
            )
        statements: dict[str, dict[str, Any]] = {}
        if accounts:
            statements["CustomerAccounts"] = {"principals": [iam.AccountPrincipal(a) for a in accounts]}
        if organization := self.node.try_get_context(ORGANIZATION_ID_CONTEXT):
            statements["CustomerOrganization"] = {
                "principals": [iam.AnyPrincipal()],
                "conditions": {"StringEquals": {"aws:PrincipalOrgID": organization}},
            }
        for sid, who in statements.items():
            bus.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=sid, actions=["events:PutEvents"], resources=[bus.event_bus_arn], **who
                )
            )

    def _context_list(self, key: str) -> list[str]:
        """A list from cdk.json, or a comma-separated string from ``cdk -c key=a,b``."""
        value = self.node.try_get_context(key) or []
        items = value.split(",") if isinstance(value, str) else value
        return [str(item).strip() for item in items if str(item).strip()]

    # ---- API -----------------------------------------------------------------------------------

    def _api(self) -> apigw.LambdaRestApi:
        access_logs = logs.LogGroup(self, "ApiAccessLogs", retention=LOG_RETENTION)
        api = apigw.LambdaRestApi(
            self,
            "Api",
            handler=self.functions["Api"],
            proxy=True,  # ANY on / and on {proxy+}; tasks/api.py routes
            description="Qrie API (IAM-authenticated)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,  # logging needs the account's API Gateway CloudWatch role
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # request bodies may hold customer data
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            ),
        )
        acknowledge(
            api,
            "AwsSolutions-APIG2",
            "A single Lambda proxy route: the handler validates every request body with pydantic.",
        )
        acknowledge(
            api,
            "AwsSolutions-COG4",
            "Callers are operators and tools with AWS credentials: every method outside /console "
            "uses IAM (SigV4) authorization instead of a Cognito user pool (the console's methods: "
            "stacks/console_auth.py).",
        )
        acknowledge(
            api,
            "AwsSolutions-APIG3",
            "IAM authorization rejects unsigned requests before integration; a WAF web ACL is left "
            "to operators who expose the API more widely.",
        )
        acknowledge(
            api,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
            "The account-level role API Gateway needs to write stage logs; AWS maintains it for "
            "exactly that.",
        )
        return api

    def _console_auth(self) -> ConsoleAuth:
        """The console's browser sign-in (stacks/console_auth.py); the managed login's domain
        prefix is ``-c qrie:consoleDomainPrefix=...`` (globally unique per region)."""
        api_function, authorizer = self.functions["Api"], self.functions["ConsoleAuthorizer"]
        auth = ConsoleAuth(
            self,
            "ConsoleAuth",
            api=self.api,
            console=api_function,
            authorizer=authorizer,
            domain_prefix=self.node.try_get_context(DOMAIN_PREFIX_CONTEXT) or f"qrie-{Aws.ACCOUNT_ID}",
        )
        pool = {"console_user_pool_id": auth.user_pool.user_pool_id, "console_client_id": auth.client_id}
        for field, value in pool.items():
            authorizer.add_environment(setting_env(field), value)
        callback = {"console_auth_domain": auth.auth_domain, "console_url": auth.console_url}
        for field, value in (pool | callback).items():
            api_function.add_environment(setting_env(field), value)
        return auth

    # ---- notifications -------------------------------------------------------------------------

    def _notifications_topic(self) -> sns.Topic:
        """Opened findings, for the security team (qrie_lib.notifications). Its own topic, not the
        alarm topic: alarms are for whoever runs Qrie, findings for whoever fixes them, and each
        audience subscribes to its own. Encrypted with its own rotated key; only the tasks that
        notify may publish (their grants include the key)."""
        key = kms.Key(
            self, "NotificationsTopicKey", enable_key_rotation=True, description="Qrie notifications topic"
        )
        return sns.Topic(self, "NotificationsTopic", topic_name=TOPIC_NAME, master_key=key, enforce_ssl=True)

    # ---- monitoring ----------------------------------------------------------------------------

    def _alarms(self) -> sns.Topic:
        topic = sns.Topic(self, "AlarmTopic", master_key=self._alarm_key(), enforce_ssl=True)
        action = cloudwatch_actions.SnsAction(topic)
        period = Duration.minutes(5)
        processor = self.functions["EventProcessor"]
        metrics: dict[str, tuple[cloudwatch.IMetric, str]] = {
            "EventsDeadLetters": (
                self.events_dlq.metric_approximate_number_of_messages_visible(
                    period=period, statistic="Maximum"
                ),
                "Real-time events failed three times and wait in the dead-letter queue.",
            ),
            "EventProcessorErrors": (
                processor.metric_errors(period=period, statistic="Sum"),
                "The event processor raised errors.",
            ),
        }
        for kind, machine in self.state_machines.items():
            for outcome, metric in (
                ("Failed", machine.metric_failed),
                ("TimedOut", machine.metric_timed_out),
                ("Aborted", machine.metric_aborted),
            ):
                metrics[f"{pascal(kind)}Executions{outcome}"] = (
                    metric(period=period, statistic="Sum"),
                    f"A {kind} execution ended {outcome.lower()}: the run failed as a whole (not one item).",
                )
        above = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
        for name, (metric, description) in metrics.items():
            self._alarm(name, metric, description, 0, above, action)
        for kind in self.state_machines:
            self._run_alarms(kind, action)
        return topic

    def _run_metric(self, kind: str, name: str, statistic: str, period: Duration) -> cloudwatch.Metric:
        """A metric the run tasks emit (tasks.common.emit_run_metrics), by kind."""
        return cloudwatch.Metric(
            namespace=POWERTOOLS_ENV["POWERTOOLS_METRICS_NAMESPACE"],
            metric_name=name,
            dimensions_map={"service": POWERTOOLS_ENV["POWERTOOLS_SERVICE_NAME"], "Kind": kind},
            statistic=statistic,
            period=period,
        )

    def _alarm(
        self,
        name: str,
        metric: cloudwatch.IMetric,
        description: str,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
        action: cloudwatch_actions.SnsAction,
    ) -> None:
        cloudwatch.Alarm(
            self,
            f"{name}Alarm",
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        ).add_alarm_action(action)

    def _run_alarms(self, kind: str, action: cloudwatch_actions.SnsAction) -> None:
        """A run's share of failed items (metric math over what its Finalize emits) above a
        percentage, and an account that failed N runs in a row (what its child's Summarize emits)."""
        period = Duration.hours(1)  # a run emits its totals once, at its end
        ratio = cloudwatch.MathExpression(
            expression="IF(items > 0, 100 * failed / items, 0)",
            using_metrics={
                "failed": self._run_metric(kind, "RunItemsFailed", "Sum", period),
                "items": self._run_metric(kind, "RunItems", "Sum", period),
            },
            label=f"{kind} failed items (%)",
            period=period,
        )
        percent = self._context_int(*RUN_FAILURE_PERCENT_CONTEXT)
        self._alarm(
            f"{pascal(kind)}RunFailureRatio",
            ratio,
            f"More than {percent}% of a {kind} run's items failed; its run record lists each with why.",
            percent,
            cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            action,
        )
        runs = self._context_int(*CONSECUTIVE_FAILURES_CONTEXT)
        self._alarm(
            f"{pascal(kind)}AccountConsecutiveFailures",
            self._run_metric(kind, "ConsecutiveFailures", "Maximum", period),
            f"An account failed {runs} {kind} runs in a row; its summary rows in the runs table say why.",
            runs,
            cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            action,
        )

    def _dashboard(self) -> cloudwatch.Dashboard:
        """Findings opened, resolved and suppressed (the evaluators' metrics: scan and event
        processor), run durations and failures, and each task's error rate."""
        period = Duration.hours(1)

        def findings(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=POWERTOOLS_ENV["POWERTOOLS_METRICS_NAMESPACE"],
                metric_name=name,
                dimensions_map={"service": POWERTOOLS_ENV["POWERTOOLS_SERVICE_NAME"]},
                statistic="Sum",
                period=period,
                label=name,
            )

        machines = self.state_machines.items()
        error_rates = [
            cloudwatch.MathExpression(  # ids are unique within a graph: e0/i0, e1/i1, ...
                expression=f"100 * e{n} / MAX([e{n}, i{n}])",
                using_metrics={
                    f"e{n}": function.metric_errors(period=period, statistic="Sum"),
                    f"i{n}": function.metric_invocations(period=period, statistic="Sum"),
                },
                label=name,
                period=period,
            )
            for n, (name, function) in enumerate(self.functions.items())
        ]
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name="qrie-operations")
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Findings opened, resolved and suppressed",
                left=[findings(n) for n in ("FindingsOpened", "FindingsResolved", "FindingsSuppressed")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Run duration (ms, p50 and max)",
                left=[
                    machine.metric_time(period=period, statistic=statistic, label=f"{kind} {statistic}")
                    for kind, machine in machines
                    for statistic in ("p50", "Maximum")
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Runs started and failed",
                left=[
                    m.metric_started(period=period, statistic="Sum", label=f"{k} started")
                    for k, m in machines
                ]
                + [m.metric_failed(period=period, statistic="Sum", label=f"{k} failed") for k, m in machines],
                width=12,
            ),
            cloudwatch.GraphWidget(title="Task error rate (%)", left=error_rates, width=12),
        )
        return dashboard

    def _alarm_key(self) -> kms.Key:
        """A customer managed key: CloudWatch cannot publish to a topic under the AWS managed SNS key."""
        key = kms.Key(self, "AlarmTopicKey", enable_key_rotation=True, description="Qrie alarm topic")
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        return key

    # ---- outputs and stack-wide acknowledgements -----------------------------------------------

    def _outputs(self) -> None:
        # The CLI's --stack-name reads "<Kind>StateMachineArn" (orchestration.executions).
        for kind, machine in self.state_machines.items():
            CfnOutput(self, f"{kind.capitalize()}StateMachineArn", value=machine.state_machine_arn)
        self.api.node.try_remove_child("Endpoint")  # RestApi's own output: replaced by "ApiUrl"
        CfnOutput(self, "ApiUrl", value=self.api.url)
        CfnOutput(self, "EventBusArn", value=self.event_bus.event_bus_arn)
        CfnOutput(self, "AlarmTopicArn", value=self.alarm_topic.topic_arn)
        CfnOutput(self, "NotificationsTopicArn", value=self.notifications_topic.topic_arn)

    def _acknowledge_stack_wide(self) -> None:
        acknowledge(
            self,
            "AwsSolutions-L1",
            f"The runtime is pinned to {RUNTIME.name}: the asset's wheels are built for exactly that "
            "version (pip --python-version), and the code is tested on it.",
        )
        acknowledge(
            self,
            "AwsSolutions-IAM5[Resource::*]",
            "Only where the service has no resource-level permissions: X-Ray trace segments, the "
            "CloudWatch Logs delivery actions Step Functions logging needs, and the accounts sync's "
            "Organizations reads (DescribeOrganization and ListRoots take no resource; the "
            "organisation's id is not known at synthesis).",
        )


def bus_policy_size(accounts: list[str]) -> int:
    """Characters of the bus policy's per-account statement as EventBridge stores it (with the
    organization statement's ~250 characters as headroom)."""
    statement = {
        "Sid": "CustomerAccounts",
        "Effect": "Allow",
        "Principal": {"AWS": [f"arn:aws:iam::{a}:root" for a in accounts]},
        "Action": "events:PutEvents",
        "Resource": "arn:aws:events:us-east-1:123456789012:event-bus/qrie-events",
    }
    return len(json.dumps({"Version": "2012-10-17", "Statement": [statement]})) + 250
