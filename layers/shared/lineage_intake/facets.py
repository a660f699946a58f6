"""Structural checks for the well-known facets that lineage depends on.

Facets stay open: unknown facets and unknown keys inside known facets are accepted and stored verbatim.
Only the fields that the merge reads, or that the spec marks as required and that identify something, are
checked, so that a malformed facet is refused at the door with a field path instead of corrupting a merged
lineage record later. The models here validate; they never replace the stored facet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, model_validator

from lineage_intake.errors import FieldError, clean_message, field_path


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
