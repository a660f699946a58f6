"""The Tokens and Connections tables, the operator's use cases on them, and the authorizer's use case.

- ``ConnectionStore`` and ``TokenStore`` are the repositories. They take a boto3 low-level DynamoDB client
  (passed in, so they run on moto and on the local stack) and translate DynamoDB errors into domain errors:
  a failed condition into ``DuplicateItem`` (create) or ``NotFound`` (update/delete of a missing item),
  throttling, 5xx and connection failures into ``StorageUnavailable``.
- ``Admin`` holds what the ``lineage-intake`` CLI does: create/list/delete connections, create/list/revoke
  tokens. A connection that active tokens still reference is not deleted unless asked to detach it from
  them (see ``Admin.delete_connection``).
- ``TokenAuthorizer`` is what the authorizer function does: one GetItem and one constant-time compare,
  failing closed on any error. It only reads, unless last-used recording is switched on (off by default:
  the authorizer's IAM policy is read-only).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lineage_intake.errors import DuplicateItem, InvalidArgument, NotFound
from lineage_intake.store.events import translate_error
from lineage_intake.tokens import (
    Decision,
    IssuedToken,
    TokenRecord,
    authorization_header,
    format_time,
    is_token_id,
    new_token,
    parse_authorization_header,
    parse_time,
    utc_now,
    verify,
)

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


# ---------------------------------------------------------------------- records
@dataclass(frozen=True)
class Connection:
    name: str
    created_at: datetime
    description: str | None = None
    admins: tuple[str, ...] = ()

    def public_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "description": self.description,
            "admins": list(self.admins),
            "createdAt": format_time(self.created_at),
        }


def _connection_item(conn: Connection) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": {"S": conn.name},
        "admins": {"L": [{"S": a} for a in conn.admins]},
        "createdAt": {"S": format_time(conn.created_at)},
    }
    if conn.description:
        item["description"] = {"S": conn.description}
    return item


def _connection_from_item(item: Mapping[str, Any]) -> Connection:
    return Connection(
        name=item["name"]["S"],
        created_at=parse_time(item["createdAt"]["S"]),
        description=item["description"]["S"] if "description" in item else None,
        admins=tuple(a["S"] for a in item.get("admins", {}).get("L", [])),
    )


def _token_item(record: TokenRecord) -> dict[str, Any]:
    if not record.connections:
        raise InvalidArgument("a token must be scoped to at least one connection")
    item: dict[str, Any] = {
        "tokenId": {"S": record.token_id},
        "name": {"S": record.name},
        "secretHash": {"S": record.secret_hash},
        "hashVersion": {"S": record.hash_version},
        "connections": {"SS": sorted(record.connections)},
        "createdAt": {"S": format_time(record.created_at)},
        "revoked": {"BOOL": record.revoked},
    }
    for key, moment in (
        ("expiresAt", record.expires_at),
        ("revokedAt", record.revoked_at),
        ("lastUsedAt", record.last_used_at),
    ):
        if moment is not None:
            item[key] = {"S": format_time(moment)}
    return item


def _optional_time(item: Mapping[str, Any], key: str) -> datetime | None:
    return parse_time(item[key]["S"]) if key in item else None


def _token_from_item(item: Mapping[str, Any]) -> TokenRecord:
    return TokenRecord(
        token_id=item["tokenId"]["S"],
        name=item.get("name", {}).get("S", ""),
        secret_hash=item["secretHash"]["S"],
        hash_version=item.get("hashVersion", {}).get("S", ""),
        # A String Set cannot be empty: detaching a token's last connection removes the attribute.
        connections=frozenset(item.get("connections", {}).get("SS", [])),
        created_at=parse_time(item["createdAt"]["S"]),
        expires_at=_optional_time(item, "expiresAt"),
        revoked=bool(item.get("revoked", {}).get("BOOL", False)),
        revoked_at=_optional_time(item, "revokedAt"),
        last_used_at=_optional_time(item, "lastUsedAt"),
    )


def _is_condition_failure(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") == (
        "ConditionalCheckFailedException"
    )


def _scan(client: Any, table: str) -> Iterator[dict[str, Any]]:
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        try:
            page = client.scan(**kwargs)
        except Exception as exc:
            raise translate_error(exc) from exc
        yield from page.get("Items", [])
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        kwargs["ExclusiveStartKey"] = last


# ---------------------------------------------------------------------- repositories
@dataclass
class ConnectionStore:
    """Repository of the Connections table (hash key ``name``)."""

    dynamodb: Any
    table: str

    def create(self, conn: Connection) -> None:
        """Conditional put: a name is unique. Raises ``DuplicateItem`` when the connection exists."""
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item=_connection_item(conn),
                ConditionExpression="attribute_not_exists(#n)",
                ExpressionAttributeNames={"#n": "name"},
            )
        except Exception as exc:
            raise translate_error(exc, duplicate_message=f"connection {conn.name!r} already exists") from exc

    def get(self, name: str) -> Connection | None:
        try:
            answer = self.dynamodb.get_item(TableName=self.table, Key={"name": {"S": name}}, ConsistentRead=True)
        except Exception as exc:
            raise translate_error(exc) from exc
        item = answer.get("Item")
        return _connection_from_item(item) if item else None

    def list(self) -> list[Connection]:
        return sorted((_connection_from_item(i) for i in _scan(self.dynamodb, self.table)), key=lambda c: c.name)

    def delete(self, name: str) -> Connection:
        """Delete and return the connection. Raises ``NotFound`` when there is none."""
        try:
            answer = self.dynamodb.delete_item(
                TableName=self.table,
                Key={"name": {"S": name}},
                ConditionExpression="attribute_exists(#n)",
                ExpressionAttributeNames={"#n": "name"},
                ReturnValues="ALL_OLD",
            )
        except Exception as exc:
            if _is_condition_failure(exc):
                raise NotFound(f"connection {name!r} does not exist") from exc
            raise translate_error(exc) from exc
        return _connection_from_item(answer["Attributes"])


@dataclass
class TokenStore:
    """Repository of the Tokens table (hash key ``tokenId``). It never sees a token, only hashes."""

    dynamodb: Any
    table: str

    def get(self, token_id: str) -> TokenRecord | None:
        """One strongly consistent GetItem, so that a revocation is seen by the next uncached request."""
        try:
            answer = self.dynamodb.get_item(TableName=self.table, Key={"tokenId": {"S": token_id}}, ConsistentRead=True)
        except Exception as exc:
            raise translate_error(exc) from exc
        item = answer.get("Item")
        return _token_from_item(item) if item else None

    def put_new(self, record: TokenRecord) -> None:
        """Conditional put. Raises ``DuplicateItem`` when the token id is taken."""
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item=_token_item(record),
                ConditionExpression="attribute_not_exists(tokenId)",
            )
        except Exception as exc:
            raise translate_error(exc, duplicate_message=f"token id {record.token_id} is taken") from exc

    def list(self) -> list[TokenRecord]:
        records = (_token_from_item(i) for i in _scan(self.dynamodb, self.table))
        return sorted(records, key=lambda r: (r.created_at, r.token_id))

    def revoke(self, token_id: str, now: datetime) -> TokenRecord:
        """Mark revoked (idempotent: a second revoke keeps the first time). Raises ``NotFound``."""
        return self._update(
            token_id,
            "SET revoked = :true, revokedAt = if_not_exists(revokedAt, :now)",
            {":true": {"BOOL": True}, ":now": {"S": format_time(now)}},
        )

    def remove_connection(self, token_id: str, name: str) -> TokenRecord:
        """Take one connection out of a token's scope (a token left with none is denied by the authorizer)."""
        return self._update(token_id, "DELETE connections :c", {":c": {"SS": [name]}})

    def touch_last_used(self, token_id: str, now: datetime, min_interval: timedelta) -> bool:
        """Best-effort last-used time, written at most once per ``min_interval`` per token.

        Returns False when another call recorded a recent use first (or the token is gone). Other errors
        are raised (translated); the caller decides to ignore them.
        """
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"tokenId": {"S": token_id}},
                UpdateExpression="SET lastUsedAt = :now",
                ConditionExpression=(
                    "attribute_exists(tokenId) AND (attribute_not_exists(lastUsedAt) OR lastUsedAt < :threshold)"
                ),
                ExpressionAttributeValues={
                    ":now": {"S": format_time(now)},
                    ":threshold": {"S": format_time(now - min_interval)},
                },
            )
        except Exception as exc:
            if _is_condition_failure(exc):
                return False
            raise translate_error(exc) from exc
        return True

    def _update(self, token_id: str, expression: str, values: dict[str, Any]) -> TokenRecord:
        try:
            answer = self.dynamodb.update_item(
                TableName=self.table,
                Key={"tokenId": {"S": token_id}},
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(tokenId)",
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except Exception as exc:
            if _is_condition_failure(exc):
                raise NotFound(f"token {token_id} does not exist") from exc
            raise translate_error(exc) from exc
        return _token_from_item(answer["Attributes"])


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
        self, connections: Iterable[str], name: str | None = None, expires_in_days: int | None = None
    ) -> IssuedToken:
        """Issue a token for existing connections. The token is in the result and nowhere else."""
        scope = frozenset(connections)
        if not scope:
            raise InvalidArgument("a token needs at least one --connection")
        missing = sorted(c for c in scope if self.connections.get(c) is None)
        if missing:
            raise InvalidArgument(
                f"connection(s) {', '.join(repr(m) for m in missing)} do not exist; "
                "create them first with `lineage-intake connections create NAME`"
            )
        if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
            raise InvalidArgument(f"--expires-in-days must be between 1 and {MAX_EXPIRY_DAYS}")
        label = _check_text("token name", name, MAX_TOKEN_NAME) if name is not None else ", ".join(sorted(scope))
        now = self.clock()
        expires_at = now + timedelta(days=expires_in_days) if expires_in_days else None
        for attempt in range(TOKEN_ID_ATTEMPTS):
            issued = new_token(scope, label[:MAX_TOKEN_NAME], now, expires_at)
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

    def revoke_token(self, token_id: str) -> TokenRecord:
        if not is_token_id(token_id):
            raise InvalidArgument("TOKEN_ID must be the 16 hex characters shown by `lineage-intake tokens list`")
        return self.tokens.revoke(token_id, self.clock())


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
