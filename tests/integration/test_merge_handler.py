"""The merge function on moto: events stored by ingest, the Events table's real stream records filtered by the
template's FilterCriteria, delivered to the domain or to the Lambda handler as `sam local invoke` would.

``Pipeline`` (used by the other merge test modules too) stores events with the ingest service, reads the new
records of the table's stream, keeps those that the event source mapping's filter passes, and delivers them
as one stream batch.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from lineage_intake import keys
from lineage_intake.errors import StorageUnavailable
from lineage_intake.merge import merge_run
from lineage_intake.service.merge import MergeOutcome
from lineage_intake.store.lineage import LineageStore, WriteResult
from lineage_intake_tools.local.template import Stack

from tests.helpers.aws import TEST_STACK, load_handler
from tests.helpers.corpus import corpus_json, event_file
from tests.helpers.pipeline import Pipeline, lambda_image
from tests.helpers.runs import (
    TEMPLATES,
    at,
    dbt_family,
    flink_streaming_run,
    seed_run,
    seed_runs,
    stored,
    template_event,
)


def log_lines(app: ModuleType, caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The function's log records, rendered by its own Powertools JSON formatter."""
    formatter = app.logger.registered_formatter
    return [json.loads(formatter.format(record)) for record in caplog.records if record.name == "merge"]


def metric_blobs(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The EMF documents that Powertools Metrics printed."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]


def metric_names(blobs: list[dict[str, Any]]) -> list[str]:
    return [m["Name"] for blob in blobs for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]


def only(outcomes: list[MergeOutcome], status: str | None = None) -> MergeOutcome:
    (outcome,) = outcomes if status is None else [o for o in outcomes if o.status == status]
    return outcome


# ================================================================================== the function, as deployed
def test_the_template_wires_the_stream_with_partial_failures_bisection_bounded_retries_and_a_dlq(
    stack: Stack,
) -> None:
    source = stack.stream_source("MergeFunction")
    assert source["table_logical_id"] == "EventsTable"
    assert source["report_item_failures"] and source["bisect_on_error"]
    assert 0 < source["max_retries"] <= 10 and source["batch_size"] >= 1
    assert source["on_failure_queue"] == "MergeDeadLetterQueue"
    alarm = stack.resources["MergeDeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["MergeDeadLetterQueue", "QueueName"]}
    lineage = stack.resources["LineageTable"]["Properties"]
    assert {i["IndexName"] for i in lineage["GlobalSecondaryIndexes"]} == {"gsi1", "gsi2", "gsi3", "gsi4"}


def test_the_filter_passes_inserted_events_and_drops_removals(pipeline: Pipeline) -> None:
    # Given a run event, a dataset event and a job event stored, then one item expiring (TTL removes it)
    start, _ = seed_run("etl_menus")
    for event in (
        start,
        corpus_json("marquez/api-test-resources/open_lineage/event_dataset_event.json"),
        corpus_json("marquez/api-test-resources/open_lineage/event_job_event.json"),
    ):
        pipeline.store(event)
    item = pipeline.dynamodb.scan(TableName=pipeline.events_table, Limit=1)["Items"][0]
    pipeline.dynamodb.delete_item(TableName=pipeline.events_table, Key={"pk": item["pk"], "sk": item["sk"]})
    records = pipeline.new_records()
    # Then the filter passes the three INSERTs and not the REMOVE
    passed = pipeline.filtered(records)
    assert [r["eventName"] for r in records] == ["INSERT", "INSERT", "INSERT", "REMOVE"]
    assert sorted(r["dynamodb"]["NewImage"]["kind"]["S"] for r in passed) == ["DATASET", "JOB", "RUN"]


def test_the_stream_batch_in_events_merges_the_run_that_ingest_stored(
    stack: Stack, merge_app: ModuleType, monkeypatch: pytest.MonkeyPatch, lambda_context: Any, aws: boto3.Session
) -> None:
    # Given the START and COMPLETE requests of events/ handled by the ingest function
    ingest = load_handler(stack, "IngestFunction", monkeypatch)
    for name in ("ingest-start.json", "ingest-complete.json"):
        assert ingest.handler(event_file(name), lambda_context)["statusCode"] == 200
    batch = event_file("merge-stream-batch.json")
    # And the batch's records are those of the items that ingest stored
    stored_keys = {
        (i["pk"]["S"], i["sk"]["S"])
        for i in aws.client("dynamodb").scan(TableName=TEST_STACK.physical_name("EventsTable"))["Items"]
    }
    assert {
        (r["dynamodb"]["Keys"]["pk"]["S"], r["dynamodb"]["Keys"]["sk"]["S"]) for r in batch["Records"]
    } == stored_keys
    # When the merge function gets the batch
    answer = merge_app.handler(batch, lambda_context)
    # Then nothing failed and the run is merged with its lineage
    assert answer == {"batchItemFailures": []}
    run = LineageStore(aws.client("dynamodb"), TEST_STACK.physical_name("LineageTable")).get_run(
        "my-namespace", "my-job", "d46e465b-d358-4d32-83d4-df660ff614dd"
    )
    assert run is not None and run["state"] == "COMPLETE"
    assert run["inputs"] == [["my-namespace", "my-input"]]
    assert run["outputs"] == [["my-namespace", "my-output"]]
    assert run["eventCount"] == 2


def test_a_poisoned_record_stops_the_batch_and_the_records_after_it_are_reported_for_the_retry(
    merge_app: ModuleType,
    lambda_context: Any,
    aws: boto3.Session,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)
    # Given the table that the poison batch describes (each NewImage is a stored item; one body is corrupt)
    batch = event_file("merge-stream-poison.json")
    ddb = aws.client("dynamodb")
    for record in batch["Records"]:
        ddb.put_item(TableName=TEST_STACK.physical_name("EventsTable"), Item=lambda_image(record))
    numbers = [r["dynamodb"]["SequenceNumber"] for r in batch["Records"]]
    # When the merge function gets the batch (START, poisoned record, COMPLETE)
    answer = merge_app.handler(batch, lambda_context)
    # Then the poisoned record and the COMPLETE after it are reported: Lambda retries from the poisoned record
    assert answer == {"batchItemFailures": [{"itemIdentifier": n} for n in numbers[1:]]}
    # And the good run was merged by its START record, which read the run's stored events (COMPLETE included),
    # while the COMPLETE record after the poison was not handed to the merge (the retry will hand it)
    run = LineageStore(ddb, TEST_STACK.physical_name("LineageTable")).get_run(
        "my-namespace", "my-job", "d46e465b-d358-4d32-83d4-df660ff614dd"
    )
    assert run is not None and run["state"] == "COMPLETE"
    lines = log_lines(merge_app, caplog)
    merges = [line for line in lines if line["message"].startswith("merge ") and line.get("outcome")]
    assert [(m["outcome"], m.get("job"), m.get("triggerEventType")) for m in merges] == [
        ("merged", "my-job", "START"),
        ("failed", "etl_menus", "COMPLETE"),
    ]
    # And the failure is one structured log line with its reason, and a MergeErrors metric
    (failed,) = [line for line in lines if line.get("outcome") == "failed"]
    assert failed["reason"] == "corrupt_event" and failed["level"] == "ERROR"
    # And one line says what was deferred, why, and names the first deferred run; one metric counts them
    (deferred,) = [line for line in lines if line["message"] == "merge deferred"]
    assert deferred["deferred"] == 1 and deferred["reason"] == "after_failure"
    assert (deferred["job"], deferred["runId"]) == ("my-job", "d46e465b-d358-4d32-83d4-df660ff614dd")
    assert deferred["level"] == "WARNING"
    names = metric_names(metric_blobs(capsys))
    assert {"MergeErrors", "MergeRecordsDeferred", "RunsMerged"} <= set(names)


def test_a_batch_whose_every_record_is_malformed_fails_as_a_whole_for_lambda_to_bisect(
    merge_app: ModuleType, lambda_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    batch = copy.deepcopy(event_file("merge-stream-batch.json"))
    del batch["Records"][0]["dynamodb"]["NewImage"]["runId"]
    with pytest.raises(BatchProcessingError, match="All records failed"):
        merge_app.handler({"Records": batch["Records"][:1]}, lambda_context)
    (failed,) = [line for line in log_lines(merge_app, caplog) if line.get("outcome") == "failed"]
    assert failed["reason"] == "malformed_record" and "runId" in failed["detail"]


def test_real_stream_records_of_the_marquez_seed_merge_every_run_through_the_handler(
    pipeline: Pipeline, merge_app: ModuleType, lambda_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # Given the 26 events of the Marquez seed stored by ingest
    for events in seed_runs().values():
        for event in events:
            pipeline.store(event)
    records = pipeline.filtered(pipeline.new_records())
    assert len(records) == 26
    # When their stream records reach the function in one batch
    answer = merge_app.handler({"Records": records}, lambda_context)
    # Then every run is merged once: its START record and its COMPLETE record coalesce into one merge
    assert answer == {"batchItemFailures": []}
    merges = [line for line in log_lines(merge_app, caplog) if line.get("message") == "merge merged"]
    assert len(merges) == 13 and {m["state"] for m in merges} == {"COMPLETE"}
    assert all({"events", "recordsWritten"} <= set(m) for m in merges)
    # And a counter that is 0 is left out of the line (it costs log bytes and says nothing)
    counters = ("inputs", "outputs", "columnEdges", "recordsUnchanged", "recordsDeleted", "recordsSkippedNewer")
    assert all(m[name] > 0 for m in merges for name in counters if name in m)
    lineage = pipeline.lineage
    customers = lineage.dataset_lineage("food_delivery", "public.customers")
    assert {e["job"]["name"] for e in customers["upstream"]} == {"etl_customers"}
    assert {e["job"]["name"] for e in customers["downstream"]} == {
        "etl_delivery_7_days",
        "orders_popular_day_of_week",
        "email_discounts",
    }
    menu_id = lineage.column_lineage("food_delivery", "public.orders_7_days", "menu_id")
    assert sorted((c["input"]["name"], c["input"]["field"]) for c in menu_id) == [
        ("public.categories", "menu_id"),
        ("public.menus", "id"),
    ]


# ================================================================================== order, duplicates, late events
def test_a_complete_before_its_start_awaits_the_start_and_merges_when_it_lands(pipeline: Pipeline) -> None:
    start, complete = seed_run("etl_orders_7_days")
    run_id = start["run"]["runId"]
    # When the COMPLETE lands first
    outcome = only(pipeline.send(complete))
    # Then the run is AWAITING_START, visible to operators, and has no lineage yet
    assert outcome.status == "awaiting_start" and outcome.lag_seconds is None
    run = pipeline.lineage.get_run("food_delivery", "etl_orders_7_days", run_id)
    assert run is not None and run["state"] == "AWAITING_START"
    assert [r["runId"] for r in pipeline.lineage.list_awaiting_start()] == [run_id]
    assert pipeline.lineage.get_job("food_delivery", "etl_orders_7_days") is None
    # When the START lands
    outcome = only(pipeline.send(start))
    # Then the run is merged with the inputs the START carried, and no longer awaits
    assert outcome.status == "merged" and outcome.state == "COMPLETE" and outcome.lag_seconds is not None
    run = pipeline.lineage.get_run("food_delivery", "etl_orders_7_days", run_id)
    assert run is not None and run["state"] == "COMPLETE" and len(run["inputs"]) == 4
    assert pipeline.lineage.list_awaiting_start() == []
    job = pipeline.lineage.get_job("food_delivery", "etl_orders_7_days")
    (latest,) = pipeline.lineage.list_runs("food_delivery", "etl_orders_7_days", limit=1)
    assert job is not None and latest["runId"] == run_id and latest["state"] == "COMPLETE"


def test_duplicates_and_re_merges_write_nothing_new(pipeline: Pipeline) -> None:
    start, complete = seed_run("etl_orders_7_days")
    pipeline.send(start, complete)
    before = pipeline.snapshot()
    # When the same events are sent again (duplicates: no new item, no stream record) ...
    assert pipeline.send(start, complete, start) == []
    # ... and the run is merged again from its events
    again = pipeline.service.merge_run("food_delivery", "etl_orders_7_days", start["run"]["runId"])
    # Then no record is written and the table is unchanged
    assert again.status == "merged" and again.written == 0 and again.deleted == 0 and again.unchanged > 0
    assert pipeline.snapshot() == before


def test_a_late_running_event_with_a_new_output_re_merges_the_run(pipeline: Pipeline) -> None:
    start, complete = seed_run("etl_menus")
    pipeline.send(start, complete)
    late = copy.deepcopy(start) | {"eventType": "RUNNING", "eventTime": "2020-02-22T22:44:00.000Z"}
    late["outputs"] = [{"namespace": "food_delivery", "name": "public.menus_audit"}]
    outcome = only(pipeline.send(late))
    assert outcome.status == "merged" and outcome.events == 3 and outcome.outputs == 2
    edges = pipeline.lineage.job_edges("food_delivery", "etl_menus")
    assert sorted(e["dataset"]["name"] for e in edges["outputs"]) == ["public.menus", "public.menus_audit"]
    audit = pipeline.lineage.dataset_lineage("food_delivery", "public.menus_audit")
    assert audit["dataset"]["partial"] is True and [e["job"]["name"] for e in audit["upstream"]] == ["etl_menus"]


def test_column_lineage_replaced_by_a_later_event_leaves_no_stale_column_edge(pipeline: Pipeline) -> None:
    # Given a merged run whose START said menu_id comes from menus.id and categories.menu_id
    start, complete = seed_run("etl_orders_7_days")
    pipeline.send(start, complete)
    assert len(pipeline.lineage.column_lineage("food_delivery", "public.orders_7_days", "menu_id")) == 2
    # When a RUNNING event (after START, before COMPLETE) lands late with a new columnLineage facet
    running = copy.deepcopy(start) | {"eventType": "RUNNING", "eventTime": "2020-02-22T22:43:00.000Z"}
    facet = running["outputs"][0]["facets"]["columnLineage"]
    facet["fields"] = {
        "menu_id": {"inputFields": [{"namespace": "food_delivery", "name": "public.menus", "field": "id"}]}
    }
    pipeline.send(running)
    # Then the later facet replaced the earlier one: the column edges follow it, old ones are deleted
    menu_id = pipeline.lineage.column_lineage("food_delivery", "public.orders_7_days", "menu_id")
    assert [(c["input"]["name"], c["input"]["field"]) for c in menu_id] == [("public.menus", "id")]
    assert pipeline.lineage.column_lineage("food_delivery", "public.orders_7_days", "order_id") == []
    run = pipeline.lineage.get_run("food_delivery", "etl_orders_7_days", start["run"]["runId"])
    assert run is not None and run["eventCount"] == 3


def test_a_streaming_job_has_lineage_while_it_runs_and_its_state_when_it_fails(pipeline: Pipeline) -> None:
    run_id = "6b1f4c7e-8d02-4a55-9f0e-3c2d1b0a9e01"
    events = flink_streaming_run(run_id, checkpoints=2)
    outcomes = pipeline.send(*events)
    assert [o.status for o in outcomes] == ["streaming"]  # three records of one run: one merge
    run = pipeline.lineage.get_run("flink_job_namespace", "flink_examples_stateful", run_id)
    assert run is not None and run["state"] == "RUNNING" and run["integration"] == "FLINK" and run["eventCount"] == 3
    output = pipeline.lineage.dataset_lineage("kafka://kafka-cluster-prod:9092", "io.openlineage.flink.kafka.output")
    assert [e["job"]["name"] for e in output["upstream"]] == ["flink_examples_stateful"]
    fail = template_event(TEMPLATES + "flink/flink1/expected_failed.json", run_id=run_id, event_time=at(600))
    fail["job"] = {"namespace": "flink_job_namespace", "name": "flink_examples_stateful"}
    outcome = only(pipeline.send(fail))
    assert outcome.status == "merged" and outcome.state == "FAIL"
    run = pipeline.lineage.get_run("flink_job_namespace", "flink_examples_stateful", run_id)
    assert run is not None and run["errorMessage"]["message"] == "Application Status: FAILED"


# ================================================================================== parents, datasets, static lineage
def test_child_runs_create_a_placeholder_parent_that_the_parent_run_replaces(pipeline: Pipeline) -> None:
    family = dbt_family()
    parent_events = [e for e in family if e["job"]["name"] == "dbt-run-jaffle_shop"]
    children = [e for e in family if e["job"]["name"] != "dbt-run-jaffle_shop"]
    parent_id = parent_events[0]["run"]["runId"]
    # When the child runs land before their parent run
    pipeline.send(*children)
    # Then the parent run and job exist as placeholders, and list their child
    placeholder = pipeline.lineage.get_run("dbt-test-namespace", "dbt-run-jaffle_shop", parent_id)
    assert placeholder is not None and placeholder["placeholder"] is True and placeholder["state"] == "PLACEHOLDER"
    job = pipeline.lineage.get_job("dbt-test-namespace", "dbt-run-jaffle_shop")
    assert job is not None and job["placeholder"] is True
    (child,) = pipeline.lineage.run_children("dbt-test-namespace", "dbt-run-jaffle_shop", parent_id)
    assert child["job"] == "model.jaffle_shop.orders" and child["state"] == "FAIL"
    model = pipeline.lineage.get_run("dbt-test-namespace", "model.jaffle_shop.orders", child["runId"])
    assert model is not None and model["parent"] == {
        "namespace": "dbt-test-namespace",
        "job": "dbt-run-jaffle_shop",
        "runId": parent_id,
    }
    assert len(pipeline.lineage.run_children("dbt-test-namespace", "model.jaffle_shop.orders", child["runId"])) == 2
    # When the parent run lands
    pipeline.send(*parent_events)
    # Then it replaces the placeholders
    parent = pipeline.lineage.get_run("dbt-test-namespace", "dbt-run-jaffle_shop", parent_id)
    assert parent is not None and parent["state"] == "FAIL" and "placeholder" not in parent
    job = pipeline.lineage.get_job("dbt-test-namespace", "dbt-run-jaffle_shop")
    assert job is not None and "placeholder" not in job and job["integration"] == "DBT"


def test_the_dbt_snapshot_child_links_to_a_parent_job_that_never_reports(pipeline: Pipeline) -> None:
    family = dbt_family(TEMPLATES + "dbt/snapshot/result.json")
    # sent by a token of both connections: the parent's namespace is open to it (docs/auth.md)
    pipeline.send(*family, also=("dbt",))
    run = pipeline.lineage.get_run("job-namespace", family[0]["job"]["name"], family[0]["run"]["runId"])
    assert (
        run is not None and run["state"] == "COMPLETE" and run["integration"] == "DBT" and run["jobType"] == "SNAPSHOT"
    )
    parent = run["parent"]
    assert (parent["namespace"], parent["job"]) == ("dbt", "dbt-job-name")
    placeholder = pipeline.lineage.get_run("dbt", "dbt-job-name", parent["runId"])
    assert placeholder is not None and placeholder["placeholder"] is True


def test_datasets_seen_in_lineage_are_partial_until_defined_or_registered(pipeline: Pipeline) -> None:
    pipeline.send(*seed_run("etl_menus"))
    menus = pipeline.lineage.get_dataset("food_delivery", "public.menus")
    assert menus is not None and menus["partial"] is True
    assert [f["name"] for f in menus["fields"]] == ["id", "name", "restaurant_id", "description"]
    # When a DatasetEvent defines it
    definition = corpus_json("marquez/api-test-resources/open_lineage/event_dataset_event.json")
    definition["dataset"] |= {"namespace": "food_delivery", "name": "public.menus"}
    outcome = only(pipeline.send(definition))
    assert outcome.status == "static" and outcome.written == 1
    menus = pipeline.lineage.get_dataset("food_delivery", "public.menus")
    assert menus is not None and menus["partial"] is False and [f["name"] for f in menus["definedFields"]] == ["col_a"]
    # And a later run does not make it partial again
    pipeline.send(*seed_run("etl_menu_items"))
    pipeline.send(*copy.deepcopy(seed_run("etl_menus")))
    assert pipeline.lineage.get_dataset("food_delivery", "public.menus")["partial"] is False  # type: ignore[index]
    # When an operator registers another dataset seen only in lineage
    pipeline.lineage.register_dataset("food_delivery", "public.menu_items", "2026-01-01T00:00:00.000000Z", by="ops")
    items = pipeline.lineage.get_dataset("food_delivery", "public.menu_items")
    assert items is not None and items["partial"] is False and items["registered"] is True


def test_job_events_give_static_lineage_without_any_run(pipeline: Pipeline) -> None:
    job_event = corpus_json("marquez/api-test-resources/open_lineage/event_job_event.json")
    outcome = only(pipeline.send(job_event))
    assert outcome.status == "static" and outcome.kind == "JOB" and (outcome.inputs, outcome.outputs) == (1, 1)
    edges = pipeline.lineage.job_edges("my-scheduler-namespace", "myjob")
    assert [(e["source"], e["dataset"]["name"]) for e in edges["inputs"]] == [("static", "instance.schema.input-1")]
    output = pipeline.lineage.dataset_lineage("my-datasource-namespace", "instance.schema.output-1")
    assert output["dataset"]["partial"] is True and [e["job"]["name"] for e in output["upstream"]] == ["myjob"]


def test_an_event_offloaded_to_s3_is_read_back_for_the_merge(pipeline: Pipeline) -> None:
    start, complete = copy.deepcopy(seed_run("etl_menus"))
    # an incompressible facet: the stored body is over the inline limit, so ingest puts it in S3
    blob = "".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(25_000))
    start["run"]["facets"]["bulky"] = {"blob": blob}
    pipeline.send(start, complete)
    items = pipeline.dynamodb.scan(TableName=pipeline.events_table)["Items"]
    assert any("bodyRef" in i for i in items)
    run = pipeline.lineage.get_run("food_delivery", "etl_menus", start["run"]["runId"])
    assert run is not None and run["state"] == "COMPLETE" and run["eventCount"] == 2


# ================================================================================== versions and concurrency
def test_an_older_merge_never_overwrites_a_newer_one(pipeline: Pipeline) -> None:
    start, complete = seed_run("etl_orders_7_days")
    late = copy.deepcopy(start) | {"eventType": "RUNNING", "eventTime": "2020-02-22T22:43:00.000Z"}
    late["outputs"] = [{"namespace": "food_delivery", "name": "public.orders_7_days_audit"}]
    older = merge_run(iter(sorted((stored(e) for e in (start, complete)), key=lambda e: e.event_time)))
    pipeline.send(start, complete, late)
    newer_snapshot = pipeline.snapshot()
    # When a slow merge that read only two of the three events writes after the newer one
    assert older is not None
    result = pipeline.lineage.write_run(older, "2030-01-01T00:00:00.000000Z")
    # Then it is superseded and writes nothing
    assert result.superseded and result.written == 0
    assert pipeline.snapshot() == newer_snapshot


def test_the_latest_run_of_a_job_owns_its_edges_whatever_order_the_runs_merge_in(pipeline: Pipeline) -> None:
    first_start, first_complete = seed_run("etl_menus")
    second = [copy.deepcopy(e) for e in (first_start, first_complete)]
    for event, when in zip(second, ("2020-02-23T22:42:42.000Z", "2020-02-23T22:45:52.000Z"), strict=True):
        event["run"]["runId"] = "11111111-2222-4333-8444-555555555555"
        event["eventTime"] = when
    second[0]["outputs"][0]["name"] = "public.menus_v2"
    # When the newer run merges before the older one
    pipeline.send(*second)
    result = pipeline.send(first_start, first_complete)
    # Then the job keeps the newer run and its output; the older run is merged on its own
    assert only(result).latest_run is False
    job = pipeline.lineage.get_job("food_delivery", "etl_menus")
    assert job is not None and job["lineageVersion"].split("#")[1] == "11111111-2222-4333-8444-555555555555"
    edges = pipeline.lineage.job_edges("food_delivery", "etl_menus")
    assert [e["dataset"]["name"] for e in edges["outputs"] if e["current"]] == ["public.menus_v2"]
    # and the older run's output is history: first and last seen in that run
    (old,) = [e for e in edges["outputs"] if not e["current"]]
    assert old["dataset"]["name"] == "public.menus" and old["firstRun"] == old["lastRun"] == first_start["run"]["runId"]
    runs = pipeline.lineage.list_runs("food_delivery", "etl_menus")
    assert [r["runId"] for r in runs] == ["11111111-2222-4333-8444-555555555555", first_start["run"]["runId"]]


def test_throttled_storage_fails_the_record_as_retriable(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    start, complete = seed_run("etl_menus")
    for event in (start, complete):
        pipeline.store(event)
    records = pipeline.filtered(pipeline.new_records())

    def throttled(**_kwargs: Any) -> WriteResult:
        error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}
        raise ClientError(error, "TransactWriteItems")  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline.dynamodb, "transact_write_items", throttled)
    with pytest.raises(StorageUnavailable):
        pipeline.deliver(records)
    failed = pipeline.outcomes[-1]
    assert failed.status == "failed" and failed.retriable and failed.reason == "storage_unavailable"


def test_one_log_line_per_merge_carries_the_outcome_and_its_counts(
    pipeline: Pipeline,
    merge_app: ModuleType,
    lambda_context: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)
    start, complete = seed_run("etl_orders_7_days")
    pipeline.store(complete)
    merge_app.handler({"Records": pipeline.filtered(pipeline.new_records())}, lambda_context)
    awaiting = metric_names(metric_blobs(capsys))
    pipeline.store(start)
    merge_app.handler({"Records": pipeline.filtered(pipeline.new_records())}, lambda_context)
    merged = metric_names(metric_blobs(capsys))
    logs = [line for line in log_lines(merge_app, caplog) if str(line.get("message", "")).startswith("merge ")]
    assert [(line["outcome"], line["level"]) for line in logs] == [("awaiting_start", "WARNING"), ("merged", "INFO")]
    assert logs[1]["inputs"] == 4 and logs[1]["outputs"] == 1 and logs[1]["columnEdges"] == 10
    assert logs[1]["previousState"] == "AWAITING_START" and logs[1]["mergeLagSeconds"] > 0
    assert "RunsAwaitingStart" in awaiting and "RunsMerged" not in awaiting
    assert {"RunsMerged", "MergeLag"} <= set(merged) and "RunsAwaitingStart" not in merged


def test_keys_of_the_lineage_records_stay_small_for_five_kilobyte_names(pipeline: Pipeline) -> None:
    start, complete = copy.deepcopy(seed_run("etl_orders_7_days"))
    long_name = "n#|/ü" * 1024
    for event in (start, complete):
        event["job"]["name"] = long_name
    start["outputs"][0]["name"] = long_name
    pipeline.send(start, complete)
    for pk, sk in pipeline.snapshot():
        assert len(pk.encode()) <= 2048 and len(sk.encode()) <= 1024
    assert pipeline.lineage.get_run("food_delivery", long_name, start["run"]["runId"]) is not None
    assert keys.job_key("food_delivery", long_name) in {pk for pk, _ in pipeline.snapshot()}
