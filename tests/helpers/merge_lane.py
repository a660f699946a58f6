"""Builders for the tests of how long a stream batch holds its lane (issue 13, ``lineage_intake.stream_batch``).

- ``stream_record``: a DynamoDB stream record in Lambda's JSON shape, small and pure (no AWS).
- ``MergeLane``: the merge handler fed by the local stream poller (the template's mapping, one lane) on moto, in
  process, with a fresh fake context per invocation; it records what each invocation handled and answered.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
from botocore.config import Config
from lineage_intake_tools.local.poller import StreamPoller, StreamSourceConfig
from lineage_intake_tools.local.template import Stack

from tests.helpers.aws import FakeLambdaContext


def stream_record(sequence: int, run_id: str = "", kind: str = "RUN") -> dict[str, Any]:
    """A Lambda stream record of an Events-table item of run ``run_id`` (default: ``run-<sequence>``)."""
    run_id = run_id or f"run-{sequence}"
    keys = {"pk": {"S": f"RUN#ns#job#{run_id}"}, "sk": {"S": f"2026-11-21T10:00:{sequence % 60:02d}Z#{sequence}"}}
    return {
        "eventID": f"e{sequence}",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/events/stream/2026",
        "dynamodb": {
            "ApproximateCreationDateTime": 1795219200,
            "Keys": keys,
            "NewImage": {
                **keys,
                "kind": {"S": kind},
                "namespace": {"S": "ns"},
                "job": {"S": "job"},
                "runId": {"S": run_id},
            },
            "SequenceNumber": f"{sequence:021d}",
            "SizeBytes": 120,
            "StreamViewType": "NEW_IMAGE",
        },
    }


def sequence_numbers(records: list[dict[str, Any]]) -> list[str]:
    return [r["dynamodb"]["SequenceNumber"] for r in records]


@dataclass
class Invocation:
    """One invocation of the merge handler by the poller: the records it got (by sort key, and their sequence
    numbers), those it handed to the merge service (by sort key), and its answer (or the error that failed it)."""

    records: list[str]
    numbers: list[str]
    handled: list[str] = field(default_factory=list)
    answer: Any = None
    error: str | None = None


class MergeLane:
    """The template's stream mapping (one lane, no batching window, no retry delay) invoking the merge handler in
    process. ``spend_ms`` is what each record's merge costs on the invocation's fake clock (0: nothing)."""

    def __init__(self, stack: Stack, session: boto3.Session, merge_app: ModuleType, dlq_url: str) -> None:
        self.merge_app = merge_app
        self.spend_ms = 0
        self.invocations: list[Invocation] = []
        self._current: Invocation | None = None
        self._context: FakeLambdaContext | None = None
        service = merge_app.service()
        original: Callable[..., Any] = service.handle

        def handle(image: dict[str, Any], event_name: str, batch: Any) -> Any:
            assert self._current is not None and self._context is not None
            self._current.handled.append(str(image.get("sk")))
            self._context.spend(self.spend_ms)
            return original(image, event_name, batch)

        service.handle = handle
        config = StreamSourceConfig.from_stack(stack, "MergeFunction", "https://sqs.us-east-1.amazonaws.com")
        self.config = dataclasses.replace(
            config, parallelization_factor=1, batching_window_seconds=0.0, on_failure_queue_url=dlq_url
        )
        streams = session.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))
        self.poller = StreamPoller(
            self.config,
            invoke=self._invoke,
            dynamodb=session.client("dynamodb"),
            streams=streams,
            sqs=session.client("sqs"),
            log=lambda level, message, fields: None,
            retry_delay=0.0,
        )
        self.poller.attach()

    def _invoke(self, event: dict[str, Any]) -> Any:
        self._current = Invocation(
            records=[str(r["dynamodb"]["Keys"]["sk"]["S"]) for r in event["Records"]],
            numbers=sequence_numbers(event["Records"]),
        )
        self._context = FakeLambdaContext()
        self.invocations.append(self._current)
        try:
            self._current.answer = self.merge_app.handler(event, self._context)
        except Exception as exc:
            self._current.error = f"{type(exc).__name__}: {exc}"
            raise
        return self._current.answer

    def drain(self, rounds: int = 100) -> None:
        """Poll until every record read has been handled (delivered or sent to the DLQ)."""
        for _ in range(rounds):
            self.poller.poll_once()
            if not self.poller.pending:
                return
        raise AssertionError("the lane did not drain")

    def handled(self) -> Counter[str]:
        """How many times the merge service was handed each record (by sort key), over every invocation."""
        return Counter(sk for invocation in self.invocations for sk in invocation.handled)


def dlq_bodies(session: boto3.Session, dlq_url: str) -> list[dict[str, Any]]:
    """The DLQ's messages, without consuming them for long (visibility 0)."""
    answer = session.client("sqs").receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [json.loads(m["Body"]) for m in answer.get("Messages", [])]
