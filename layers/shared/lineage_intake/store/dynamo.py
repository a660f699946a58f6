"""The one DynamoDB toolkit: attribute codec, error translation, paging, reads, update and transaction builders.

Every table module (``events``, ``lineage``, ``auth``) builds on these; none of them talks to botocore errors or
``LastEvaluatedKey`` itself. Why writes are versioned and fenced: see docs/merge.md.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from lineage_intake.errors import DomainError, DuplicateItem, StorageUnavailable

#: Plus one or two guards: DynamoDB's limit is 100 actions. Each transaction pays its guards' ConditionChecks
#: and a round trip, so fewer, fuller chunks cost less (docs/merge.md, "Throughput").
TRANSACTION_WRITES = 98
TRANSACTION_BYTES = 3_000_000  # DynamoDB's limit is 4 MB per transaction
ATTEMPTS = 4

RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "TransactionConflictException",
        "LimitExceededException",
        "SlowDown",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
        "503",
        "500",
    }
)


# ---------------------------------------------------------------------------------------------- errors
def translate_error(exc: Exception, duplicate_message: str = "item already exists") -> Exception:
    """Map boto errors to domain errors. Unknown errors are returned unchanged (they are bugs: 500)."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code == "ConditionalCheckFailedException":
            return DuplicateItem(duplicate_message)
        if code in RETRYABLE_CODES or status >= 500:
            return StorageUnavailable(f"storage is throttled or unavailable ({code or status}); retry later")
        return exc
    if isinstance(exc, ConnectionError | HTTPClientError):  # includes connect and read timeouts
        return StorageUnavailable(f"storage could not be reached ({type(exc).__name__}); retry later")
    return exc


@contextmanager
def dynamo_errors(duplicate_message: str = "item already exists") -> Iterator[None]:
    """Run AWS calls with their errors translated: a failed condition is ``DuplicateItem``, throttling and
    unreachable storage ``StorageUnavailable``; anything else (a bug) propagates unchanged."""
    try:
        yield
    except DomainError:
        raise
    except Exception as exc:
        error = translate_error(exc, duplicate_message)
        if error is exc:
            raise
        raise error from exc


# ---------------------------------------------------------------------------------------------- codec
def to_attr(value: Any) -> dict[str, Any]:
    """A JSON-like value as a DynamoDB attribute value (maps, lists, numbers, strings, bytes, booleans, null)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        text = str(value)
        return {"N": text} if len(text.lstrip("-")) <= 38 else {"S": text}
    if isinstance(value, float):
        return {"N": repr(value)} if math.isfinite(value) else {"S": repr(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes):
        return {"B": value}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_attr(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attr(v) for v in value]}
    return {"S": str(value)}


def to_item(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level attributes, leaving out the ones that are None (absent reads as null)."""
    return {k: to_attr(v) for k, v in attributes.items() if v is not None}


def _plain(attr: Mapping[str, Any]) -> Any:
    ((kind, value),) = attr.items()
    if kind == "N":
        return int(value) if value.lstrip("-").isdigit() else float(value)
    if kind == "BOOL":
        return bool(value)
    if kind == "B":
        return value if isinstance(value, bytes) else bytes(value)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: _plain(v) for k, v in value.items()}
    if kind == "L":
        return [_plain(v) for v in value]
    if kind in ("SS", "NS", "BS"):
        return list(value)
    return value


def from_dynamodb(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Low-level attribute values (``{"S": ...}``), as the client and stream records give them, to plain."""
    return {key: _plain(value) for key, value in item.items()}


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def approximate_size(attributes: Mapping[str, Any]) -> int:
    return len(json.dumps(attributes, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass"))


def item_size(attributes: Mapping[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (strings in UTF-8, numbers about 1 byte/2 digits)."""
    size = 0
    for name, value in attributes.items():
        size += len(name.encode("utf-8"))
        if isinstance(value, bytes):
            size += len(value)
        elif isinstance(value, bool):
            size += 1
        elif isinstance(value, int):
            size += 1 + (len(str(abs(value))) + 1) // 2
        else:
            size += len(str(value).encode("utf-8"))
    return size


def write_units(attributes: Mapping[str, Any]) -> int:
    """Write request units of a PutItem: one per started KiB."""
    return max(1, -(-item_size(attributes) // 1024))


# ---------------------------------------------------------------------------------------------- reads
def paginate(client: Any, operation: str, *, limit: int | None = None, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """The raw items of a paged Query or Scan (boto3's paginator follows ``LastEvaluatedKey``).

    ``limit`` caps the items read, and each page asks for no more than that, so a short listing costs a short read.
    """
    config = {"MaxItems": limit, "PageSize": limit} if limit is not None else {}
    with dynamo_errors():
        for page in client.get_paginator(operation).paginate(**kwargs, PaginationConfig=config):
            yield from page.get("Items", [])


def query_prefix(
    client: Any,
    table: str,
    pk: str,
    prefix: str,
    attributes: Sequence[str] | None = None,
    *,
    index: str | None = None,
    forward: bool = True,
    limit: int | None = None,
    consistent: bool = True,
) -> Iterator[dict[str, Any]]:
    """The items of a partition whose sort key starts with ``prefix`` (consistent on the table unless told
    otherwise; an index is always eventually consistent)."""
    pk_name, sk_name = ("pk", "sk") if index is None else (f"{index}pk", f"{index}sk")
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "#p = :p" + (" AND begins_with(#s, :s)" if prefix else ""),
        "ExpressionAttributeValues": {":p": {"S": pk}, **({":s": {"S": prefix}} if prefix else {})},
        "ScanIndexForward": forward,
        **({"ConsistentRead": consistent} if index is None else {"IndexName": index}),
        **(projection(attributes) if attributes else {"ExpressionAttributeNames": {}}),
    }
    kwargs["ExpressionAttributeNames"] |= {"#p": pk_name, **({"#s": sk_name} if prefix else {})}
    for raw in paginate(client, "query", limit=limit, **kwargs):
        yield from_dynamodb(raw)


def projection(attributes: Sequence[str]) -> dict[str, Any]:
    """``ProjectionExpression`` with its names, so reserved words are safe."""
    names = {f"#a{i}": a for i, a in enumerate(attributes)}
    return {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}


def get_item(
    client: Any, table: str, pk: str, sk: str, attributes: Sequence[str] | None = None, consistent: bool = True
) -> dict[str, Any] | None:
    """One item by key, or None (read consistently unless told otherwise: half the read units)."""
    kwargs: dict[str, Any] = {"TableName": table, "Key": key(pk, sk), "ConsistentRead": consistent}
    if attributes:
        kwargs |= projection(attributes)
    with dynamo_errors():
        item = client.get_item(**kwargs).get("Item")
    return from_dynamodb(item) if item else None


def batch_get(
    client: Any,
    table: str,
    wanted: Sequence[tuple[str, str]],
    attributes: Sequence[str],
    *,
    consistent: bool,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Items by (pk, sk), 100 keys a request, unprocessed keys retried; missing items are left out."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    unique = list(dict.fromkeys(wanted))
    for start in range(0, len(unique), 100):
        request: dict[str, Any] = {
            table: {
                "Keys": [key(pk, sk) for pk, sk in unique[start : start + 100]],
                "ConsistentRead": consistent,
                **projection(list(dict.fromkeys(["pk", "sk", *attributes]))),
            }
        }
        attempt = 0
        while request:
            with dynamo_errors():
                answer = client.batch_get_item(RequestItems=request)
            for raw in answer.get("Responses", {}).get(table, []):
                item = from_dynamodb(raw)
                found[(item["pk"], item["sk"])] = item
            request = answer.get("UnprocessedKeys") or {}
            if request:
                attempt += 1
                if attempt > ATTEMPTS:
                    raise StorageUnavailable(f"table {table} keeps throttling reads; retry later")
                sleep(0.05 * 2**attempt)
    return found


# ---------------------------------------------------------------------------------------------- writes
def newer_or_changed(
    version_attr: str, hash_attr: str, version: str, digest: str, tag: str = ""
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The versioned write condition: the item has no version yet, an older one, or the same one with other
    content. Returns (condition, names, values); ``tag`` keeps placeholders apart when several are combined."""
    v, h, vv, hv = f"#v{tag}", f"#h{tag}", f":v{tag}", f":h{tag}"
    return (
        f"(attribute_not_exists({v}) OR {v} < {vv} OR ({v} = {vv} AND {h} <> {hv}))",
        {v: version_attr, h: hash_attr},
        {vv: {"S": version}, hv: {"S": digest}},
    )


@dataclass
class Update:
    """An UpdateItem built attribute by attribute (SET values, if_not_exists, REMOVE)."""

    sets: dict[str, Any] = field(default_factory=dict)
    set_if_absent: dict[str, Any] = field(default_factory=dict)
    removes: list[str] = field(default_factory=list)

    def expression(self) -> tuple[str, dict[str, str], dict[str, Any]]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        parts: list[str] = []
        removes: list[str] = []
        for i, (name, value) in enumerate(self.sets.items()):
            names[f"#s{i}"] = name
            if value is None:
                removes.append(f"#s{i}")
            else:
                values[f":s{i}"] = to_attr(value)
                parts.append(f"#s{i} = :s{i}")
        for i, (name, value) in enumerate(self.set_if_absent.items()):
            names[f"#n{i}"] = name
            values[f":n{i}"] = to_attr(value)
            parts.append(f"#n{i} = if_not_exists(#n{i}, :n{i})")
        for i, name in enumerate(self.removes):
            names[f"#r{i}"] = name
            removes.append(f"#r{i}")
        expression = ""
        if parts:
            expression += "SET " + ", ".join(parts)
        if removes:
            expression += (" " if expression else "") + "REMOVE " + ", ".join(removes)
        return expression, names, values


@dataclass
class Action:
    """One write of a transaction: ``op`` is Put, Update or Delete (the body is DynamoDB's)."""

    op: str
    body: dict[str, Any]
    size: int = 0
    key: str = ""

    def transact(self) -> dict[str, Any]:
        return {self.op: self.body}


def update_action(
    table: str,
    pk: str,
    sk: str,
    update: Update,
    condition: tuple[str, dict[str, str], dict[str, Any]] | None = None,
) -> Action:
    """An Update action; ``condition`` is (expression, names, values), as ``newer_or_changed`` gives it."""
    expression, names, values = update.expression()
    if condition is not None:
        names, values = {**names, **condition[1]}, {**values, **condition[2]}
    body: dict[str, Any] = {
        "TableName": table,
        "Key": key(pk, sk),
        "UpdateExpression": expression,
        "ExpressionAttributeNames": names,
    }
    if values:
        body["ExpressionAttributeValues"] = values
    if condition is not None and condition[0]:
        body["ConditionExpression"] = condition[0]
    return Action("Update", body, approximate_size(update.sets))


def delete_action(table: str, pk: str, sk: str) -> Action:
    return Action("Delete", {"TableName": table, "Key": key(pk, sk)}, 100)


@dataclass
class Guard:
    """A ConditionCheck that fences a batch of writes to one claim. With ``sets``, an Update of the guarded item
    under the same condition instead: a write that completes the claim fences the batch at the price of the
    check it replaces (a transaction bills both as a write of the item)."""

    pk: str
    sk: str
    attribute: str
    value: str
    sets: Mapping[str, Any] | None = None

    def condition(self) -> tuple[str, dict[str, str], dict[str, Any]]:
        return "#g = :g", {"#g": self.attribute}, {":g": {"S": self.value}}

    def update(self, table: str) -> Action:
        """The guarded write alone, as one conditional UpdateItem (no transaction: half its units)."""
        return update_action(table, self.pk, self.sk, Update(sets=dict(self.sets or {})), self.condition())

    def transact(self, table: str) -> dict[str, Any]:
        if self.sets:
            return self.update(table).transact()
        expression, names, values = self.condition()
        return {
            "ConditionCheck": {
                "TableName": table,
                "Key": key(self.pk, self.sk),
                "ConditionExpression": expression,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }


@dataclass
class WriteCounts:
    """What a series of writes did: the counts of a log line."""

    written: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped_newer: int = 0

    def add(self, other: WriteCounts) -> None:
        self.written += other.written
        self.unchanged += other.unchanged
        self.deleted += other.deleted
        self.skipped_newer += other.skipped_newer


def chunks(actions: list[Action]) -> Iterator[list[Action]]:
    """Actions in transaction-sized chunks (count and bytes)."""
    chunk: list[Action] = []
    size = 0
    for action in actions:
        if chunk and (len(chunk) >= TRANSACTION_WRITES or size + action.size > TRANSACTION_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(action)
        size += action.size
    if chunk:
        yield chunk


class Transaction:
    """One TransactWriteItems with its guards.

    ``run`` returns the guard that failed (someone newer holds the claim), or None when the writes are done.
    A write whose own condition failed (a newer run got there first) is dropped, counted in ``dropped``, and
    the rest is retried; conflicts and throttling are retried a few times, then ``StorageUnavailable``.
    """

    def __init__(
        self,
        client: Any,
        table: str,
        actions: list[Action],
        guards: list[Guard],
        counts: WriteCounts,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.table = table
        self.actions = list(actions)
        self.guards = guards
        self.counts = counts
        self.sleep = sleep
        self.dropped = 0
        self.dropped_actions: list[Action] = []

    def run(self) -> Guard | None:
        attempt = 0
        # A guard that writes is written even when every action was dropped: it completes the claim.
        while self.actions or any(g.sets for g in self.guards):
            items = [g.transact(self.table) for g in self.guards] + [a.transact() for a in self.actions]
            try:
                self.client.transact_write_items(TransactItems=items)
            except Exception as exc:
                reasons = _cancellation_reasons(exc)
                if reasons is None:
                    raise translate_error(exc) from exc
                codes = [str(r.get("Code") or "None") for r in reasons]
                guard_codes, action_codes = codes[: len(self.guards)], codes[len(self.guards) :]
                for guard, code in zip(self.guards, guard_codes, strict=False):
                    if code == "ConditionalCheckFailed":
                        return guard
                failed = {i for i, code in enumerate(action_codes) if code == "ConditionalCheckFailed"}
                if failed:
                    self.dropped += len(failed)
                    self.dropped_actions += [a for i, a in enumerate(self.actions) if i in failed]
                    self.counts.skipped_newer += len(failed)
                    self.actions = [a for i, a in enumerate(self.actions) if i not in failed]
                    continue
                attempt += 1
                if attempt >= ATTEMPTS:
                    raise StorageUnavailable(
                        f"lineage writes keep conflicting or throttling ({', '.join(sorted(set(codes)))}); retry later"
                    ) from exc
                self.sleep(0.05 * 2**attempt)
                continue
            for action in self.actions:
                if action.op == "Delete":
                    self.counts.deleted += 1
                else:
                    self.counts.written += 1
            return None
        return None


def _cancellation_reasons(exc: Exception) -> list[dict[str, Any]] | None:
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return None
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return None
    reasons = exc.response.get("CancellationReasons")
    return list(reasons) if isinstance(reasons, list) else []
