"""The one home for the well-known facets: structural checks at ingest, typed readers for the merge.

Facets stay open: unknown facets and unknown keys inside known facets are accepted and stored verbatim.
Only the fields that the merge reads, or that the spec marks as required and that identify something, are
checked, so that a malformed facet is refused at the door with a field path instead of corrupting a merged
lineage record later. The models here validate; they never replace the stored facet.

The readers (``job_type``, ``parent_refs``, ``schema_fields``, ``symlinks``, ``column_lineage``...) read merged,
stored facets and skip what they cannot use instead of failing: the merge must not stop on one odd entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, model_validator

from lineage_intake.errors import FieldError, clean_message, field_path
from lineage_intake.lineage import Ref, RunRef, content_hash, normalize_run_id

MAX_STACK_TRACE_CHARS = 8_192
MAX_TEXT_CHARS = 65_536


class _Facet(BaseModel):
    model_config = ConfigDict(extra="allow")


class _JobRef(_Facet):
    namespace: StrictStr = Field(min_length=1)
    name: StrictStr = Field(min_length=1)


class _RunRef(_Facet):
    runId: StrictStr = Field(min_length=1)


class _ParentRoot(_Facet):
    run: _RunRef
    job: _JobRef


class ParentRunFacet(_Facet):
    job: _JobRef
    run: _RunRef | None = None  # Spark sends a parent with only ``root``.
    root: _ParentRoot | None = None


class JobTypeJobFacet(_Facet):
    processingType: StrictStr | None = None
    integration: StrictStr | None = None
    jobType: StrictStr | None = None


class _Owner(_Facet):
    name: StrictStr
    type: StrictStr | None = None


class OwnershipFacet(_Facet):
    owners: list[_Owner] = Field(default_factory=list)


class _SchemaField(_Facet):
    name: StrictStr
    type: StrictStr | None = None
    fields: list[_SchemaField] | None = None


class SchemaDatasetFacet(_Facet):
    fields: list[_SchemaField] = Field(default_factory=list)


class _Symlink(_Facet):
    namespace: StrictStr
    name: StrictStr
    type: StrictStr | None = None


class SymlinksDatasetFacet(_Facet):
    identifiers: list[_Symlink] = Field(default_factory=list)


class _InputField(_Facet):
    namespace: StrictStr
    name: StrictStr
    field: StrictStr


class _FieldLineage(_Facet):
    inputFields: list[_InputField] = Field(default_factory=list)


class ColumnLineageDatasetFacet(_Facet):
    fields: dict[str, _FieldLineage] = Field(default_factory=dict)
    dataset: list[_InputField] | None = None


class OutputStatisticsFacet(_Facet):
    rowCount: StrictInt | None = None
    size: StrictInt | None = None
    fileCount: StrictInt | None = None


class DataQualityMetricsFacet(_Facet):
    rowCount: StrictInt | None = None
    bytes: StrictInt | None = None
    fileCount: StrictInt | None = None
    columnMetrics: dict[str, dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _has_metrics(self) -> DataQualityMetricsFacet:
        if self.rowCount is None and self.columnMetrics is None:
            raise ValueError("needs rowCount or columnMetrics")
        return self


class ErrorMessageRunFacet(_Facet):
    message: StrictStr
    programmingLanguage: StrictStr | None = None


class SQLJobFacet(_Facet):
    query: StrictStr


RUN_FACETS: dict[str, type[_Facet]] = {"parent": ParentRunFacet, "errorMessage": ErrorMessageRunFacet}
JOB_FACETS: dict[str, type[_Facet]] = {"jobType": JobTypeJobFacet, "ownership": OwnershipFacet, "sql": SQLJobFacet}
DATASET_FACETS: dict[str, type[_Facet]] = {
    "schema": SchemaDatasetFacet,
    "symlinks": SymlinksDatasetFacet,
    "columnLineage": ColumnLineageDatasetFacet,
    "ownership": OwnershipFacet,
}
INPUT_FACETS: dict[str, type[_Facet]] = {"dataQualityMetrics": DataQualityMetricsFacet}
OUTPUT_FACETS: dict[str, type[_Facet]] = {"outputStatistics": OutputStatisticsFacet}


def check_facets(
    prefix: tuple[int | str, ...], facets: Mapping[str, Any], known: Mapping[str, type[_Facet]]
) -> list[FieldError]:
    """Validate the known facets of one facet map; unknown facets and null facets are left alone."""
    errors: list[FieldError] = []
    for name, facet in facets.items():
        model = known.get(name)
        if model is None or facet is None:
            continue
        try:
            model.model_validate(facet)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                errors.append(FieldError(field_path((*prefix, name, *err["loc"])), clean_message(err["msg"])))
    return errors


# ---------------------------------------------------------------------------------------------- readers
def text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _truncate(text: Any, limit: int) -> str | None:
    if not isinstance(text, str):
        return None
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} characters cut]"


def schema_fields(facets: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...] | None:
    schema = facets.get("schema")
    fields = schema.get("fields") if isinstance(schema, Mapping) else None
    if not isinstance(fields, list):
        return None
    return tuple(f for f in fields if isinstance(f, Mapping) and isinstance(f.get("name"), str))


def symlinks(facets: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...] | None:
    symlinks = facets.get("symlinks")
    identifiers = symlinks.get("identifiers") if isinstance(symlinks, Mapping) else None
    if not isinstance(identifiers, list):
        return None
    out = []
    for ident in identifiers:
        if isinstance(ident, Mapping) and text(ident.get("namespace")) and text(ident.get("name")):
            entry = {"namespace": ident["namespace"], "name": ident["name"]}
            if text(ident.get("type")):
                entry["type"] = ident["type"]
            out.append(entry)
    return tuple(sorted(out, key=lambda s: (s["namespace"], s["name"], s.get("type", ""))))


#: The data-quality facets a dataset keeps the latest of (dbt tests send assertions, profilers send metrics).
DATA_QUALITY_FACETS = ("dataQualityAssertions", "dataQualityMetrics")


def data_quality(*facet_maps: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The ``dataQualityAssertions``/``dataQualityMetrics`` facets found in the given maps (a dataset's
    ``facets`` and its ``inputFacets``/``outputFacets``), verbatim; a later map wins. Assertions need a list
    of objects, metrics an object: anything else is skipped (docs/read-api.md "Data quality")."""
    found: dict[str, Mapping[str, Any]] = {}
    for facet_map in facet_maps:
        assertions = facet_map.get("dataQualityAssertions")
        listed = assertions.get("assertions") if isinstance(assertions, Mapping) else None
        if isinstance(assertions, Mapping) and isinstance(listed, list) and all(isinstance(a, Mapping) for a in listed):
            found["dataQualityAssertions"] = assertions
        metrics = facet_map.get("dataQualityMetrics")
        if isinstance(metrics, Mapping) and metrics:
            found["dataQualityMetrics"] = metrics
    return found


def _transformations(input_field: Mapping[str, Any], field_entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """1-2-0 ``transformations`` as given (type, subtype, description, masking); the older shape mapped:
    IDENTITY to DIRECT/IDENTITY, MASKED to DIRECT/TRANSFORMATION with masking, other types to
    DIRECT/TRANSFORMATION. Neither shape present: no transformation is known (an empty list)."""
    given = input_field.get("transformations")
    out: list[dict[str, Any]] = []
    if isinstance(given, list):
        for t in given:
            if not isinstance(t, Mapping) or not text(t.get("type")):
                continue
            entry: dict[str, Any] = {"type": t["type"]}
            if text(t.get("subtype")):
                entry["subtype"] = t["subtype"]
            if isinstance(t.get("description"), str) and t["description"]:
                entry["description"] = _truncate(t["description"], MAX_TEXT_CHARS)
            if isinstance(t.get("masking"), bool):
                entry["masking"] = t["masking"]
            out.append(entry)
        return out
    legacy = text(field_entry.get("transformationType"))
    description = text(field_entry.get("transformationDescription"))
    if legacy is None and description is None:
        return out
    entry = {"type": "DIRECT", "subtype": "IDENTITY" if legacy == "IDENTITY" else "TRANSFORMATION"}
    entry["masking"] = legacy == "MASKED"
    if description:
        entry["description"] = _truncate(description, MAX_TEXT_CHARS)
    return [entry]


def _input_fields(entries: Any, field_entry: Mapping[str, Any]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """Input fields keyed by (namespace, name, field); duplicates merge their transformations."""
    out: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    if not isinstance(entries, list):
        return out
    for inp in entries:
        if not isinstance(inp, Mapping):
            continue
        ns, name, fld = text(inp.get("namespace")), text(inp.get("name")), inp.get("field")
        if ns is None or name is None or not isinstance(fld, str):
            continue
        merged = out.setdefault((ns, name, fld), [])
        for t in _transformations(inp, field_entry):
            if t not in merged:
                merged.append(t)
    for transformations in out.values():
        transformations.sort(key=content_hash)
    return out


def column_lineage(output: Ref, facets: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``columnLineage`` facet of one output as sorted ``{output, inputs}`` entries (one per field)."""
    facet = facets.get("columnLineage")
    fields = facet.get("fields") if isinstance(facet, Mapping) else None
    if not isinstance(fields, Mapping):
        return []
    out = []
    for name in sorted(f for f in fields if isinstance(f, str)):
        entry = fields[name]
        if not isinstance(entry, Mapping):
            continue
        inputs = _input_fields(entry.get("inputFields"), entry)
        target: dict[str, Any] = {**output.as_dict(), "field": name}
        out.append(
            {
                "output": target,
                "inputs": [
                    {"namespace": ns, "name": n, "field": f, "transformations": inputs[(ns, n, f)]}
                    for ns, n, f in sorted(inputs)
                ],
            }
        )
    return out


#: Output field names kept on a dataset item for its listing row's ``columnLineage`` (docs/read-api.md).
MAX_COLUMN_FIELDS = 200


def column_lineage_fields(facets: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The output fields a ``columnLineage`` facet derives (sorted, at most ``MAX_COLUMN_FIELDS``), or None."""
    facet = facets.get("columnLineage")
    fields = facet.get("fields") if isinstance(facet, Mapping) else None
    if not isinstance(fields, Mapping):
        return None
    names = sorted(f[:TAG_CHARS] for f, entry in fields.items() if isinstance(f, str) and isinstance(entry, Mapping))
    return tuple(names[:MAX_COLUMN_FIELDS]) or None


def lifecycle_state(facets: Mapping[str, Any]) -> str | None:
    """``lifecycleStateChange.lifecycleStateChange`` (CREATE, OVERWRITE, DROP...) of an output, or None."""
    facet = facets.get("lifecycleStateChange")
    state = text(facet.get("lifecycleStateChange")) if isinstance(facet, Mapping) else None
    return state[:TAG_CHARS] if state else None


def dataset_lineage(output: Ref, facets: Mapping[str, Any]) -> dict[str, Any] | None:
    """1-2-0 dataset-level dependencies (filters, joins, sorts...) of one output, or None."""
    facet = facets.get("columnLineage")
    entries = facet.get("dataset") if isinstance(facet, Mapping) else None
    inputs = _input_fields(entries, {})
    if not inputs:
        return None
    listed = [
        {"namespace": ns, "name": n, "field": f, "transformations": inputs[(ns, n, f)]} for ns, n, f in sorted(inputs)
    ]
    return {"output": output.as_dict(), "inputs": listed}


def parent_refs(facets: Mapping[str, Any]) -> tuple[RunRef | None, RunRef | None]:
    """(parent, root) from the ``parent`` run facet. Without ``root``, the parent is the root as far as known."""
    parent_facet = facets.get("parent")
    if not isinstance(parent_facet, Mapping):
        return None, None

    def ref(value: Any) -> RunRef | None:
        if not isinstance(value, Mapping):
            return None
        job, run = value.get("job"), value.get("run")
        if not isinstance(job, Mapping) or not text(job.get("namespace")) or not text(job.get("name")):
            return None
        run_id = text(run.get("runId")) if isinstance(run, Mapping) else None
        return RunRef(job["namespace"], job["name"], normalize_run_id(run_id) if run_id else None)

    parent = ref(parent_facet)
    root = ref(parent_facet.get("root")) or parent
    return parent, root


def error_message(facets: Mapping[str, Any]) -> dict[str, Any] | None:
    facet = facets.get("errorMessage")
    if not isinstance(facet, Mapping) or not isinstance(facet.get("message"), str):
        return None
    out: dict[str, Any] = {"message": _truncate(facet["message"], MAX_TEXT_CHARS)}
    if text(facet.get("programmingLanguage")):
        out["programmingLanguage"] = facet["programmingLanguage"]
    if text(facet.get("stackTrace")):
        out["stackTrace"] = _truncate(facet["stackTrace"], MAX_STACK_TRACE_CHARS)
    return out


def nominal_time(facets: Mapping[str, Any]) -> dict[str, Any] | None:
    facet = facets.get("nominalTime")
    if not isinstance(facet, Mapping) or not text(facet.get("nominalStartTime")):
        return None
    out = {"nominalStartTime": facet["nominalStartTime"]}
    if text(facet.get("nominalEndTime")):
        out["nominalEndTime"] = facet["nominalEndTime"]
    return out


def sql(facets: Mapping[str, Any]) -> dict[str, Any] | None:
    facet = facets.get("sql")
    if not isinstance(facet, Mapping) or not isinstance(facet.get("query"), str):
        return None
    out: dict[str, Any] = {"query": _truncate(facet["query"], MAX_TEXT_CHARS)}
    if text(facet.get("dialect")):
        out["dialect"] = facet["dialect"]
    return out


def description(facets: Mapping[str, Any]) -> str | None:
    facet = facets.get("documentation")
    if isinstance(facet, Mapping):
        return _truncate(facet.get("description"), MAX_TEXT_CHARS)
    return None


#: Tags kept per job (a tags facet is producer data: a bounded list keeps the job item small).
MAX_TAGS = 50
TAG_CHARS = 200


def tags(facets: Mapping[str, Any]) -> tuple[dict[str, str], ...] | None:
    """A ``tags`` facet (TagsJobFacet/TagsDatasetFacet: ``tags[].key,value,source``) as Marquez-style tags:
    ``name`` is the key, or ``key:value`` when the value says more than the key (docs/read-api.md "Tags")."""
    facet = facets.get("tags")
    entries = facet.get("tags") if isinstance(facet, Mapping) else None
    if not isinstance(entries, list):
        return None
    out: dict[str, dict[str, str]] = {}
    for entry in entries:
        key = text(entry.get("key")) if isinstance(entry, Mapping) else None
        if not key:
            continue
        value = text(entry.get("value")) or ""
        name = key if value in ("", "true", key) else f"{key}:{value}"
        source = text(entry.get("source"))
        out.setdefault(name[:TAG_CHARS], {"name": name[:TAG_CHARS], **({"source": source} if source else {})})
    return tuple(sorted(out.values(), key=lambda t: t["name"]))[:MAX_TAGS] or None


class JobType(NamedTuple):
    integration: str | None = None
    processing_type: str | None = None
    job_type: str | None = None


def job_type(facets: Mapping[str, Any]) -> JobType:
    """The ``jobType`` job facet: integration (SPARK, DBT...), processing type (BATCH, STREAMING), job type."""
    facet = facets.get("jobType")
    if not isinstance(facet, Mapping):
        return JobType()
    return JobType(text(facet.get("integration")), text(facet.get("processingType")), text(facet.get("jobType")))
