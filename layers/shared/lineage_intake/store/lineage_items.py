"""The item layout of the Lineage table: sort keys, edge and column-edge items, size limits (docs/merge.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lineage_intake import keys
from lineage_intake.errors import DomainError
from lineage_intake.lineage import ColumnEdge, Edge, content_hash
from lineage_intake.store.dynamo import approximate_size

RUN_SK = "RUN"
JOB_SK = "JOB"
DATASET_SK = "DATASET"
AWAITING_START = "AWAITING_START"
MAX_ITEM_BYTES = 380_000  # DynamoDB's limit is 400 KB; keep room for names and numbers
#: Parts of a dataset's lineage section, each with its own ``<part>Version`` and ``<part>Hash``.
DATASET_PARTS = ("lineage", "fields", "symlinks")


def order(version: str | None) -> str:
    """The run-order part of a shared version (``<sortTime>#<runId>#<merge version>``)."""
    if not version:
        return ""
    time_part, _, rest = version.partition("#")
    run_id = rest.partition("#")[0]
    return f"{time_part}#{run_id}"


NAMESPACE_SK = "NAMESPACE"
NAMESPACES = "NAMESPACES"
#: Characters of a name kept in a listing sort key (DynamoDB caps sort keys at 1,024 bytes).
LISTED_NAME_CHARS = 200


def listing_keys(namespace: str, name: str, kind: str, key: str) -> dict[str, str]:
    """gsi3: a namespace's jobs (``J``) or datasets (``D``) by name, as Marquez lists them (docs/read-api.md)."""
    return {"gsi3pk": f"{kind}#{keys.namespace_key(namespace)}", "gsi3sk": f"{name[:LISTED_NAME_CHARS]}#{key}"}


def namespace_item(namespace: str, created_at: str) -> dict[str, Any]:
    """Written once, when the namespace's first job or dataset is created (``attribute_not_exists``)."""
    key = keys.namespace_key(namespace)
    return {
        "pk": key,
        "sk": NAMESPACE_SK,
        "type": "namespace",
        "name": namespace,
        "createdAt": created_at,
        "gsi3pk": NAMESPACES,
        "gsi3sk": f"{namespace[:LISTED_NAME_CHARS]}#{key}",
    }


def run_index_keys(run_id: str, run_pk: str, last_event_time: str) -> dict[str, str]:
    """gsi3: a run by its runId (Marquez's ``/jobs/runs/{id}``); gsi4: runs by the UTC day of their last event."""
    return {
        "gsi3pk": f"RUNID#{run_id}",
        "gsi3sk": run_pk,
        "gsi4pk": f"T#{last_event_time[:10]}",
        "gsi4sk": f"{last_event_time}#{run_id}",
    }


def dataset_identity(namespace: str, name: str) -> dict[str, Any]:
    """The attributes every write of a dataset item sets: its names, its place in gsi1 (with its edges) and its
    listing keys (gsi3)."""
    pk = keys.dataset_key(namespace, name)
    return {
        "type": "dataset",
        "namespace": namespace,
        "name": name,
        "gsi1pk": pk,
        "gsi1sk": DATASET_SK,
        **listing_keys(namespace, name, "D", pk),
    }


def edge_sk(edge: Edge, source: str) -> str:
    return f"EDGE#{source}#{edge.direction}#{keys.dataset_key(edge.dataset.namespace, edge.dataset.name)}"


def edge_item(job_pk: str, edge: Edge, source: str) -> dict[str, Any]:
    content = {"type": "edge", **edge.content()}
    return {
        "pk": job_pk,
        "sk": edge_sk(edge, source),
        **content,
        "gsi1pk": keys.dataset_key(edge.dataset.namespace, edge.dataset.name),
        "gsi1sk": f"{'DOWN' if edge.direction == 'IN' else 'UP'}#{job_pk}#{source}",
        "contentHash": content_hash(content),
    }


def column_sk(edge: ColumnEdge, source: str) -> str:
    out = keys.field_key(edge.output.namespace, edge.output.name, edge.output_field)
    inp = keys.field_key(edge.input.namespace, edge.input.name, edge.input_field)
    return f"COL#{source}#{out}#{inp}"


def column_item(job_pk: str, edge: ColumnEdge, source: str) -> dict[str, Any]:
    out = keys.field_key(edge.output.namespace, edge.output.name, edge.output_field)
    inp = keys.field_key(edge.input.namespace, edge.input.name, edge.input_field)
    content = {"type": "column", **edge.content()}
    return {
        "pk": job_pk,
        "sk": column_sk(edge, source),
        **content,
        "gsi1pk": out,
        "gsi1sk": f"{job_pk}#{source}#{inp}",
        "gsi2pk": inp,
        "gsi2sk": f"{out}#{job_pk}#{source}",
        "contentHash": content_hash(content),
    }


def stored_hash(stored: Mapping[str, Any] | None, attribute: str) -> str | None:
    value = stored.get(attribute) if stored else None
    return str(value) if value is not None else None


def fit_item(item: dict[str, Any]) -> dict[str, Any]:
    """Keep a run item under DynamoDB's item size: drop the bulkiest derived lists first, and say so."""
    if approximate_size(item) <= MAX_ITEM_BYTES:
        return item
    out = dict(item)
    for name in ("datasetLineage", "columnLineage", "inputs", "outputs"):
        if out.get(name):
            out[name] = []
            out[f"{name}Truncated"] = True
            if approximate_size(out) <= MAX_ITEM_BYTES:
                return out
    raise DomainError(f"the merged record of run {item.get('runId')} does not fit in a DynamoDB item")
