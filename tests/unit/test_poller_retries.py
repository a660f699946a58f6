"""The local stream poller's retries after a partial failure (issue 13): a retry counts against
MaximumRetryAttempts only when the invocation checkpointed nothing, so a lane that defers records to return before
its timeout always finishes, while a record that keeps failing still reaches the DLQ. Pure: in-memory stream."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamRecordModel
from lineage_intake.stream_batch import GuardedBatchProcessor

from tests.helpers.aws import FakeLambdaContext
from tests.helpers.fake_stream import FakeAws, drain, make_poller


def sequence(record: dict[str, Any]) -> int:
    return int(record["dynamodb"]["SequenceNumber"])


def report(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in records]}


class Deferring:
    """Merges at most ``per_invocation`` records, then reports the rest, as the merge does when time runs low."""

    def __init__(self, per_invocation: int) -> None:
        self.per_invocation = per_invocation
        self.merged: list[int] = []
        self.invocations = 0

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        self.invocations += 1
        records = event["Records"]
        self.merged += [sequence(r) for r in records[: self.per_invocation]]
        return report(records[self.per_invocation :])


def test_a_lane_that_keeps_deferring_while_it_progresses_merges_every_record_and_sends_none_to_the_dlq() -> None:
    # Given 20 records of one run in one batch, a function that has time for 3 per invocation, 5 retries allowed
    aws = FakeAws(["RUN#slow"] * 20)
    function = Deferring(per_invocation=3)
    poller = make_poller(aws, function, factor=1, max_concurrency=1, max_retries=5)
    # When the poller drains the shard
    drain(poller)
    # Then every record was merged once, in order, in 7 invocations (6 partial failures: more than 5 retries)
    assert function.merged == list(range(1, 21))
    assert function.invocations == 7 and poller.stats.partial_failures == 6
    # And nothing went to the DLQ, since each retry started after a checkpoint
    assert aws.sent == [] and poller.stats.sent_to_dlq == 0


def test_a_partial_failure_that_checkpoints_nothing_counts_as_a_retry_and_ends_in_the_dlq() -> None:
    # Given a function that always reports the first record of its batch (it makes no progress)
    aws = FakeAws(["RUN#stuck"] * 3)
    calls = Counter[int]()

    def stuck(event: dict[str, Any]) -> dict[str, Any]:
        calls[len(event["Records"])] += 1
        return report(event["Records"])

    poller = make_poller(aws, stuck, factor=1, max_concurrency=1, max_retries=2)
    # When the poller drains the shard
    drain(poller)
    # Then the batch was tried once and retried twice, then its three records were sent to the DLQ in one message
    assert calls == Counter({3: 3})
    (message,) = [json.loads(body) for body in aws.sent]
    assert message["DDBStreamBatchInfo"]["batchSize"] == 3
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"


def test_a_record_that_fails_after_progress_gets_its_full_retries_from_where_the_batch_stopped() -> None:
    # Given a batch of 3 whose second record is always reported
    aws = FakeAws(["RUN#a"] * 3)
    batches: list[list[int]] = []

    def second_fails(event: dict[str, Any]) -> dict[str, Any]:
        batches.append([sequence(r) for r in event["Records"]])
        return report([r for r in event["Records"] if sequence(r) >= 2])

    poller = make_poller(aws, second_fails, factor=1, max_concurrency=1, max_retries=2)
    # When the poller drains the shard
    drain(poller)
    # Then the first invocation checkpointed record 1 (not counted), and the retries from record 2 were counted:
    # tried once, retried twice, then records 2 and 3 went to the DLQ
    assert batches == [[1, 2, 3], [2, 3], [2, 3], [2, 3]]
    (message,) = [json.loads(body) for body in aws.sent]
    assert message["DDBStreamBatchInfo"]["batchSize"] == 2


def test_with_the_guarded_processor_a_poison_record_alone_reaches_the_dlq_and_the_records_after_it_merge_once() -> None:
    # Given a batch of 10 in one lane: a healthy record, a poison record, then 8 healthy records
    keys = ["RUN#h0", "RUN#poison", *[f"RUN#h{n}" for n in range(1, 9)]]
    aws = FakeAws(keys)
    merged = Counter[str]()
    tried = Counter[str]()

    def merge(record: DynamoDBStreamRecordModel) -> str:
        image = record.dynamodb.NewImage if isinstance(record.dynamodb.NewImage, dict) else {}
        key = str(image["pk"])
        tried[key] += 1
        if key == "RUN#poison":
            raise RuntimeError("corrupt event")
        merged[key] += 1
        return "merged"

    def function(event: dict[str, Any]) -> Any:
        processor = GuardedBatchProcessor(reserve_ms=45_000, on_deferred=lambda _d: None)
        return process_partial_response(
            event=event, record_handler=merge, processor=processor, context=FakeLambdaContext()
        )

    poller = make_poller(aws, function, factor=1, max_concurrency=1, max_retries=5)
    # When the poller drains the shard
    drain(poller)
    # Then every healthy record merged exactly once (none merged again by a retry)
    assert merged == Counter(k for k in keys if k != "RUN#poison")
    # And the poison record alone went to the DLQ after its retries (bisection did not count)
    (message,) = [json.loads(body) for body in aws.sent]
    assert message["DDBStreamBatchInfo"]["batchSize"] == 1
    assert message["DDBStreamBatchInfo"]["startSequenceNumber"] == f"{2:021d}"
    # It was tried once in the first batch, once per bisection level (9 -> 5 -> 3 -> 2 -> 1), then 5 retries
    assert tried["RUN#poison"] == 1 + 4 + 1 + 5
