"""Who is calling: the context that the authorizer hands to the ingest and read functions.

The authorizer answers API Gateway with a simple response whose ``context`` holds only flat string values,
so the writable connections and the scopes travel as JSON array strings. This module is the one place that
writes and reads that context, so the functions cannot drift apart.

Scopes (docs/auth.md): ``write`` (send events into the token's connections) and ``read`` (the read API, over the
whole deployment). A context without ``scopes`` (a token created before scopes existed) means ``write`` only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from lineage_intake.errors import Forbidden

Scope = Literal["read", "write"]
SCOPES: tuple[Scope, ...] = ("read", "write")
#: What a token without a ``scopes`` attribute may do: what every token could do before scopes existed.
DEFAULT_SCOPES: frozenset[str] = frozenset({"write"})


@dataclass(frozen=True)
class Principal:
    token_id: str
    connections: frozenset[str]
    scopes: frozenset[str] = DEFAULT_SCOPES

    def to_context(self) -> dict[str, str]:
        return {
            "tokenId": self.token_id,
            "connections": json.dumps(sorted(self.connections)),
            "scopes": json.dumps(sorted(self.scopes)),
        }

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
        raw_scopes = context.get("scopes")
        if raw_scopes is None:
            scopes: Any = sorted(DEFAULT_SCOPES)
        else:
            try:
                scopes = json.loads(raw_scopes) if isinstance(raw_scopes, str) else raw_scopes
            except ValueError:
                scopes = None
            if not isinstance(scopes, list):
                raise Forbidden("the authorizer context is malformed; the request is refused")
        return cls(
            token_id=token_id,
            connections=frozenset(n for n in names if isinstance(n, str)),
            scopes=frozenset(s for s in scopes if s in SCOPES),
        )

    def check_scope(self, scope: Scope) -> None:
        """403 naming the missing scope (fail closed: an unknown or absent scope grants nothing)."""
        if scope not in self.scopes:
            raise Forbidden(
                f"this token lacks the {scope!r} scope (it has: {', '.join(sorted(self.scopes)) or 'none'}); "
                f"create a token with `lineage-intake tokens create --scope {scope}`"
            )

    def check_can_write(self, namespace: str | None) -> None:
        """A job namespace must be one of the token's connections.

        Events without a job namespace (DatasetEvents) may be written by any token that is scoped to at
        least one connection.
        """
        self.check_scope("write")
        if namespace is None:
            if not self.connections:
                raise Forbidden("this token is not scoped to any connection and cannot register datasets")
            return
        if namespace not in self.connections:
            raise Forbidden(
                f"namespace {namespace!r} is not writable with this token: the token may write to "
                f"{sorted(self.connections)}; create a token for connection {namespace!r} or fix job.namespace"
            )
