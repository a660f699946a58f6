"""The merge use case: one Events-table stream record in, the lineage records of its run (or job, or dataset) out.

- A RUN record re-reads the run's whole partition (one paged, consistent Query; S3 only for offloaded bodies),
  folds it with ``merge.merge_run`` and writes the result with ``LineageStore.write_run``. Because the merge
  always starts from every stored event, the result does not depend on the order events arrived in, and a
  duplicate (which never produces a second item nor a second stream record) cannot count twice.
- A DATASET or JOB record folds that partition of static events into the dataset or job definition.
- Within one stream batch, the first record of a partition merges it; later records of the same partition
  are ``coalesced``: their events were stored before the batch was read, so the merge has seen them.

The service never imports Powertools: the handler gives it a ``Reporter`` that turns each ``MergeOutcome`` into
one log line and its metrics. A failure is reported (outcome ``failed``) and re-raised, so that the handler's
batch processor reports the record in the partial batch response.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from lineage_intake import keys
from lineage_intake.errors import DomainError, StorageUnavailable
from lineage_intake.merge import (
    MergedRun,
    StoredEvent,
    merge_dataset_events,
    merge_job_events,
    merge_run,
)
from lineage_intake.models import normalize_run_id
from lineage_intake.store.events import EventsStore
from lineage_intake.store.lineage import LineageStore, WriteResult


class MalformedRecord(DomainError):
    """The stream record is not an Events-table item that the merge understands (a poisoned record)."""

    reason = "malformed_record"


class CorruptEvent(DomainError):
    """A stored event cannot be read back (its body does not decode): the run cannot be merged."""

    reason = "corrupt_event"


@dataclass
class MergeOutcome:
    """What one stream record led to: the content of its log line and its metrics.

    ``status``: merged, awaiting_start, streaming, pending (batch run without a terminal event yet),
    superseded (a newer merge of the same run got there first), static (a dataset or job definition),
    coalesced (merged earlier in the same batch), ignored (not an INSERT of an event), failed.
    """

    status: str
    kind: str | None = None
    namespace: str | None = None
    job: str | None = None
    run_id: str | None = None
    dataset: str | None = None
    state: str | None = None
    previous_state: str | None = None
    trigger_event_type: str | None = None
    trigger_event_time: str | None = None
    integration: str | None = None
    events: int = 0
    inputs: int = 0
    outputs: int = 0
    column_edges: int = 0
    written: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped_newer: int = 0
    latest_run: bool | None = None
    lag_seconds: float | None = None
    duration_ms: float = 0.0
    reason: str | None = None
    message: str | None = None
    retriable: bool = False
    error: Exception | None = field(default=None, repr=False, compare=False)

    def log_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "outcome": self.status,
            "kind": self.kind,
            "namespace": self.namespace,
            "job": self.job,
            "runId": self.run_id,
            "dataset": self.dataset,
            "state": self.state,
            "previousState": self.previous_state,
            "triggerEventType": self.trigger_event_type,
            "triggerEventTime": self.trigger_event_time,
            "integration": self.integration,
            "events": self.events,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "columnEdges": self.column_edges,
            "recordsWritten": self.written,
            "recordsUnchanged": self.unchanged,
            "recordsDeleted": self.deleted,
            "recordsSkippedNewer": self.skipped_newer,
            "latestRun": self.latest_run,
            "mergeLagSeconds": round(self.lag_seconds, 3) if self.lag_seconds is not None else None,
            "durationMs": round(self.duration_ms, 1),
            "reason": self.reason,
            "retriable": self.retriable if self.status == "failed" else None,
        }
        if self.message:
            fields["detail"] = self.message
        return {k: v for k, v in fields.items() if v is not None}

    def count(self, written: WriteResult) -> None:
        self.written = written.written
        self.unchanged = written.unchanged
        self.deleted = written.deleted
        self.skipped_newer = written.skipped_newer
        self.latest_run = written.latest_run
        self.previous_state = written.previous_state


class Reporter(Protocol):
    def __call__(self, outcome: MergeOutcome, /) -> None: ...


def _now_iso(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _seconds_since(event_time: str, now: float) -> float:
    stamp = datetime.strptime(event_time, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return max(0.0, now - stamp.timestamp())


class MergeService:
    def __init__(
        self,
        events: EventsStore,
        lineage: LineageStore,
        report: Reporter,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.events = events
        self.lineage = lineage
        self.report = report
        self.clock = clock
        self._merged_in_batch: set[str] = set()

    # ------------------------------------------------------------------ stream records
    def begin_batch(self) -> None:
        """Forget which partitions were merged: call it once per stream batch, before its records."""
        self._merged_in_batch.clear()

    def handle(self, image: Mapping[str, Any], event_name: str = "INSERT") -> MergeOutcome:
        """One stream record (its NewImage as plain values). Reports the outcome; re-raises a failure."""
        started = time.perf_counter()
        outcome = MergeOutcome(status="failed", kind=_text(image.get("kind")))
        try:
            outcome = self._handle(image, event_name)
        except Exception as exc:
            outcome = self._failed(outcome, image, exc)
            outcome.duration_ms = (time.perf_counter() - started) * 1000
            self.report(outcome)
            raise
        outcome.duration_ms = (time.perf_counter() - started) * 1000
        if outcome.status != "coalesced":
            self.report(outcome)
        return outcome

    def _handle(self, image: Mapping[str, Any], event_name: str) -> MergeOutcome:
        kind = _text(image.get("kind"))
        if event_name != "INSERT":
            return MergeOutcome(status="ignored", kind=kind, reason=f"{event_name} records change no lineage")
        pk = _required(image, "pk")
        if pk in self._merged_in_batch:
            return MergeOutcome(status="coalesced", kind=kind)
        trigger_type, trigger_time = _text(image.get("eventType")), _text(image.get("eventTime"))
        if kind == "RUN":
            namespace, job = _required(image, "namespace"), _required(image, "job")
            run_id = normalize_run_id(_required(image, "runId"))
            if keys.run_pk(namespace, job, run_id) != pk:
                raise MalformedRecord(f"the record's pk {pk!r} is not the partition of run {run_id}")
            outcome = self.merge_run(namespace, job, run_id)
        elif kind == "DATASET":
            namespace, name = _required(image, "namespace"), _required(image, "dataset")
            if keys.dataset_pk(namespace, name) != pk:
                raise MalformedRecord(f"the record's pk {pk!r} is not the partition of dataset {name!r}")
            outcome = self.merge_dataset(namespace, name)
        elif kind == "JOB":
            namespace, name = _required(image, "namespace"), _required(image, "job")
            if keys.job_pk(namespace, name) != pk:
                raise MalformedRecord(f"the record's pk {pk!r} is not the partition of job {name!r}")
            outcome = self.merge_job(namespace, name)
        else:
            raise MalformedRecord(f"the record's kind {kind!r} is not RUN, DATASET or JOB")
        outcome.trigger_event_type, outcome.trigger_event_time = trigger_type, trigger_time
        self._merged_in_batch.add(pk)
        return outcome

    def _failed(self, outcome: MergeOutcome, image: Mapping[str, Any], exc: Exception) -> MergeOutcome:
        outcome.status = "failed"
        outcome.kind = outcome.kind or _text(image.get("kind"))
        outcome.namespace = outcome.namespace or _text(image.get("namespace"))
        outcome.job = outcome.job or _text(image.get("job"))
        outcome.dataset = outcome.dataset or _text(image.get("dataset"))
        outcome.run_id = outcome.run_id or _text(image.get("runId"))
        outcome.trigger_event_type = _text(image.get("eventType"))
        outcome.trigger_event_time = _text(image.get("eventTime"))
        outcome.reason = exc.reason if isinstance(exc, DomainError) else type(exc).__name__
        outcome.message = exc.message if isinstance(exc, DomainError) else str(exc)[:500]
        outcome.retriable = isinstance(exc, StorageUnavailable)
        outcome.error = exc
        return outcome

    # ------------------------------------------------------------------ use cases
    def merge_run(self, namespace: str, job: str, run_id: str) -> MergeOutcome:
        """Merge one run from all of its stored events, and write what changed."""
        pk = keys.run_pk(namespace, job, run_id)
        merged = merge_run(self._stored_events(pk))
        outcome = MergeOutcome(status="pending", kind="RUN", namespace=namespace, job=job, run_id=run_id)
        if merged is None:
            outcome.reason = "no stored events"
            return outcome
        self._describe(outcome, merged)
        if merged.status == "pending":
            return outcome
        now = self.clock()
        written = self.lineage.write_run(merged, _now_iso(now))
        outcome.count(written)
        if written.superseded:
            outcome.status = "superseded"
            return outcome
        if merged.status == "merged" and merged.end_time and written.previous_state != merged.state:
            outcome.lag_seconds = _seconds_since(merged.end_time, now)
        return outcome

    def merge_dataset(self, namespace: str, name: str) -> MergeOutcome:
        """A dataset's DatasetEvents define it; it stops being a partial asset."""
        definition = merge_dataset_events(self._stored_events(keys.dataset_pk(namespace, name)))
        outcome = MergeOutcome(status="static", kind="DATASET", namespace=namespace, dataset=name)
        if definition is None:
            outcome.status, outcome.reason = "pending", "no stored events"
            return outcome
        outcome.events = definition.event_count
        outcome.count(self.lineage.write_dataset_definition(definition, _now_iso(self.clock())))
        return outcome

    def merge_job(self, namespace: str, name: str) -> MergeOutcome:
        """A job's JobEvents: static lineage, without any run."""
        definition = merge_job_events(self._stored_events(keys.job_pk(namespace, name)))
        outcome = MergeOutcome(status="static", kind="JOB", namespace=namespace, job=name)
        if definition is None:
            outcome.status, outcome.reason = "pending", "no stored events"
            return outcome
        outcome.events = definition.event_count
        outcome.inputs, outcome.outputs = len(definition.inputs), len(definition.outputs)
        outcome.column_edges = len(definition.column_edges())
        outcome.integration = definition.integration
        outcome.count(self.lineage.write_job_definition(definition, _now_iso(self.clock())))
        return outcome

    # ------------------------------------------------------------------ helpers
    def _stored_events(self, pk: str) -> Iterator[StoredEvent]:
        """The partition's events in sort-key order, decoded one page at a time (never all at once)."""
        for item in self.events.query_partition(pk):
            yield StoredEvent(
                event_time=str(item.get("eventTime") or str(item["sk"]).partition("#")[0]),
                event_id=str(item.get("eventId") or str(item["sk"]).partition("#")[2]),
                event_type=_text(item.get("eventType")),
                body=self._body(pk, item),
            )

    def _body(self, pk: str, item: Mapping[str, Any]) -> Mapping[str, Any]:
        try:
            value = json.loads(self.events.load_body(item))
        except (zlib.error, ValueError, KeyError, UnicodeDecodeError) as exc:
            raise CorruptEvent(
                f"event {item.get('sk')!r} of partition {pk} cannot be read ({type(exc).__name__}: {exc}); "
                "the run is not merged until the item is repaired or removed"
            ) from exc
        if not isinstance(value, dict):
            raise CorruptEvent(f"event {item.get('sk')!r} of partition {pk} is not a JSON object")
        return value

    @staticmethod
    def _describe(outcome: MergeOutcome, merged: MergedRun) -> None:
        outcome.status = merged.status
        outcome.state = merged.state
        outcome.events = merged.event_count
        outcome.inputs, outcome.outputs = len(merged.inputs), len(merged.outputs)
        outcome.column_edges = sum(len(c["inputs"]) for c in merged.column_lineage)
        outcome.integration = merged.integration


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _required(image: Mapping[str, Any], name: str) -> str:
    value = _text(image.get(name))
    if value is None:
        raise MalformedRecord(f"the record's NewImage has no {name!r} string")
    return value
