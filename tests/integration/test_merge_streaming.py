"""Issue 9: a streaming run's merge does per-event work that does not grow with the run (docs/merge.md).

Counted, not timed: the read and write units the meter bills (bench/meter.py), the DynamoDB requests and the
stored events each merge reads, through the real ``MergeService.handle`` of one stream record per batch. The
tables are the template's, on moto, reached through the merge cost bench's client without HTTP
(bench/memory_dynamodb.py, checked equal to boto3 on moto in test_memory_dynamodb.py) so that 5,000 merges take
seconds, not minutes.
"""

from __future__ import annotations

from statistics import mean

import boto3
from lineage_intake.store.lineage_items import CHECKPOINT_EVERY
from lineage_intake_tools.local.template import Stack

from bench.memory_dynamodb import MemoryDynamoDB
from bench.meter import Meter
from tests.helpers.streaming import OnePerBatch, flink_events

RUN_ID = "7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09"


def test_a_streaming_run_of_5000_events_delivered_one_per_batch_merges_with_per_event_work_that_does_not_grow(
    aws: boto3.Session, stack: Stack
) -> None:
    # Given the template's tables, every call metered
    meter = Meter()
    client = MemoryDynamoDB(meter, partitions=[stack.physical_name("EventsTable")])
    rig = OnePerBatch(aws, stack, client, meter)
    # When a Flink run's 5,000 events (10 s apart) are each delivered in a stream batch of their own
    # Then no merge reads more stored events than those since the checkpoint (and the checkpoint's own instant)
    for event in flink_events(RUN_ID, 5_000):
        assert rig.deliver(event).status == "streaming"
        assert rig.merges[-1].events_read <= CHECKPOINT_EVERY + 1, len(rig.merges)
    merges = rig.merges
    assert len(merges) == 5_000
    # And after the first merge (the job's first lineage), none costs more read units, write units or requests
    # than the most a merge of the run's first 100 events cost
    early, later = merges[1:101], merges[101:]
    for measure in ("rru", "wru", "requests"):
        assert max(getattr(m, measure) for m in later) <= max(getattr(m, measure) for m in early), measure
    # And the run's last 1,000 merges cost, on average, what its second 1,000 cost: reads exactly, writes within
    # the time index's hourly key move (a delete and a put, 2 units, once per 360 events)
    second, last = merges[1_000:2_000], merges[4_000:]
    assert mean(m.rru for m in last) == mean(m.rru for m in second)
    assert mean(m.wru for m in last) <= mean(m.wru for m in second) + 2 / 360
    assert mean(m.requests for m in last) == mean(m.requests for m in second)
