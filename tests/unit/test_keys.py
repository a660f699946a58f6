"""Key encoding: fixed-size keys for any name, and no two different names ever share a key."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from lineage_intake import keys

PARTITION_KEY_LIMIT = 2048
SORT_KEY_LIMIT = 1024


def test_five_kilobyte_names_give_keys_inside_dynamodb_limits() -> None:
    name = "n" * 5 * 1024
    pk = keys.run_pk(name, name, name)
    sk = keys.event_sk(datetime(2024, 1, 1, tzinfo=UTC), "f" * 32)
    assert len(pk.encode()) <= PARTITION_KEY_LIMIT
    assert len(sk.encode()) <= SORT_KEY_LIMIT
    assert len(keys.dataset_pk(name, name).encode()) <= PARTITION_KEY_LIMIT


def test_names_with_separators_and_unicode_give_distinct_keys() -> None:
    names = ["a#b", "a|b", "a/b", "a", "b", "emoji 🚀 job", "ünïcödé", "a##", "#", "|", "/"]
    pks = {keys.job_pk(ns, n) for ns in names for n in names}
    assert len(pks) == len(names) ** 2


def test_hash_inside_a_name_cannot_shift_the_boundary_between_namespace_and_job() -> None:
    assert keys.job_pk("a#b", "c") != keys.job_pk("a", "b#c")
    assert keys.run_pk("a#b", "c", "r") != keys.run_pk("a", "b#c", "r")
    assert keys.dataset_key("s3://b", "k/x") != keys.dataset_key("s3://b/k", "x")


def test_event_sort_keys_order_by_event_time() -> None:
    early = keys.event_sk(datetime(2024, 1, 1, 9, 0, tzinfo=UTC), "ffff")
    late = keys.event_sk(datetime(2024, 1, 1, 10, 0, tzinfo=UTC), "0000")
    assert early < late


def test_each_kind_of_partition_has_its_own_prefix() -> None:
    assert keys.run_pk("a", "b", "c").startswith("RUN#")
    assert keys.job_pk("a", "b").startswith("JOB#")
    assert keys.dataset_pk("a", "b").startswith("DATASET#")


@given(st.lists(st.text(), min_size=1, max_size=4), st.lists(st.text(), min_size=1, max_size=4))
def test_the_part_encoding_is_injective(left: list[str], right: list[str]) -> None:
    if left != right:
        assert keys.encode_parts(*left) != keys.encode_parts(*right)
