"""Bench only: moto's costs that grow with the table, which DynamoDB does not have, taken away.

1. moto answers every Query by scanning the whole table; DynamoDB reads one partition.

On the read bench's table (about 15,000 items) a scan per Query makes one walk take minutes and says nothing
about the code under test. ``fast_moto()`` makes moto look a Query's partition up instead: the base
table by its hash key (moto's own dict, always current), a GSI by a map of its hash key values built by
``freeze()`` once the seeding is over (nothing writes afterwards; ``freeze`` checks the map against moto's own
scan on every GSI before it is used). moto still evaluates the key condition, sorting, paging and projection
itself on the candidates, so answers are unchanged; anchors measured under the same patch stay comparable.

2. moto backs up a whole table (deep copy) for every item of every TransactWriteItems, to roll back a cancelled
   one: seeding 1,000 runs became quadratic. The backup here copies the table's item maps, not the items: a
   cancelled transaction would keep its in-place updates, so the seeding asserts that none is cancelled.
"""

from __future__ import annotations

import copy
import inspect
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models.table import Table

_ORIGINAL = Table.query
_SIGNATURE = inspect.signature(_ORIGINAL)
#: id(table) -> GSI hash attribute -> value -> items (built by ``freeze``).
_FROZEN: dict[int, dict[str, dict[Any, list[Any]]]] = {}


def _candidates(table: Table, arguments: dict[str, Any]) -> list[Any] | None:
    if arguments.get("index_name") is None:
        hash_key = arguments.get("hash_key")
        if hash_key is None or not table.range_key_attr:
            return None
        bucket = table.items.get(hash_key)
        return list(bucket.values()) if bucket else []
    conditions = arguments.get("hash_key_conditions") or []
    frozen = _FROZEN.get(id(table))
    if frozen is None or len(conditions) != 1:
        return None
    attribute, value = conditions[0]
    by_value = frozen.get(attribute)
    return None if by_value is None else list(by_value.get(value, []))


def _query(self: Table, *args: Any, **kwargs: Any) -> Any:
    arguments = _SIGNATURE.bind(self, *args, **kwargs).arguments
    candidates = _candidates(self, arguments)
    if candidates is None:
        return _ORIGINAL(self, *args, **kwargs)
    self.all_items = lambda: candidates  # type: ignore[method-assign]  # shadows the method for this call
    try:
        return _ORIGINAL(self, *args, **kwargs)
    finally:
        del self.all_items


def freeze(table: Table) -> None:
    """Index the table's GSI hash keys (call when nothing writes any more), checked against moto's scan."""
    by_attribute: dict[str, dict[Any, list[Any]]] = {}
    for index in table.global_indexes:
        for key in index.schema:
            if key["KeyType"] == "HASH":
                by_attribute.setdefault(key["AttributeName"], defaultdict(list))
    for item in table.all_items():
        for attribute, by_value in by_attribute.items():
            value = item.attrs.get(attribute)
            if value is not None:
                by_value[value].append(item)
    _FROZEN[id(table)] = by_attribute
    for attribute, by_value in by_attribute.items():  # the map holds exactly what a scan finds
        for value, items in list(by_value.items())[:3]:
            scanned = [i for i in Table.all_items(table) if attribute in i.attrs and i.attrs[attribute] == value]
            assert len(scanned) == len(items), (attribute, value)


class _ShallowCopy:
    """Stands in for the ``copy`` module in moto's DynamoDB backend: its only use is the transaction backup."""

    @staticmethod
    def deepcopy(value: Any) -> Any:
        if not isinstance(value, Table):
            return copy.deepcopy(value)
        backup = copy.copy(value)
        backup.items = defaultdict(dict, {k: dict(v) if isinstance(v, dict) else v for k, v in value.items.items()})
        return backup


@contextmanager
def fast_moto() -> Iterator[None]:
    Table.query = _query  # type: ignore[method-assign]
    dynamodb_models.copy = _ShallowCopy  # type: ignore[attr-defined]
    try:
        yield
    finally:
        Table.query = _ORIGINAL  # type: ignore[method-assign]
        dynamodb_models.copy = copy  # type: ignore[attr-defined]
        _FROZEN.clear()


def moto_table(name: str) -> Table:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    table: Table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[name]
    return table
