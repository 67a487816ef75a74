"""Errors in the user's words (issue 20, item 23), from the ``qrie`` command itself: a mistyped
policy id is refused by every command that takes one, naming the id meant, with no internal model
name or pydantic phrasing, before anything is read or written (the endpoint does not answer: a
command that tried to reach it would fail otherwise)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

QRIE = str(Path(sys.executable).with_name("qrie"))
DEAD = "http://127.0.0.1:1"
TYPO = "S3BucketPublc"


@pytest.mark.parametrize(
    "args",
    [
        ["findings", "--policy", TYPO],
        ["findings", "history", "arn:aws:s3:::bucket", TYPO],
        ["scan", "--policy", TYPO],
        ["policies", "show", TYPO],
        ["policies", "launch", TYPO],
        ["policies", "update", TYPO],
        ["policies", "suspend", TYPO],
        ["suppressions", "list", "--policy", TYPO],
        ["suppressions", "add", "--policy", TYPO, "--reason", "r", "--owner", "o", "--expires", "2030-01-01"],
        ["policies", "show", "s3bucketpublic"],  # another case
    ],
)
def test_a_mistyped_policy_id_names_the_one_meant(args):
    typed = next(a for a in args if a.casefold().startswith("s3bucketpub"))
    result = subprocess.run(
        [QRIE, *args, "--endpoint", DEAD], check=False, capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert f"unknown policy {typed!r} (did you mean 'S3BucketPublic'?)" in output
    for internal in ("Request", "Query", "Value error", "Traceback", "validation error"):
        assert internal not in output, output


def test_an_id_like_none_in_the_catalogue_suggests_nothing():
    result = subprocess.run(
        [QRIE, "policies", "show", "Zzzz", "--endpoint", DEAD],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "UnknownPolicy: unknown policy 'Zzzz'" in result.stderr
    assert "did you mean" not in result.stderr
