"""The verdict machinery: a policy whose needed data could not be collected is not evaluated, and
the evaluator leaves the finding as it is."""

from typing import Any

from qrie_lib.models import Resource
from qrie_lib.policies.base import Policy, Related, Verdict, violation
from qrie_lib.timeutil import now_iso


def resource(**config: Any) -> Resource:
    return Resource(
        arn="arn:aws:s3:::data",
        account_id="111111111111",
        service="s3",
        region="us-east-1",
        resource_type="AWS::S3::Bucket",
        configuration=config,
        describe_time=now_iso(),
    )


def policy(rule: Any = lambda r, _: violation(Policy=r.configuration.get("Policy"))) -> Policy:
    return Policy(
        policy_id="S3Test",
        service="s3",
        resource_type="AWS::S3::Bucket",
        title="t",
        description="d",
        severity=50,
        remediation="r",
        rule=rule,
        needs={"Policy": "GetBucketPolicy"},
    )


DENIED = {"call": "GetBucketPolicy", "code": "AccessDenied"}


def test_a_needed_key_not_collected_is_not_evaluated() -> None:
    verdict = policy().evaluate(resource(Policy=None, CollectErrors=[DENIED]))
    assert verdict == Verdict(
        None, {"NotCollected": [{"Key": "Policy", "Call": "GetBucketPolicy", "Code": "AccessDenied"}]}
    )
    assert not verdict.evaluated


def test_collected_keys_are_evaluated_and_other_calls_errors_do_not_matter() -> None:
    other = {"call": "GetBucketTagging", "code": "AccessDenied"}
    assert policy().evaluate(resource(Policy=None, CollectErrors=[other])).compliant is False
    assert policy().evaluate(resource(Policy=None)).compliant is False


def test_related_carries_settings_and_known_accounts() -> None:
    seen: list[Related] = []
    policy(lambda r, related: seen.append(related) or violation()).evaluate(resource(), {"T": None})
    assert dict(seen[0]) == {"T": None}
    assert seen[0].known_accounts == frozenset()


def test_the_evaluator_leaves_a_finding_alone_when_the_policy_cannot_decide(aws) -> None:
    from orchestration.provision import create_tables
    from qrie_lib import lifecycle
    from qrie_lib.evaluation import NOT_EVALUATED, Evaluator
    from qrie_lib.stores import Stores
    from qrie_lib.stores.findings import FindingState

    create_tables(aws)
    stores = Stores.of(aws)
    (launched,) = lifecycle.launch(stores, ["S3BucketSecureTransportNotEnforced"])
    bucket = resource(Name="data", Policy=None)
    Evaluator(stores.findings, stores.resources, [launched]).evaluate([bucket])
    (finding,) = stores.findings.for_resource(bucket.arn)
    assert finding.state is FindingState.ACTIVE

    denied = resource(Name="data", Policy=None, CollectErrors=[DENIED])
    counts = Evaluator(stores.findings, stores.resources, [launched]).evaluate([denied])
    assert counts["S3BucketSecureTransportNotEnforced", NOT_EVALUATED] == 1
    (kept,) = stores.findings.for_resource(bucket.arn)
    assert kept.state is FindingState.ACTIVE
    assert kept.evidence == finding.evidence
