"""Who is calling: the context that the authorizer hands to the ingest function.

The authorizer answers API Gateway with a simple response whose ``context`` holds only flat string values,
so the writable connections travel as a JSON array string. This module is the one place that writes
and reads that context, so the two functions cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lineage_intake.errors import Forbidden


@dataclass(frozen=True)
class Principal:
    token_id: str
    connections: frozenset[str]

    def to_context(self) -> dict[str, str]:
        return {"tokenId": self.token_id, "connections": json.dumps(sorted(self.connections))}

    @classmethod
    def from_context(cls, context: Mapping[str, Any] | None) -> Principal:
        """Read the authorizer context. Anything missing or malformed fails closed (403)."""
        if not context:
            raise Forbidden("the request carries no authorizer context; it cannot be attributed to a token")
        token_id = context.get("tokenId")
        raw = context.get("connections")
        try:
            names = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            names = None
        if not isinstance(token_id, str) or not token_id or not isinstance(names, list):
            raise Forbidden("the authorizer context is malformed; the request is refused")
        return cls(token_id=token_id, connections=frozenset(n for n in names if isinstance(n, str)))

    def check_can_write(self, namespace: str | None) -> None:
        """A job namespace must be one of the token's connections.

        Events without a job namespace (DatasetEvents) may be written by any token that is scoped to at
        least one connection.
        """
        if namespace is None:
            if not self.connections:
                raise Forbidden("this token is not scoped to any connection and cannot register datasets")
            return
        if namespace not in self.connections:
            raise Forbidden(
                f"namespace {namespace!r} is not writable with this token: the token may write to "
                f"{sorted(self.connections)}; create a token for connection {namespace!r} or fix job.namespace"
            )
