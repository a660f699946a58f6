"""The item layout of the Lineage table: keys, run, checkpoint, edge and column-edge items (docs/merge.md)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import Any

from lineage_intake import keys
from lineage_intake.errors import DomainError
from lineage_intake.lineage import ColumnEdge, DatasetView, Edge, content_hash
from lineage_intake.merge import Checkpoint, MergedRun
from lineage_intake.store.dynamo import approximate_size

JOB_SK = "JOB"
DATASET_SK = "DATASET"
CHECKPOINT_SUFFIX = "#CKPT"
AWAITING_START = "AWAITING_START"
MAX_ITEM_BYTES = 380_000  # DynamoDB's limit is 400 KB; keep room for names and numbers
#: A checkpoint bigger than this is not kept: the run is then re-read whole (rare: huge facet maps).
MAX_CHECKPOINT_BYTES = 200_000
#: A run that is not final gets a new checkpoint when a merge read this many events since the last one: a
#: checkpoint costs 2-3 write units, reading 4 more events about half a read unit (docs/merge.md, measured by
#: bench/merge_cost_bench.py). A START+COMPLETE run never gets one.
CHECKPOINT_EVERY = 4


def run_sk(namespace: str, job: str) -> str:
    """A run item's sort key in its runId partition: its job (several jobs may reuse a runId)."""
    return keys.job_key(namespace, job)


def version_order(version: str | None) -> str:
    """The run-order part (``<sortTime>#<runId>``) of a job's ``lineageVersion``."""
    if not version:
        return ""
    time_part, _, rest = version.partition("#")
    return f"{time_part}#{rest.partition('#')[0]}"


NAMESPACE_SK = "NAMESPACE"
NAMESPACES = "NAMESPACES"
#: Characters of a name kept in a listing sort key (DynamoDB caps sort keys at 1,024 bytes).
LISTED_NAME_CHARS = 200


def listing_keys(namespace: str, name: str, kind: str) -> dict[str, str]:
    """gsi4 (read API): a namespace's jobs (``J``) or datasets (``D``) by name, as Marquez lists them."""
    key = keys.job_key(namespace, name) if kind == "J" else keys.dataset_key(namespace, name)
    return {"gsi4pk": f"{kind}#{keys.namespace_key(namespace)}", "gsi4sk": f"{name[:LISTED_NAME_CHARS]}#{key}"}


TAGS = "TAGS"


def tag_item(tag: Mapping[str, str]) -> dict[str, Any]:
    """One item per distinct tag name (``/tags``), created when a job first carries it (docs/read-api.md)."""
    source = tag.get("source")
    return {
        "pk": TAGS,
        "sk": f"TAG#{tag['name']}",
        "type": "tag",
        "name": tag["name"],
        **({"description": f"from a tags facet (source: {source})"} if source else {}),
    }


#: What a dataset item keeps for Marquez's web UI's listing rows, from the runs' facets (docs/read-api.md "Tags").
DATASET_UI_ATTRIBUTES = ("tags", "columnLineageFields")


def dataset_ui_changes(view: DatasetView, current: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``tags`` and ``columnLineageFields`` a run reports of a dataset that differ from its stored item
    (``current``, projected with ``DATASET_UI_ATTRIBUTES`` in the read the merge does anyway); a run that says
    nothing of them changes nothing. Empty (the common case): no write."""
    reported = {
        "tags": [dict(t) for t in view.tags] if view.tags is not None else None,
        "columnLineageFields": list(view.column_fields) if view.column_fields is not None else None,
    }
    have = current or {}
    return {name: value for name, value in reported.items() if value is not None and have.get(name) != value}


def job_identity(namespace: str, name: str) -> dict[str, Any]:
    """The attributes every write of a job item sets: its names and its listing keys."""
    return {"type": "job", "namespace": namespace, "name": name, **listing_keys(namespace, name, "J")}


def namespace_item(namespace: str, created_at: str) -> dict[str, Any]:
    """Written once (create-only), with the namespace's first job or dataset: ``/namespaces`` lists gsi4.

    Its time is ``mergedAt`` (when the merge created it), like every merge-time attribute: which merge comes
    first depends on arrival order, and the records must not (the read API serves it as ``createdAt``)."""
    key = keys.namespace_key(namespace)
    return {
        "pk": key,
        "sk": NAMESPACE_SK,
        "type": "namespace",
        "name": namespace,
        "mergedAt": created_at,
        "gsi4pk": NAMESPACES,
        "gsi4sk": f"{namespace[:LISTED_NAME_CHARS]}#{key}",
    }


def dataset_identity(namespace: str, name: str) -> dict[str, Any]:
    """The attributes every write of a dataset item sets: its names and its listing keys."""
    return {"type": "dataset", "namespace": namespace, "name": name, **listing_keys(namespace, name, "D")}


def run_item(run: MergedRun, merged_at: str, *, time_index: bool) -> dict[str, Any]:
    """The run item: the run's summary, its place in its job's runs (gsi1), and the time index (gsi3)."""
    content = run.run_content()
    item: dict[str, Any] = {
        "pk": keys.run_key(run.run_id),
        "sk": run_sk(run.namespace, run.job),
        "type": "run",
        **content,
        "gsi1pk": keys.job_key(run.namespace, run.job),
        "gsi1sk": f"RUN#{run.sort_time}#{run.run_id}",
        "mergeVersion": run.merge_version,
        "contentHash": content_hash(content)[:16],
        "mergedAt": merged_at,
    }
    if time_index:
        # Keyed by the hour and the runId, not the time: a streaming run's key moves once an hour, not at every
        # event (a moved key costs a delete and a put); readers sort by the projected lastEventTime.
        item["gsi3pk"] = f"T#{run.last_event_time[:13]}"
        item["gsi3sk"] = run.run_id
    parent = run.parent
    if run.parent_link_child_side and parent is not None and parent.run_id:
        item |= child_index_keys(parent.namespace, parent.job, parent.run_id, run.namespace, run.job, run.run_id)
        # In the hash, so that a re-merge of the same events that closes the parent's namespace (events stored
        # before connections were recorded) rewrites the item; items without the index keep their hash.
        item["contentHash"] = content_hash({**content, "childIndex": item["gsi4pk"]})[:16]
    if run.status == "awaiting_start":
        item["gsi2pk"] = AWAITING_START
        item["gsi2sk"] = f"{run.end_time}#{run.run_id}"
    return fit_item(item)


#: gsi4 partition prefix of the children of a run whose parent is in a namespace the child may not write.
CHILD_INDEX = "CHILD#"


def child_link_suffix(parent_namespace: str, parent_job: str, run_id: str, namespace: str, job: str) -> str:
    """``<J#parent job>#<R#child run>#<J#child job>``: the same order under the parent's runId whether the link
    is an item in the parent's partition (``CHILD#`` + this) or the child's own run item on gsi4."""
    return f"{keys.job_key(parent_namespace, parent_job)}#{keys.run_key(run_id)}#{keys.job_key(namespace, job)}"


def child_index_keys(
    parent_namespace: str, parent_job: str, parent_run_id: str, namespace: str, job: str, run_id: str
) -> dict[str, str]:
    """gsi4 keys of a child run item whose parent is in a closed namespace (docs/auth.md): KEYS_ONLY, so the
    index is written when the run item is created or its parent changes, not at every merge."""
    return {
        "gsi4pk": CHILD_INDEX + keys.run_key(parent_run_id),
        "gsi4sk": child_link_suffix(parent_namespace, parent_job, run_id, namespace, job),
    }


def checkpoint_item(run: MergedRun) -> dict[str, Any] | None:
    """The run's checkpoint item, or None when the run gets none (final, short, or too big to keep)."""
    checkpoint = run.checkpoint
    if checkpoint is None or run.status not in ("streaming", "pending") or run.events_read < CHECKPOINT_EVERY:
        return None
    state = zlib.compress(json.dumps(checkpoint.state, separators=(",", ":"), sort_keys=True, default=str).encode(), 6)
    if len(state) > MAX_CHECKPOINT_BYTES:
        return None
    return {
        "pk": keys.run_key(run.run_id),
        "sk": run_sk(run.namespace, run.job) + CHECKPOINT_SUFFIX,
        "type": "checkpoint",
        "boundary": checkpoint.boundary,
        "state": state,
        "mergeVersion": run.merge_version,
    }


def read_checkpoint(item: Mapping[str, Any] | None) -> Checkpoint | None:
    """The checkpoint of a stored item; an unreadable one is ignored (the merge then re-reads the run whole)."""
    if not item:
        return None
    try:
        state = json.loads(zlib.decompress(bytes(item["state"])))
        return Checkpoint(boundary=str(item["boundary"]), state=state)
    except (KeyError, ValueError, TypeError, zlib.error):
        return None


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
    for name in ("inputs", "outputs"):
        if out.get(name):
            out[name] = []
            out[f"{name}Truncated"] = True
            if approximate_size(out) <= MAX_ITEM_BYTES:
                return out
    raise DomainError(f"the merged record of run {item.get('runId')} does not fit in a DynamoDB item")
