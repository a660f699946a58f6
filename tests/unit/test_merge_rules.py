"""Merge rules on real corpus events: union of inputs and outputs, facet order, run state, column lineage, parents.

The runs are built from the corpus by ``tests.helpers.runs``.
"""

from __future__ import annotations

import copy
import tracemalloc
from collections.abc import Iterator

import pytest
from lineage_intake.lineage import RunRef, content_hash, normalize_run_id
from lineage_intake.merge import (
    StoredEvent,
    UnorderedEvents,
    merge_run,
)
from lineage_intake.static_lineage import merge_dataset_events, merge_job_events

from tests.helpers.corpus import corpus_json
from tests.helpers.runs import (
    TEMPLATES,
    at,
    dbt_family,
    fill,
    flink_streaming_run,
    listener_run,
    merged,
    names,
    seed_run,
    seed_runs,
    spark_hive_run,
    stored,
    template_event,
)


# ================================================================================== inputs and outputs
def test_inputs_sent_only_on_start_stay_in_the_merged_run() -> None:
    # Given the Marquez seed run of etl_orders_7_days: inputs and outputs on START, nothing on COMPLETE
    run = merged(seed_run("etl_orders_7_days"))
    # Then the merged run has them, and the state of the COMPLETE event
    assert run.status == "merged" and run.state == "COMPLETE"
    assert names(run.inputs) == [
        ("food_delivery", "public.categories"),
        ("food_delivery", "public.menu_items"),
        ("food_delivery", "public.menus"),
        ("food_delivery", "public.orders"),
    ]
    assert names(run.outputs) == [("food_delivery", "public.orders_7_days")]
    assert run.start_time == "2020-02-22T22:42:42.000000Z" and run.end_time == "2020-02-22T22:44:02.000000Z"


def test_outputs_sent_only_on_complete_are_part_of_the_merged_run() -> None:
    # Given Spark's START and RUNNING without datasets, and its COMPLETE with the output
    run = merged(spark_hive_run("0d0c4c25-0bd5-4b2c-9c3b-6e8b6b1d1a01"))
    assert run.state == "COMPLETE" and run.event_count == 3
    assert names(run.outputs) == [("file", "/tmp/warehouse/test")]
    (view,) = run.datasets
    assert [f["name"] for f in view.fields or ()] == ["key", "value"]
    assert view.symlinks == ({"namespace": "file:/tmp/warehouse", "name": "default.test", "type": "TABLE"},)


def test_inputs_and_outputs_spread_over_events_are_a_union_keyed_by_dataset() -> None:
    # Given the listener run: RUNNING reads two files and writes one, COMPLETE reads a third and writes another
    events = listener_run()
    events[2] = copy.deepcopy(events[2])
    events[2]["inputs"].append(copy.deepcopy(events[1]["inputs"][0]))  # and COMPLETE repeats the first input
    run = merged(events)
    # Then the run has every dataset once, whichever events carried it
    assert names(run.inputs) == [
        ("file.localhost", "file://localhost/in_file1.txt"),
        ("file.localhost", "file://localhost/in_file2.txt"),
        ("file.localhost", "file://localhost/in_file3.txt"),
    ]
    assert names(run.outputs) == [
        ("file.localhost", "file://localhost/out_file1.txt"),
        ("file.localhost", "file://localhost/out_file2.txt"),
    ]
    assert [(e.direction, e.dataset.name) for e in run.edges()] == [
        ("IN", "file://localhost/in_file1.txt"),
        ("IN", "file://localhost/in_file2.txt"),
        ("IN", "file://localhost/in_file3.txt"),
        ("OUT", "file://localhost/out_file1.txt"),
        ("OUT", "file://localhost/out_file2.txt"),
    ]


# ================================================================================== facets
def test_a_later_facet_replaces_an_earlier_one_with_the_same_name_whatever_the_reading_order() -> None:
    start, complete = seed_run("etl_menus")
    complete = copy.deepcopy(complete)
    complete["job"]["facets"] = {"sql": {"query": "INSERT INTO menus SELECT * FROM tmp_menus_v2;"}}
    for given in ([start, complete], [complete, start]):
        run = merged(given)
        assert run.sql == {"query": "INSERT INTO menus SELECT * FROM tmp_menus_v2;"}
        # the facets that the later event did not send are kept
        assert run.description == "Loads newly added restaurant menus daily."


def test_a_facet_marked_deleted_is_removed_and_a_null_facet_changes_nothing() -> None:
    start, complete = copy.deepcopy(seed_run("etl_menus"))
    complete["job"]["facets"] = {"documentation": {"_deleted": True}, "sql": None}
    run = merged([start, complete])
    assert run.description is None
    assert run.sql is not None and run.sql["query"].startswith("INSERT INTO menus")


# ================================================================================== state and times
def test_the_latest_terminal_event_gives_the_state_and_the_end_time() -> None:
    start, complete = seed_run("etl_menus")
    fail = fill(corpus_json(TEMPLATES + "flink/flink1/expected_failed.json"))
    fail.update(run={"runId": start["run"]["runId"], "facets": fail["run"]["facets"]}, job=start["job"])
    fail["eventTime"] = "2020-02-22T23:00:00.000Z"
    run = merged([fail, complete, start])
    assert run.state == "FAIL" and run.end_time == "2020-02-22T23:00:00.000000Z"
    assert run.error_message == {"message": "Application Status: FAILED", "programmingLanguage": "JAVA"}


def test_events_of_the_same_instant_fold_start_first_and_the_terminal_event_last() -> None:
    # Given a dbt test run whose START and COMPLETE have the very same eventTime
    events = [e for e in dbt_family(TEMPLATES + "dbt/test/result.json") if e["run"]["runId"].startswith("6edf42ed")]
    assert {e["eventTime"] for e in events} == {"2021-08-25T11:00:25.277467+00:00"}
    for given in (events, events[::-1]):
        run = merged(given)
        assert run.state == "COMPLETE" and run.start_time == run.end_time == "2021-08-25T11:00:25.277467Z"


def test_a_terminal_event_without_a_start_makes_the_run_await_its_start() -> None:
    _, complete = seed_run("etl_menus")
    run = merged([complete])
    assert run.status == "awaiting_start" and run.state == "AWAITING_START"
    assert run.end_time == "2020-02-22T22:45:52.000000Z" and not run.builds_lineage


def test_a_batch_run_without_a_terminal_event_is_not_merged_yet() -> None:
    start, _ = seed_run("etl_menus")
    run = merged([start])
    assert run.status == "pending" and not run.builds_lineage


def test_a_streaming_job_is_running_with_lineage_from_start_and_running_events() -> None:
    run = merged(flink_streaming_run("5f6b2bb8-58f1-4f7e-a0a4-1b1c9f5a1e01"))
    assert run.status == "streaming" and run.state == "RUNNING" and run.builds_lineage
    assert (run.integration, run.processing_type) == ("FLINK", "STREAMING")
    assert names(run.outputs) == [("kafka://kafka-cluster-prod:9092", "io.openlineage.flink.kafka.output")]
    assert len(run.inputs) == 2 and run.end_time is None and run.event_count == 3
    assert run.last_event_time == at(120)


def test_a_streaming_job_that_fails_takes_the_terminal_state() -> None:
    run_id = "5f6b2bb8-58f1-4f7e-a0a4-1b1c9f5a1e02"
    events = flink_streaming_run(run_id)
    fail = template_event(TEMPLATES + "flink/flink1/expected_failed.json", run_id=run_id, event_time=at(300))
    fail["job"] = events[0]["job"] | {"facets": {}}
    run = merged([*events, fail])
    assert run.status == "merged" and run.state == "FAIL" and run.end_time == at(300)
    assert run.processing_type == "STREAMING"


# ================================================================================== column lineage
def test_column_lineage_keeps_transformation_type_subtype_and_masking_from_the_1_2_0_shape() -> None:
    run_id = "0d0c4c25-0bd5-4b2c-9c3b-6e8b6b1d1a02"
    start = template_event(TEMPLATES + "hive/cllSimpleQueryMaskingStart.json", run_id=run_id, event_time=at(0))
    complete = template_event(TEMPLATES + "hive/cllSimpleQueryMaskingComplete.json", run_id=run_id, event_time=at(3))
    run = merged([start, complete])
    by_field = {c["output"]["field"]: c["inputs"] for c in run.column_lineage}
    assert sorted(by_field) == ["a", "i", "ma", "mt", "t"]
    assert by_field["mt"] == [
        {
            "namespace": "hive://localhost:9083",
            "name": "test.t1",
            "field": "a",
            "transformations": [{"type": "DIRECT", "subtype": "TRANSFORMATION", "masking": True}],
        }
    ]
    assert by_field["a"][0]["transformations"] == [{"type": "DIRECT", "subtype": "AGGREGATION", "masking": False}]
    (dataset_level,) = run.dataset_lineage
    assert dataset_level["inputs"][0]["transformations"] == [
        {"type": "INDIRECT", "subtype": "GROUP_BY", "masking": False}
    ]
    edges = run.column_edges()
    assert len(edges) == 5 and {e.output_field for e in edges} == set(by_field)


def test_column_lineage_of_the_older_shape_is_read_too() -> None:
    # Given the Marquez seed (1-0-1: input fields without transformations)
    run = merged(seed_run("etl_orders_7_days"))
    by_field = {c["output"]["field"]: c["inputs"] for c in run.column_lineage}
    assert [(i["name"], i["field"], i["transformations"]) for i in by_field["menu_id"]] == [
        ("public.categories", "menu_id", []),
        ("public.menus", "id", []),
    ]
    # And the spec's older per-field transformationType / transformationDescription
    start, complete = copy.deepcopy(seed_run("etl_orders_7_days"))
    fields = start["outputs"][0]["facets"]["columnLineage"]["fields"]
    fields["order_id"] |= {"transformationType": "IDENTITY", "transformationDescription": "identical"}
    fields["placed_on"] |= {"transformationType": "MASKED"}
    by_field = {c["output"]["field"]: c["inputs"] for c in merged([start, complete]).column_lineage}
    assert by_field["order_id"][0]["transformations"] == [
        {"type": "DIRECT", "subtype": "IDENTITY", "masking": False, "description": "identical"}
    ]
    assert by_field["placed_on"][0]["transformations"] == [
        {"type": "DIRECT", "subtype": "TRANSFORMATION", "masking": True}
    ]


def test_each_column_edge_links_one_output_field_to_one_input_field() -> None:
    # Given the spec's own column lineage fragment on the output of a run
    start, complete = copy.deepcopy(seed_run("etl_menus"))
    start["outputs"][0]["facets"] |= corpus_json("openlineage/facets/spec-tests/ColumnLineageDatasetFacet/1.json")
    run = merged([start, complete])
    edges = run.column_edges()
    pairs = {(e.output_field, e.input.name, e.input_field) for e in edges}
    assert len(pairs) == len(edges) == sum(len(c["inputs"]) for c in run.column_lineage)
    assert all(e.output == run.outputs[0] and e.job == run.job_ref for e in edges)


# ================================================================================== parents
def test_parent_and_root_come_from_the_parent_facet() -> None:
    start, complete = copy.deepcopy(seed_run("etl_menus"))
    start["run"]["facets"] |= corpus_json("openlineage/facets/spec-tests/ParentRunFacet/2.json")
    run = merged([start, complete])
    assert run.parent is not None and run.root is not None
    assert run.parent.as_dict() == {
        "namespace": "airflow",
        "job": "my_dag.my_task",
        "runId": "f99310b4-3c3c-1a1a-2b2b-c1b95c24ff11",
    }
    assert run.root.as_dict() == {
        "namespace": "airflow",
        "job": "my_dag",
        "runId": "a0000000-3c3c-1a1a-2b2b-c1b95c24ff11",
    }
    assert run.job_content()["parentJob"] == {"namespace": "airflow", "name": "my_dag.my_task"}


def test_without_a_root_the_parent_is_the_root_and_a_parent_job_alone_has_no_run_id() -> None:
    start, complete = copy.deepcopy(seed_run("etl_menus"))
    start["run"]["facets"] |= corpus_json("openlineage/facets/spec-tests/ParentRunFacet/1.json")
    run = merged([start, complete])
    assert run.root == run.parent and run.parent is not None and run.parent.job == "dbt-job-name"
    # Spark's application-level job events name the parent job only
    job_start = template_event(
        TEMPLATES + "spark/container/applicationLevelStartJob.json",
        run_id="0d0c4c25-0bd5-4b2c-9c3b-6e8b6b1d1a03",
        event_time=at(0),
        name="generic_integration_test.job_1",
    )
    job_complete = copy.deepcopy(job_start) | {"eventType": "COMPLETE", "eventTime": at(1)}
    spark = merged([job_start, job_complete])
    assert spark.parent is not None and spark.parent.as_dict() == {
        "namespace": "generic-namespace",
        "job": "generic_integration_test",
        "runId": None,
    }


def test_a_parent_run_id_that_is_not_a_uuid_is_normalized_like_every_run_id() -> None:
    start, complete = copy.deepcopy(seed_run("etl_menus"))
    start["run"]["facets"]["parent"] = {
        "run": {"runId": "scheduled__2024-01-01"},
        "job": {"namespace": "a", "name": "b"},
    }
    run = merged([start, complete])
    assert run.parent is not None and run.parent.run_id == normalize_run_id("scheduled__2024-01-01")


def test_the_dbt_family_links_each_child_run_to_its_parent_run() -> None:
    family = dbt_family()
    runs = {}
    for run_id in dict.fromkeys(e["run"]["runId"] for e in family):
        run = merged(e for e in family if e["run"]["runId"] == run_id)
        runs[run.job] = run
    root = runs["dbt-run-jaffle_shop"]
    model = runs["model.jaffle_shop.orders"]
    assert root.state == "FAIL" and root.parent is None and root.job_type == "JOB"
    assert model.parent is not None and model.parent.run_id == root.run_id and model.state == "FAIL"
    assert runs["model.jaffle_shop.orders.sql.1"].parent == RunRef(
        "dbt-test-namespace", "model.jaffle_shop.orders", model.run_id
    )
    assert runs["model.jaffle_shop.orders.sql.1"].state == "COMPLETE"
    assert runs["model.jaffle_shop.orders.sql.2"].state == "FAIL"
    assert {r.integration for r in runs.values()} == {"DBT"}
    assert len(model.inputs) == 2 and len(model.outputs) == 1


def test_the_marquez_seed_runs_all_merge_with_their_facets() -> None:
    runs = [merged(events) for events in seed_runs().values()]
    assert len(runs) == 13 and {r.state for r in runs} == {"COMPLETE"}
    assert all(
        r.nominal_time == {"nominalStartTime": "2020-02-22T22:00:00.000Z", "nominalEndTime": "2020-02-22T22:00:00.000Z"}
        for r in runs
    )
    assert all(r.sql is not None and r.description for r in runs)
    assert sum(len(r.outputs) for r in runs) == 13
    assert sum(len(r.column_edges()) for r in runs) > 0


# ================================================================================== determinism and memory
def test_the_merged_content_depends_only_on_the_events_and_its_version_grows_with_them() -> None:
    start, complete = seed_run("etl_orders_7_days")
    one, other = merged([start, complete]), merged([complete, start])
    assert one.run_content() == other.run_content()
    assert content_hash(one.run_content()) == content_hash(other.run_content())
    assert merged([start]).merge_version < one.merge_version


def test_the_fold_refuses_events_that_are_not_in_event_time_order() -> None:
    start, complete = (stored(e) for e in seed_run("etl_menus"))
    with pytest.raises(UnorderedEvents):
        merge_run([complete, start])


def _streaming_events(count: int) -> Iterator[StoredEvent]:
    """A Flink run of ``count`` events made on the fly (START, then RUNNING checkpoints)."""
    start, running = flink_streaming_run("5f6b2bb8-58f1-4f7e-a0a4-1b1c9f5a1e03", checkpoints=1)
    yield StoredEvent(at(0), "0" * 32, "START", start)
    for i in range(1, count):
        body = copy.deepcopy(running)
        body["run"]["facets"]["checkpoints"]["completed"] = i
        yield StoredEvent(at(i), f"{i:032x}", "RUNNING", body)


def _peak_bytes(count: int) -> int:
    tracemalloc.start()
    try:
        run = merge_run(_streaming_events(count))
        assert run is not None and run.event_count == count
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_memory_of_a_merge_does_not_grow_with_the_number_of_events() -> None:
    small, large = _peak_bytes(500), _peak_bytes(5_000)
    assert large < small * 1.5, (small, large)


# ================================================================================== static lineage
def test_dataset_events_define_a_dataset_and_job_events_define_a_job_without_any_run() -> None:
    dataset_event = corpus_json("marquez/api-test-resources/open_lineage/event_dataset_event.json")
    definition = merge_dataset_events([stored(dataset_event)])
    assert definition is not None and definition.fields is not None
    assert [f["name"] for f in definition.fields] == [
        "col_a"
    ] and definition.defined_at == "2020-12-28T09:52:00.001000Z"
    job_event = corpus_json("marquez/api-test-resources/open_lineage/event_job_event.json")
    job = merge_job_events([stored(job_event)])
    assert job is not None and job.ref.name == "myjob"
    assert [(e.direction, e.source, e.dataset.name) for e in job.edges()] == [
        ("IN", "static", "instance.schema.input-1"),
        ("OUT", "static", "instance.schema.output-1"),
    ]
    assert job.content()["definedInputs"] == [
        {"namespace": "my-datasource-namespace", "name": "instance.schema.input-1"}
    ]
