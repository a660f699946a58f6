"""A run whose schema of a dataset changes between two of its merges (a streaming run, or a late event merged
again): the dataset's current schema is the later merge's, since ``schemaVersion`` carries the merge's version
and not only the run's order (docs/merge.md "Concurrency")."""

from __future__ import annotations

import copy
from typing import Any

from lineage_intake import keys
from lineage_intake.store.dynamo import from_dynamodb

from tests.helpers.pipeline import Pipeline
from tests.helpers.runs import at, wide_run

NS = "schema_change"
RUN = "0190a1b2-0000-7000-8000-00000000c0de"
STREAMING = {
    "_producer": "https://example.com/tests",
    "_schemaURL": "https://openlineage.io/spec/facets/2-0-3/JobTypeJobFacet.json",
    "processingType": "STREAMING",
    "integration": "FLINK",
    "jobType": "JOB",
}


def streaming_event(event_type: str, seconds: float, fields: int) -> dict[str, Any]:
    """One event of a streaming run writing ``out0`` with a schema of ``fields`` fields."""
    (event, _) = wide_run(NS, "stream_job", RUN, outputs=1, fields=fields)
    event = copy.deepcopy(event)
    event.update(eventType=event_type, eventTime=at(seconds))
    event["job"]["facets"] = {"jobType": STREAMING}
    return event


def dataset_fields(pipeline: Pipeline) -> list[str]:
    raw = pipeline.dynamodb.get_item(
        TableName=pipeline.lineage_table,
        Key={"pk": {"S": keys.dataset_key(NS, "out0")}, "sk": {"S": "DATASET"}},
        ConsistentRead=True,
    )["Item"]
    return [f["name"] for f in from_dynamodb(raw)["fields"]]


def test_a_streaming_runs_later_merge_with_a_new_schema_becomes_the_datasets_schema(pipeline: Pipeline) -> None:
    # Given a streaming run whose START, merged on its own, wrote out0 with two fields
    (first,) = pipeline.send(streaming_event("START", 0, fields=2))
    assert first.status == "streaming" and dataset_fields(pipeline) == ["c0", "c1"]
    # When a RUNNING event of the same run reports a third field and is merged in a later batch
    (second,) = pipeline.send(streaming_event("RUNNING", 60, fields=3))
    # Then the dataset's schema is the later one
    assert second.status == "streaming"
    assert dataset_fields(pipeline) == ["c0", "c1", "c2"]
