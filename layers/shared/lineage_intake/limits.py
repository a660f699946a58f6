"""The limits of one accepted event: what ingest enforces so that every accepted event stores and merges.

Each limit is far above what real producers send (measured on the corpus, dbt, Airflow and Spark events; the
figures and reasons are in README "Limits") and far below what breaks a later step: Python's recursion and
int-string limits, DynamoDB's 400 KB item, the merge's time and memory. Bodies past them are refused with
a 4xx whose field path and message name the limit, never a 5xx.

- ``scan_json`` runs on the raw text before ``json.loads``: nesting depth and numeric literal length are
  checked there, since the parser itself would fail on them with a RecursionError or ValueError.
- ``event_errors`` runs on one decoded event before the model: lone surrogates (DynamoDB stores UTF-8 only),
  identifier sizes and characters, facet counts and sizes, datasets per event, schema fields, column-lineage
  edges.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from itertools import accumulate
from typing import Any

from lineage_intake.errors import FieldError, field_path

#: Arrays and objects inside each other, counted from the body (a batch's array is one level).
MAX_DEPTH = 64
#: Characters of one numeric literal (sign, digits, point and exponent).
MAX_NUMBER_CHARS = 100
#: UTF-8 bytes of a namespace, a name, a runId, a producer, a facet name or a jobType field.
MAX_IDENTIFIER_BYTES = 8_192
#: Inputs, and outputs, of one event.
MAX_DATASETS = 1_000
#: Facets on one run, job or dataset (each of ``facets``, ``inputFacets``, ``outputFacets``).
MAX_FACETS = 500
#: UTF-8 bytes of one facet, as compact JSON.
MAX_FACET_BYTES = 2 * 1024 * 1024
#: Fields of one ``schema`` facet, nested fields included.
MAX_SCHEMA_FIELDS = 5_000
#: ``inputFields`` entries of one output's ``columnLineage`` facet, over all its fields and the dataset level.
MAX_COLUMN_EDGES = 20_000
#: gzip members in one body (clients send one) and the wall-clock seconds inflating may take.
MAX_GZIP_MEMBERS = 16
MAX_INFLATE_SECONDS = 2.0

_LONG_NUMBER = re.compile(rf"[-+0-9.eE]{{{MAX_NUMBER_CHARS + 1},}}")
# Opening brackets become +1 and closing ones -1 (a signed byte); everything else is deleted.
_BRACKETS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[{]}")
_PAIR = b"\x01\xff"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f]")


class LimitExceeded(ValueError):
    """The raw JSON text is past a limit that must be checked before parsing."""


def scan_json(text: str) -> None:
    """Check nesting depth and numeric literal length on the raw text, in linear time and C loops only.

    Strings are blanked first, so brackets and digits inside them do not count. On text that is not JSON the
    scan may report a limit instead of the syntax error: either way the body is refused with 400.
    """
    structure = _outside_strings(text)
    number = _LONG_NUMBER.search(structure)
    if number is not None:
        raise LimitExceeded(
            f"a numeric literal of {len(number.group())} characters is over the limit of {MAX_NUMBER_CHARS}"
        )
    brackets = remaining = structure.encode("ascii", "ignore").translate(_BRACKETS, _NOT_BRACKETS)
    # Each pass deletes the innermost empty pairs, so MAX_DEPTH passes empty any balanced body within the limit;
    # only what is left (too deep, or not JSON) pays for the exact count.
    for _ in range(MAX_DEPTH):
        if not remaining:
            return
        remaining = remaining.replace(_PAIR, b"")
    if not remaining:
        return
    deepest = max(accumulate(memoryview(brackets).cast("b")), default=0)
    if deepest > MAX_DEPTH:
        raise LimitExceeded(f"the JSON is nested {deepest} levels deep, over the limit of {MAX_DEPTH}")
    # Unbalanced but shallow: not JSON, and json.loads says where.


def _outside_strings(text: str) -> str:
    """The text with every JSON string removed: escaped backslashes first, then escaped quotes, then split."""
    return "".join(text.replace("\\\\", "").replace('\\"', "").split('"')[::2])


# ---------------------------------------------------------------------------------------------- one event
def event_errors(raw: Mapping[str, Any]) -> list[FieldError]:
    """Every limit one decoded event breaks, with its field path. Fields of the wrong type are left to the model."""
    surrogates = list(_lone_surrogates(raw, ()))
    if surrogates:  # nothing below can encode such a string
        return [
            FieldError(field_path(p), "holds a lone UTF-16 surrogate (\\ud800-\\udfff): not valid Unicode")
            for p in surrogates
        ]
    errors: list[FieldError] = []
    errors += _identifier_errors(raw)
    for key in ("run", "job", "dataset"):
        holder = raw.get(key)
        if isinstance(holder, Mapping):
            errors += _facet_errors((key,), holder, ("facets",))
    for key, extra in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        datasets = raw.get(key)
        if not isinstance(datasets, list):
            continue
        if len(datasets) > MAX_DATASETS:
            errors.append(FieldError(key, f"holds {len(datasets)} datasets, over the limit of {MAX_DATASETS}"))
            continue
        for i, dataset in enumerate(datasets):
            if isinstance(dataset, Mapping):
                errors += _facet_errors((key, i), dataset, ("facets", extra))
    return errors


def _lone_surrogates(value: Any, path: tuple[int | str, ...]) -> Iterator[tuple[int | str, ...]]:
    # Recursion is safe: scan_json has bounded the depth.
    if isinstance(value, str):
        if _LONE_SURROGATE.search(value):
            yield path
    elif isinstance(value, Mapping):
        for k, v in value.items():
            if _LONE_SURROGATE.search(k):
                yield (*path, k.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace"))
            else:
                yield from _lone_surrogates(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _lone_surrogates(v, (*path, i))


def _identifiers(raw: Mapping[str, Any]) -> Iterator[tuple[tuple[int | str, ...], Any, bool]]:
    """(path, value, is_a_name) of every string that becomes a key, an attribute or a merged field."""
    yield ("producer",), raw.get("producer"), False
    run, job = raw.get("run"), raw.get("job")
    if isinstance(run, Mapping):
        yield ("run", "runId"), run.get("runId"), True
        facets = run.get("facets")
        parent = facets.get("parent") if isinstance(facets, Mapping) else None
        if isinstance(parent, Mapping):
            base = ("run", "facets", "parent")
            for part in (parent, parent.get("root")):
                if not isinstance(part, Mapping):
                    continue
                prefix = base if part is parent else (*base, "root")
                parent_run, parent_job = part.get("run"), part.get("job")
                if isinstance(parent_run, Mapping):
                    yield (*prefix, "run", "runId"), parent_run.get("runId"), True
                if isinstance(parent_job, Mapping):
                    yield (*prefix, "job", "namespace"), parent_job.get("namespace"), True
                    yield (*prefix, "job", "name"), parent_job.get("name"), True
    for key in ("job", "dataset"):
        holder = raw.get(key)
        if isinstance(holder, Mapping):
            yield (key, "namespace"), holder.get("namespace"), True
            yield (key, "name"), holder.get("name"), True
    if isinstance(job, Mapping) and isinstance(job.get("facets"), Mapping):
        job_type = job["facets"].get("jobType")
        if isinstance(job_type, Mapping):
            for field in ("integration", "processingType", "jobType"):
                yield ("job", "facets", "jobType", field), job_type.get(field), False
    for key in ("inputs", "outputs"):
        datasets = raw.get(key)
        if isinstance(datasets, list) and len(datasets) <= MAX_DATASETS:
            for i, dataset in enumerate(datasets):
                if isinstance(dataset, Mapping):
                    yield (key, i, "namespace"), dataset.get("namespace"), True
                    yield (key, i, "name"), dataset.get("name"), True


def _identifier_errors(raw: Mapping[str, Any]) -> list[FieldError]:
    errors = []
    for path, value, is_name in _identifiers(raw):
        if not isinstance(value, str):
            continue
        size = len(value.encode("utf-8"))
        if size > MAX_IDENTIFIER_BYTES:
            errors.append(FieldError(field_path(path), f"is {size} bytes, over the limit of {MAX_IDENTIFIER_BYTES}"))
        elif is_name and _CONTROL.search(value):
            errors.append(FieldError(field_path(path), "holds a control character (U+0000-U+001F or U+007F)"))
    return errors


def _facet_errors(base: tuple[int | str, ...], holder: Mapping[str, Any], keys: tuple[str, ...]) -> list[FieldError]:
    errors: list[FieldError] = []
    for key in keys:
        facets = holder.get(key)
        if not isinstance(facets, Mapping):
            continue
        if len(facets) > MAX_FACETS:
            errors.append(
                FieldError(field_path((*base, key)), f"holds {len(facets)} facets, over the limit of {MAX_FACETS}")
            )
            continue
        for name, facet in facets.items():
            path = (*base, key, name)
            if len(name.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
                errors.append(
                    FieldError(
                        field_path((*base, key)), f"a facet name is over the limit of {MAX_IDENTIFIER_BYTES} bytes"
                    )
                )
                continue
            size = len(json.dumps(facet, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
            if size > MAX_FACET_BYTES:
                errors.append(
                    FieldError(field_path(path), f"is {size} bytes of JSON, over the limit of {MAX_FACET_BYTES}")
                )
            elif name == "schema" and isinstance(facet, Mapping):
                count = _schema_field_count(facet.get("fields"))
                if count > MAX_SCHEMA_FIELDS:
                    errors.append(
                        FieldError(
                            field_path((*path, "fields")),
                            f"holds {count} fields, over the limit of {MAX_SCHEMA_FIELDS}",
                        )
                    )
            elif name == "columnLineage" and isinstance(facet, Mapping):
                count = _column_edge_count(facet)
                if count > MAX_COLUMN_EDGES:
                    errors.append(
                        FieldError(
                            field_path(path), f"holds {count} input fields, over the limit of {MAX_COLUMN_EDGES}"
                        )
                    )
    return errors


def _schema_field_count(fields: Any) -> int:
    if not isinstance(fields, list):
        return 0
    return sum(1 + (_schema_field_count(f.get("fields")) if isinstance(f, Mapping) else 0) for f in fields)


def _column_edge_count(facet: Mapping[str, Any]) -> int:
    def count(entry: Any) -> int:
        inputs = entry.get("inputFields") if isinstance(entry, Mapping) else None
        return len(inputs) if isinstance(inputs, list) else 0

    fields = facet.get("fields")
    per_field = sum(count(f) for f in fields.values()) if isinstance(fields, Mapping) else 0
    dataset = facet.get("dataset")
    return per_field + (len(dataset) if isinstance(dataset, list) else count(dataset))
