"""The frameworks as data: CIS AWS Foundations v3.0.0 lists its 62 recommendations as the benchmark
does, every policy's compliance reference names a listed control, and every automated control
has a policy, but for the known gaps below."""

from __future__ import annotations

from collections import Counter

import pytest

from qrie_lib.errors import UnknownFramework
from qrie_lib.frameworks.registry import FRAMEWORKS, Assessment, get_framework
from qrie_lib.policies.registry import CATALOGUE

CIS = get_framework("cis-aws-3.0")

# Automated controls no policy implements yet, with why. Shrink it as policies land: the test
# fails both on a new gap and on a gap that is now covered.
KNOWN_GAPS: dict[str, str] = {}  # control id -> why no policy implements it yet


def test_cis_lists_the_62_recommendations_by_section():
    assert len(CIS.controls) == 62
    assert len({c.id for c in CIS.controls}) == 62
    assert Counter(c.top_section for c in CIS.controls) == {"1": 22, "2": 9, "3": 9, "4": 16, "5": 6}
    assert Counter(c.assessment for c in CIS.controls) == {Assessment.AUTOMATED: 36, Assessment.MANUAL: 26}


@pytest.mark.parametrize(
    ("control_id", "assessment", "profile"),
    [
        ("1.11", Assessment.MANUAL, "Level 1"),  # prowler says Automated; the benchmark's title: Manual
        ("1.18", Assessment.AUTOMATED, "Level 2"),  # Manual in earlier versions of the benchmark
        ("2.4.1", Assessment.AUTOMATED, "Level 1"),  # steampipe says manual; the benchmark: Automated
        ("1.6", Assessment.MANUAL, "Level 2"),
        ("4.3", Assessment.MANUAL, "Level 1"),
        ("4.16", Assessment.AUTOMATED, "Level 2"),
    ],
)
def test_disputed_and_sample_flags_are_the_benchmarks(control_id, assessment, profile):
    control = next(c for c in CIS.controls if c.id == control_id)
    assert (control.assessment, control.profile) == (assessment, profile)


def test_every_compliance_reference_names_a_listed_control():
    unknown = [
        (policy.policy_id, ref)
        for policy in CATALOGUE.values()
        for ref in policy.compliance
        if not any(
            (c := f.control_of(ref)) is not None and c in f.policies_by_control for f in FRAMEWORKS.values()
        )
    ]
    assert unknown == []


def test_control_to_policies_is_derived_from_the_policies():
    assert "IAMRootAccessKeysPresent" in CIS.policies_by_control["1.4"]
    for control_id, policy_ids in CIS.policies_by_control.items():
        for policy_id in policy_ids:
            assert f"CIS AWS Foundations v3.0 {control_id}" in CATALOGUE[policy_id].compliance


def test_automated_controls_without_a_policy_are_the_known_gaps():
    uncovered = {c.id for c in CIS.controls if c.automated and not CIS.policies_by_control[c.id]}
    assert uncovered - KNOWN_GAPS.keys() == set(), (
        "automated controls with no policy: add one, or a known gap"
    )
    assert KNOWN_GAPS.keys() - uncovered == set(), "now covered: remove them from KNOWN_GAPS"


def test_unknown_framework_is_a_named_error():
    with pytest.raises(UnknownFramework, match=r"cis-aws-3\.0"):
        get_framework("cis-aws-9")
