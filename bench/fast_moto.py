"""Bench only: moto's costs that grow with the table, which DynamoDB does not have, taken away.

1. The local stack's own fixes (``lineage_intake_tools.local.moto_lock``): one lock around moto's DynamoDB
   backend (the read service queries side by side from threads, and these patches swap a table's
   ``all_items`` per call), a Query of a table's own key that reads one partition, and TransactWriteItems
   without moto's deep copy of the whole table per item (seeding 1,000 runs was quadratic).

2. moto answers every index Query by scanning the whole table; DynamoDB reads one partition. On the read
   bench's table (about 15,000 items) a scan per Query makes one walk take minutes and says nothing about the
   code under test. Here a GSI Query looks its hash key up in a map built by ``freeze()`` once the seeding is
   over (nothing writes afterwards; ``freeze`` checks the map against moto's own scan before it is used).
   moto still evaluates the key condition, sorting, paging and projection itself on the candidates, so
   answers are unchanged; anchors measured under the same patches stay comparable.
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from lineage_intake_tools.local.moto_lock import serialise_dynamodb, unserialise_dynamodb
from moto.dynamodb.models.table import Table

#: id(table) -> GSI hash attribute -> value -> items (built by ``freeze``).
_FROZEN: dict[int, dict[str, dict[Any, list[Any]]]] = {}


def _index_candidates(table: Table, index_name: str | None, conditions: Any) -> list[Any] | None:
    frozen = _FROZEN.get(id(table))
    if index_name is None or frozen is None or not conditions or len(conditions) != 1:
        return None
    attribute, value = conditions[0]
    by_value = frozen.get(attribute)
    return None if by_value is None else list(by_value.get(value, []))


def _index_query(base: Callable[..., Any]) -> Callable[..., Any]:
    """``Table.query`` reading a frozen GSI's candidates instead of every item (called under moto_lock's lock)."""

    signature = inspect.signature(base)  # moto passes index_name positionally

    def query(self: Table, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, *args, **kwargs).arguments
        candidates = _index_candidates(self, arguments.get("index_name"), arguments.get("hash_key_conditions"))
        if candidates is None:
            return base(self, *args, **kwargs)
        self.all_items = lambda: candidates  # type: ignore[method-assign]  # shadows the method for this call
        try:
            return base(self, *args, **kwargs)
        finally:
            del self.all_items

    return query


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


@contextmanager
def fast_moto() -> Iterator[None]:
    serialise_dynamodb()
    base = vars(Table)["query"]
    Table.query = _index_query(base)  # type: ignore[method-assign]
    try:
        yield
    finally:
        Table.query = base  # type: ignore[method-assign]
        unserialise_dynamodb()
        _FROZEN.clear()


def moto_table(name: str) -> Table:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    table: Table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[name]
    return table
