"""The local stream poller's ParallelizationFactor: one lane per concurrent batcher, keyed by partition key.

Pure: the stream, the table description and the DLQ are in-memory fakes of the three boto3 calls the poller
makes, and the function is a recording callable. The moto-backed tests of one lane's batching, failures and
DLQ messages are in tests/e2e/test_stream_poller.py.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest
from lineage_intake_tools.local.poller import lane_of, partition_key

from tests.helpers.fake_stream import FakeAws, drain, make_poller, record


class Function:
    """Records each invocation's (key, sequence number) pairs and how many invocations overlapped."""

    def __init__(self, seconds: float = 0.02, poison: str | None = None) -> None:
        self.seconds = seconds
        self.poison = poison
        self.lock = threading.Lock()
        self.active: list[set[str]] = []
        self.max_in_flight = 0
        self.overlaps: list[str] = []  # keys found in two invocations at once
        self.delivered: list[tuple[str, int]] = []

    def __call__(self, event: dict[str, Any]) -> Any:
        pairs = [(r["dynamodb"]["Keys"]["pk"]["S"], int(r["dynamodb"]["SequenceNumber"])) for r in event["Records"]]
        keys = {key for key, _ in pairs}
        with self.lock:
            for other in self.active:
                self.overlaps += sorted(keys & other)
            self.active.append(keys)
            self.max_in_flight = max(self.max_in_flight, len(self.active))
        try:
            time.sleep(self.seconds)
            if self.poison in keys:
                raise RuntimeError("poison")
            with self.lock:
                self.delivered += pairs
            return {"batchItemFailures": []}
        finally:
            with self.lock:
                self.active.remove(keys)


def keys_in_distinct_lanes(count: int, lanes: int) -> list[str]:
    """``count`` run keys that hash to ``count`` different lanes."""
    found: dict[int, str] = {}
    for n in itertools.count():
        key = f"RUN#{n}"
        found.setdefault(lane_of(partition_key(record(key, 1), "pk"), lanes), key)
        if len(found) == count:
            return list(found.values())
    raise AssertionError("unreachable")


def test_a_partition_key_is_the_hash_key_alone_and_always_maps_to_the_same_lane() -> None:
    # Given two records of one run (same pk, different sk) and the records of other runs
    first, second = record("RUN#a", 1), record("RUN#a", 2)
    # Then they share a partition key and a lane, whatever the number of lanes
    assert partition_key(first, "pk") == partition_key(second, "pk") == '{"S":"RUN#a"}'
    for lanes in range(1, 11):
        assert lane_of(partition_key(first, "pk"), lanes) == lane_of(partition_key(second, "pk"), lanes)
        assert all(0 <= lane_of(f"RUN#{n}", lanes) < lanes for n in range(100))
    # And 100 runs spread over all 10 lanes
    assert {lane_of(f"RUN#{n}", 10) for n in range(100)} == set(range(10))


def test_records_of_one_key_stay_in_order_and_are_never_in_two_invocations_at_once() -> None:
    # Given 8 runs in 8 lanes with 5 records each, interleaved on the shard, and small batches
    keys = keys_in_distinct_lanes(8, 10)
    aws = FakeAws([key for _ in range(5) for key in keys])
    function = Function()
    poller = make_poller(aws, function, factor=10, max_concurrency=4, batch_size=2)
    # When the poller drains the shard
    drain(poller)
    # Then every record was delivered once, each key's records in sequence order
    assert sorted(function.delivered) == sorted(
        (r["dynamodb"]["Keys"]["pk"]["S"], i + 1) for i, r in enumerate(aws.records)
    )
    for key in keys:
        sequence = [number for k, number in function.delivered if k == key]
        assert sequence == sorted(sequence) and len(sequence) == 5
    # And no key was ever in two invocations at once, while distinct keys were invoked concurrently
    assert function.overlaps == []
    assert function.max_in_flight > 1


@pytest.mark.parametrize(("factor", "max_concurrency", "bound"), [(10, 3, 3), (2, 8, 2), (1, 4, 1)])
def test_concurrent_invocations_are_bounded_by_factor_times_shards_and_the_functions_concurrency(
    factor: int, max_concurrency: int, bound: int
) -> None:
    # Given 20 runs in distinct lanes where possible, one record each
    keys = keys_in_distinct_lanes(min(factor, 10), factor) * 2
    aws = FakeAws(keys + [f"RUN#extra{n}" for n in range(10)])
    function = Function(seconds=0.03)
    poller = make_poller(aws, function, factor=factor, max_concurrency=max_concurrency, batch_size=1)
    # When the poller drains the shard
    drain(poller)
    # Then at most min(factor x 1 shard, the function's concurrency) invocations overlapped, and that many did
    assert function.max_in_flight <= bound
    assert function.max_in_flight == bound
    assert len(function.delivered) == len(aws.records)


def test_a_poison_run_is_bisected_retried_and_sent_to_the_dlq_without_holding_back_other_lanes() -> None:
    # Given a run whose merge always fails, in its own lane, among 6 healthy runs in other lanes
    poison, *healthy = keys_in_distinct_lanes(7, 10)
    aws = FakeAws([poison, *healthy, poison, *healthy])
    function = Function(seconds=0.01, poison=poison)
    poller = make_poller(aws, function, factor=10, max_concurrency=4)
    # When the poller drains the shard
    drain(poller)
    # Then every healthy record was merged, in order per key
    assert sorted(k for k, _ in function.delivered) == sorted(healthy * 2)
    # And the poison run's two records went to the DLQ after the lane's bisection and retries (2 each)
    assert poller.stats.sent_to_dlq == 2
    assert len(aws.sent) == 2
    assert poller.stats.function_errors == 1 + 2 * (1 + 2)  # the batch of 2, then each half 1 + 2 retries
    assert poller.pending == 0


def test_when_lanes_outnumber_the_concurrency_the_lane_waiting_longest_goes_first() -> None:
    # Given 10 lanes, one invocation at a time, and lane A's record read before lane B's
    first, second = keys_in_distinct_lanes(2, 10)
    if lane_of(partition_key(record(first, 1), "pk"), 10) < lane_of(partition_key(record(second, 1), "pk"), 10):
        first, second = second, first  # the earlier record is in the higher lane: index order would be wrong
    aws = FakeAws([first, second])
    function = Function(seconds=0.0)
    poller = make_poller(aws, function, factor=10, max_concurrency=1)
    # When the poller drains the shard
    drain(poller)
    # Then the record that waited longest was merged first, whatever its lane's index
    assert [key for key, _ in function.delivered] == [first, second]
