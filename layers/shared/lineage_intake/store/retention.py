"""Deleting what the platform keeps about a job, dataset or namespace: item walks and batched deletes.

Reads are key-prefix walks of partitions (and of gsi1 for the items other partitions hold about a dataset);
writes are ``BatchWriteItem`` deletes of 25, retrying unprocessed keys. The one place deletes happen, so a
change of the Lineage table's layout (docs/merge.md) is adapted here and in ``service.retention``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lineage_intake.errors import StorageUnavailable
from lineage_intake.store.dynamo import dynamo_errors, paginate, query_prefix, to_item

BATCH = 25
MAX_ATTEMPTS = 8


@dataclass
class RetentionStore:
    dynamodb: Any
    s3_factory: Callable[[], Any]
    sleep: Callable[[float], None] = field(default=time.sleep)

    def partition(self, table: str, pk: str) -> Iterator[dict[str, Any]]:
        return query_prefix(self.dynamodb, table, pk, "")

    def index_partition(self, table: str, index: str, pk: str) -> Iterator[dict[str, Any]]:
        return query_prefix(self.dynamodb, table, pk, "", ["pk", "sk"], index=index)

    def scan_keys(self, table: str, equals: dict[str, str]) -> Iterator[dict[str, Any]]:
        """Every item whose attributes equal ``equals`` (a filtered Scan; an operator's occasional read)."""
        from lineage_intake.store.dynamo import from_dynamodb

        names = {f"#a{i}": k for i, k in enumerate(sorted(equals))}
        values = {f":a{i}": equals[k] for i, k in enumerate(sorted(equals))}
        pages = paginate(
            self.dynamodb,
            "scan",
            TableName=table,
            FilterExpression=" AND ".join(f"#a{i} = :a{i}" for i in range(len(names))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(values),
        )
        for raw in pages:
            yield from_dynamodb(raw)

    def delete(self, table: str, keys: Iterable[tuple[str, str]]) -> int:
        """Delete items by (pk, sk); returns how many were asked to be deleted."""
        pending = list(dict.fromkeys(keys))
        for start in range(0, len(pending), BATCH):
            requests = [
                {"DeleteRequest": {"Key": to_item({"pk": pk, "sk": sk})}} for pk, sk in pending[start : start + BATCH]
            ]
            for attempt in range(MAX_ATTEMPTS):
                with dynamo_errors():
                    answer = self.dynamodb.batch_write_item(RequestItems={table: requests})
                requests = answer.get("UnprocessedItems", {}).get(table, [])
                if not requests:
                    break
                self.sleep(min(2.0, 0.05 * 2**attempt))
            else:
                raise StorageUnavailable(f"{len(requests)} deletes unprocessed in {table}; run the command again")
        return len(pending)

    def delete_objects(self, refs: Iterable[str]) -> int:
        """Delete S3 bodies (``s3://bucket/key``) and their older versions (the bucket is versioned)."""
        count = 0
        s3 = None
        for ref in dict.fromkeys(refs):
            bucket, _, key = ref.removeprefix("s3://").partition("/")
            s3 = s3 or self.s3_factory()
            with dynamo_errors():
                versions = s3.list_object_versions(Bucket=bucket, Prefix=key)
                for entry in [*versions.get("Versions", []), *versions.get("DeleteMarkers", [])]:
                    if entry["Key"] == key:
                        s3.delete_object(Bucket=bucket, Key=key, VersionId=entry["VersionId"])
            count += 1
        return count
