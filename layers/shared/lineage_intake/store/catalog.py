"""The read API's reads of the Lineage table, on top of the merge's ``LineageReader`` (``store.lineage_reads``):
listings (gsi4: namespaces, a namespace's jobs and datasets by name), counts, the time index (gsi3: runs by
the UTC hour of their last event), a job's whole partition, and datasets by the batch. Reads only; every call
is one GetItem, Query or BatchGetItem through ``store.dynamo``. Nothing here scans (docs/read-api.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from lineage_intake import keys
from lineage_intake.store.dynamo import dynamo_errors, from_dynamodb, paginate, query_prefix
from lineage_intake.store.lineage_items import DATASET_SK, JOB_SK, NAMESPACE_SK, NAMESPACES, TAGS
from lineage_intake.store.lineage_quality import QUALITY_ATTRIBUTES, QUALITY_SK
from lineage_intake.store.lineage_reads import LineageReader

#: What the read API shows of a job or dataset item (BatchGetItem always projects: never the digests).
JOB_ATTRIBUTES = (
    "type", "namespace", "name", "createdAt", "mergedAt", "description", "processingType", "jobType",
    "integration", "parentJob", "lineageRun", "placeholder", "definedAt", "definedDescription", "tags",
)  # fmt: skip
DATASET_ATTRIBUTES = (
    "type", "namespace", "name", "createdAt", "mergedAt", "partial", "fields", "symlinks", "definedFields",
    "definedDescription", "definedAt", "registeredAt", "definedBy", "schemaVersion", "tags", "columnLineageFields",
)  # fmt: skip


#: Queries in flight at once for a listing's latest runs (``latest_runs``).
LATEST_RUN_READERS = 8


@dataclass
class JobRecords:
    """A job's partition: the job item, its edges (current and history) and its column edges: one Query."""

    job: dict[str, Any] | None = None
    edges: list[dict[str, Any]] = field(default_factory=list)
    column_edges: list[dict[str, Any]] = field(default_factory=list)


class CatalogStore(LineageReader):
    """Read-only repository for the read API and the CLI. The client is passed in (moto or AWS)."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.sleep = time.sleep

    # ------------------------------------------------------------------ namespaces and listings
    def namespace(self, name: str) -> dict[str, Any] | None:
        return self._get(keys.namespace_key(name), NAMESPACE_SK, consistent=False)

    def namespaces(self, limit: int) -> list[dict[str, Any]]:
        """Namespaces by name, the first ``limit`` (their items: a Query of gsi4 keys, then one BatchGetItem)."""
        listed = list(query_prefix(self.dynamodb, self.table, NAMESPACES, "", index="gsi4", limit=limit))
        found = self._batch_get([(i["pk"], i["sk"]) for i in listed], ["name", "mergedAt"], consistent=False)
        return [found[(i["pk"], i["sk"])] for i in listed if (i["pk"], i["sk"]) in found]

    def listing(self, namespace: str, kind: str, limit: int) -> list[dict[str, Any]]:
        """A namespace's jobs (``J``) or datasets (``D``) by name, the first ``limit``: a Query of gsi4 (keys
        only) and a BatchGetItem per 100 items."""
        pk = f"{kind}#{keys.namespace_key(namespace)}"
        listed = list(query_prefix(self.dynamodb, self.table, pk, "", index="gsi4", limit=limit))
        attributes = JOB_ATTRIBUTES if kind == "J" else DATASET_ATTRIBUTES
        found = self._batch_get([(i["pk"], i["sk"]) for i in listed], attributes, consistent=False)
        return [found[(i["pk"], i["sk"])] for i in listed if (i["pk"], i["sk"]) in found]

    def count(self, namespace: str, kind: str) -> int:
        """``totalCount`` of a listing: a Query of gsi4 with ``Select=COUNT`` (keys-only items, nothing returned)."""
        return self._count("gsi4", f"{kind}#{keys.namespace_key(namespace)}")

    def run_count(self, namespace: str, job: str) -> int:
        return self._count("gsi1", keys.job_key(namespace, job), "RUN#")

    def _count(self, index: str, pk: str, prefix: str = "") -> int:
        condition = f"{index}pk = :p" + (f" AND begins_with({index}sk, :s)" if prefix else "")
        values: dict[str, Any] = {":p": {"S": pk}, **({":s": {"S": prefix}} if prefix else {})}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "Select": "COUNT",
        }
        total = 0
        with dynamo_errors():
            for page in self.dynamodb.get_paginator("query").paginate(**kwargs):
                total += int(page.get("Count", 0))
        return total

    def latest_runs(
        self, jobs: Iterable[tuple[str, str]], count: int = 1
    ) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """Each job's latest ``count`` runs (gsi1 newest first, ``Limit count``): one Query per job, run side by
        side (DynamoDB has no batched Query), so a listing page of 100 jobs waits for about one round trip."""
        wanted = list(dict.fromkeys(jobs))

        def latest(job: tuple[str, str]) -> list[dict[str, Any]]:
            return self.list_runs(*job, limit=count)

        if not wanted:
            return {}
        with ThreadPoolExecutor(max_workers=min(LATEST_RUN_READERS, len(wanted))) as pool:
            found = list(pool.map(latest, wanted))
        return {job: runs for job, runs in zip(wanted, found, strict=True) if runs}

    def search(self, namespace: str, kind: str, text: str, limit: int) -> list[dict[str, Any]]:
        """A namespace's jobs or datasets whose name contains ``text``, case-insensitively: the listing's keys
        (the name is in the sort key) filtered here, then the matches' items (docs/read-api.md "Search")."""
        needle = text.casefold()
        pk = f"{kind}#{keys.namespace_key(namespace)}"
        matches = []
        for item in query_prefix(self.dynamodb, self.table, pk, "", index="gsi4"):
            if needle in str(item["gsi4sk"]).rsplit("#", 2)[0].casefold():
                matches.append((item["pk"], item["sk"]))
                if len(matches) >= limit:
                    break
        attributes = JOB_ATTRIBUTES if kind == "J" else DATASET_ATTRIBUTES
        found = self._batch_get(matches, attributes, consistent=False)
        return [found[m] for m in matches if m in found and needle in str(found[m].get("name", "")).casefold()]

    def tags(self, limit: int) -> list[dict[str, Any]]:
        """Tag names by name, the first ``limit``: one Query (the merge writes a tag item when a job first has it)."""
        return list(query_prefix(self.dynamodb, self.table, TAGS, "TAG#", limit=limit))

    # ------------------------------------------------------------------ jobs and datasets
    def job_records(self, namespace: str, name: str) -> JobRecords:
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

    def datasets(self, refs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Dataset items by (namespace, name): one BatchGetItem per 100."""
        wanted = {(keys.dataset_key(ns, name), DATASET_SK): (ns, name) for ns, name in refs}
        found = self._batch_get(list(wanted), DATASET_ATTRIBUTES, consistent=False)
        return {wanted[k]: item for k, item in found.items()}

    def dataset_with_quality(self, namespace: str, name: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """A dataset item and its latest data-quality item (``store.lineage_quality``): one BatchGetItem."""
        pk = keys.dataset_key(namespace, name)
        wanted = [(pk, DATASET_SK), (pk, QUALITY_SK)]
        found = self._batch_get(wanted, (*DATASET_ATTRIBUTES, *QUALITY_ATTRIBUTES), consistent=False)
        return found.get(wanted[0]), found.get(wanted[1])

    def qualities(self, refs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Data-quality items by (namespace, name), for a listing page: one BatchGetItem per 100."""
        wanted = {(keys.dataset_key(ns, name), QUALITY_SK): (ns, name) for ns, name in refs}
        found = self._batch_get(list(wanted), QUALITY_ATTRIBUTES, consistent=False)
        return {wanted[k]: item for k, item in found.items()}

    def dataset_edges(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The edges of every job that writes (``UP#``) or reads (``DOWN#``) a dataset: one Query of gsi1."""
        return list(query_prefix(self.dynamodb, self.table, keys.dataset_key(namespace, name), "", index="gsi1"))

    # ------------------------------------------------------------------ time index
    def runs_of_hour(self, hour: str) -> Iterator[dict[str, Any]]:
        """Runs whose last event is in the UTC ``hour`` (``YYYY-MM-DDTHH``), newest last event first (gsi3).

        gsi3 sorts an hour's runs by runId (docs/merge.md): the order by time is made here, from the projected
        ``lastEventTime``; an hour's runs are read whole anyway."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "gsi3",
            "KeyConditionExpression": "gsi3pk = :p",
            "ExpressionAttributeValues": {":p": {"S": f"T#{hour}"}},
        }
        runs = [from_dynamodb(raw) for raw in paginate(self.dynamodb, "query", **kwargs)]
        runs.sort(key=lambda run: (str(run.get("lastEventTime") or ""), str(run.get("runId") or "")), reverse=True)
        yield from runs
