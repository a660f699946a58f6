"""Hostile request bodies: the known crash inputs, and hypothesis strategies for arbitrary and mutated events.

The ingest fuzz test, the merge-contract property and the local-front tests share them. Each crash input is
one instance of a class of hostile input (README "Limits"); the strategies look for the classes.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from hypothesis import strategies as st

from tests.helpers.corpus import concrete_corpus_events, event_file

#: A namespace the sample token of events/ingest-start.json may write.
WRITABLE = "default"
_MINIMAL = {
    "eventType": "START",
    "eventTime": "2024-06-01T10:00:00Z",
    "producer": "https://example.com/fuzz",
    "run": {"runId": "0f0e0d0c-0b0a-4908-8706-050403020100"},
    "job": {"namespace": WRITABLE, "name": "fuzz.job"},
}


def minimal_event(**over: Any) -> dict[str, Any]:
    return copy.deepcopy(_MINIMAL) | over


@dataclass(frozen=True)
class Body:
    """One request body as a client sends it: text or raw bytes, with its headers."""

    data: bytes
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})
    path: str = "/api/v1/lineage"

    @classmethod
    def text(cls, text: str, **kw: Any) -> Body:
        return cls(text.encode("utf-8", "surrogatepass"), **kw)

    @classmethod
    def json(cls, value: Any, **kw: Any) -> Body:
        return cls.text(json.dumps(value), **kw)


def http_request(body: Body) -> dict[str, Any]:
    """The HTTP API (payload 2.0) event of ``body``, shaped like events/ingest-start.json.

    Like API Gateway, a body that is UTF-8 JSON text goes as text and anything else as base64.
    """
    req = copy.deepcopy(event_file("ingest-start.json"))
    headers = {k: v for k, v in req["headers"].items() if k not in ("content-type", "content-length")}
    req["headers"] = headers | body.headers | {"content-length": str(len(body.data))}
    try:
        if "content-encoding" in body.headers:
            raise UnicodeDecodeError("utf-8", body.data, 0, 0, "compressed")
        req["body"], req["isBase64Encoded"] = body.data.decode("utf-8"), False
    except UnicodeDecodeError:
        req["body"], req["isBase64Encoded"] = base64.b64encode(body.data).decode(), True
    req["rawPath"] = req["requestContext"]["http"]["path"] = body.path
    req["routeKey"] = req["requestContext"]["routeKey"] = f"POST {body.path}"
    return req


@cache
def _gzip_members(count: int) -> bytes:
    tiny = gzip.compress(b" ", mtime=0)
    return tiny * (count - 1) + gzip.compress(json.dumps(_MINIMAL).encode())


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _with_deep(path: tuple[str, ...], depth: int) -> Body:
    """The minimal event with an array nested ``depth`` deep at ``path``, written as text (json.dumps would
    hit the recursion limit first)."""
    text = json.dumps(_with(path, "__deep__"))
    return Body.text(text.replace('"__deep__"', "[" * depth + "1" + "]" * depth))


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    event = minimal_event()
    target = event
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value
    return event


#: The crash inputs of issues 12 and 13, each with the status it must get and a word its message must hold.
CRASH_INPUTS: dict[str, tuple[Body, int, str]] = {
    "a body nested 1,000 deep": (Body.text("[" * 1000 + "]" * 1000), 400, "nested"),
    "a body nested 100,000 deep": (Body.text('{"a":' * 100_000 + "1" + "}" * 100_000), 400, "nested"),
    "a facet nested 1,000 deep": (_with_deep(("run", "facets", "deep", "v"), 1000), 400, "nested"),
    "a schema facet nested 400 deep": (
        _with_deep(("job", "facets", "schema", "fields"), 400),
        400,
        "nested",
    ),
    "a batch nested 1,000 deep": (
        Body.text("[" + json.dumps(_MINIMAL) + "," + "[" * 1000 + "]" * 1000 + "]", path="/api/v1/lineage/batch"),
        400,
        "nested",
    ),
    "an integer of 5,000 digits": (Body.text(json.dumps(_MINIMAL)[:-1] + ',"n":' + "9" * 5000 + "}"), 400, "numeric"),
    "a float of 5,000 digits": (Body.text(json.dumps(_MINIMAL)[:-1] + ',"n":0.' + "1" * 5000 + "}"), 400, "numeric"),
    "1e400": (Body.text(json.dumps(_MINIMAL)[:-1] + ',"n":1e400}'), 400, "finite"),
    "-1e400 in a facet": (Body.text(json.dumps(_MINIMAL)[:-1] + ',"n":{"x":[-1e400]}}'), 400, "finite"),
    "NaN": (Body.text(json.dumps(_MINIMAL)[:-1] + ',"n":NaN}'), 400, "NaN"),
    "-Infinity": (Body.text(json.dumps(_MINIMAL)[:-1] + ',"n":-Infinity}'), 400, "Infinity"),
    "a job name of 450 KB": (Body.json(_with(("job", "name"), "x" * 450_000)), 400, "job.name"),
    "a dataset name of 450 KB": (
        Body.json(minimal_event(outputs=[{"namespace": WRITABLE, "name": "d" * 450_000}])),
        400,
        "outputs[0].name",
    ),
    "a producer of 450 KB": (Body.json(minimal_event(producer="p" * 450_000)), 400, "producer"),
    "a runId of 450 KB": (Body.json(_with(("run", "runId"), "r" * 450_000)), 400, "run.runId"),
    "a jobType integration of 450 KB": (
        Body.json(_with(("job", "facets", "jobType"), {"integration": "i" * 450_000, "processingType": "BATCH"})),
        400,
        "job.facets.jobType.integration",
    ),
    "a gzip body of 200,000 members": (
        Body(_gzip_members(200_000), {"content-type": "application/json", "content-encoding": "gzip"}),
        413,
        "members",
    ),
    "a gzip body of 200,000 members without Content-Encoding": (
        Body(_gzip_members(200_000), {"content-type": "application/json"}),
        413,
        "members",
    ),
    "a lone surrogate in a facet": (
        Body.text(json.dumps(_MINIMAL)[:-1] + ',"run":{"runId":"r","facets":{"x":{"v":"\\ud800"}}}}'),
        400,
        "run.facets.x.v",
    ),
    "a lone low surrogate in a key": (Body.text(json.dumps(_MINIMAL)[:-1] + ',"\\udc00":1}'), 400, "surrogate"),
    "a raw lone surrogate in the text": (Body.text('{"x":"\ud800"}'), 400, "UTF-8"),
    "a NUL in a job name": (Body.json(_with(("job", "name"), "a\x00b")), 400, "control character"),
    "an eventTime in Arabic-Indic digits": (
        Body.json(minimal_event(eventTime="٢٠٢٤-06-01T10:00:00Z")),
        400,
        "eventTime",
    ),
    "an eventTime in year 0": (Body.json(minimal_event(eventTime="0000-01-01T00:00:00Z")), 400, "eventTime"),
    "an eventTime past year 9999 once in UTC": (
        Body.json(minimal_event(eventTime="9999-12-31T23:30:00-05:00")),
        400,
        "eventTime",
    ),
    "10,000 inputs": (
        Body.json(minimal_event(inputs=[{"namespace": WRITABLE, "name": f"t{i}"} for i in range(10_000)])),
        400,
        "inputs",
    ),
    "a schema of 10,000 fields": (
        Body.json(
            minimal_event(
                outputs=[
                    {
                        "namespace": WRITABLE,
                        "name": "wide",
                        "facets": {"schema": {"fields": [{"name": f"c{i}"} for i in range(10_000)]}},
                    }
                ]
            )
        ),
        400,
        "outputs[0].facets.schema.fields",
    ),
    "a column lineage of 30,000 edges": (
        Body.json(
            minimal_event(
                outputs=[
                    {
                        "namespace": WRITABLE,
                        "name": "o",
                        "facets": {
                            "columnLineage": {
                                "fields": {
                                    "c": {
                                        "inputFields": [
                                            {"namespace": WRITABLE, "name": "i", "field": f"f{i}"}
                                            for i in range(30_000)
                                        ]
                                    }
                                }
                            }
                        },
                    }
                ]
            )
        ),
        400,
        "outputs[0].facets.columnLineage",
    ),
    "a facet of 3 MB": (Body.json(_with(("run", "facets", "big"), {"v": "x" * 3_000_000})), 400, "run.facets.big"),
    "1,000 facets on a run": (
        Body.json(_with(("run", "facets"), {f"f{i}": {} for i in range(1000)})),
        400,
        "run.facets",
    ),
    "an eventType of 1 MB": (Body.json(minimal_event(eventType="X" * 1_000_000)), 400, "eventType"),
    "an empty body": (Body(b""), 400, "empty"),
    "a JSON string as the body": (Body.text('"hello"'), 400, "object"),
    "a batch of arrays": (Body.text("[[],[[]],[1]]", path="/api/v1/lineage/batch"), 200, "partial_success"),
    "a batch that is an object": (Body.json(_MINIMAL, path="/api/v1/lineage/batch"), 400, "array"),
    "a batch of 100,000 nulls": (
        Body.text("[" + ",".join(["null"] * 100_000) + "]", path="/api/v1/lineage/batch"),
        413,
        "batch",
    ),
    "a charset other than UTF-8": (
        Body.json(_MINIMAL, headers={"content-type": "application/json; charset=latin-1"}),
        415,
        "charset",
    ),
    "two content types joined": (
        Body.json(_MINIMAL, headers={"content-type": "application/json, text/html"}),
        415,
        "Content-Type",
    ),
    "a brotli body": (
        Body(b"\x8b\x00\x80", {"content-type": "application/json", "content-encoding": "br"}),
        415,
        "Content-Encoding",
    ),
    "gzip announced, plain sent": (
        Body(json.dumps(_MINIMAL).encode(), {"content-type": "application/json", "content-encoding": "gzip"}),
        400,
        "gzip",
    ),
    "UTF-16 JSON": (Body(json.dumps(_MINIMAL).encode("utf-16")), 400, "UTF-8"),
}


# ---------------------------------------------------------------------------------------------- strategies
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**120), max_value=10**120)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["\ud800", "a\x00b", "٢٠٢٤-06-01T10:00:00Z", "x" * 5000, "2024-06-01T10:00:00Z", WRITABLE])
)
json_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
hostile_values = (
    json_values | st.sampled_from([70, 60]).map(_deep) | st.sampled_from([float("inf"), 10**101, -(10**100)])
)

_CORPUS = [event for _, event in concrete_corpus_events()]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in ``value`` down to 12 levels (the corpus events are at most 16 deep)."""
    out = [prefix]
    if len(prefix) >= 12:
        return out
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated_corpus_events(draw: st.DrawFn) -> Any:
    """A real corpus event, usually moved into a writable namespace, with one to three places replaced,
    deleted or duplicated."""
    event = copy.deepcopy(draw(st.sampled_from(_CORPUS)))
    if draw(st.booleans()) and isinstance(event.get("job"), dict):
        event["job"]["namespace"] = WRITABLE
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(event) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = event
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "wrap"]))
        if action == "replace":
            parent[path[-1]] = draw(hostile_values)
        elif action == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = [parent[path[-1]]]
    return event


@st.composite
def hostile_bodies(draw: st.DrawFn) -> Body:
    """Arbitrary JSON, mutated corpus events and batches of them, or raw bytes, under odd headers."""
    route = draw(st.sampled_from(["/api/v1/lineage", "/api/v1/lineage/batch"]))
    shape = draw(st.sampled_from(["json", "event", "batch", "bytes"]))
    if shape == "json":
        data = json.dumps(draw(json_values)).encode("utf-8", "surrogatepass")
    elif shape == "event":
        data = json.dumps(draw(mutated_corpus_events())).encode("utf-8", "surrogatepass")
    elif shape == "batch":
        batch = draw(st.lists(mutated_corpus_events() | json_values, max_size=4))
        data = json.dumps(batch).encode("utf-8", "surrogatepass")
    else:
        data = draw(st.binary(max_size=64))
    headers = {
        "content-type": draw(
            st.sampled_from(
                ["application/json", "application/json; charset=utf-8", "text/plain", "application/x+json", ""]
            )
        )
    }
    if draw(st.booleans()):
        data = gzip.compress(data)
        if draw(st.booleans()):
            headers["content-encoding"] = "gzip"
    return Body(data, headers, route)
