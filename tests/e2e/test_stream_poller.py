"""The local stream poller delivers the Events table stream the way Lambda's event source mapping does.

It runs against moto's server (the same stand-in as the local stack) with the template's tables and queue,
but without the poller's thread: each test writes items, steps the poller with ``poll_once()`` and looks at
what the function received and what landed in the DLQ. The function is a
recording callable with a scripted answer, standing in for the merge function so that every failure path of
the mapping (partial failures, errors, bisection, retries, DLQ) can be driven on purpose.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from lineage_intake_tools.local.poller import (
    StreamPoller,
    StreamSourceConfig,
    check_pattern,
    matches,
    matches_any,
)

from tests.helpers.local_stack import ServerStack


class Function:
    """Records every event; ``answer(records)`` returns the result or raises, like a handler would."""

    def __init__(self, answer: Callable[[list[dict[str, Any]]], Any] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.answer = answer or (lambda records: {"batchItemFailures": []})

    def __call__(self, event: dict[str, Any]) -> Any:
        self.events.append(json.loads(json.dumps(event)))  # what Lambda passes is JSON
        return self.answer(event["Records"])

    @property
    def batches(self) -> list[list[str]]:
        """The ``pk`` of every record of every invocation, in order."""
        return [[r["dynamodb"]["NewImage"]["pk"]["S"] for r in e["Records"]] for e in self.events]


@pytest.fixture
def srv(server_stack: ServerStack) -> ServerStack:
    return server_stack


@pytest.fixture
def config(server_stack: ServerStack) -> StreamSourceConfig:
    # The template's mapping, without the batching window so that one poll_once() delivers what it read, and with
    # one lane, so that these tests see one Lambda batcher's order across keys (lanes: tests/unit/test_poller_lanes.py).
    source = StreamSourceConfig.from_stack(server_stack.template, "MergeFunction", server_stack.endpoint)
    return dataclasses.replace(source, batching_window_seconds=0.0, parallelization_factor=1)


def make_poller(srv: ServerStack, config: StreamSourceConfig, function: Function, **options: Any) -> StreamPoller:
    poller = StreamPoller(
        config,
        invoke=function,
        dynamodb=srv.client("dynamodb"),
        streams=srv.client("dynamodbstreams"),
        sqs=srv.client("sqs"),
        log=lambda level, message, fields: None,
        **{"retry_delay": 0.0, **options},
    )
    poller.attach()
    return poller


def put(srv: ServerStack, config: StreamSourceConfig, pk: str, kind: str = "RUN", **extra: Any) -> None:
    item = {"pk": {"S": pk}, "sk": {"S": "2024-01-01T00:00:00.000000Z#x"}, "kind": {"S": kind}}
    item.update(extra)
    srv.client("dynamodb").put_item(TableName=config.table, Item=item)


def dlq_messages(srv: ServerStack, config: StreamSourceConfig) -> list[dict[str, Any]]:
    assert config.on_failure_queue_url is not None
    sqs = srv.client("sqs")
    messages: list[dict[str, Any]] = []
    while True:
        answer = sqs.receive_message(QueueUrl=config.on_failure_queue_url, MaxNumberOfMessages=10)
        if not answer.get("Messages"):
            return messages
        for message in answer["Messages"]:
            messages.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=config.on_failure_queue_url, ReceiptHandle=message["ReceiptHandle"])


def drain(poller: StreamPoller, rounds: int = 50) -> None:
    for _ in range(rounds):
        poller.poll_once()
        if not poller.pending:
            return
    raise AssertionError("the poller did not drain")


def test_the_mapping_settings_are_read_from_the_template(server_stack: ServerStack) -> None:
    config = StreamSourceConfig.from_stack(server_stack.template, "MergeFunction", server_stack.endpoint)
    assert config.table == server_stack.template.physical_name("EventsTable")
    assert config.batch_size == 100
    assert config.max_retries == 5
    assert config.bisect_on_error is True
    assert config.report_item_failures is True
    assert config.batching_window_seconds == 1.0
    assert config.starting_position == "TRIM_HORIZON"
    assert config.max_record_age_seconds == 86400
    assert config.parallelization_factor == 10
    assert config.on_failure_queue_url == f"{server_stack.endpoint}/123456789012/test-MergeDeadLetterQueue"
    assert config.filters == (
        {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["RUN", "DATASET", "JOB"]}}}},
    )


def test_records_reach_the_function_in_lambdas_json_shape(srv: ServerStack, config: StreamSourceConfig) -> None:
    function = Function()
    poller = make_poller(srv, config, function)
    put(srv, config, "RUN#1", body={"B": b"\x00\x01binary"}, size={"N": "12"})
    poller.poll_once()
    (event,) = function.events
    (record,) = event["Records"]
    assert record["eventName"] == "INSERT"
    assert record["eventSource"] == "aws:dynamodb"
    assert record["awsRegion"] == "us-east-1"
    assert record["eventSourceARN"] == poller.stream_arn
    table = config.table
    assert record["eventSourceARN"].startswith(f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/")
    ddb = record["dynamodb"]
    assert ddb["StreamViewType"] == "NEW_IMAGE"
    assert isinstance(ddb["ApproximateCreationDateTime"], int)
    assert ddb["Keys"] == {"pk": {"S": "RUN#1"}, "sk": {"S": "2024-01-01T00:00:00.000000Z#x"}}
    assert base64.b64decode(ddb["NewImage"]["body"]["B"]) == b"\x00\x01binary"  # binary travels as base64
    assert ddb["NewImage"]["size"] == {"N": "12"}
    assert ddb["SequenceNumber"].isdigit()


def test_records_that_match_no_filter_are_dropped_before_batching(srv: ServerStack, config: StreamSourceConfig) -> None:
    function = Function()
    poller = make_poller(srv, config, function)
    put(srv, config, "RUN#1", kind="RUN")
    put(srv, config, "OTHER#1", kind="SOMETHING_ELSE")
    put(srv, config, "DATASET#1", kind="DATASET")
    srv.client("dynamodb").update_item(  # a MODIFY record: not an INSERT
        TableName=config.table,
        Key={"pk": {"S": "RUN#1"}, "sk": {"S": "2024-01-01T00:00:00.000000Z#x"}},
        UpdateExpression="SET touched = :t",
        ExpressionAttributeValues={":t": {"BOOL": True}},
    )
    put(srv, config, "JOB#1", kind="JOB")
    poller.poll_once()
    assert function.batches == [["RUN#1", "DATASET#1", "JOB#1"]]
    assert poller.stats.filtered_out == 2
    assert poller.pending == 0


def test_a_batch_holds_at_most_the_templates_batch_size(srv: ServerStack, config: StreamSourceConfig) -> None:
    function = Function()
    poller = make_poller(srv, config, function)
    for i in range(130):
        put(srv, config, f"RUN#{i:03d}")
    poller.poll_once()
    assert [len(b) for b in function.batches] == [100, 30]
    assert [pk for batch in function.batches for pk in batch] == [f"RUN#{i:03d}" for i in range(130)]


def test_the_batching_window_waits_for_more_records(srv: ServerStack) -> None:
    config = StreamSourceConfig.from_stack(srv.template, "MergeFunction", srv.endpoint)  # window: 1 s
    config = dataclasses.replace(config, parallelization_factor=1)
    function = Function()
    now = [1000.0]
    poller = make_poller(srv, config, function, clock=lambda: now[0])
    put(srv, config, "RUN#1")
    poller.poll_once()
    assert function.events == []  # the window is open
    now[0] += 0.5
    put(srv, config, "RUN#2")
    poller.poll_once()
    assert function.events == []
    now[0] += 0.6  # 1.1 s after the first record
    poller.poll_once()
    assert function.batches == [["RUN#1", "RUN#2"]]


def test_a_reported_item_failure_retries_from_its_sequence_number(srv: ServerStack, config: StreamSourceConfig) -> None:
    attempts: dict[str, int] = {}

    def answer(records: list[dict[str, Any]]) -> dict[str, Any]:
        for record in records:
            pk = record["dynamodb"]["NewImage"]["pk"]["S"]
            attempts[pk] = attempts.get(pk, 0) + 1
            if pk == "RUN#2" and attempts[pk] == 1:
                return {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}
        return {"batchItemFailures": []}

    function = Function(answer)
    poller = make_poller(srv, config, function)
    for i in range(4):
        put(srv, config, f"RUN#{i}")
    drain(poller)
    # Records before the reported one are checkpointed; the retry starts at it (with the ones after it).
    assert function.batches == [["RUN#0", "RUN#1", "RUN#2", "RUN#3"], ["RUN#2", "RUN#3"]]
    assert poller.stats.partial_failures == 1
    assert dlq_messages(srv, config) == []


def test_a_malformed_item_failure_list_fails_the_whole_batch(srv: ServerStack, config: StreamSourceConfig) -> None:
    calls = {"n": 0}

    def answer(records: list[dict[str, Any]]) -> dict[str, Any]:
        calls["n"] += 1
        return {"batchItemFailures": [{"itemIdentifier": ""}]} if calls["n"] == 1 else {}

    function = Function(answer)
    poller = make_poller(srv, config, function)
    put(srv, config, "RUN#0")
    drain(poller)
    assert function.batches == [["RUN#0"], ["RUN#0"]]
    assert poller.stats.function_errors == 1


def test_a_function_error_bisects_the_batch_until_the_poison_record_is_alone(
    srv: ServerStack, config: StreamSourceConfig
) -> None:
    def answer(records: list[dict[str, Any]]) -> dict[str, Any]:
        if any(r["dynamodb"]["NewImage"]["pk"]["S"] == "RUN#5" for r in records):
            raise RuntimeError("poison")
        return {}

    function = Function(answer)
    poller = make_poller(srv, config, function)
    for i in range(8):
        put(srv, config, f"RUN#{i}")
    drain(poller)
    batches = function.batches
    assert batches[:4] == [
        [f"RUN#{i}" for i in range(8)],
        ["RUN#0", "RUN#1", "RUN#2", "RUN#3"],
        ["RUN#4", "RUN#5", "RUN#6", "RUN#7"],
        ["RUN#4", "RUN#5"],
    ]
    assert batches[4] == ["RUN#4"]
    # Splitting is free; alone, the poison record fails once and is retried MaximumRetryAttempts (5) times.
    assert batches[5:11] == [["RUN#5"]] * 6
    assert batches[11:] == [["RUN#6", "RUN#7"]]
    (message,) = dlq_messages(srv, config)
    assert message["DDBStreamBatchInfo"]["batchSize"] == 1
    assert message["requestContext"]["approximateInvokeCount"] == 9  # in batches of 8, 4, 2, then 6 times alone
    assert poller.pending == 0


def test_records_whose_retries_are_exhausted_go_to_the_dlq_as_lambda_describes_them(
    srv: ServerStack, config: StreamSourceConfig
) -> None:
    def answer(records: list[dict[str, Any]]) -> dict[str, Any]:
        raise RuntimeError("always failing")

    function = Function(answer)
    poller = make_poller(srv, config, function)
    put(srv, config, "RUN#poison")
    drain(poller)
    assert len(function.events) == 1 + config.max_retries
    (message,) = dlq_messages(srv, config)
    sequence = function.events[0]["Records"][0]["dynamodb"]["SequenceNumber"]
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert (
        message["requestContext"]["functionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:test-MergeFunction"
    )
    assert message["requestContext"]["approximateInvokeCount"] == 1 + config.max_retries
    assert message["responseContext"]["functionError"] == "Unhandled"
    assert message["version"] == "1.0"
    info = message["DDBStreamBatchInfo"]
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == sequence
    assert info["batchSize"] == 1
    assert info["streamArn"] == poller.stream_arn
    assert info["shardId"] == next(iter(poller._shards))
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert poller.stats.sent_to_dlq == 1


def test_a_record_that_keeps_being_reported_goes_to_the_dlq_and_the_stream_moves_on(
    srv: ServerStack, config: StreamSourceConfig
) -> None:
    def answer(records: list[dict[str, Any]]) -> dict[str, Any]:
        failed = [r for r in records if r["dynamodb"]["NewImage"]["pk"]["S"] == "RUN#1"]
        return {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in failed]}

    function = Function(answer)
    poller = make_poller(srv, config, function)
    for i in range(3):
        put(srv, config, f"RUN#{i}")
    drain(poller)
    put(srv, config, "RUN#3")
    drain(poller)
    (message,) = dlq_messages(srv, config)
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert "functionError" not in message["responseContext"]  # the function answered; it reported failures
    assert message["DDBStreamBatchInfo"]["batchSize"] == 2  # the reported record and the one after it
    assert function.batches[-1] == ["RUN#3"]  # after the skip, new records flow again


# ---------------------------------------------------------------------------- event filter syntax
RECORD = {
    "eventName": "INSERT",
    "dynamodb": {"NewImage": {"kind": {"S": "RUN"}, "size": {"N": "12"}, "tags": {"SS": ["a", "b"]}}},
    "count": 7,
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"eventName": ["INSERT"]}, True),
        ({"eventName": ["MODIFY", "REMOVE"]}, False),
        ({"dynamodb": {"NewImage": {"kind": {"S": ["RUN", "JOB"]}}}}, True),
        ({"dynamodb": {"NewImage": {"kind": {"S": ["DATASET"]}}}}, False),
        ({"dynamodb": {"NewImage": {"missing": {"S": ["x"]}}}}, False),
        ({"dynamodb": {"NewImage": {"tags": {"SS": ["b"]}}}}, True),
        ({"eventName": [{"prefix": "INS"}]}, True),
        ({"eventName": [{"suffix": "ERT"}]}, True),
        ({"eventName": [{"equals-ignore-case": "insert"}]}, True),
        ({"eventName": [{"anything-but": ["REMOVE"]}]}, True),
        ({"eventName": [{"anything-but": "INSERT"}]}, False),
        ({"eventName": [{"anything-but": {"prefix": "IN"}}]}, False),
        ({"count": [{"numeric": [">", 5, "<=", 7]}]}, True),
        ({"count": [{"numeric": ["<", 5]}]}, False),
        ({"userIdentity": [{"exists": False}]}, True),
        ({"userIdentity": [{"exists": True}]}, False),
        ({"eventName": [{"exists": True}]}, True),
    ],
)
def test_filter_patterns_match_as_lambda_event_filtering_does(pattern: dict[str, Any], expected: bool) -> None:
    check_pattern(pattern)
    assert matches(RECORD, pattern) is expected


def test_a_record_is_kept_when_any_filter_matches() -> None:
    assert matches_any(RECORD, [{"eventName": ["REMOVE"]}, {"eventName": ["INSERT"]}])
    assert not matches_any(RECORD, [{"eventName": ["REMOVE"]}])
    assert matches_any(RECORD, [])


@pytest.mark.parametrize(
    "pattern",
    [
        {"eventName": [{"wildcard": "IN*"}]},
        {"eventName": []},
        {"eventName": "INSERT"},
        {},
    ],
)
def test_filter_syntax_the_poller_does_not_implement_is_refused(pattern: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="filter pattern"):
        check_pattern(pattern)
