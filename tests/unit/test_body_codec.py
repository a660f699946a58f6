"""The stored body's codec: zlib with a preset dictionary named by the item's ``bodyEnc`` (zlib-d1 before,
zlib-d2 now), and the zlib-d2 dictionary as the generator derives it from the official schemas."""

from __future__ import annotations

import zlib

import pytest
from lineage_intake.service.ingest import canonical_json
from lineage_intake.store.body_dictionary import ZDICT_V2
from lineage_intake.store.events import BODY_ENCODING, decode_body, encode_body, with_key_fields
from lineage_intake_tools.body_dictionary import build

from tests.helpers.corpus import INVALID_FIXTURES, concrete_corpus_events


def _corpus_bodies() -> list[bytes]:
    return [canonical_json(event) for name, event in concrete_corpus_events() if name not in INVALID_FIXTURES]


def test_ingest_writes_bodies_with_the_zlib_d2_dictionary() -> None:
    assert BODY_ENCODING == "zlib-d2"


@pytest.mark.parametrize("encoding", ["zlib-d1", "zlib-d2"])
def test_every_corpus_event_round_trips_through_each_dictionary(encoding: str) -> None:
    # Given every valid event of the fixture corpus, in the stored (canonical) form
    for plain in _corpus_bodies():
        # When it is compressed with one dictionary and read back naming the same one
        stored = encode_body(plain, encoding)
        # Then the bytes are the event's, exactly
        assert decode_body(stored, encoding) == plain


def test_a_body_written_with_zlib_d1_does_not_decode_with_zlib_d2_so_the_name_matters() -> None:
    # Given a body of an item written before zlib-d2
    plain = _corpus_bodies()[0]
    old = encode_body(plain, "zlib-d1")
    # Then it needs its own dictionary: zlib refuses the other one (the header names the dictionary's checksum)
    assert decode_body(old, "zlib-d1") == plain
    with pytest.raises(zlib.error):
        decode_body(old, "zlib-d2")


def test_an_unknown_body_encoding_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="unknown body encoding 'zlib-d9'"):
        decode_body(encode_body(b"{}"), "zlib-d9")


def test_the_zlib_d2_dictionary_shrinks_the_corpus_against_zlib_d1_and_no_dictionary() -> None:
    # Given the corpus bodies
    bodies = _corpus_bodies()
    # When each is compressed without a dictionary, with zlib-d1 and with zlib-d2
    plain_zlib = sum(len(zlib.compress(b, 6)) for b in bodies)
    d1 = sum(len(encode_body(b, "zlib-d1")) for b in bodies)
    d2 = sum(len(encode_body(b, "zlib-d2")) for b in bodies)
    # Then zlib-d2 stores the fewest bytes (its margins are in docs/merge.md#storage-cost, measured by make bench)
    assert d2 < d1 < plain_zlib


def test_the_layer_dictionary_is_what_the_generator_derives_from_the_official_schemas() -> None:
    # Given the generator, run on the committed OpenLineage schemas
    derived = build()
    # Then the layer's zlib-d2 is its output, byte for byte: a change to either is a new dictionary
    assert derived == ZDICT_V2
    assert b'"_schemaURL":"https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json' in ZDICT_V2
    assert zlib.adler32(ZDICT_V2) == 0x8124DBC3


def test_event_time_and_id_come_back_from_the_sort_key_of_items_that_leave_them_out() -> None:
    # Given an item written since zlib-d2 (no eventTime, no eventId) and one written before (both present)
    new = {"pk": "RUN#x", "sk": "2026-11-21T10:00:00.000000Z#0123abcd", "kind": "RUN"}
    old = {**new, "eventTime": "2026-11-21T10:00:00Z", "eventId": "0123abcd"}
    # Then both read the same way; an item's own attributes win
    assert with_key_fields(dict(new)) == {**new, "eventTime": "2026-11-21T10:00:00.000000Z", "eventId": "0123abcd"}
    assert with_key_fields(dict(old)) == old
    # And a quarantined item's sort key (receivedAt#digest) is not read as an event's
    rejected = {"pk": "REJECTED#2026-11-21", "sk": "2026-11-21T10:00:00Z#beef", "kind": "REJECTED"}
    assert with_key_fields(dict(rejected)) == rejected
