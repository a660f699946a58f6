"""How long one stream batch may hold its lane: stop at the first failure, and before the function's timeout.

Lambda checkpoints a DynamoDB stream batch before the lowest sequence number that the function reports in
``batchItemFailures`` and retries from there (docs/merge.md#failures-what-holds-a-lane-and-for-how-long). So:

- **After a failure**, the records that follow are not merged: the retry starts at the failed record and would
  merge them again. They are reported as failed (deferred) instead, and the invocation ends at once.
- **Before the timeout**: before each record but the first, when the context's remaining time is below the
  reserve, the rest of the batch is deferred, so the invocation returns (and checkpoints what it merged) instead
  of timing out, which would throw that work away and make Lambda bisect and redo it.
- **Nothing merged** (the first record failed): the batch fails as a whole (Powertools'
  ``BatchProcessingError``), so that Lambda bisects it and isolates the failing record; bisection does not count
  against MaximumRetryAttempts, a retry of the same records would.

The first record is always processed, so every invocation that does not fail at its first record checkpoints at
least one record. One ``Deferral`` per invocation that deferred records goes to ``on_deferred`` (the handler
logs it once and counts it); nothing is logged per deferred record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamRecordModel

DeferReason = Literal["after_failure", "time"]

#: NewImage attributes that name what a record merges (the merge's own log field names).
_TARGET_FIELDS = ("kind", "namespace", "job", "runId", "dataset")


@dataclass(frozen=True)
class Deferral:
    """The records of one invocation that were reported without being merged, and why."""

    count: int
    reason: DeferReason
    #: The first deferred record's NewImage attributes that name its run (or dataset, or job).
    first: Mapping[str, str]
    first_sequence_number: str

    def log_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"deferred": self.count, "reason": self.reason}
        fields.update({k: v for k, v in self.first.items() if not (k == "kind" and v == "RUN")})
        fields["sequenceNumber"] = self.first_sequence_number
        return fields


def target_of(record: Mapping[str, Any]) -> dict[str, str]:
    """What a raw stream record merges, read from its NewImage without parsing the whole record."""
    image = record.get("dynamodb", {}).get("NewImage") or {}
    named = {}
    for name in _TARGET_FIELDS:
        value = image.get(name)
        if isinstance(value, Mapping) and isinstance(value.get("S"), str):
            named[name] = value["S"]
    return named


class GuardedBatchProcessor(BatchProcessor):
    """Powertools' ``BatchProcessor`` for DynamoDB streams that defers the rest of a batch after a failure or when
    less than ``reserve_ms`` of the invocation is left (see the module docstring)."""

    def __init__(self, reserve_ms: int, on_deferred: Callable[[Deferral], None]) -> None:
        super().__init__(event_type=EventType.DynamoDBStreams, model=DynamoDBStreamRecordModel)
        self.reserve_ms = reserve_ms
        self.on_deferred = on_deferred
        self.deferral: Deferral | None = None
        self._context: Any = None

    def __call__(self, records: list[dict], handler: Callable, lambda_context: Any = None) -> GuardedBatchProcessor:
        self._context = lambda_context  # Powertools keeps an earlier invocation's context when given none
        super().__call__(records, handler, lambda_context)
        return self

    def _prepare(self) -> None:
        super()._prepare()
        self.deferral = None

    def process(self) -> list[tuple]:
        results: list[tuple] = []
        for index, record in enumerate(self.records):
            reason = self._stop_reason(index)
            if reason is not None:
                self._defer(index, reason)
                break
            results.append(self._process_record(record))
        return results

    def _stop_reason(self, index: int) -> DeferReason | None:
        if index == 0:
            return None  # always merge the first record: every invocation makes progress or fails it
        if self.fail_messages:
            return "after_failure"
        if self._context is not None and self._context.get_remaining_time_in_millis() < self.reserve_ms:
            return "time"
        return None

    def _defer(self, start: int, reason: DeferReason) -> None:
        rest = self.records[start:]
        # Powertools reports the sequence number of each entry of fail_messages; the data class reads it lazily,
        # so a deferred record costs no parsing.
        self.fail_messages.extend(DynamoDBRecord(record) for record in rest)
        first = rest[0]
        self.deferral = Deferral(
            count=len(rest),
            reason=reason,
            first=target_of(first),
            first_sequence_number=str(first.get("dynamodb", {}).get("SequenceNumber", "")),
        )
        self.on_deferred(self.deferral)

    def _entire_batch_failed(self) -> bool:
        # Nothing was merged: fail the invocation so that Lambda bisects the batch (a partial response naming the
        # first record would retry the same records, each retry counting against MaximumRetryAttempts).
        return bool(self.fail_messages) and not self.success_messages
