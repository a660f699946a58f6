"""Meter DynamoDB capacity in-process, as on-demand DynamoDB bills it, from the items themselves.

moto's ``ConsumedCapacity`` is not accurate, and estimating by hand misses attributes, so the meter hooks a
boto3 DynamoDB client (botocore events; the code under test is not changed) and computes the units from
item sizes with the documented rules (docs/ links below).

How a bench uses it::

    from meter import Meter                      # bench/ is on sys.path when bench/run.py runs
    meter = Meter().attach(dynamodb_client)      # every later call on that client is metered (attach as
                                                 # many clients as the code under test creates)
    before = meter.snapshot()
    ...run one phase (ingest 1,000 events, merge them)...
    used = meter.delta(before)                   # a Usage: used.wru, used.rru, used.requests
    used.total_wru, used.total_rru               # all tables and their GSIs
    used.wru["local-LineageTable"]               # one table (index writes are keyed "table/index")
    used.requests["PutItem"]                     # requests per operation
    with meter.disabled():                       # setup calls that must not be counted (this thread)
        client.put_item(...)

Rules (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):

- Item size: sum over attributes of UTF-8 name length + value size. S: UTF-8 bytes; B: raw bytes; BOOL and
  NULL: 1; N: 1 byte per two significant digits (leading and trailing zeroes trimmed, rounded up) + 1, the
  documented approximation; SS/NS/BS: sum of the elements; L/M: 3 bytes + 1 byte per element + element sizes
  (+ key names for M), as the docs' "each List or Map element also requires 1 byte of overhead".
- Writes (Put/Update/Delete, each item of BatchWriteItem): ceil(max(old size, new size) / 1 KB), at least 1.
  The old item is read through the same client with the hooks off (so items written before attaching count
  too), and UpdateItem's new item is read back after the call. A failed conditional write costs the size of
  the existing item (at least 1), as the docs say; it writes no index.
- TransactWriteItems: 2x per item, ConditionCheck included (billed as a write of the checked item's size). A
  cancelled transaction is billed 2x the existing items' sizes (at least 1 each), with no index writes: our
  choice, the docs only say cancelled transactions consume capacity. Index writes of a transaction are
  billed 1x (they are propagated asynchronously, not transactionally).
- GSI writes (per index, from DescribeTable, cached): an item is in the index when it has the index's key
  attributes. Entering: a put of the projected size; leaving: a delete of the old projected size; index key
  changed: both; only projected attributes changed: one write of the larger projected size; nothing
  projected changed: 0. Projected size: KEYS_ONLY = table keys + index keys, INCLUDE = those + the listed
  attributes, ALL = the whole item. Each write ceil(size / 1 KB), at least 1.
- Reads: GetItem and each item of BatchGetItem ceil(size / 4 KB), at least 1 even when not found, halved
  when eventually consistent (the default); the full item size counts whatever the projection. Query/Scan:
  ceil(sum of the sizes of the items read, before any filter, / 4 KB) per request (page), at least 1, halved
  when eventually consistent; on an index the items read are the index's projected items. TransactGetItems
  2x per item, strongly consistent.

Not metered: PartiQL statements, and clients whose calls are stubbed (the meter reads through the client).
"""

from __future__ import annotations

import math
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from types import SimpleNamespace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

KB = 1024
WRITE_BLOCK = KB
READ_BLOCK = 4 * KB

Item = Mapping[str, Mapping[str, Any]]


# ---------------------------------------------------------------------------------------------- sizes
def number_size(text: str) -> int:
    """Size of an N value: 1 byte per two significant digits + 1 (leading/trailing zeroes trimmed)."""
    mantissa = text.strip().lstrip("+-").lower().split("e", 1)[0]
    digits = mantissa.replace(".", "").strip("0")
    return math.ceil(len(digits) / 2) + 1


def value_size(value: Mapping[str, Any]) -> int:
    """Size of one attribute value in DynamoDB's wire format (``{"S": "x"}``), without its name."""
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw.encode("utf-8"))
    if kind == "N":
        return number_size(raw)
    if kind == "B":
        return len(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in raw)
    if kind == "NS":
        return sum(number_size(n) for n in raw)
    if kind == "BS":
        return sum(len(b) for b in raw)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in raw)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + value_size(v) for k, v in raw.items())
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def item_size(item: Item | None) -> int:
    """Size of an item in bytes: attribute names (UTF-8) plus value sizes."""
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def write_units_for(size: int) -> int:
    return max(1, math.ceil(size / WRITE_BLOCK))


def read_units_for(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_BLOCK))
    return float(units) if consistent else units / 2


# ---------------------------------------------------------------------------------------------- tables
@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]
    projection: str  # ALL, KEYS_ONLY or INCLUDE
    include: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableShape:
    keys: tuple[str, ...]
    indexes: tuple[Index, ...] = ()

    @classmethod
    def from_description(cls, table: Mapping[str, Any]) -> TableShape:
        keys = tuple(k["AttributeName"] for k in table["KeySchema"])
        indexes = []
        for gsi in table.get("GlobalSecondaryIndexes", []):
            projection = gsi.get("Projection", {})
            indexes.append(
                Index(
                    name=gsi["IndexName"],
                    keys=tuple(k["AttributeName"] for k in gsi["KeySchema"]),
                    projection=projection.get("ProjectionType", "ALL"),
                    include=tuple(projection.get("NonKeyAttributes", ())),
                )
            )
        return cls(keys=keys, indexes=tuple(indexes))

    def key_of(self, item: Item) -> dict[str, Any]:
        return {name: item[name] for name in self.keys}

    def projected(self, index: Index, item: Item | None) -> dict[str, Any] | None:
        """The item as the index stores it, or None when the item is not in the (sparse) index."""
        if not item or any(name not in item for name in index.keys):
            return None
        if index.projection == "ALL":
            return dict(item)
        names = set(self.keys) | set(index.keys) | set(index.include if index.projection == "INCLUDE" else ())
        return {name: value for name, value in item.items() if name in names}


# ---------------------------------------------------------------------------------------------- usage
def _units() -> defaultdict[str, float]:
    return defaultdict(float)


@dataclass
class Usage:
    """Units and requests: ``wru``/``rru`` keyed by table name (index writes by ``table/index``)."""

    wru: defaultdict[str, float] = field(default_factory=_units)
    rru: defaultdict[str, float] = field(default_factory=_units)
    requests: Counter[str] = field(default_factory=Counter)

    @property
    def total_wru(self) -> float:
        return sum(self.wru.values())

    @property
    def total_rru(self) -> float:
        return sum(self.rru.values())

    def copy(self) -> Usage:
        return Usage(defaultdict(float, self.wru), defaultdict(float, self.rru), Counter(self.requests))

    def add(self, other: Usage) -> None:
        for mine, theirs in ((self.wru, other.wru), (self.rru, other.rru)):
            for name, units in theirs.items():
                mine[name] += units
        self.requests.update(other.requests)

    def __sub__(self, other: Usage) -> Usage:
        def minus(a: Mapping[str, float], b: Mapping[str, float]) -> defaultdict[str, float]:
            return defaultdict(float, {k: v - b.get(k, 0.0) for k, v in a.items() if v != b.get(k, 0.0)})

        return Usage(minus(self.wru, other.wru), minus(self.rru, other.rru), self.requests - other.requests)


def _table_name(name: str) -> str:
    """Operations accept a table name or ARN; usage is keyed by name."""
    return name.rsplit("/", 1)[-1] if name.startswith("arn:") else name


WRITE_OPS = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
READ_OPS = ("GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems")


# ---------------------------------------------------------------------------------------------- meter
class Meter:
    """Counts on-demand capacity units of the DynamoDB clients it is attached to. Thread-safe."""

    def __init__(self) -> None:
        self.usage = Usage()
        self._lock = threading.RLock()
        self._local = threading.local()
        self._shapes: dict[str, TableShape] = {}

    # ------------------------------------------------------------------ public API
    def attach(self, client: Any) -> Meter:
        """Meter every later call on ``client`` (a boto3 ``dynamodb`` client). Returns the meter."""
        events = client.meta.events
        tag = f"{id(self)}-{id(client)}"
        events.register("provide-client-params.dynamodb.*", partial(self._before, client), unique_id=f"meter<{tag}")
        events.register("after-call.dynamodb.*", partial(self._after, client), unique_id=f"meter>{tag}")
        return self

    def call(self, client: Any, operation: str, params: dict[str, Any], send: Callable[[], dict[str, Any]]) -> Any:
        """Meter one call of a client that botocore does not carry (``memory_dynamodb.MemoryDynamoDB``), by the
        same hooks: ``send()`` makes the call; a ``ClientError`` is billed as botocore's after-call sees it."""
        model, context = SimpleNamespace(name=operation), dict[str, Any]()
        self._before(client, params, model, context)
        try:
            parsed = send()
        except ClientError as exc:
            self._after(client, exc.response, model, context)
            raise
        self._after(client, parsed, model, context)
        return parsed

    def snapshot(self) -> Usage:
        with self._lock:
            return self.usage.copy()

    def delta(self, since: Usage) -> Usage:
        """What was used after ``since`` (a ``snapshot()``)."""
        return self.snapshot() - since

    @contextmanager
    def disabled(self) -> Iterator[None]:
        """Calls made in this block, on this thread, are not metered."""
        previous = getattr(self._local, "off", False)
        self._local.off = True
        try:
            yield
        finally:
            self._local.off = previous

    def _shape(self, table: str) -> TableShape:
        """Key schema and GSIs of ``table``, from one DescribeTable (not metered), cached."""
        table = _table_name(table)
        if table not in self._shapes:
            with self.disabled():
                described = self._local.client.describe_table(TableName=table)["Table"]
            self._shapes[table] = TableShape.from_description(described)
        return self._shapes[table]

    # ------------------------------------------------------------------ hooks
    def _off(self) -> bool:
        return bool(getattr(self._local, "off", False))

    def _before(self, client: Any, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        """Before the request: remember the parameters and, for writes, the items as they are now."""
        if self._off() or model.name not in WRITE_OPS + READ_OPS:
            return
        self._local.client = client  # reads through the client making the call (calls are synchronous)
        try:
            old = self._old_items(model.name, params)
        except (KeyError, TypeError, ValueError, BotoCoreError, ClientError):
            return  # malformed parameters or a missing table: the call itself fails with botocore's error
        context["meter"] = {"params": params, "old": old}

    def _after(self, client: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        state = context.get("meter")
        if state is None or self._off():
            return
        self._local.client = client
        op, params, error = model.name, state["params"], parsed.get("Error", {}).get("Code")
        usage = Usage()
        usage.requests[op] += 1
        if op in WRITE_OPS:
            self._meter_writes(op, params, parsed, state["old"], error, usage)
        elif not error:
            self._meter_reads(op, params, parsed, usage)
        with self._lock:
            self.usage.add(usage)

    # ------------------------------------------------------------------ writes
    def _targets(self, op: str, params: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any], Any]]:
        """(kind, table, key, item or None) of every item a write touches."""
        if op in ("PutItem", "UpdateItem", "DeleteItem"):
            table = _table_name(params["TableName"])
            if op == "PutItem":
                return [(op, table, self._shape(table).key_of(params["Item"]), params["Item"])]
            return [(op, table, params["Key"], None)]
        out: list[tuple[str, str, dict[str, Any], Any]] = []
        if op == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        item = request["PutRequest"]["Item"]
                        out.append(("PutItem", table, self._shape(table).key_of(item), item))
                    else:
                        out.append(("DeleteItem", table, request["DeleteRequest"]["Key"], None))
        else:  # TransactWriteItems
            names = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "Check"}
            for entry in params["TransactItems"]:
                ((kind, spec),) = entry.items()
                table = _table_name(spec["TableName"])
                key = self._shape(table).key_of(spec["Item"]) if kind == "Put" else spec["Key"]
                out.append((names[kind], table, key, spec.get("Item")))
        return [(k, _table_name(t), key, item) for k, t, key, item in out]

    def _get(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        with self.disabled():
            found = self._local.client.get_item(TableName=table, Key=key, ConsistentRead=True)
        return found.get("Item")

    def _old_items(self, op: str, params: Mapping[str, Any]) -> list[dict[str, Any] | None]:
        if op not in WRITE_OPS:
            return []
        return [self._get(table, key) for _kind, table, key, _item in self._targets(op, params)]

    def _meter_writes(
        self,
        op: str,
        params: Mapping[str, Any],
        parsed: Mapping[str, Any],
        olds: list[dict[str, Any] | None],
        error: str | None,
        usage: Usage,
    ) -> None:
        factor = 2 if op == "TransactWriteItems" else 1
        if error in ("ConditionalCheckFailedException", "TransactionCanceledException"):
            for (_kind, table, _key, _item), old in zip(self._targets(op, params), olds, strict=True):
                usage.wru[table] += factor * write_units_for(item_size(old))
            return
        if error:  # throttled or invalid: nothing was written
            return
        unprocessed = parsed.get("UnprocessedItems") or {}
        for (kind, table, key, item), old in zip(self._targets(op, params), olds, strict=True):
            if _is_unprocessed(unprocessed.get(table, []), kind, item, key):
                continue
            if kind == "Check":
                usage.wru[table] += factor * write_units_for(item_size(old))
                continue
            new = item if kind == "PutItem" else None if kind == "DeleteItem" else self._get(table, key)
            usage.wru[table] += factor * write_units_for(max(item_size(old), item_size(new)))
            shape = self._shape(table)
            for index in shape.indexes:
                units = _index_write_units(shape.projected(index, old), shape.projected(index, new), index)
                if units:
                    usage.wru[f"{table}/{index.name}"] += units

    # ------------------------------------------------------------------ reads
    def _meter_reads(self, op: str, params: Mapping[str, Any], parsed: Mapping[str, Any], usage: Usage) -> None:
        if op == "GetItem":
            table = _table_name(params["TableName"])
            item = self._full(table, params["Key"], parsed.get("Item"), params)
            usage.rru[table] += read_units_for(item_size(item), bool(params.get("ConsistentRead")))
        elif op == "BatchGetItem":
            unprocessed = parsed.get("UnprocessedKeys") or {}
            for table, request in params["RequestItems"].items():
                skipped = unprocessed.get(table, {}).get("Keys", [])
                for key in request["Keys"]:
                    if key in skipped:
                        continue
                    item = self._get(_table_name(table), key)  # the full item, whatever the projection
                    usage.rru[_table_name(table)] += read_units_for(
                        item_size(item), bool(request.get("ConsistentRead"))
                    )
        elif op == "TransactGetItems":
            for entry in params["TransactItems"]:
                spec = entry["Get"]
                table = _table_name(spec["TableName"])
                usage.rru[table] += 2 * read_units_for(item_size(self._get(table, spec["Key"])), True)
        else:  # Query, Scan
            table = _table_name(params["TableName"])
            items = parsed.get("Items", [])
            if any(p in params for p in ("FilterExpression", "ProjectionExpression", "Select", "AttributesToGet")):
                items = self._read_unfiltered(op, params)
            size = sum(item_size(i) for i in items)
            usage.rru[table] += read_units_for(size, bool(params.get("ConsistentRead")))

    def _full(self, table: str, key: Any, returned: Any, params: Mapping[str, Any]) -> Any:
        if returned is None or not any(p in params for p in ("ProjectionExpression", "AttributesToGet")):
            return returned
        return self._get(table, key)

    def _read_unfiltered(self, op: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The same page again without filter and projection: the items DynamoDB read and billed."""
        drop = {"FilterExpression", "ProjectionExpression", "Select", "AttributesToGet", "QueryFilter", "ScanFilter"}
        again = {k: v for k, v in params.items() if k not in drop}
        if "ExpressionAttributeNames" in again:
            again["ExpressionAttributeNames"] = _used(again["ExpressionAttributeNames"], again)
            if not again["ExpressionAttributeNames"]:
                del again["ExpressionAttributeNames"]
        if "ExpressionAttributeValues" in again:
            again["ExpressionAttributeValues"] = _used(again["ExpressionAttributeValues"], again)
            if not again["ExpressionAttributeValues"]:
                del again["ExpressionAttributeValues"]
        with self.disabled():
            page = getattr(self._local.client, "query" if op == "Query" else "scan")(**again)
        return list(page.get("Items", []))


def _used(placeholders: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB rejects unused placeholders: keep those the remaining expressions use."""
    text = " ".join(str(params.get(k, "")) for k in ("KeyConditionExpression", "ConditionExpression"))
    return {name: value for name, value in placeholders.items() if name in text}


def _is_unprocessed(requests: list[Mapping[str, Any]], kind: str, item: Any, key: Any) -> bool:
    if kind == "PutItem":
        return {"PutRequest": {"Item": item}} in requests
    return kind == "DeleteItem" and {"DeleteRequest": {"Key": key}} in requests


def _index_write_units(old: dict[str, Any] | None, new: dict[str, Any] | None, index: Index) -> int:
    """Index writes of one table write, from the projected items before and after (None: not in the index)."""
    if old is None and new is None:
        return 0
    if old is None:
        return write_units_for(item_size(new))
    if new is None:
        return write_units_for(item_size(old))
    if any(old[k] != new[k] for k in index.keys):
        return write_units_for(item_size(old)) + write_units_for(item_size(new))
    if old == new:
        return 0
    return write_units_for(max(item_size(old), item_size(new)))
