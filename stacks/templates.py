"""The customer onboarding stack as a plain CloudFormation template (what ``qrie onboarding
template`` prints): synthesized from ``CustomerStack``, without CDK metadata, as YAML or JSON."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from typing import Any

from aws_cdk import App

from qrie_lib.settings import Settings
from stacks.customer_stack import CustomerStack, ParameterDefaults

TEMPLATE_STACK_NAME = "QrieCustomer"


def customer_template(
    *, stackset: bool = False, defaults: ParameterDefaults | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="qrie-cdk-") as outdir:
        # CDK's built-in template validation takes ~10 s; the template is checked by cfn-lint in
        # tests/stacks instead.
        app = App(outdir=outdir, analytics_reporting=False, builtin_cloud_formation_validation=False)
        stack = CustomerStack(
            app, TEMPLATE_STACK_NAME, stackset=stackset, defaults=defaults, settings=settings
        )
        template = app.synth().get_stack_artifact(stack.artifact_id).template
    return without_cdk_metadata(template)


def without_cdk_metadata(template: dict[str, Any]) -> dict[str, Any]:
    """Drop what only the CDK reads (construct paths; the version-reporting resource, if enabled
    through context), so the template reads as hand-written."""
    template = json.loads(json.dumps(template))
    resources = template.get("Resources", {})
    resources.pop("CDKMetadata", None)
    template.get("Conditions", {}).pop("CDKMetadataAvailable", None)
    for resource in resources.values():
        metadata = {k: v for k, v in resource.get("Metadata", {}).items() if not k.startswith("aws:cdk:")}
        if metadata:
            resource["Metadata"] = metadata
        else:
            resource.pop("Metadata", None)
    if not template.get("Conditions", True):
        del template["Conditions"]
    return template


# ---- YAML without a YAML library (PyYAML is not a runtime dependency) ---------------------------

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"}


def to_yaml(document: Any) -> str:
    """Block-style YAML of a JSON document. Strings that could read as anything else are written
    double-quoted, JSON-escaped (YAML's double-quoted style is a superset of JSON's strings)."""
    return "\n".join(_lines(document, 0)) + "\n"


def _lines(value: Any, depth: int) -> Iterator[str]:
    pad = "  " * depth
    if isinstance(value, dict) and value:
        for key, item in value.items():
            if _is_block(item):
                yield f"{pad}{_scalar(str(key))}:"
                yield from _lines(item, depth + 1)
            else:
                yield f"{pad}{_scalar(str(key))}: {_scalar(item)}"
    elif isinstance(value, list) and value:
        for item in value:
            if _is_block(item):
                first, *rest = _lines(item, depth + 1)
                yield f"{pad}- {first.lstrip()}"
                yield from rest
            else:
                yield f"{pad}- {_scalar(item)}"
    else:
        yield pad + _scalar(value)


def _is_block(value: Any) -> bool:
    return isinstance(value, dict | list) and bool(value)


def _scalar(value: Any) -> str:
    if isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text)
