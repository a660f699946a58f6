"""Ingest function: POST /api/v1/lineage and /api/v1/lineage/batch behind the HTTP API authorizer.

Thin by design: Powertools does the routing, logging, metrics and tracing; ``lineage_intake.service.ingest`` does the
work. Domain exceptions become status codes in ``_domain_error`` and nowhere else.
"""

from functools import cache
from typing import Any, Literal

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext
from lineage_intake.config import IngestSettings
from lineage_intake.errors import (
    DomainError,
    Forbidden,
    InvalidEvent,
    MalformedBody,
    PayloadTooLarge,
    StorageUnavailable,
    UnsupportedMediaType,
)
from lineage_intake.logs import function_logger
from lineage_intake.models import MAX_ERRORS
from lineage_intake.principal import Principal
from lineage_intake.service.ingest import IngestService, Outcome, Request
from pydantic import BaseModel

settings = IngestSettings.from_env()
logger = function_logger()
metrics = Metrics()
tracer = Tracer()
app = APIGatewayHttpResolver(enable_validation=True)

STATUS: dict[type[DomainError], int] = {
    InvalidEvent: 400,
    MalformedBody: 400,
    Forbidden: 403,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    StorageUnavailable: 503,
}


class EventAnswer(BaseModel):
    status: Literal["accepted", "duplicate"]
    eventId: str
    kind: str


class FailedEvent(BaseModel):
    index: int
    reason: str
    retriable: bool
    errors: list[dict[str, str]] | None = None


class BatchAnswer(BaseModel):
    status: Literal["success", "partial_success"]
    summary: dict[str, int]
    failed_events: list[FailedEvent]


METRIC = {"accepted": "EventsAccepted", "duplicate": "EventsDuplicate", "rejected": "EventsRejected"}
QUARANTINE_METRIC = {"kept": "EventsQuarantined", "dropped": "QuarantineDropped", "failed": "QuarantineFailed"}


def report(outcome: Outcome) -> None:
    """One structured log line and the metrics of one event."""
    log = logger.warning if outcome.status == "rejected" else logger.info
    log(f"event {outcome.status}", extra=outcome.log_fields())
    metrics.add_metric(name=METRIC[outcome.status], unit=MetricUnit.Count, value=1)
    if outcome.status == "rejected":
        with single_metric(
            name="EventsRejectedByReason", unit=MetricUnit.Count, value=1, default_dimensions=metrics.default_dimensions
        ) as metric:
            metric.add_dimension(name="reason", value=outcome.reason or "unknown")
    if outcome.quarantined:
        metrics.add_metric(name=QUARANTINE_METRIC[outcome.quarantined], unit=MetricUnit.Count, value=1)


@cache
def service() -> IngestService:
    """Clients are created on first use, once per container, and passed into the domain."""
    import boto3
    from botocore.config import Config
    from lineage_intake.service.quarantine import Quarantine
    from lineage_intake.store.events import EventsStore
    from lineage_intake.store.quarantine import QuarantineStore

    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)
    s3 = cache(lambda: boto3.client("s3", config=config))
    store = EventsStore(boto3.client("dynamodb", config=config), settings.events_table, settings.body_bucket, s3)
    quarantine = Quarantine(
        QuarantineStore(store), settings.rejected_retention_days, settings.quarantine_daily_cap_per_token
    )
    return IngestService(store, settings, report, quarantine=quarantine)


def _request() -> Request:
    event = app.current_event
    return Request(
        body=event.body,
        is_base64=bool(event.is_base64_encoded),
        headers={k.lower(): v for k, v in (event.headers or {}).items()},
        principal=Principal.from_context(event.request_context.authorizer.get_lambda),
    )


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


@app.post("/api/v1/lineage", summary="Send one OpenLineage event (RunEvent, DatasetEvent or JobEvent)")
@tracer.capture_method
def post_event() -> Response[EventAnswer]:
    outcome = service().ingest(_request())
    return _json(200, EventAnswer(status=outcome.status, eventId=outcome.event_id, kind=outcome.kind))


@app.post("/api/v1/lineage/batch", summary="Send a JSON array of OpenLineage events")
@tracer.capture_method
def post_batch() -> Response[BatchAnswer]:
    result = service().ingest_batch(_request())
    answer = BatchAnswer.model_validate(result.as_dict())
    if result.retriable:
        return _json(503, answer, {"Retry-After": "2"})
    return _json(200, answer)


@app.exception_handler(DomainError)
def _domain_error(exc: DomainError) -> Response:
    status = STATUS.get(type(exc), 500)
    body: dict[str, Any] = {"error": exc.reason, "message": exc.message}
    if isinstance(exc, InvalidEvent):
        body["errors"] = [e.as_dict() for e in exc.errors[:MAX_ERRORS]]
    headers = {"Retry-After": str(exc.retry_after_seconds)} if isinstance(exc, StorageUnavailable) else None
    return _json(status, body, headers)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # ``POST /api/v1/lineage/`` (trailing slash, its own route in the template) is ``/api/v1/lineage``.
    raw = str(event.get("rawPath") or "/")
    if len(raw) > 1 and raw.endswith("/"):
        event = {**event, "rawPath": raw.rstrip("/")}
    return app.resolve(event, context)
