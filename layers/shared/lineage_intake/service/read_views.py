"""Lineage-table items to Marquez's response models (``lineage_intake.marquez``): one home for the mapping.

Where our records hold less than Marquez's models, the choices are listed in docs/read-api.md ("Response
models"); the mapping of states is ``RUN_STATE_OF_EVENT`` plus our ``mergeState``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from lineage_intake.lineage import content_hash
from lineage_intake.marquez import (
    RUN_STATE_OF_EVENT,
    ColumnLineage,
    ColumnLineageInputField,
    DataQuality,
    Dataset,
    DatasetField,
    DatasetVersion,
    DefinedBy,
    Job,
    MergeState,
    Namespace,
    NamespaceRef,
    Run,
    RunDatasetVersion,
    RunState,
    VersionRef,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_VERSIONS = uuid.UUID("6f1d8f3e-3b7a-4c55-9b59-0c1f3c0b7a10")  # namespace of our name-based versions


def time_of(*values: Any) -> datetime:
    """The first value that parses as an ISO-8601 time (our items store fixed-width UTC strings)."""
    for value in values:
        if isinstance(value, str) and value:
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return EPOCH


def version_of(*parts: Any) -> str:
    """A name-based UUID: the same names and content always give the same version (docs/read-api.md)."""
    return str(uuid.uuid5(_VERSIONS, content_hash(list(parts))))


def namespace_view(item: Mapping[str, Any]) -> Namespace:
    created = time_of(item.get("createdAt"), item.get("mergedAt"))
    return Namespace(name=str(item["name"]), created_at=created, updated_at=created)


# ---------------------------------------------------------------------------------------------- runs
def run_state(item: Mapping[str, Any]) -> tuple[RunState, MergeState, bool]:
    """Marquez's state, our merge state, and whether the START is missing."""
    state = str(item.get("state") or "")
    if item.get("placeholder") or state == "PLACEHOLDER":
        return "NEW", "PLACEHOLDER", False
    if state == "AWAITING_START":
        # The run item counts its events by type (``eventTypes``): the terminal one is the one it has (gsi1's
        # projection does not carry the counts: a listing says NEW until the START comes).
        raw_types = item.get("eventTypes")
        types: Mapping[str, Any] = raw_types if isinstance(raw_types, Mapping) else {}
        terminal = next((t for t in ("FAIL", "ABORT", "COMPLETE") if types.get(t)), "OTHER")
        return RUN_STATE_OF_EVENT[terminal], "AWAITING_START", True
    merge_state: MergeState = "STREAMING" if str(item.get("processingType") or "").upper() == "STREAMING" else "MERGED"
    return RUN_STATE_OF_EVENT.get(state, "RUNNING"), merge_state, bool(item.get("startMissing"))


def dataset_ref(value: Any) -> tuple[str, str] | None:
    """A dataset named on a run item: ``{namespace, name}``, or the ``[namespace, name]`` pair merge v2 stores
    to keep run items small; anything else is skipped."""
    if isinstance(value, Mapping) and value.get("namespace") and value.get("name"):
        return str(value["namespace"]), str(value["name"])
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, str) and v for v in value):
        return str(value[0]), str(value[1])
    return None


def _dataset_versions(refs: Iterable[Any]) -> list[RunDatasetVersion]:
    out = []
    for value in refs or []:
        ref = dataset_ref(value)
        if ref is not None:
            ns, name = ref
            out.append(
                RunDatasetVersion(dataset_version_id=VersionRef(namespace=ns, name=name, version=version_of(ns, name)))
            )
    return out


def run_view(item: Mapping[str, Any]) -> Run:
    state, merge_state, start_missing = run_state(item)
    started, ended = item.get("startTime"), item.get("endTime")
    duration = int(item["durationMs"]) if item.get("durationMs") is not None else None
    if duration is None and started and ended:
        duration = max(0, int((time_of(ended) - time_of(started)).total_seconds() * 1000))
    raw_nominal = item.get("nominalTime")
    nominal: Mapping[str, Any] = raw_nominal if isinstance(raw_nominal, Mapping) else {}
    # ``facets`` stays empty: the run item keeps summaries (facet names, the error message), not facets, and
    # Marquez's clients read ``facets`` as OpenLineage facets. The whole facets: ``/jobs/runs/{id}/facets``.
    namespace, job = str(item.get("namespace", "")), str(item.get("job", ""))
    return Run(
        id=str(item["runId"]),
        created_at=time_of(started, item.get("lastEventTime"), item.get("mergedAt")),
        updated_at=time_of(item.get("lastEventTime"), item.get("mergedAt"), started),
        nominal_start_time=time_of(nominal.get("nominalStartTime")) if nominal.get("nominalStartTime") else None,
        nominal_end_time=time_of(nominal.get("nominalEndTime")) if nominal.get("nominalEndTime") else None,
        state=state,
        started_at=time_of(started) if started else None,
        ended_at=time_of(ended) if ended else None,
        duration_ms=duration,
        job_version=VersionRef(namespace=namespace, name=job, version=version_of(namespace, job)),
        input_dataset_versions=_dataset_versions(item.get("inputs") or []),
        output_dataset_versions=_dataset_versions(item.get("outputs") or []),
        merge_state=merge_state,
        start_missing=start_missing,
    )


# ---------------------------------------------------------------------------------------------- jobs
def _refs(values: Iterable[Any]) -> list[NamespaceRef]:
    seen: dict[tuple[str, str], NamespaceRef] = {}
    for value in values:
        key = dataset_ref(value)
        if key is not None:
            seen.setdefault(key, NamespaceRef(namespace=key[0], name=key[1]))
    return sorted(seen.values(), key=lambda r: (r.namespace, r.name))


def job_view(
    item: Mapping[str, Any],
    edges: Iterable[Mapping[str, Any]] | None = None,
    latest_runs: Sequence[Mapping[str, Any]] | None = None,
) -> Job:
    """A job from its item; ``edges`` (its partition's edge items) give inputs/outputs when read, else the item's
    own lists. ``latest_runs``: run items newest first, when the caller read them."""
    namespace, name = str(item["namespace"]), str(item["name"])
    if edges is not None:
        edge_list = list(edges)
        inputs = _refs(e.get("dataset") for e in edge_list if e.get("direction") == "IN")
        outputs = _refs(e.get("dataset") for e in edge_list if e.get("direction") == "OUT")
    else:
        inputs = _refs([*(item.get("inputs") or []), *(item.get("definedInputs") or [])])
        outputs = _refs([*(item.get("outputs") or []), *(item.get("definedOutputs") or [])])
    runs = [run_view(r) for r in latest_runs or []]
    latest_run = runs[0] if runs else None
    raw_lineage_run = item.get("lineageRun")
    lineage_run: Mapping[str, Any] = raw_lineage_run if isinstance(raw_lineage_run, Mapping) else {}
    # The job item keeps a digest of its facets, not the facets (they stay in the Events table): served whole by
    # ``/jobs/runs/{id}/facets?type=job``, never rebuilt here from parts.
    facets: dict[str, Any] = {}
    parent = item.get("parentJob") if isinstance(item.get("parentJob"), Mapping) else None
    # A job created by a run without datasets has no time of its own, and ``mergedAt`` is when the merge ran (an
    # old event merged today): the earliest of the known times and its runs', never 1970 when a run is known.
    known = time_of(item.get("createdAt"), item.get("definedAt"), lineage_run.get("time"), item.get("mergedAt"))
    created = min([t for t in (known, *(r.created_at for r in runs)) if t != EPOCH], default=EPOCH)
    return Job(
        id=NamespaceRef(namespace=namespace, name=name),
        type=str(item.get("processingType") or "BATCH").upper() if item.get("processingType") else "BATCH",
        name=name,
        simple_name=name.rsplit(".", 1)[-1] if parent else name,
        parent_job_name=str(parent["name"]) if parent and parent.get("name") else None,
        created_at=created,
        updated_at=time_of(
            latest_run.updated_at.isoformat() if latest_run else None, item.get("mergedAt"), item.get("createdAt")
        ),
        namespace=namespace,
        inputs=inputs,
        outputs=outputs,
        description=item.get("description") or item.get("definedDescription") or None,
        latest_run=latest_run,
        latest_runs=runs,
        facets=facets,
        current_version=version_of(
            namespace, name, [r.model_dump() for r in inputs], [r.model_dump() for r in outputs]
        ),
        tags=tag_names(item),
    )


def tag_names(item: Mapping[str, Any]) -> list[str]:
    """The names of an item's tags (the merge keeps the ``tags`` facet's as ``[{name, source}]``)."""
    raw = item.get("tags")
    return [str(t["name"]) for t in raw if isinstance(t, Mapping) and t.get("name")] if isinstance(raw, list) else []


# ---------------------------------------------------------------------------------------------- datasets
def fields_of(item: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A dataset's schema: the latest run's fields, else the fields its DatasetEvents defined."""
    fields = item.get("fields")
    if not isinstance(fields, list):
        fields = item.get("definedFields")
    return [f for f in fields or [] if isinstance(f, Mapping) and isinstance(f.get("name"), str)]


def _fields(raw: Iterable[Mapping[str, Any]]) -> list[DatasetField]:
    return [
        DatasetField(
            name=str(f["name"]),
            type=str(f.get("type") or "UNKNOWN"),
            description=f.get("description") if isinstance(f.get("description"), str) else None,
            tags=[str(t) for t in f.get("tags") or [] if isinstance(t, str)] if isinstance(f.get("tags"), list) else [],
        )
        for f in raw
        if isinstance(f, Mapping) and isinstance(f.get("name"), str)
    ]


def dataset_version_view(
    dataset: Mapping[str, Any], version: Mapping[str, Any], run: Mapping[str, Any] | None
) -> DatasetVersion:
    """One ``VER#<schema digest>`` item: its fields, the run that first had them; the version id is the one
    ``dataset_view`` gives ``currentVersion`` for the same fields."""
    namespace, name = str(dataset["namespace"]), str(dataset["name"])
    fields = _fields(version.get("fields") or [])
    number = version_of(namespace, name, [f.model_dump() for f in fields])
    return DatasetVersion(
        id=VersionRef(namespace=namespace, name=name, version=number),
        name=name,
        physical_name=name,
        created_at=time_of(version.get("firstSeen")),
        version=number,
        namespace=namespace,
        source_name=namespace,
        fields=fields,
        tags=tag_names(dataset),
        lifecycle_state=str(version["lifecycleState"]) if version.get("lifecycleState") else None,
        description=str(dataset.get("definedDescription") or ""),
        created_by_run=run_view(run) if run else None,
    )


def quality_view(quality: Mapping[str, Any] | None) -> tuple[dict[str, Any], DataQuality | None]:
    """A data-quality item as Marquez's dataset ``facets`` (verbatim) and our ``dataQuality`` summary."""
    if not quality:
        return {}, None
    raw = quality.get("facets")
    found: dict[str, Any] = dict(raw) if isinstance(raw, Mapping) else {}
    assertions = found.get("dataQualityAssertions")
    metrics = found.get("dataQualityMetrics")
    summary = DataQuality(
        run_id=str(quality["runId"]) if quality.get("runId") else None,
        reported_at=time_of(quality.get("reportedAt")) if quality.get("reportedAt") else None,
        assertions=[dict(a) for a in assertions.get("assertions", [])] if isinstance(assertions, Mapping) else [],
        metrics=dict(metrics) if isinstance(metrics, Mapping) else None,
    )
    return found, summary


def dataset_view(
    item: Mapping[str, Any],
    column_edges: Iterable[Mapping[str, Any]] | None = None,
    quality: Mapping[str, Any] | None = None,
) -> Dataset:
    """A dataset from its item; ``quality``: its data-quality item when the caller read it."""
    namespace, name = str(item["namespace"]), str(item["name"])
    quality_facets, data_quality = quality_view(quality)
    fields = _fields(fields_of(item))
    column_lineage = None
    if column_edges is not None:
        by_field: dict[str, list[ColumnLineageInputField]] = {}
        for edge in column_edges:
            out, inp = edge.get("output") or {}, edge.get("input") or {}
            transformations = edge.get("transformations") or [{}]
            first = transformations[0] if transformations else {}
            by_field.setdefault(str(out.get("field")), []).append(
                ColumnLineageInputField(
                    namespace=str(inp.get("namespace")),
                    dataset=str(inp.get("name")),
                    field=str(inp.get("field")),
                    transformation_description=first.get("description"),
                    transformation_type=first.get("type"),
                )
            )
        column_lineage = [ColumnLineage(name=f, input_fields=v) for f, v in sorted(by_field.items())] or None
    elif isinstance(item.get("columnLineageFields"), list):
        # A listing row: the output fields only, from the dataset item (no read per row); the dataset's own
        # GET gives their inputs (docs/read-api.md "What Marquez's web UI needs").
        column_lineage = [ColumnLineage(name=str(f)) for f in item["columnLineageFields"]] or None
    # The merge's dataset item has ``createdAt`` (since issue 14) and ``schemaVersion`` (<time>#<runId>#<merge> of the
    # latest schema); a DatasetEvent's has ``definedAt``.
    schema_time = str(item.get("schemaVersion") or "").partition("#")[0]
    created = time_of(
        item.get("createdAt"), item.get("registeredAt"), item.get("definedAt"), item.get("mergedAt"), schema_time
    )
    return Dataset(
        id=NamespaceRef(namespace=namespace, name=name),
        name=name,
        physical_name=name,
        created_at=created,
        updated_at=max(
            time_of(item.get("mergedAt"), item.get("definedAt"), item.get("createdAt")), time_of(schema_time), created
        ),
        namespace=namespace,
        source_name=namespace,
        fields=fields,
        tags=tag_names(item),
        description=item.get("definedDescription") or None,
        current_version=version_of(namespace, name, [f.model_dump() for f in fields]),
        column_lineage=column_lineage,
        facets=quality_facets,
        partial=bool(item.get("partial", False)),
        defined_by=_defined_by(item.get("definedBy")),
        data_quality=data_quality,
    )


def _defined_by(value: Any) -> list[DefinedBy] | None:
    """The senders of a dataset's DatasetEvents (any token may define any dataset: the record says who did)."""
    if not isinstance(value, list) or not value:
        return None
    return [
        DefinedBy(token_id=str(s.get("tokenId")), connections=[str(c) for c in s.get("connections") or []])
        for s in value
        if isinstance(s, Mapping)
    ]
