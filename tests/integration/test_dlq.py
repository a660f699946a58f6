"""``lineage-intake dlq list|redrive`` on moto: a run whose merge failed is named, re-merged and its message removed."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from lineage_intake_tools.local.template import Stack

from tests.helpers.eventlog import CliRunner, stack_env, stream_failure_message
from tests.helpers.pipeline import Pipeline
from tests.helpers.runs import seed_run


@pytest.fixture
def dlq_url(stack: Stack, aws: boto3.Session) -> str:
    return str(aws.client("sqs").get_queue_url(QueueName=stack.physical_name("MergeDeadLetterQueue"))["QueueUrl"])


@pytest.fixture
def run_cli(stack: Stack, dlq_url: str, capsys: pytest.CaptureFixture[str]) -> CliRunner:
    return CliRunner(capsys, stack_env(stack) | {"LINEAGE_MERGE_DLQ_URL": dlq_url})


def fail_once_into_the_dlq(pipeline: Pipeline, aws: boto3.Session, dlq_url: str, monkeypatch: Any) -> None:
    """Deliver the new stream records to a merge whose writes fail, then dead-letter the batch as Lambda does."""
    records = pipeline.filtered(pipeline.new_records())

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the Lineage table is unreachable")

    with monkeypatch.context() as patch:
        patch.setattr(pipeline.lineage, "write_run", broken)
        with pytest.raises(RuntimeError):
            pipeline.deliver(records)
    shard = pipeline._streams.describe_stream(StreamArn=pipeline.stream_arn)["StreamDescription"]["Shards"][0]
    numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
    message = stream_failure_message(pipeline.stream_arn, shard["ShardId"], numbers[0], numbers[-1], len(numbers))
    aws.client("sqs").send_message(QueueUrl=dlq_url, MessageBody=json.dumps(message))


def test_dlq_list_names_the_run_of_a_failed_batch(pipeline, aws, dlq_url, run_cli, monkeypatch) -> None:
    # Given a run whose merge failed and whose batch went to the DLQ
    start, complete = seed_run("etl_orders_7_days")
    pipeline.store(start)
    pipeline.store(complete)
    fail_once_into_the_dlq(pipeline, aws, dlq_url, monkeypatch)
    # When the operator lists the DLQ
    (letter,) = run_cli.json("dlq", "list")
    # Then the message names the run, read back from the stream, and stays in the queue, visible at once
    run_id = start["run"]["runId"]
    assert letter["targets"] == [f"run {start['job']['namespace']}/etl_orders_7_days {run_id}"]
    assert letter["condition"] == "RetryAttemptsExhausted" and letter["batchSize"] == 2
    assert letter["deleted"] is False
    assert [m["messageId"] for m in run_cli.json("dlq", "list")] == [letter["messageId"]]


def test_dlq_redrive_re_merges_a_run_whose_merge_failed_once_and_removes_its_message(
    pipeline, aws, dlq_url, run_cli, monkeypatch
) -> None:
    # Given a run whose merge failed once, so that nothing was merged and its batch is in the DLQ
    start, complete = seed_run("etl_orders_7_days")
    pipeline.store(start)
    pipeline.store(complete)
    fail_once_into_the_dlq(pipeline, aws, dlq_url, monkeypatch)
    namespace, run_id = start["job"]["namespace"], start["run"]["runId"]
    assert pipeline.lineage.get_run(namespace, "etl_orders_7_days", run_id) is None
    # When the operator redrives the DLQ
    answer = run_cli.json("dlq", "redrive")
    # Then the run is merged, the message is deleted, and the queue is empty
    assert answer["deleted"] == 1 and answer["kept"] == 0
    assert answer["messages"][0]["results"] == [
        {"target": f"run {namespace}/etl_orders_7_days {run_id}", "status": "merged"}
    ]
    run = pipeline.lineage.get_run(namespace, "etl_orders_7_days", run_id)
    assert run is not None and run["state"] == "COMPLETE"
    assert run_cli.json("dlq", "list") == []


def test_a_message_whose_records_cannot_be_read_back_is_kept_with_the_reason(aws, dlq_url, run_cli) -> None:
    # Given a DLQ message that is not a stream invocation record
    aws.client("sqs").send_message(QueueUrl=dlq_url, MessageBody=json.dumps({"hello": "world"}))
    # When the operator redrives
    answer = run_cli.json("dlq", "redrive")
    # Then the message stays, and the reason is given
    assert answer["deleted"] == 0 and answer["kept"] == 1
    assert "DDBStreamBatchInfo" in answer["messages"][0]["unreadable"]
