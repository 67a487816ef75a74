"""``events_queue.batches``: what one SendMessageBatch call carries stays within SQS's limits
(ten entries, and the size limit for the entries together), in order, nothing left out."""

from __future__ import annotations

from orchestration.events_queue import BATCH, batches
from orchestration.provision import MAX_MESSAGE_BYTES


def test_batches_hold_at_most_ten_bodies_and_the_size_limit_together():
    bodies = [f"{n:03d}" + "x" * 60_000 for n in range(12)] + ["small"] * 25 + ["y" * MAX_MESSAGE_BYTES]
    sent = list(batches(bodies))
    assert [b for batch in sent for b in batch] == bodies
    assert all(len(batch) <= BATCH for batch in sent)
    assert all(sum(len(b.encode()) for b in batch) <= MAX_MESSAGE_BYTES for batch in sent)
    assert sent[-1] == ["y" * MAX_MESSAGE_BYTES]  # a body of the full limit goes alone
    # four 60 kB bodies fill a batch's bytes; ten small ones its entries
    assert [len(batch) for batch in sent] == [4, 4, 4 + 6, 10, 9, 1]


def test_multibyte_bodies_are_measured_in_bytes():
    body = "é" * (MAX_MESSAGE_BYTES // 4)  # two bytes each: half the limit
    assert list(batches([body, body, body])) == [[body, body], [body]]
