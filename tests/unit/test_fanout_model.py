"""The fan-out model of bench.simulate on small synthetic inputs: the DES keeps Map concurrency,
the local handler lock serialises, and the after design's largest invocation does not grow with
the accounts while the before design's does."""

from __future__ import annotations

from bench.des import Sim, Slots, delay, each
from bench.fanout_model import METRICS, Deployment, Inputs, ItemCost, simulate


def test_slots_bound_how_many_run_at_once() -> None:
    sim, slots = Sim(), Slots(2)

    def job():
        yield slots.acquire()
        yield delay(1.0)
        yield slots.release()

    def all_jobs():
        yield each(job() for _ in range(5))

    sim.start(all_jobs())
    assert sim.run() == 3.0  # 2 + 2 + 1
    assert slots.peak == 2


def inputs(customer_s: float = 1.0, locked_s: float = 0.5) -> Inputs:
    cost = ItemCost(
        fixed={"invocations": 1, "sweeps": 1, "customer_s": customer_s, "locked_s": locked_s},
        per_resource=dict.fromkeys(METRICS, 0.0),
    )
    return Inputs(
        items={kind: {"s3": cost} for kind in ("inventory", "full_scan", "daily_scan")},
        regional={"s3": True},
        resource_share={"s3": 1.0},
        task_compute_s=0.0,
        row_compute_s=0.0,
        plan_compute_per_account_s=0.0,
        finalize_writes_per_account={},
        engine_transition_s=0.0,
        rows_per_query=100,
        engine_task_s=0.0,
        local_bookkeeping_s={},
        shard_items={},
        report_s={},
    )


def deployment(**changes: object) -> Deployment:
    base = {
        "accounts": 4,
        "regions": 4,
        "resources_per_account": 0,
        "accounts_in_flight": 2,
        "per_account": 2,
        "customer_latency_s": 0.1,
        "measured_delay_s": 0.1,
        "transition_s": 0.0,
        "query_s": 0.0,
        "write_s": 0.0,
        "s3_s": 0.0,
        "cold_start_s": 0.0,
    }
    return Deployment(**{**base, **changes})  # type: ignore[arg-type]


def test_aws_wall_is_waves_of_accounts_each_running_its_items_per_account_at_a_time() -> None:
    # an inventory item: Collect then Sweep, 1 s of customer I/O between them; 4 items 2 at a time
    run = simulate(inputs(), "inventory", "before", deployment())
    assert run.wall_s == 2 * 2 * 1.0  # 2 waves of accounts × 2 rounds of items × 1 s
    assert run.peak_concurrency == 4


def test_the_local_lock_serialises_what_handlers_do_outside_customer_io() -> None:
    local = simulate(inputs(customer_s=0.0, locked_s=1.0), "inventory", "before", deployment(mode="local"))
    assert local.wall_s == 4 * 4 * 1.0  # 16 items, one at a time whatever the concurrency


def test_largest_invocation_grows_with_accounts_before_and_not_after() -> None:
    for design, grows in (("before", True), ("after", False)):
        small = simulate(inputs(), "inventory", design, deployment(accounts=100))
        large = simulate(inputs(), "inventory", design, deployment(accounts=10_000))
        assert (large.largest_invocation_items > small.largest_invocation_items) is grows, design
