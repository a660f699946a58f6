"""Items of both body codecs on moto: the zlib-d1 items that events/merge-stream-batch.json describes (written
before zlib-d2, with eventTime, eventId and producer as attributes) and the lean zlib-d2 items that ingest
writes now are merged, listed and shown alike."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest
from lineage_intake.service.eventlog import EventLog, Filters
from lineage_intake.store.eventlog import EventLogReader
from lineage_intake.store.lineage import LineageStore
from lineage_intake.store.quarantine import QuarantineStore
from lineage_intake_tools.local.template import Stack

from tests.helpers.aws import TEST_STACK, load_handler
from tests.helpers.corpus import event_file
from tests.helpers.pipeline import Pipeline, lambda_image

RUN = ("my-namespace", "my-job", "d46e465b-d358-4d32-83d4-df660ff614dd")


def _event_log(pipeline: Pipeline) -> EventLog:
    return EventLog(EventLogReader(pipeline.events), QuarantineStore(pipeline.events), pipeline.lineage)


def _store_old_items(pipeline: Pipeline, count: int = 2) -> dict[str, Any]:
    """The first ``count`` NewImages of events/merge-stream-batch.json (zlib-d1, START then COMPLETE) put into
    the Events table as they were; the batch of those records."""
    batch = event_file("merge-stream-batch.json")
    records = batch["Records"][:count]
    images = [lambda_image(record) for record in records]
    assert {image["bodyEnc"]["S"] for image in images} == {"zlib-d1"}, (
        "events/merge-stream-*.json hold items as ingest wrote them before zlib-d2; if they are regenerated, keep a "
        "zlib-d1 batch for this test"
    )
    assert {"eventId", "eventTime", "producer"} <= set(images[0])
    for image in images:
        pipeline.dynamodb.put_item(TableName=pipeline.events_table, Item=image)
    return {"Records": records}


def test_items_written_with_zlib_d1_still_merge(
    stack: Stack, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    # Given the START and COMPLETE items of events/ as an older ingest wrote them (bodyEnc zlib-d1)
    batch = _store_old_items(pipeline)
    # When the merge function gets their stream batch
    merge_app: ModuleType = load_handler(stack, "MergeFunction", monkeypatch)
    assert merge_app.handler(batch, lambda_context) == {"batchItemFailures": []}
    # Then the run is merged from both bodies
    run = LineageStore(pipeline.dynamodb, TEST_STACK.physical_name("LineageTable")).get_run(*RUN)
    assert run is not None and run["state"] == "COMPLETE" and run["eventCount"] == 2
    assert run["outputs"] == [["my-namespace", "my-output"]]


def test_old_and_new_items_of_one_run_list_and_show_the_same_fields_in_the_event_log(pipeline: Pipeline) -> None:
    # Given the run's START stored by an older ingest (zlib-d1) and its COMPLETE by today's (zlib-d2)
    old = _store_old_items(pipeline, count=1)["Records"][0]["dynamodb"]["NewImage"]
    complete = json.loads(event_file("ingest-complete.json")["body"])
    stored = pipeline.store(complete)
    assert stored.status == "accepted"
    log = _event_log(pipeline)
    # When the run's events are listed
    views = log.accepted(Filters(namespace=RUN[0], job=RUN[1], run_id=RUN[2]))
    # Then each has its id, time and producer, whichever ingest wrote it
    by_type = {v["eventType"]: v for v in views}
    assert by_type["COMPLETE"]["eventId"] == stored.event_id
    assert by_type["COMPLETE"]["eventTime"] == stored.event_time
    assert by_type["COMPLETE"]["producer"] == complete["producer"]
    assert by_type["START"]["eventId"] == old["eventId"]["S"]
    assert by_type["START"]["producer"] == old["producer"]["S"]
    # And each is found by its id alone (a filtered Scan), with its body
    for view in by_type.values():
        shown = log.show(view["eventId"])
        assert shown["eventId"] == view["eventId"] and shown["body"]["eventType"] == view["eventType"]
        assert shown["producer"] == view["producer"]


def test_a_lean_item_s_stream_record_carries_its_event_time_to_the_merge_through_the_sort_key(
    pipeline: Pipeline,
) -> None:
    # Given a run's START and COMPLETE stored by today's ingest (no eventTime attribute on the items)
    start = json.loads(event_file("ingest-start.json")["body"])
    complete = json.loads(event_file("ingest-complete.json")["body"])
    pipeline.store(start)
    records = pipeline.filtered(pipeline.new_records())
    assert "eventTime" not in records[0]["dynamodb"]["NewImage"]
    pipeline.deliver(records)
    # When the COMPLETE's record is merged
    stored = pipeline.store(complete)
    (outcome,) = pipeline.deliver(pipeline.filtered(pipeline.new_records()))
    # Then the merge knows the trigger's time (it reads the run's events from its checkpoint on, not all again)
    assert stored.event_time and outcome.trigger_event_time == stored.event_time
    assert outcome.status == "merged" and outcome.events == 2
