"""OpenLineage event models (spec 2-0-2): strict core fields, open facets.

- The core fields (namespaces, names, runId, eventType, eventTime, producer) are strict: a number where a
  string belongs is an error, never coerced.
- Facets are open: any facet name is accepted, and every facet is kept verbatim. A handful of well-known
  facets that lineage depends on get a structural check (see ``facets``), with field paths in the error.
- The kind of event is decided the way the spec's ``oneOf`` does: ``run`` and ``job`` make a RunEvent,
  ``dataset`` a DatasetEvent, ``job`` without ``run`` a JobEvent.

Leniencies (each listed in the README): a missing ``schemaURL`` or ``producer``, facets without
``_producer``/``_schemaURL``, an ``eventTime`` without offset (read as UTC) or with nanoseconds (truncated
to microseconds), a ``runId`` that is not a UUID (mapped to a name-based UUID, as Java's
``UUID.nameUUIDFromBytes`` does), upper-case UUIDs (lower-cased), and unknown top-level keys (kept).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, field_validator

from lineage_intake.errors import FieldError, InvalidEvent, clean_message, field_path
from lineage_intake.facets import DATASET_FACETS, INPUT_FACETS, JOB_FACETS, OUTPUT_FACETS, RUN_FACETS, check_facets
from lineage_intake.limits import event_errors

SPEC_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
RUN_STATES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
TERMINAL_STATES = frozenset({"COMPLETE", "ABORT", "FAIL"})
MAX_ERRORS = 50

EventType = Literal["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]
Name = Annotated[StrictStr, Field(min_length=1)]
Facets = dict[str, dict[str, Any] | None]

_TIME_RE = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<h>\d{2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<frac>\d+))?)?"
    r"(?P<tz>[Zz]|[+-]\d{2}(?::?\d{2})?)?$",
    re.ASCII,  # RFC 3339 digits are ASCII: without it, \d also matches "٢٠٢٤"
)


def parse_event_time(value: str) -> datetime:
    """ISO 8601 to an aware UTC datetime. No offset means UTC; digits past microseconds are dropped."""
    match = _TIME_RE.match(value.strip())
    if not match:
        raise ValueError("must be an ISO 8601 date-time such as 2024-01-31T12:00:00.000Z")
    year, month, day = (int(x) for x in match["date"].split("-"))
    frac = (match["frac"] or "0")[:6].ljust(6, "0")
    try:
        naive = datetime(year, month, day, int(match["h"]), int(match["m"]), int(match["s"] or 0), int(frac))
    except ValueError as exc:
        raise ValueError(f"is not a valid date-time: {exc}") from None
    tz = match["tz"]
    if tz is None or tz in ("Z", "z"):
        offset = UTC
    else:
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 23 or minutes > 59:
            raise ValueError("has an invalid UTC offset")
        offset = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        return naive.replace(tzinfo=offset).astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


def format_event_time(value: datetime) -> str:
    """Fixed-width UTC form, so that string order is time order (used in sort keys)."""
    v = value.astimezone(UTC)
    return f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}Z"


class _Open(BaseModel):
    """Unknown keys are kept, never dropped."""

    model_config = ConfigDict(extra="allow", frozen=True)


class Job(_Open):
    namespace: Name
    name: Name
    facets: Facets = Field(default_factory=dict)


class Run(_Open):
    runId: Name
    facets: Facets = Field(default_factory=dict)


class Dataset(_Open):
    namespace: Name
    name: Name
    facets: Facets = Field(default_factory=dict)


class InputDataset(Dataset):
    inputFacets: Facets = Field(default_factory=dict)


class OutputDataset(Dataset):
    outputFacets: Facets = Field(default_factory=dict)


class _BaseEvent(_Open):
    eventTime: datetime
    producer: StrictStr = "unknown"
    schemaURL: StrictStr | None = None

    @field_validator("eventTime", mode="before")
    @classmethod
    def _event_time(cls, value: Any) -> datetime:
        if not isinstance(value, str):
            raise ValueError("must be a string holding an ISO 8601 date-time")
        return parse_event_time(value)


class RunEvent(_BaseEvent):
    kind: Literal["RUN"] = Field(default="RUN", exclude=True)
    eventType: EventType | None = None
    run: Run
    job: Job
    inputs: list[InputDataset] = Field(default_factory=list)
    outputs: list[OutputDataset] = Field(default_factory=list)


class DatasetEvent(_BaseEvent):
    kind: Literal["DATASET"] = Field(default="DATASET", exclude=True)
    dataset: Dataset


class JobEvent(_BaseEvent):
    kind: Literal["JOB"] = Field(default="JOB", exclude=True)
    eventType: EventType | None = None
    job: Job
    inputs: list[InputDataset] = Field(default_factory=list)
    outputs: list[OutputDataset] = Field(default_factory=list)


AnyEvent = RunEvent | DatasetEvent | JobEvent


def _errors_from(exc: ValidationError, prefix: tuple[int | str, ...] = ()) -> list[FieldError]:
    errors = []
    for err in exc.errors(include_url=False):
        msg = clean_message(err["msg"])
        if err["type"] == "literal_error" and err["loc"] and err["loc"][-1] == "eventType":
            got = repr(err["input"])
            got = got if len(got) <= 60 else got[:57] + "..."  # never echo a megabyte back
            msg = f"must be one of {', '.join(RUN_STATES)} (got {got})"
        errors.append(FieldError(field_path(prefix + tuple(err["loc"])), msg))
    return errors


def event_model_for(raw: dict[str, Any]) -> type[AnyEvent]:
    if "run" in raw:
        return RunEvent
    if "dataset" in raw:
        return DatasetEvent
    if "job" in raw:
        return JobEvent
    raise InvalidEvent(
        "the body is not an OpenLineage event: a RunEvent needs 'run' and 'job', a DatasetEvent needs "
        "'dataset', a JobEvent needs 'job'",
        [FieldError("(body)", "expected the keys run and job, dataset, or job")],
    )


def parse_event(raw: Any) -> AnyEvent:
    """Validate a decoded JSON value as an OpenLineage event, or raise ``InvalidEvent`` with field paths."""
    if not isinstance(raw, dict):
        raise InvalidEvent(
            f"an event must be a JSON object, not {type(raw).__name__}",
            [FieldError("(body)", "expected a JSON object")],
        )
    model = event_model_for(raw)
    errors = event_errors(raw)
    if errors:
        raise InvalidEvent(_summary(model, errors), errors[:MAX_ERRORS])
    try:
        event = model.model_validate(raw)
    except ValidationError as exc:
        errors = _errors_from(exc)
        raise InvalidEvent(_summary(model, errors), errors[:MAX_ERRORS]) from None
    errors = known_facet_errors(event)
    if errors:
        raise InvalidEvent(_summary(model, errors), errors[:MAX_ERRORS])
    return event


def known_facet_errors(event: AnyEvent) -> list[FieldError]:
    """Structural checks of the well-known facets, wherever they appear in the event."""
    errors: list[FieldError] = []
    if isinstance(event, RunEvent):
        errors += check_facets(("run", "facets"), event.run.facets, RUN_FACETS)
    if isinstance(event, RunEvent | JobEvent):
        errors += check_facets(("job", "facets"), event.job.facets, JOB_FACETS)
        for i, inp in enumerate(event.inputs):
            errors += check_facets(("inputs", i, "facets"), inp.facets, DATASET_FACETS)
            errors += check_facets(("inputs", i, "inputFacets"), inp.inputFacets, INPUT_FACETS)
        for i, out in enumerate(event.outputs):
            errors += check_facets(("outputs", i, "facets"), out.facets, DATASET_FACETS)
            errors += check_facets(("outputs", i, "outputFacets"), out.outputFacets, OUTPUT_FACETS)
    if isinstance(event, DatasetEvent):
        errors += check_facets(("dataset", "facets"), event.dataset.facets, DATASET_FACETS)
    return errors


def _summary(model: type[AnyEvent], errors: list[FieldError]) -> str:
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"invalid {model.__name__}: {first.path}: {first.message}{more}"


def default_schema_url(event: AnyEvent) -> str:
    return f"{SPEC_URL}#/$defs/{type(event).__name__}"
