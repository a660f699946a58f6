"""Reads of the Lineage table for the read API and the CLI: no writes, every call one Query or GetItem.

The keys are those the merge writes (docs/merge.md "Lineage table", ``store.lineage_items``); the indexes that
exist for the read side (gsi3 listings and runs by runId, gsi4 runs by day) are described in docs/read-api.md.
All DynamoDB calls go through ``store.dynamo``. Nothing here scans.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lineage_intake import keys
from lineage_intake.store.dynamo import dynamo_errors, from_dynamodb, get_item, paginate, query_prefix
from lineage_intake.store.lineage_items import AWAITING_START, DATASET_SK, JOB_SK, NAMESPACE_SK, NAMESPACES, RUN_SK


@dataclass
class JobRecords:
    """A job's partition: the job item, its edges and its column edges (one Query)."""

    job: dict[str, Any] | None = None
    edges: list[dict[str, Any]] = field(default_factory=list)
    column_edges: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DatasetRecords:
    """A dataset with the edges of every job that reads (``downstream``) or writes (``upstream``) it."""

    dataset: dict[str, Any] | None = None
    upstream: list[dict[str, Any]] = field(default_factory=list)
    downstream: list[dict[str, Any]] = field(default_factory=list)


class LineageReader:
    """Read-only repository of the Lineage table. ``requests`` counts DynamoDB calls (the graph walk reports it)."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self.dynamodb = dynamodb
        self.table = table

    # ------------------------------------------------------------------ namespaces
    def namespace(self, name: str) -> dict[str, Any] | None:
        return get_item(self.dynamodb, self.table, keys.namespace_key(name), NAMESPACE_SK)

    def namespaces(self, limit: int) -> list[dict[str, Any]]:
        """Namespaces by name (at most ``limit``)."""
        return list(query_prefix(self.dynamodb, self.table, NAMESPACES, "", index="gsi3", limit=limit))

    # ------------------------------------------------------------------ jobs and datasets
    def listing(self, namespace: str, kind: str, limit: int) -> list[dict[str, Any]]:
        """A namespace's jobs (``J``) or datasets (``D``) by name, the first ``limit`` of them."""
        pk = f"{kind}#{keys.namespace_key(namespace)}"
        return list(query_prefix(self.dynamodb, self.table, pk, "", index="gsi3", limit=limit))

    def count(self, namespace: str, kind: str) -> int:
        """``totalCount`` of a listing: Query with ``Select=COUNT`` (reads the index keys, returns no items)."""
        total = 0
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "gsi3",
            "KeyConditionExpression": "gsi3pk = :p",
            "ExpressionAttributeValues": {":p": {"S": f"{kind}#{keys.namespace_key(namespace)}"}},
            "Select": "COUNT",
        }
        with dynamo_errors():
            for page in self.dynamodb.get_paginator("query").paginate(**kwargs):
                total += int(page.get("Count", 0))
        return total

    def search(self, namespace: str, kind: str, text: str, limit: int) -> list[dict[str, Any]]:
        """A namespace's jobs or datasets whose name contains ``text``, case-insensitively.

        DynamoDB's ``contains`` is case-sensitive, so the listing Query is filtered here: it reads the whole
        listing of the namespace, bounded by the namespace's size, never a Scan (docs/read-api.md, "Search")."""
        needle = text.casefold()
        found = []
        for item in query_prefix(
            self.dynamodb,
            self.table,
            f"{kind}#{keys.namespace_key(namespace)}",
            "",
            ["namespace", "name", "mergedAt"],
            index="gsi3",
        ):
            if needle in str(item.get("name", "")).casefold():
                found.append(item)
                if len(found) >= limit:
                    break
        return found

    def job(self, namespace: str, name: str) -> JobRecords:
        """The job item, its edges and column edges: one Query of the job's partition."""
        out = JobRecords()
        for item in query_prefix(self.dynamodb, self.table, keys.job_key(namespace, name), ""):
            sort_key = str(item.get("sk", ""))
            if sort_key == JOB_SK:
                out.job = item
            elif sort_key.startswith("EDGE#"):
                out.edges.append(item)
            elif sort_key.startswith("COL#"):
                out.column_edges.append(item)
        return out

    def dataset(self, namespace: str, name: str) -> DatasetRecords:
        """The dataset item with its upstream and downstream job edges: one Query of gsi1."""
        out = DatasetRecords()
        for item in query_prefix(self.dynamodb, self.table, keys.dataset_key(namespace, name), "", index="gsi1"):
            sort_key = str(item.get("gsi1sk", ""))
            if sort_key == DATASET_SK:
                out.dataset = item
            elif sort_key.startswith("UP#"):
                out.upstream.append(item)
            elif sort_key.startswith("DOWN#"):
                out.downstream.append(item)
        return out

    def dataset_item(self, namespace: str, name: str) -> dict[str, Any] | None:
        return get_item(self.dynamodb, self.table, keys.dataset_key(namespace, name), DATASET_SK)

    # ------------------------------------------------------------------ runs
    def runs(self, namespace: str, job: str, limit: int) -> list[dict[str, Any]]:
        """A job's runs, newest first (by START time, else first event time), the first ``limit``."""
        pk = keys.job_key(namespace, job)
        return list(query_prefix(self.dynamodb, self.table, pk, "RUN#", index="gsi1", forward=False, limit=limit))

    def run_count(self, namespace: str, job: str) -> int:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :p AND begins_with(gsi1sk, :s)",
            "ExpressionAttributeValues": {":p": {"S": keys.job_key(namespace, job)}, ":s": {"S": "RUN#"}},
            "Select": "COUNT",
        }
        total = 0
        with dynamo_errors():
            for page in self.dynamodb.get_paginator("query").paginate(**kwargs):
                total += int(page.get("Count", 0))
        return total

    def run(self, namespace: str, job: str, run_id: str) -> dict[str, Any] | None:
        return get_item(self.dynamodb, self.table, keys.run_key(namespace, job, run_id), RUN_SK)

    def run_children(self, namespace: str, job: str, run_id: str) -> list[dict[str, Any]]:
        """The child links under a run (one Query of its partition)."""
        return list(query_prefix(self.dynamodb, self.table, keys.run_key(namespace, job, run_id), "CHILD#"))

    def awaiting_start(self, limit: int) -> list[dict[str, Any]]:
        """Runs with a terminal event and no START yet, oldest first (sparse gsi2)."""
        return list(query_prefix(self.dynamodb, self.table, AWAITING_START, "", index="gsi2", limit=limit))

    def runs_by_id(self, run_id: str) -> list[dict[str, Any]]:
        """Every run item with this runId (several jobs may reuse one): one Query of gsi3."""
        return list(query_prefix(self.dynamodb, self.table, f"RUNID#{run_id}", "", index="gsi3"))

    def runs_of_day(self, day: str, before: str | None = None) -> Iterator[dict[str, Any]]:
        """Runs whose last event is on UTC ``day`` (``YYYY-MM-DD``), newest last event first (gsi4)."""
        values: dict[str, Any] = {":p": {"S": f"T#{day}"}}
        condition = "gsi4pk = :p"
        if before is not None:
            condition += " AND gsi4sk <= :b"
            values[":b"] = {"S": before + "\uffff"}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "gsi4",
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }
        for raw in paginate(self.dynamodb, "query", **kwargs):
            yield from_dynamodb(raw)

    # ------------------------------------------------------------------ column lineage
    def field_inputs(self, namespace: str, name: str, field_name: str) -> list[dict[str, Any]]:
        """The column edges that compute this field (one item per job and input field)."""
        pk = keys.field_key(namespace, name, field_name)
        return list(query_prefix(self.dynamodb, self.table, pk, "", index="gsi1"))

    def field_outputs(self, namespace: str, name: str, field_name: str) -> list[dict[str, Any]]:
        """The column edges computed from this field."""
        pk = keys.field_key(namespace, name, field_name)
        return list(query_prefix(self.dynamodb, self.table, pk, "", index="gsi2"))
