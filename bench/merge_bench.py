"""Merge benchmark: the time to merge one run of 100, 1,000 and 10,000 events, and how it grows.

The run is a Flink streaming job (the corpus template): a START, then RUNNING checkpoint events that each
carry the two inputs and the output, and a COMPLETE. Its items are built exactly as ingest builds them
(``build_item``, compressed body), in DynamoDB's wire format; building them is not timed. The timed part is one
``MergeService.merge_run``: the paged Query of the partition, decoding each body, the fold, and the writes.

Where: the Events table is in memory (``memory_dynamodb.MemoryDynamoDB``: sorted partitions, pages of at most
``Limit`` items and 1 MB, ``LastEvaluatedKey``), because moto's Query costs grow with the partition and would
measure moto; the Lineage table is moto (a merge writes a handful of records, whatever the number of events).
Each figure is the best of a few runs in this same process, in CPU time (the process's own: on a shared
machine wall time measures the neighbours; moto runs in process, so its share is in the figure). Anchor:
near-linear growth, the 10,000-event time at most 12 times the 1,000-event time.

Run: ``python bench/merge_bench.py`` (or ``make bench``).
"""

from __future__ import annotations

import copy
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT / "tools"), str(ROOT)]

SIZES = (100, 1_000, 10_000)
TARGET_RATIO = 12.0
RUN_ID = "5f6b2bb8-58f1-4f7e-a0a4-1b1c9f5a1e99"


def _events(count: int) -> list[dict[str, Any]]:
    from tests.helpers.runs import TEMPLATES, at, flink_streaming_run, template_event

    start, running = flink_streaming_run(RUN_ID, checkpoints=1)
    events = [start]
    for i in range(1, count - 1):
        event = copy.deepcopy(running)
        event["eventTime"] = at(i)
        event["run"]["facets"]["checkpoints"] |= {"completed": i, "total": i}
        events.append(event)
    complete = template_event(TEMPLATES + "flink/flink1/expected_failed.json", run_id=RUN_ID, event_time=at(count))
    complete |= {"eventType": "COMPLETE", "job": start["job"] | {"facets": {}}}
    complete["run"]["facets"].pop("errorMessage")
    events.append(complete)
    return events


def _items(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items that ingest would store, in DynamoDB's wire format (not timed)."""
    from lineage_intake.models import parse_event
    from lineage_intake.principal import Principal
    from lineage_intake.service.ingest import build_item, canonical_json, describe, event_id_of
    from lineage_intake.store.dynamo import to_item
    from lineage_intake.store.events import BODY_ENCODING, encode_body

    principal = Principal("tok_bench", frozenset({"flink_job_namespace"}))
    items = []
    for raw in events:
        event = parse_event(raw)
        outcome = describe(event)
        plain = canonical_json(raw)
        outcome.bytes, outcome.event_id = len(plain), event_id_of(plain)
        item = build_item(event, outcome, principal=principal, now=time.time(), retention_days=365)
        item |= {"bodyEnc": BODY_ENCODING, "body": encode_body(plain)}
        items.append(to_item(item))
    return items


def _time_merges(session: Any, count: int, repeat: int) -> tuple[float, float, Any]:
    """Best time of a whole merge, and best time of its per-event part (Query, decode, fold; no writes)."""
    from lineage_intake import keys
    from lineage_intake.merge import merge_run
    from lineage_intake.service.merge import MergeService
    from lineage_intake.store.events import EventsStore
    from lineage_intake.store.lineage import LineageStore
    from lineage_intake_tools.local.template import Stack
    from memory_dynamodb import MemoryDynamoDB

    items = _items(_events(count))
    best, best_fold, outcome = float("inf"), float("inf"), None
    for attempt in range(repeat):
        stack = Stack.from_template(prefix=f"bench{count}x{attempt}")
        dynamodb = session.client("dynamodb")
        dynamodb.create_table(**stack.table_definition("LineageTable"))
        env = stack.function("MergeFunction").environment
        partition = MemoryDynamoDB(partitions=[env["EVENTS_TABLE"]])
        for item in items:
            partition.put_item(TableName=env["EVENTS_TABLE"], Item=item, ConditionExpression="attribute_not_exists(pk)")
        events = EventsStore(partition, env["EVENTS_TABLE"], env["BODY_BUCKET"], lambda: session.client("s3"))
        no_grace = SimpleNamespace(send=lambda *_args: None)  # the run has its START: nothing waits for one
        service = MergeService(events, LineageStore(dynamodb, env["LINEAGE_TABLE"]), lambda _o: None, no_grace)
        started = time.process_time()
        outcome = service.merge_run("flink_job_namespace", "flink_examples_stateful", RUN_ID)
        best = min(best, time.process_time() - started)
        assert outcome.status == "merged" and outcome.events == count, outcome
        started = time.process_time()
        merged = merge_run(
            service._stored_events(keys.run_pk("flink_job_namespace", "flink_examples_stateful", RUN_ID))
        )
        best_fold = min(best_fold, time.process_time() - started)
        assert merged is not None and merged.event_count == count
    return best, best_fold, outcome


def run() -> list[str]:
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_SESSION_TOKEN="testing")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import boto3
    from moto import mock_aws

    lines = [
        "  merge of one run, CPU time: Query + decode + fold + writes (events: in memory, bench/memory_dynamodb.py; "
        "lineage: moto), best of 3:"
    ]
    times: dict[int, float] = {}
    folds: dict[int, float] = {}
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        for count in SIZES:
            seconds, fold, outcome = _time_merges(session, count, repeat=3)
            times[count], folds[count] = seconds, fold
            lines.append(
                f"    {count:>6,} events: {seconds * 1000:8.1f} ms  (of which Query + decode + fold "
                f"{fold * 1000:7.1f} ms = {fold / count * 1e6:5.1f} us/event; {outcome.written} records written)"
            )
    ratio, fold_ratio = times[10_000] / times[1_000], folds[10_000] / folds[1_000]
    verdict = "ok" if ratio <= TARGET_RATIO and fold_ratio <= TARGET_RATIO else "OVER TARGET"
    lines.append(
        f"  growth 10,000 / 1,000: merge {ratio:.1f}x, per-event part {fold_ratio:.1f}x "
        f"(target <= {TARGET_RATIO:.0f}x; linear = 10x; the writes cost the same for every size): {verdict}"
    )
    return lines


if __name__ == "__main__":
    for line in run():
        print(line)
