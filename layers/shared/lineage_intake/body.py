"""Decode an HTTP request body into JSON: base64 from API Gateway, gzip with or without the header, caps.

HTTP APIs (payload 2.0) hand Lambda a body that is not text as base64 with ``isBase64Encoded: true``; they
never decompress. A gzip body therefore arrives as base64 of the gzip bytes, with ``Content-Encoding: gzip``
when the client said so, and without it when an older Java client did not. Both are recognised, the
second by the gzip magic bytes. Decompression is bounded three ways: output past ``max_bytes`` stops it at
once with 413 (a gzip bomb costs at most ``max_bytes`` of memory), and so do more than ``MAX_GZIP_MEMBERS``
members or more than ``MAX_INFLATE_SECONDS`` of inflating (thousands of tiny members cost CPU, not output).
The JSON text is scanned for depth and long numbers before it is parsed (``limits.scan_json``).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from lineage_intake.errors import MalformedBody, PayloadTooLarge, UnsupportedMediaType
from lineage_intake.limits import MAX_GZIP_MEMBERS, MAX_INFLATE_SECONDS, LimitExceeded, scan_json

GZIP_MAGIC = b"\x1f\x8b"
JSON_TYPES = ("application/json", "text/json")
_CHUNK = 64 * 1024
_OUT_STEP = 1024 * 1024


def check_content_type(content_type: str | None) -> None:
    """``application/json`` (or ``+json``), with or without a UTF-8 charset. A missing type is read as JSON."""
    if not content_type:
        return
    media, *params = (p.strip() for p in content_type.split(";"))
    media = media.lower()
    if media not in JSON_TYPES and not (media.startswith("application/") and media.endswith("+json")):
        raise UnsupportedMediaType(
            f"Content-Type {media!r} is not supported: send OpenLineage events as application/json"
        )
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(f"charset {value.strip()!r} is not supported: send UTF-8 JSON")


def content_encoding(headers: Mapping[str, str]) -> str | None:
    value = headers.get("content-encoding")
    if value is None:
        return None
    encodings = [e.strip().lower() for e in value.split(",") if e.strip()]
    encodings = [e for e in encodings if e != "identity"]
    if not encodings:
        return None
    if encodings in (["gzip"], ["x-gzip"]):
        return "gzip"
    raise UnsupportedMediaType(f"Content-Encoding {value!r} is not supported: use gzip or none")


def gunzip_capped(
    data: bytes,
    max_bytes: int,
    *,
    max_members: int = MAX_GZIP_MEMBERS,
    max_seconds: float = MAX_INFLATE_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> bytes:
    """Inflate gzip (one or more members) without ever holding more than ``max_bytes`` of output, reading
    more than ``max_members`` members, or inflating for more than ``max_seconds``."""
    out = bytearray()
    remaining = data
    deadline = clock() + max_seconds
    members = 0
    try:
        while remaining:
            members += 1
            if members > max_members:
                raise PayloadTooLarge(
                    f"the gzip body has more than {max_members} members, over the limit: send one gzip stream"
                )
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            fed = 0
            # Input in 64 KB slices and output in 1 MB steps, so the clock is read often whatever the ratio.
            while not inflater.eof and len(out) <= max_bytes:
                if clock() > deadline:
                    raise PayloadTooLarge(f"the gzip body takes more than {max_seconds:g} s to inflate")
                if inflater.unconsumed_tail:
                    pending = inflater.unconsumed_tail
                else:
                    pending, fed = remaining[fed : fed + _CHUNK], fed + _CHUNK
                produced = inflater.decompress(pending, min(_OUT_STEP, max_bytes + 1 - len(out)))
                out += produced
                if not pending and not produced:
                    break  # input exhausted before the end of the member
            if len(out) > max_bytes:
                raise PayloadTooLarge(
                    f"the decompressed body is over the limit of {max_bytes} bytes; send smaller requests"
                )
            if not inflater.eof:
                raise MalformedBody("the gzip body is truncated")
            remaining = (inflater.unused_data + remaining[fed:]).lstrip(b"\x00")
            if remaining and not remaining.startswith(GZIP_MAGIC):
                raise MalformedBody("the gzip body has trailing bytes that are not gzip")
    except zlib.error as exc:
        raise MalformedBody(f"the body is not valid gzip: {exc}") from None
    return bytes(out)


def decode_body(
    body: str | None,
    *,
    is_base64: bool,
    headers: Mapping[str, str],
    max_bytes: int,
) -> bytes:
    """Raw request body to plain JSON bytes. ``headers`` must have lower-case names."""
    check_content_type(headers.get("content-type"))
    encoding = content_encoding(headers)
    if not body:
        raise MalformedBody("the request body is empty: POST one OpenLineage event as JSON")
    if is_base64:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedBody("the body is flagged as base64 but is not valid base64") from None
    else:
        try:
            raw = body.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as exc:
            raise MalformedBody(f"the body is not UTF-8 (character {exc.start}): send UTF-8 JSON") from None
    if encoding == "gzip" or raw[:2] == GZIP_MAGIC:
        return gunzip_capped(raw, max_bytes)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"the body is {len(raw)} bytes, over the limit of {max_bytes} bytes")
    return raw


def parse_json(plain: bytes) -> Any:
    try:
        text = plain.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"the body is not UTF-8 (byte {exc.start}): send UTF-8 JSON") from None
    try:
        scan_json(text)
    except LimitExceeded as exc:
        raise MalformedBody(f"the body is refused: {exc}") from None
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise MalformedBody(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (RecursionError, ValueError) as exc:  # scan_json stops both first; this keeps the answer a 400 anyway
        raise MalformedBody(f"the body is refused: {type(exc).__name__}") from None


def _reject_constant(name: str) -> Any:
    raise MalformedBody(f"the body is not valid JSON: {name} is not a JSON number")


def _finite_float(literal: str) -> float:
    """``1e400`` would become Infinity, which is not JSON: the stored body would not be the event."""
    value = float(literal)
    if not math.isfinite(value):
        raise MalformedBody(f"the number {literal[:40]} is out of the range of a double: send a finite number")
    return value
