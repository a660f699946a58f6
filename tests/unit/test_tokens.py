"""Token format, generation, hashing, header parsing and verification: pure rules, no AWS."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st
from lineage_intake.errors import Forbidden
from lineage_intake.principal import Principal
from lineage_intake.service.authorizer import TokenAuthorizer
from lineage_intake.tokens import (
    HASH_VERSION,
    MAX_HEADER_LENGTH,
    MalformedCredentials,
    TokenRecord,
    format_time,
    format_token,
    hash_secret,
    new_token,
    parse_authorization_header,
    parse_time,
    verify,
)

NOW = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)
TOKEN_ID = "0123456789abcdef"
SECRET = "EXAMPLEsecretForLocalTestsOnly-notReal-0001"
TOKEN = format_token(TOKEN_ID, SECRET)


def record(**over: object) -> TokenRecord:
    fields: dict[str, object] = {
        "token_id": TOKEN_ID,
        "name": "spark jobs",
        "secret_hash": hash_secret(TOKEN_ID, SECRET),
        "connections": frozenset({"production"}),
        "created_at": NOW - timedelta(days=1),
    }
    fields.update(over)
    return TokenRecord(**fields)  # type: ignore[arg-type]


class Table:
    """An in-memory token table that records the lookups it serves."""

    def __init__(self, *records: TokenRecord) -> None:
        self.records = {r.token_id: r for r in records}
        self.lookups: list[str] = []

    def get(self, token_id: str) -> TokenRecord | None:
        self.lookups.append(token_id)
        return self.records.get(token_id)


# ---------------------------------------------------------------------- generation and format
def test_a_new_token_carries_its_id_and_a_256_bit_secret_from_the_csprng() -> None:
    issued = new_token(frozenset({"production"}), "etl", NOW)
    prefix, token_id, secret = issued.token[:3], issued.token[3:19], issued.token[20:]
    assert prefix == "li_"
    assert token_id == issued.record.token_id
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32
    parts = parse_authorization_header(f"Bearer {issued.token}")
    assert (parts.token_id, parts.secret) == (token_id, secret)


def test_every_new_token_is_different() -> None:
    tokens = {new_token(frozenset({"p"}), "n", NOW).token for _ in range(2000)}
    ids = {t[3:19] for t in tokens}
    assert len(tokens) == len(ids) == 2000


def test_the_record_holds_a_hash_of_the_secret_and_never_the_secret() -> None:
    issued = new_token(frozenset({"production"}), "etl", NOW, expires_at=NOW + timedelta(days=30))
    secret = issued.token[20:]
    stored = json.dumps({f.name: str(getattr(issued.record, f.name)) for f in dataclasses.fields(issued.record)})
    assert secret not in stored
    assert issued.record.secret_hash == hash_secret(issued.record.token_id, secret)
    assert issued.record.hash_version == HASH_VERSION


def test_reprs_never_show_a_secret() -> None:
    issued = new_token(frozenset({"production"}), "etl", NOW)
    secret = issued.token[20:]
    parts = parse_authorization_header(f"Bearer {issued.token}")
    decision = verify(f"Bearer {issued.token}", Table(issued.record).get, NOW)
    for shown in (repr(issued), repr(parts), repr(issued.record), repr(decision)):
        assert secret not in shown
        assert issued.record.secret_hash not in shown


def test_the_hash_is_bound_to_the_token_id() -> None:
    assert hash_secret(TOKEN_ID, SECRET) != hash_secret("fedcba9876543210", SECRET)
    assert hash_secret(TOKEN_ID, SECRET) == hash_secret(TOKEN_ID, SECRET)
    assert len(hash_secret(TOKEN_ID, SECRET)) == 64


# ---------------------------------------------------------------------- header parsing
@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_matched_case_insensitively(scheme: str) -> None:
    parts = parse_authorization_header(f"{scheme} {TOKEN}")
    assert (parts.token_id, parts.secret) == (TOKEN_ID, SECRET)


def test_surrounding_whitespace_is_tolerated() -> None:
    assert parse_authorization_header(f"  Bearer   {TOKEN}  ").token_id == TOKEN_ID


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing_header"),
        ("", "missing_header"),
        ("   ", "missing_header"),
        ("Bearer", "malformed_token"),
        ("Bearer ", "malformed_token"),
        ("Basic dXNlcjpwYXNzd29yZA==", "not_bearer"),
        (f"Token {TOKEN}", "not_bearer"),
        (TOKEN, "not_bearer"),
        ("Bearer " + "a" * 10 * 1024, "header_too_long"),
        ("Bearer " + TOKEN[:-1] + "é", "not_ascii"),
        ("Bearer li_0123456789abcdef_" + "\u00ff" * 43, "not_ascii"),
        (f"Bearer {TOKEN} extra", "malformed_token"),
        (f"Bearer {TOKEN},Bearer {TOKEN}", "malformed_token"),
        (f"Bearer {TOKEN[:-1]}", "malformed_token"),
        (f"Bearer {TOKEN}A", "malformed_token"),
        (f"Bearer {TOKEN.upper()}", "malformed_token"),
        ("Bearer li_0123456789ABCDEF_" + SECRET, "malformed_token"),
        ("Bearer xx_0123456789abcdef_" + SECRET, "malformed_token"),
        ("Bearer li_0123456789abcdef_" + SECRET[:-1] + "=", "malformed_token"),
        ("Bearer li_0123456789abcdef_" + SECRET[:-1] + "\x00", "malformed_token"),
    ],
)
def test_malformed_authorization_headers_are_refused_with_a_reason(header: str | None, reason: str) -> None:
    with pytest.raises(MalformedCredentials) as caught:
        parse_authorization_header(header)
    assert caught.value.reason == reason
    if header and header.strip():
        assert header.strip() not in str(caught.value)


def test_the_length_cap_is_checked_on_the_raw_header() -> None:
    assert len(f"Bearer {TOKEN}") <= MAX_HEADER_LENGTH
    with pytest.raises(MalformedCredentials, match="over"):
        parse_authorization_header(f"Bearer {TOKEN}" + " " * MAX_HEADER_LENGTH)


# ---------------------------------------------------------------------- verification
def test_a_valid_token_is_allowed_with_its_connections() -> None:
    table = Table(record(connections=frozenset({"production", "spark-prod"})))
    decision = verify(f"Bearer {TOKEN}", table.get, NOW)
    assert decision.allowed
    assert decision.reason == "ok"
    assert decision.principal == Principal(TOKEN_ID, frozenset({"production", "spark-prod"}))
    assert table.lookups == [TOKEN_ID]


def test_verification_is_one_lookup_by_token_id() -> None:
    table = Table(record())
    verify(f"Bearer {format_token(TOKEN_ID, 'x' * 43)}", table.get, NOW)
    verify(f"Bearer {TOKEN}", table.get, NOW)
    assert table.lookups == [TOKEN_ID, TOKEN_ID]


def test_a_wrong_secret_with_a_known_token_id_is_denied() -> None:
    decision = verify(f"Bearer {format_token(TOKEN_ID, 'W' * 43)}", Table(record()).get, NOW)
    assert (decision.allowed, decision.reason, decision.token_id) == (False, "wrong_secret", TOKEN_ID)
    assert decision.principal is None


def test_an_unknown_token_id_is_denied() -> None:
    decision = verify(f"Bearer {format_token('fedcba9876543210', SECRET)}", Table(record()).get, NOW)
    assert (decision.allowed, decision.reason) == (False, "unknown_token")


def test_a_hash_copied_from_another_token_does_not_verify() -> None:
    other_id = "fedcba9876543210"
    stolen = record(token_id=other_id, secret_hash=hash_secret(TOKEN_ID, SECRET))
    decision = verify(f"Bearer {format_token(other_id, SECRET)}", Table(stolen).get, NOW)
    assert decision.reason == "wrong_secret"


def test_a_revoked_token_is_denied() -> None:
    decision = verify(f"Bearer {TOKEN}", Table(record(revoked=True, revoked_at=NOW)).get, NOW)
    assert (decision.allowed, decision.reason) == (False, "revoked")


def test_a_token_is_denied_from_the_second_it_expires() -> None:
    table = Table(record(expires_at=NOW))
    assert verify(f"Bearer {TOKEN}", table.get, NOW - timedelta(seconds=1)).allowed
    assert verify(f"Bearer {TOKEN}", table.get, NOW).reason == "expired"


def test_a_token_without_connections_is_denied() -> None:
    decision = verify(f"Bearer {TOKEN}", Table(record(connections=frozenset())).get, NOW)
    assert decision.reason == "no_connections"


def test_a_record_with_an_unknown_hash_version_is_denied() -> None:
    decision = verify(f"Bearer {TOKEN}", Table(record(hash_version="md5")).get, NOW)
    assert decision.reason == "wrong_secret"


def test_a_malformed_header_never_reaches_the_table() -> None:
    table = Table(record())
    assert verify("Basic abc", table.get, NOW).reason == "not_bearer"
    assert table.lookups == []


@given(st.text(max_size=600))
def test_no_header_without_the_token_is_allowed_and_none_raises(header: str) -> None:
    decision = verify(header, Table(record()).get, NOW)
    assert decision.allowed is False or TOKEN in header


@given(st.sampled_from(["Bearer", "bearer", "BEARER"]), st.integers(1, 5), st.integers(0, 3))
def test_the_token_is_allowed_whatever_the_spacing_around_it(scheme: str, gap: int, pad: int) -> None:
    header = " " * pad + scheme + " " * gap + TOKEN + " " * pad
    assert verify(header, Table(record()).get, NOW).allowed


@given(st.binary(min_size=32, max_size=32))
def test_any_32_byte_secret_round_trips_through_the_header(raw: bytes) -> None:
    secret = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    parts = parse_authorization_header(f"Bearer {format_token(TOKEN_ID, secret)}")
    assert base64.urlsafe_b64decode(parts.secret + "=") == raw


def test_the_principal_context_round_trips_to_ingest() -> None:
    decision = verify(f"Bearer {TOKEN}", Table(record(connections=frozenset({"b", "a"}))).get, NOW)
    assert decision.principal is not None
    context = decision.principal.to_context()
    assert context == {"tokenId": TOKEN_ID, "connections": '["a", "b"]', "scopes": '["write"]'}
    assert Principal.from_context(context) == decision.principal


# ---------------------------------------------------------------------- scopes
def test_a_read_and_write_token_passes_both_scopes_through_the_context() -> None:
    # Given a token with both scopes
    table = Table(record(scopes=frozenset({"read", "write"})))
    # When it is verified and its context is read back by a function
    decision = verify(f"Bearer {TOKEN}", table.get, NOW)
    assert decision.principal is not None
    principal = Principal.from_context(decision.principal.to_context())
    # Then both scopes arrive and neither check refuses it
    assert principal.scopes == frozenset({"read", "write"})
    principal.check_scope("read")
    principal.check_scope("write")


def test_a_context_without_scopes_means_write_only_as_before_scopes_existed() -> None:
    # Given the context of a token stored before scopes existed
    principal = Principal.from_context({"tokenId": TOKEN_ID, "connections": '["a"]'})
    # Then it may write and may not read
    principal.check_scope("write")
    with pytest.raises(Forbidden, match="lacks the 'read' scope"):
        principal.check_scope("read")


def test_a_write_only_token_is_refused_by_the_read_check_with_the_missing_scope_named() -> None:
    principal = Principal(TOKEN_ID, frozenset({"a"}), frozenset({"write"}))
    with pytest.raises(Forbidden, match=r"lacks the 'read' scope .*--scope read"):
        principal.check_scope("read")


def test_a_read_only_token_cannot_write_into_any_namespace() -> None:
    principal = Principal(TOKEN_ID, frozenset({"a"}), frozenset({"read"}))
    with pytest.raises(Forbidden, match="lacks the 'write' scope"):
        principal.check_can_write("a")


def test_a_read_only_token_without_connections_is_allowed_but_a_write_token_without_is_not() -> None:
    read_only = verify(f"Bearer {TOKEN}", Table(record(connections=frozenset(), scopes=frozenset({"read"}))).get, NOW)
    write_only = verify(f"Bearer {TOKEN}", Table(record(connections=frozenset())).get, NOW)
    assert read_only.allowed and read_only.principal is not None
    assert read_only.principal.scopes == frozenset({"read"})
    assert not write_only.allowed and write_only.reason == "no_connections"


@pytest.mark.parametrize("raw", ["not json", '{"read": 1}', "42"])
def test_a_malformed_scopes_context_fails_closed(raw: str) -> None:
    with pytest.raises(Forbidden, match="malformed"):
        Principal.from_context({"tokenId": TOKEN_ID, "connections": "[]", "scopes": raw})


def test_unknown_scope_names_in_the_context_grant_nothing() -> None:
    principal = Principal.from_context({"tokenId": TOKEN_ID, "connections": "[]", "scopes": '["admin"]'})
    assert principal.scopes == frozenset()
    with pytest.raises(Forbidden):
        principal.check_scope("read")


# ---------------------------------------------------------------------- time
def test_times_are_utc_with_a_fixed_width_so_they_sort_as_strings() -> None:
    early, late = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2026, 11, 2, 3, 4, 5, tzinfo=UTC)
    assert format_time(early) == "2026-01-02T03:04:05Z"
    assert format_time(early) < format_time(late)
    assert parse_time(format_time(early)) == early


# ---------------------------------------------------------------------- the authorizer use case
class BrokenStore:
    """A token store whose reads fail (e.g. throttling) and whose last-used writes are denied by IAM."""

    def __init__(self, read_error: Exception | None = None, write_code: str | None = None) -> None:
        self.read_error = read_error
        self.write_code = write_code
        self.touches = 0

    def get(self, token_id: str) -> TokenRecord | None:
        if self.read_error:
            raise self.read_error
        return record()

    def touch_last_used(self, token_id: str, now: datetime, min_interval: timedelta) -> bool:
        self.touches += 1
        if self.write_code:
            raise ClientError({"Error": {"Code": self.write_code, "Message": "no"}}, "UpdateItem")
        return True


@pytest.mark.parametrize(
    "error",
    [
        ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}, "GetItem"),
        ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no table"}}, "GetItem"),
        KeyError("secretHash"),
        RuntimeError("bug"),
    ],
)
def test_the_authorizer_fails_closed_on_any_error(error: Exception) -> None:
    authorizer = TokenAuthorizer(BrokenStore(read_error=error), clock=lambda: NOW)  # type: ignore[arg-type]
    decision = authorizer.authorize({"Authorization": f"Bearer {TOKEN}"})
    assert (decision.allowed, decision.reason, decision.token_id) == (False, "error", TOKEN_ID)
    assert decision.error == type(error).__name__


def test_the_authorizer_finds_the_header_whatever_its_case() -> None:
    authorizer = TokenAuthorizer(BrokenStore(), clock=lambda: NOW)  # type: ignore[arg-type]
    assert authorizer.authorize({"authorization": f"Bearer {TOKEN}"}).allowed
    assert authorizer.authorize({"AUTHORIZATION": f"Bearer {TOKEN}"}).allowed
    assert authorizer.authorize({"x-authorization": f"Bearer {TOKEN}"}).reason == "missing_header"
    assert authorizer.authorize(None).reason == "missing_header"


def test_last_used_is_not_written_unless_switched_on() -> None:
    store = BrokenStore()
    TokenAuthorizer(store, clock=lambda: NOW).authorize({"authorization": f"Bearer {TOKEN}"})  # type: ignore[arg-type]
    assert store.touches == 0


def test_an_access_denied_last_used_write_keeps_the_decision_and_switches_recording_off() -> None:
    store = BrokenStore(write_code="AccessDeniedException")
    warnings: list[tuple[str, dict[str, object]]] = []
    authorizer = TokenAuthorizer(
        store,  # type: ignore[arg-type]
        record_last_used=True,
        clock=lambda: NOW,
        warn=lambda message, fields: warnings.append((message, fields)),
    )
    first = authorizer.authorize({"authorization": f"Bearer {TOKEN}"})
    second = authorizer.authorize({"authorization": f"Bearer {TOKEN}"})
    assert first.allowed and second.allowed
    assert store.touches == 1
    assert authorizer.record_last_used is False
    assert warnings == [
        (
            "last-used recording switched off: the function may not update the tokens table",
            {"tokenId": TOKEN_ID, "error": "AccessDeniedException"},
        )
    ]


def test_a_recent_last_used_time_is_not_written_again() -> None:
    class RecentlyUsed(BrokenStore):
        def get(self, token_id: str) -> TokenRecord | None:
            return record(last_used_at=NOW - timedelta(minutes=1))

    store = RecentlyUsed()
    authorizer = TokenAuthorizer(store, record_last_used=True, clock=lambda: NOW)  # type: ignore[arg-type]
    assert authorizer.authorize({"authorization": f"Bearer {TOKEN}"}).allowed
    assert store.touches == 0
