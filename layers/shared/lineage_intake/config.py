"""Environment configuration, validated once at cold start with pydantic.

Each function reads only the variables it needs; the classes share fields by inheritance (``EventsSettings``).
A missing or malformed variable fails the cold start with a message that names the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lineage_intake.errors import validation_problems

T = TypeVar("T", bound="_Settings")


class ConfigurationError(RuntimeError):
    """The function's environment is incomplete or invalid."""


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    @classmethod
    def from_env(cls: type[T], env: Mapping[str, str] | None = None) -> T:
        source = os.environ if env is None else env
        try:
            return cls.model_validate(dict(source))
        except ValidationError as exc:
            problems = validation_problems(exc)
            raise ConfigurationError(f"{cls.__name__}: invalid environment: {problems}") from exc


class EventsSettings(_Settings):
    """The Events table and its body bucket: written by ingest, read by the merge."""

    events_table: str = Field(alias="EVENTS_TABLE", min_length=1)
    body_bucket: str = Field(alias="BODY_BUCKET", min_length=1)


class IngestSettings(EventsSettings):
    max_body_bytes: int = Field(alias="MAX_BODY_BYTES", default=10 * 1024 * 1024, ge=1024)
    max_batch_events: int = Field(alias="MAX_BATCH_EVENTS", default=500, ge=1, le=10_000)
    event_retention_days: int = Field(alias="EVENT_RETENTION_DAYS", default=365, ge=0)
    #: The quarantine of rejected events (docs/operations.md#quarantine); a cap of 0 keeps none.
    rejected_retention_days: int = Field(alias="REJECTED_RETENTION_DAYS", default=14, ge=1)
    quarantine_daily_cap_per_token: int = Field(alias="QUARANTINE_DAILY_CAP_PER_TOKEN", default=1000, ge=0)


class MergeSettings(EventsSettings):
    lineage_table: str = Field(alias="LINEAGE_TABLE", min_length=1)
    #: The delay queue of START-less runs (DelaySeconds = the template's StartGraceSeconds); docs/merge.md.
    start_grace_queue_url: str = Field(alias="START_GRACE_QUEUE_URL", min_length=1)
    #: Write the run items' time index (gsi3) that the read API's /events and /stats read.
    time_index: bool = Field(alias="LINEAGE_TIME_INDEX", default=True)
    #: A stream invocation starts no record after the first with less time left than this, so it returns before
    #: its timeout (``lineage_intake.stream_batch``). Why 60: docs/merge.md, "Failures: what holds a lane".
    time_reserve_seconds: int = Field(alias="MERGE_TIME_RESERVE_SECONDS", default=60, ge=1, le=899)
    #: The function's Timeout (Lambda does not tell a function its own), to check the reserve against it.
    timeout_seconds: int | None = Field(alias="MERGE_TIMEOUT_SECONDS", default=None, ge=1, le=900)

    @model_validator(mode="after")
    def _reserve_within_timeout(self) -> MergeSettings:
        if self.timeout_seconds is not None and self.time_reserve_seconds >= self.timeout_seconds:
            raise ValueError(
                f"MERGE_TIME_RESERVE_SECONDS ({self.time_reserve_seconds}) must be less than the function's "
                f"timeout MERGE_TIMEOUT_SECONDS ({self.timeout_seconds})"
            )
        return self


class AuthorizerSettings(_Settings):
    tokens_table: str = Field(alias="TOKENS_TABLE", min_length=1)
    #: ``TOKEN_LAST_USED_WRITES=true`` records a best-effort last-used time; it needs UpdateItem on the table.
    record_last_used: bool = Field(alias="TOKEN_LAST_USED_WRITES", default=False)


class ReadSettings(EventsSettings):
    """The read API reads what the merge writes (Lineage table) and the stored events (Events table, bucket)."""

    lineage_table: str = Field(alias="LINEAGE_TABLE", min_length=1)
    #: Default of ``lineageWindowDays``: job edges last seen within it are in the graph (docs/read-api.md).
    lineage_window_days: int = Field(alias="LINEAGE_WINDOW_DAYS", default=30, ge=1, le=3650)
