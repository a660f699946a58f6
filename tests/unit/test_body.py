"""Body decoding: content types, base64, gzip with and without the header, and the decompression cap."""

from __future__ import annotations

import base64
import gzip
import io
import time
import tracemalloc

import pytest
from lineage_intake.body import decode_body, parse_json
from lineage_intake.errors import MalformedBody, PayloadTooLarge, UnsupportedMediaType

EVENT = b'{"eventTime": "2024-01-01T00:00:00Z", "run": {"runId": "x"}, "job": {"namespace": "n", "name": "j"}}'
CAP = 1024 * 1024


def decode(body: bytes, headers: dict[str, str] | None = None, b64: bool = True, cap: int = CAP) -> bytes:
    text = base64.b64encode(body).decode() if b64 else body.decode()
    return decode_body(text, is_base64=b64, headers=headers or {"content-type": "application/json"}, max_bytes=cap)


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/json; charset=UTF-8", "APPLICATION/JSON"],
)
def test_json_is_accepted_with_or_without_a_utf8_charset(content_type: str) -> None:
    assert decode(EVENT, {"content-type": content_type}, b64=False) == EVENT


def test_a_missing_content_type_is_read_as_json() -> None:
    assert decode(EVENT, {}, b64=False) == EVENT


@pytest.mark.parametrize(
    ("headers", "match"),
    [
        ({"content-type": "text/plain"}, "text/plain"),
        ({"content-type": "application/x-www-form-urlencoded"}, "x-www-form-urlencoded"),
        ({"content-type": "application/json; charset=iso-8859-1"}, "iso-8859-1"),
        ({"content-type": "application/json", "content-encoding": "br"}, "br"),
        ({"content-type": "application/json", "content-encoding": "deflate"}, "deflate"),
    ],
)
def test_unsupported_types_charsets_and_encodings_are_refused(headers: dict[str, str], match: str) -> None:
    with pytest.raises(UnsupportedMediaType, match=match):
        decode(EVENT, headers)


def test_a_base64_body_from_api_gateway_is_decoded() -> None:
    assert decode(EVENT) == EVENT


def test_a_gzip_body_announced_by_content_encoding_is_inflated() -> None:
    assert decode(gzip.compress(EVENT), {"content-type": "application/json", "content-encoding": "gzip"}) == EVENT


def test_a_gzip_body_without_the_header_is_detected_by_its_magic_bytes() -> None:
    assert decode(gzip.compress(EVENT), {"content-type": "application/json; charset=UTF-8"}) == EVENT


def test_a_multi_member_gzip_body_is_inflated_whole() -> None:
    assert decode(gzip.compress(EVENT[:20]) + gzip.compress(EVENT[20:])) == EVENT


def test_a_gzip_bomb_is_refused_quickly_in_bounded_memory() -> None:
    # Given 1 GiB of zeros squeezed into about 1 MB of gzip
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9) as fh:
        chunk = b"\0" * (1024 * 1024)
        for _ in range(1024):
            fh.write(chunk)
    bomb = buffer.getvalue()
    # When it is decoded under a 1 MiB cap
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(PayloadTooLarge):
        decode(bomb, {"content-type": "application/json", "content-encoding": "gzip"})
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # Then it stops at the cap instead of inflating the gigabyte
    assert peak < len(bomb) * 2 + 8 * CAP
    assert elapsed < 5


def test_a_plain_body_over_the_cap_is_refused() -> None:
    with pytest.raises(PayloadTooLarge, match="over the limit"):
        decode(b" " * (CAP + 1))


@pytest.mark.parametrize(
    ("body", "b64", "match"),
    [
        (b"", False, "empty"),
        (gzip.compress(EVENT)[:-10], True, "truncated|not valid gzip"),
        (b"\x1f\x8bnot really gzip", True, "not valid gzip"),
    ],
)
def test_undecodable_bodies_are_malformed(body: bytes, b64: bool, match: str) -> None:
    with pytest.raises(MalformedBody, match=match):
        decode(body, b64=b64)


def test_a_body_flagged_base64_that_is_not_base64_is_malformed() -> None:
    with pytest.raises(MalformedBody, match="base64"):
        decode_body("###", is_base64=True, headers={}, max_bytes=CAP)


@pytest.mark.parametrize(
    ("plain", "match"),
    [(b"{not json", "not valid JSON"), (b"\xff\xfe{}", "not UTF-8"), (b'{"a": NaN}', "NaN")],
)
def test_bodies_that_are_not_utf8_json_are_malformed(plain: bytes, match: str) -> None:
    with pytest.raises(MalformedBody, match=match):
        parse_json(plain)
