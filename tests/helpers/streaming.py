"""A streaming run delivered one record per stream batch, on any DynamoDB client, every call metered.

The delivery of the merge cost bench's streaming runs (bench/merge_cost_bench.py), for the tests of its client
without HTTP (bench/memory_dynamodb.py) and of the merge's per-event work: each event is stored by ingest, then
its item is merged by ``MergeService.handle`` as the only record of a batch, as the stream delivers a run whose
events come seconds apart.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from lineage_intake import keys
from lineage_intake.config import IngestSettings
from lineage_intake.principal import Principal
from lineage_intake.service.ingest import IngestService
from lineage_intake.service.merge import Batch, MergeOutcome, MergeService
from lineage_intake.store.dynamo import from_dynamodb
from lineage_intake.store.events import EventsStore
from lineage_intake.store.lineage import LineageStore
from lineage_intake_tools.local.template import Stack

from bench.meter import Meter
from tests.helpers.pipeline import RecordingGrace
from tests.helpers.runs import at, flink_streaming_run

#: A fixed clock for ingest and merge, so that two deliveries of the same events store the same items.
NOW = 1_790_000_000.0


def flink_events(run_id: str, count: int) -> Iterator[dict[str, Any]]:
    """A Flink (STREAMING) run: its START, then RUNNING checkpoint events 10 s apart (checkpoint ``i``)."""
    start, running, _ = flink_streaming_run(run_id, checkpoints=2)
    yield start
    for i in range(1, count):
        event = copy.deepcopy(running)
        event["eventTime"] = at(10 * i)
        event["run"]["facets"]["checkpoints"]["completed"] = i
        yield event


@dataclass
class MergeWork:
    """What one merge cost: units and requests (metered) and the stored events it read."""

    rru: float
    wru: float
    requests: int
    events_read: int
    status: str


class OnePerBatch:
    """Ingest and merge on ``client`` (boto3 on moto, or ``MemoryDynamoDB``) of the tables of ``stack``."""

    def __init__(self, session: boto3.Session, stack: Stack, client: Any, meter: Meter) -> None:
        env = stack.function("MergeFunction").environment
        self.client, self.meter = client, meter
        self.events_table, self.lineage_table = env["EVENTS_TABLE"], env["LINEAGE_TABLE"]
        self.events = EventsStore(client, self.events_table, env["BODY_BUCKET"], lambda: session.client("s3"))
        self.lineage = LineageStore(client, self.lineage_table, sleep=lambda _s: None)
        self.service = MergeService(self.events, self.lineage, lambda _o: None, RecordingGrace(), clock=lambda: NOW)
        settings = IngestSettings.from_env(stack.function("IngestFunction").environment)
        self.ingest = IngestService(self.events, settings, lambda _o: None, clock=lambda: NOW)
        self.merges: list[MergeWork] = []
        self._read = 0
        query = self.events.query_partition

        def counting(*args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
            for item in query(*args, **kwargs):
                self._read += 1
                yield item

        self.events.query_partition = counting  # type: ignore[method-assign]

    def deliver(self, event: dict[str, Any]) -> MergeOutcome:
        """Store ``event`` (unmetered: ingest is not the merge), then merge its record alone in a batch."""
        namespace = event["job"]["namespace"]
        with self.meter.disabled():
            stored = self.ingest.store_event(event, Principal("tok_test", frozenset({namespace})))
            assert stored.status == "accepted", stored
            pk = keys.run_pk(namespace, event["job"]["name"], event["run"]["runId"].lower())
            key = {"pk": {"S": pk}, "sk": {"S": f"{stored.event_time}#{stored.event_id}"}}
            item = self.client.get_item(TableName=self.events_table, Key=key)["Item"]
        before, self._read = self.meter.snapshot(), 0
        outcome = self.service.handle(from_dynamodb(item), "INSERT", Batch())
        used = self.meter.delta(before)
        work = MergeWork(used.total_rru, used.total_wru, sum(used.requests.values()), self._read, outcome.status)
        self.merges.append(work)
        return outcome
