"""The ingest limits on their own: the raw-text scan, the per-event checks and the bounded gzip inflate."""

from __future__ import annotations

import gzip
import itertools
import json

import pytest
from lineage_intake import limits
from lineage_intake.body import gunzip_capped, parse_json
from lineage_intake.errors import MalformedBody, PayloadTooLarge
from lineage_intake.limits import LimitExceeded, event_errors, scan_json
from lineage_intake.models import parse_event_time

from tests.helpers.hostile import minimal_event


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_a_body_exactly_at_the_depth_limit_passes_and_one_level_more_is_refused() -> None:
    # Given bodies nested exactly MAX_DEPTH and MAX_DEPTH + 1 deep
    # When they are scanned
    scan_json(nested(limits.MAX_DEPTH))
    # Then only the deeper one is refused, naming its depth and the limit
    with pytest.raises(LimitExceeded, match=f"nested {limits.MAX_DEPTH + 1} levels deep, over the limit of 64"):
        scan_json(nested(limits.MAX_DEPTH + 1))


def test_brackets_digits_and_escaped_quotes_inside_strings_do_not_count() -> None:
    # Given strings full of brackets, digits and escaped quotes and backslashes
    text = json.dumps({"a": "[" * 500 + '\\"' * 10 + "9" * 500, "b\\": ["\\", '"{{{{']})
    # When the text is scanned
    scan_json(text)
    # Then nothing is refused, and the value is parsed as written
    assert json.loads(text)["a"].startswith("[[")


def test_many_shallow_arrays_are_not_mistaken_for_depth() -> None:
    # Given a million empty arrays side by side, one level deep
    # When scanned, then nothing is refused
    scan_json("[" + ",".join(["[]"] * 1_000_000) + "]")


def test_a_numeric_literal_one_character_over_the_limit_is_refused_before_int_conversion() -> None:
    # Given a literal of MAX_NUMBER_CHARS characters and one of one more
    ok, bad = "9" * limits.MAX_NUMBER_CHARS, "9" * (limits.MAX_NUMBER_CHARS + 1)
    # When both are parsed
    assert parse_json(f'{{"n": {ok}}}'.encode()) == {"n": int(ok)}
    # Then only the longer one is refused with 400 and the limit in its message
    with pytest.raises(MalformedBody, match="101 characters is over the limit of 100"):
        parse_json(f'{{"n": {bad}}}'.encode())


@pytest.mark.parametrize("literal", ["1e400", "-1e400", "1E+999", "0.1e99999"])
def test_a_literal_that_overflows_a_double_is_refused_not_stored_as_infinity(literal: str) -> None:
    # Given a number too large for a double, written with an exponent
    # When it is parsed, then it is refused with 400 naming the literal
    with pytest.raises(MalformedBody, match="finite"):
        parse_json(f'{{"v": [{literal}]}}'.encode())


@pytest.mark.parametrize(
    "value",
    [
        "\u0662\u0660\u0662\u0664-06-01T10:00:00Z",  # Arabic-Indic digits
        "2024-06-01T\u0661\u0660:00:00Z",
        "2024-06-01T10:00:00+\uff10\uff15:00",  # full-width digits
        "0000-01-01T00:00:00Z",
    ],
)
def test_an_event_time_with_non_ascii_digits_or_year_zero_is_refused(value: str) -> None:
    # Given a date-time RFC 3339 does not allow
    # When it is parsed, then it is refused
    with pytest.raises(ValueError):
        parse_event_time(value)


def test_each_identifier_over_its_size_names_its_own_path() -> None:
    # Given an event whose job name and second input's name are one byte over the limit
    big = "é" * (limits.MAX_IDENTIFIER_BYTES // 2) + "x"
    raw = minimal_event(inputs=[{"namespace": "n", "name": "ok"}, {"namespace": "n", "name": big}])
    raw["job"]["name"] = big
    # When its limits are checked
    errors = event_errors(raw)
    # Then both paths are named, with their size in bytes (not characters)
    message = f"is {limits.MAX_IDENTIFIER_BYTES + 1} bytes, over the limit of {limits.MAX_IDENTIFIER_BYTES}"
    assert [(e.path, e.message) for e in errors] == [("job.name", message), ("inputs[1].name", message)]


def test_nested_schema_fields_count_towards_the_schema_limit() -> None:
    # Given a schema of 2,501 structs of one field each (5,002 fields with the nested ones)
    fields = [{"name": f"s{i}", "type": "struct", "fields": [{"name": "x"}]} for i in range(2501)]
    raw = minimal_event(outputs=[{"namespace": "n", "name": "t", "facets": {"schema": {"fields": fields}}}])
    # When its limits are checked, then the schema is named with its count
    [error] = event_errors(raw)
    assert (error.path, error.message) == (
        "outputs[0].facets.schema.fields",
        "holds 5002 fields, over the limit of 5000",
    )


def test_a_single_gzip_member_inflates_and_too_many_members_are_refused_before_inflating_them() -> None:
    # Given one gzip member, and MAX_GZIP_MEMBERS + 1 members
    one = gzip.compress(b'{"a":1}')
    many = gzip.compress(b" ") * limits.MAX_GZIP_MEMBERS + one
    # When each is inflated
    assert gunzip_capped(one, 1024) == b'{"a":1}'
    # Then the second is refused with 413 naming the member limit
    with pytest.raises(PayloadTooLarge, match="more than 16 members"):
        gunzip_capped(many, 1024)


def test_inflating_stops_with_413_once_its_time_is_spent() -> None:
    # Given a large single-member body and a clock that advances one second per read
    body = gzip.compress(bytes(range(256)) * 40_000)
    ticks = itertools.count()
    # When it is inflated with a two-second budget
    # Then it stops with 413 naming the time limit, whatever the machine's speed
    with pytest.raises(PayloadTooLarge, match="more than 2 s to inflate"):
        gunzip_capped(body, 100 * 1024 * 1024, max_seconds=2, clock=lambda: float(next(ticks)))
