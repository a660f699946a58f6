"""An in-memory DynamoDB stream for the local poller's unit tests: the table description, the three Streams
calls and the DLQ's ``send_message`` over one shard, and a poller built on them (no AWS, no moto)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lineage_intake_tools.local.poller import InvokeBatch, StreamPoller, StreamSourceConfig

STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/events/stream/2024"


def config(factor: int, **changes: Any) -> StreamSourceConfig:
    values: dict[str, Any] = {
        "function_logical_id": "MergeFunction",
        "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:merge",
        "table": "events",
        "batch_size": 100,
        "max_retries": 2,
        "bisect_on_error": True,
        "report_item_failures": True,
        "filters": (),
        "batching_window_seconds": 0.0,
        "on_failure_queue_url": "http://queue/dlq",
        "parallelization_factor": factor,
    }
    return StreamSourceConfig(**(values | changes))


class FakeAws:
    """``describe_table``, the three Streams calls and ``send_message``, over one shard of records."""

    def __init__(self, keys: list[str]) -> None:
        self.records = [record(key, sequence) for sequence, key in enumerate(keys, start=1)]
        self.sent: list[str] = []

    def describe_table(self, TableName: str) -> dict[str, Any]:
        schema = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
        return {"Table": {"LatestStreamArn": STREAM_ARN, "KeySchema": schema}}

    def describe_stream(self, StreamArn: str) -> dict[str, Any]:
        return {"StreamDescription": {"Shards": [{"ShardId": "shard-1"}]}}

    def get_shard_iterator(self, **kwargs: Any) -> dict[str, Any]:
        return {"ShardIterator": "it-0"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        position = int(ShardIterator.split("-")[1])
        page = self.records[position : position + Limit]
        return {"Records": page, "NextShardIterator": f"it-{position + len(page)}"}

    def send_message(self, QueueUrl: str, MessageBody: str) -> dict[str, Any]:
        self.sent.append(MessageBody)
        return {}


def record(key: str, sequence: int) -> dict[str, Any]:
    keys = {"pk": {"S": key}, "sk": {"S": f"2024-01-01T00:00:{sequence:02d}Z#{sequence}"}}
    return {
        "eventID": f"e{sequence}",
        "eventName": "INSERT",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime.now(UTC),
            "Keys": keys,
            "NewImage": {**keys, "kind": {"S": "RUN"}},
            "SequenceNumber": f"{sequence:021d}",
            "SizeBytes": 100,
            "StreamViewType": "NEW_IMAGE",
        },
    }


def make_poller(aws: FakeAws, function: InvokeBatch, factor: int, max_concurrency: int, **changes: Any) -> StreamPoller:
    poller = StreamPoller(
        config(factor, **changes),
        invoke=function,
        dynamodb=aws,
        streams=aws,
        sqs=aws,
        log=lambda level, message, fields: None,
        retry_delay=0.0,
        max_concurrency=max_concurrency,
    )
    poller.attach()
    return poller


def drain(poller: StreamPoller) -> None:
    for _ in range(50):
        poller.poll_once()
        if not poller.pending:
            return
    raise AssertionError("the poller did not drain")
