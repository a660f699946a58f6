"""The operator's use cases on connections and tokens: what the ``lineage-intake`` CLI does (docs/auth.md).

A connection that active tokens still reference is not deleted unless asked to detach it from them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from lineage_intake.errors import DuplicateItem, InvalidArgument, NotFound
from lineage_intake.principal import DEFAULT_SCOPES, SCOPES
from lineage_intake.store.auth import Connection, ConnectionStore, TokenStore
from lineage_intake.tokens import IssuedToken, TokenRecord, is_token_id, new_token, utc_now

MAX_CONNECTION_NAME = 512
MAX_DESCRIPTION = 1024
MAX_ADMIN_NAME = 256
MAX_TOKEN_NAME = 200
MAX_EXPIRY_DAYS = 3650
TOKEN_ID_ATTEMPTS = 3

Clock = Callable[[], datetime]


# ---------------------------------------------------------------------- validation
def _check_text(kind: str, value: str, max_length: int) -> str:
    if not value or not value.strip():
        raise InvalidArgument(f"{kind} must not be empty")
    if value != value.strip():
        raise InvalidArgument(f"{kind} {value!r} must not start or end with whitespace")
    if len(value) > max_length:
        raise InvalidArgument(f"{kind} is {len(value)} characters long; the maximum is {max_length}")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise InvalidArgument(f"{kind} {value!r} contains control characters")
    return value


def validate_connection_name(name: str) -> str:
    """A connection name is what ``job.namespace`` must equal, so it is kept exactly as given (no case folding).

    OpenLineage namespaces are often URIs (``postgres://db:5432``, ``s3://bucket``), so ``:`` and ``/`` are
    allowed; empty names, surrounding whitespace and control characters are not.
    """
    return _check_text("connection name", name, MAX_CONNECTION_NAME)


# ---------------------------------------------------------------------- operator use cases
@dataclass(frozen=True)
class DeletedConnection:
    connection: Connection
    detached_tokens: tuple[str, ...] = ()


@dataclass
class Admin:
    """What an operator does with the CLI. Validation errors are ``InvalidArgument``; missing items ``NotFound``."""

    connections: ConnectionStore
    tokens: TokenStore
    clock: Clock = utc_now

    # -------------------------------------------------------------- connections
    def create_connection(self, name: str, description: str | None = None, admins: Iterable[str] = ()) -> Connection:
        validate_connection_name(name)
        if description is not None:
            description = description.strip() or None
            if description and len(description) > MAX_DESCRIPTION:
                raise InvalidArgument(f"the description is over {MAX_DESCRIPTION} characters")
        unique_admins = tuple(dict.fromkeys(_check_text("admin", a, MAX_ADMIN_NAME) for a in admins))
        conn = Connection(name=name, created_at=self.clock(), description=description, admins=unique_admins)
        self.connections.create(conn)
        return conn

    def list_connections(self) -> list[Connection]:
        return self.connections.list()

    def delete_connection(self, name: str, detach_tokens: bool = False) -> DeletedConnection:
        """Delete a connection.

        Ingest trusts the scope in the token, not the Connections table, so deleting a connection that an
        active token still lists would leave that token able to write into the namespace. Hence:

        - without ``detach_tokens``, the delete is refused while any active (not revoked, not expired) token
          lists the connection, and the error names those tokens;
        - with ``detach_tokens``, the connection is first removed from the scope of every token that lists
          it (active or not); a token left without connections is denied by the authorizer.
        """
        if self.connections.get(name) is None:
            raise NotFound(f"connection {name!r} does not exist")
        now = self.clock()
        referencing = [r for r in self.tokens.list() if name in r.connections]
        active = [r.token_id for r in referencing if r.status(now) == "active"]
        if active and not detach_tokens:
            raise InvalidArgument(
                f"connection {name!r} is still used by {len(active)} active token(s): {', '.join(active)}; "
                "revoke them first, or pass --detach-tokens to remove the connection from their scope"
            )
        detached: list[str] = []
        if detach_tokens:
            for record in referencing:
                try:
                    self.tokens.remove_connection(record.token_id, name)
                except NotFound:
                    continue  # deleted meanwhile
                detached.append(record.token_id)
        deleted = self.connections.delete(name)
        return DeletedConnection(connection=deleted, detached_tokens=tuple(detached))

    # -------------------------------------------------------------- tokens
    def create_token(
        self,
        connections: Iterable[str],
        name: str | None = None,
        expires_in_days: int | None = None,
        scopes: Iterable[str] | None = None,
    ) -> IssuedToken:
        """Issue a token for existing connections. The token is in the result and nowhere else.

        ``scopes``: ``write`` (the default, what tokens always meant) and/or ``read`` (the read API, deployment
        wide). A read-only token needs no connection; a write token needs at least one.
        """
        granted = frozenset(scopes) if scopes else DEFAULT_SCOPES
        unknown = sorted(granted - set(SCOPES))
        if unknown:
            raise InvalidArgument(f"unknown scope(s) {', '.join(unknown)}; a scope is one of {', '.join(SCOPES)}")
        scope = frozenset(connections)
        if not scope and "write" in granted:
            raise InvalidArgument("a token with the write scope needs at least one --connection")
        missing = sorted(c for c in scope if self.connections.get(c) is None)
        if missing:
            raise InvalidArgument(
                f"connection(s) {', '.join(repr(m) for m in missing)} do not exist; "
                "create them first with `lineage-intake connections create NAME`"
            )
        if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
            raise InvalidArgument(f"--expires-in-days must be between 1 and {MAX_EXPIRY_DAYS}")
        default_label = ", ".join(sorted(scope)) or "read"
        label = _check_text("token name", name, MAX_TOKEN_NAME) if name is not None else default_label
        now = self.clock()
        expires_at = now + timedelta(days=expires_in_days) if expires_in_days else None
        for attempt in range(TOKEN_ID_ATTEMPTS):
            issued = new_token(scope, label[:MAX_TOKEN_NAME], now, expires_at, granted)
            try:
                self.tokens.put_new(issued.record)
            except DuplicateItem:  # a 64-bit id collision: draw again
                if attempt == TOKEN_ID_ATTEMPTS - 1:
                    raise
                continue
            return issued
        raise AssertionError("unreachable")

    def list_tokens(self, connection: str | None = None) -> list[TokenRecord]:
        records = self.tokens.list()
        return [r for r in records if connection is None or connection in r.connections]

    def change_scope(self, token_id: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> TokenRecord:
        """Add connections to (they must exist) and remove connections from a token's scope."""
        if not is_token_id(token_id):
            raise InvalidArgument("TOKEN_ID must be the 16 hex characters shown by `lineage-intake tokens list`")
        added, removed = sorted(set(add)), sorted(set(remove))
        if not added and not removed:
            raise InvalidArgument("give --add NAME or --remove NAME")
        missing = [c for c in added if self.connections.get(c) is None]
        if missing:
            raise InvalidArgument(
                f"connection(s) {', '.join(repr(m) for m in missing)} do not exist; "
                "create them first with `lineage-intake connections create NAME`"
            )
        record = self.tokens.get(token_id)
        if record is None:
            raise NotFound(f"token {token_id} does not exist")
        for name in added:
            record = self.tokens.add_connection(token_id, name)
        for name in removed:
            record = self.tokens.remove_connection(token_id, name)
        return record

    def revoke_token(self, token_id: str) -> TokenRecord:
        if not is_token_id(token_id):
            raise InvalidArgument("TOKEN_ID must be the 16 hex characters shown by `lineage-intake tokens list`")
        return self.tokens.revoke(token_id, self.clock())
