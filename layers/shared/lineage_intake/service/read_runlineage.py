"""Read use case: run-level upstream lineage (``/runlineage/upstream?runId=&depth=``), for root-cause work.

For each input dataset of a run: the jobs that write it (its ``UP#`` edges, current or not), and for each such
job the latest run that ended before this run started (its runs newest first, the first one that qualifies).
Those runs are walked the same way to ``depth``. No per-run write is needed: every run is kept, so this is
one walk (lead decision 1). Reads per run visited: its item (one Query by runId or one GetItem), one gsi1 Query
per input dataset, one gsi1 Query per writer job (stopping at the first qualifying run, at most
``RUNS_READ_PER_WRITER``). The walk stops at ``GRAPH_NODE_CAP`` runs with ``truncated: true``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lineage_intake.marquez import (
    UpstreamInput,
    UpstreamJob,
    UpstreamRun,
    UpstreamRunInfo,
    UpstreamRunLineage,
)
from lineage_intake.marquez_ids import GRAPH_NODE_CAP
from lineage_intake.service.read_catalog import Catalog
from lineage_intake.service.read_views import dataset_ref, run_state, time_of, version_of

#: Runs of one writer job read to find the one that ended before the consumer started (newest first).
RUNS_READ_PER_WRITER = 50


def _end(run: Mapping[str, Any]) -> str:
    return str(run.get("endTime") or run.get("lastEventTime") or "")


@dataclass
class RunLineageReader:
    catalog: Catalog
    node_cap: int = GRAPH_NODE_CAP

    def upstream(self, run_id: str, depth: int) -> UpstreamRunLineage:
        store = self.catalog.lineage
        first = self.catalog.run_items(run_id)[0]
        answer: list[UpstreamRun] = []
        seen: set[tuple[str, str, str]] = set()
        frontier: list[Mapping[str, Any]] = [first]
        truncated = False
        for _level in range(depth + 1):
            following: list[Mapping[str, Any]] = []
            for run in frontier:
                ident = (str(run["namespace"]), str(run["job"]), str(run["runId"]))
                if ident in seen:
                    continue
                if len(answer) >= self.node_cap:
                    truncated = True
                    break
                seen.add(ident)
                if "inputs" not in run:  # a summary from the runs index: read the run item for its inputs
                    run = store.get_run(*ident) or run
                started = str(run.get("startTime") or run.get("firstEventTime") or run.get("lastEventTime") or "")
                inputs: list[UpstreamInput] = []
                for value in run.get("inputs") or []:
                    ref = dataset_ref(value)
                    if ref is None:
                        continue
                    ns, name = ref
                    producer = self._producer(ns, name, started)
                    inputs.append(
                        UpstreamInput(
                            namespace=ns,
                            name=name,
                            version=version_of(ns, name),
                            produced_by_run_id=str(producer["runId"]) if producer else None,
                        )
                    )
                    if producer is not None:
                        following.append(producer)
                state = run_state(run)[0]
                answer.append(
                    UpstreamRun(
                        job=UpstreamJob(namespace=ident[0], name=ident[1], version=version_of(ident[0], ident[1])),
                        run=UpstreamRunInfo(
                            id=ident[2],
                            start=time_of(run.get("startTime")) if run.get("startTime") else None,
                            end=time_of(run.get("endTime")) if run.get("endTime") else None,
                            status=state,
                        ),
                        inputs=inputs,
                    )
                )
            if truncated:
                break
            frontier = following
        return UpstreamRunLineage(runs=answer, truncated=truncated)

    def _producer(self, namespace: str, name: str, started: str) -> dict[str, Any] | None:
        """The latest run of any writer job of the dataset that ended at or before ``started``."""
        best: dict[str, Any] | None = None
        for edge in self.catalog.lineage.dataset_edges(namespace, name):
            if not str(edge.get("gsi1sk", "")).startswith("UP#"):
                continue
            job = edge.get("job") if isinstance(edge.get("job"), Mapping) else None
            if job is None:
                continue
            for run in self.catalog.lineage.list_runs(str(job["namespace"]), str(job["name"]), RUNS_READ_PER_WRITER):
                if run.get("placeholder") or str(run.get("state")) not in ("COMPLETE", "FAIL", "ABORT"):
                    continue
                if _end(run) and _end(run) <= started:
                    if best is None or _end(run) > _end(best):
                        best = run
                    break
        return best
