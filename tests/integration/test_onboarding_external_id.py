"""Onboarding never uses a shared ExternalId: the template for an onboarded account carries the
account's own, the public default of old versions is refused by the CLI and by the template's
own parameter pattern (so a customer cannot deploy it by hand either)."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.runtime import LocalRuntime
from qrie_lib.external_ids import PUBLIC_DEFAULT
from stacks.customer_stack import EXTERNAL_ID_PATTERN

runner = CliRunner()
ACCOUNT = "210000000002"


@pytest.fixture(scope="module")
def runtime():
    with LocalRuntime() as rt:
        yield rt


def template(*args: str):
    return runner.invoke(app, ["onboarding", "template", "--format", "json", *args])


def test_the_template_of_an_onboarded_account_carries_its_own_external_id(runtime):
    assert runner.invoke(app, ["accounts", "add", ACCOUNT]).exit_code == 0
    listed = json.loads(runner.invoke(app, ["accounts", "list", "--json", "--show-external-ids"]).stdout)
    own = next(a["external_id"] for a in listed if a["account_id"] == ACCOUNT)
    result = template("--account-id", ACCOUNT)
    assert result.exit_code == 0, result.output
    parameter = json.loads(result.stdout)["Parameters"]["ExternalId"]
    assert parameter["Default"] == own
    assert re.fullmatch(parameter["AllowedPattern"], own)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--account-id", "210000000099"], "UnknownAccount"),
        (["--account-id", "12"], "InvalidInput"),
        (["--external-id", PUBLIC_DEFAULT], "InvalidExternalId"),
        (["--account-id", ACCOUNT, "--external-id", "x-y-z"], "InvalidInput"),
    ],
)
def test_bad_onboarding_input_is_one_line_and_exit_2(runtime, args, error):
    result = template(*args)
    assert result.exit_code == 2
    assert result.output.strip().startswith(error)
    assert "Traceback" not in result.output


def test_the_template_parameter_refuses_the_public_default():
    assert not re.fullmatch(EXTERNAL_ID_PATTERN, PUBLIC_DEFAULT)
    assert re.fullmatch(EXTERNAL_ID_PATTERN, "qrie-external-id-but-longer")
