"""The merge's dead-letter queue and the stream records its messages point to.

Lambda's on-failure destination for a stream source receives an *invocation record*: the shard id and the
sequence-number range of the failed batch (``DDBStreamBatchInfo``), not the records. To name the runs, the
records are read back from the stream (``GetShardIterator(AT_SEQUENCE_NUMBER)`` + ``GetRecords``), which works
while they are within the stream's 24-hour retention. docs/operations.md#the-dead-letter-queue.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lineage_intake.store.dynamo import from_dynamodb

#: Messages received per call (SQS' maximum) and how long they stay hidden while a command works on them.
RECEIVE_BATCH = 10
VISIBILITY_SECONDS = 60


@dataclass
class DeadLetter:
    """One DLQ message: the failed batch's stream coordinates, and the event items read back from the stream."""

    message_id: str
    receipt_handle: str
    body: dict[str, Any]
    images: list[dict[str, Any]] = field(default_factory=list)
    unreadable: str | None = None  # why the records could not be read back (expired, ...)

    @property
    def batch(self) -> dict[str, Any]:
        info = self.body.get("DDBStreamBatchInfo")
        return info if isinstance(info, dict) else {}


@dataclass
class DeadLetterStore:
    sqs: Any
    streams: Any
    queue_url: str

    def messages(self, limit: int = 100) -> Iterator[DeadLetter]:
        """Up to ``limit`` messages, hidden for ``VISIBILITY_SECONDS`` (not deleted: they come back)."""
        seen: set[str] = set()
        while len(seen) < limit:
            answer = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(RECEIVE_BATCH, limit - len(seen)),
                VisibilityTimeout=VISIBILITY_SECONDS,
                WaitTimeSeconds=0,
            )
            batch = [m for m in answer.get("Messages", []) if m["MessageId"] not in seen]
            if not batch:
                return
            for message in batch:
                seen.add(message["MessageId"])
                try:
                    body = json.loads(message["Body"])
                except ValueError:
                    body = {}
                yield DeadLetter(message["MessageId"], message["ReceiptHandle"], body if isinstance(body, dict) else {})

    def read_back(self, letter: DeadLetter) -> None:
        """Fill ``letter.images`` with the NewImages of the batch's records, or say why not."""
        info = letter.batch
        try:
            arn, shard = str(info["streamArn"]), str(info["shardId"])
            start, end = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
        except (KeyError, ValueError):
            letter.unreadable = "the message is not a stream invocation record (no DDBStreamBatchInfo)"
            return
        try:
            iterator = self.streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard, ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=str(start)
            )["ShardIterator"]
            while iterator:
                answer = self.streams.get_records(ShardIterator=iterator, Limit=1000)
                records = answer.get("Records", [])
                for record in records:
                    number = int(record["dynamodb"]["SequenceNumber"])
                    if number > end:
                        return
                    image = record["dynamodb"].get("NewImage")
                    if image:
                        letter.images.append(from_dynamodb(image))
                if not records:
                    return
                iterator = answer.get("NextShardIterator")
        except Exception as exc:  # TrimmedDataAccessException past 24 h, ResourceNotFound, ...
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            letter.unreadable = f"the stream records cannot be read back ({code}); past the stream's 24 h retention?"

    def release(self, letter: DeadLetter) -> None:
        """Make a received message visible again at once (a listing must not hide it from the next command)."""
        self.sqs.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=letter.receipt_handle, VisibilityTimeout=0
        )

    def delete(self, letter: DeadLetter) -> None:
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=letter.receipt_handle)
