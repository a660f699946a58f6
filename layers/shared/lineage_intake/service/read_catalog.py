"""Read use cases: namespaces, jobs, runs, datasets, run facets (Marquez's paths; docs/read-api.md).

Each method is one or a bounded few DynamoDB reads (``store.catalog``); unknown things raise ``NotFound``
with Marquez's wording; paging follows Marquez (``limit``/``offset``, the index read stops at offset+limit).
The CLI's ``runs``/``datasets`` commands read through this class too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from lineage_intake import keys
from lineage_intake.errors import NotFound
from lineage_intake.marquez import (
    Dataset,
    DatasetList,
    FacetsResult,
    Job,
    JobList,
    Namespace,
    NamespaceList,
    Run,
    RunList,
)
from lineage_intake.marquez_ids import MAX_OFFSET, Page
from lineage_intake.service.read_views import dataset_view, job_view, namespace_view, run_view
from lineage_intake.store.catalog import CatalogStore

#: Runs shown in a job's ``latestRuns`` (Marquez shows 10).
LATEST_RUNS = 10
#: Namespaces read for ``/namespaces`` (they are few; the cap is documented).
MAX_NAMESPACES = MAX_OFFSET


class EventSource(Protocol):
    """The Events table as the read side needs it (``store.events.EventsStore``)."""

    def query_partition(self, pk: str, page_size: int = 500) -> Iterator[dict[str, Any]]: ...

    def load_body(self, item: Mapping[str, Any]) -> bytes: ...


def _page(items: list[Any], page: Page) -> list[Any]:
    return items[page.offset : page.offset + page.limit]


@dataclass
class Catalog:
    lineage: CatalogStore
    events: EventSource | None = None

    # ------------------------------------------------------------------ namespaces
    def namespaces(self, page: Page) -> NamespaceList:
        items = self.lineage.namespaces(limit=min(MAX_NAMESPACES, page.offset + page.limit))
        return NamespaceList(namespaces=[namespace_view(i) for i in _page(items, page)])

    def namespace(self, name: str) -> Namespace:
        item = self.lineage.namespace(name)
        if item is None:
            raise NotFound(f"Namespace '{name}' not found.")
        return namespace_view(item)

    def _require_namespace(self, name: str) -> None:
        if self.lineage.namespace(name) is None:
            raise NotFound(f"Namespace '{name}' not found.")

    # ------------------------------------------------------------------ jobs
    def jobs(self, namespace: str, page: Page) -> JobList:
        self._require_namespace(namespace)
        items = _page(self.lineage.listing(namespace, "J", limit=page.offset + page.limit), page)
        return JobList(jobs=self._with_latest_runs(items), total_count=self.lineage.count(namespace, "J"))

    def _with_latest_runs(self, items: list[dict[str, Any]]) -> list[Job]:
        """Listing rows with their ``latestRun`` (Marquez's UI shows its state): one gsi1 Query (Limit 1) per
        row on the page, side by side (``CatalogStore.latest_runs``)."""
        latest = self.lineage.latest_runs((str(i["namespace"]), str(i["name"])) for i in items)
        out = []
        for item in items:
            run = latest.get((str(item["namespace"]), str(item["name"])))
            out.append(job_view(item, latest_runs=[run] if run else None))
        return out

    def job(self, namespace: str, name: str) -> Job:
        records = self.lineage.job_records(namespace, name)
        if records.job is None:
            raise NotFound(f"Job '{name}' not found in namespace '{namespace}'.")
        return job_view(records.job, records.edges, self.lineage.list_runs(namespace, name, limit=LATEST_RUNS))

    def runs(self, namespace: str, job: str, page: Page) -> RunList:
        items = self.lineage.list_runs(namespace, job, limit=page.offset + page.limit)
        if not items and self.lineage.get_job(namespace, job) is None:
            raise NotFound(f"Job '{job}' not found in namespace '{namespace}'.")
        return RunList(
            runs=[run_view(i) for i in _page(items, page)], total_count=self.lineage.run_count(namespace, job)
        )

    def run_items(self, run_id: str) -> list[dict[str, Any]]:
        """The run items of a runId, newest last event first (several jobs may reuse a runId)."""
        items = [i for i in self.lineage.runs_by_id(run_id) if not i.get("placeholder")]
        if not items:
            raise NotFound(f"Run '{run_id}' not found.")
        return sorted(items, key=lambda i: str(i.get("lastEventTime", "")), reverse=True)

    def run(self, run_id: str) -> Run:
        return run_view(self.run_items(run_id)[0])

    def run_facets(self, run_id: str, kind: Literal["run", "job"]) -> FacetsResult:
        """The run's (or its job's) facets as the run's events left them: folded in eventTime order, a later
        facet replacing an earlier one of the same name (docs/merge.md "Facets"). Reads the run's events."""
        item = self.run_items(run_id)[0]
        facets: dict[str, Any] = {}
        if self.events is not None:
            pk = str(item.get("eventsPk") or keys.run_pk(str(item["namespace"]), str(item["job"]), str(item["runId"])))
            for stored in self.events.query_partition(pk):
                body = json.loads(self.events.load_body(stored))
                part = (body.get("run") if kind == "run" else body.get("job")) or {}
                for name, value in (part.get("facets") or {}).items():
                    if isinstance(value, Mapping) and value.get("_deleted") is True:
                        facets.pop(name, None)
                    elif value is not None:
                        facets[name] = value
        return FacetsResult(run_id=str(item["runId"]), facets=facets)

    # ------------------------------------------------------------------ datasets
    def datasets(self, namespace: str, page: Page) -> DatasetList:
        self._require_namespace(namespace)
        items = _page(self.lineage.listing(namespace, "D", limit=page.offset + page.limit), page)
        # Marquez's UI shows each row's assertions (facets.dataQualityAssertions): one BatchGetItem per page
        quality = self.lineage.qualities((str(i["namespace"]), str(i["name"])) for i in items)
        rows = [dataset_view(i, quality=quality.get((str(i["namespace"]), str(i["name"])))) for i in items]
        return DatasetList(datasets=rows, total_count=self.lineage.count(namespace, "D"))

    def dataset(self, namespace: str, name: str) -> Dataset:
        item, quality = self.lineage.dataset_with_quality(namespace, name)
        if item is None:
            raise NotFound(f"Dataset '{name}' not found in namespace '{namespace}'.")
        return dataset_view(item, quality=quality)
