"""Replay quarantined events through the same ingest code, with the original token's *current* scope.

Replay is how an operator recovers events refused by a misconfiguration (docs/operations.md#replay):

- each event is re-ingested by ``IngestService.store_event`` (a service call, not HTTP), so validation, keys,
  dedupe and storage are exactly ingest's; replaying twice stores each event once (the second is ``duplicate``);
- the namespace is checked against the connections of the token that sent the event, as the Tokens table has
  them *now*: after ``connections create`` and a scope change the event passes, and replay can never bypass
  authorisation. A revoked, expired or deleted token replays nothing;
- ``as_namespace`` rewrites ``job.namespace`` first (the operator vouches that the events belong there); the
  token must still be allowed to write that namespace;
- a replay never quarantines again; the quarantine item records the last replay's result.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lineage_intake.principal import Principal
from lineage_intake.service.ingest import IngestService
from lineage_intake.store.auth import TokenStore
from lineage_intake.store.quarantine import QuarantineStore


@dataclass
class Replayed:
    """The fate of one quarantined event on replay."""

    received_at: str
    token_id: str
    namespace: str | None
    job: str | None
    status: str  # accepted | duplicate | rejected
    reason: str | None = None
    message: str | None = None
    event_id: str | None = None
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "receivedAt": self.received_at,
            "tokenId": self.token_id,
            "namespace": self.namespace,
            "job": self.job,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "eventId": self.event_id,
            "errors": self.errors,
        }


def rewrite_namespace(raw: Any, namespace: str) -> Any:
    """The event with ``job.namespace`` replaced (DatasetEvents, which have no job, are left alone)."""
    if isinstance(raw, dict) and isinstance(raw.get("job"), dict):
        return {**raw, "job": {**raw["job"], "namespace": namespace}}
    return raw


@dataclass
class Replayer:
    ingest: IngestService
    quarantine: QuarantineStore
    tokens: TokenStore
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def replay(self, items: Iterable[Mapping[str, Any]], as_namespace: str | None = None) -> list[Replayed]:
        principals: dict[str, Principal | str] = {}
        results = []
        for item in items:
            results.append(self._one(item, as_namespace, principals))
        return results

    def _principal(self, token_id: str, cache: dict[str, Principal | str]) -> Principal | str:
        """The token's current scope, or why it cannot replay."""
        if token_id not in cache:
            record = self.tokens.get(token_id)
            if record is None:
                cache[token_id] = "the token that sent it no longer exists"
            elif (status := record.status(self.now())) != "active":
                cache[token_id] = f"the token that sent it is {status}"
            else:
                cache[token_id] = Principal(token_id=token_id, connections=record.connections)
        return cache[token_id]

    def _one(self, item: Mapping[str, Any], as_namespace: str | None, cache: dict[str, Principal | str]) -> Replayed:
        token_id = str(item.get("tokenId"))
        raw = json.loads(self.quarantine.body(item))
        if as_namespace:
            raw = rewrite_namespace(raw, as_namespace)
        job: dict[str, Any] = {}
        if isinstance(raw, dict) and isinstance(raw.get("job"), dict):
            job = raw["job"]
        result = Replayed(
            received_at=str(item.get("receivedAt")),
            token_id=token_id,
            namespace=job.get("namespace") if as_namespace else item.get("namespace"),
            job=item.get("job"),
            status="rejected",
        )
        principal = self._principal(token_id, cache)
        if isinstance(principal, str):
            result.reason, result.message = "token_inactive", principal
        else:
            outcome = self.ingest.store_event(raw, principal, quarantine=False)
            result.status, result.reason, result.message = outcome.status, outcome.reason, outcome.message
            result.event_id = outcome.event_id
            result.errors = [e.as_dict() for e in outcome.errors]
            if outcome.retriable:  # storage down: leave the item as it was, the operator runs replay again
                return result
            if outcome.status == "duplicate" and item.get("replayStatus") == "accepted":
                return result  # a second replay: the item keeps the replay that stored the event
        self.quarantine.mark_replayed(
            str(item["pk"]), str(item["sk"]), result.status, self.now().strftime("%Y-%m-%dT%H:%M:%SZ"), result.event_id
        )
        return result
