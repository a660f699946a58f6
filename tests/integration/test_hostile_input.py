"""Hostile input against the ingest function on moto: the known crash inputs, then hypothesis looking for more.

Every answer must be one of 200, 400, 403, 413 or 415 with a JSON body; every 200 must be stored as sent; and
every accepted event must merge (the merge's pure fold and the records it derives) without raising: the
contract between ingest and merge (README "Limits").
"""

from __future__ import annotations

import gzip
import json
from types import ModuleType
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, event, given, settings
from lineage_intake import limits, merge, static_lineage
from lineage_intake.lineage import DatasetView, content_hash
from lineage_intake.models import DatasetEvent, JobEvent, parse_event
from lineage_intake.service.ingest import canonical_json, describe, event_id_of
from lineage_intake.store.dynamo import from_dynamodb
from lineage_intake.store.events import EventsStore

from tests.helpers.aws import TEST_STACK
from tests.helpers.hostile import CRASH_INPUTS, Body, hostile_bodies, http_request

ALLOWED = {200, 400, 403, 413, 415}


def send(app: ModuleType, body: Body, context: Any) -> tuple[int, Any]:
    answer = app.handler(http_request(body), context)
    return answer["statusCode"], json.loads(answer["body"])


def stored_body(session: boto3.Session, event_id: str) -> Any | None:
    """The stored JSON of the event with this id, read back through the store (S3 offload included)."""
    ddb = session.client("dynamodb")
    store = EventsStore(
        ddb,
        TEST_STACK.physical_name("EventsTable"),
        TEST_STACK.physical_name("BodyBucket"),
        lambda: session.client("s3"),
    )
    found = ddb.scan(
        TableName=store.table,
        FilterExpression="contains(sk, :id)",  # the item keeps its eventId in the sort key only
        ExpressionAttributeValues={":id": {"S": event_id}},
    )["Items"]
    if not found:
        return None
    return json.loads(store.load_body(from_dynamodb(found[0])))


def merge_without_raising(raw: dict[str, Any]) -> None:
    """Feed one accepted event to the merge's pure fold and derive every record the store would write."""
    event = parse_event(raw)
    outcome = describe(event)
    assert outcome.event_time is not None
    plain = canonical_json(raw)
    stored = merge.StoredEvent(outcome.event_time, event_id_of(plain), outcome.event_type, json.loads(plain))
    if isinstance(event, DatasetEvent):
        definition = static_lineage.merge_dataset_events([stored])
        assert definition is not None
        definition.content()
    elif isinstance(event, JobEvent):
        job = static_lineage.merge_job_events([stored])
        assert job is not None
        job.content(), job.edges(), job.column_edges()
    else:
        run = merge.merge_run([stored])
        assert run is not None
        run.run_content(), run.job_content(), run.edges(), run.column_edges(), run.lineage_digest()
        for view in run.datasets:
            # the digest that decides a dataset's write and its version item (store.lineage)
            assert isinstance(view, DatasetView)
            content_hash({"fields": view.fields, "symlinks": view.symlinks})


@pytest.mark.parametrize("name", list(CRASH_INPUTS))
def test_each_known_crash_input_gets_its_4xx_with_a_json_message_naming_the_problem(
    name, ingest, lambda_context, aws
) -> None:
    # Given one of the inputs that answered 500 (or was stored lossily) before the limits
    body, expected_status, word = CRASH_INPUTS[name]
    # When it is sent to the ingest function
    status, answer = send(ingest, body, lambda_context)
    # Then the answer is the expected 4xx, in JSON, and its text names the problem
    assert status == expected_status, answer
    assert word.lower() in json.dumps(answer, ensure_ascii=False).lower()
    # And the answer never echoes the input back whole
    assert len(json.dumps(answer)) < 20_000
    # And no event of it was stored: the refused event is kept in quarantine only (issue 11)
    items = aws.client("dynamodb").scan(TableName=TEST_STACK.physical_name("EventsTable"))["Items"]
    assert all(item["pk"]["S"].startswith(("REJECTED#", "QUARANTINE-CAP#")) for item in items)


def test_an_event_at_every_limit_is_accepted_stored_verbatim_and_merges(ingest, lambda_context, aws) -> None:
    # Given an event exactly at the depth, identifier, dataset, schema and column-lineage limits
    deep: Any = 1
    for _ in range(limits.MAX_DEPTH - 4):  # body, run, facets, the facet itself
        deep = [deep]
    fields = [{"name": f"c{i}", "type": "string"} for i in range(limits.MAX_SCHEMA_FIELDS)]
    edges = [{"namespace": "d", "name": "s", "field": str(i)} for i in range(limits.MAX_COLUMN_EDGES)]
    event = {
        "eventType": "COMPLETE",
        "eventTime": "2024-06-01T10:00:00Z",
        "producer": "p" * limits.MAX_IDENTIFIER_BYTES,
        "run": {"runId": "0f0e0d0c-0b0a-4908-8706-050403020100", "facets": {"deep": {"v": deep}}},
        "job": {"namespace": "default", "name": "j" * limits.MAX_IDENTIFIER_BYTES},
        "inputs": [{"namespace": "default", "name": f"in{i}"} for i in range(limits.MAX_DATASETS)],
        "outputs": [
            {
                "namespace": "default",
                "name": "out",
                "facets": {"schema": {"fields": fields}, "columnLineage": {"fields": {"c0": {"inputFields": edges}}}},
            }
        ],
        "n": int("9" * limits.MAX_NUMBER_CHARS),
    }
    # When it is sent
    status, answer = send(ingest, Body.json(event), lambda_context)
    # Then it is accepted, stored as sent, and the merge folds it
    assert status == 200, answer
    assert stored_body(aws, answer["eventId"]) == event
    merge_without_raising(event)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(body=hostile_bodies())
def test_any_body_gets_an_allowed_status_every_200_is_stored_and_every_accepted_event_merges(
    body, ingest, lambda_context, aws
) -> None:
    # Given any body hypothesis draws: arbitrary JSON, mutated corpus events, batches of both, or raw bytes
    # When it is sent to the ingest function
    status, answer = send(ingest, body, lambda_context)
    # Then the status is one of the allowed ones, with a JSON answer
    assert status in ALLOWED, answer
    event(f"status {status}")  # the spread shows in --hypothesis-show-statistics
    if status != 200:
        assert answer.get("message"), answer
        return
    # And every event the answer counts as accepted is stored as sent, and merges without raising
    if body.path.endswith("/batch"):
        failed = {f["index"] for f in answer["failed_events"]}
        accepted = [e for i, e in enumerate(json.loads(_plain(body))) if i not in failed]
    else:
        accepted = [json.loads(_plain(body))]
    for raw in accepted:
        assert stored_body(aws, event_id_of(canonical_json(raw))) == raw
        merge_without_raising(raw)


def _plain(body: Body) -> bytes:
    return gzip.decompress(body.data) if body.data[:2] == b"\x1f\x8b" else body.data
