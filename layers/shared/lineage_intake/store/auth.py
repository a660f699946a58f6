"""The Tokens and Connections tables: their records and repositories, nothing else.

The repositories take a low-level DynamoDB client (passed in) and raise domain errors (``store.dynamo``):
``DuplicateItem`` on create, ``NotFound`` on update or delete of a missing item. Use cases: ``service.admin``
(the CLI) and ``service.authorizer``; the token format and hashing: ``tokens`` and docs/auth.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from lineage_intake.errors import DuplicateItem, InvalidArgument, NotFound
from lineage_intake.principal import DEFAULT_SCOPES
from lineage_intake.store.dynamo import dynamo_errors, paginate
from lineage_intake.tokens import TokenRecord, format_time, parse_time


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
    if not record.connections and "write" in record.scopes:
        raise InvalidArgument("a token with the write scope must be scoped to at least one connection")
    if not record.scopes:
        raise InvalidArgument("a token needs at least one scope")
    item: dict[str, Any] = {
        "tokenId": {"S": record.token_id},
        "name": {"S": record.name},
        "secretHash": {"S": record.secret_hash},
        "hashVersion": {"S": record.hash_version},
        "scopes": {"SS": sorted(record.scopes)},
        "createdAt": {"S": format_time(record.created_at)},
        "revoked": {"BOOL": record.revoked},
    }
    if record.connections:  # a String Set cannot be empty: a read-only token may have none
        item["connections"] = {"SS": sorted(record.connections)}
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
        # Tokens stored before scopes existed have no attribute: they keep their meaning (write only).
        scopes=frozenset(item["scopes"]["SS"]) if "scopes" in item else DEFAULT_SCOPES,
        created_at=parse_time(item["createdAt"]["S"]),
        expires_at=_optional_time(item, "expiresAt"),
        revoked=bool(item.get("revoked", {}).get("BOOL", False)),
        revoked_at=_optional_time(item, "revokedAt"),
        last_used_at=_optional_time(item, "lastUsedAt"),
    )


def _scan(client: Any, table: str) -> Iterator[dict[str, Any]]:
    return paginate(client, "scan", TableName=table, ConsistentRead=True)


# ---------------------------------------------------------------------- repositories
@dataclass
class ConnectionStore:
    """Repository of the Connections table (hash key ``name``)."""

    dynamodb: Any
    table: str

    def create(self, conn: Connection) -> None:
        """Conditional put: a name is unique. Raises ``DuplicateItem`` when the connection exists."""
        with dynamo_errors(duplicate_message=f"connection {conn.name!r} already exists"):
            self.dynamodb.put_item(
                TableName=self.table,
                Item=_connection_item(conn),
                ConditionExpression="attribute_not_exists(#n)",
                ExpressionAttributeNames={"#n": "name"},
            )

    def get(self, name: str) -> Connection | None:
        with dynamo_errors():
            answer = self.dynamodb.get_item(TableName=self.table, Key={"name": {"S": name}}, ConsistentRead=True)
        item = answer.get("Item")
        return _connection_from_item(item) if item else None

    def list(self) -> list[Connection]:
        return sorted((_connection_from_item(i) for i in _scan(self.dynamodb, self.table)), key=lambda c: c.name)

    def delete(self, name: str) -> Connection:
        """Delete and return the connection. Raises ``NotFound`` when there is none."""
        try:
            with dynamo_errors():
                answer = self.dynamodb.delete_item(
                    TableName=self.table,
                    Key={"name": {"S": name}},
                    ConditionExpression="attribute_exists(#n)",
                    ExpressionAttributeNames={"#n": "name"},
                    ReturnValues="ALL_OLD",
                )
        except DuplicateItem as exc:  # the condition failed
            raise NotFound(f"connection {name!r} does not exist") from exc
        return _connection_from_item(answer["Attributes"])


@dataclass
class TokenStore:
    """Repository of the Tokens table (hash key ``tokenId``). It never sees a token, only hashes."""

    dynamodb: Any
    table: str

    def get(self, token_id: str) -> TokenRecord | None:
        """One strongly consistent GetItem, so that a revocation is seen by the next uncached request."""
        with dynamo_errors():
            answer = self.dynamodb.get_item(TableName=self.table, Key={"tokenId": {"S": token_id}}, ConsistentRead=True)
        item = answer.get("Item")
        return _token_from_item(item) if item else None

    def put_new(self, record: TokenRecord) -> None:
        """Conditional put. Raises ``DuplicateItem`` when the token id is taken."""
        with dynamo_errors(duplicate_message=f"token id {record.token_id} is taken"):
            self.dynamodb.put_item(
                TableName=self.table,
                Item=_token_item(record),
                ConditionExpression="attribute_not_exists(tokenId)",
            )

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

    def add_connection(self, token_id: str, name: str) -> TokenRecord:
        """Widen a token's scope by one connection (the authorizer's cache may keep the old scope for its TTL)."""
        return self._update(token_id, "ADD connections :c", {":c": {"SS": [name]}})

    def remove_connection(self, token_id: str, name: str) -> TokenRecord:
        """Take one connection out of a token's scope (a token left with none is denied by the authorizer)."""
        return self._update(token_id, "DELETE connections :c", {":c": {"SS": [name]}})

    def touch_last_used(self, token_id: str, now: datetime, min_interval: timedelta) -> bool:
        """Best-effort last-used time, written at most once per ``min_interval`` per token.

        Returns False when another call recorded a recent use first (or the token is gone). Other errors
        are raised (translated); the caller decides to ignore them.
        """
        try:
            with dynamo_errors():
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
        except DuplicateItem:  # the condition failed
            return False
        return True

    def _update(self, token_id: str, expression: str, values: dict[str, Any]) -> TokenRecord:
        try:
            with dynamo_errors():
                answer = self.dynamodb.update_item(
                    TableName=self.table,
                    Key={"tokenId": {"S": token_id}},
                    UpdateExpression=expression,
                    ConditionExpression="attribute_exists(tokenId)",
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                )
        except DuplicateItem as exc:  # the condition failed
            raise NotFound(f"token {token_id} does not exist") from exc
        return _token_from_item(answer["Attributes"])
