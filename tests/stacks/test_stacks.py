"""The CDK app, synthesized once (module fixture) with the cdk-nag plugin, without building the
Lambda asset: template assertions against the declarations the stacks are generated from, IAM
least privilege, cfn-lint and cdk-nag."""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

# Read by the jsii Node.js process when it starts (on the first aws_cdk import).
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("CDK_VALIDATION", "false")  # CDK's built-in template validator, ~10 s a synth

import pytest
import yaml
from aws_cdk import App
from aws_cdk.assertions import Match, Template
from cfnlint.api import ManualArgs, lint_file
from typer.testing import CliRunner

from orchestration import asl
from orchestration.cli_onboarding import app as onboarding_cli
from orchestration.provision import MAX_MESSAGE_BYTES, MAX_RECEIVE_COUNT
from orchestration.schedules import SCHEDULES, TASK_SCHEDULES
from qrie_lib.inventory import ANTI_ENTROPY, ValidInventoryRequest
from qrie_lib.scan import ScanRequest
from qrie_lib.schema import TABLES
from qrie_lib.services.registry import SERVICES, collector_actions
from qrie_lib.settings import Settings, get_settings
from stacks.common import OPERATOR_ROLE_PATH
from stacks.core_stack import (
    BUS_POLICY_QUOTA,
    CUSTOMER_ACCOUNTS_CONTEXT,
    EVENTS_MAX_CONCURRENCY,
    ORGANIZATION_ID_CONTEXT,
    CoreStack,
    bus_policy_size,
)
from stacks.customer_stack import READ_ONLY_POLICIES
from stacks.lambda_code import (
    LOCK_FILE,
    PACKAGES,
    LocalBundler,
    locked_requirements,
    normalized,
    pip_command,
    runtime_dependencies,
)
from stacks.templates import to_yaml, without_cdk_metadata
from tasks.registry import BY_FUNCTION_NAME, BY_NAME, STATE_TIMEOUT_MARGIN_S, TASKS

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = "/console"
CUSTOMER_ACCOUNTS = ["111111111111", "222222222222"]
ORGANIZATION_ID = "o-exampleorg1"
# CDK declares a function's dependency on its role twice (GetAtt and DependsOn); harmless.
CFN_LINT_IGNORED = ["W3005"]


@dataclass(frozen=True)
class Synth:
    outdir: Path
    core: dict[str, Any]
    customer: dict[str, Any]
    report: dict[str, Any] | None  # the cloud assembly's validation report (cdk-nag's findings)
    stackset_yaml: str  # `qrie onboarding template --stackset`


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """app.py's app, with cdk.json's context, no bundling (the asset is staged from source), and
    report-don't-throw validation so the cdk-nag test can read the findings."""
    entry = importlib.import_module("app")
    context = {
        **json.loads((ROOT / "cdk.json").read_text())["context"],
        "aws:cdk:bundling-stacks": [],
        "@aws-cdk/core:failSynthOnValidationErrors": False,
        CUSTOMER_ACCOUNTS_CONTEXT: CUSTOMER_ACCOUNTS,
        ORGANIZATION_ID_CONTEXT: ORGANIZATION_ID,
    }
    outdir = tmp_path_factory.mktemp("cdk.out")
    assembly = entry.build(App(outdir=str(outdir), context=context)).synth()
    report_path = outdir / "validation-report.json"
    cli = CliRunner().invoke(onboarding_cli, ["template", "--stackset"])
    assert cli.exit_code == 0, cli.output
    return Synth(
        outdir=outdir,
        core=assembly.get_stack_by_name(entry.CORE_STACK).template,
        customer=assembly.get_stack_by_name(entry.CUSTOMER_STACK).template,
        report=json.loads(report_path.read_text()) if report_path.exists() else None,
        stackset_yaml=cli.stdout,
    )


# ---- helpers --------------------------------------------------------------------------------


def of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def render(value: Any) -> str:
    """An intrinsic-function value as readable text: Fn::Join joined, the partition as ``aws``,
    other references as ``<LogicalId>`` / ``<LogicalId.Attr>``."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(p) for p in parts)
    if "Ref" in value:
        return "aws" if value["Ref"] == "AWS::Partition" else f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    return json.dumps(value)


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return as_list(document["Statement"])


def role_statements(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every role's identity-policy statements, by role logical id."""
    found: dict[str, list[dict[str, Any]]] = {role: [] for role in of_type(template, "AWS::IAM::Role")}
    for policy in of_type(template, "AWS::IAM::Policy").values():
        for role in policy["Properties"]["Roles"]:
            found[role["Ref"]] += statements(policy["Properties"]["PolicyDocument"])
    for role_id, role in of_type(template, "AWS::IAM::Role").items():
        for inline in role["Properties"].get("Policies", []):
            found[role_id] += statements(inline["PolicyDocument"])
    return found


def actions_on(stmts: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Allowed action → the rendered resources it is allowed on."""
    allowed: dict[str, set[str]] = {}
    for statement in stmts:
        if statement["Effect"] == "Allow":
            for action in as_list(statement["Action"]):
                allowed.setdefault(action, set()).update(render(r) for r in as_list(statement["Resource"]))
    return allowed


def task_roles(template: dict[str, Any]) -> dict[str, str]:
    """TaskSpec name → its function's role logical id."""
    return {
        BY_FUNCTION_NAME[fn["Properties"]["FunctionName"]].name: fn["Properties"]["Role"]["Fn::GetAtt"][0]
        for fn in of_type(template, "AWS::Lambda::Function").values()
    }


def logical_id(template: dict[str, Any], resource_type: str, **properties: Any) -> str:
    matches = [
        k
        for k, r in of_type(template, resource_type).items()
        if all(r["Properties"].get(p) == v for p, v in properties.items())
    ]
    assert len(matches) == 1, (resource_type, properties, matches)
    return matches[0]


def table_id(template: dict[str, Any], key: str) -> str:
    spec = TABLES[key]
    schema = [{"AttributeName": spec.partition_key, "KeyType": "HASH"}]
    if spec.sort_key:
        schema.append({"AttributeName": spec.sort_key, "KeyType": "RANGE"})
    ids = [
        k
        for k, r in of_type(template, "AWS::DynamoDB::Table").items()
        if r["Properties"]["KeySchema"] == schema
    ]
    assert len(ids) == 1, key
    return ids[0]


def state_machine_ids(template: dict[str, Any]) -> dict[str, str]:
    return {
        kind: logical_id(template, "AWS::StepFunctions::StateMachine", StateMachineName=f"qrie-{kind}")
        for kind in asl.STATE_MACHINES
    }


def only(items: list[Any]) -> Any:
    assert len(items) == 1, items
    return items[0]


# ---- operator stack: storage ----------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(TABLES))
def test_table_keys_indexes_and_protection(synth: Synth, key: str) -> None:
    spec = TABLES[key]
    table = synth.core["Resources"][table_id(synth.core, key)]
    props = table["Properties"]
    assert props["TableName"] == spec.name(get_settings())  # what the CLI and the tasks read
    assert table["DeletionPolicy"] == "Retain"
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["DeletionProtectionEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True
    indexes = {
        ix["IndexName"]: [k["AttributeName"] for k in ix["KeySchema"]]
        for ix in props.get("GlobalSecondaryIndexes", [])
    }
    assert indexes == {ix.name: [ix.partition_key, ix.sort_key] for ix in spec.indexes}
    projections = {ix["IndexName"]: ix["Projection"] for ix in props.get("GlobalSecondaryIndexes", [])}
    for ix in spec.indexes:  # only what the queries read: the findings indexes INCLUDE a few attributes
        expected = "ALL" if ix.projection is None else "INCLUDE" if ix.projection else "KEYS_ONLY"
        assert projections[ix.name]["ProjectionType"] == expected
        assert sorted(projections[ix.name].get("NonKeyAttributes", [])) == sorted(ix.projection or ())
    assert {a["AttributeName"] for a in props["AttributeDefinitions"]} == set(spec.attributes)


def test_items_bucket(synth: Synth) -> None:
    template = Template.from_json(synth.core)
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": Match.any_value(),
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [Match.object_like({"Prefix": "runs/", "ExpirationInDays": 30, "Status": "Enabled"})]
                )
            },
            "LoggingConfiguration": {
                "DestinationBucketName": Match.any_value(),
                "LogFilePrefix": Match.any_value(),
            },
        },
    )
    for policy in of_type(synth.core, "AWS::S3::BucketPolicy").values():
        denies = [s for s in statements(policy["Properties"]["PolicyDocument"]) if s["Effect"] == "Deny"]
        assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)
    assert len(of_type(synth.core, "AWS::S3::BucketPolicy")) == len(of_type(synth.core, "AWS::S3::Bucket"))


# ---- operator stack: task functions ---------------------------------------------------------


def test_one_function_per_task_from_one_asset(synth: Synth) -> None:
    functions = {
        f["Properties"]["FunctionName"]: f["Properties"]
        for f in of_type(synth.core, "AWS::Lambda::Function").values()
    }
    assert set(functions) == {t.function_name for t in TASKS}
    settings = get_settings()
    for task in TASKS:
        props = functions[task.function_name]
        assert props["Handler"] == task.handler
        assert (props["Timeout"], props["MemorySize"]) == (task.timeout_s, task.memory_mb)
        assert (props["Runtime"], props["Architectures"]) == ("python3.12", ["arm64"])
        assert props["TracingConfig"] == {"Mode": "Active"}
        env = props["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == "qrie"
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Qrie"
        assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
        assert env["QRIE_ROLE_NAME"] == settings.role_name
        assert "QRIE_EXTERNAL_ID" not in env  # each account row carries its own; no shared default
        assert "QRIE_ITEMS_BUCKET" in env
        assert {f"QRIE_{t.setting.upper()}" for t in TABLES.values()} <= env.keys()
        machines = {
            f"QRIE_{kind.upper()}_STATE_MACHINE_ARN": render(
                env.get(f"QRIE_{kind.upper()}_STATE_MACHINE_ARN", "")
            )
            for kind in asl.STATE_MACHINES
        }
        assert machines == {
            name: f"arn:aws:states:<AWS::Region>:<AWS::AccountId>:stateMachine:qrie-{kind}"
            if task.starts_executions
            else ""
            for name, kind in zip(machines, asl.STATE_MACHINES, strict=True)
        }, task.name
    assert len({json.dumps(f["Code"]) for f in functions.values()}) == 1  # one asset for all


def test_asset_is_the_pip_bundle_of_runtime_dependencies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bundler (without running pip): Lambda's platform, binary wheels, the hash-checked lock
    of pyproject's runtime dependencies only, then the two packages."""
    dependencies = runtime_dependencies()
    assert not [
        d
        for d in dependencies
        if d.split("[")[0].split(">")[0].split("=")[0] in {"moto", "typer", "aws-cdk-lib"}
    ]
    command = pip_command("OUT")
    for flag in (
        "--target OUT",
        "--platform manylinux2014_aarch64",
        "--only-binary=:all:",
        "--python-version 3.12",
        "--no-deps",
        "--require-hashes",
        f"--requirement {LOCK_FILE}",
    ):
        assert flag in " ".join(command)
    ran: list[list[str]] = []
    monkeypatch.setattr("stacks.lambda_code.subprocess.run", lambda cmd, check: ran.append(cmd))
    assert LocalBundler().try_bundle(str(tmp_path), None) is True  # type: ignore[arg-type]
    assert ran == [pip_command(str(tmp_path))]
    assert (tmp_path / "tasks" / "registry.py").exists()
    assert (tmp_path / "qrie_lib" / "settings.py").exists()
    assert not list(tmp_path.rglob("__pycache__"))


def test_the_lock_pins_every_runtime_dependency_within_its_range_with_hashes() -> None:
    pins = locked_requirements()
    for dependency in runtime_dependencies():
        requirement = Requirement(dependency)
        assert requirement.specifier.contains(pins[normalized(requirement.name)]), dependency
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK_FILE.read_text().split("\n", 2)[2])
    assert all("--hash=sha256:" in block for block in blocks if block.strip())
    assert len(blocks) == len(pins)


def modules_of_runtime_dependencies() -> set[str]:
    """Top-level modules the pip bundle provides: the runtime dependencies and theirs."""
    seen: set[str] = set()
    pending = [normalized(d) for d in runtime_dependencies()]
    while pending:
        distribution = pending.pop()
        if distribution not in seen:
            seen.add(distribution)
            requires = metadata.requires(distribution) or []
            pending += [normalized(r) for r in requires if "extra ==" not in r]
    return {
        module
        for module, distributions in metadata.packages_distributions().items()
        if any(normalized(d) in seen for d in distributions)
    }


def test_asset_contains_everything_the_handlers_import() -> None:
    available = set(sys.stdlib_module_names) | set(PACKAGES) | modules_of_runtime_dependencies()
    missing = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                if outside := {n for n in names if n.split(".")[0] not in available}:
                    missing.setdefault(str(path.relative_to(ROOT)), set()).update(outside)
    assert missing == {}


# ---- operator stack: state machines ---------------------------------------------------------


@pytest.mark.parametrize("kind", asl.STATE_MACHINES)
def test_state_machine_deploys_the_asl_file_as_is(synth: Synth, kind: str) -> None:
    props = synth.core["Resources"][state_machine_ids(synth.core)[kind]]["Properties"]
    assert props["DefinitionString"] == asl.raw(kind)  # inline, unchanged
    assert set(props["DefinitionSubstitutions"]) >= asl.substitutions_in(kind)
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False


@pytest.mark.parametrize("kind", asl.STATE_MACHINES)
def test_state_machine_role_is_exactly_what_the_definition_uses(synth: Synth, kind: str) -> None:
    machine = synth.core["Resources"][state_machine_ids(synth.core)[kind]]["Properties"]
    allowed = actions_on(role_statements(synth.core)[machine["RoleArn"]["Fn::GetAtt"][0]])
    functions = {t.substitution: t.function_name for t in TASKS}
    function_ids = {
        f["Properties"]["FunctionName"]: k for k, f in of_type(synth.core, "AWS::Lambda::Function").items()
    }
    used = {functions[s] for s in asl.substitutions_in(kind) if s in functions}
    assert allowed["lambda:InvokeFunction"] == {f"<{function_ids[name]}.Arn>" for name in used}
    assert only(sorted(allowed["s3:GetObject"])).endswith("/runs/*")
    own_arn = f"arn:aws:states:<AWS::Region>:<AWS::AccountId>:stateMachine:qrie-{kind}"
    assert allowed["states:StartExecution"] == {own_arn}
    children = {f"arn:aws:states:<AWS::Region>:<AWS::AccountId>:execution:qrie-{kind}/*"}
    assert allowed["states:DescribeExecution"] == allowed["states:StopExecution"] == children
    assert only(sorted(allowed["s3:PutObject"])).endswith("/runs/results/*")  # the ResultWriter
    assert allowed["s3:AbortMultipartUpload"] == allowed["s3:PutObject"]


@pytest.mark.parametrize("kind", asl.STATE_MACHINES)
def test_state_machine_scales_and_always_finalizes(synth: Synth, kind: str) -> None:
    props = synth.core["Resources"][state_machine_ids(synth.core)[kind]]["Properties"]
    definition = json.loads(props["DefinitionString"])
    accounts = definition["States"]["Accounts"]
    assert accounts["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    # Results go to S3, so nothing gathers in the execution (256 KiB) whatever the account count.
    assert accounts["ResultWriter"]["Resource"] == "arn:aws:states:::s3:putObject"
    assert accounts["ResultWriter"]["Parameters"]["Bucket"] == "${ItemsBucket}"
    assert props["DefinitionSubstitutions"]["ItemsBucket"]["Ref"] in of_type(synth.core, "AWS::S3::Bucket")
    # Failed items are recorded per item: they never fail the map; the map's own failure is caught.
    assert accounts["ToleratedFailurePercentage"] == 100
    assert [c["Next"] for c in accounts["Catch"]] == ["Finalize"] * len(accounts["Catch"])
    assert accounts["Catch"][-1]["ErrorEquals"] == ["States.ALL"]
    assert accounts["Next"] == "MorePages"  # the next page of accounts, or Finalize after the last
    # Every state that calls a task reaches Finalize when it fails, so no run stays RUNNING: the
    # parent's through its Catch (a bad input excepted: it fails first, writing nothing); an
    # account's Expand and Items through its Summarize, which the map's Catch backs up.
    states = definition["States"]
    for name in ("Plan", "Page"):
        assert states[name]["Catch"][-1] == {
            "ErrorEquals": ["States.ALL"],
            "ResultPath": "$.failure",
            "Next": "Finalize",
        }
    child = accounts["ItemProcessor"]["States"]
    for name in ("Expand", "Items"):
        assert child[name]["Catch"][-1]["Next"] == "Summarize"
    assert states["MoreSummaries"]["Choices"][0]["Next"] == "Finalize"  # Finalize pages in a loop
    # Lambda's throttling and service errors are retried with jittered backoff, many times,
    # before anything fails.
    for task in asl.tasks_in(definition):
        throttling = only([r for r in task["Retry"] if "Lambda.TooManyRequestsException" in r["ErrorEquals"]])
        assert {"Lambda.ServiceException", "Lambda.SdkClientException"} <= set(throttling["ErrorEquals"])
        assert throttling["MaxAttempts"] >= 10
        assert throttling["JitterStrategy"] == "FULL"
        assert throttling["BackoffRate"] > 1
    # Concurrency comes from the deployment's settings through the Plan's output.
    assert accounts["MaxConcurrencyPath"] == "$.plan.concurrency.accounts"
    assert accounts["ItemProcessor"]["States"]["Items"]["MaxConcurrencyPath"] == "$.per_account"
    assert "MaxConcurrency" not in accounts
    # Every Task has TimeoutSeconds: the deployed function's timeout plus the registry's margin.
    timeouts = {
        f["Properties"]["FunctionName"]: f["Properties"]["Timeout"]
        for f in of_type(synth.core, "AWS::Lambda::Function").values()
    }
    by_substitution = {t.substitution: t for t in TASKS}
    tasks = list(asl.tasks_in(definition))
    assert tasks
    for task in tasks:
        spec = by_substitution[task["Parameters"]["FunctionName"][2:-1]]
        assert task["TimeoutSeconds"] == timeouts[spec.function_name] + STATE_TIMEOUT_MARGIN_S


def test_schedules_are_the_shared_declarations(synth: Synth) -> None:
    machines = state_machine_ids(synth.core)
    functions = {
        f["Properties"]["FunctionName"]: k for k, f in of_type(synth.core, "AWS::Lambda::Function").items()
    }
    targets = {f"<{machines[s.state_machine]}>" for s in SCHEDULES}
    invoked = {f"<{functions[BY_NAME[s.task].function_name]}.Arn>" for s in TASK_SCHEDULES}
    deployed = {  # by name: the daily and the weekly full scan start the same state machine
        s["Properties"]["Description"].removeprefix("Qrie "): s["Properties"]
        for s in of_type(synth.core, "AWS::Scheduler::Schedule").values()
    }
    declared = {s.name: s for s in (*SCHEDULES, *TASK_SCHEDULES)}
    assert deployed.keys() == declared.keys()
    assert {render(p["Target"]["Arn"]) for p in deployed.values()} == targets | invoked
    for name, schedule in declared.items():
        props = deployed[name]
        assert json.loads(props["Target"]["Input"]) == schedule.input
        assert props["ScheduleExpression"] == schedule.expression
        assert props["ScheduleExpressionTimezone"] == schedule.timezone
        role = props["Target"]["RoleArn"]["Fn::GetAtt"][0]
        assert actions_on(role_statements(synth.core)[role]) == {
            "states:StartExecution": set(targets),
            "lambda:InvokeFunction": set(invoked),
        }
    sync = only([s for s in TASK_SCHEDULES if s.task == "AccountsSync"])  # before the daily scan
    assert (sync.task, sync.expression) == ("AccountsSync", "cron(0 3 * * ? *)")
    weekly, daily = SCHEDULES
    # The weekly inventory's end starts the full scan (its Finalize): no Saturday scan by the clock.
    assert (weekly.expression, weekly.input) == (
        "cron(0 0 ? * SAT *)",
        {"service": "all", "scan_type": ANTI_ENTROPY},
    )
    assert (daily.expression, daily.input) == ("cron(0 4 ? * SUN-FRI *)", {})


def test_schedule_inputs_are_valid_state_machine_inputs() -> None:
    validators = {"inventory": ValidInventoryRequest, "scan": ScanRequest}
    for schedule in SCHEDULES:
        validators[schedule.state_machine].model_validate(schedule.input)


# ---- operator stack: real-time events -------------------------------------------------------


def test_events_queue_redrive_and_processor_mapping(synth: Synth) -> None:
    queues = of_type(synth.core, "AWS::SQS::Queue")
    (queue_id, queue) = only([(k, q) for k, q in queues.items() if "RedrivePolicy" in q["Properties"]])
    redrive = queue["Properties"]["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == MAX_RECEIVE_COUNT == 3
    assert queue["Properties"]["MaximumMessageSize"] == MAX_MESSAGE_BYTES == 262_144  # as locally
    assert redrive["deadLetterTargetArn"]["Fn::GetAtt"][0] in queues
    assert all(q["Properties"]["SqsManagedSseEnabled"] for q in queues.values())
    processor = next(t for t in TASKS if t.name == "EventProcessor")
    assert queue["Properties"]["VisibilityTimeout"] > processor.timeout_s
    mapping = only(list(of_type(synth.core, "AWS::Lambda::EventSourceMapping").values()))["Properties"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": EVENTS_MAX_CONCURRENCY}
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert mapping["FunctionName"] == {
        "Ref": logical_id(synth.core, "AWS::Lambda::Function", FunctionName=processor.function_name)
    }
    for policy in of_type(synth.core, "AWS::SQS::QueuePolicy").values():
        denies = [s for s in statements(policy["Properties"]["PolicyDocument"]) if s["Effect"] == "Deny"]
        assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def registry_patterns() -> dict[str, tuple[str, list[str]]]:
    """source → (CloudTrail eventSource, event names), straight from the service registry."""
    return {
        "aws." + svc.event_source.split(".")[0]: (svc.event_source, sorted(set(svc.event_names)))
        for svc in SERVICES.values()
        if svc.event_names
    }


def rule_patterns(template: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    found = {}
    for rule in of_type(template, "AWS::Events::Rule").values():
        pattern = rule["Properties"]["EventPattern"]
        assert pattern["detail-type"] == ["AWS API Call via CloudTrail"]
        found[only(pattern["source"])] = (
            only(pattern["detail"]["eventSource"]),
            sorted(pattern["detail"]["eventName"]),
        )
    return found


def test_operator_rules_route_the_registry_events_to_the_queue(synth: Synth) -> None:
    assert rule_patterns(synth.core) == registry_patterns()
    queue_id = only(
        [k for k, q in of_type(synth.core, "AWS::SQS::Queue").items() if "RedrivePolicy" in q["Properties"]]
    )
    bus_id = only(list(of_type(synth.core, "AWS::Events::EventBus")))
    for rule in of_type(synth.core, "AWS::Events::Rule").values():
        assert rule["Properties"]["EventBusName"] == {"Ref": bus_id}
        assert only(rule["Properties"]["Targets"])["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]}


def test_bus_accepts_only_onboarded_accounts_and_the_organization(synth: Synth) -> None:
    policies = [
        p["Properties"]["Statement"] for p in of_type(synth.core, "AWS::Events::EventBusPolicy").values()
    ]
    assert {s["Action"] for s in policies} == {"events:PutEvents"}
    accounts = only([s for s in policies if "Condition" not in s])
    assert sorted(render(p) for p in as_list(accounts["Principal"]["AWS"])) == [
        f"arn:aws:iam::{a}:root" for a in CUSTOMER_ACCOUNTS
    ]
    organization = only([s for s in policies if "Condition" in s])
    assert organization["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": ORGANIZATION_ID}}


def test_an_account_list_that_outgrows_the_bus_policy_quota_is_refused() -> None:
    """Near 280 listed accounts the policy passes EventBridge's quota: synthesis says so and points
    at the organization condition instead of failing at deployment."""
    many = [f"{n:012d}" for n in range(1, 400)]
    fits = max(n for n in range(len(many)) if bus_policy_size(many[:n]) <= BUS_POLICY_QUOTA)
    assert 250 < fits < 300
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = App(context={**context, CUSTOMER_ACCOUNTS_CONTEXT: many[: fits + 1], "aws:cdk:bundling-stacks": []})
    with pytest.raises(ValueError, match=ORGANIZATION_ID_CONTEXT):
        CoreStack(app, "TooMany")


# ---- operator stack: monitoring, API, outputs -----------------------------------------------


def test_alarms_notify_the_encrypted_topic(synth: Synth) -> None:
    topic_id = only([k for k in of_type(synth.core, "AWS::SNS::Topic") if k.startswith("AlarmTopic")])
    assert "KmsMasterKeyId" in synth.core["Resources"][topic_id]["Properties"]
    alarms = list(of_type(synth.core, "AWS::CloudWatch::Alarm").values())
    assert all(a["Properties"]["AlarmActions"] == [{"Ref": topic_id}] for a in alarms)
    watched = {
        (
            a["Properties"]["Namespace"],
            a["Properties"]["MetricName"],
            render(only(a["Properties"]["Dimensions"])["Value"]),
        )
        for a in alarms
        if a["Properties"]["Threshold"] == 0
        and a["Properties"]["ComparisonOperator"] == "GreaterThanThreshold"
    }
    dlq_id = only(
        [
            k
            for k, q in of_type(synth.core, "AWS::SQS::Queue").items()
            if "RedrivePolicy" not in q["Properties"]
        ]
    )
    processor = logical_id(synth.core, "AWS::Lambda::Function", FunctionName="qrie-event-processor")
    expected = {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", f"<{dlq_id}.QueueName>"),
        ("AWS/Lambda", "Errors", f"<{processor}>"),
    } | {
        ("AWS/States", metric, f"<{machine}>")
        for machine in state_machine_ids(synth.core).values()
        for metric in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted")
    }
    assert expected <= watched


def test_run_alarms_watch_a_failure_ratio_and_accounts_failing_in_a_row(synth: Synth) -> None:
    """Not any single failed item: a run's share of failed items (metric math) and an account
    that failed 3 runs in a row."""
    alarms = list(of_type(synth.core, "AWS::CloudWatch::Alarm").values())
    ratios = [a["Properties"] for a in alarms if "Metrics" in a["Properties"]]
    assert len(ratios) == len(asl.STATE_MACHINES)
    for ratio in ratios:
        expression = only([m for m in ratio["Metrics"] if "Expression" in m])
        assert expression["Expression"] == "IF(items > 0, 100 * failed / items, 0)"
        names = {
            m["Id"]: m["MetricStat"]["Metric"]["MetricName"] for m in ratio["Metrics"] if "MetricStat" in m
        }
        assert names == {"failed": "RunItemsFailed", "items": "RunItems"}
        assert (ratio["Threshold"], ratio["ComparisonOperator"]) == (10, "GreaterThanThreshold")
    in_a_row = [a["Properties"] for a in alarms if a["Properties"].get("MetricName") == "ConsecutiveFailures"]
    assert {render(d["Value"]) for a in in_a_row for d in a["Dimensions"] if d["Name"] == "Kind"} == set(
        asl.STATE_MACHINES
    )
    for alarm in in_a_row:
        assert (alarm["Statistic"], alarm["Threshold"]) == ("Maximum", 3)
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_run_concurrency_is_the_deployments_and_the_event_processor_and_api_are_reserved(
    synth: Synth,
) -> None:
    functions = {
        f["Properties"]["FunctionName"]: f["Properties"]
        for f in of_type(synth.core, "AWS::Lambda::Function").values()
    }
    reserved = {
        name: f["ReservedConcurrentExecutions"]
        for name, f in functions.items()
        if "ReservedConcurrentExecutions" in f
    }
    assert reserved == {"qrie-event-processor": 20, "qrie-api": 10}
    run_settings = {
        "QRIE_ACCOUNTS_IN_FLIGHT": "400",
        "QRIE_ITEMS_PER_ACCOUNT_IN_FLIGHT": "2",
        "QRIE_ACCOUNTS_PER_PAGE": "1000",
    }
    for name, function in functions.items():
        env = function.get("Environment", {}).get("Variables", {})
        expected = run_settings if name in ("qrie-inventory-plan", "qrie-scan-plan", "qrie-run-page") else {}
        assert {k: env[k] for k in run_settings if k in env} == expected, name


def test_operations_dashboard_shows_findings_runs_and_task_errors(synth: Synth) -> None:
    dashboard = only(list(of_type(synth.core, "AWS::CloudWatch::Dashboard").values()))["Properties"]
    assert dashboard["DashboardName"] == "qrie-operations"
    widgets = json.loads(render(dashboard["DashboardBody"]))["widgets"]
    metrics = [m for w in widgets for m in w["properties"].get("metrics", [])]
    plain = {tuple(x for x in m if isinstance(x, str)) for m in metrics}
    # the evaluators' own metrics (scan evaluate and the event processor emit them with powertools)
    for name in ("FindingsOpened", "FindingsResolved", "FindingsSuppressed"):
        assert ("Qrie", name, "service", "qrie") in plain
    for machine in state_machine_ids(synth.core).values():
        for metric in ("ExecutionTime", "ExecutionsStarted", "ExecutionsFailed"):
            assert ("AWS/States", metric, "StateMachineArn", f"<{machine}>") in plain
    functions = {logical_id(synth.core, "AWS::Lambda::Function", FunctionName=t.function_name) for t in TASKS}
    for metric in ("Errors", "Invocations"):
        assert {m[3] for m in plain if m[:2] == ("AWS/Lambda", metric)} >= {f"<{f}>" for f in functions}
    rates = [m for m in metrics if isinstance(m[0], dict) and "expression" in m[0]]
    assert len(rates) == len(TASKS)


def test_notifications_topic_is_encrypted_ssl_only_and_only_notifying_tasks_publish(synth: Synth) -> None:
    topic_id = only([k for k in of_type(synth.core, "AWS::SNS::Topic") if k.startswith("NotificationsTopic")])
    topic = synth.core["Resources"][topic_id]["Properties"]
    assert topic["TopicName"] == "qrie-notifications"
    key_id = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]
    assert synth.core["Resources"][key_id]["Properties"]["EnableKeyRotation"] is True
    [policy] = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in of_type(synth.core, "AWS::SNS::TopicPolicy").values()
        if {"Ref": topic_id} in p["Properties"]["Topics"]
    ]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in policy
    )
    roles = role_statements(synth.core)
    for task in TASKS:
        allowed = actions_on(roles[task_roles(synth.core)[task.name]])
        assert allowed.get("sns:Publish") == ({f"<{topic_id}>"} if task.publishes_notifications else None), (
            task.name
        )
        assert (f"<{key_id}.Arn>" in allowed.get("kms:GenerateDataKey", ())) is task.publishes_notifications
        assert "securityhub:BatchImportFindings" not in allowed  # securityhub_export is off by default


def test_with_securityhub_export_only_the_importing_tasks_may_import_into_this_accounts_product() -> None:
    from aws_cdk.assertions import Template

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = App(context={**context, "aws:cdk:bundling-stacks": []})
    stack = CoreStack(app, "WithSecurityHub", settings=Settings(securityhub_export=True))
    template = Template.from_stack(stack).to_json()
    roles = role_statements(template)
    for task in TASKS:
        allowed = actions_on(roles[task_roles(template)[task.name]])
        granted = allowed.get("securityhub:BatchImportFindings")
        if task.imports_findings:
            assert granted == {
                "arn:aws:securityhub:<AWS::Region>:<AWS::AccountId>:product/<AWS::AccountId>/default"
            }
        else:
            assert granted is None, task.name


def method_paths(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each API method's properties by its resource path (``/``, ``/{proxy+}``, ``/console``...)."""
    resources = of_type(template, "AWS::ApiGateway::Resource")

    def path(ref: Any) -> str:
        if "Fn::GetAtt" in ref:  # the API's root resource
            return ""
        props = resources[ref["Ref"]]["Properties"]
        return f"{path(props['ParentId'])}/{props['PathPart']}"

    return {
        path(m["Properties"]["ResourceId"]) or "/": m["Properties"]
        for m in of_type(template, "AWS::ApiGateway::Method").values()
    }


def test_api_uses_iam_auth_access_logs_and_tracing(synth: Synth) -> None:
    methods = method_paths(synth.core)
    assert {m["HttpMethod"] for m in methods.values()} == {"ANY"}
    # Machines: IAM on the root and {proxy+}; the console is the only other tree (test below).
    assert {p: m["AuthorizationType"] for p, m in methods.items() if not p.startswith(CONSOLE)} == {
        "/": "AWS_IAM",
        "/{proxy+}": "AWS_IAM",
    }
    stage = only(list(of_type(synth.core, "AWS::ApiGateway::Stage").values()))["Properties"]
    assert stage["TracingEnabled"] is True
    assert "DestinationArn" in stage["AccessLogSetting"]
    api_function = logical_id(synth.core, "AWS::Lambda::Function", FunctionName="qrie-api")
    integration = only(sorted({json.dumps(m["Integration"]["Uri"]) for m in methods.values()}))
    assert api_function in integration


# ---- operator stack: the console's sign-in (stacks/console_auth.py) ---------------------------


def test_console_user_pool_admin_created_users_strong_passwords_totp(synth: Synth) -> None:
    pool = only(list(of_type(synth.core, "AWS::Cognito::UserPool").values()))
    props = pool["Properties"]
    assert props["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert props["MfaConfiguration"] == "ON"
    assert props["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    password = props["Policies"]["PasswordPolicy"]
    assert password["MinimumLength"] >= 14
    assert all(password[f"Require{c}"] for c in ("Lowercase", "Uppercase", "Numbers", "Symbols"))
    assert props["DeletionProtection"] == "ACTIVE"
    assert pool["DeletionPolicy"] == "Retain"


def test_console_client_code_grant_with_pkce_to_the_callback(synth: Synth) -> None:
    client = only(list(of_type(synth.core, "AWS::Cognito::UserPoolClient").values()))["Properties"]
    assert client["AllowedOAuthFlows"] == ["code"]
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert client.get("GenerateSecret", False) is False  # public: PKCE, no secret in a Lambda
    assert set(client["AllowedOAuthScopes"]) == {"openid", "email"}
    api = logical_id(synth.core, "AWS::ApiGateway::RestApi")
    assert [render(u) for u in client["CallbackURLs"]] == [
        f"https://<{api}>.execute-api.<AWS::Region>.<AWS::URLSuffix>/v1/console/auth/callback"
    ]
    assert client["SupportedIdentityProviders"] == ["COGNITO"]


def test_console_domain_prefix_from_context(synth: Synth) -> None:
    domain = only(list(of_type(synth.core, "AWS::Cognito::UserPoolDomain").values()))["Properties"]
    assert render(domain["Domain"]) == "qrie-<AWS::AccountId>"  # -c qrie:consoleDomainPrefix=...
    pool = only(list(of_type(synth.core, "AWS::Cognito::UserPool")))
    assert domain["UserPoolId"] == {"Ref": pool}
    outputs = synth.core["Outputs"]
    assert render(outputs["ConsoleUrl"]["Value"]).endswith("/v1/console/")
    assert outputs["ConsoleUserPoolId"]["Value"] == {"Ref": pool}


def test_console_methods_use_the_session_authorizer_and_sign_in_is_open(synth: Synth) -> None:
    methods = method_paths(synth.core)
    authorizer_id = only(list(of_type(synth.core, "AWS::ApiGateway::Authorizer")))
    console = {p: m for p, m in methods.items() if p.startswith(CONSOLE)}
    assert set(console) == {CONSOLE, f"{CONSOLE}/{{proxy+}}", f"{CONSOLE}/auth/{{proxy+}}"}
    for path in (CONSOLE, f"{CONSOLE}/{{proxy+}}"):
        assert console[path]["AuthorizationType"] == "CUSTOM"
        assert console[path]["AuthorizerId"] == {"Ref": authorizer_id}
    assert console[f"{CONSOLE}/auth/{{proxy+}}"]["AuthorizationType"] == "NONE"
    authorizer = of_type(synth.core, "AWS::ApiGateway::Authorizer")[authorizer_id]["Properties"]
    assert authorizer["Type"] == "REQUEST"
    assert authorizer["IdentitySource"] == "method.request.header.Cookie"
    function = logical_id(synth.core, "AWS::Lambda::Function", FunctionName="qrie-console-authorizer")
    assert function in json.dumps(authorizer["AuthorizerUri"])
    # Its 401 (no or bad session) sends the browser to the sign-in.
    response = only(list(of_type(synth.core, "AWS::ApiGateway::GatewayResponse").values()))["Properties"]
    assert response["ResponseType"] == "UNAUTHORIZED"
    assert response["StatusCode"] == "302"
    assert response["ResponseParameters"]["gatewayresponse.header.Location"] == "'/v1/console/auth/login'"


def test_console_authorizer_and_api_know_the_pool(synth: Synth) -> None:
    functions = of_type(synth.core, "AWS::Lambda::Function")
    env = {
        f["Properties"]["FunctionName"]: f["Properties"]["Environment"]["Variables"]
        for f in functions.values()
    }
    pool = only(list(of_type(synth.core, "AWS::Cognito::UserPool")))
    client = only(list(of_type(synth.core, "AWS::Cognito::UserPoolClient")))
    for name in ("qrie-console-authorizer", "qrie-api"):
        assert env[name]["QRIE_CONSOLE_USER_POOL_ID"] == {"Ref": pool}
        assert env[name]["QRIE_CONSOLE_CLIENT_ID"] == {"Ref": client}
    assert render(env["qrie-api"]["QRIE_CONSOLE_URL"]).endswith("/v1/console")
    assert render(env["qrie-api"]["QRIE_CONSOLE_AUTH_DOMAIN"]).startswith("https://qrie-")


def test_console_authorizer_may_only_write_its_logs_and_traces(synth: Synth) -> None:
    role = task_roles(synth.core)["ConsoleAuthorizer"]
    allowed = actions_on(role_statements(synth.core)[role])
    assert set(allowed) <= {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }, allowed
    # API Gateway may invoke it for this API's authorizer only.
    permissions = [
        p["Properties"]
        for p in of_type(synth.core, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"]
        == {
            "Fn::GetAtt": [
                logical_id(synth.core, "AWS::Lambda::Function", FunctionName="qrie-console-authorizer"),
                "Arn",
            ]
        }
    ]
    assert [p["Principal"] for p in permissions] == ["apigateway.amazonaws.com"]
    assert "/authorizers/" in render(only(permissions)["SourceArn"])


def test_outputs_the_cli_reads(synth: Synth) -> None:
    outputs = synth.core["Outputs"]
    machines = state_machine_ids(synth.core)
    for kind in asl.STATE_MACHINES:  # orchestration.executions reads "<Kind>StateMachineArn"
        assert outputs[f"{kind.capitalize()}StateMachineArn"]["Value"] == {"Ref": machines[kind]}
    assert {"ApiUrl", "EventBusArn"} <= outputs.keys()


# ---- operator stack: least privilege --------------------------------------------------------


def policy_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every statement of every policy in the template, identity or resource, with its resource."""
    for resource_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        for key in ("PolicyDocument", "KeyPolicy", "AssumeRolePolicyDocument"):
            if key in props:
                yield from ((resource_id, s) for s in statements(props[key]))
        for inline in props.get("Policies", []) if isinstance(props.get("Policies"), list) else []:
            yield from ((resource_id, s) for s in statements(inline["PolicyDocument"]))
        if resource["Type"] == "AWS::Events::EventBusPolicy":
            yield resource_id, props["Statement"]


def is_key_admin_delegation(resource_type: str, statement: dict[str, Any]) -> bool:
    """AWS's default key policy statement: key administration left to the account's IAM policies."""
    return (
        resource_type == "AWS::KMS::Key"
        and statement["Action"] == "kms:*"
        and render(statement["Principal"]["AWS"]) == "arn:aws:iam::<AWS::AccountId>:root"
    )


def test_no_wildcard_actions(synth: Synth) -> None:
    """Every allowed action is named; the one exception is the alarm key's default delegation."""
    for template in (synth.core, synth.customer):
        wildcards = [
            (resource_id, statement["Action"])
            for resource_id, statement in policy_statements(template)
            if statement["Effect"] == "Allow"
            and any("*" in a for a in as_list(statement["Action"]))
            and not is_key_admin_delegation(template["Resources"][resource_id]["Type"], statement)
        ]
        assert wildcards == []


def test_task_permissions_follow_their_task_specs(synth: Synth) -> None:
    roles = role_statements(synth.core)
    customer_role = f"arn:aws:iam::*:role/{get_settings().role_name}"
    machines = {
        f"arn:aws:states:<AWS::Region>:<AWS::AccountId>:stateMachine:qrie-{k}" for k in asl.STATE_MACHINES
    }
    tables = {key: f"<{table_id(synth.core, key)}.Arn>" for key in TABLES}
    for task in TASKS:
        allowed = actions_on(roles[task_roles(synth.core)[task.name]])
        assert allowed.get("sts:AssumeRole") == ({customer_role} if task.assumes_customer_role else None), (
            task.name
        )
        assert allowed.get("states:StartExecution") == (machines if task.starts_executions else None), (
            task.name
        )
        assert ("s3:PutObject" in allowed) is task.uses_items_bucket, task.name
        assert ("organizations:ListAccountsForParent" in allowed) is task.reads_organization, task.name
        written = {tables[t] for t in task.tables_written}
        readable = written | {tables[t] for t in task.tables_read}
        assert {r for r in allowed.get("dynamodb:PutItem", ()) if "/index/" not in r} == written, task.name
        assert {r for r in allowed.get("dynamodb:Query", ()) if "/index/" not in r} == readable, task.name


def test_only_assuming_tasks_may_assume_and_only_the_customer_role(synth: Synth) -> None:
    assuming = {task_roles(synth.core)[t.name] for t in TASKS if t.assumes_customer_role}
    for role, stmts in role_statements(synth.core).items():
        resources = actions_on(stmts).get("sts:AssumeRole")
        assert (resources is not None) is (role in assuming), role
    roles = of_type(synth.core, "AWS::IAM::Role")
    assert all(roles[r]["Properties"]["Path"] == OPERATOR_ROLE_PATH for r in assuming)


# ---- customer stack -------------------------------------------------------------------------


def customer_role(template: dict[str, Any]) -> dict[str, Any]:
    return only([r for r in of_type(template, "AWS::IAM::Role").values() if "RoleName" in r["Properties"]])


def test_customer_role_trusts_only_operator_task_roles_with_the_external_id(synth: Synth) -> None:
    role = customer_role(synth.customer)["Properties"]
    assert role["RoleName"] == get_settings().role_name
    trust = only(statements(role["AssumeRolePolicyDocument"]))
    assert render(trust["Principal"]["AWS"]) == "arn:aws:iam::<OperatorAccountId>:root"
    assert trust["Condition"]["StringEquals"] == {"sts:ExternalId": {"Ref": "ExternalId"}}
    assert render(trust["Condition"]["ArnLike"]["aws:PrincipalArn"]) == (
        f"arn:aws:iam::<OperatorAccountId>:role{OPERATOR_ROLE_PATH}*"
    )
    assert sorted(render(p).rsplit(":policy/", 1)[1] for p in role["ManagedPolicyArns"]) == sorted(
        READ_ONLY_POLICIES
    )


def test_read_only_policies_cover_every_collector_call() -> None:
    """SecurityAudit + ViewOnlyAccess, as moto ships their documents, allow each call."""
    from moto.iam.models import aws_managed_policies_data

    catalogue = json.loads(aws_managed_policies_data)
    granted = [
        action.lower()
        for policy in READ_ONLY_POLICIES
        for statement in as_list(catalogue[policy.rsplit("/", 1)[-1]]["Document"]["Statement"])
        if statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
    ]
    assert not [a for a in collector_actions() if not any(fnmatch(a.lower(), g) for g in granted)]


def test_customer_forwarding_rules_are_the_registry_events(synth: Synth) -> None:
    assert rule_patterns(synth.customer) == registry_patterns()
    # CloudTrail's name for s3control's PutPublicAccessBlock, not the API's
    assert "PutAccountPublicAccessBlock" in rule_patterns(synth.customer)["aws.s3"][1]
    forwarder = only(
        [k for k, r in of_type(synth.customer, "AWS::IAM::Role").items() if "RoleName" not in r["Properties"]]
    )
    for rule in of_type(synth.customer, "AWS::Events::Rule").values():
        target = only(rule["Properties"]["Targets"])
        assert target["Arn"] == {"Ref": "OperatorEventBusArn"}
        assert target["RoleArn"] == {"Fn::GetAtt": [forwarder, "Arn"]}
    assert actions_on(role_statements(synth.customer)[forwarder]) == {
        "events:PutEvents": {"<OperatorEventBusArn>"}
    }


def test_customer_template_is_plain_cloudformation(synth: Synth) -> None:
    for template in (synth.customer, yaml.safe_load(synth.stackset_yaml)):
        assert "Rules" not in template  # no bootstrap version check
        assert "BootstrapVersion" not in template["Parameters"]
        assert "CDKMetadata" not in template["Resources"]
        assert {"OperatorAccountId", "ExternalId", "OperatorEventBusArn"} <= template["Parameters"].keys()


def test_stackset_variant_creates_the_global_role_in_one_region(synth: Synth) -> None:
    template = yaml.safe_load(synth.stackset_yaml)
    assert customer_role(template)["Condition"] == "CreateReadOnlyRole"
    assert template["Conditions"]["CreateReadOnlyRole"] == {
        "Fn::Equals": [{"Ref": "AWS::Region"}, {"Ref": "RoleRegion"}]
    }
    assert rule_patterns(template) == registry_patterns()
    assert all("Condition" not in r for r in of_type(template, "AWS::Events::Rule").values())


def test_yaml_is_the_json_template(synth: Synth) -> None:
    assert yaml.safe_load(to_yaml(synth.customer)) == synth.customer
    tricky = {"a": ["yes", "null", "1.5", "x: y", "", "#c", "Fn::Join", 'q"uote', "\u00e9"], "b": {}, "c": []}
    assert yaml.safe_load(to_yaml(tricky)) == tricky
    assert without_cdk_metadata({"Resources": {"R": {"Type": "T", "Metadata": {"aws:cdk:path": "x"}}}}) == {
        "Resources": {"R": {"Type": "T"}}
    }


# ---- linters --------------------------------------------------------------------------------


def lint(path: Path) -> list[str]:
    config = ManualArgs(regions=["us-east-1"], ignore_checks=CFN_LINT_IGNORED)
    return [str(match) for match in lint_file(path, config)]


def test_cfn_lint_clean(synth: Synth, tmp_path: Path) -> None:
    stackset = tmp_path / "customer-stackset.yaml"
    stackset.write_text(synth.stackset_yaml)
    paths = [synth.outdir / "QrieCore.template.json", synth.outdir / "QrieCustomer.template.json", stackset]
    assert {path.name: lint(path) for path in paths} == {path.name: [] for path in paths}


def test_cdk_nag_has_no_unacknowledged_findings(synth: Synth) -> None:
    # The report exists only because a plugin ran (CDK's own validator is off): cdk-nag.
    assert synth.report is not None
    findings = [
        (violation["ruleName"], [c["constructPath"] for c in violation["violatingConstructs"]])
        for plugin in synth.report["pluginReports"]
        for violation in plugin["violations"]
        if violation["severity"] in {"error", "fatal"}
    ]
    assert findings == []
