"""The ingest use case: decode, validate, authorise and store OpenLineage events, one item per event.

The service never talks HTTP and never imports Powertools: the handler gives it the request parts and a
``Reporter`` that turns each event's ``Outcome`` into one log line and its metrics, and maps the domain
exceptions it raises to status codes.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from lineage_intake import keys
from lineage_intake.body import decode_body, parse_json
from lineage_intake.config import IngestSettings
from lineage_intake.errors import (
    DomainError,
    DuplicateItem,
    FieldError,
    InvalidEvent,
    PayloadTooLarge,
    StorageUnavailable,
)
from lineage_intake.facets import JobType, job_type
from lineage_intake.lineage import normalize_run_id
from lineage_intake.models import (
    MAX_ERRORS,
    AnyEvent,
    DatasetEvent,
    JobEvent,
    RunEvent,
    format_event_time,
    parse_event,
)
from lineage_intake.principal import Principal
from lineage_intake.service.quarantine import QUARANTINED_REASONS, Quarantine
from lineage_intake.store.events import EventsStore

Status = Literal["accepted", "duplicate", "rejected"]


@dataclass
class Outcome:
    """What happened to one event: the content of its log line and its metrics."""

    status: Status
    reason: str | None = None
    message: str | None = None
    kind: str | None = None
    event_id: str | None = None
    namespace: str | None = None
    job: str | None = None
    dataset: str | None = None
    run_id: str | None = None
    event_type: str | None = None
    event_time: str | None = None
    integration: str | None = None
    producer: str | None = None
    bytes: int = 0
    stored_bytes: int = 0
    errors: list[FieldError] = field(default_factory=list)
    retriable: bool = False
    token_id: str | None = None
    #: The quarantine's answer for a rejected event: kept, dropped (over the daily cap) or failed.
    quarantined: str | None = None
    quarantine_error: str | None = None
    error: DomainError | None = field(default=None, repr=False, compare=False)

    def log_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "outcome": self.status,
            "reason": self.reason,
            "kind": self.kind,
            "namespace": self.namespace,
            "job": self.job,
            "dataset": self.dataset,
            "runId": self.run_id,
            "eventType": self.event_type,
            "eventTime": self.event_time,
            "integration": self.integration,
            "producer": self.producer,
            "bytes": self.bytes,
            "storedBytes": self.stored_bytes,
            "eventId": self.event_id,
            "tokenId": self.token_id,
            "quarantined": self.quarantined,
            "quarantineError": self.quarantine_error,
        }
        if self.message:
            fields["detail"] = self.message
        if self.errors:
            fields["errors"] = [e.as_dict() for e in self.errors[:5]]
        return {k: v for k, v in fields.items() if v is not None}


class Reporter(Protocol):
    def __call__(self, outcome: Outcome) -> None: ...


@dataclass
class Request:
    """The parts of an HTTP request that ingest needs (header names lower-case)."""

    body: str | None
    is_base64: bool
    headers: Mapping[str, str]
    principal: Principal


@dataclass
class BatchResult:
    outcomes: list[Outcome]
    failed: list[tuple[int, Outcome]]

    @property
    def retriable(self) -> bool:
        return any(o.retriable for _, o in self.failed)

    def summary(self) -> dict[str, int]:
        accepted = sum(1 for o in self.outcomes if o.status == "accepted")
        duplicate = sum(1 for o in self.outcomes if o.status == "duplicate")
        retriable = sum(1 for _, o in self.failed if o.retriable)
        return {
            "received": len(self.outcomes),
            "accepted": accepted,
            "duplicate": duplicate,
            "failed": len(self.failed),
            "successful": accepted + duplicate,
            "retriable": retriable,
            "non_retriable": len(self.failed) - retriable,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "partial_success" if self.failed else "success",
            "summary": self.summary(),
            "failed_events": [
                {"index": i, "reason": o.message or o.reason, "retriable": o.retriable}
                | ({"errors": [e.as_dict() for e in o.errors[:MAX_ERRORS]]} if o.errors else {})
                for i, o in self.failed
            ],
        }


def canonical_json(raw: Any) -> bytes:
    """The stored form of an event: compact JSON with sorted keys, so that it does not depend on the key
    order or white space of the request. Every value is kept as sent."""
    return json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")


def event_id_of(canonical: bytes) -> str:
    """Content digest (128 bits of SHA-256) of the canonical JSON: a retried delivery has the same id."""
    return hashlib.sha256(canonical).hexdigest()[:32]


def describe(event: AnyEvent) -> Outcome:
    """The identifying fields of a valid event (used for keys, the item and the log line)."""
    kind = _job_type(event)
    outcome = Outcome(
        status="accepted",
        kind=event.kind,
        event_time=format_event_time(event.eventTime),
        producer=event.producer,
        integration=kind.integration,
    )
    if isinstance(event, RunEvent):
        outcome.namespace, outcome.job = event.job.namespace, event.job.name
        outcome.run_id = normalize_run_id(event.run.runId)
        outcome.event_type = event.eventType or "OTHER"
    elif isinstance(event, JobEvent):
        outcome.namespace, outcome.job = event.job.namespace, event.job.name
        outcome.event_type = event.eventType
    elif isinstance(event, DatasetEvent):
        outcome.namespace, outcome.dataset = event.dataset.namespace, event.dataset.name
    return outcome


def _job_type(event: AnyEvent) -> JobType:
    job = getattr(event, "job", None)
    return job_type(job.facets) if job is not None else JobType()


def build_item(
    event: AnyEvent,
    outcome: Outcome,
    *,
    principal: Principal,
    now: float,
    retention_days: int,
) -> dict[str, Any]:
    """The Events table item of a validated event, without its body.

    Every byte is paid on each write (1 WRU per KB): ``eventTime`` and ``eventId`` are in the sort key and
    ``producer`` in the body, so the item leaves them out (``store.events.with_key_fields`` and the event
    log give them back); docs/merge.md#storage-cost."""
    assert outcome.event_id is not None
    if isinstance(event, RunEvent):
        assert outcome.namespace is not None and outcome.job is not None and outcome.run_id is not None
        pk = keys.run_pk(outcome.namespace, outcome.job, outcome.run_id)
    elif isinstance(event, JobEvent):
        assert outcome.namespace is not None and outcome.job is not None
        pk = keys.job_pk(outcome.namespace, outcome.job)
    else:
        assert outcome.namespace is not None and outcome.dataset is not None
        pk = keys.dataset_pk(outcome.namespace, outcome.dataset)
    kind = _job_type(event)
    item: dict[str, Any] = {
        "pk": pk,
        "sk": keys.event_sk(event.eventTime, outcome.event_id),
        "kind": event.kind,
        "namespace": outcome.namespace,
        "size": outcome.bytes,
        "receivedAt": format_event_time(datetime.fromtimestamp(now, UTC)),
        "tokenId": principal.token_id,
        # What the token could write when it sent the event: the merge never writes into another connection
        # (docs/auth.md, "Namespaces stay closed"). Sorted, so a retry stores the same item.
        "connections": sorted(principal.connections),
    }
    optional = {
        "job": outcome.job,
        "dataset": outcome.dataset,
        "runId": outcome.run_id,
        "eventType": outcome.event_type,
        "integration": outcome.integration,
        "processingType": kind.processing_type,
        "jobType": kind.job_type,
    }
    item.update({k: v for k, v in optional.items() if isinstance(v, str) and v})
    if isinstance(event, RunEvent) and event.run.runId != outcome.run_id:
        item["runIdRaw"] = event.run.runId
    if retention_days > 0:
        item["expiresAt"] = int(now) + retention_days * 86_400
    return item


class IngestService:
    def __init__(
        self,
        store: EventsStore,
        settings: IngestSettings,
        report: Reporter,
        clock: Callable[[], float] = time.time,
        quarantine: Quarantine | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.report = report
        self.clock = clock
        self.quarantine = quarantine

    # ------------------------------------------------------------------ routes
    def ingest(self, request: Request) -> Outcome:
        """POST /api/v1/lineage: one event. Raises a ``DomainError`` for anything but accepted/duplicate."""
        try:
            request.principal.check_scope("write")
            value = self._decode(request)
            if isinstance(value, list):
                raise InvalidEvent(
                    "the body is a JSON array: POST arrays of events to /api/v1/lineage/batch",
                    [FieldError("(body)", "expected a JSON object")],
                )
        except DomainError as exc:
            self.report(rejected(exc))
            raise
        outcome = self.store_event(value, request.principal)
        if outcome.error is not None:
            raise outcome.error
        return outcome

    def ingest_batch(self, request: Request) -> BatchResult:
        """POST /api/v1/lineage/batch: each event validated and stored on its own."""
        try:
            request.principal.check_scope("write")  # the whole batch is refused: no per-event failures
            value = self._decode(request)
            if not isinstance(value, list):
                raise InvalidEvent(
                    "the batch body must be a JSON array of events",
                    [FieldError("(body)", "expected a JSON array")],
                )
            if len(value) > self.settings.max_batch_events:
                raise PayloadTooLarge(
                    f"the batch holds {len(value)} events, over the limit of "
                    f"{self.settings.max_batch_events}; split it into smaller batches"
                )
        except DomainError as exc:
            self.report(rejected(exc))
            raise
        outcomes: list[Outcome] = []
        failed: list[tuple[int, Outcome]] = []
        storage_down: StorageUnavailable | None = None
        for index, raw in enumerate(value):
            if storage_down is not None:
                outcome = rejected(storage_down)
                self.report(outcome)
            else:
                outcome = self.store_event(raw, request.principal)
                if outcome.reason == StorageUnavailable.reason:
                    storage_down = StorageUnavailable(outcome.message or "storage unavailable")
            outcomes.append(outcome)
            if outcome.status == "rejected":
                failed.append((index, outcome))
        return BatchResult(outcomes, failed)

    # ------------------------------------------------------------------ one event
    def store_event(self, raw: Any, principal: Principal, *, quarantine: bool = True) -> Outcome:
        """Validate, authorise and store one decoded event; never raises a ``DomainError``.

        A refused event is handed to the quarantine (unless ``quarantine`` is False: a replay).
        """
        outcome = Outcome(status="rejected")
        try:
            event = parse_event(raw)
            outcome = describe(event)
            principal.check_can_write(None if isinstance(event, DatasetEvent) else outcome.namespace)
            plain = canonical_json(raw)
            outcome.bytes = len(plain)
            outcome.event_id = event_id_of(plain)
            now = self.clock()
            item = build_item(
                event, outcome, principal=principal, now=now, retention_days=self.settings.event_retention_days
            )
            try:
                outcome.stored_bytes = self.store.put_new(item, plain)
                outcome.status = "accepted"
            except DuplicateItem:
                outcome.status = "duplicate"
        except DomainError as exc:
            outcome.status = "rejected"
            outcome.reason = exc.reason
            outcome.message = exc.message
            outcome.errors = list(getattr(exc, "errors", []))
            outcome.retriable = isinstance(exc, StorageUnavailable)
            outcome.error = exc
            if quarantine and self.quarantine is not None and exc.reason in QUARANTINED_REASONS:
                self._quarantine(raw, outcome, principal)
        outcome.token_id = principal.token_id
        self.report(outcome)
        return outcome

    def _quarantine(self, raw: Any, outcome: Outcome, principal: Principal) -> None:
        assert self.quarantine is not None
        body = canonical_json(raw)
        outcome.bytes = outcome.bytes or len(body)
        outcome.quarantined, outcome.quarantine_error = self.quarantine.keep(
            body,
            raw,
            principal=principal,
            reason=outcome.reason or "unknown",
            message=outcome.message,
            errors=[e.as_dict() for e in outcome.errors],
            now=self.clock(),
        )

    def _decode(self, request: Request) -> Any:
        plain = decode_body(
            request.body,
            is_base64=request.is_base64,
            headers=request.headers,
            max_bytes=self.settings.max_body_bytes,
        )
        return parse_json(plain)


def rejected(exc: DomainError) -> Outcome:
    return Outcome(
        status="rejected",
        reason=exc.reason,
        message=exc.message,
        errors=list(getattr(exc, "errors", [])),
        retriable=isinstance(exc, StorageUnavailable),
        error=exc,
    )
