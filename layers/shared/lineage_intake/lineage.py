"""The merge's record types: datasets, jobs and runs by name, edges, column edges, and content digests.

Pure values shared by the facet readers (``facets``), the merge rules (``merge``) and the Lineage table
(``store.lineage``); see docs/merge.md.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Direction = Literal["IN", "OUT"]
Source = Literal["run", "static"]


def content_hash(value: Any) -> str:
    """Digest of a JSON-able value, independent of key order: equal content, equal hash."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def normalize_run_id(value: str) -> str:
    """Lower-case canonical UUID; a non-UUID is mapped to a name-based (type 3) UUID of its UTF-8 bytes."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        digest = bytearray(hashlib.md5(value.encode("utf-8"), usedforsecurity=False).digest())
        digest[6] = (digest[6] & 0x0F) | 0x30
        digest[8] = (digest[8] & 0x3F) | 0x80
        return str(uuid.UUID(bytes=bytes(digest)))


@dataclass(frozen=True, order=True)
class Ref:
    """A dataset or a job: OpenLineage names it by (namespace, name)."""

    namespace: str
    name: str

    def as_dict(self) -> dict[str, str]:
        return {"namespace": self.namespace, "name": self.name}


@dataclass(frozen=True, order=True)
class RunRef:
    """A run of a job. ``run_id`` is None when a parent facet names only the parent job."""

    namespace: str
    job: str
    run_id: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"namespace": self.namespace, "job": self.job, "runId": self.run_id}


@dataclass(frozen=True)
class Edge:
    """Dataset to job (``IN``: the job reads it) or job to dataset (``OUT``: the job writes it)."""

    job: Ref
    dataset: Ref
    direction: Direction
    source: Source

    def content(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "source": self.source,
            "job": self.job.as_dict(),
            "dataset": self.dataset.as_dict(),
        }


@dataclass(frozen=True)
class ColumnEdge:
    """(output dataset, field) computed from (input dataset, field) by ``job``."""

    job: Ref
    output: Ref
    output_field: str
    input: Ref
    input_field: str
    transformations: tuple[Mapping[str, Any], ...]
    source: Source

    def content(self) -> dict[str, Any]:
        output: dict[str, Any] = {**self.output.as_dict(), "field": self.output_field}
        inp: dict[str, Any] = {**self.input.as_dict(), "field": self.input_field}
        return {
            "source": self.source,
            "job": self.job.as_dict(),
            "output": output,
            "input": inp,
            "transformations": [dict(t) for t in self.transformations],
        }


@dataclass(frozen=True)
class DatasetView:
    """What one run (or static event) says about a dataset: its schema fields and symlinks, and for Marquez's
    web UI its ``tags`` facet, the output fields its ``columnLineage`` facet names and its lifecycle state
    (None: the run said nothing of it)."""

    ref: Ref
    fields: tuple[Mapping[str, Any], ...] | None
    symlinks: tuple[Mapping[str, Any], ...] | None
    tags: tuple[Mapping[str, str], ...] | None = None
    column_fields: tuple[str, ...] | None = None
    lifecycle_state: str | None = None
