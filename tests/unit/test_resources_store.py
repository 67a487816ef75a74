"""The resources table's reads and writes that the inventory's robustness rests on: a region is a
sort-key range (a regional sweep reads only its rows), the regions a partition holds are found
without reading it, and a resource nothing of which could be read keeps what is stored."""

from __future__ import annotations

from typing import Any

import pytest

from orchestration.provision import create_tables
from qrie_lib.models import Resource
from qrie_lib.services.base import CollectContext
from qrie_lib.services.registry import SERVICES
from qrie_lib.stores import Stores
from qrie_lib.stores.resources import region_prefix
from qrie_lib.timeutil import now_iso
from tests.conftest import CUSTOMER

EU, US, AP = "eu-west-1", "us-east-1", "ap-southeast-2"


@pytest.fixture
def stores(aws) -> Stores:
    create_tables(aws)
    return Stores.of(aws)


def volume(region: str, n: int, **config: Any) -> Resource:
    return Resource(
        arn=f"{region_prefix('ec2', region)}{CUSTOMER}:volume/vol-{n:04d}",
        account_id=CUSTOMER,
        service="ec2",
        region=region,
        resource_type="AWS::EC2::Volume",
        configuration={"VolumeId": f"vol-{n:04d}", **config},
        describe_time=now_iso(),
    )


@pytest.mark.parametrize("service", [s for s in SERVICES.values() if s.regional], ids=lambda s: s.name)
def test_every_kind_of_a_regional_service_builds_arns_in_its_region_range(service):
    ctx = CollectContext(aws=None, account_id=CUSTOMER, region=AP, page_size=1)  # type: ignore[arg-type]
    for kind in service.kinds:
        # An account-level kind's one item is outside every region's range (before them all).
        expected = f"arn:aws:{service.name}::" if kind.account_level else region_prefix(service.name, AP)
        assert kind.arn(ctx, "x-0123").startswith(expected), kind.resource_type


def test_a_regional_sweep_reads_only_its_regions_rows(stores):
    stores.resources.upsert([volume(region, n) for region in (US, EU, AP) for n in range(5)], "run-1")
    stores.resources.upsert([volume(EU, 100 + n) for n in range(3)], "run-1")
    stores.resources.items_read = 0
    deleted, token = stores.resources.sweep_page(CUSTOMER, "ec2", EU, "run-2", now_iso(), None, 100)
    assert token is None
    assert {r.region for r in deleted} == {EU}
    assert len(deleted) == 8
    assert stores.resources.items_read == 8  # not the partition's 18
    assert len(stores.resources.page(CUSTOMER, "ec2", None, 100).items) == 10


def test_the_regions_of_a_partition_are_found_with_one_single_item_read_each(stores):
    stores.resources.upsert([volume(region, n) for region in (US, EU, AP) for n in range(4)], "run-1")
    stores.resources.items_read = 0
    assert stores.resources.regions(CUSTOMER, "ec2") == sorted([US, EU, AP])
    assert stores.resources.items_read == 3
    assert stores.resources.regions(CUSTOMER, "s3") == []


def test_an_unread_resource_keeps_its_stored_configuration_and_is_not_swept(stores):
    stored = volume(EU, 1, Encrypted=True)
    stores.resources.upsert([stored], "run-1")
    started = now_iso()
    denied = {"CollectErrors": [{"call": "DescribeVolumes", "code": "UnauthorizedOperation"}]}
    stores.resources.mark_seen([volume(EU, 1, **denied), volume(EU, 2, **denied)], "run-2")

    kept = stores.resources.get(CUSTOMER, "ec2", stored.arn)
    assert kept.configuration == stored.configuration
    assert kept.describe_time == stored.describe_time
    first = stores.resources.get(CUSTOMER, "ec2", volume(EU, 2).arn)
    assert first.configuration == {"VolumeId": "vol-0002", **denied}  # none stored: stored as given
    deleted, _ = stores.resources.sweep_page(CUSTOMER, "ec2", EU, "run-2", started, None, 100)
    assert deleted == []
