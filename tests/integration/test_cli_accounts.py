"""``qrie accounts add``: onboarding never silently overwrites an onboarded account; ``--update``
changes only the fields given. Against the embedded runtime's DynamoDB (moto)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.runtime import LocalRuntime

runner = CliRunner()
ACCOUNT = "210000000001"


@pytest.fixture
def runtime():
    with LocalRuntime() as rt:
        yield rt


def listed() -> dict[str, dict]:
    result = runner.invoke(app, ["accounts", "list", "--json", "--show-external-ids"])
    assert result.exit_code == 0, result.output
    return {a["account_id"]: a for a in json.loads(result.stdout)}


def add(*args: str):
    return runner.invoke(app, ["accounts", "add", ACCOUNT, *args])


def test_add_sets_ou_path_tags_and_a_new_external_id(runtime):
    result = add("--name", "prod", "--ou-path", "/root/prod/", "--tags", "env=prod,team=sec")
    assert result.exit_code == 0, result.output
    account = listed()[ACCOUNT]
    assert (account["name"], account["ou_path"], account["tags"]) == (
        "prod",
        "/root/prod/",
        {"env": "prod", "team": "sec"},
    )
    assert account["external_id"]
    assert account["external_id"] in result.output  # printed: the customer's role must require it


def test_adding_an_onboarded_account_again_is_refused_and_changes_nothing(runtime):
    assert add("--name", "prod", "--ou-path", "/root/prod/", "--tags", "env=prod").exit_code == 0
    before = listed()[ACCOUNT]
    again = add("--name", "other")
    assert again.exit_code == 2
    assert "AccountExists" in again.output
    assert "--update" in again.output
    assert listed()[ACCOUNT] == before


def test_update_changes_only_the_fields_given(runtime):
    first = add("--name", "prod", "--ou-path", "/root/prod/", "--tags", "env=prod", "--regions", "eu-west-1")
    assert first.exit_code == 0, first.output
    before = listed()[ACCOUNT]
    result = add("--update", "--ou-path", "/root/dev/")
    assert result.exit_code == 0, result.output
    after = listed()[ACCOUNT]
    assert after == before | {"ou_path": "/root/dev/"}


@pytest.mark.parametrize(
    "args",
    [["--tags", "env"], ["--tags", "=prod"], ["--regions", "mars-1"], ["--external-id", "qrie-external-id"]],
)
def test_bad_fields_are_one_line_errors_that_write_nothing(runtime, args):
    result = add(*args)
    assert result.exit_code == 2, result.output
    assert "InvalidInput" in result.output
    assert "Traceback" not in result.output
    assert ACCOUNT not in listed()
