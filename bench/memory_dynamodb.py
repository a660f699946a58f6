"""Bench only: a DynamoDB client without HTTP, for the long streaming runs of the merge cost bench.

Where the time of a 10,000-event streaming run went on moto (docs/merge.md, "Streaming runs"): not the merge,
whose work per event is constant, but the ~5 DynamoDB calls per event, each serialised by botocore, parsed and
served by moto, then serialised again by moto's response serialiser and parsed by botocore (the meter's own
GetItems double the calls): about 40 ms of CPU per event, 7-8 CPU-minutes for 10,000 events.

``MemoryDynamoDB`` answers the same calls in process:

- the tables of ``partitions`` (the Events table) are sorted partitions in memory, so that a Query from a sort
  key is a bisection: moto lists and sorts the whole partition at every Query, which over a run is quadratic;
- every other table is moto's own table, called through moto's ``DynamoHandler`` without the wire (same key,
  GSI, condition and update-expression code as the moto the tests use, and the same tables: items written
  either way are visible both ways);
- each call is billed by ``meter.Meter.call``: the meter's own rules, as for a botocore client.

``tests/integration/test_memory_dynamodb.py`` checks that a streaming run merged through it leaves the same
items and bills the same units as one merged through boto3 on moto; the bench checks the units again each run.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError

try:  # the benches run with bench/ on sys.path; the tests import this module as bench.memory_dynamodb
    from meter import Meter, item_size
except ModuleNotFoundError:
    from bench.meter import Meter, item_size

PAGE_BYTES = 1024 * 1024
OPERATIONS = {
    "get_item": "GetItem",
    "put_item": "PutItem",
    "delete_item": "DeleteItem",
    "update_item": "UpdateItem",
    "query": "Query",
    "batch_get_item": "BatchGetItem",
    "batch_write_item": "BatchWriteItem",
    "transact_write_items": "TransactWriteItems",
    "describe_table": "DescribeTable",
}


class MemoryDynamoDB:
    """The calls the ingest and merge stores make (``get_paginator("query")`` included), metered by ``meter``."""

    def __init__(self, meter: Meter | None = None, partitions: Iterable[str] = (), region: str = "us-east-1") -> None:
        from moto.core import DEFAULT_ACCOUNT_ID

        self.meter = meter
        self.account, self.region = DEFAULT_ACCOUNT_ID, region
        #: table -> pk -> sk -> item (wire format), and the sorted sort keys of each partition
        self.partitions: dict[str, dict[str, dict[str, dict[str, Any]]]] = {name: {} for name in partitions}
        self.sorted_keys: dict[str, dict[str, list[str]]] = {name: {} for name in partitions}
        self._query_model: Any = None

    # ------------------------------------------------------------------ the client's API
    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        """``get_item``, ``put_item``, ``query``...: the boto3 client's methods, each a call of its operation."""
        operation = OPERATIONS.get(name)
        if operation is None:
            raise AttributeError(name)
        return lambda **params: self._call(operation, params)

    def get_paginator(self, operation: str) -> Any:
        """botocore's own paginator over ``query`` (``LastEvaluatedKey``), as the real client gives it: every
        page is one metered call."""
        import botocore.session
        from botocore.paginate import Paginator

        assert operation == "query", operation
        if self._query_model is None:  # botocore's model of Query (the paginator reads it for PageSize)
            service = botocore.session.get_session().get_service_model("dynamodb")
            self._query_model = service.operation_model("Query")
        config = {"input_token": "ExclusiveStartKey", "output_token": "LastEvaluatedKey", "limit_key": "Limit"}
        query = lambda **params: self._call("Query", params)  # noqa: E731
        return Paginator(query, {**config, "result_key": "Items"}, self._query_model)

    # ------------------------------------------------------------------ plumbing
    def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        table = params.get("TableName")
        serve: Callable[[], dict[str, Any]]
        if table in self.partitions and operation != "DescribeTable":  # its definition is moto's table
            serve = lambda: self._partition_call(operation, table, params)  # noqa: E731
        else:
            serve = lambda: self._moto_call(operation, params)  # noqa: E731
        if self.meter is None or operation == "DescribeTable":
            return serve()
        return self.meter.call(self, operation, params, serve)

    def _moto_call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """moto's handler for ``operation``, on the parameters as boto3 takes them, without HTTP."""
        from botocore import xform_name
        from moto.core.exceptions import JsonRESTError
        from moto.dynamodb.responses import DynamoHandler

        handler = DynamoHandler()
        handler.current_account, handler.region = self.account, self.region
        handler.params = handler.body = params
        try:
            result = getattr(handler, xform_name(operation))().result
        except JsonRESTError as exc:
            body = json.loads(exc.description)
            extra = {k: v for k, v in body.items() if k not in ("__type", "message", "Message")}
            error = {"Code": exc.relative_error_type, "Message": exc.message}
            response = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": exc.code}, **extra}
            raise ClientError(response, operation) from None
        return dict(result or {})

    # ------------------------------------------------------------------ partitions in memory
    def _partition_call(self, operation: str, table: str, params: dict[str, Any]) -> dict[str, Any]:
        partitions, sorted_keys = self.partitions[table], self.sorted_keys[table]
        if operation == "PutItem":
            assert params.get("ConditionExpression") == "attribute_not_exists(pk)", params.get("ConditionExpression")
            item = params["Item"]
            pk, sk = item["pk"]["S"], item["sk"]["S"]
            partition = partitions.setdefault(pk, {})
            if sk in partition:
                error = {"Code": "ConditionalCheckFailedException", "Message": "The conditional request failed"}
                raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)
            partition[sk] = item
            bisect.insort(sorted_keys.setdefault(pk, []), sk)
            return {}
        if operation == "GetItem":
            key = params["Key"]
            found = partitions.get(key["pk"]["S"], {}).get(key["sk"]["S"])
            return {"Item": found} if found is not None else {}
        if operation == "Query":
            return self._partition_page(table, params)
        raise NotImplementedError(f"{operation} on the in-memory partitions of {table}")

    def _partition_page(self, table: str, params: dict[str, Any]) -> dict[str, Any]:
        """One page of ``pk = :pk [AND sk >= :since]``, as DynamoDB pages (Limit, 1 MB, LastEvaluatedKey)."""
        assert params["KeyConditionExpression"] in ("pk = :pk", "pk = :pk AND sk >= :since"), params
        values = params["ExpressionAttributeValues"]
        pk, since = values[":pk"]["S"], values.get(":since", {}).get("S", "")
        keys = self.sorted_keys[table].get(pk, [])
        position = bisect.bisect_left(keys, since)
        if "ExclusiveStartKey" in params:
            position = max(position, bisect.bisect_right(keys, params["ExclusiveStartKey"]["sk"]["S"]))
        limit = int(params.get("Limit") or 1_000_000)
        page: list[dict[str, Any]] = []
        size = 0
        while position < len(keys) and len(page) < limit and size < PAGE_BYTES:
            item = self.partitions[table][pk][keys[position]]
            page.append(item)
            size += item_size(item)
            position += 1
        if position < len(keys) and page:
            return {"Items": page, "LastEvaluatedKey": {"pk": page[-1]["pk"], "sk": page[-1]["sk"]}}
        return {"Items": page}
