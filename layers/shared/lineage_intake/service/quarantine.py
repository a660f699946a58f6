"""Keep a rejected event for replay: best effort, capped per token and day, never changing the answer.

Ingest calls ``Quarantine.keep`` for events refused as invalid (400) or forbidden (403) of an authenticated
request. Whatever happens here (cap reached, storage down, a bug) the producer's answer stays the same; the
result ends up in the event's log line (``quarantined``) and its metrics. Why and how: docs/operations.md#quarantine.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from lineage_intake.principal import Principal
from lineage_intake.store.quarantine import KIND, QuarantineStore, day_of, day_pk

Kept = Literal["kept", "dropped", "failed"]

#: The refusals worth keeping: the producer sent an event that a fix on our side (a connection, a scope)
#: or on theirs can make acceptable. Throttling is retried by the client; size and media type are not events.
QUARANTINED_REASONS = frozenset({"invalid_event", "forbidden"})


#: The names are filter attributes only (the stored body keeps the event verbatim). An oversized name is often
#: why the event was refused, so it is cut here, or the quarantine item itself would not fit.
MAX_NAME_CHARS = 1_024


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    # A lone surrogate (refused at ingest) cannot be stored by DynamoDB: it becomes U+FFFD in the filter copy.
    return value[:MAX_NAME_CHARS].encode("utf-8", "replace").decode("utf-8", "replace")


def _part(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name)
    return value if isinstance(value, dict) else {}


def identify(raw: Any) -> dict[str, str]:
    """The names an operator filters on, read leniently from an event that may be invalid."""
    if not isinstance(raw, dict):
        return {}
    job, dataset, run = (_part(raw, name) for name in ("job", "dataset", "run"))
    fields = {
        "namespace": _text(job.get("namespace")) or _text(dataset.get("namespace")),
        "job": _text(job.get("name")),
        "dataset": _text(dataset.get("name")),
        "runId": _text(run.get("runId")),
        "eventType": _text(raw.get("eventType")),
        "eventTime": _text(raw.get("eventTime")),
        "producer": _text(raw.get("producer")),
    }
    return {k: v for k, v in fields.items() if v is not None}


@dataclass
class Quarantine:
    store: QuarantineStore
    retention_days: int
    daily_cap: int

    def keep(
        self,
        body: bytes,
        raw: Any,
        *,
        principal: Principal,
        reason: str,
        message: str | None,
        errors: list[dict[str, str]],
        now: float,
    ) -> tuple[Kept, str | None]:
        """Store one rejected event; never raises. Returns what happened and, on failure, the error's type."""
        try:
            moment = datetime.fromtimestamp(now, UTC)
            day = day_of(moment)
            expires_at = int(now) + self.retention_days * 86_400
            if not self.store.take_slot(principal.token_id, day, self.daily_cap, int(now) + 2 * 86_400):
                return "dropped", None
            received = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            digest = hashlib.sha256(body).hexdigest()[:32]
            item: dict[str, Any] = {
                "pk": day_pk(day),
                "sk": f"{received}#{digest}",
                "kind": KIND,
                "digest": digest,
                "reason": reason,
                "tokenId": principal.token_id,
                "connections": sorted(principal.connections),  # what the token could write (docs/auth.md)
                "receivedAt": received,
                "size": len(body),
                "expiresAt": expires_at,
                **identify(raw),
            }
            if message:
                item["detail"] = message
            if errors:
                item["errors"] = errors[:50]
            self.store.put(item, body)
            return "kept", None
        except Exception as exc:  # best effort: the answer to the producer must not depend on it
            return "failed", type(exc).__name__
