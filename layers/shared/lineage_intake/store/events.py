"""The Events table and the body bucket: one item per accepted event, written exactly once.

- The item is written with ``attribute_not_exists(pk)``: a retried delivery of the same event has the same
  key (partition from the names, sort key from eventTime and the content digest), so the condition fails,
  nothing is written, and no second stream record reaches the merge.
- The body is stored compressed (zlib with a preset dictionary of OpenLineage vocabulary, named by the item's
  ``bodyEnc``: ``zlib-d2`` now, ``zlib-d1`` for items written before, both read). When the item
  would pass ``MAX_INLINE_ITEM_BYTES``, the body goes to S3 first and the item points to it, so an accepted
  event never points to a missing object.
- Errors are translated by ``store.dynamo.dynamo_errors`` (a duplicate is ``DuplicateItem``).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lineage_intake.store.body_dictionary import ZDICT_V2
from lineage_intake.store.dynamo import dynamo_errors, from_dynamodb, item_size, paginate, to_item

MAX_INLINE_ITEM_BYTES = 350_000
BODY_ENCODING = "zlib-d2"

# A preset dictionary of the strings every OpenLineage event repeats. zlib looks back into it, so small
# events (most of them are 0.5-3 KB) compress to a fraction of their plain-zlib size. Never edit one: stored
# bodies name the dictionary they were written with (``bodyEnc``); add a new one with a new name instead.
# zlib-d1 (hand-written) is only read now; zlib-d2 (store/body_dictionary.py, from the official schemas) is
# written.
_ZDICT_V1 = (
    b'"inputFacets":{},"outputFacets":{},"facets":{},"inputs":[],"outputs":[],'
    b'"dataQualityMetrics":{"rowCount":,"bytes":,"columnMetrics":{"nullCount":,"distinctCount":'
    b'"outputStatistics":{"rowCount":,"size":,"fileCount":'
    b'"columnLineage":{"fields":{"inputFields":[{"namespace":"","name":"","field":"","transformations":'
    b'[{"type":"DIRECT","subtype":"IDENTITY","description":"","masking":false}]}]}},'
    b'"symlinks":{"identifiers":[{"namespace":"","name":"","type":"TABLE"}]},'
    b'"dataSource":{"name":"","uri":""},"storage":{"storageLayer":"","fileFormat":""},'
    b'"lifecycleStateChange":{"lifecycleStateChange":"OVERWRITE"},"version":{"datasetVersion":""},'
    b'"documentation":{"description":""},"ownership":{"owners":[{"name":"","type":""}]},'
    b'"sourceCodeLocation":{"type":"git","url":"","repoUrl":"","path":"","version":"","branch":""},'
    b'"sql":{"query":"SELECT * FROM ","dialect":""},'
    b'"processing_engine":{"version":"","name":"","openlineageAdapterVersion":""},'
    b'"nominalTime":{"nominalStartTime":"","nominalEndTime":""},'
    b'"errorMessage":{"message":"","programmingLanguage":"","stackTrace":""},'
    b'"jobType":{"processingType":"BATCH","integration":"SPARK","jobType":"JOB"},'
    b'"jobType":{"processingType":"STREAMING","integration":"FLINK","jobType":"JOB"},'
    b'"jobType":{"processingType":"BATCH","integration":"AIRFLOW","jobType":"TASK"},'
    b'"jobType":{"processingType":"BATCH","integration":"DBT","jobType":"MODEL"},'
    b'"parent":{"run":{"runId":""},"job":{"namespace":"","name":""},"root":{"run":{"runId":""},'
    b'"job":{"namespace":"","name":""}}},'
    b'"schema":{"fields":[{"name":"","type":"string","description":""},{"name":"id","type":"integer"},'
    b'{"name":"","type":"varchar"},{"name":"","type":"timestamp"},{"name":"","type":"decimal"}]},'
    b'"_schemaURL":"https://openlineage.io/spec/facets/1-0-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"'
    b'"_schemaURL":"https://openlineage.io/spec/facets/1-0-1/DatasourceDatasetFacet.json#/$defs/'
    b'"_schemaURL":"https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/'
    b'"_schemaURL":"https://openlineage.io/spec/facets/1-0-0/ParentRunFacet.json#/$defs/ParentRunFacet"'
    b'"_schemaURL":"https://openlineage.io/spec/facets/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"'
    b'"_schemaURL":"https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet"'
    b'"_producer":"https://github.com/OpenLineage/OpenLineage/tree/1.0.0/integration/spark",'
    b'"_producer":"https://github.com/apache/airflow/tree/providers-openlineage/",'
    b'"_producer":"https://github.com/OpenLineage/OpenLineage/tree/1.0.0/integration/dbt",'
    b'"_producer":"https://github.com/OpenLineage/OpenLineage/tree/1.0.0/client/python",'
    b'"_producer":"https://github.com/OpenLineage/OpenLineage/blob/v1-0-0/client",'
    b'"eventType":"RUNNING","eventType":"START","eventType":"FAIL","eventType":"COMPLETE",'
    b'"schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",'
    b'"producer":"https://github.com/OpenLineage/OpenLineage/tree/1.0.0/client/python",'
    b'"eventTime":"2024-01-01T00:00:00.000000Z","run":{"runId":"","facets":{}},'
    b'"job":{"namespace":"","name":"","facets":{}},'
    b'"inputs":[{"namespace":"","name":"","facets":{},"inputFacets":{}}],'
    b'"outputs":[{"namespace":"","name":"","facets":{},"outputFacets":{}}]}'
)
_ZDICTS = {"zlib-d1": _ZDICT_V1, "zlib-d2": ZDICT_V2}


def encode_body(plain: bytes, encoding: str = BODY_ENCODING) -> bytes:
    """``encoding``: another dictionary than the one ingest writes with (tests and benches of older items)."""
    compressor = zlib.compressobj(level=6, wbits=15, zdict=_ZDICTS[encoding])
    return compressor.compress(plain) + compressor.flush()


_EVENT_KINDS = ("RUN", "DATASET", "JOB")  # quarantined items (kind REJECTED) have a sort key of their own


def with_key_fields(item: dict[str, Any]) -> dict[str, Any]:
    """The item with ``eventTime`` and ``eventId``, which items written since zlib-d2 leave to the sort key
    (``eventTime#eventId``): every reader gets them back, and an item pays for them once
    (docs/merge.md#storage-cost)."""
    if item.get("kind") in _EVENT_KINDS and "sk" in item and ("eventTime" not in item or "eventId" not in item):
        event_time, _, event_id = str(item["sk"]).partition("#")
        item.setdefault("eventTime", event_time)
        item.setdefault("eventId", event_id)
    return item


def decode_body(stored: bytes, encoding: str = BODY_ENCODING) -> bytes:
    zdict = _ZDICTS.get(encoding)
    if zdict is None:
        raise ValueError(f"unknown body encoding {encoding!r}")
    decompressor = zlib.decompressobj(wbits=15, zdict=zdict)
    return decompressor.decompress(stored) + decompressor.flush()


@dataclass
class EventsStore:
    """Repository of the Events table and the body bucket.

    Clients are passed in (created lazily by the handler), so the store is testable on moto and with fakes.
    """

    dynamodb: Any
    table: str
    bucket: str
    s3_factory: Callable[[], Any]

    # ------------------------------------------------------------------ writes
    def put_new(self, attributes: dict[str, Any], body: bytes) -> int:
        """Store one event item with its compressed body; S3 first when it is too large for the item.

        Returns the number of bytes of the stored (compressed) body. Raises ``DuplicateItem`` when the
        event is already stored, ``StorageUnavailable`` when storage throttles or cannot be reached.
        """
        compressed = encode_body(body)
        item = dict(attributes)
        item["bodyEnc"] = BODY_ENCODING
        if item_size(item) + len("body") + len(compressed) > MAX_INLINE_ITEM_BYTES:
            key = f"bodies/{str(item['sk']).partition('#')[2]}"  # the eventId
            self._s3_put(key, compressed)
            item["bodyRef"] = f"s3://{self.bucket}/{key}"
        else:
            item["body"] = compressed
        with dynamo_errors(duplicate_message="event already stored"):
            self.dynamodb.put_item(
                TableName=self.table, Item=to_item(item), ConditionExpression="attribute_not_exists(pk)"
            )
        return len(compressed)

    def _s3_put(self, key: str, data: bytes) -> None:
        with dynamo_errors():
            self.s3_factory().put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType="application/octet-stream",
                ContentEncoding="identity",
                Metadata={"body-encoding": BODY_ENCODING},
            )

    # ------------------------------------------------------------------ reads
    def query_partition(self, pk: str, page_size: int = 500, since: str | None = None) -> Iterator[dict[str, Any]]:
        """Every item of one partition in sort-key (eventTime) order: one paged, consistent Query.

        ``since``: only the items whose sort key is at or after it (the merge resuming from a checkpoint)."""
        condition, values = "pk = :pk", {":pk": {"S": pk}}
        if since:
            condition, values = condition + " AND sk >= :since", values | {":since": {"S": since}}
        pages = paginate(
            self.dynamodb,
            "query",
            TableName=self.table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ConsistentRead=True,
            Limit=page_size,
        )
        for raw in pages:
            yield with_key_fields(from_dynamodb(raw))

    def load_body(self, item: Mapping[str, Any]) -> bytes:
        """The event's JSON bytes, from the item or, when offloaded, from S3."""
        encoding = str(item.get("bodyEnc", BODY_ENCODING))
        if "body" in item:
            return decode_body(bytes(item["body"]), encoding)
        ref = str(item["bodyRef"])
        bucket, _, key = ref.removeprefix("s3://").partition("/")
        with dynamo_errors():  # S3 errors share the codes and the translation
            data = self.s3_factory().get_object(Bucket=bucket, Key=key)["Body"].read()
        return decode_body(data, encoding)

    def first_events(self, pk: str, limit: int) -> list[dict[str, Any]] | None:
        """Every item of a partition that holds fewer than ``limit`` (one consistent Query page); None when it
        holds more. The merge's first look at a run that a START record names (docs/merge.md, "Throughput")."""
        with dynamo_errors():
            answer = self.dynamodb.query(
                TableName=self.table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": pk}},
                ConsistentRead=True,
                Limit=limit,
            )
        items = answer.get("Items", [])
        if answer.get("LastEvaluatedKey") or len(items) >= limit:
            return None
        return [with_key_fields(from_dynamodb(item)) for item in items]
