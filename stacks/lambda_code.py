"""The one code asset every task Lambda runs: the runtime dependencies for the Lambda platform,
plus ``qrie_lib/`` and ``tasks/``, built on this machine without Docker.

CDK calls ``LocalBundler.try_bundle`` when it stages the asset. Synthesis without building (tests,
an offline ``cdk synth``) uses CDK's own switch: a stack outside the ``aws:cdk:bundling-stacks``
context is staged from the source directory without bundling; ``-c qrie:skipBundling=true``
sets that switch for the core stack. Either way the asset is declared by the same code.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jsii
from aws_cdk import Annotations, AssetHashType, BundlingOptions, ILocalBundling, Stack
from aws_cdk import aws_lambda as lambda_

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("qrie_lib", "tasks")  # the Python packages the handlers import (no orchestration/)
RUNTIME = lambda_.Runtime.PYTHON_3_12
PYTHON_VERSION = "3.12"
# Lambda's Python 3.12 runs on Amazon Linux 2023 (glibc 2.34): both wheel generations load there.
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
# The runtime dependencies resolved, pinned and hashed (``make lock``): the same source always
# deploys the same packages, and pip refuses any file whose hash differs.
LOCK_FILE = ROOT / "requirements-lambda.lock"
SKIP_BUNDLING_CONTEXT = "qrie:skipBundling"
BUNDLING_STACKS_CONTEXT = "aws:cdk:bundling-stacks"  # cx_api.BUNDLING_STACKS (not exported to Python)

# The asset's source is the repository root, reduced to what the bundle is built from, so the
# source hash (and so the cached bundle) changes exactly when the code or its dependencies do.
SOURCE_EXCLUDES = [
    "*",
    "!pyproject.toml",
    f"!{LOCK_FILE.name}",
    *(f"!{package}" for package in PACKAGES),
    *(f"!{package}/**" for package in PACKAGES),
    "__pycache__",
    "*.pyc",
]


def runtime_dependencies(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """``[project].dependencies``: what the handlers need at run time (moto, typer and the CDK
    are optional extras and never go into the asset)."""
    return list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])


def locked_requirements(lock_file: Path = LOCK_FILE) -> dict[str, str]:
    """Distribution → pinned version, as the lock file has them."""
    pins = re.findall(r"^([A-Za-z0-9._-]+)==([^\s\\]+)", lock_file.read_text(), flags=re.MULTILINE)
    return {normalized(name): version for name, version in pins}


def normalized(distribution: str) -> str:
    """A distribution's canonical name (PEP 503): ``Pydantic_Settings`` → ``pydantic-settings``."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", distribution).group(0)).lower()  # type: ignore[union-attr]


def pip_command(output_dir: str, lock_file: Path = LOCK_FILE) -> list[str]:
    """pip, installing the locked, hash-checked wheels built for Lambda's platform (never this
    machine's)."""
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        output_dir,
        *platforms,
        "--only-binary=:all:",
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
        "--no-deps",  # the lock is complete: nothing unpinned comes in
        "--require-hashes",
        "--requirement",
        str(lock_file),
    ]


@jsii.implements(ILocalBundling)
class LocalBundler:
    """Builds the asset with pip on this machine; Docker is never needed."""

    def try_bundle(self, output_dir: str, options: BundlingOptions) -> bool:
        # A failed pip raises (CalledProcessError): returning False would make CDK fall back to a
        # Docker build, which is not what anyone running this wants.
        subprocess.run(pip_command(output_dir), check=True)
        for package in PACKAGES:
            shutil.copytree(
                ROOT / package,
                Path(output_dir) / package,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                dirs_exist_ok=True,
            )
        return True


def task_code(stack: Stack) -> lambda_.Code:
    """The shared asset: call it once, before the stack has children (context can only be set
    on a construct without children), and hand the result to every function."""
    if str(stack.node.try_get_context(SKIP_BUNDLING_CONTEXT)).lower() == "true":
        # CDK's own switch, scoped to this stack: staged from source, bundler never called.
        stack.node.set_context(BUNDLING_STACKS_CONTEXT, [])
        Annotations.of(stack).add_warning_v2(
            "qrie:skipBundling",
            "The Lambda asset is the bare source (no dependencies): synthesize only, do not deploy.",
        )
    return lambda_.Code.from_asset(
        str(ROOT),
        exclude=SOURCE_EXCLUDES,
        asset_hash_type=AssetHashType.SOURCE,
        bundling=BundlingOptions(
            image=RUNTIME.bundling_image,  # required by the API; unused, the local bundler succeeds
            local=LocalBundler(),
        ),
    )
