"""Merge rules: fold the stored events of a run (or of a static job or dataset) into lineage records.

Pure functions and value objects, no AWS: the service feeds the events of one Events-table partition in
sort-key order, the fold keeps only the merged state (never the events), and the result is deterministic:
lists are sorted, nothing depends on the wall clock or on the order the events arrived in.

The rules (event order, facets, inputs and outputs, state, times, column lineage) are in docs/merge.md,
"Semantics"; the tests in tests/unit/test_merge_rules.py name them one by one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from lineage_intake import facets
from lineage_intake.lineage import (
    ColumnEdge,
    DatasetView,
    Edge,
    Ref,
    RunRef,
    Source,
    normalize_run_id,
)
from lineage_intake.models import TERMINAL_STATES

#: Order of event types that share an eventTime: a START never comes after the terminal event of its instant.
LIFECYCLE_RANK = {"START": 0, "RUNNING": 1, "OTHER": 1, "COMPLETE": 2, "FAIL": 2, "ABORT": 2}

Status = Literal["merged", "awaiting_start", "streaming", "pending"]


class UnorderedEvents(ValueError):
    """The events were not given in eventTime order (a bug in the caller, not in the data)."""


# ---------------------------------------------------------------------------------------------- values
@dataclass(frozen=True)
class StoredEvent:
    """One event of a partition as the fold needs it: its sort-key parts and its decoded JSON body."""

    event_time: str  # fixed-width UTC (format_event_time), so string order is time order
    event_id: str
    event_type: str | None
    body: Mapping[str, Any]

    @property
    def rank(self) -> int:
        return LIFECYCLE_RANK.get(self.event_type or "OTHER", 1)


# ---------------------------------------------------------------------------------------------- facets
def merge_facets(target: dict[str, Any], facets: Any) -> None:
    """Fold one event's facet map into the merged map: later replaces earlier, ``_deleted`` removes."""
    if not isinstance(facets, Mapping):
        return
    for name, facet in facets.items():
        if facet is None:
            continue
        if isinstance(facet, Mapping) and facet.get("_deleted") is True:
            target.pop(name, None)
        else:
            target[name] = facet


# ---------------------------------------------------------------------------------------------- fold
@dataclass
class _DatasetState:
    facets: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # inputFacets or outputFacets


class _Fold:
    """The merged state of a partition's events; memory is bounded by the merged result, not by the events.

    Events must come in sort-key order (eventTime, event id). Events of the same instant are held back until
    the instant is over and then folded in lifecycle order, so only one instant is ever buffered.
    """

    def __init__(self) -> None:
        self.count = 0
        self.last_key: tuple[str, str] = ("", "")
        self.first_time: str | None = None
        self.last_time: str | None = None
        self.producer: str | None = None
        self.job_ref: Ref | None = None
        self.run_id: str | None = None
        self.start_time: str | None = None
        self.terminal: tuple[str, str] | None = None  # (eventType, eventTime)
        self.run_facets: dict[str, Any] = {}
        self.job_facets: dict[str, Any] = {}
        self.inputs: dict[Ref, _DatasetState] = {}
        self.outputs: dict[Ref, _DatasetState] = {}
        self.dataset_facets: dict[str, Any] = {}
        self.dataset_ref: Ref | None = None
        self._instant: list[StoredEvent] = []

    def add(self, event: StoredEvent) -> None:
        if self._instant and event.event_time != self._instant[0].event_time:
            if event.event_time < self._instant[0].event_time:
                raise UnorderedEvents(f"event at {event.event_time} came after {self._instant[0].event_time}")
            self._flush()
        self._instant.append(event)

    def finish(self) -> None:
        self._flush()

    def _flush(self) -> None:
        for event in sorted(self._instant, key=lambda e: (e.rank, e.event_id)):
            self._fold(event)
        self._instant.clear()

    def _fold(self, event: StoredEvent) -> None:
        body = event.body
        self.count += 1
        self.last_key = max(self.last_key, (event.event_time, event.event_id))
        self.first_time = self.first_time or event.event_time
        self.last_time = event.event_time
        self.producer = facets.text(body.get("producer")) or self.producer
        event_type = event.event_type or facets.text(body.get("eventType"))
        if event_type == "START" and self.start_time is None:
            self.start_time = event.event_time
        if event_type in TERMINAL_STATES:
            self.terminal = (event_type, event.event_time)
        job = body.get("job")
        if isinstance(job, Mapping):
            if self.job_ref is None and facets.text(job.get("namespace")) and facets.text(job.get("name")):
                self.job_ref = Ref(job["namespace"], job["name"])
            merge_facets(self.job_facets, job.get("facets"))
        run = body.get("run")
        if isinstance(run, Mapping):
            if self.run_id is None and facets.text(run.get("runId")):
                self.run_id = normalize_run_id(run["runId"])
            merge_facets(self.run_facets, run.get("facets"))
        dataset = body.get("dataset")
        if isinstance(dataset, Mapping):
            if self.dataset_ref is None and facets.text(dataset.get("namespace")) and facets.text(dataset.get("name")):
                self.dataset_ref = Ref(dataset["namespace"], dataset["name"])
            merge_facets(self.dataset_facets, dataset.get("facets"))
        self._fold_datasets(self.inputs, body.get("inputs"), "inputFacets")
        self._fold_datasets(self.outputs, body.get("outputs"), "outputFacets")

    @staticmethod
    def _fold_datasets(target: dict[Ref, _DatasetState], entries: Any, extra_name: str) -> None:
        if not isinstance(entries, list):
            return
        for entry in entries:
            if (
                not isinstance(entry, Mapping)
                or not facets.text(entry.get("namespace"))
                or not facets.text(entry.get("name"))
            ):
                continue
            state = target.setdefault(Ref(entry["namespace"], entry["name"]), _DatasetState())
            merge_facets(state.facets, entry.get("facets"))
            merge_facets(state.extra, entry.get(extra_name))

    @property
    def merge_version(self) -> str:
        """Grows with every stored event: a merge that read more events has a greater version."""
        return f"{self.count:010d}#{self.last_key[0]}#{self.last_key[1]}"


def _fold(events: Iterable[StoredEvent]) -> _Fold:
    fold = _Fold()
    for event in events:
        fold.add(event)
    fold.finish()
    return fold


# ---------------------------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class MergedRun:
    """The merged lineage of one run, and the records derived from it."""

    namespace: str
    job: str
    run_id: str
    status: Status
    state: str
    start_time: str | None
    end_time: str | None
    first_event_time: str
    last_event_time: str
    event_count: int
    merge_version: str
    producer: str | None
    integration: str | None
    processing_type: str | None
    job_type: str | None
    parent: RunRef | None
    root: RunRef | None
    inputs: tuple[Ref, ...]
    outputs: tuple[Ref, ...]
    column_lineage: tuple[Mapping[str, Any], ...]
    dataset_lineage: tuple[Mapping[str, Any], ...]
    error_message: Mapping[str, Any] | None
    nominal_time: Mapping[str, Any] | None
    run_facet_names: tuple[str, ...]
    sql: Mapping[str, Any] | None
    description: str | None
    datasets: tuple[DatasetView, ...]

    @property
    def job_ref(self) -> Ref:
        return Ref(self.namespace, self.job)

    @property
    def builds_lineage(self) -> bool:
        """Job, dataset and edge records are written for merged and streaming runs only."""
        return self.status in ("merged", "streaming")

    @property
    def terminal_time(self) -> str | None:
        return self.end_time if self.state in TERMINAL_STATES or self.status == "awaiting_start" else None

    @property
    def sort_time(self) -> str:
        """The run's place in its job's history: its START, else its first event."""
        return self.start_time or self.first_event_time

    @property
    def order(self) -> str:
        """Total order of the runs of a job (fixed-width time, then runId): the greatest is the latest run."""
        return f"{self.sort_time}#{self.run_id}"

    @property
    def shared_version(self) -> str:
        """Version of the records that many runs write (job, datasets): latest run first, then latest merge."""
        return f"{self.order}#{self.merge_version}"

    def run_content(self) -> dict[str, Any]:
        """The run record (without keys, versions and merge time)."""
        content: dict[str, Any] = {
            "namespace": self.namespace,
            "job": self.job,
            "runId": self.run_id,
            "state": self.state,
            "startTime": self.start_time,
            "endTime": self.end_time,
            "lastEventTime": self.last_event_time,
            "producer": self.producer,
            "integration": self.integration,
            "processingType": self.processing_type,
            "jobType": self.job_type,
            "parent": self.parent.as_dict() if self.parent else None,
            "root": self.root.as_dict() if self.root else None,
            "inputs": [r.as_dict() for r in self.inputs],
            "outputs": [r.as_dict() for r in self.outputs],
            "columnLineage": [dict(c) for c in self.column_lineage],
            "datasetLineage": [dict(d) for d in self.dataset_lineage],
            "errorMessage": dict(self.error_message) if self.error_message else None,
            "nominalTime": dict(self.nominal_time) if self.nominal_time else None,
            "facets": list(self.run_facet_names),
            "eventCount": self.event_count,
        }
        return content

    def job_content(self) -> dict[str, Any]:
        """The job's section written by its latest run: integration, latest run, current inputs and outputs."""
        parent_job = Ref(self.parent.namespace, self.parent.job) if self.parent else None
        return {
            "integration": self.integration,
            "processingType": self.processing_type,
            "jobType": self.job_type,
            "latestRun": {
                "runId": self.run_id,
                "state": self.state,
                "startTime": self.start_time,
                "endTime": self.end_time,
            },
            "inputs": [r.as_dict() for r in self.inputs],
            "outputs": [r.as_dict() for r in self.outputs],
            "parentJob": parent_job.as_dict() if parent_job else None,
            "sql": dict(self.sql) if self.sql else None,
            "description": self.description,
        }

    def edges(self) -> list[Edge]:
        job = self.job_ref
        return [Edge(job, d, "IN", "run") for d in self.inputs] + [Edge(job, d, "OUT", "run") for d in self.outputs]

    def column_edges(self) -> list[ColumnEdge]:
        return column_edges_from(self.job_ref, self.column_lineage, "run")

    def dataset_parts(self, view: DatasetView) -> dict[str, dict[str, Any]]:
        """What this run says of a dataset, in parts that each keep the latest run that said it: ``lineage``
        (the last run that read or wrote it), ``fields`` and ``symlinks`` (only when the run reported them, so
        that a run without a schema facet does not erase the schema another run reported)."""
        parts: dict[str, dict[str, Any]] = {
            "lineage": {
                "lastRun": {"namespace": self.namespace, "job": self.job, "runId": self.run_id},
                "lastSeen": self.sort_time,
            }
        }
        if view.fields is not None:
            parts["fields"] = {"fields": [dict(f) for f in view.fields]}
        if view.symlinks is not None:
            parts["symlinks"] = {"symlinks": [dict(s) for s in view.symlinks]}
        return parts


def column_edges_from(job: Ref, column_lineage: Iterable[Mapping[str, Any]], source: Source) -> list[ColumnEdge]:
    edges = []
    for entry in column_lineage:
        out = entry["output"]
        for inp in entry["inputs"]:
            edges.append(
                ColumnEdge(
                    job=job,
                    output=Ref(out["namespace"], out["name"]),
                    output_field=out["field"],
                    input=Ref(inp["namespace"], inp["name"]),
                    input_field=inp["field"],
                    transformations=tuple(inp["transformations"]),
                    source=source,
                )
            )
    return edges


def _dataset_views(inputs: Mapping[Ref, _DatasetState], outputs: Mapping[Ref, _DatasetState]) -> list[DatasetView]:
    """One view per dataset; what the run says of it as an output wins over what it says as an input."""
    views = []
    for ref in sorted(set(inputs) | set(outputs)):
        fields = symlinks = None
        for state in (inputs.get(ref), outputs.get(ref)):
            if state is None:
                continue
            fields = facets.schema_fields(state.facets) or fields
            symlinks = facets.symlinks(state.facets) or symlinks
        views.append(DatasetView(ref, fields, symlinks))
    return views


def merge_run(events: Iterable[StoredEvent]) -> MergedRun | None:
    """Fold the events of one run (in sort-key order) into its merged lineage; None when there are none."""
    fold = _fold(events)
    if fold.count == 0 or fold.job_ref is None or fold.run_id is None:
        return None
    integration, processing_type, job_type = facets.job_type(fold.job_facets)
    if fold.terminal is not None:
        terminal_type, terminal_time = fold.terminal
        status: Status = "merged" if fold.start_time else "awaiting_start"
        state = terminal_type if fold.start_time else "AWAITING_START"
        end_time: str | None = terminal_time
    elif (processing_type or "").upper() == "STREAMING":
        status, state, end_time = "streaming", "RUNNING", None
    else:
        status, state, end_time = "pending", "RUNNING" if fold.start_time else "PENDING", None
    parent, root = facets.parent_refs(fold.run_facets)
    column_lineage = [c for ref in sorted(fold.outputs) for c in facets.column_lineage(ref, fold.outputs[ref].facets)]
    dataset_lineage = [
        d for ref in sorted(fold.outputs) if (d := facets.dataset_lineage(ref, fold.outputs[ref].facets)) is not None
    ]
    assert fold.first_time is not None and fold.last_time is not None
    return MergedRun(
        namespace=fold.job_ref.namespace,
        job=fold.job_ref.name,
        run_id=fold.run_id,
        status=status,
        state=state,
        start_time=fold.start_time,
        end_time=end_time,
        first_event_time=fold.first_time,
        last_event_time=fold.last_time,
        event_count=fold.count,
        merge_version=fold.merge_version,
        producer=fold.producer,
        integration=integration,
        processing_type=processing_type,
        job_type=job_type,
        parent=parent,
        root=root,
        inputs=tuple(sorted(fold.inputs)),
        outputs=tuple(sorted(fold.outputs)),
        column_lineage=tuple(column_lineage),
        dataset_lineage=tuple(dataset_lineage),
        error_message=facets.error_message(fold.run_facets),
        nominal_time=facets.nominal_time(fold.run_facets),
        run_facet_names=tuple(sorted(fold.run_facets)),
        sql=facets.sql(fold.job_facets),
        description=facets.description(fold.job_facets),
        datasets=tuple(_dataset_views(fold.inputs, fold.outputs)),
    )


# ---------------------------------------------------------------------------------------------- static
@dataclass(frozen=True)
class JobDefinition:
    """A job as its JobEvents define it (static lineage: no run)."""

    ref: Ref
    version: str
    event_count: int
    defined_at: str
    integration: str | None
    processing_type: str | None
    job_type: str | None
    inputs: tuple[Ref, ...]
    outputs: tuple[Ref, ...]
    sql: Mapping[str, Any] | None
    description: str | None
    facet_names: tuple[str, ...]
    column_lineage: tuple[Mapping[str, Any], ...]
    datasets: tuple[DatasetView, ...]

    def content(self) -> dict[str, Any]:
        return {
            "definedIntegration": self.integration,
            "definedProcessingType": self.processing_type,
            "definedJobType": self.job_type,
            "definedInputs": [r.as_dict() for r in self.inputs],
            "definedOutputs": [r.as_dict() for r in self.outputs],
            "definedSql": dict(self.sql) if self.sql else None,
            "definedDescription": self.description,
            "definedFacets": list(self.facet_names),
            "definedAt": self.defined_at,
        }

    def edges(self) -> list[Edge]:
        return [Edge(self.ref, d, "IN", "static") for d in self.inputs] + [
            Edge(self.ref, d, "OUT", "static") for d in self.outputs
        ]

    def column_edges(self) -> list[ColumnEdge]:
        return column_edges_from(self.ref, self.column_lineage, "static")


def merge_job_events(events: Iterable[StoredEvent]) -> JobDefinition | None:
    fold = _fold(events)
    if fold.count == 0 or fold.job_ref is None or fold.last_time is None:
        return None
    integration, processing_type, job_type = facets.job_type(fold.job_facets)
    return JobDefinition(
        ref=fold.job_ref,
        version=fold.merge_version,
        event_count=fold.count,
        defined_at=fold.last_time,
        integration=integration,
        processing_type=processing_type,
        job_type=job_type,
        inputs=tuple(sorted(fold.inputs)),
        outputs=tuple(sorted(fold.outputs)),
        sql=facets.sql(fold.job_facets),
        description=facets.description(fold.job_facets),
        facet_names=tuple(sorted(fold.job_facets)),
        column_lineage=tuple(
            c for ref in sorted(fold.outputs) for c in facets.column_lineage(ref, fold.outputs[ref].facets)
        ),
        datasets=tuple(_dataset_views(fold.inputs, fold.outputs)),
    )


@dataclass(frozen=True)
class DatasetDefinition:
    """A dataset as its DatasetEvents define it: it makes the dataset a full (not partial) asset."""

    ref: Ref
    version: str
    event_count: int
    defined_at: str
    fields: tuple[Mapping[str, Any], ...] | None
    symlinks: tuple[Mapping[str, Any], ...] | None
    description: str | None
    facet_names: tuple[str, ...]

    def content(self) -> dict[str, Any]:
        return {
            "definedFields": [dict(f) for f in self.fields] if self.fields is not None else None,
            "definedSymlinks": [dict(s) for s in self.symlinks] if self.symlinks is not None else None,
            "definedDescription": self.description,
            "definedFacets": list(self.facet_names),
            "definedAt": self.defined_at,
        }


def merge_dataset_events(events: Iterable[StoredEvent]) -> DatasetDefinition | None:
    fold = _fold(events)
    if fold.count == 0 or fold.dataset_ref is None or fold.last_time is None:
        return None
    return DatasetDefinition(
        ref=fold.dataset_ref,
        version=fold.merge_version,
        event_count=fold.count,
        defined_at=fold.last_time,
        fields=facets.schema_fields(fold.dataset_facets),
        symlinks=facets.symlinks(fold.dataset_facets),
        description=facets.description(fold.dataset_facets),
        facet_names=tuple(sorted(fold.dataset_facets)),
    )


def ordered(events: Iterable[StoredEvent]) -> Iterator[StoredEvent]:
    """Events sorted the way the fold reads them (for callers holding events in memory, e.g. tests)."""
    return iter(sorted(events, key=lambda e: (e.event_time, e.rank, e.event_id)))
