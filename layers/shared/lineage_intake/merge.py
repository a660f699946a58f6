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
from datetime import UTC, datetime
from typing import Any, Literal

from lineage_intake import facets
from lineage_intake.lineage import (
    ColumnEdge,
    DatasetView,
    Edge,
    Ref,
    RunRef,
    Source,
    content_hash,
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
    #: The connections of the token that stored it (None: not recorded, i.e. its own job namespace only).
    connections: frozenset[str] | None = None
    token_id: str | None = None

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
        self.event_types: dict[str, int] = {}
        #: The namespaces that every folded event's token could write (None before the first event).
        self.writable: set[str] | None = None
        self._instant: list[StoredEvent] = []
        self.boundary: str | None = None  # set when resumed from a checkpoint

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
        granted = event.connections or frozenset()
        self.writable = set(granted) if self.writable is None else self.writable & granted
        self.last_key = max(self.last_key, (event.event_time, event.event_id))
        self.first_time = self.first_time or event.event_time
        self.last_time = event.event_time
        self.producer = facets.text(body.get("producer")) or self.producer
        event_type = event.event_type or facets.text(body.get("eventType"))
        type_name = event_type if event_type in LIFECYCLE_RANK else "OTHER"
        self.event_types[type_name] = self.event_types.get(type_name, 0) + 1
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
        return f"{self.count:010d}#{self.last_key[0]}#{self.last_key[1][:12]}"  # 48 bits of the id: ties only

    # ------------------------------------------------------------------ checkpoints (incremental merge)
    _SCALARS = ("count", "first_time", "last_time", "producer", "run_id", "start_time")

    def checkpoint(self) -> Checkpoint | None:
        """The state of every event before the instant still buffered, and where the next merge resumes.

        The buffered instant is left out, so a later event of that same eventTime is still folded in lifecycle
        order: the next merge re-reads the events from ``boundary`` (that instant) on. None before any instant
        is complete.
        """
        if not self._instant or self.count == 0:
            return None

        def datasets(target: Mapping[Ref, _DatasetState]) -> list[list[Any]]:
            return [[r.namespace, r.name, dict(s.facets), dict(s.extra)] for r, s in sorted(target.items())]

        state = {name: getattr(self, name) for name in self._SCALARS}
        state |= {
            "last_key": list(self.last_key),
            "job_ref": [self.job_ref.namespace, self.job_ref.name] if self.job_ref else None,
            "dataset_ref": [self.dataset_ref.namespace, self.dataset_ref.name] if self.dataset_ref else None,
            "terminal": list(self.terminal) if self.terminal else None,
            # copies: the maps are folded further (top-level keys only) after the snapshot
            "run_facets": dict(self.run_facets),
            "job_facets": dict(self.job_facets),
            "dataset_facets": dict(self.dataset_facets),
            "inputs": datasets(self.inputs),
            "outputs": datasets(self.outputs),
            "event_types": dict(self.event_types),
            "writable": sorted(self.writable or ()),
        }
        return Checkpoint(boundary=self._instant[0].event_time, state=state)

    @classmethod
    def resume(cls, checkpoint: Checkpoint | None) -> _Fold:
        fold = cls()
        if checkpoint is None:
            return fold
        state = checkpoint.state
        for name in cls._SCALARS:
            setattr(fold, name, state[name])
        fold.last_key = (state["last_key"][0], state["last_key"][1])
        fold.job_ref = Ref(*state["job_ref"]) if state["job_ref"] else None
        fold.dataset_ref = Ref(*state["dataset_ref"]) if state["dataset_ref"] else None
        fold.terminal = (state["terminal"][0], state["terminal"][1]) if state["terminal"] else None
        fold.run_facets, fold.job_facets = dict(state["run_facets"]), dict(state["job_facets"])
        fold.dataset_facets = dict(state["dataset_facets"])
        fold.event_types = dict(state["event_types"])
        fold.writable = set(state.get("writable") or ())  # a checkpoint from before it: fail closed
        for target, entries in ((fold.inputs, state["inputs"]), (fold.outputs, state["outputs"])):
            for namespace, name, dataset_facets, extra in entries:
                target[Ref(namespace, name)] = _DatasetState(dict(dataset_facets), dict(extra))
        fold.boundary = checkpoint.boundary
        return fold


@dataclass(frozen=True)
class Checkpoint:
    """The fold state of a run's events before ``boundary`` (an eventTime): a merge that resumes from it reads
    only the events with ``sk >= boundary``, so the work per event stays constant (docs/merge.md)."""

    boundary: str
    state: Mapping[str, Any]


def fold_events(events: Iterable[StoredEvent], resume: Checkpoint | None = None) -> tuple[_Fold, Checkpoint | None]:
    fold = _Fold.resume(resume)
    for event in events:
        if resume is not None and event.event_time < resume.boundary:
            raise UnorderedEvents(f"event at {event.event_time} is before the checkpoint at {resume.boundary}")
        fold.add(event)
    checkpoint = fold.checkpoint()
    fold.finish()
    return fold, checkpoint


# ---------------------------------------------------------------------------------------------- runs
#: Characters of an error message kept on the run item; the whole facet (stack trace too) stays in the events.
ERROR_MESSAGE_CHARS = 500


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
    start_missing: bool = False
    event_types: Mapping[str, int] = field(default_factory=dict)
    #: Namespaces that the tokens of all the run's events could write, besides its own (docs/auth.md).
    writable: frozenset[str] = frozenset()
    #: The job's ``tags`` facet (``facets.tags``): on the job item, listed by ``/tags`` (read API).
    tags: tuple[Mapping[str, str], ...] | None = None
    #: Per dataset, the data-quality facets this run reported (``facets.data_quality``), by dataset name.
    data_quality: tuple[tuple[Ref, Mapping[str, Any]], ...] = ()
    #: Where the next merge of this run may resume (None: re-read from the first event); not part of the result.
    checkpoint: Checkpoint | None = field(default=None, compare=False, repr=False)
    #: Events this merge read (after its checkpoint, if it resumed from one); not part of the result.
    events_read: int = field(default=0, compare=False)

    @property
    def job_ref(self) -> Ref:
        return Ref(self.namespace, self.job)

    @property
    def builds_lineage(self) -> bool:
        """Job, dataset and edge records are written for merged and streaming runs only."""
        return self.status in ("merged", "streaming")

    @property
    def has_lineage(self) -> bool:
        """A run that reports no dataset never changes its job's lineage (a FAIL before planning, for one)."""
        return bool(self.inputs or self.outputs)

    @property
    def parent_closed(self) -> bool:
        """The parent run is in a namespace that some event's token could not write: the merge then keeps the
        link on this run's side only and creates no placeholder there (docs/auth.md, "Namespaces stay closed")."""
        return (
            self.parent is not None
            and self.parent.namespace != self.namespace
            and self.parent.namespace not in self.writable
        )

    @property
    def parent_link_child_side(self) -> bool:
        """The link to a parent run in a closed namespace is the run item's gsi4 keys, not an item under the
        parent (docs/auth.md, "Namespaces stay closed"): the merge log line says so (``parentLinkChildSide``)."""
        return self.parent_closed and self.builds_lineage and self.parent is not None and bool(self.parent.run_id)

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
    def duration_ms(self) -> int | None:
        if self.end_time is None or self.status not in ("merged",):
            return None
        return max(0, round((_epoch(self.end_time) - _epoch(self.sort_time)) * 1000))

    def run_content(self) -> dict[str, Any]:
        """The run item's summary (without keys, versions and merge time): small, see docs/merge.md."""
        error = None
        if self.error_message:
            error = {
                "message": str(self.error_message.get("message") or "")[:ERROR_MESSAGE_CHARS],
                "programmingLanguage": self.error_message.get("programmingLanguage"),
            }
        content: dict[str, Any] = {
            "namespace": self.namespace,
            "job": self.job,
            "runId": self.run_id,
            "state": self.state,
            "startTime": self.start_time,
            "endTime": self.end_time,
            "firstEventTime": None if self.start_time else self.first_event_time,  # the sort time without START
            "lastEventTime": self.last_event_time,
            "durationMs": self.duration_ms,
            "eventCount": self.event_count,
            "eventTypes": dict(self.event_types),
            "hasLineage": self.has_lineage,
            "startMissing": True if self.start_missing else None,
            "integration": self.integration,
            "processingType": self.processing_type,
            "jobType": self.job_type,
            "parent": self.parent.as_dict() if self.parent else None,
            "root": self.root.as_dict() if self.root and self.root != self.parent else None,
            # [namespace, name] pairs: a third smaller than maps, and the run item must stay under 1 KB
            "inputs": [[r.namespace, r.name] for r in self.inputs],
            "outputs": [[r.namespace, r.name] for r in self.outputs],
            "errorMessage": error,
            "nominalTime": dict(self.nominal_time) if self.nominal_time else None,
        }
        return {k: v for k, v in content.items() if v is not None}

    def job_content(self) -> dict[str, Any]:
        """What the run says of its job besides lineage: kept on the job item while this run owns its lineage."""
        parent_job = Ref(self.parent.namespace, self.parent.job) if self.parent else None
        return {
            "integration": self.integration,
            "processingType": self.processing_type,
            "jobType": self.job_type,
            "parentJob": parent_job.as_dict() if parent_job else None,
            "sql": dict(self.sql) if self.sql else None,
            "description": self.description,
            "tags": [dict(t) for t in self.tags] if self.tags else None,
        }

    def lineage_digest(self) -> str:
        """Digest of everything the job's lineage records hold from this run: edges, each dataset's schema,
        symlinks and tags, column lineage, job content. Equal digest: nothing to write but the run item. Tags
        join a dataset's entry only when reported, so the digests of runs without them did not change."""
        return content_hash(
            [
                self.job_content(),
                [e.content() for e in self.edges()],
                [
                    [v.ref.as_dict(), v.fields, v.symlinks, *([v.tags] if v.tags is not None else [])]
                    for v in self.datasets
                ],
                [c.content() for c in self.column_edges()],
            ]
        )

    def edges(self) -> list[Edge]:
        job = self.job_ref
        return [Edge(job, d, "IN", "run") for d in self.inputs] + [Edge(job, d, "OUT", "run") for d in self.outputs]

    def column_edges(self) -> list[ColumnEdge]:
        return column_edges_from(self.job_ref, self.column_lineage, "run")


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


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


def dataset_views(
    inputs: Mapping[Ref, _DatasetState], outputs: Mapping[Ref, _DatasetState], named: Iterable[Ref] = ()
) -> list[DatasetView]:
    """One view per dataset; what the run says of it as an output wins over what it says as an input.
    ``named``: datasets only column lineage names (no facets: partial datasets without a schema)."""
    views = []
    for ref in sorted(set(inputs) | set(outputs) | set(named)):
        fields = symlinks = tags = None
        for state in (inputs.get(ref), outputs.get(ref)):
            if state is None:
                continue
            fields = facets.schema_fields(state.facets) or fields
            symlinks = facets.symlinks(state.facets) or symlinks
            tags = facets.tags(state.facets) or tags
        out = outputs.get(ref)
        column_fields = facets.column_lineage_fields(out.facets) if out else None
        lifecycle = facets.lifecycle_state(out.facets) if out else None
        views.append(DatasetView(ref, fields, symlinks, tags, column_fields, lifecycle))
    return views


def data_quality_of(
    inputs: Mapping[Ref, _DatasetState], outputs: Mapping[Ref, _DatasetState]
) -> tuple[tuple[Ref, Mapping[str, Any]], ...]:
    """The data-quality facets a run reported per dataset: an input's ``inputFacets`` over its ``facets``, and
    what it says of the dataset as an output over what it says as an input (as ``dataset_views``)."""
    out = []
    for ref in sorted(set(inputs) | set(outputs)):
        states = [s for s in (inputs.get(ref), outputs.get(ref)) if s is not None]
        found = facets.data_quality(*(m for s in states for m in (s.facets, s.extra)))
        if found:
            out.append((ref, found))
    return tuple(out)


def _column_datasets(column_lineage: Iterable[Mapping[str, Any]]) -> set[Ref]:
    """The datasets that column lineage names as inputs: each one is a dataset the run reads."""
    return {Ref(i["namespace"], i["name"]) for entry in column_lineage for i in entry["inputs"]}


def merge_run(
    events: Iterable[StoredEvent], *, resume: Checkpoint | None = None, grace_expired: bool = False
) -> MergedRun | None:
    """Fold the events of one run (in sort-key order) into its merged lineage; None when there are none.

    ``resume``: the checkpoint of an earlier merge, ``events`` then start at its boundary (incremental merge).
    ``grace_expired``: the run's START grace period is over, so a terminal event without START merges the run
    from what it has (``startMissing``).
    """
    fold, checkpoint = fold_events(events, resume)
    if fold.count == 0 or fold.job_ref is None or fold.run_id is None:
        return None
    integration, processing_type, job_type = facets.job_type(fold.job_facets)
    start_missing = False
    merge_version = fold.merge_version
    if fold.terminal is not None:
        terminal_type, terminal_time = fold.terminal
        if fold.start_time or grace_expired:
            status: Status = "merged"
            state = terminal_type
            start_missing = fold.start_time is None
            merge_version += "#G" if start_missing else ""
        else:
            status, state = "awaiting_start", "AWAITING_START"
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
    named = _column_datasets([*column_lineage, *dataset_lineage]) - set(fold.inputs) - set(fold.outputs)
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
        merge_version=merge_version,
        producer=fold.producer,
        integration=integration,
        processing_type=processing_type,
        job_type=job_type,
        parent=parent,
        root=root,
        inputs=tuple(sorted(set(fold.inputs) | named)),
        outputs=tuple(sorted(fold.outputs)),
        column_lineage=tuple(column_lineage),
        dataset_lineage=tuple(dataset_lineage),
        error_message=facets.error_message(fold.run_facets),
        nominal_time=facets.nominal_time(fold.run_facets),
        run_facet_names=tuple(sorted(fold.run_facets)),
        sql=facets.sql(fold.job_facets),
        description=facets.description(fold.job_facets),
        datasets=tuple(dataset_views(fold.inputs, fold.outputs, named)),
        start_missing=start_missing,
        event_types=dict(sorted(fold.event_types.items())),
        writable=frozenset(fold.writable or ()),
        tags=facets.tags(fold.job_facets),
        data_quality=data_quality_of(fold.inputs, fold.outputs),
        checkpoint=checkpoint,
        events_read=fold.count - (int(resume.state["count"]) if resume else 0),
    )


def ordered(events: Iterable[StoredEvent]) -> Iterator[StoredEvent]:
    """Events sorted the way the fold reads them (for callers holding events in memory, e.g. tests)."""
    return iter(sorted(events, key=lambda e: (e.event_time, e.rank, e.event_id)))
