"""How long a failing or slow batch holds its lane (issue 13), end to end on moto: the Events table's real stream,
the template's stream mapping played by the local poller (one lane), the merge handler as deployed, the DLQ and
``lineage-intake dlq``. Time is a fake clock per invocation (``tests.helpers.merge_lane``): no sleeps."""

from __future__ import annotations

import json
import logging
from types import ModuleType
from typing import Any

import boto3
import pytest
from lineage_intake.store.dynamo import from_dynamodb
from lineage_intake_tools.local.template import Stack

from tests.helpers.corpus import event_file
from tests.helpers.eventlog import CliRunner, stack_env
from tests.helpers.merge_lane import MergeLane, dlq_bodies
from tests.helpers.pipeline import Pipeline, lambda_image
from tests.helpers.runs import seed_run

GOOD_RUN = ("my-namespace", "my-job", "d46e465b-d358-4d32-83d4-df660ff614dd")
#: Seed runs that are not the poisoned one (etl_menus), each START then COMPLETE.
HEALTHY_JOBS = ("etl_orders_7_days", "etl_customers", "etl_drivers", "etl_restaurants")


@pytest.fixture
def dlq_url(stack: Stack, aws: boto3.Session) -> str:
    return str(aws.client("sqs").get_queue_url(QueueName=stack.physical_name("MergeDeadLetterQueue"))["QueueUrl"])


@pytest.fixture
def lane(stack: Stack, aws: boto3.Session, merge_app: ModuleType, dlq_url: str) -> MergeLane:
    return MergeLane(stack, aws, merge_app, dlq_url)


def merged_state(pipeline: Pipeline, namespace: str, job: str, run_id: str) -> str | None:
    run = pipeline.lineage.get_run(namespace, job, run_id)
    return None if run is None else str(run["state"])


def deferral_lines(merge_app: ModuleType, caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    formatter = merge_app.logger.registered_formatter
    lines = [json.loads(formatter.format(r)) for r in caplog.records if r.name == "merge"]
    return [line for line in lines if line["message"] == "merge deferred"]


def test_a_poison_record_reaches_the_dlq_named_by_its_run_while_the_runs_after_it_merge_once(
    stack: Stack,
    aws: boto3.Session,
    pipeline: Pipeline,
    lane: MergeLane,
    merge_app: ModuleType,
    dlq_url: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    # Given the poison batch's items stored (START, a COMPLETE whose body is corrupt, COMPLETE), then 4 healthy
    # runs, all in one lane of the stream
    ddb = aws.client("dynamodb")
    for record in event_file("merge-stream-poison.json")["Records"]:
        ddb.put_item(TableName=stack.physical_name("EventsTable"), Item=lambda_image(record))
    poison = from_dynamodb(lambda_image(event_file("merge-stream-poison.json")["Records"][1]))
    healthy = [event for job in HEALTHY_JOBS for event in seed_run(job)]
    for event in healthy:
        pipeline.store(event)
    # When the poller drains the lane with the template's retries
    lane.drain()
    # Then the first invocation stopped at the poison record: it handled the START before it and the poison only
    first, second = lane.invocations[:2]
    assert first.handled == first.records[:2] and first.records[1] == poison["sk"]
    # and reported the poison record and every record after it, so that Lambda retries from the poison record
    assert [f["itemIdentifier"] for f in first.answer["batchItemFailures"]] == first.numbers[1:]
    # And the retry, starting at the poison record, failed fast: one record handled, a function error (bisected)
    assert second.records[0] == poison["sk"] and second.handled == [poison["sk"]]
    assert second.error is not None and "All records failed" in second.error
    # And every other record was handed to the merge exactly once: nothing merged twice, nothing lost
    handled = lane.handled()
    others = {sk: n for sk, n in handled.items() if sk != poison["sk"]}
    assert len(others) == 2 + len(healthy) and set(others.values()) == {1}
    # (the poison record: in the first batch of 11, in the retry of the 10 records from it and in the bisected
    # halves that start with it (5, 3, 2), then alone once and MaximumRetryAttempts times more)
    assert handled[poison["sk"]] == 1 + 4 + 1 + lane.config.max_retries
    assert merged_state(pipeline, *GOOD_RUN) == "COMPLETE"
    for event in healthy:
        assert merged_state(pipeline, event["job"]["namespace"], event["job"]["name"], event["run"]["runId"]) == (
            "COMPLETE"
        )
    # And the poison record alone is in the DLQ after its retries
    (message,) = dlq_bodies(aws, dlq_url)
    assert message["DDBStreamBatchInfo"]["batchSize"] == 1
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    # And `lineage-intake dlq list` names its run
    cli = CliRunner(capsys, stack_env(stack) | {"LINEAGE_MERGE_DLQ_URL": dlq_url})
    (letter,) = cli.json("dlq", "list")
    assert letter["targets"] == [f"run {poison['namespace']}/{poison['job']} {poison['runId']}"]
    # And each invocation that deferred records said so in one line, never one per record
    lines = deferral_lines(merge_app, caplog)
    assert len(lines) == sum(1 for i in lane.invocations if len(i.handled) < len(i.records))
    assert {line["reason"] for line in lines} == {"after_failure"}


def test_a_lane_of_slow_runs_defers_before_the_timeout_and_merges_every_run_once_without_the_dlq(
    aws: boto3.Session,
    pipeline: Pipeline,
    lane: MergeLane,
    merge_app: ModuleType,
    dlq_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    # Given 8 runs (16 records) in one lane, each record's merge costing 40 s of a 120 s invocation (60 s reserve)
    jobs = (*HEALTHY_JOBS, "etl_categories", "etl_menu_items", "etl_orders", "etl_order_status")
    runs = [seed_run(job) for job in jobs]
    for start, complete in runs:
        pipeline.store(start)
        pipeline.store(complete)
    lane.spend_ms = 40_000
    # When the poller drains the lane with the template's MaximumRetryAttempts (5)
    lane.drain()
    # Then every invocation returned before its timeout having merged two records (80 s), and deferred the rest
    assert [len(i.handled) for i in lane.invocations] == [2] * 8
    assert all(i.error is None for i in lane.invocations)
    # And 8 invocations (7 retries after a checkpoint, more than 5) merged every record once: nothing to the DLQ
    assert set(lane.handled().values()) == {1} and len(lane.handled()) == 16
    for start, _ in runs:
        assert merged_state(pipeline, start["job"]["namespace"], start["job"]["name"], start["run"]["runId"]) == (
            "COMPLETE"
        )
    assert dlq_bodies(aws, dlq_url) == []
    # And each deferral was one line with the reason `time`, counting what was left
    lines = deferral_lines(merge_app, caplog)
    assert [(line["deferred"], line["reason"]) for line in lines] == [(16 - 2 * n, "time") for n in range(1, 8)]
