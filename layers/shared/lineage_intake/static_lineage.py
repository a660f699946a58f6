"""Static lineage: a job as its JobEvents define it, a dataset as its DatasetEvents define it (no run involved).

The same fold as runs (``merge.fold_events``); the rules are in docs/merge.md, "Semantics".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lineage_intake import facets
from lineage_intake.lineage import ColumnEdge, DatasetView, Edge, Ref
from lineage_intake.merge import StoredEvent, column_edges_from, dataset_views, fold_events


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
    fold, _checkpoint = fold_events(events)
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
        datasets=tuple(dataset_views(fold.inputs, fold.outputs)),
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
    #: Who sent the definition: ``{tokenId, connections}`` per token, the latest sender first (docs/auth.md).
    defined_by: tuple[Mapping[str, Any], ...] = ()

    def content(self) -> dict[str, Any]:
        return {
            "definedBy": [dict(s) for s in self.defined_by] or None,
            "definedFields": [dict(f) for f in self.fields] if self.fields is not None else None,
            "definedSymlinks": [dict(s) for s in self.symlinks] if self.symlinks is not None else None,
            "definedDescription": self.description,
            "definedFacets": list(self.facet_names),
            "definedAt": self.defined_at,
        }


#: Senders kept on a dataset definition: any token may define any dataset, so the record says who did.
MAX_DEFINED_BY = 5


def merge_dataset_events(events: Iterable[StoredEvent]) -> DatasetDefinition | None:
    senders: dict[str, list[str]] = {}  # tokenId -> connections, in the order of each token's latest event

    def noting_senders(stored: Iterable[StoredEvent]) -> Iterator[StoredEvent]:
        for event in stored:
            if event.token_id:
                senders.pop(event.token_id, None)
                senders[event.token_id] = sorted(event.connections or ())
            yield event

    fold, _checkpoint = fold_events(noting_senders(events))
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
        defined_by=tuple(
            {"tokenId": token, "connections": connections}
            for token, connections in reversed(list(senders.items())[-MAX_DEFINED_BY:])
        ),
    )
