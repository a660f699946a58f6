"""The read API's Marquez models dump to JSON that Marquez's own OpenAPI document accepts.

The instances are the food_delivery seed's job ``etl_delivery_7_days`` and its datasets (Marquez's demo data, in
tests/fixtures/corpus/marquez/docker/metadata.json), shaped the way the read API will serve them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from lineage_intake import marquez as m
from lineage_intake.marquez_ids import dataset_node_id, field_node_id, job_node_id
from pydantic import ValidationError

from tests.helpers.marquez_schema import (
    assert_valid_component,
    assert_valid_response,
    component_schema,
    response_schema,
    schema_errors,
)

NS = "food_delivery"
PG = "postgres://food_delivery_db:5432"
JOB = "etl_delivery_7_days"
RUN_ID = "b2b3c6a4-55a4-4b4a-9d43-4a7b04bd2b11"
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=3, seconds=12)
VERSION = "3c5f8a7e-1b0d-5c2e-9f7a-0a4b3c2d1e0f"


def sql_facet() -> dict[str, Any]:
    return {
        "_producer": "https://github.com/MarquezProject/marquez/blob/main/docker/metadata.json",
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/SQLJobFacet.json",
        "query": "INSERT INTO delivery_7_days (order_id, ...) SELECT ...",
    }


def error_facet() -> dict[str, Any]:
    return {
        "_producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python",
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json",
        "message": "division by zero",
        "programmingLanguage": "python",
        "stackTrace": 'Traceback (most recent call last):\n  File "etl.py", line 3\nZeroDivisionError',
    }


def assertions_facet() -> dict[str, Any]:
    return {
        "_producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/dbt",
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DataQualityAssertionsDatasetFacet.json",
        "assertions": [{"assertion": "not_null", "success": True, "column": "order_id"}],
    }


def run(state: m.RunState = "COMPLETED", **extra: Any) -> m.Run:
    return m.Run(
        id=RUN_ID,
        created_at=T0,
        updated_at=T1,
        state=state,
        started_at=T0,
        ended_at=T1,
        duration_ms=192_000,
        job_version=m.VersionRef(namespace=NS, name=JOB, version=VERSION),
        input_dataset_versions=[
            m.RunDatasetVersion(dataset_version_id=m.VersionRef(namespace=PG, name="public.delivery", version=VERSION))
        ],
        output_dataset_versions=[
            m.RunDatasetVersion(
                dataset_version_id=m.VersionRef(namespace=PG, name="public.delivery_7_days", version=VERSION)
            )
        ],
        **extra,
    )


def job() -> m.Job:
    return m.Job(
        id=m.NamespaceRef(namespace=NS, name=JOB),
        name=JOB,
        simple_name=JOB,
        created_at=T0,
        updated_at=T1,
        namespace=NS,
        inputs=[m.NamespaceRef(namespace=PG, name="public.delivery")],
        outputs=[m.NamespaceRef(namespace=PG, name="public.delivery_7_days")],
        location="https://github.com/example/jobs/blob/main/etl_delivery_7_days.py",
        description="Loads newly placed orders weekly.",
        latest_run=run(),
        latest_runs=[run()],
        facets={"sql": sql_facet()},
        current_version=VERSION,
    )


def fields() -> list[m.DatasetField]:
    return [
        m.DatasetField(name="order_id", type="INTEGER", description="The ID of the order."),
        m.DatasetField(name="order_placed_on", type="TIMESTAMP"),
        m.DatasetField(name="customer_email"),  # no type in the schema facet: served as UNKNOWN
    ]


def dataset(partial: bool = False) -> m.Dataset:
    name = "public.delivery_7_days"
    return m.Dataset(
        id=m.NamespaceRef(namespace=PG, name=name),
        name=name,
        physical_name=name,
        created_at=T0,
        updated_at=T1,
        namespace=PG,
        source_name=PG,
        fields=fields(),
        last_modified_at=T1,
        description="Orders of the last seven days.",
        facets={"dataQualityAssertions": assertions_facet()},
        current_version=VERSION,
        column_lineage=[
            m.ColumnLineage(
                name="order_id",
                input_fields=[
                    m.ColumnLineageInputField(
                        namespace=PG, dataset="public.delivery", field="order_id", transformation_type="IDENTITY"
                    )
                ],
            )
        ],
        partial=partial,
        data_quality=m.DataQuality(
            run_id=RUN_ID,
            reported_at=T1,
            assertions=[{"assertion": "not_null", "success": True, "column": "order_id"}],
            metrics={"rowCount": 1024},
        ),
    )


def dataset_version() -> m.DatasetVersion:
    name = "public.delivery_7_days"
    return m.DatasetVersion(
        id=m.VersionRef(namespace=PG, name=name, version=VERSION),
        name=name,
        physical_name=name,
        created_at=T1,
        version=VERSION,
        namespace=PG,
        source_name=PG,
        fields=fields(),
        tags=["PII"],
        lifecycle_state="OVERWRITE",
        created_by_run=run(),
    )


def lineage_graph() -> m.LineageGraph:
    job_id = job_node_id(NS, JOB)
    out_id = dataset_node_id(PG, "public.delivery_7_days")
    edge = m.Edge(origin=job_id, destination=out_id, first_seen=T0, last_seen=T1, current=True)
    return m.LineageGraph(
        graph=[
            m.Node(id=job_id, type="JOB", data=job(), out_edges=[edge]),
            m.Node(id=out_id, type="DATASET", data=dataset(), in_edges=[edge]),
        ],
        truncated=False,
    )


def column_graph() -> m.LineageGraph:
    out_id = field_node_id(PG, "public.delivery_7_days", "order_id")
    in_id = field_node_id(PG, "public.delivery", "order_id")
    edge = m.Edge(origin=in_id, destination=out_id)
    in_field = m.ColumnLineageInputField(namespace=PG, dataset="public.delivery", field="order_id")
    return m.LineageGraph(
        graph=[
            m.Node(
                id=out_id,
                type="DATASET_FIELD",
                data=m.ColumnLineageNodeData(
                    namespace=PG,
                    dataset="public.delivery_7_days",
                    field="order_id",
                    field_type="INTEGER",
                    input_fields=[in_field],
                ),
                in_edges=[edge],
            ),
            m.Node(
                id=in_id,
                type="DATASET_FIELD",
                data=m.ColumnLineageNodeData(namespace=PG, dataset="public.delivery", field="order_id"),
                out_edges=[edge],
            ),
        ]
    )


# (what, instance, path of the document whose 200 answer it is)
ANSWERS: list[tuple[str, m.MarquezModel, str]] = [
    (
        "/namespaces",
        m.NamespaceList(namespaces=[m.Namespace(name=NS, created_at=T0, updated_at=T1, description="Food delivery")]),
        "/namespaces",
    ),
    ("/namespaces/{namespace}", m.Namespace(name=NS, created_at=T0, updated_at=T1), "/namespaces/{namespace}"),
    ("/namespaces/{namespace}/jobs", m.JobList(jobs=[job()], total_count=1), "/namespaces/{namespace}/jobs"),
    ("/namespaces/{namespace}/jobs/{job}", job(), "/namespaces/{namespace}/jobs/{job}"),
    (
        "/namespaces/{namespace}/jobs/{job}/runs",
        m.RunList(runs=[run(), run("FAILED", facets={"errorMessage": error_facet()})], total_count=2),
        "/namespaces/{namespace}/jobs/{job}/runs",
    ),
    (
        "/jobs/runs/{id} awaiting its START",
        run("COMPLETED", merge_state="AWAITING_START", start_missing=True),
        "/jobs/runs/{id}",
    ),
    ("/jobs/runs/{id}/facets", m.FacetsResult(run_id=RUN_ID, facets={"sql": sql_facet()}), "/jobs/runs/{id}/facets"),
    (
        "/namespaces/{namespace}/datasets",
        m.DatasetList(datasets=[dataset(), dataset(partial=True)], total_count=2),
        "/namespaces/{namespace}/datasets",
    ),
    ("/namespaces/{namespace}/datasets/{dataset}", dataset(), "/namespaces/{namespace}/datasets/{dataset}"),
    (
        "/namespaces/{namespace}/datasets/{dataset}/versions",
        m.DatasetVersionList(versions=[dataset_version()], total_count=1),
        "/namespaces/{namespace}/datasets/{dataset}/versions",
    ),
    ("/lineage", lineage_graph(), "/lineage"),
    ("/column-lineage", column_graph(), "/column-lineage"),
    (
        "/runlineage/upstream",
        m.UpstreamRunLineage(
            runs=[
                m.UpstreamRun(
                    job=m.UpstreamJob(namespace=NS, name=JOB, version=VERSION),
                    run=m.UpstreamRunInfo(id=RUN_ID, start=T0, end=T1, status="COMPLETED"),
                    inputs=[
                        m.UpstreamInput(
                            namespace=PG, name="public.delivery", version=VERSION, produced_by_run_id=RUN_ID
                        )
                    ],
                )
            ]
        ),
        "/runlineage/upstream",
    ),
    (
        "/events/lineage",
        m.LineageEventList(
            events=[
                {
                    "eventType": "COMPLETE",
                    "eventTime": "2026-11-20T08:03:12Z",
                    "run": {"runId": RUN_ID},
                    "job": {"namespace": NS, "name": JOB},
                    "producer": "https://github.com/MarquezProject/marquez/blob/main/docker/metadata.json",
                }
            ],
            total_count=1,
        ),
        "/events/lineage",
    ),
    (
        "/search",
        m.SearchResultList(
            total_count=1,
            results=[m.SearchResult(type="JOB", name=JOB, updated_at=T1, namespace=NS, node_id=job_node_id(NS, JOB))],
        ),
        "/search",
    ),
    ("/tags", m.TagList(tags=[m.Tag(name="PII", description="Personally identifiable information")]), "/tags"),
]


@pytest.mark.parametrize(("what", "answer", "path"), ANSWERS, ids=[a[0] for a in ANSWERS])
def test_each_answer_validates_against_the_response_schema_of_its_marquez_path(
    what: str, answer: m.MarquezModel, path: str
) -> None:
    # Given a realistic answer of the read API for the food_delivery seed
    # When it is dumped to JSON
    body = answer.dump()
    # Then Marquez's OpenAPI document accepts it as the 200 answer of that path
    assert_valid_response(body, path)


def test_field_names_on_the_wire_are_marquez_camel_case_and_absent_options_are_left_out() -> None:
    # Given a job whose parent is unknown
    # When it is dumped
    body = job().dump()
    # Then the names are Marquez's, and the unknown parent is absent rather than null
    assert {"simpleName", "createdAt", "updatedAt", "latestRun", "latestRuns", "currentVersion"} <= set(body)
    assert body["latestRun"]["durationMs"] == 192_000
    assert body["latestRun"]["jobVersion"] == {"namespace": NS, "name": JOB, "version": VERSION}
    assert "parentJobName" not in body
    assert body["createdAt"] == "2026-11-20T08:00:00Z"


def test_a_run_awaiting_its_start_keeps_a_marquez_state_and_says_so_in_extra_fields() -> None:
    # Given a run whose terminal event came without a START
    body = run("COMPLETED", merge_state="AWAITING_START", start_missing=True).dump()
    # Then Marquez's state is still one of Marquez's values, and our extra fields carry the rest
    assert body["state"] == "COMPLETED"
    assert body["mergeState"] == "AWAITING_START"
    assert body["startMissing"] is True


def test_awaiting_start_as_marquez_state_would_break_the_contract_so_the_schema_refuses_it() -> None:
    # Given the same run with AWAITING_START put into Marquez's own state field
    body = run().dump() | {"state": "AWAITING_START"}
    # When it is validated as Marquez's IncompleteRun (Run's anyOf has an open branch; this one holds the enum)
    errors = schema_errors(body, component_schema("IncompleteRun"))
    # Then it is refused: this is why the state lives in mergeState
    assert errors == ["state: 'AWAITING_START' is not one of ['NEW', 'RUNNING', 'COMPLETED', 'FAILED', 'ABORTED']"]


def test_the_models_refuse_a_state_outside_marquez_run_states() -> None:
    # Given Marquez's five run states
    # When a run is built with our merge state in Marquez's field
    # Then pydantic refuses it before it can reach a client
    with pytest.raises(ValidationError):
        m.Run(id=RUN_ID, created_at=T0, updated_at=T0, state="AWAITING_START")  # type: ignore[arg-type]


def test_dataset_extras_carry_partial_and_the_latest_data_quality_beside_marquez_fields() -> None:
    # Given a dataset no DatasetEvent defined, with a dbt test result
    body = dataset(partial=True).dump()
    # Then partial and dataQuality are extra fields, and the facet the UI reads is untouched
    assert body["partial"] is True
    assert body["dataQuality"]["assertions"][0]["success"] is True
    assert body["dataQuality"]["metrics"] == {"rowCount": 1024}
    assert body["facets"]["dataQualityAssertions"]["assertions"][0]["success"] is True
    assert body["fields"][2] == {"name": "customer_email", "type": "UNKNOWN", "tags": []}
    assert body["columnLineage"][0]["inputFields"][0]["transformationType"] == "IDENTITY"


def test_graph_edges_carry_first_and_last_seen_and_whether_they_are_current() -> None:
    # Given the graph around etl_delivery_7_days
    body = lineage_graph().dump()
    # Then node ids are Marquez's, edges keep origin/destination and add our marks
    job_node, dataset_node = body["graph"]
    assert job_node["id"] == "job:food_delivery:etl_delivery_7_days"
    assert dataset_node["id"] == "dataset:postgres://food_delivery_db:5432:public.delivery_7_days"
    assert job_node["outEdges"] == [
        {
            "origin": job_node["id"],
            "destination": dataset_node["id"],
            "firstSeen": "2026-11-20T08:00:00Z",
            "lastSeen": "2026-11-20T08:03:12Z",
            "current": True,
        }
    ]
    assert dataset_node["data"]["fields"][0]["name"] == "order_id"
    assert body["truncated"] is False


def test_a_job_node_with_dataset_data_is_refused_by_the_discriminator() -> None:
    # Given a JOB node whose data is a dataset with a malformed job field
    body = lineage_graph().dump()
    node = body["graph"][1] | {"type": "JOB"}
    node["data"] = node["data"] | {"inputs": "public.delivery"}
    # When it is validated as a GraphNode
    errors = schema_errors(node, component_schema("GraphNode"))
    # Then the node's type chose the Job schema, which wants inputs to be a list
    assert any("inputs" in e for e in errors)


def test_a_malformed_answer_is_refused_with_the_path_of_the_problem() -> None:
    # Given a job list whose job has a creation time that is not a date-time
    body = m.JobList(jobs=[job()], total_count=1).dump()
    body["jobs"][0]["createdAt"] = "yesterday"
    # When it is validated
    errors = schema_errors(body, response_schema("/namespaces/{namespace}/jobs"))
    # Then the error names where
    assert errors
    assert errors[0].startswith("jobs/0/createdAt")


def test_error_bodies_have_marquez_shape_with_details_kept_as_null() -> None:
    # Given a 404 of an unknown job
    body = m.ErrorResponse(code=404, message="Job 'nope' not found.").dump()
    # Then all three fields the UI reads are there
    assert body == {"code": 404, "message": "Job 'nope' not found.", "details": None}


def test_stats_buckets_have_the_fields_the_marquez_ui_reads() -> None:
    # Given an hour of run events and an hour of new jobs (the document has no schema for stats)
    events = m.LineageMetric(start_interval=T0, end_interval=T0 + timedelta(hours=1), start=3, complete=2, fail=1)
    jobs = m.IntervalMetric(start_interval=T0, end_interval=T0 + timedelta(hours=1), count=4)
    # Then their JSON has exactly the UI's field names
    assert events.dump() == {
        "startInterval": "2026-11-20T08:00:00Z",
        "endInterval": "2026-11-20T09:00:00Z",
        "fail": 1,
        "start": 3,
        "complete": 2,
        "abort": 0,
    }
    assert set(jobs.dump()) == {"startInterval", "endInterval", "count"}


def test_a_tag_and_a_namespace_validate_as_marquez_components() -> None:
    # Given a tag from a tags facet and a namespace
    # Then both are valid Marquez components
    assert_valid_component(m.Tag(name="PII").dump(), "Tag")
    assert_valid_component(m.Namespace(name=NS, created_at=T0, updated_at=T0).dump(), "Namespace")
