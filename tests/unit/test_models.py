"""The OpenLineage event model: strict core, open facets, the spec's kinds, and the documented leniencies."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from lineage_intake.errors import InvalidEvent
from lineage_intake.lineage import normalize_run_id
from lineage_intake.models import (
    DatasetEvent,
    JobEvent,
    RunEvent,
    format_event_time,
    parse_event,
)

from tests.helpers.corpus import INVALID_FIXTURES, concrete_corpus_events, corpus_json

VALID = [(name, ev) for name, ev in concrete_corpus_events() if name not in INVALID_FIXTURES]


def minimal_run(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventType": "START",
        "eventTime": "2024-05-01T10:00:00.000Z",
        "run": {"runId": "3f5e83fa-3480-44ff-99c5-ff943904e5e8"},
        "job": {"namespace": "prod", "name": "etl.orders"},
        "producer": "https://example.com/producer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }
    event.update(changes)
    return event


@pytest.mark.parametrize(("name", "event"), VALID, ids=[name for name, _ in VALID])
def test_every_concrete_corpus_event_is_accepted(name: str, event: dict[str, Any]) -> None:
    parsed = parse_event(event)
    assert parsed.kind in {"RUN", "DATASET", "JOB"}


def test_the_corpus_holds_the_expected_number_of_valid_events() -> None:
    assert len(VALID) == 59


@pytest.mark.parametrize(("path", "field"), sorted(INVALID_FIXTURES.items()))
def test_each_deliberately_invalid_fluentd_fixture_is_rejected_with_its_field_path(path: str, field: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(corpus_json(path))
    assert field in [e.path for e in caught.value.errors]
    assert field in caught.value.message


def test_run_and_job_make_a_run_event_even_with_a_stray_dataset_key() -> None:
    event = parse_event(corpus_json("openlineage/events/spec-tests/example_full_event.json"))
    assert isinstance(event, RunEvent)
    assert "dataset" in event.model_extra


def test_dataset_makes_a_dataset_event_and_job_without_run_makes_a_job_event() -> None:
    dataset = parse_event(corpus_json("marquez/api-test-resources/open_lineage/event_dataset_event.json"))
    job = parse_event(corpus_json("marquez/api-test-resources/open_lineage/event_job_event.json"))
    assert isinstance(dataset, DatasetEvent)
    assert isinstance(job, JobEvent)
    assert job.eventType == "COMPLETE"


def test_an_event_with_neither_run_job_nor_dataset_is_rejected_with_a_clear_message() -> None:
    with pytest.raises(InvalidEvent, match="RunEvent needs 'run' and 'job'"):
        parse_event({"eventTime": "2024-01-01T00:00:00Z", "producer": "x"})


def test_a_json_array_is_not_an_event() -> None:
    with pytest.raises(InvalidEvent, match="must be a JSON object"):
        parse_event([minimal_run()])


def test_event_type_is_optional() -> None:
    event = minimal_run()
    del event["eventType"]
    assert parse_event(event).eventType is None  # type: ignore[union-attr]


def test_missing_schema_url_and_producer_are_accepted() -> None:
    event = minimal_run()
    del event["schemaURL"], event["producer"]
    parsed = parse_event(event)
    assert parsed.schemaURL is None
    assert parsed.producer == "unknown"


def test_an_event_time_without_offset_is_read_as_utc() -> None:
    parsed = parse_event(minimal_run(eventTime="2020-12-28T19:51:01.641499"))
    assert format_event_time(parsed.eventTime) == "2020-12-28T19:51:01.641499Z"


def test_an_event_time_with_an_offset_is_converted_to_utc() -> None:
    parsed = parse_event(minimal_run(eventTime="2020-12-28T19:52:00.001+10:00"))
    assert format_event_time(parsed.eventTime) == "2020-12-28T09:52:00.001000Z"


def test_nanoseconds_are_truncated_to_microseconds() -> None:
    parsed = parse_event(minimal_run(eventTime="2020-12-28T19:51:01.641499123Z"))
    assert format_event_time(parsed.eventTime) == "2020-12-28T19:51:01.641499Z"


@pytest.mark.parametrize("bad", ["yesterday", "2020-13-01T00:00:00Z", "2020-12-28T25:00:00Z", "2020-12-28T10:00+99:00"])
def test_an_unreadable_event_time_is_rejected_with_its_path(bad: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(minimal_run(eventTime=bad))
    assert caught.value.errors[0].path == "eventTime"


def test_a_run_id_that_is_not_a_uuid_maps_to_a_stable_name_based_uuid() -> None:
    assert normalize_run_id("spark-app-123") == normalize_run_id("spark-app-123")
    assert normalize_run_id("spark-app-123") != normalize_run_id("spark-app-124")
    # Java's UUID.nameUUIDFromBytes("spark-app-123".getBytes(UTF_8)) gives a version 3 UUID.
    assert normalize_run_id("spark-app-123")[14] == "3"


def test_an_upper_case_uuid_is_lower_cased() -> None:
    assert normalize_run_id("3F5E83FA-3480-44FF-99C5-FF943904E5E8") == "3f5e83fa-3480-44ff-99c5-ff943904e5e8"


def test_unknown_facets_and_unknown_keys_are_kept_verbatim() -> None:
    custom = {"_producer": "me", "nested": {"deep": [1, 2, {"x": None}]}, "weird-key": True}
    event = minimal_run(extraTopLevel={"a": 1})
    event["run"]["facets"] = {"myCompany_custom": copy.deepcopy(custom), "noProducerFacet": {"value": 1}}
    parsed = parse_event(event)
    assert isinstance(parsed, RunEvent)
    assert parsed.run.facets["myCompany_custom"] == custom
    assert parsed.run.facets["noProducerFacet"] == {"value": 1}
    assert parsed.model_extra == {"extraTopLevel": {"a": 1}}


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"job": {"namespace": 7, "name": "x"}}, "job.namespace"),
        ({"job": {"namespace": "", "name": "x"}}, "job.namespace"),
        ({"run": {"runId": 42}}, "run.runId"),
        ({"eventType": "start"}, "eventType"),
        ({"producer": 1}, "producer"),
        ({"inputs": [{"namespace": "n"}]}, "inputs[0].name"),
        ({"outputs": {"namespace": "n", "name": "x"}}, "outputs"),
    ],
)
def test_core_fields_are_strict_and_errors_name_the_field(change: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(minimal_run(**change))
    assert path in [e.path for e in caught.value.errors]


def test_an_unknown_event_type_lists_the_allowed_values() -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(minimal_run(eventType="FINISHED"))
    assert "START, RUNNING, COMPLETE, ABORT, FAIL, OTHER" in caught.value.errors[0].message


def test_at_most_fifty_errors_are_reported() -> None:
    event = minimal_run(inputs=[{"namespace": i} for i in range(80)])
    with pytest.raises(InvalidEvent) as caught:
        parse_event(event)
    assert len(caught.value.errors) == 50
    assert "and" in caught.value.message


def test_a_parent_facet_with_only_a_root_is_accepted_as_spark_sends_it() -> None:
    event = corpus_json("openlineage/events/spark-serde/openlineage-event.json")
    parsed = parse_event(event)
    assert isinstance(parsed, RunEvent)
    assert "run" not in parsed.run.facets["parent"]  # type: ignore[operator]


def test_a_column_lineage_facet_with_a_malformed_input_field_is_rejected() -> None:
    event = minimal_run(
        outputs=[
            {
                "namespace": "db",
                "name": "t",
                "facets": {"columnLineage": {"fields": {"a": {"inputFields": [{"namespace": "db", "name": "s"}]}}}},
            }
        ]
    )
    with pytest.raises(InvalidEvent) as caught:
        parse_event(event)
    assert caught.value.errors[0].path == "outputs[0].facets.columnLineage.fields.a.inputFields[0].field"
