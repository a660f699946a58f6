"""The merge use case: one Events-table stream record in, the lineage records of its run (or job, or dataset) out.

- A RUN record reads the run's stored state (run item and checkpoint, one Query), then the run's events from
  the checkpoint on (one paged, consistent Query; S3 only for offloaded bodies), folds them with
  ``merge.merge_run`` and writes the result with ``LineageStore.write_run``. The checkpoint holds the fold of
  every earlier event, so the result is that of a full re-read: it does not depend on the order events arrived
  in, and a duplicate (never stored twice, so no second stream record) cannot count twice. A record whose event
  sorts before the checkpoint re-reads the run whole.
- A START record first reads the run's events (one Query page of up to ``CHECKPOINT_EVERY``): a run with fewer,
  all START or RUNNING of a batch job, is ``pending`` at the cost of that read (no run read, no decode, no
  fold); otherwise those events are folded as above, without reading them again (docs/merge.md, "Throughput").
- A terminal event without START: the run waits (``awaiting_start``) and is sent to the ``GraceQueue``; its
  message (``handle_grace``, after StartGraceSeconds) merges it from what it has (``startMissing``).
- A DATASET or JOB record folds that partition of static events into the dataset or job definition.
- The NewImage is parsed with ``EventImage`` (pydantic); a record it refuses is ``MalformedRecord``.
- Within one stream batch (a ``Batch``, created per invocation and passed in), the first record of a partition
  merges it; later records of the same partition are ``coalesced`` (their events were stored before the batch
  was read, so the merge has seen them) unless they sort before where that merge started reading.

The service never imports Powertools: the handler gives it a ``Reporter`` that turns each ``MergeOutcome`` into
one log line and its metrics. A failure is reported (outcome ``failed``) and re-raised, so that the handler's
batch processor reports the record in the partial batch response.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictStr, ValidationError, model_validator

from lineage_intake import keys
from lineage_intake.errors import DomainError, StorageUnavailable, validation_problems
from lineage_intake.facets import text
from lineage_intake.lineage import normalize_run_id
from lineage_intake.merge import (
    MergedRun,
    StoredEvent,
    merge_run,
)
from lineage_intake.static_lineage import merge_dataset_events, merge_job_events
from lineage_intake.store.dynamo import dynamo_errors
from lineage_intake.store.events import EventsStore, with_key_fields
from lineage_intake.store.lineage import LineageStore, WriteResult
from lineage_intake.store.lineage_items import CHECKPOINT_EVERY


class MalformedRecord(DomainError):
    """The stream record is not an Events-table item that the merge understands (a poisoned record)."""

    reason = "malformed_record"


class CorruptEvent(DomainError):
    """A stored event cannot be read back (its body does not decode): the run cannot be merged."""

    reason = "corrupt_event"


_Text = Annotated[str | None, BeforeValidator(text)]
#: Event types after which a batch run is still open: the fold of such events alone writes nothing.
_OPEN_TYPES = frozenset({"START", "RUNNING"})
_Name = Annotated[StrictStr | None, Field(min_length=1)]
#: The names a record of each kind must carry, besides its namespace.
_NAMES = {"RUN": ("job", "runId"), "DATASET": ("dataset",), "JOB": ("job",)}


class EventImage(BaseModel):
    """The NewImage attributes of an Events-table item that the merge reads (see ``service.ingest.build_item``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    pk: StrictStr = Field(min_length=1)
    kind: Literal["RUN", "DATASET", "JOB"]
    namespace: StrictStr = Field(min_length=1)
    job: _Name = None
    dataset: _Name = None
    runId: _Name = None
    eventType: _Text = None
    eventTime: _Text = None

    @model_validator(mode="after")
    def _names_of_kind(self) -> EventImage:
        missing = [name for name in _NAMES[self.kind] if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind} record needs {' and '.join(repr(m) for m in missing)}")
        return self

    @classmethod
    def parse(cls, image: Mapping[str, Any]) -> EventImage:
        try:
            return cls.model_validate(dict(image))
        except ValidationError as exc:
            problems = validation_problems(exc, "NewImage")
            raise MalformedRecord(f"the record's NewImage is not an event item: {problems}") from exc


@dataclass
class Batch:
    """One stream batch: the partitions already merged in it, each with the eventTime its merge read from
    (``""``: every event). A later record of the partition at or after it is coalesced; one before it (a late
    event that sorts before the checkpoint) merges the run again, in full."""

    merged: dict[str, str] = field(default_factory=dict)


class GraceQueue(Protocol):
    """Where a run that waits for its START is sent, to be merged from what it has after the grace period."""

    def send(self, namespace: str, job: str, run_id: str, /) -> None: ...


class SqsGraceQueue:
    """The template's ``StartGraceQueue``: an SQS queue whose DelaySeconds is the grace period."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self.sqs = sqs
        self.queue_url = queue_url

    def send(self, namespace: str, job: str, run_id: str, /) -> None:
        body = json.dumps({"namespace": namespace, "job": job, "runId": run_id}, separators=(",", ":"))
        with dynamo_errors():  # SQS errors share the codes and the translation
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)


class GraceMessage(BaseModel):
    """The body of a StartGraceQueue message."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    namespace: StrictStr = Field(min_length=1)
    job: StrictStr = Field(min_length=1)
    runId: StrictStr = Field(min_length=1)

    @classmethod
    def parse(cls, body: str) -> GraceMessage:
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            problems = validation_problems(exc, "body")
            raise MalformedRecord(f"the grace message is not a run: {problems}") from exc


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
    start_missing: bool = False
    parent_link_child_side: bool = False
    lineage_changed: bool = False
    lag_seconds: float | None = None
    duration_ms: float = 0.0
    reason: str | None = None
    message: str | None = None
    retriable: bool = False
    error: Exception | None = field(default=None, repr=False, compare=False)
    #: The eventTime the merge read the run's events from ("" = all): coalescing in the batch depends on it.
    read_from: str = field(default="", repr=False, compare=False)

    def log_fields(self) -> dict[str, Any]:
        """The log line's fields, compact (CloudWatch bills each byte): a run merge's ``kind`` (RUN), and
        counters that are 0 or false, are left out; the trigger's eventTime is on its ingest line."""
        fields: dict[str, Any] = {
            "outcome": self.status,
            "kind": self.kind if self.kind != "RUN" else None,
            "namespace": self.namespace,
            "job": self.job,
            "runId": self.run_id,
            "dataset": self.dataset,
            "state": self.state,
            "previousState": self.previous_state,
            "triggerEventType": self.trigger_event_type,
            "integration": self.integration,
            "events": self.events,
            "inputs": self.inputs or None,
            "outputs": self.outputs or None,
            "columnEdges": self.column_edges or None,
            "recordsWritten": self.written or None,
            "recordsUnchanged": self.unchanged or None,
            "recordsDeleted": self.deleted or None,
            "recordsSkippedNewer": self.skipped_newer or None,
            "latestRun": self.latest_run or None,
            "startMissing": self.start_missing or None,
            "parentLinkChildSide": self.parent_link_child_side or None,
            "lineageChanged": self.lineage_changed or None,
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
        self.lineage_changed = written.lineage_changed


class Reporter(Protocol):
    def __call__(self, outcome: MergeOutcome, /) -> None: ...


def _connections(value: Any) -> frozenset[str] | None:
    """An event item's ``connections`` (written by ingest since issue 13; absent on older items)."""
    if isinstance(value, list | set | frozenset):
        return frozenset(str(v) for v in value)
    return None


def _still_open(head: list[dict[str, Any]], namespace: str, job: str, run_id: str) -> MergeOutcome | None:
    """A START record's run whose stored events (``head``: all of them, fewer than a checkpoint needs) are all
    START or RUNNING of a batch job would merge to ``pending`` and write nothing: say so without the run read,
    the body decode or the fold (docs/merge.md, "Throughput"). None: merge the run."""
    for item in head:
        if item.get("eventType") not in _OPEN_TYPES or str(item.get("processingType", "")).upper() == "STREAMING":
            return None
    started = any(item.get("eventType") == "START" for item in head)
    return MergeOutcome(
        status="pending",
        kind="RUN",
        namespace=namespace,
        job=job,
        run_id=run_id,
        state="RUNNING" if started else "PENDING",
        events=len(head),
        reason="no terminal event yet",
    )


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
        grace: GraceQueue,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.events = events
        self.lineage = lineage
        self.report = report
        self.grace = grace
        self.clock = clock

    # ------------------------------------------------------------------ stream records
    def handle(self, image: Mapping[str, Any], event_name: str = "INSERT", batch: Batch | None = None) -> MergeOutcome:
        """One stream record (its NewImage as plain values). Reports the outcome; re-raises a failure.

        ``batch`` (one per stream batch) coalesces the records of a partition merged earlier in the batch.
        """
        started = time.perf_counter()
        image = with_key_fields(dict(image))  # eventTime from the sort key (items since zlib-d2 leave it there)
        outcome = MergeOutcome(status="failed", kind=text(image.get("kind")))
        try:
            outcome = self._handle(image, event_name, batch if batch is not None else Batch())
        except Exception as exc:
            outcome = self._failed(outcome, image, exc)
            outcome.duration_ms = (time.perf_counter() - started) * 1000
            self.report(outcome)
            raise
        outcome.duration_ms = (time.perf_counter() - started) * 1000
        if outcome.status != "coalesced":
            self.report(outcome)
        return outcome

    def _handle(self, raw: Mapping[str, Any], event_name: str, batch: Batch) -> MergeOutcome:
        if event_name != "INSERT":
            kind = text(raw.get("kind"))
            return MergeOutcome(status="ignored", kind=kind, reason=f"{event_name} records change no lineage")
        image = EventImage.parse(raw)
        pk = image.pk
        trigger_time = image.eventTime or ""
        if pk in batch.merged and trigger_time >= batch.merged[pk]:
            return MergeOutcome(status="coalesced", kind=image.kind)
        read_from = ""
        namespace = image.namespace
        if image.kind == "RUN":
            assert image.job is not None and image.runId is not None  # checked by EventImage
            run_id = normalize_run_id(image.runId)
            if keys.run_pk(namespace, image.job, run_id) != pk:
                raise MalformedRecord(f"the record's pk {pk!r} is not the partition of run {run_id}")
            head = self.events.first_events(pk, CHECKPOINT_EVERY) if image.eventType == "START" else None
            opened = _still_open(head, namespace, image.job, run_id) if head else None
            outcome = opened or self.merge_run(namespace, image.job, run_id, trigger_time=trigger_time, head=head)
            read_from = outcome.read_from
        elif image.kind == "DATASET":
            assert image.dataset is not None
            if keys.dataset_pk(namespace, image.dataset) != pk:
                raise MalformedRecord(f"the record's pk {pk!r} is not the partition of dataset {image.dataset!r}")
            outcome = self.merge_dataset(namespace, image.dataset)
        else:
            assert image.job is not None
            if keys.job_pk(namespace, image.job) != pk:
                raise MalformedRecord(f"the record's pk {pk!r} is not the partition of job {image.job!r}")
            outcome = self.merge_job(namespace, image.job)
        outcome.trigger_event_type, outcome.trigger_event_time = image.eventType, image.eventTime
        batch.merged[pk] = read_from
        return outcome

    def handle_grace(self, body: str) -> MergeOutcome:
        """One StartGraceQueue message: merge the run from what it has if its START has still not come."""
        started = time.perf_counter()
        outcome = MergeOutcome(status="failed", kind="RUN")
        try:
            message = GraceMessage.parse(body)
            outcome = self.merge_run(message.namespace, message.job, normalize_run_id(message.runId), grace=True)
        except Exception as exc:
            outcome = self._failed(outcome, {}, exc)
            outcome.duration_ms = (time.perf_counter() - started) * 1000
            self.report(outcome)
            raise
        outcome.duration_ms = (time.perf_counter() - started) * 1000
        self.report(outcome)
        return outcome

    def _failed(self, outcome: MergeOutcome, image: Mapping[str, Any], exc: Exception) -> MergeOutcome:
        outcome.status = "failed"
        outcome.kind = outcome.kind or text(image.get("kind"))
        outcome.namespace = outcome.namespace or text(image.get("namespace"))
        outcome.job = outcome.job or text(image.get("job"))
        outcome.dataset = outcome.dataset or text(image.get("dataset"))
        outcome.run_id = outcome.run_id or text(image.get("runId"))
        outcome.trigger_event_type = text(image.get("eventType"))
        outcome.trigger_event_time = text(image.get("eventTime"))
        outcome.reason = exc.reason if isinstance(exc, DomainError) else type(exc).__name__
        outcome.message = exc.message if isinstance(exc, DomainError) else str(exc)[:500]
        outcome.retriable = isinstance(exc, StorageUnavailable)
        outcome.error = exc
        return outcome

    # ------------------------------------------------------------------ use cases
    def merge_run(
        self,
        namespace: str,
        job: str,
        run_id: str,
        *,
        trigger_time: str | None = None,
        grace: bool = False,
        head: list[dict[str, Any]] | None = None,
    ) -> MergeOutcome:
        """Merge one run and write what changed.

        With ``trigger_time`` (a stream record's eventTime) at or after the run's checkpoint, only the events
        from the checkpoint on are read; otherwise (no checkpoint, a late event before it, the CLI, the grace
        queue) every event. ``grace``: the START grace period is over (docs/merge.md, "START-less runs").
        ``head``: every event item of the run, already read (``EventsStore.first_events``): folded whole.
        """
        pk = keys.run_pk(namespace, job, run_id)
        stored = self.lineage.read_run(namespace, job, run_id)
        resume = stored.checkpoint
        if resume is None or trigger_time is None or trigger_time < resume.boundary or head is not None:
            resume = None
        if head is not None:
            events = self._decoded(pk, head)
        else:
            events = self._stored_events(pk, since=resume.boundary if resume else None)
        merged = merge_run(events, resume=resume, grace_expired=grace or stored.start_missing)
        outcome = MergeOutcome(status="pending", kind="RUN", namespace=namespace, job=job, run_id=run_id)
        outcome.read_from = resume.boundary if resume else ""
        if merged is None:
            outcome.reason = "no stored events"
            return outcome
        self._describe(outcome, merged)
        if merged.status == "awaiting_start" and stored.state != "AWAITING_START":
            self.grace.send(namespace, job, run_id)  # before the write: a lost message would strand the run
        now = self.clock()
        written = self.lineage.write_run(merged, _now_iso(now), stored)
        outcome.count(written)
        if written.superseded:
            outcome.status = "superseded"
            return outcome
        if merged.status == "merged" and merged.end_time and written.previous_state != merged.state:
            outcome.lag_seconds = _seconds_since(merged.end_time, now)
        return outcome

    def fold_run(self, namespace: str, job: str, run_id: str) -> MergedRun | None:
        """A run's merged facets, column and dataset-level lineage, folded from its events and written nowhere:
        what the run item leaves in the Events table (docs/merge.md), for the read side."""
        return merge_run(self._stored_events(keys.run_pk(namespace, job, run_id)), grace_expired=True)

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
    def _stored_events(self, pk: str, since: str | None = None) -> Iterator[StoredEvent]:
        """The partition's events in sort-key order (from ``since`` on), decoded one page at a time."""
        return self._decoded(pk, self.events.query_partition(pk, since=since))

    def _decoded(self, pk: str, items: Iterable[Mapping[str, Any]]) -> Iterator[StoredEvent]:
        for item in items:
            yield StoredEvent(
                event_time=str(item.get("eventTime") or str(item["sk"]).partition("#")[0]),
                event_id=str(item.get("eventId") or str(item["sk"]).partition("#")[2]),
                event_type=text(item.get("eventType")),
                body=self._body(pk, item),
                connections=_connections(item.get("connections")),
                token_id=text(item.get("tokenId")),
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
        outcome.start_missing = merged.start_missing
        outcome.parent_link_child_side = merged.parent_link_child_side
