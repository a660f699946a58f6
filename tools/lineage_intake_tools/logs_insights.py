"""CloudWatch Logs Insights, locally: the template's saved queries run over JSON log lines.

The saved queries live once, in ``template.yaml`` (``AWS::Logs::QueryDefinition``); ``lineage-intake logs``
runs them with Logs Insights against a deployed stack and with this engine over the local stack's
``.local/logs/``. The engine implements the subset of the query language that those queries use, with
Logs Insights' semantics where they matter (see docs/operations.md#saved-queries):

- commands ``fields``, ``filter``, ``stats ... by``, ``sort``, ``limit``; ``filter`` may follow ``stats``;
- expressions ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``like /regex/``, ``in [...]``, ``and``, ``or``,
  ``not``, parentheses and ``ispresent(field)``; a comparison with a missing field is false;
- aggregates ``count(*)``, ``count(f)``, ``count_distinct(f)``, ``sum``, ``avg``, ``min``, ``max``,
  ``latest(f)`` and ``earliest(f)`` (by ``@timestamp``);
- JSON lines are flattened like Logs Insights does (``a.b``, ``errors.0.path``) and get ``@timestamp``,
  ``@message`` and ``@log``; a line that is not JSON has only those three.

Parameterised queries carry ``{{name}}`` placeholders inside string literals (``"{{id}}"``);
``SavedQuery.render`` replaces them with an escaped value. In the console, edit the placeholder by hand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lineage_intake_tools.local.template import TEMPLATE_PATH, load_template

PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # as Logs Insights shows @timestamp, to the millisecond


class QueryError(ValueError):
    """The query uses syntax outside the supported subset, or is malformed; the message says where."""


# ---------------------------------------------------------------- saved queries from the template


@dataclass(frozen=True)
class SavedQuery:
    """One ``AWS::Logs::QueryDefinition``: its short name, query string and log groups (logical ids)."""

    name: str
    query: str
    log_groups: tuple[str, ...]

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(PLACEHOLDER.findall(self.query)))

    def render(self, **values: str) -> str:
        """The query with every ``{{name}}`` replaced; a missing or unknown parameter is an error."""
        unknown = set(values) - set(self.parameters)
        missing = [p for p in self.parameters if p not in values]
        if unknown or missing:
            raise QueryError(
                f"query {self.name!r} takes parameters {list(self.parameters)}; "
                f"missing {missing}, unknown {sorted(unknown)}"
            )

        def escape(match: re.Match[str]) -> str:
            return values[match.group(1)].replace("\\", "\\\\").replace('"', '\\"')

        return PLACEHOLDER.sub(escape, self.query)

    def run(self, logs: Mapping[str, Iterable[str | Mapping[str, Any]]], **values: str) -> list[dict[str, Any]]:
        """Run over the lines of this query's log groups (``logs`` maps a logical id to its lines)."""
        records = [to_record(line, log=group) for group in self.log_groups for line in logs.get(group, ())]
        return run(self.render(**values), records)


def saved_queries(template: Path = TEMPLATE_PATH) -> dict[str, SavedQuery]:
    """The template's saved queries by short name: the last segment of ``lineage-intake/<stack>/<name>``."""
    resources = load_template(template)["Resources"]
    queries: dict[str, SavedQuery] = {}
    for resource in resources.values():
        if resource.get("Type") != "AWS::Logs::QueryDefinition":
            continue
        props = resource["Properties"]
        name = props["Name"]
        name = name.get("Fn::Sub", "") if isinstance(name, dict) else name
        groups = tuple(g["Ref"] for g in props.get("LogGroupNames", []) if isinstance(g, dict) and "Ref" in g)
        queries[name.rsplit("/", 1)[-1]] = SavedQuery(name.rsplit("/", 1)[-1], props["QueryString"], groups)
    return queries


def saved_query(name: str, template: Path = TEMPLATE_PATH) -> SavedQuery:
    queries = saved_queries(template)
    if name not in queries:
        raise QueryError(f"no saved query {name!r}; the template has {sorted(queries)}")
    return queries[name]


# ---------------------------------------------------------------- log lines to records


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _flatten(item, f"{prefix}.{index}", out)
    else:
        out[prefix] = value


def _timestamp(fields: Mapping[str, Any]) -> str | None:
    """@timestamp from a Powertools ``timestamp`` (RFC 3339, or Powertools' default format), an access log's
    ``requestTime`` or a Lambda platform record's ``time`` (JSON log format)."""
    formats = {"timestamp": "%Y-%m-%d %H:%M:%S,%f%z", "requestTime": "%d/%b/%Y:%H:%M:%S %z", "time": ""}
    for key, fmt in formats.items():
        raw = fields.get(key)
        if isinstance(raw, str):
            moment = _parse_time(raw, fmt)
            if moment is not None:
                return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)[:-3]
    return None


def _parse_time(raw: str, fmt: str) -> datetime | None:
    try:
        return datetime.strptime(raw, fmt)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        return None


_TEXT_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)\s")


def to_record(line: str | Mapping[str, Any], log: str = "", timestamp: datetime | None = None) -> dict[str, Any]:
    """A log line (JSON text or an already parsed dict) as Logs Insights sees it."""
    if isinstance(line, str):
        message = line
        try:
            parsed = json.loads(line)
        except ValueError:
            parsed = None
    else:
        parsed, message = dict(line), json.dumps(line, separators=(",", ":"))
    record: dict[str, Any] = {}
    if isinstance(parsed, dict):
        _flatten(parsed, "", record)
    if timestamp is None and (text_stamp := _TEXT_TIMESTAMP.match(message)):  # a Lambda platform text line
        timestamp = datetime.fromisoformat(text_stamp.group(1).replace("Z", "+00:00"))
    stamp = timestamp.astimezone(UTC).strftime(TIMESTAMP_FORMAT)[:-3] if timestamp else _timestamp(record)
    record.update({"@message": message, "@log": log})
    if stamp:
        record["@timestamp"] = stamp
    return record


# ---------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
    | (?P<op><=|>=|!=|=|<|>|\(|\)|\[|\]|,|\*|\|)
    | (?P<name>`[^`]+`|[@\w][\w.\-]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # string, number, op, name, regex
    value: Any
    pos: int


def tokenize(query: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(query):
        if query[pos].isspace():
            pos += 1
            continue
        if query[pos] == "/" and tokens and tokens[-1].kind == "name" and tokens[-1].value.lower() == "like":
            end = pos + 1
            while end < len(query) and query[end] != "/":
                end += 2 if query[end] == "\\" else 1
            if end >= len(query):
                raise QueryError(f"unterminated regex at {pos}")
            flags = re.IGNORECASE if query[end + 1 : end + 2] == "i" else 0
            tokens.append(Token("regex", re.compile(query[pos + 1 : end], flags), pos))
            pos = end + (2 if flags else 1)
            continue
        match = _TOKEN.match(query, pos)
        if not match or match.end() == pos:
            raise QueryError(f"unexpected {query[pos : pos + 20]!r} at {pos}")
        kind = match.lastgroup or ""
        text = match.group(kind)
        value: Any = text
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", text[1:-1])
        elif kind == "number":
            value = float(text) if "." in text else int(text)
        elif kind == "name" and text.startswith("`"):
            value = text[1:-1]
        tokens.append(Token(kind, value, match.start(kind)))
        pos = match.end()
    return tokens


# ---------------------------------------------------------------- expressions

Record = dict[str, Any]
Expr = Callable[[Record], Any]
COMPARISONS = {"=", "!=", "<", "<=", ">", ">="}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _compare(op: str, left: Any, right: Any) -> bool:
    """Missing fields compare false; numbers and numeric strings compare as numbers, the rest as text."""
    if left is None or right is None:
        return False
    a, b = _number(left), _number(right)
    if a is None or b is None:
        a, b = str(left).lower() if isinstance(left, bool) else str(left), str(right)  # type: ignore[assignment]
    if op == "=":
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b  # type: ignore[operator]
    if op == "<=":
        return a <= b  # type: ignore[operator]
    if op == ">":
        return a > b  # type: ignore[operator]
    return a >= b  # type: ignore[operator]


class _Parser:
    """Recursive descent over one command's tokens."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self, offset: int = 0) -> Token | None:
        index = self.i + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def at(self, *values: str) -> bool:
        token = self.peek()
        return token is not None and token.kind in ("op", "name") and str(token.value).lower() in values

    def take(self, *values: str) -> Token:
        token = self.peek()
        if token is None or (values and not self.at(*values)):
            where = f"at {token.pos}" if token else "at the end"
            raise QueryError(f"expected {' or '.join(values) or 'more'} {where}")
        self.i += 1
        return token

    def field(self) -> str:
        token = self.take()
        if token.kind != "name":
            raise QueryError(f"expected a field name at {token.pos}")
        return str(token.value)

    # expr := conjunction ("or" conjunction)*; conjunction := negation ("and" negation)*
    def expr(self) -> Expr:
        return self._chain("or", self.conjunction, any)

    def conjunction(self) -> Expr:
        return self._chain("and", self.negation, all)

    def _chain(self, keyword: str, operand: Callable[[], Expr], combine: Callable[[Iterable[Any]], bool]) -> Expr:
        parts = [operand()]
        while self.at(keyword):
            self.take()
            parts.append(operand())
        return parts[0] if len(parts) == 1 else (lambda r: combine(p(r) for p in parts))

    def negation(self) -> Expr:
        if self.at("not"):
            self.take()
            inner = self.negation()
            return lambda r: not inner(r)
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.operand()
        negate = False
        following = self.peek(1)
        if self.at("not") and following is not None and str(following.value).lower() in ("like", "in"):
            self.take()
            negate = True
        if self.at(*COMPARISONS):
            op = self.take().value
            right = self.operand()
            return lambda r: _compare(op, left(r), right(r))
        if self.at("like"):
            self.take()
            token = self.take()
            if token.kind == "regex":
                pattern = token.value
            elif token.kind == "string":  # like "text" is a substring match
                pattern = re.compile(re.escape(token.value))
            else:
                raise QueryError(f"expected /regex/ after like at {token.pos}")
            return lambda r: (left(r) is not None and bool(pattern.search(str(left(r))))) != negate
        if self.at("in"):
            self.take()
            options = self.literal_list()
            return lambda r: any(_compare("=", left(r), o) for o in options) != negate
        return left

    def literal_list(self) -> list[Any]:
        self.take("[")
        values: list[Any] = []
        while not self.at("]"):
            token = self.take()
            if token.kind not in ("string", "number"):
                raise QueryError(f"expected a literal at {token.pos}")
            values.append(token.value)
            if self.at(","):
                self.take()
        self.take("]")
        return values

    def operand(self) -> Expr:
        token = self.take()
        if token.kind == "op" and token.value == "(":
            inner = self.expr()
            self.take(")")
            return inner
        if token.kind in ("string", "number"):
            value = token.value
            return lambda r: value
        if token.kind == "name" and self.at("("):
            name = str(token.value).lower()
            self.take("(")
            if name == "ispresent":
                field = self.field()
                self.take(")")
                return lambda r: r.get(field) is not None
            raise QueryError(f"function {token.value!r} at {token.pos} is not supported")
        if token.kind == "name":
            field = str(token.value)
            return lambda r: r.get(field)
        raise QueryError(f"unexpected {token.value!r} at {token.pos}")


# ---------------------------------------------------------------- aggregates

AGGREGATES: dict[str, Callable[[list[Any]], Any]] = {
    "count": lambda values: sum(1 for v in values if v is not None),
    "count_distinct": lambda values: len({json.dumps(v) for v in values if v is not None}),
    "sum": lambda values: sum(n for n in map(_number, values) if n is not None),
    "avg": lambda values: (sum(ns) / len(ns)) if (ns := [n for n in map(_number, values) if n is not None]) else None,
    "min": lambda values: min((v for v in values if v is not None), default=None),
    "max": lambda values: max((v for v in values if v is not None), default=None),
}


@dataclass
class _Aggregate:
    function: str
    field: str  # "*" for count(*)
    alias: str

    def compute(self, rows: list[Record]) -> Any:
        if self.field == "*":
            return len(rows)
        if self.function in ("latest", "earliest"):
            present = [r for r in rows if r.get(self.field) is not None]
            if not present:
                return None
            pick = max if self.function == "latest" else min
            return pick(present, key=lambda r: r.get("@timestamp") or "")[self.field]
        value = AGGREGATES[self.function]([r.get(self.field) for r in rows])
        return int(value) if isinstance(value, float) and value.is_integer() else value


def _stats(parser: _Parser) -> Callable[[list[Record]], list[Record]]:
    aggregates: list[_Aggregate] = []
    while True:
        token = parser.take()
        function = str(token.value).lower()
        if token.kind != "name" or (function not in AGGREGATES and function not in ("latest", "earliest")):
            raise QueryError(f"aggregate {token.value!r} at {token.pos} is not supported")
        parser.take("(")
        field = "*" if parser.at("*") and parser.take() else parser.field()
        parser.take(")")
        if field == "*" and function != "count":
            raise QueryError(f"{function}(*) at {token.pos} is not supported")
        alias = f"{function}({field})"
        if parser.at("as"):
            parser.take()
            alias = parser.field()
        aggregates.append(_Aggregate(function, field, alias))
        if not parser.at(","):
            break
        parser.take()
    keys: list[str] = []
    if parser.at("by"):
        parser.take()
        keys.append(parser.field())
        while parser.at(","):
            parser.take()
            keys.append(parser.field())

    def apply(rows: list[Record]) -> list[Record]:
        groups: dict[str, tuple[dict[str, Any], list[Record]]] = {}
        for row in rows:
            key_values = {k: row.get(k) for k in keys}
            groups.setdefault(json.dumps(key_values, default=str), (key_values, []))[1].append(row)
        out = []
        for key_values, members in groups.values():
            result = {k: v for k, v in key_values.items() if v is not None}
            result.update({a.alias: a.compute(members) for a in aggregates})
            out.append({k: v for k, v in result.items() if v is not None})
        return out

    return apply


def _sort_key(field: str) -> Callable[[Record], tuple[int, Any]]:
    def key(row: Record) -> tuple[int, Any]:
        value = row.get(field)
        number = _number(value)
        if number is not None:
            return (0, number)
        return (1, str(value)) if value is not None else (2, "")

    return key


# ---------------------------------------------------------------- commands


def _commands(query: str) -> list[list[Token]]:
    commands: list[list[Token]] = [[]]
    depth = 0
    for token in tokenize(query):
        if token.kind == "op" and token.value in "([":
            depth += 1
        elif token.kind == "op" and token.value in ")]":
            depth -= 1
        if token.kind == "op" and token.value == "|" and depth == 0:
            commands.append([])
        else:
            commands[-1].append(token)
    if any(not c for c in commands):
        raise QueryError("empty command between pipes")
    return commands


def run(query: str, records: Iterable[Record]) -> list[Record]:
    """Run a Logs Insights query over records (see ``to_record``); returns the result rows."""
    rows = list(records)
    projection: list[str] | None = None
    aggregated = False
    for tokens in _commands(query):
        parser = _Parser(tokens)
        command = str(parser.take().value).lower()
        if command == "fields":
            projection = [parser.field()]
            while parser.at(","):
                parser.take()
                projection.append(parser.field())
        elif command == "filter":
            predicate = parser.expr()
            rows = [r for r in rows if predicate(r)]
        elif command == "stats":
            rows = _stats(parser)(rows)
            aggregated, projection = True, None
        elif command == "sort":
            order: list[tuple[str, bool]] = []
            while True:
                field = parser.field()
                descending = parser.at("desc")
                if parser.at("asc", "desc"):
                    parser.take()
                order.append((field, descending))
                if not parser.at(","):
                    break
                parser.take()
            for field, descending in reversed(order):  # stable sorts, last key first
                rows.sort(key=_sort_key(field), reverse=descending)
        elif command == "limit":
            token = parser.take()
            if token.kind != "number" or not isinstance(token.value, int) or token.value < 1:
                raise QueryError(f"limit needs a positive integer at {token.pos}")
            rows = rows[: token.value]
        else:
            raise QueryError(f"command {command!r} is not supported")
        leftover = parser.peek()
        if leftover is not None:
            raise QueryError(f"unexpected {leftover.value!r} at {leftover.pos} in {command}")
    if aggregated:
        return rows
    shown = projection or ["@timestamp", "@message"]
    return [{f: r[f] for f in shown if r.get(f) is not None} for r in rows]
