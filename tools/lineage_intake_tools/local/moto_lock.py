"""One lock around moto's in-process DynamoDB backend, for the local stack only (never the Lambda code path).

moto's ``TransactWriteItems`` deep-copies every table it touches before it writes (to roll back on a failed
condition), and on a failure puts that copy back in place of the table. Under the local stack's concurrency
(the HTTP front, the merge workers and the CLI all call the one ``ThreadedMotoServer`` at once) this broke in
two ways: the copy iterated a table's items while another request added one ("dictionary changed size during
iteration", 14 times in one load test, 6 stream records sent to the DLQ), and a rolled-back transaction
erased whatever other requests had written to that table since its copy. DynamoDB does neither.

``serialise_dynamodb()`` wraps every public method of moto's ``DynamoDBBackend`` and ``DynamoDBStreamsBackend``
with one re-entrant lock, so a transaction is atomic against every other read and write. moto's work is pure
Python under the GIL, so the lock serialises nothing that ran in parallel before.

It also replaces that whole-table copy, which made every transaction cost as much as the table is large (a
merge of a run at ingest's limits, 220 transactions into a growing table, took over 10 minutes and 6 GB on moto),
with ``linear_transact_write_items``: every condition is checked first against the items as they are (as
DynamoDB does: all or nothing), then the writes are applied, and only the items the transaction touches are kept
to restore if a write fails. Under the lock, that is the same all-or-nothing outcome.

And a ``Query`` of a table's own key (not an index) reads that one partition (``partition_query``): moto's
listed and sorted every item of the table for each one, so every merge (two such Queries) got slower as the
tables filled, and the local stack fell further behind the longer a load lasted. And an item is sized once when
moto builds it (``linear_item_init``), not again at each of its attributes. See docs/merge.md "Throughput".
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable
from typing import Any

LOCK = threading.RLock()
_MARK = "_lineage_intake_serialised"


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with LOCK:
            return method(*args, **kwargs)

    setattr(wrapper, _MARK, method)
    return wrapper


def _targets() -> list[type]:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    return [DynamoDBBackend, DynamoDBStreamsBackend]


def _public_methods(cls: type) -> list[str]:
    names = []
    for name, value in vars(cls).items():
        if name.startswith("_") or not callable(value) or isinstance(value, staticmethod | classmethod | type):
            continue
        names.append(name)
    return names


def linear_transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's ``TransactWriteItems`` without its copy of whole tables: check every condition, then write, and
    restore the touched items if a write fails. Same answers and errors as moto's (the caller holds ``LOCK``)."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    targets: set[tuple[str, str]] = set()
    errors: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
    writes: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = []
    for item in transact_items:
        if len(item) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        original: dict[str, Any] | None = None
        try:
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            if op_type == "Put":
                table = self.get_table(table_name)
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            target = (str(table_name), str(dict(sorted(key.items()))))
            if target in targets:
                raise MultipleTransactionsException()
            targets.add(target)
            current = self.get_item(table_name, key)
            condition = op.get("ConditionExpression")
            if condition is not None:
                names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                if not get_filter_expression(condition, names, values).expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original)
            errors.append((None, None, None))
            writes.append((op_type, op, table_name, key))
        except (MultipleTransactionsException, MockValidationException):
            raise
        except ConditionalCheckFailed as exc:
            errors.append(("ConditionalCheckFailed", str(exc.message), original))
        except Exception as exc:
            errors.append((type(exc).__name__, str(exc), original))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)
    kept = [(name, key, copy.deepcopy(self.get_item(name, key))) for _, _, name, key in writes]
    try:
        for op_type, op, table_name, key in writes:
            names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            if op_type == "Put":
                self.put_item(table_name, op["Item"])
            elif op_type == "Delete":
                self.delete_item(table_name, key)
            elif op_type == "Update":
                self.update_item(table_name, key, op["UpdateExpression"], names, values)
    except Exception:
        for table_name, key, item in kept:
            _restore(self.get_table(table_name), key, item)
        raise


def partition_query(original: Callable[..., Any]) -> Callable[..., Any]:
    """``Table.query`` reading only ``hash_key``'s partition when no index is named (same results: moto
    filters ``all_items()`` by hash key there; here ``all_items`` is that partition, sorted the same way)."""

    @functools.wraps(original)
    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        if index_name or hash_key is None or self.range_key_attr is None:
            return original(self, hash_key, *args, **kwargs)
        partition = self.items.get(hash_key) or {}
        items = sorted(partition.values(), key=lambda item: item.range_key)
        self.all_items = lambda: items  # an instance attribute, for this call only (the caller holds LOCK)
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    setattr(query, _MARK, original)
    return query


def linear_item_init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
    """moto's ``Item.__init__`` sizes the whole item again at each attribute it sets (quadratic in the item's
    attributes: a 5,000-field schema was sized again for every attribute after it); this sizes each attribute
    once and checks the total once. The same ``ItemSizeTooLarge`` at the same size, since the size only grows."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    self.hash_key = hash_key
    self.range_key = range_key
    values = {key: DynamoType(value) for key, value in attrs.items()}
    if sum(bytesize(key) + value.size() for key, value in values.items()) > MOTO_ITEM_LIMIT:
        raise ItemSizeTooLarge
    self.attrs = LimitedSizeDict()
    dict.update(self.attrs, values)  # later writes of one attribute keep moto's own check


#: moto's limit in ``LimitedSizeDict`` (between DynamoDB's documented 400 KB and the 409-410 KB it accepts).
MOTO_ITEM_LIMIT = 405_000


def _restore(table: Any, key: dict[str, Any], item: Any) -> None:
    """Put an item back as it was (``None``: absent), without a stream record, as a cancelled write leaves it."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    hash_value = DynamoType(key[table.hash_key_attr])
    if table.range_key_attr is None:
        if item is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = item
        return
    range_value = DynamoType(key[table.range_key_attr])
    if item is None:
        table.items[hash_value].pop(range_value, None)
    else:
        table.items[hash_value][range_value] = item


def serialise_dynamodb() -> None:
    """Install the lock on moto's DynamoDB and DynamoDB Streams backends of this process, and the linear
    transaction (idempotent)."""
    from moto.dynamodb.models import DynamoDBBackend

    for cls in _targets():
        for name in _public_methods(cls):
            method = vars(cls)[name]
            if hasattr(method, _MARK):
                continue
            replacement = (
                linear_transact_write_items if cls is DynamoDBBackend and name == "transact_write_items" else method
            )
            wrapper = _locked(replacement)
            setattr(wrapper, _MARK, method)  # the original, for unserialise_dynamodb
            setattr(cls, name, wrapper)
    from moto.dynamodb.models.table import Table

    if not hasattr(vars(Table)["query"], _MARK):
        Table.query = partition_query(vars(Table)["query"])  # type: ignore[method-assign]
    from moto.dynamodb.models.dynamo_type import Item

    if not hasattr(vars(Item)["__init__"], _MARK):
        setattr(linear_item_init, _MARK, vars(Item)["__init__"])
        Item.__init__ = linear_item_init  # type: ignore[method-assign]


def unserialise_dynamodb() -> None:
    """Remove the lock again (tests compare moto with and without it in one process)."""
    from moto.dynamodb.models.table import Table

    original_query = getattr(vars(Table)["query"], _MARK, None)
    if original_query is not None:
        Table.query = original_query  # type: ignore[method-assign]
    from moto.dynamodb.models.dynamo_type import Item

    original_init = getattr(vars(Item)["__init__"], _MARK, None)
    if original_init is not None:
        Item.__init__ = original_init  # type: ignore[method-assign]
    for cls in _targets():
        for name in _public_methods(cls):
            original = getattr(vars(cls)[name], _MARK, None)
            if original is not None:
                setattr(cls, name, original)


def is_serialised() -> bool:
    from moto.dynamodb.models import DynamoDBBackend

    return hasattr(vars(DynamoDBBackend)["transact_write_items"], _MARK)
