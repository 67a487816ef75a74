"""Every AWS client the project creates comes from ``qrie_lib/aws.py`` (``Aws``): only there do
clients get the endpoint, the local S3 Control host-prefix fix, adaptive retries and call counting.
A raw ``boto3.Session`` elsewhere once sent ``http://{account}.127.0.0.1:PORT`` and broke
``qrie local up``. Checked on the syntax tree, so comments and strings do not count."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGES = ("orchestration", "bench", "tasks", "qrie_lib")
FACTORY = ROOT / "qrie_lib" / "aws.py"
# What may be imported from boto3/botocore outside the factory: nothing that builds a client.
ALLOWED_IMPORTS = frozenset({"botocore.exceptions", "boto3.dynamodb.types"})
# Keywords only boto3's own ``Session.client``/``boto3.client`` take; the factory's methods do not.
RAW_CLIENT_KEYWORDS = frozenset(
    {"region_name", "endpoint_url", "aws_access_key_id", "aws_secret_access_key", "config"}
)


def violations(source: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, name)):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        for module in modules:
            if module.split(".")[0] in ("boto3", "botocore") and module not in ALLOWED_IMPORTS:
                found.append(f"{name}:{node.lineno}: imports {module}")
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("Session", "create_client"):
                found.append(f"{name}:{node.lineno}: calls {called}()")
            raw = RAW_CLIENT_KEYWORDS & {k.arg for k in node.keywords if k.arg}
            if called == "client" and raw:
                found.append(f"{name}:{node.lineno}: client() with boto3's {sorted(raw)}")
    return found


@pytest.mark.parametrize(
    "source",
    [
        "import boto3",
        "from boto3.session import Session",
        "import botocore.session",
        "s = boto3.Session(region_name='us-east-1')",
        "c = session.client('s3', region_name='eu-west-1')",
        "c = session.client('s3', endpoint_url=url)",
        "c = botocore_session.create_client('s3')",
    ],
)
def test_the_check_catches_client_construction(source):
    assert violations(source, "example.py")


def test_the_check_accepts_the_factory_and_its_handles():
    source = (
        "from botocore.exceptions import ClientError\n"
        "c = aws.client('dynamodb')\n"
        "c = aws.customer_client(account, 'ec2', region)\n"
        "c = org.session(account).client('s3', region)\n"
    )
    assert violations(source, "example.py") == []


def test_no_client_is_built_outside_the_factory():
    files = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py")) if p != FACTORY]
    assert len(files) > 20  # the packages were found
    found = [v for path in files for v in violations(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == []
