"""EFS and Security Hub collectors on moto; Access Analyzer's on botocore's Stubber, because moto
does not emulate Access Analyzer (its answer there, a bare 404, is checked to be recorded as
NotEmulated)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber
from moto.core.botocore_stubber import BotocoreStubber

from orchestration import emulation
from qrie_lib.errors import Unreadable
from qrie_lib.services import accessanalyzer, efs, securityhub
from tests.conftest import CUSTOMER, REGION, collect_all, make_ctx


def test_file_systems_page_and_carry_their_encryption(aws, customer):
    client = customer.client("efs")
    made = {
        client.create_file_system(CreationToken=f"fs-{n}", Encrypted=n % 2 == 0)["FileSystemId"]: n % 2 == 0
        for n in range(3)
    }
    ctx = make_ctx(aws, page_size=2)
    kind = efs.SERVICE.kind(efs.FILE_SYSTEM)
    found, pages = collect_all(ctx, kind)
    assert pages == 2
    assert {r.configuration["FileSystemId"]: r.configuration["Encrypted"] for r in found} == made
    fsid = next(iter(made))
    assert found[0].arn.startswith(f"arn:aws:elasticfilesystem:{REGION}:{CUSTOMER}:file-system/fs-")
    assert kind.describe(ctx, fsid).configuration["Encrypted"] is made[fsid]
    client.delete_file_system(FileSystemId=fsid)
    assert kind.describe(ctx, fsid) is None


def test_security_hub_enabled_or_not_per_region(aws, customer):
    ctx = make_ctx(aws)
    kind = securityhub.SERVICE.kind(securityhub.HUB)
    (off,), _ = collect_all(ctx, kind)
    assert off.arn == f"arn:aws:securityhub:{REGION}:{CUSTOMER}:hub/default"
    assert off.configuration["Enabled"] is False
    customer.client("securityhub").enable_security_hub()
    on = kind.describe(ctx, REGION)
    assert on.configuration["Enabled"] is True
    assert on.configuration["SubscribedAt"]


def stubbed(aws, ctx, *answers: dict[str, Any] | tuple[str, int]) -> Stubber:
    client = aws.customer_client(CUSTOMER, "accessanalyzer", REGION, ctx.external_id)
    stubber = Stubber(client)
    for answer in answers:
        if isinstance(answer, tuple):
            stubber.add_client_error(
                "list_analyzers", service_error_code=answer[0], http_status_code=answer[1]
            )
        else:
            stubber.add_response("list_analyzers", answer)
    stubber.activate()
    return stubber


ANALYZER = {
    "arn": f"arn:aws:access-analyzer:{REGION}:{CUSTOMER}:analyzer/account",
    "name": "account",
    "type": "ACCOUNT",
    "createdAt": datetime(2025, 1, 1, tzinfo=UTC),
    "status": "ACTIVE",
}


def test_analyzers_are_listed_through_every_page(aws, moto_env):
    ctx = make_ctx(aws)
    stubbed(
        aws,
        ctx,
        {"analyzers": [ANALYZER | {"status": "DISABLED", "name": "old"}], "nextToken": "t"},
        {"analyzers": [ANALYZER]},
    )
    (found,), _ = collect_all(ctx, accessanalyzer.SERVICE.kind(accessanalyzer.ANALYZERS))
    assert found.arn == f"arn:aws:access-analyzer:{REGION}:{CUSTOMER}:analyzers"
    assert [(a["name"], a["status"]) for a in found.configuration["Analyzers"]] == [
        ("old", "DISABLED"),
        ("account", "ACTIVE"),
    ]


def test_a_denied_listing_keeps_what_is_stored(aws, moto_env):
    ctx = make_ctx(aws)
    stubbed(aws, ctx, ("AccessDeniedException", 403), ("AccessDeniedException", 403))
    kind = accessanalyzer.SERVICE.kind(accessanalyzer.ANALYZERS)
    page = kind.list_page(ctx, None)
    assert (page.resources, len(page.unread)) == ([], 1)
    with pytest.raises(Unreadable):
        kind.describe(ctx, REGION)


@pytest.fixture
def emulated(moto_env, monkeypatch):
    monkeypatch.setattr(BotocoreStubber, "process_request", emulation.stub_answering_not_emulated)


def test_the_emulator_answers_not_emulated_which_is_recorded(aws, emulated):
    """The local runtime's emulation (no stub here) answers Access Analyzer NotEmulated at once."""
    ctx = make_ctx(aws)
    (found,), _ = collect_all(ctx, accessanalyzer.SERVICE.kind(accessanalyzer.ANALYZERS))
    assert found.configuration == {
        "Analyzers": None,
        "CollectErrors": [{"call": "ListAnalyzers", "code": "NotEmulated"}],
    }
    assert aws.customer_calls["accessanalyzer.ListAnalyzers"] == 1  # answered, not retried
