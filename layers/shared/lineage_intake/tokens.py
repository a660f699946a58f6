"""API tokens: format, generation, hashing, Authorization header parsing and verification.

Everything here is pure (no AWS): the store is passed in as a lookup function, so the rules are unit-tested
without DynamoDB and the authorizer is one GetItem plus one constant-time compare.

Token format: ``li_<tokenId>_<secret>``

- ``tokenId``: 16 lowercase hex characters (64 random bits). It is not a secret: it is the table key, it is
  shown by ``tokens list`` and logged by the authorizer. Hex never contains ``_``, so parsing is unambiguous.
- ``secret``: 32 bytes (256 bits) from ``secrets`` (the OS CSPRNG), base64url without padding (43 characters).
- Stored: ``sha256("lineage-intake/token/v1" NUL tokenId NUL secret)`` in hex. The token id is bound into the
  hash so that a hash copied onto another item does not verify. A fast hash is enough: the secret has 256
  bits of entropy, so there is nothing to brute-force (a slow KDF only helps low-entropy passwords).

Nothing in this module puts a token or a secret into an exception message or a ``repr``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from lineage_intake.principal import DEFAULT_SCOPES, Principal

TOKEN_PREFIX = "li"
TOKEN_ID_BYTES = 8
SECRET_BYTES = 32
HASH_VERSION = "sha256-v1"
_HASH_CONTEXT = b"lineage-intake/token/v1"

#: Longer Authorization headers are refused before any other work (a token is 63 characters).
MAX_HEADER_LENGTH = 512

_TOKEN_ID_RE = re.compile(r"[0-9a-f]{16}")
_TOKEN_RE = re.compile(r"li_(?P<token_id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{43})")

DenyReason = Literal[
    "missing_header",
    "header_too_long",
    "not_ascii",
    "not_bearer",
    "malformed_token",
    "unknown_token",
    "wrong_secret",
    "revoked",
    "expired",
    "no_connections",
    "error",
]


# ---------------------------------------------------------------------- time
def format_time(moment: datetime) -> str:
    """UTC, second precision, ``Z`` suffix: fixed width, so strings sort (and compare in DynamoDB) by time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------- format
@dataclass(frozen=True)
class TokenParts:
    """A parsed token. The secret is kept out of ``repr`` so that it cannot leak through a log line."""

    token_id: str
    secret: str = field(repr=False)


class MalformedCredentials(ValueError):
    """The Authorization header or token is not acceptable. The message never contains the value."""

    def __init__(self, reason: DenyReason, message: str) -> None:
        super().__init__(message)
        self.reason: DenyReason = reason


def generate_token_id() -> str:
    return secrets.token_hex(TOKEN_ID_BYTES)


def generate_secret() -> str:
    """256 bits from the OS CSPRNG, base64url without padding (43 characters)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def format_token(token_id: str, secret: str) -> str:
    return f"{TOKEN_PREFIX}_{token_id}_{secret}"


def is_token_id(value: str) -> bool:
    return _TOKEN_ID_RE.fullmatch(value) is not None


def looks_like_token(value: str) -> bool:
    return _TOKEN_RE.fullmatch(value) is not None


def hash_secret(token_id: str, secret: str) -> str:
    digest = hashlib.sha256()
    digest.update(_HASH_CONTEXT + b"\x00" + token_id.encode("ascii") + b"\x00" + secret.encode("ascii"))
    return digest.hexdigest()


def parse_token(token: str) -> TokenParts:
    match = _TOKEN_RE.fullmatch(token)
    if match is None:
        raise MalformedCredentials("malformed_token", "the bearer token is not a lineage-intake token")
    return TokenParts(token_id=match["token_id"], secret=match["secret"])


def authorization_header(headers: Mapping[str, object] | None) -> str | None:
    """The Authorization header, looked up case-insensitively. A non-string value counts as missing."""
    for name, value in (headers or {}).items():
        if isinstance(name, str) and name.lower() == "authorization":
            return value if isinstance(value, str) else None
    return None


def parse_authorization_header(value: str | None) -> TokenParts:
    """``Bearer <token>`` (scheme case-insensitive, RFC 6750) to its parts, or ``MalformedCredentials``.

    Cheap checks first: presence, length, ASCII. Only then is the value split and matched.
    """
    if value is None or not value.strip():
        raise MalformedCredentials("missing_header", "no Authorization header")
    if len(value) > MAX_HEADER_LENGTH:
        raise MalformedCredentials("header_too_long", f"the Authorization header is over {MAX_HEADER_LENGTH} chars")
    if not value.isascii():
        raise MalformedCredentials("not_ascii", "the Authorization header is not ASCII")
    scheme, _, credentials = value.strip(" \t").partition(" ")
    if scheme.lower() != "bearer":
        raise MalformedCredentials("not_bearer", "the Authorization scheme is not Bearer")
    return parse_token(credentials.strip(" "))


# ---------------------------------------------------------------------- records
@dataclass(frozen=True)
class TokenRecord:
    """What the Tokens table holds for one token: never the token, only the hash of its secret."""

    token_id: str
    name: str
    secret_hash: str = field(repr=False)
    connections: frozenset[str]
    created_at: datetime
    expires_at: datetime | None = None
    revoked: bool = False
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    hash_version: str = HASH_VERSION
    #: ``write`` and/or ``read`` (``principal.SCOPES``); records stored before scopes existed mean ``write``.
    scopes: frozenset[str] = DEFAULT_SCOPES

    def status(self, now: datetime) -> Literal["active", "revoked", "expired"]:
        if self.revoked:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def public_dict(self, now: datetime) -> dict[str, object]:
        """The fields an operator may see: everything except the hash."""
        return {
            "tokenId": self.token_id,
            "name": self.name,
            "connections": sorted(self.connections),
            "scopes": sorted(self.scopes),
            "status": self.status(now),
            "createdAt": format_time(self.created_at),
            "expiresAt": format_time(self.expires_at) if self.expires_at else None,
            "revoked": self.revoked,
            "revokedAt": format_time(self.revoked_at) if self.revoked_at else None,
            "lastUsedAt": format_time(self.last_used_at) if self.last_used_at else None,
        }


@dataclass(frozen=True)
class IssuedToken:
    """A freshly created token: the only object that ever holds the full token. Show it once."""

    record: TokenRecord
    token: str = field(repr=False)


def new_token(
    connections: frozenset[str],
    name: str,
    now: datetime,
    expires_at: datetime | None = None,
    scopes: frozenset[str] = DEFAULT_SCOPES,
) -> IssuedToken:
    """A new token from the CSPRNG with its record. There is no way to choose the secret."""
    token_id = generate_token_id()
    secret = generate_secret()
    record = TokenRecord(
        token_id=token_id,
        name=name,
        secret_hash=hash_secret(token_id, secret),
        connections=connections,
        created_at=now,
        expires_at=expires_at,
        scopes=scopes,
    )
    return IssuedToken(record=record, token=format_token(token_id, secret))


# ---------------------------------------------------------------------- verification
@dataclass(frozen=True)
class Decision:
    """The authorizer's answer. ``reason`` and ``token_id`` are safe to log; nothing else is needed."""

    allowed: bool
    reason: DenyReason | Literal["ok"]
    token_id: str | None = None
    principal: Principal | None = None
    record: TokenRecord | None = field(default=None, repr=False)
    error: str | None = None

    @classmethod
    def deny(cls, reason: DenyReason, token_id: str | None = None, error: str | None = None) -> Decision:
        return cls(allowed=False, reason=reason, token_id=token_id, error=error)


TokenLookup = Callable[[str], TokenRecord | None]


def verify(header: str | None, lookup: TokenLookup, now: datetime) -> Decision:
    """Check an Authorization header against the store: one lookup by token id, one constant-time compare.

    The secret is checked before the token's state, so that only the holder of the secret learns (from the
    logs, never from the response) that a token is revoked or expired. Exceptions from ``lookup`` propagate:
    the caller turns them into a denial.
    """
    try:
        parts = parse_authorization_header(header)
    except MalformedCredentials as exc:
        return Decision.deny(exc.reason)
    record = lookup(parts.token_id)
    if record is None:
        return Decision.deny("unknown_token", parts.token_id)
    if record.hash_version != HASH_VERSION or not hmac.compare_digest(
        hash_secret(parts.token_id, parts.secret), record.secret_hash
    ):
        return Decision.deny("wrong_secret", parts.token_id)
    state = record.status(now)
    if state == "revoked":
        return Decision.deny("revoked", parts.token_id)
    if state == "expired":
        return Decision.deny("expired", parts.token_id)
    if not record.connections and "read" not in record.scopes:
        return Decision.deny("no_connections", parts.token_id)
    return Decision(
        allowed=True,
        reason="ok",
        token_id=record.token_id,
        principal=Principal(token_id=record.token_id, connections=record.connections, scopes=record.scopes),
        record=record,
    )
