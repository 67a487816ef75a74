"""No shared ExternalId: each account gets its own at onboarding; the old public constant is
refused wherever an ExternalId can enter (settings, account rows), and a customer role is never
assumed without one."""

import subprocess
import sys

import pytest
from pydantic import ValidationError

from qrie_lib.aws import Aws
from qrie_lib.errors import AccountAccessDenied
from qrie_lib.external_ids import PUBLIC_DEFAULT, check_external_id, new_external_id
from qrie_lib.models import Account
from qrie_lib.settings import Settings
from tests.conftest import CUSTOMER


def test_generated_ids_are_unique_and_acceptable_to_sts() -> None:
    ids = {new_external_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(check_external_id(i) == i and len(i) >= 32 for i in ids)


@pytest.mark.parametrize("bad", [PUBLIC_DEFAULT, "x", "has space", "a" * 1225])
def test_bad_external_ids_are_refused_with_the_reason(bad: str) -> None:
    with pytest.raises(ValueError, match=r"ExternalId|public"):
        check_external_id(bad)


def test_settings_refuse_the_public_default() -> None:
    with pytest.raises(ValidationError, match="public value"):
        Settings(external_id=PUBLIC_DEFAULT)
    assert Settings().external_id is None


def test_an_account_row_refuses_the_public_default() -> None:
    with pytest.raises(ValidationError, match="public value"):
        Account(account_id=CUSTOMER, external_id=PUBLIC_DEFAULT)


def test_a_customer_role_is_never_assumed_without_an_external_id(moto_env) -> None:
    aws = Aws(Settings())
    with pytest.raises(AccountAccessDenied, match="no ExternalId"):
        aws.customer_client(CUSTOMER, "s3")
    assert not aws.calls  # refused before any call


def test_the_cdk_app_refuses_to_synthesise_with_the_public_default() -> None:
    code = "from qrie_lib.settings import get_settings; get_settings()"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"QRIE_EXTERNAL_ID": PUBLIC_DEFAULT, "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "public value" in result.stderr
