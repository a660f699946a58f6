"""The authorizer's decision: one GetItem and one constant-time compare, failing closed on any error.

It only reads, unless last-used recording is switched on (off by default: the function's policy is read-only).
Token format and hashing: ``tokens`` and docs/auth.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lineage_intake.store.auth import TokenStore
from lineage_intake.tokens import (
    Decision,
    TokenRecord,
    authorization_header,
    parse_authorization_header,
    utc_now,
    verify,
)

Clock = Callable[[], datetime]


# ---------------------------------------------------------------------- the authorizer's use case
@dataclass
class TokenAuthorizer:
    """Decide on one request's headers. Any exception is a denial with reason ``error`` (fail closed).

    ``record_last_used`` (off by default) writes ``lastUsedAt`` at most once per ``last_used_interval`` per
    token, best effort: a failed write never changes the decision. An ``AccessDenied`` answer (the function's
    policy is read-only) switches recording off for the container's lifetime after one warning.
    """

    tokens: TokenStore
    record_last_used: bool = False
    last_used_interval: timedelta = timedelta(minutes=5)
    clock: Clock = utc_now
    warn: Callable[[str, dict[str, Any]], None] = field(default=lambda message, fields: None)

    def authorize(self, headers: Mapping[str, Any] | None) -> Decision:
        now = self.clock()
        try:
            decision = verify(authorization_header(headers), self.tokens.get, now)
        except Exception as exc:  # fail closed: storage errors, corrupt items, bugs
            return Decision.deny("error", token_id=_token_id_of(headers), error=type(exc).__name__)
        if decision.allowed and self.record_last_used and decision.record is not None:
            self._touch(decision.record, now)
        return decision

    def _touch(self, record: TokenRecord, now: datetime) -> None:
        if record.last_used_at is not None and now - record.last_used_at < self.last_used_interval:
            return
        try:
            self.tokens.touch_last_used(record.token_id, now, self.last_used_interval)
        except Exception as exc:
            code = _error_code(exc)
            if code in ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation"):
                self.record_last_used = False
                self.warn(
                    "last-used recording switched off: the function may not update the tokens table",
                    {"tokenId": record.token_id, "error": code},
                )
            else:
                self.warn("last-used time not recorded", {"tokenId": record.token_id, "error": code})


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", type(exc).__name__))
    return type(exc).__name__


def _token_id_of(headers: Mapping[str, Any] | None) -> str | None:
    """The token id of a well-formed header, for the log line of a failed verification (never the secret)."""
    try:
        return parse_authorization_header(authorization_header(headers)).token_id
    except Exception:
        return None
