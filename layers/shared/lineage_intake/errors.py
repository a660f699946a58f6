"""Domain exceptions. Handlers map these to HTTP status codes in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class DomainError(Exception):
    """Base class of every error the domain raises on purpose."""

    reason: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class FieldError:
    """One problem in a request body, located by a field path such as ``run.runId``."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


def validation_problems(exc: Any, root: str = "") -> str:
    """A pydantic ``ValidationError`` as one line, ``dotted.loc: message; ...`` (``root`` names an empty loc)."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or root}: {e['msg']}" for e in exc.errors(include_url=False))


def field_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """``('outputs', 0, 'outputFacets', 'x')`` -> ``outputs[0].outputFacets.x``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(body)"


def clean_message(msg: str) -> str:
    """Pydantic prefixes custom messages with 'Value error, '; a person does not need it."""
    return msg.removeprefix("Value error, ")


class InvalidEvent(DomainError):
    """The body is not a valid OpenLineage event (400)."""

    reason = "invalid_event"

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class MalformedBody(DomainError):
    """The body cannot be decoded: bad base64, bad gzip, not UTF-8, not JSON (400)."""

    reason = "malformed_body"


class PayloadTooLarge(DomainError):
    """The body, once decompressed, or the batch is over its configured cap (413)."""

    reason = "payload_too_large"


class UnsupportedMediaType(DomainError):
    """Unsupported Content-Type, charset or Content-Encoding (415)."""

    reason = "unsupported_media_type"


class Forbidden(DomainError):
    """The token may not write into the event's namespace (403)."""

    reason = "forbidden"


class DuplicateItem(DomainError):
    """A conditional write found the item already there (the storage layer's view of a retry)."""

    reason = "duplicate"


class ConflictError(DomainError):
    """A conditional update lost a race against a newer write."""

    reason = "conflict"


class StorageUnavailable(DomainError):
    """Storage throttled or could not be reached: the caller should retry later (503)."""

    reason = "storage_unavailable"

    def __init__(self, message: str, retry_after_seconds: int = 2) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class NotFound(DomainError):
    """The named item (connection, token) does not exist."""

    reason = "not_found"


class InvalidArgument(DomainError):
    """An operator's input is not acceptable (an empty connection name, an unknown connection, ...)."""

    reason = "invalid_argument"
