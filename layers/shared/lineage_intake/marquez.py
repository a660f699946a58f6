"""Marquez-compatible response models of the read API (issues 10 and 14): one home for the wire shapes.

Written from Marquez's OpenAPI document (``tests/fixtures/marquez/openapi.yml``) and, where it is silent or
wrong, from Marquez's Java models; every deviation is listed in docs/read-api.md ("Response models").

- Field names are Marquez's camelCase (``alias_generator``); Python code uses snake_case.
- ``dump()`` leaves out optional values that are ``None``: the spec marks no field nullable, and clients read a
  missing field as they read ``null``. Error bodies keep ``details: null`` (Marquez's shape).
- Our additions are extra fields and never change the meaning of Marquez's: ``Run.merge_state`` /
  ``start_missing`` (Marquez's ``state`` has no AWAITING_START), ``Dataset.partial`` and ``data_quality``,
  ``Edge.first_seen`` / ``last_seen`` / ``current``, ``LineageGraph.truncated``.

Pure: pydantic and the standard library only, so the CLI, the function and the tests share it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

Facets = dict[str, Any]
#: Marquez's run states (``RunState.java``). Our merge states map onto them; see ``RUN_STATE_OF_EVENT``.
RunState = Literal["NEW", "RUNNING", "COMPLETED", "FAILED", "ABORTED"]
RUN_STATES: tuple[RunState, ...] = ("NEW", "RUNNING", "COMPLETED", "FAILED", "ABORTED")
#: What the merge knows about a run beyond Marquez's state (docs/merge.md, "Semantics").
MergeState = Literal["MERGED", "AWAITING_START", "STREAMING", "PLACEHOLDER"]
NodeType = Literal["JOB", "DATASET", "DATASET_FIELD"]
SearchResultType = Literal["JOB", "DATASET"]

#: OpenLineage eventType of the run's deciding event -> Marquez run state (Marquez's ``RunState`` mapping).
RUN_STATE_OF_EVENT: dict[str, RunState] = {
    "START": "RUNNING",
    "RUNNING": "RUNNING",
    "COMPLETE": "COMPLETED",
    "FAIL": "FAILED",
    "ABORT": "ABORTED",
    "OTHER": "NEW",
}


class MarquezModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are a bug in our code, not input."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    def dump(self) -> dict[str, Any]:
        """The JSON body: Marquez's field names, ISO-8601 times with ``Z``, optional ``None`` values left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# ---------------------------------------------------------------------------------------------- errors
class ErrorResponse(MarquezModel):
    """Marquez's ``ErrorMessage``: every 4xx/5xx of the read API has this shape (the UI reads all three)."""

    code: int
    message: str
    details: str | None = None

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


# ---------------------------------------------------------------------------------------------- ids
class NamespaceRef(MarquezModel):
    """``DatasetId`` and ``JobId`` of the spec: the same two fields."""

    namespace: str
    name: str


class VersionRef(MarquezModel):
    """``DatasetVersionId`` / ``JobVersionId``: our versions are name-based UUIDs (docs/read-api.md)."""

    namespace: str
    name: str
    version: str


# ---------------------------------------------------------------------------------------------- namespaces
class Namespace(MarquezModel):
    name: str
    created_at: datetime
    updated_at: datetime
    owner_name: str = "anonymous"
    description: str | None = None
    is_hidden: bool = False


class NamespaceList(MarquezModel):
    namespaces: list[Namespace]
    total_count: int | None = None


# ---------------------------------------------------------------------------------------------- runs
class RunDatasetVersion(MarquezModel):
    """``InputDatasetVersion`` / ``OutputDatasetVersion``: a dataset version with its run-time facets."""

    dataset_version_id: VersionRef
    facets: Facets = Field(default_factory=dict)


class Run(MarquezModel):
    """Marquez's ``Run``. ``state`` keeps Marquez's five values; ``mergeState``/``startMissing`` are ours."""

    id: str
    created_at: datetime
    updated_at: datetime
    nominal_start_time: datetime | None = None
    nominal_end_time: datetime | None = None
    state: RunState
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_ms: int | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    job_version: VersionRef | None = None
    input_dataset_versions: list[RunDatasetVersion] = Field(default_factory=list)
    output_dataset_versions: list[RunDatasetVersion] = Field(default_factory=list)
    context: dict[str, str] = Field(default_factory=dict)
    facets: Facets = Field(default_factory=dict)
    # -- lineage-intake extras
    merge_state: MergeState = "MERGED"
    start_missing: bool = False


class RunList(MarquezModel):
    runs: list[Run]
    total_count: int


class FacetsResult(MarquezModel):
    """``GET /jobs/runs/{id}/facets?type=run|job``: the run's (or its job's) merged facets by name."""

    run_id: str
    facets: Facets


# ---------------------------------------------------------------------------------------------- jobs
class Job(MarquezModel):
    id: NamespaceRef
    type: str = "BATCH"
    name: str
    simple_name: str
    parent_job_name: str | None = None
    parent_job_uuid: str | None = None
    created_at: datetime
    updated_at: datetime
    namespace: str
    inputs: list[NamespaceRef] = Field(default_factory=list)
    outputs: list[NamespaceRef] = Field(default_factory=list)
    location: str | None = None
    description: str | None = None
    latest_run: Run | None = None
    latest_runs: list[Run] = Field(default_factory=list)
    facets: Facets = Field(default_factory=dict)
    current_version: str | None = None
    tags: list[str] = Field(default_factory=list)


class JobList(MarquezModel):
    jobs: list[Job]
    total_count: int


# ---------------------------------------------------------------------------------------------- datasets
class DatasetField(MarquezModel):
    """A schema field. ``type`` is required by the spec: a field sent without one is served as ``UNKNOWN``."""

    name: str
    type: str = "UNKNOWN"
    tags: list[str] = Field(default_factory=list)
    description: str | None = None


class ColumnLineageInputField(MarquezModel):
    namespace: str
    dataset: str
    field: str
    transformation_description: str | None = None
    transformation_type: str | None = None


class ColumnLineage(MarquezModel):
    """``Dataset.columnLineage[]``: one output field and the input fields it is computed from."""

    name: str
    input_fields: list[ColumnLineageInputField] = Field(default_factory=list)


class DefinedBy(MarquezModel):
    """Ours: a token whose DatasetEvents define a dataset, with the connections it held (docs/auth.md)."""

    token_id: str
    connections: list[str] = Field(default_factory=list)


class DataQuality(MarquezModel):
    """Ours: the latest ``dataQualityAssertions`` and ``dataQualityMetrics`` of a dataset and the run that sent them."""

    run_id: str | None = None
    reported_at: datetime | None = None
    assertions: list[dict[str, Any]] = Field(default_factory=list)
    metrics: dict[str, Any] | None = None


class Dataset(MarquezModel):
    id: NamespaceRef
    type: str = "DB_TABLE"
    name: str
    physical_name: str
    created_at: datetime
    updated_at: datetime
    namespace: str
    source_name: str
    fields: list[DatasetField] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    last_modified_at: datetime | None = None
    last_lifecycle_state: str | None = None
    description: str | None = None
    facets: Facets = Field(default_factory=dict)
    current_version: str | None = None
    column_lineage: list[ColumnLineage] | None = None
    deleted: bool = False
    # -- lineage-intake extras
    partial: bool = False
    data_quality: DataQuality | None = None
    defined_by: list[DefinedBy] | None = None


class DatasetList(MarquezModel):
    datasets: list[Dataset]
    total_count: int


class DatasetVersion(MarquezModel):
    """One distinct schema of a dataset, as first seen by a run (docs/read-api.md, "dataset versions")."""

    id: VersionRef
    type: str = "DB_TABLE"
    name: str
    physical_name: str
    created_at: datetime
    version: str
    namespace: str
    source_name: str
    fields: list[DatasetField] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    lifecycle_state: str | None = None
    description: str = ""
    created_by_run: Run | None = None
    facets: Facets = Field(default_factory=dict)
    column_lineage: list[ColumnLineage] | None = None


class DatasetVersionList(MarquezModel):
    versions: list[DatasetVersion]
    total_count: int


# ---------------------------------------------------------------------------------------------- graphs
class Edge(MarquezModel):
    """``{origin, destination}``; ``firstSeen``/``lastSeen``/``current`` are ours (job edges over a window)."""

    origin: str
    destination: str
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    current: bool | None = None


class ColumnLineageNodeData(MarquezModel):
    """``data`` of a DATASET_FIELD node (Marquez's ``ColumnLineageNodeData`` and its input fields)."""

    namespace: str
    dataset: str
    dataset_version: str | None = None
    field: str
    field_type: str | None = None
    transformation_description: str | None = None
    transformation_type: str | None = None
    input_fields: list[ColumnLineageInputField] = Field(default_factory=list)


class Node(MarquezModel):
    """A graph node; ``data`` is a Job, a Dataset or a column, as ``type`` says (``None`` beyond the node cap)."""

    id: str
    type: NodeType
    data: Job | Dataset | ColumnLineageNodeData | None = None
    in_edges: list[Edge] = Field(default_factory=list)
    out_edges: list[Edge] = Field(default_factory=list)


class LineageGraph(MarquezModel):
    """``GET /lineage`` and ``GET /column-lineage``. ``truncated`` (ours): the walk stopped at the node cap."""

    graph: list[Node]
    truncated: bool = False


# ---------------------------------------------------------------------------------------------- run lineage
class UpstreamJob(MarquezModel):
    namespace: str
    name: str
    version: str | None = None


class UpstreamRunInfo(MarquezModel):
    id: str
    start: datetime | None = None
    end: datetime | None = None
    status: str


class UpstreamInput(MarquezModel):
    namespace: str
    name: str
    version: str | None = None
    produced_by_run_id: str | None = None


class UpstreamRun(MarquezModel):
    job: UpstreamJob
    run: UpstreamRunInfo
    inputs: list[UpstreamInput] = Field(default_factory=list)


class UpstreamRunLineage(MarquezModel):
    """``GET /runlineage/upstream``: the run and the runs it depended on, in upstream topological order."""

    runs: list[UpstreamRun]
    truncated: bool = False


# ---------------------------------------------------------------------------------------------- events
class LineageEventList(MarquezModel):
    """``GET /events/lineage``: stored raw events, verbatim (newest first unless ``sortDirection=asc``)."""

    events: list[dict[str, Any]]
    total_count: int


# ---------------------------------------------------------------------------------------------- search, tags
class SearchResult(MarquezModel):
    type: SearchResultType
    name: str
    updated_at: datetime
    namespace: str
    node_id: str


class SearchResultList(MarquezModel):
    total_count: int
    results: list[SearchResult]


class Tag(MarquezModel):
    name: str
    description: str | None = None


class TagList(MarquezModel):
    tags: list[Tag]


# ---------------------------------------------------------------------------------------------- stats
class LineageMetric(MarquezModel):
    """One bucket of ``/stats/lineage-events`` (Marquez's ``LineageMetric``): run events by type."""

    start_interval: datetime
    end_interval: datetime
    fail: int = 0
    start: int = 0
    complete: int = 0
    abort: int = 0


class IntervalMetric(MarquezModel):
    """One bucket of ``/stats/jobs``, ``/stats/datasets`` and ``/stats/sources``: things first seen in it."""

    start_interval: datetime
    end_interval: datetime
    count: int = 0
