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
    DatasetVersionList,
    FacetsResult,
    Job,
    JobList,
    Namespace,
    NamespaceList,
    Run,
    RunList,
    RunState,
    Tag,
    TagList,
)
from lineage_intake.marquez_ids import MAX_OFFSET, Page
from lineage_intake.service.read_views import dataset_version_view, dataset_view, job_view, namespace_view, run_view
from lineage_intake.store.catalog import CatalogStore

#: Runs shown in a job's ``latestRuns`` (Marquez shows 10).
LATEST_RUNS = 10
#: Namespaces read for ``/namespaces`` (they are few; the cap is documented).
MAX_NAMESPACES = MAX_OFFSET
#: Jobs whose latest run ``/jobs?lastRunStates=`` checks (one gsi1 Query each): beyond it the filtered listing
#: and its ``totalCount`` cover the first jobs by (namespace, name) only (docs/read-api.md "/jobs").
MAX_FILTERED_JOBS = 1000


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
        return JobList(jobs=self._rows(items), total_count=self.lineage.count(namespace, "J"))

    def _rows(self, items: list[dict[str, Any]]) -> list[Job]:
        """Listing rows with their latest runs (the UI's job pages read ``latestRun`` and ``latestRuns[]``): one
        gsi1 Query per row, side by side (``CatalogStore.latest_runs``)."""
        jobs = [(str(i["namespace"]), str(i["name"])) for i in items]
        latest = self.lineage.latest_runs(jobs, LATEST_RUNS)
        return [job_view(item, None, latest.get(job, [])) for item, job in zip(items, jobs, strict=True)]

    def all_jobs(self, page: Page, states: frozenset[RunState] = frozenset()) -> JobList:
        """Every namespace's jobs, by (namespace, name) (the UI's dashboard). With ``states``: only jobs whose
        latest run is in one of them, which needs each job's latest run (``MAX_FILTERED_JOBS`` at most)."""
        wanted = page.offset + page.limit
        spaces = [str(n["name"]) for n in self.lineage.namespaces(limit=MAX_NAMESPACES)]
        if not states:
            counts = {space: self.lineage.count(space, "J") for space in spaces}
            rows: list[dict[str, Any]] = []
            skipped = 0
            for space in spaces:
                if len(rows) >= page.limit:
                    break
                if skipped + counts[space] <= page.offset:
                    skipped += counts[space]
                    continue
                listed = self.lineage.listing(space, "J", limit=page.offset - skipped + page.limit)
                rows += listed[max(0, page.offset - skipped) :]
                skipped += counts[space]
            return JobList(jobs=self._rows(rows[: page.limit]), total_count=sum(counts.values()))
        matched: list[Job] = []
        checked = 0
        for space in spaces:
            listed = self.lineage.listing(space, "J", limit=MAX_FILTERED_JOBS - checked)
            checked += len(listed)
            matched += [r for r in self._rows(listed) if r.latest_run is not None and r.latest_run.state in states]
            if checked >= MAX_FILTERED_JOBS:
                break
        return JobList(jobs=matched[page.offset : wanted], total_count=len(matched))

    def job(self, namespace: str, name: str) -> Job:
        records = self.lineage.job_records(namespace, name)
        if records.job is None:
            raise NotFound(f"Job '{name}' not found in namespace '{namespace}'.")
        view = job_view(records.job, records.edges, self.lineage.list_runs(namespace, name, limit=LATEST_RUNS))
        if view.latest_run is None or self.events is None:
            return view
        # The job drawer reads ``latestRun.facets``: folded from the latest run's events (one Query more).
        facets = self.run_facets(view.latest_run.id, "run").facets
        return view.model_copy(update={"latest_run": view.latest_run.model_copy(update={"facets": facets})})

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

    def run_children(self, run_id: str, page: Page) -> RunList:
        """The runs whose ``parent`` facet names this run, whichever connection sent them (docs/auth.md,
        "Namespaces stay closed"): the child links and the children indexed on gsi4."""
        found = self.lineage.run_children(None, None, run_id)
        if not found:
            self.run_items(run_id)  # 404 for a run that is not stored either
        ordered = sorted(found, key=lambda c: (str(c.get("namespace")), str(c.get("job")), str(c.get("runId"))))
        return RunList(runs=[run_view(c) for c in _page(ordered, page)], total_count=len(ordered))

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
        """The dataset with its column lineage (the drawer reads ``columnLineage[].name``): the column edges live
        in the partitions of the jobs that write it, so one gsi1 Query for its writers and one Query per writer."""
        item, quality = self.lineage.dataset_with_quality(namespace, name)
        if item is None:
            raise NotFound(f"Dataset '{name}' not found in namespace '{namespace}'.")
        writers = {
            (str(e["job"]["namespace"]), str(e["job"]["name"]))
            for e in self.lineage.dataset_lineage(namespace, name)["upstream"]
            if isinstance(e.get("job"), Mapping) and e.get("current") is not False
        }
        columns = [
            c
            for writer in sorted(writers)
            for c in self.lineage.job_records(*writer).column_edges
            if (c.get("output") or {}).get("namespace") == namespace and (c.get("output") or {}).get("name") == name
        ]
        return dataset_view(item, columns, quality=quality)

    def dataset_versions(self, namespace: str, name: str, page: Page) -> DatasetVersionList:
        """One version per distinct schema the dataset had, newest first, each with the run that first had it
        (a Query of the dataset's ``VER#`` items, then one GetItem per version served)."""
        item = self.lineage.get_dataset(namespace, name)
        if item is None:
            raise NotFound(f"Dataset '{name}' not found in namespace '{namespace}'.")
        found = self.lineage.dataset_versions(namespace, name)
        versions = sorted(found, key=lambda v: (str(v.get("firstSeen", "")), str(v.get("sk", ""))), reverse=True)
        served = []
        for version in _page(versions, page):
            first = version.get("firstRun") if isinstance(version.get("firstRun"), Mapping) else {}
            run = (
                self.lineage.get_run(str(first["namespace"]), str(first["job"]), str(first["runId"]))
                if first and first.get("runId")
                else None
            )
            served.append(dataset_version_view(item, version, run))
        return DatasetVersionList(versions=served, total_count=len(versions))

    # ------------------------------------------------------------------ tags
    def tags(self, page: Page) -> TagList:
        items = self.lineage.tags(limit=page.offset + page.limit)
        return TagList(tags=[Tag(name=str(i["name"]), description=i.get("description")) for i in _page(items, page)])
