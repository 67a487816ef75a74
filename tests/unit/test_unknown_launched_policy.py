"""A policy launched by a newer CLI or deployment (sharing the tables) that this catalogue lacks is
left out of the listings, so a scan plans the others instead of failing on UnknownPolicy."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from orchestration.provision import create_tables
from qrie_lib import lifecycle
from qrie_lib.models import Account
from qrie_lib.scan import ScanRequest, account_items, shard_items, wanted_policies
from qrie_lib.stores import Stores
from qrie_lib.stores.policies import LaunchedPolicy

NEWER = "S3BucketFromANewerRelease"


@pytest.fixture
def stores(aws) -> Stores:
    create_tables(aws)
    stores = Stores.of(aws)
    stores.accounts.put(Account(account_id="111111111111", regions=["us-east-1"]))
    lifecycle.launch(stores, ["S3BucketPublic", "IAMRootMfaDisabled"])
    at = "2026-11-30T00:00:00Z"
    stores.policies.put(LaunchedPolicy(policy_id=NEWER, launched_at=at, updated_at=at))
    return stores


def test_listings_leave_it_out_with_a_warning(stores, caplog):
    with caplog.at_level(logging.WARNING):
        assert [p.policy_id for p in stores.policies.list()] == ["IAMRootMfaDisabled", "S3BucketPublic"]
    assert NEWER in caplog.text
    assert [p.policy_id for p in stores.policies.get_many([NEWER, "S3BucketPublic"])] == ["S3BucketPublic"]


def test_a_scan_plans_the_known_ones_and_refuses_the_unknown_one_by_name(stores):
    for request in (ScanRequest(), ScanRequest(full=True)):
        policies = wanted_policies(request, stores)
        account = stores.accounts.get("111111111111")
        planned = {p for item in account_items(request, account, policies) for p in item.policy_ids}
        planned |= {item.policy_id for item in shard_items(request, policies)}
        assert planned == {
            "S3BucketPublic",
            "IAMRootMfaDisabled",
        }
    with pytest.raises(ValidationError, match="unknown policy"):  # the plan's InvalidInput
        ScanRequest(policy_id=NEWER)
