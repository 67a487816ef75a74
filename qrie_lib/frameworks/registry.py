"""The one registry of compliance frameworks, discovered: every ``*.json`` file of this package is
a framework. Which policies implement a control is not written here: it is derived from the
policies' own ``compliance`` references ("CIS AWS Foundations v3.0 2.1.4"), the one source of truth."""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from functools import cached_property
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from qrie_lib.discovery import unique
from qrie_lib.errors import UnknownFramework
from qrie_lib.policies.base import Policy
from qrie_lib.policies.registry import CATALOGUE


class Assessment(StrEnum):
    AUTOMATED = "Automated"
    MANUAL = "Manual"


class Severity(StrEnum):
    """Security Hub's severity labels."""

    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class Control(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    title: str
    section: str
    assessment: Assessment
    profile: Literal["Level 1", "Level 2"] | None = None  # a CIS benchmark's
    severity: Severity | None = None  # a Security Hub standard's
    note: str | None = None  # e.g. how the nearest policy differs from a control none implements exactly

    @property
    def automated(self) -> bool:
        return self.assessment is Assessment.AUTOMATED

    @property
    def top_section(self) -> str:
        return self.id.split(".", 1)[0]


class Framework(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    version: str
    published: str
    cited_as: str  # how a policy's ``compliance`` reference names it, before the control id
    notes: tuple[str, ...] = ()
    sections: dict[str, str]
    controls: tuple[Control, ...]

    @model_validator(mode="after")
    def consistent(self) -> Framework:
        ids = [c.id for c in self.controls]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{self.id}: a control id is listed twice")
        for control in self.controls:
            if control.section not in self.sections or control.top_section not in self.sections:
                raise ValueError(f"{self.id}: control {control.id} is in no listed section")
        return self

    def control_of(self, reference: str) -> str | None:
        """The control id a policy's compliance reference names in this framework, or None."""
        prefix = f"{self.cited_as} "
        return reference.removeprefix(prefix) if reference.startswith(prefix) else None

    @cached_property
    def policies_by_control(self) -> Mapping[str, tuple[str, ...]]:
        """Control id → the ids of the catalogue's policies citing it (every control listed)."""
        found: dict[str, list[str]] = {c.id: [] for c in self.controls}
        for policy in sorted(CATALOGUE.values(), key=lambda p: p.policy_id):
            for control_id in self.cited_by(policy):
                found.setdefault(control_id, []).append(policy.policy_id)
        return {k: tuple(v) for k, v in found.items()}

    def cited_by(self, policy: Policy) -> list[str]:
        return [c for ref in policy.compliance if (c := self.control_of(ref)) is not None]


FRAMEWORKS: dict[str, Framework] = unique(
    (
        Framework.model_validate(json.loads(entry.read_text(encoding="utf-8")))
        for entry in sorted(resources.files(__package__).iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")
    ),
    lambda framework: framework.id,
    "framework",
)


CIS = "cis-aws-3.0"
FSBP = "aws-fsbp"  # AWS Foundational Security Best Practices: its control ids are Security Hub's
FSBP_STANDARDS_ID = "standards/aws-foundational-security-best-practices/v/1.0.0"  # ASFF's StandardsId


def security_control_ids(policy: Policy) -> list[str]:
    """The Security Hub control ids (e.g. ``EC2.13``) of the FSBP controls the policy implements."""
    return FRAMEWORKS[FSBP].cited_by(policy)


def cites_cis(policy: Policy) -> bool:
    return bool(FRAMEWORKS[CIS].cited_by(policy))


def get_framework(framework_id: str) -> Framework:
    try:
        return FRAMEWORKS[framework_id]
    except KeyError:
        known = ", ".join(sorted(FRAMEWORKS))
        raise UnknownFramework(f"unknown framework {framework_id!r}; expected one of {known}") from None
