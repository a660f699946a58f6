"""Reads of the Lineage table: one GetItem or Query per question (docs/merge.md, "Lineage table").

``LineageStore`` (``store.lineage``) inherits them; the read API and the CLI call them, never the keys.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from lineage_intake import keys
from lineage_intake.store.dynamo import batch_get, dynamo_errors, get_item, key, query_prefix
from lineage_intake.store.lineage_items import (
    AWAITING_START,
    CHECKPOINT_SUFFIX,
    CHILD_INDEX,
    DATASET_SK,
    JOB_SK,
    run_sk,
)

#: What a listing of child runs shows of each (the CLI's run view, the read API's Run).
CHILD_RUN_ATTRIBUTES = (
    *("namespace", "job", "runId", "state", "startTime", "endTime", "lastEventTime", "mergedAt", "durationMs"),
    *("eventTypes", "processingType", "startMissing", "placeholder", "nominalTime", "inputs", "outputs", "parent"),
)


class LineageReader:
    """The low-level reads shared with the writer, and the read use cases."""

    dynamodb: Any
    table: str
    sleep: Any

    # ================================================================== low-level reads
    def _get(
        self, pk: str, sk: str, attributes: Sequence[str] | None = None, consistent: bool = True
    ) -> dict[str, Any] | None:
        return get_item(self.dynamodb, self.table, pk, sk, attributes, consistent=consistent)

    def _delete(self, pk: str, sk: str) -> None:
        with dynamo_errors():
            self.dynamodb.delete_item(TableName=self.table, Key=key(pk, sk))

    def _batch_get(
        self, wanted: Sequence[tuple[str, str]], attributes: Sequence[str], consistent: bool
    ) -> dict[tuple[str, str], dict[str, Any]]:
        return batch_get(self.dynamodb, self.table, wanted, attributes, consistent=consistent, sleep=self.sleep)

    def _query_prefix(self, pk: str, prefix: str, *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        return query_prefix(self.dynamodb, self.table, pk, prefix, *args, **kwargs)

    # ================================================================== read API
    def get_run(self, namespace: str, job: str, run_id: str) -> dict[str, Any] | None:
        return self._get(keys.run_key(run_id), run_sk(namespace, job))

    def runs_by_id(self, run_id: str) -> list[dict[str, Any]]:
        """Every job's run item with this (normalized) runId: one Query (Marquez's ``/jobs/runs/{runId}``)."""
        items = self._query_prefix(keys.run_key(run_id), "J#")
        return [i for i in items if not str(i["sk"]).endswith(CHECKPOINT_SUFFIX)]

    def list_runs(self, namespace: str, job: str, limit: int = 50) -> list[dict[str, Any]]:
        """A job's runs, newest first (by START time, else first event time): gsi1's INCLUDE projection."""
        return list(self._query_prefix(keys.job_key(namespace, job), "RUN#", index="gsi1", forward=False, limit=limit))

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(keys.job_key(namespace, name), JOB_SK)

    def job_edges(self, namespace: str, name: str) -> dict[str, list[dict[str, Any]]]:
        """A job's inputs and outputs (current and history run edges, and its JobEvents' edges): one query."""
        out: dict[str, list[dict[str, Any]]] = {"inputs": [], "outputs": []}
        for item in self._query_prefix(keys.job_key(namespace, name), "EDGE#"):
            out["inputs" if item.get("direction") == "IN" else "outputs"].append(item)
        return out

    def lineage_last_seen(self, namespace: str, job: str) -> str | None:
        """``lastSeen`` of a job's current run edges: the last event of its latest run that reported datasets
        (gsi1 newest first, usually the first item read)."""
        for item in self._query_prefix(keys.job_key(namespace, job), "RUN#", index="gsi1", forward=False):
            if item.get("hasLineage"):
                return str(item.get("lastEventTime"))
        return None

    def get_dataset(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(keys.dataset_key(namespace, name), DATASET_SK)

    def dataset_lineage(self, namespace: str, name: str) -> dict[str, Any]:
        """A dataset with its upstream jobs (that write it) and downstream jobs (that read it): a GetItem and a
        Query of gsi1. Edges carry ``current``; history edges (``current: false``) too."""
        out: dict[str, Any] = {"dataset": self.get_dataset(namespace, name), "upstream": [], "downstream": []}
        for item in self._query_prefix(keys.dataset_key(namespace, name), "", index="gsi1"):
            sort_key = str(item.get("gsi1sk", ""))
            if sort_key.startswith("UP#"):
                out["upstream"].append(item)
            elif sort_key.startswith("DOWN#"):
                out["downstream"].append(item)
        return out

    def dataset_versions(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """One item per distinct schema the dataset had, oldest first."""
        items = self._query_prefix(keys.dataset_key(namespace, name), "VER#")
        return sorted(items, key=lambda i: str(i.get("createdAt", "")))

    def column_lineage(self, namespace: str, name: str, field_name: str) -> list[dict[str, Any]]:
        """The input fields that a dataset field is computed from, one item per (job, input field)."""
        return list(self._query_prefix(keys.field_key(namespace, name, field_name), "", index="gsi1"))

    def column_downstream(self, namespace: str, name: str, field_name: str) -> list[dict[str, Any]]:
        """The output fields computed from a dataset field."""
        return list(self._query_prefix(keys.field_key(namespace, name, field_name), "", index="gsi2"))

    def run_children(self, namespace: str | None, job: str | None, run_id: str) -> list[dict[str, Any]]:
        """A run's child runs: their links (one Query), the children whose tokens could not write the parent's
        namespace (one Query of gsi4: docs/auth.md), then their run items (one BatchGet) for their state.

        Without ``namespace`` and ``job``: the children of every job's run with this runId."""
        prefix = f"{keys.job_key(namespace, job)}#" if namespace is not None and job is not None else ""
        links = list(self._query_prefix(keys.run_key(run_id), CHILD_INDEX + prefix))
        wanted = [(keys.run_key(str(i["runId"])), run_sk(str(i["namespace"]), str(i["job"]))) for i in links]
        indexed = self._query_prefix(CHILD_INDEX + keys.run_key(run_id), prefix, index="gsi4")
        for item in indexed:  # KEYS_ONLY: the child run item's own key
            if (child := (str(item["pk"]), str(item["sk"]))) not in wanted:
                wanted.append(child)
                links.append({"runId": None})
        runs = self._batch_get(wanted, CHILD_RUN_ATTRIBUTES, consistent=False)
        children = []
        for wanted_key, link in zip(wanted, links, strict=True):
            if wanted_key in runs:
                children.append(runs[wanted_key])
            elif link.get("runId"):  # a link item whose child run item is gone: the link still names it
                children.append(link)
        return children

    def list_awaiting_start(self, limit: int = 100) -> list[dict[str, Any]]:
        """Runs with a terminal event and no START yet, oldest first."""
        return list(self._query_prefix(AWAITING_START, "", index="gsi2", limit=limit))
