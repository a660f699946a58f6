"""Node ids, names in URLs and paging of the Marquez-compatible read API: pure rules, one home.

- **Node ids** are ``dataset:NS:NAME``, ``job:NS:NAME`` and ``datasetField:NS:NAME:FIELD``, joined with ``:``
  and never escaped, as Marquez's ``NodeId`` does. Parsing follows Marquez's fallback rule: a ``:`` delimits
  only when it is not followed by ``//`` or a digit (so ``postgres://host:5432`` is one namespace), and the
  last part takes the rest (so a dataset *name* may hold ``:``). Unlike Marquez we never split on ``#``
  (Marquez's version delimiter), so ``a#b`` is an ordinary name. An id that cannot be split this way is a 400.
- **Names in paths** are percent-encoded segments: the raw path is split on ``/`` first and each segment is
  decoded after (so ``%2F`` is a ``/`` inside a name). ``+`` stays ``+`` in paths; query strings use form
  decoding, where ``+`` is a space. An invalid escape (``%`` not followed by two hex digits, which Marquez's
  web UI sends in a search) is kept literally.
- **Paging** follows Marquez: ``limit`` (default 100) and ``offset`` (default 0), each capped (docs/read-api.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from lineage_intake.errors import DomainError

NodeKind = Literal["dataset", "job", "datasetField"]
NODE_KINDS: tuple[NodeKind, ...] = ("datasetField", "dataset", "job")  # longest prefix first
_DELIMITER = re.compile(r":(?!//|\d)")

# Paging and walk limits (documented in docs/read-api.md, "Limits").
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_OFFSET = 10_000
DEFAULT_SEARCH_LIMIT = 10
MAX_SEARCH_LIMIT = 100
DEFAULT_DEPTH = 20
MAX_DEPTH = 100
GRAPH_NODE_CAP = 1000
DEFAULT_LINEAGE_WINDOW_DAYS = 30
MAX_LINEAGE_WINDOW_DAYS = 3650


class BadParameter(DomainError):
    """A request parameter the read API cannot use: a 400 naming the parameter."""

    reason = "bad_parameter"

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


@dataclass(frozen=True)
class NodeId:
    kind: NodeKind
    namespace: str
    name: str
    field: str | None = None

    def __str__(self) -> str:
        parts = [self.kind, self.namespace, self.name] + ([self.field] if self.field is not None else [])
        return ":".join(parts)


def dataset_node_id(namespace: str, name: str) -> str:
    return str(NodeId("dataset", namespace, name))


def job_node_id(namespace: str, name: str) -> str:
    return str(NodeId("job", namespace, name))


def field_node_id(namespace: str, name: str, field: str) -> str:
    return str(NodeId("datasetField", namespace, name, field))


def parse_node_id(value: str, parameter: str = "nodeId") -> NodeId:
    """Split a node id the way Marquez does (see the module docstring); a 400 naming ``parameter`` otherwise."""
    kind = next((k for k in NODE_KINDS if value.startswith(k + ":")), None)
    if kind is None:
        raise BadParameter(parameter, f"must start with 'dataset:', 'job:' or 'datasetField:', got {value!r}")
    expected = 4 if kind == "datasetField" else 3
    parts = value.split(":")
    if len(parts) != expected:
        parts = _split_skipping_uri_colons(value, expected)
    if len(parts) != expected:
        parts = value.split(":", expected - 1)
    if len(parts) != expected or not all(parts[1:]):
        shape = "datasetField:NAMESPACE:DATASET:FIELD" if kind == "datasetField" else f"{kind}:NAMESPACE:NAME"
        raise BadParameter(parameter, f"must be {shape}, got {value!r}")
    return NodeId(kind, parts[1], parts[2], parts[3] if expected == 4 else None)


def _unquote(raw: str, parameter: str) -> str:
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise BadParameter(parameter, f"percent-escapes must encode UTF-8, got {raw!r}") from None


def _split_skipping_uri_colons(value: str, expected: int) -> list[str]:
    parts: list[str] = []
    start = 0
    for match in _DELIMITER.finditer(value):
        if len(parts) == expected - 1:
            break
        parts.append(value[start : match.start()])
        start = match.end()
    return [*parts, value[start:]]


def path_segments(raw_path: str) -> list[str]:
    """The decoded segments of a raw (still percent-encoded) path: split on ``/`` first, then decode each."""
    stripped = raw_path.strip("/")
    return [_unquote(segment, "path") for segment in stripped.split("/")] if stripped else []


def decode_query_value(raw: str, parameter: str = "query") -> str:
    """Form-decode one raw query value; keeps a literal ``%`` that starts no valid escape (the UI's search)."""
    return _unquote(raw.replace("+", " "), parameter)


def _int(parameter: str, raw: str | None, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(parameter, f"must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise BadParameter(parameter, f"must be between {low} and {high}, got {value}")
    return value


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def page(
    limit: str | None, offset: str | None, *, default_limit: int = DEFAULT_LIMIT, max_limit: int = MAX_LIMIT
) -> Page:
    """Marquez's ``limit``/``offset`` with our caps: out of range is a 400, never silently clamped."""
    return Page(
        limit=_int("limit", limit, default_limit, 0, max_limit),
        offset=_int("offset", offset, 0, 0, MAX_OFFSET),
    )


def depth(raw: str | None) -> int:
    return _int("depth", raw, DEFAULT_DEPTH, 0, MAX_DEPTH)


def lineage_window_days(raw: str | None, default: int = DEFAULT_LINEAGE_WINDOW_DAYS) -> int:
    return _int("lineageWindowDays", raw, default, 1, MAX_LINEAGE_WINDOW_DAYS)


def boolean(parameter: str, raw: str | None, default: bool = False) -> bool:
    """``true``/``false`` (any case), as Jersey reads a boolean query parameter; anything else is a 400."""
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise BadParameter(parameter, f"must be true or false, got {raw!r}")
    return lowered == "true"
