"""Customer calls overlap (an item's describes on threads) and never pass the per-account cap;
the local runtime's handler lock is let go for customer I/O only. A gated emulator
(``tests.emulator_gate``) counts overlapping requests: no clock in the assertions."""

from __future__ import annotations

import threading

from qrie_lib.aws import Aws
from qrie_lib.concurrency import HandlerLock, customer_io, fan_out, install_handler_lock
from qrie_lib.services import s3
from qrie_lib.settings import Settings
from tests.conftest import CUSTOMER, TEST_EXTERNAL_ID, collect_all, make_ctx
from tests.emulator_gate import Gate

OTHER = "222222222222"


def factory(**settings: object) -> Aws:
    return Aws(Settings(external_id=TEST_EXTERNAL_ID, **settings))  # type: ignore[arg-type]


def test_a_bucket_page_is_described_in_parallel(moto_env, customer, monkeypatch):
    for n in range(8):
        customer.client("s3").create_bucket(Bucket=f"bucket-{n}")
    aws = factory(customer_calls_per_account=8, items_per_account_in_flight=2, page_size=50)
    ctx = make_ctx(aws, region="global", page_size=50)
    with Gate(lambda in_flight: sum(in_flight.values()) >= 4).installed(monkeypatch) as gate:
        found, _ = collect_all(ctx, s3.SERVICE.kind(s3.BUCKET))
    assert sorted(r.configuration["Name"] for r in found) == [f"bucket-{n}" for n in range(8)]
    assert gate.max_total == 4  # 8 // 2 threads for the item; without them, one call at a time


def test_an_account_never_has_more_calls_in_flight_than_its_cap(moto_env, customer, monkeypatch):
    aws = factory(customer_calls_per_account=3)
    calls = [CUSTOMER] * 8 + [OTHER] * 8
    for account in set(calls):  # clients (and their AssumeRole) first: only the reads are gated
        aws.customer_client(account, "s3")
    # Opens only if 9 calls overlap, which the cap never allows: each call waits the bound.
    with Gate(lambda in_flight: sum(in_flight.values()) >= 9, bound_s=1).installed(monkeypatch) as gate:
        fan_out(len(calls), lambda account: aws.customer_client(account, "s3").list_buckets(), calls)
    assert sorted(gate.max_per_key.values()) == [3, 3]  # each account at its cap, not beyond
    assert gate.max_total == 6  # one account's cap does not hold the other's calls


def test_customer_io_lets_go_of_the_handler_lock_only_in_the_thread_holding_it():
    lock = HandlerLock()
    install_handler_lock(lock)
    try:
        with lock:
            with customer_io():
                # another handler gets the lock while this one waits on its customer calls
                taken = threading.Event()
                other = threading.Thread(target=lambda: (lock.__enter__(), taken.set(), lock.__exit__()))
                other.start()
                other.join()
                assert taken.is_set()
            # back under the lock: a thread that never held it gains nothing from customer_io
            entered = threading.Event()

            def outsider() -> None:
                with customer_io():
                    entered.set()

            thread = threading.Thread(target=outsider)
            thread.start()
            thread.join()
            assert entered.is_set()
            assert lock._lock.locked()
    finally:
        install_handler_lock(None)
