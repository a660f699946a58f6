"""How long one stream invocation holds its lane (issue 13): ``GuardedBatchProcessor`` stops at the first failure
and before the timeout, and ``MergeSettings`` checks its reserve. Pure: in-memory records, a fake clock."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamRecordModel
from lineage_intake.config import ConfigurationError, MergeSettings
from lineage_intake.stream_batch import Deferral, GuardedBatchProcessor
from lineage_intake_tools.local.template import load_template

from tests.helpers.aws import FakeLambdaContext
from tests.helpers.merge_lane import sequence_numbers, stream_record

RESERVE_MS = 45_000


class Merge:
    """A record handler that records what it was given, fails the ``poison`` runs and spends ``cost_ms`` of the
    invocation's fake clock per record."""

    def __init__(self, context: FakeLambdaContext, cost_ms: int = 0, poison: frozenset[str] = frozenset()) -> None:
        self.context = context
        self.cost_ms = cost_ms
        self.poison = poison
        self.handled: list[str] = []

    def __call__(self, record: DynamoDBStreamRecordModel) -> str:
        image = record.dynamodb.NewImage if isinstance(record.dynamodb.NewImage, dict) else {}
        run_id = str(image["runId"])
        self.handled.append(run_id)
        self.context.spend(self.cost_ms)
        if run_id in self.poison:
            raise RuntimeError(f"cannot merge {run_id}")
        return "merged"


def invoke(
    records: list[dict[str, Any]], merge: Merge, deferrals: list[Deferral], reserve_ms: int = RESERVE_MS
) -> dict[str, Any]:
    processor = GuardedBatchProcessor(reserve_ms=reserve_ms, on_deferred=deferrals.append)
    return dict(
        process_partial_response(
            event={"Records": records}, record_handler=merge, processor=processor, context=merge.context
        )
    )


def reported(answer: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]


def test_a_batch_that_fits_in_time_merges_every_record_and_defers_nothing() -> None:
    # Given 5 records that cost 10 s each in a fresh 120 s invocation
    records = [stream_record(n) for n in range(1, 6)]
    merge, deferrals = Merge(FakeLambdaContext(), cost_ms=10_000), []
    # When the batch is processed
    answer = invoke(records, merge, deferrals)
    # Then every record was merged, none reported, and no deferral logged
    assert merge.handled == [f"run-{n}" for n in range(1, 6)]
    assert answer == {"batchItemFailures": []}
    assert deferrals == []


def test_after_a_failure_the_later_records_are_reported_without_being_merged() -> None:
    # Given a batch whose second record cannot be merged, followed by three healthy records
    records = [stream_record(n) for n in range(1, 6)]
    merge, deferrals = Merge(FakeLambdaContext(), poison=frozenset({"run-2"})), []
    # When the batch is processed
    answer = invoke(records, merge, deferrals)
    # Then the merge stopped at the failed record: the records after it were not handed to the merge
    assert merge.handled == ["run-1", "run-2"]
    # And the failed record and every later one are reported, so Lambda retries from the failed record
    assert reported(answer) == sequence_numbers(records[1:])
    # And one deferral names the count, the reason and the first deferred run
    (deferral,) = deferrals
    assert deferral.count == 3 and deferral.reason == "after_failure"
    assert deferral.log_fields() == {
        "deferred": 3,
        "reason": "after_failure",
        "namespace": "ns",
        "job": "job",
        "runId": "run-3",
        "sequenceNumber": records[2]["dynamodb"]["SequenceNumber"],
    }


def test_a_deferred_dataset_record_is_named_by_its_kind_namespace_and_dataset() -> None:
    # Given a failing run record followed by a DatasetEvent's record
    dataset = stream_record(2, kind="DATASET")
    image = dataset["dynamodb"]["NewImage"]
    del image["job"], image["runId"]
    image["dataset"] = {"S": "public.orders"}
    records = [stream_record(1), dataset]
    merge, deferrals = Merge(FakeLambdaContext(), poison=frozenset({"run-1"})), []
    # When the batch is processed (the run fails first: the whole batch fails for Lambda to bisect)
    with pytest.raises(BatchProcessingError):
        invoke(records, merge, deferrals)
    # Then the deferral names the dataset record the way the merge's own log lines do
    (deferral,) = deferrals
    assert deferral.log_fields() == {
        "deferred": 1,
        "reason": "after_failure",
        "kind": "DATASET",
        "namespace": "ns",
        "dataset": "public.orders",
        "sequenceNumber": dataset["dynamodb"]["SequenceNumber"],
    }


def test_a_batch_whose_first_record_fails_fails_fast_and_as_a_whole_for_lambda_to_bisect() -> None:
    # Given the retry of a batch that starts at the record that cannot be merged
    records = [stream_record(n) for n in range(2, 6)]
    merge, deferrals = Merge(FakeLambdaContext(), poison=frozenset({"run-2"})), []
    # When the batch is processed
    # Then the invocation fails (a function error: Lambda bisects it, which does not count as a retry)
    with pytest.raises(BatchProcessingError):
        invoke(records, merge, deferrals)
    # And only the failing record was handled: the retry costs one record's work, not the batch's
    assert merge.handled == ["run-2"]
    assert [d.count for d in deferrals] == [3]


def test_when_the_time_left_falls_below_the_reserve_the_rest_of_the_batch_is_deferred() -> None:
    # Given 6 records that cost 40 s each in a 120 s invocation with a 45 s reserve
    records = [stream_record(n) for n in range(1, 7)]
    merge, deferrals = Merge(FakeLambdaContext(), cost_ms=40_000), []
    # When the batch is processed
    answer = invoke(records, merge, deferrals)
    # Then two records were merged (80 s spent; 40 s left is below the reserve) and the invocation returned
    assert merge.handled == ["run-1", "run-2"]
    assert merge.context.get_remaining_time_in_millis() == 40_000
    # And the four others are reported for the next invocation, in one deferral for the lack of time
    assert reported(answer) == sequence_numbers(records[2:])
    (deferral,) = deferrals
    assert (deferral.count, deferral.reason, deferral.first["runId"]) == (4, "time", "run-3")


def test_the_first_record_is_always_merged_even_with_less_time_left_than_the_reserve() -> None:
    # Given an invocation that starts with 10 s left, below the 45 s reserve
    records = [stream_record(n) for n in range(1, 4)]
    merge, deferrals = Merge(FakeLambdaContext(remaining_ms=10_000)), []
    # When the batch is processed
    answer = invoke(records, merge, deferrals)
    # Then the first record was merged all the same (every invocation checkpoints at least one record)
    assert merge.handled == ["run-1"]
    assert reported(answer) == sequence_numbers(records[1:])
    assert deferrals[0].reason == "time"


def test_repeated_invocations_of_a_slow_batch_merge_each_record_once_and_lose_none() -> None:
    # Given 7 records that cost 40 s each, retried from the lowest reported record as Lambda does
    pending = [stream_record(n) for n in range(1, 8)]
    deferrals: list[Deferral] = []
    merged: list[str] = []
    invocations = 0
    # When each invocation gets a fresh 120 s until nothing is reported
    while pending:
        invocations += 1
        merge = Merge(FakeLambdaContext(), cost_ms=40_000)
        answer = invoke(pending, merge, deferrals)
        merged += merge.handled
        failed = reported(answer)
        pending = pending[sequence_numbers(pending).index(failed[0]) :] if failed else []
    # Then every record was merged exactly once, in order, two per invocation
    assert merged == [f"run-{n}" for n in range(1, 8)]
    assert invocations == 4
    assert [d.count for d in deferrals] == [5, 3, 1]


def test_a_reused_processor_forgets_the_previous_invocations_deferral() -> None:
    # Given a processor whose last invocation deferred records
    deferrals: list[Deferral] = []
    processor = GuardedBatchProcessor(reserve_ms=RESERVE_MS, on_deferred=deferrals.append)
    slow = Merge(FakeLambdaContext(), cost_ms=100_000)
    process_partial_response(
        event={"Records": [stream_record(1), stream_record(2)]},
        record_handler=slow,
        processor=processor,
        context=slow.context,
    )
    assert processor.deferral is not None
    # When the next invocation fits
    fast = Merge(FakeLambdaContext())
    answer = process_partial_response(
        event={"Records": [stream_record(2)]}, record_handler=fast, processor=processor, context=fast.context
    )
    # Then it reports nothing and holds no deferral
    assert answer == {"batchItemFailures": []} and processor.deferral is None
    assert len(deferrals) == 1


# ---------------------------------------------------------------------------- settings
ENV = {"EVENTS_TABLE": "e", "BODY_BUCKET": "b", "LINEAGE_TABLE": "l", "START_GRACE_QUEUE_URL": "q"}


def test_a_reserve_at_or_above_the_functions_timeout_fails_the_cold_start_naming_both_variables() -> None:
    # Given a reserve as long as the timeout
    env = ENV | {"MERGE_TIME_RESERVE_SECONDS": "120", "MERGE_TIMEOUT_SECONDS": "120"}
    # When the settings are read, then the cold start fails with both names
    with pytest.raises(ConfigurationError, match=r"MERGE_TIME_RESERVE_SECONDS.*MERGE_TIMEOUT_SECONDS"):
        MergeSettings.from_env(env)
    # And a reserve below the timeout is accepted
    assert MergeSettings.from_env(ENV | {"MERGE_TIMEOUT_SECONDS": "120"}).time_reserve_seconds == 60


def test_the_templates_reserve_is_below_the_merge_functions_timeout_which_the_function_is_told() -> None:
    # Given the template's MergeFunction and its reserve parameter
    template = load_template()
    function = template["Resources"]["MergeFunction"]["Properties"]
    variables = function["Environment"]["Variables"]
    reserve = template["Parameters"]["MergeTimeReserveSeconds"]
    # Then the function is told its own Timeout, and every allowed reserve leaves it room to merge
    assert int(variables["MERGE_TIMEOUT_SECONDS"]) == function["Timeout"]
    assert variables["MERGE_TIME_RESERVE_SECONDS"] == {"Ref": "MergeTimeReserveSeconds"}
    assert all(value < function["Timeout"] for value in reserve["AllowedValues"])
    assert reserve["Default"] == MergeSettings.model_fields["time_reserve_seconds"].default
