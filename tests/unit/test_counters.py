"""Finding counters: the ADDs a finding's move needs, and the store against moto's DynamoDB."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestration.provision import create_tables
from qrie_lib.schema import POLICY_SHARDS, policy_shard
from qrie_lib.stores import Stores, batched_counts
from qrie_lib.stores.counters import Tally, changes

MOVES = st.lists(
    st.tuples(
        st.sampled_from([f"arn:aws:s3:::bucket-{n}" for n in range(20)]),
        st.sampled_from(["S3BucketPublic", "IAMRootMfaDisabled"]),
        st.sampled_from(["ACTIVE", "RESOLVED"]),
        st.integers(0, 100),
    ),
    max_size=40,
)


@given(MOVES)
@settings(max_examples=200, deadline=None)
def test_the_adds_of_any_sequence_of_moves_equal_a_recount(moves):
    account = {"S3BucketPublic": "111111111111", "IAMRootMfaDisabled": "222222222222"}
    where: dict[tuple[str, str], Tally] = {}
    rows: dict[str, Counter[str]] = {}
    for arn, policy_id, state, severity in moves:
        now = Tally(arn, policy_id, account[policy_id], state, severity)
        for row, cells in changes(where.get((arn, policy_id)), now).items():
            rows.setdefault(row, Counter()).update(cells)
        where[arn, policy_id] = now
    recount: dict[str, Counter[str]] = {}
    for tally in where.values():
        for row in tally.rows:
            recount.setdefault(row, Counter())[tally.cell] += 1
    assert {r: +c for r, c in rows.items() if +c} == recount


def test_a_move_within_one_cell_adds_nothing():
    active = Tally("arn:aws:s3:::b", "S3BucketPublic", "111111111111", "ACTIVE", 95)
    assert changes(active, Tally("arn:aws:s3:::b", "S3BucketPublic", "111111111111", "ACTIVE", 92)) == {}
    assert changes(active, Tally("arn:aws:s3:::b", "S3BucketPublic", "111111111111", "RESOLVED", 95)) != {}


def test_rows_are_the_policy_shard_and_the_account():
    tally = Tally("arn:aws:s3:::b", "S3BucketPublic", "111111111111", "ACTIVE", 95)
    assert tally.rows == (
        f"policy/{policy_shard('S3BucketPublic', 'arn:aws:s3:::b')}",
        "account/111111111111",
    )
    assert tally.cell == "ACTIVE|critical"
    shards = {policy_shard("S3BucketPublic", f"arn:aws:s3:::bucket-{n}") for n in range(200)}
    assert len(shards) == POLICY_SHARDS  # one popular policy spreads over every shard


@pytest.fixture
def stores(aws) -> Stores:
    create_tables(aws)
    return Stores.of(aws)


def test_the_store_sums_a_policy_over_its_shards(stores):
    tallies = [Tally(f"arn:aws:s3:::b{n}", "S3BucketPublic", "111111111111", "ACTIVE", 95) for n in range(30)]
    for tally in tallies:
        stores.counters.move(None, tally)
    stores.counters.move(
        tallies[0], Tally(tallies[0].subject, "S3BucketPublic", "111111111111", "RESOLVED", 95)
    )
    assert stores.counters.policies(["S3BucketPublic", "IAMRootMfaDisabled"]) == {
        "S3BucketPublic": Counter({"ACTIVE|critical": 29, "RESOLVED|critical": 1})
    }
    assert +stores.counters.account("111111111111") == Counter(
        {"ACTIVE|critical": 29, "RESOLVED|critical": 1}
    )
    assert stores.counters.account("222222222222") == Counter()


def test_batched_moves_make_one_add_per_row_and_the_same_totals(stores):
    """Inside a batch (a scan task) the ADDs merge by row: the same counters, far fewer writes."""
    tallies = [Tally(f"arn:aws:s3:::b{n}", "S3BucketPublic", "111111111111", "ACTIVE", 95) for n in range(30)]
    resolved = Tally(tallies[0].subject, "S3BucketPublic", "111111111111", "RESOLVED", 95)
    updates = Counter()
    stores.counters.client.meta.events.register(
        "before-call.dynamodb.UpdateItem", lambda **_: updates.update(["UpdateItem"])
    )

    def failing_task() -> None:
        with batched_counts(stores):
            for tally in tallies:
                stores.counters.move(None, tally)
            with batched_counts(stores):  # nested: the outer batch applies
                stores.counters.move(tallies[0], resolved)
            assert updates["UpdateItem"] == 0
            raise RuntimeError("the task failed after its writes: their counts are still applied")

    with pytest.raises(RuntimeError):
        failing_task()
    rows = {row for tally in tallies for row in tally.rows}
    assert updates["UpdateItem"] == len(rows) < len(tallies)
    expected = Counter({"ACTIVE|critical": 29, "RESOLVED|critical": 1})
    assert stores.counters.policies(["S3BucketPublic"]) == {"S3BucketPublic": expected}
    assert +stores.counters.account("111111111111") == expected
