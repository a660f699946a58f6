"""The Lineage table: merged runs, jobs, datasets and their edges, in one table (single-table design).

Key patterns (``<...>`` is a digest of the names, see ``keys``: a raw name never goes into a key; R = from
runs, S = static, from JobEvents)::

    run          pk R#<ns,job,runId>   sk RUN
                 gsi1 J#<job> / RUN#<sortTime>#<runId>
                 gsi2 AWAITING_START / <endTime>#<runId>      (only while AWAITING_START: gsi2 is sparse)
    child link   pk R#<parent run>     sk CHILD#<child R#...>
    job          pk J#<ns,name>        sk JOB
    edge         pk J#<job>            sk EDGE#<R|S>#<IN|OUT>#<D#dataset>
                 gsi1 D#<dataset> / <DOWN|UP>#<J#job>#<R|S>
    column edge  pk J#<job>            sk COL#<R|S>#<F#output field>#<F#input field>
                 gsi1 F#<output field> / <J#job>#<R|S>#<F#input field>
                 gsi2 F#<input field> / <F#output field>#<J#job>#<R|S>
    dataset      pk D#<ns,name>        sk DATASET
                 gsi1 D#<dataset> / DATASET

One query per read use case:

- get a run: ``GetItem(R#..., RUN)``;
- a job's runs, newest first: ``Query gsi1 J#<job>, begins_with RUN#, descending``;
- a job's inputs and outputs: ``Query J#<job>, begins_with EDGE#`` (the job item holds the latest run's lists);
- a dataset's upstream and downstream jobs: ``Query gsi1 D#<dataset>`` (the dataset item comes with them);
- the column lineage of a dataset field: ``Query gsi1 F#<field>`` (and its downstream: ``Query gsi2 F#<field>``);
- runs awaiting their START: ``Query gsi2 AWAITING_START``; a run's children: ``Query R#<run>, begins_with CHILD#``.

Writes never let an older result overwrite a newer one, and write only what changed:

- The **run item** carries ``mergeVersion`` (number of events merged, then the greatest sort key): it is put
  only over a smaller version (or the same version with other content). Every other write of the merge is a
  transaction with a ``ConditionCheck`` that the run item still holds this merge's version, so a slower,
  older merge of the same run stops as soon as a newer one has written the run item.
- The **job** keeps a section per writer: ``runVersion`` (the latest run of the job, by START time and runId,
  then merge version) and ``staticVersion`` (its JobEvents). The writer first claims its section with a
  conditional update, then diffs the section's edge and column-edge items in the job partition (one Query)
  and writes the changes in transactions guarded by its claim. A job's run edges are those of its latest run.
- A **dataset** has a lineage section in three parts, each versioned on its own: ``lineage`` (the latest run
  that read or wrote it), ``fields`` and ``symlinks`` (the latest run that reported a schema / symlinks, so a
  run without those facets erases nothing); a ``defined`` section (its DatasetEvents) and a ``registered``
  flag. ``partial`` is true until a DatasetEvent defines it or an operator registers it.
- Each item carries a content digest (``contentHash``/``runHash``/...) that excludes the merge time; a write
  happens only when the digest differs or a newer run takes over a shared item.

DynamoDB and S3 errors are translated into domain errors with ``events_store.translate_error``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lineage_intake import keys
from lineage_intake.errors import ConflictError, DomainError, DuplicateItem, StorageUnavailable
from lineage_intake.merge import (
    ColumnEdge,
    DatasetDefinition,
    Edge,
    JobDefinition,
    MergedRun,
    Ref,
    content_hash,
)
from lineage_intake.store.events import from_dynamodb, translate_error

RUN_SK = "RUN"
JOB_SK = "JOB"
DATASET_SK = "DATASET"
AWAITING_START = "AWAITING_START"
MAX_ITEM_BYTES = 380_000  # DynamoDB's limit is 400 KB; keep room for names and numbers
TRANSACTION_WRITES = 25  # plus one or two guards, well under DynamoDB's 100 actions
TRANSACTION_BYTES = 3_000_000  # DynamoDB's limit is 4 MB per transaction
TRANSACTION_ATTEMPTS = 4
#: Parts of a dataset's lineage section, each with its own ``<part>Version`` and ``<part>Hash``.
DATASET_PARTS = ("lineage", "fields", "symlinks")


class Superseded(ConflictError):
    """A newer merge of the same run has already written its run item: this merge stops writing."""


class _TakenOver(ConflictError):
    """While a merge was writing a job's edges, a newer run (or newer JobEvents) claimed the job section."""


# ---------------------------------------------------------------------------------------------- attributes
def to_attr(value: Any) -> dict[str, Any]:
    """A JSON-like value as a DynamoDB attribute value (maps, lists, numbers, strings, booleans, null)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        text = str(value)
        return {"N": text} if len(text.lstrip("-")) <= 38 else {"S": text}
    if isinstance(value, float):
        return {"N": repr(value)} if math.isfinite(value) else {"S": repr(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes):
        return {"B": value}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_attr(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attr(v) for v in value]}
    return {"S": str(value)}


def to_item(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level attributes, leaving out the ones that are None (absent reads as null)."""
    return {k: to_attr(v) for k, v in attributes.items() if v is not None}


def approximate_size(attributes: Mapping[str, Any]) -> int:
    return len(json.dumps(attributes, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass"))


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _order(version: str | None) -> str:
    """The run-order part of a shared version (``<sortTime>#<runId>#<merge version>``)."""
    if not version:
        return ""
    time_part, _, rest = version.partition("#")
    run_id = rest.partition("#")[0]
    return f"{time_part}#{run_id}"


# ---------------------------------------------------------------------------------------------- results
@dataclass
class WriteResult:
    """What a merge wrote: the counts of its log line."""

    written: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped_newer: int = 0
    superseded: bool = False
    latest_run: bool | None = None
    previous_state: str | None = None

    def add(self, other: WriteResult) -> None:
        self.written += other.written
        self.unchanged += other.unchanged
        self.deleted += other.deleted
        self.skipped_newer += other.skipped_newer


@dataclass
class _Action:
    """One write of a transaction: ``op`` is Put, Update or Delete (the body is DynamoDB's)."""

    op: str
    body: dict[str, Any]
    size: int = 0
    key: str = ""

    def transact(self) -> dict[str, Any]:
        return {self.op: self.body}


@dataclass
class _Guard:
    """A ConditionCheck that fences a batch of writes to one claim."""

    pk: str
    sk: str
    attribute: str
    value: str

    def transact(self, table: str) -> dict[str, Any]:
        return {
            "ConditionCheck": {
                "TableName": table,
                "Key": _key(self.pk, self.sk),
                "ConditionExpression": "#g = :g",
                "ExpressionAttributeNames": {"#g": self.attribute},
                "ExpressionAttributeValues": {":g": {"S": self.value}},
            }
        }


@dataclass
class _Update:
    """An UpdateItem built attribute by attribute (SET values, if_not_exists, REMOVE)."""

    sets: dict[str, Any] = field(default_factory=dict)
    set_if_absent: dict[str, Any] = field(default_factory=dict)
    removes: list[str] = field(default_factory=list)

    def expression(self) -> tuple[str, dict[str, str], dict[str, Any]]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        parts: list[str] = []
        removes: list[str] = []
        for i, (name, value) in enumerate(self.sets.items()):
            names[f"#s{i}"] = name
            if value is None:
                removes.append(f"#s{i}")
            else:
                values[f":s{i}"] = to_attr(value)
                parts.append(f"#s{i} = :s{i}")
        for i, (name, value) in enumerate(self.set_if_absent.items()):
            names[f"#n{i}"] = name
            values[f":n{i}"] = to_attr(value)
            parts.append(f"#n{i} = if_not_exists(#n{i}, :n{i})")
        for i, name in enumerate(self.removes):
            names[f"#r{i}"] = name
            removes.append(f"#r{i}")
        expression = ""
        if parts:
            expression += "SET " + ", ".join(parts)
        if removes:
            expression += (" " if expression else "") + "REMOVE " + ", ".join(removes)
        return expression, names, values


# ---------------------------------------------------------------------------------------------- store
class LineageStore:
    """Repository of the Lineage table. The client is passed in, so it runs on moto and on AWS alike."""

    def __init__(self, dynamodb: Any, table: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.sleep = sleep

    # ================================================================== run merges
    def write_run(self, run: MergedRun, merged_at: str) -> WriteResult:
        """Write a merged run and, when it has lineage, its job, datasets, edges and parent link.

        Raises ``StorageUnavailable`` when storage throttles; a newer merge that got there first is not an
        error: the result says ``superseded``.
        """
        result = WriteResult()
        run_pk = keys.run_key(run.namespace, run.job, run.run_id)
        stored = self._get(run_pk, RUN_SK, ["mergeVersion", "contentHash", "state", "parent", "placeholder"])
        result.previous_state = None if stored is None or stored.get("placeholder") else stored.get("state")
        content = run.run_content()
        digest = content_hash(content)
        stored_version = str(stored.get("mergeVersion", "")) if stored else ""
        if stored_version > run.merge_version:
            result.superseded = True
            return result
        if stored_version == run.merge_version and stored is not None and stored.get("contentHash") == digest:
            result.unchanged += 1
        else:
            try:
                self._put_run(run_pk, run, content, digest, merged_at)
            except DuplicateItem:
                result.superseded = True
                return result
            result.written += 1
        if not run.builds_lineage:
            return result
        guard = _Guard(run_pk, RUN_SK, "mergeVersion", run.merge_version)
        try:
            latest = self._write_job_scope(
                job=run.job_ref,
                section="run",
                version=run.shared_version,
                content=run.job_content(),
                edges=run.edges(),
                column_edges=run.column_edges(),
                guards=[guard],
                merged_at=merged_at,
                result=result,
            )
            result.latest_run = latest
            self._write_run_datasets(run, guard, merged_at, result)
            self._write_parent(run, run_pk, stored, guard, merged_at, result)
        except Superseded:
            result.superseded = True
        return result

    def _put_run(self, run_pk: str, run: MergedRun, content: dict[str, Any], digest: str, merged_at: str) -> None:
        item: dict[str, Any] = {
            "pk": run_pk,
            "sk": RUN_SK,
            "type": "run",
            **content,
            "gsi1pk": keys.job_key(run.namespace, run.job),
            "gsi1sk": f"RUN#{run.sort_time}#{run.run_id}",
            "mergeVersion": run.merge_version,
            "contentHash": digest,
            "mergedAt": merged_at,
        }
        if run.status == "awaiting_start":
            item["gsi2pk"] = AWAITING_START
            item["gsi2sk"] = f"{run.end_time}#{run.run_id}"
        item = fit_item(item)
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(mergeVersion) OR mergeVersion < :v OR "
                "(mergeVersion = :v AND contentHash <> :h)",
                ExpressionAttributeValues={":v": {"S": run.merge_version}, ":h": {"S": digest}},
            )
        except Exception as exc:
            raise translate_error(exc, duplicate_message="a newer merge of this run is stored") from exc

    def _write_run_datasets(self, run: MergedRun, guard: _Guard, merged_at: str, result: WriteResult) -> None:
        """Each dataset the run read or wrote: created as a partial asset; each part of its lineage section
        (``lineage``, ``fields``, ``symlinks``) holds what the latest run that reported it said."""
        wanted = {keys.dataset_key(v.ref.namespace, v.ref.name): v for v in run.datasets}
        for _attempt in range(TRANSACTION_ATTEMPTS):
            if not wanted:
                return
            markers = [f"{part}{suffix}" for part in DATASET_PARTS for suffix in ("Version", "Hash")]
            stored = self._batch_get([(pk, DATASET_SK) for pk in wanted], ["pk", *markers], consistent=True)
            actions = []
            for pk, view in sorted(wanted.items()):
                action = self._dataset_action(run, pk, view, stored.get((pk, DATASET_SK)), merged_at, result)
                if action is not None:
                    actions.append(action)
            dropped: list[_Action] = []
            for chunk in _chunks(actions):
                transaction = _Transaction(self, chunk, [guard], result)
                if transaction.run() is not None:
                    raise Superseded("a newer merge of this run has been written")
                dropped += transaction.dropped_actions
            # A newer run wrote some datasets between our read and our write: read those again.
            result.skipped_newer -= len(dropped)
            wanted = {a.key: wanted[a.key] for a in dropped if a.key in wanted}
        if wanted:
            raise StorageUnavailable("dataset records keep changing under this merge; retry later")

    def _dataset_action(
        self,
        run: MergedRun,
        pk: str,
        view: Any,
        current: Mapping[str, Any] | None,
        merged_at: str,
        result: WriteResult,
    ) -> _Action | None:
        version = run.shared_version
        sets: dict[str, Any] = {}
        clauses: list[str] = []
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        for i, (part, content) in enumerate(run.dataset_parts(view).items()):
            digest = content_hash(content)
            have = str(current.get(f"{part}Version", "")) if current else ""
            if have and (_order(have) > run.order or (_order(have) == run.order and have > version)):
                result.skipped_newer += 1
                continue
            if have and _order(have) == run.order and stored_hash(current, f"{part}Hash") == digest:
                result.unchanged += 1
                continue
            sets |= {**content, f"{part}Version": version, f"{part}Hash": digest}
            names |= {f"#v{i}": f"{part}Version", f"#h{i}": f"{part}Hash"}
            values |= {f":v{i}": {"S": version}, f":h{i}": {"S": digest}}
            clauses.append(f"(attribute_not_exists(#v{i}) OR #v{i} < :v{i} OR (#v{i} = :v{i} AND #h{i} <> :h{i}))")
        if not sets:
            return None
        update = _Update(
            sets={
                "type": "dataset",
                "namespace": view.ref.namespace,
                "name": view.ref.name,
                "gsi1pk": pk,
                "gsi1sk": DATASET_SK,
                **sets,
                "mergedAt": merged_at,
            },
            set_if_absent={"partial": True},
        )
        action = self._update_action(pk, DATASET_SK, update, " AND ".join(clauses), values, names)
        action.key = pk
        return action

    def _write_parent(
        self,
        run: MergedRun,
        run_pk: str,
        stored: Mapping[str, Any] | None,
        guard: _Guard,
        merged_at: str,
        result: WriteResult,
    ) -> None:
        """The child link under the parent run, and placeholders for a parent run and job not seen yet."""
        actions: list[_Action] = []
        old_parent = stored.get("parent") if stored else None
        if isinstance(old_parent, Mapping) and old_parent.get("runId"):
            old = (old_parent.get("namespace"), old_parent.get("job"), old_parent.get("runId"))
            new = (run.parent.namespace, run.parent.job, run.parent.run_id) if run.parent else None
            if old != new:
                old_pk = keys.run_key(str(old[0]), str(old[1]), str(old[2]))
                actions.append(self._delete_action(old_pk, f"CHILD#{run_pk}"))
        parent = run.parent
        if parent is None:
            self._transact(actions, [guard], result)
            return
        parent_job_pk = keys.job_key(parent.namespace, parent.job)
        wanted = [(parent_job_pk, JOB_SK)]
        parent_pk = keys.run_key(parent.namespace, parent.job, parent.run_id) if parent.run_id else None
        child_sk = f"CHILD#{run_pk}"
        if parent_pk is not None:
            wanted += [(parent_pk, RUN_SK), (parent_pk, child_sk)]
        stored_items = self._batch_get(wanted, ["pk", "sk", "contentHash", "childVersion"], consistent=True)
        if parent_pk is not None:
            content = {
                "type": "child",
                "namespace": run.namespace,
                "job": run.job,
                "runId": run.run_id,
                "state": run.state,
                "startTime": run.start_time,
                "endTime": run.end_time,
            }
            digest = content_hash(content)
            link = stored_items.get((parent_pk, child_sk))
            if link is not None and link.get("contentHash") == digest:
                result.unchanged += 1
            else:
                item = {
                    "pk": parent_pk,
                    "sk": child_sk,
                    **content,
                    "childVersion": run.merge_version,
                    "contentHash": digest,
                    "mergedAt": merged_at,
                }
                actions.append(
                    _Action(
                        "Put",
                        {
                            "TableName": self.table,
                            "Item": to_item(item),
                            "ConditionExpression": "attribute_not_exists(pk) OR childVersion < :v OR "
                            "(childVersion = :v AND contentHash <> :h)",
                            "ExpressionAttributeValues": {":v": {"S": run.merge_version}, ":h": {"S": digest}},
                        },
                        approximate_size(item),
                    )
                )
        self._transact(actions, [guard], result)
        # Placeholders: created only where nothing is stored yet, never over a real record.
        if parent_pk is not None and (parent_pk, RUN_SK) not in stored_items:
            assert parent.run_id is not None
            placeholder = {
                "pk": parent_pk,
                "sk": RUN_SK,
                "type": "run",
                "namespace": parent.namespace,
                "job": parent.job,
                "runId": parent.run_id,
                "state": "PLACEHOLDER",
                "placeholder": True,
            }
            result.written += self._create_if_absent(placeholder)
        if (parent_job_pk, JOB_SK) not in stored_items:
            placeholder = {
                "pk": parent_job_pk,
                "sk": JOB_SK,
                "type": "job",
                "namespace": parent.namespace,
                "name": parent.job,
                "placeholder": True,
            }
            result.written += self._create_if_absent(placeholder)

    # ================================================================== static lineage
    def write_job_definition(self, job: JobDefinition, merged_at: str) -> WriteResult:
        """A job's JobEvents: its static section, static edges, and its datasets as partial assets."""
        result = WriteResult()
        self._write_job_scope(
            job=job.ref,
            section="static",
            version=job.version,
            content=job.content(),
            edges=job.edges(),
            column_edges=job.column_edges(),
            guards=[],
            merged_at=merged_at,
            result=result,
        )
        self._ensure_datasets([v.ref for v in job.datasets], result)
        return result

    def write_dataset_definition(self, dataset: DatasetDefinition, merged_at: str) -> WriteResult:
        """A dataset's DatasetEvents: its defined section; the dataset is no longer partial."""
        result = WriteResult()
        pk = keys.dataset_key(dataset.ref.namespace, dataset.ref.name)
        content = dataset.content()
        digest = content_hash(content)
        stored = self._get(pk, DATASET_SK, ["definedVersion", "definedHash"])
        have = str(stored.get("definedVersion", "")) if stored else ""
        if have > dataset.version or (have == dataset.version and stored and stored.get("definedHash") == digest):
            result.unchanged += 1
            return result
        update = _Update(
            sets={
                "type": "dataset",
                "namespace": dataset.ref.namespace,
                "name": dataset.ref.name,
                "gsi1pk": pk,
                "gsi1sk": DATASET_SK,
                **content,
                "partial": False,
                "definedVersion": dataset.version,
                "definedHash": digest,
                "mergedAt": merged_at,
            }
        )
        action = self._update_action(
            pk,
            DATASET_SK,
            update,
            "attribute_not_exists(definedVersion) OR definedVersion < :v OR "
            "(definedVersion = :v AND definedHash <> :h)",
            {":v": {"S": dataset.version}, ":h": {"S": digest}},
        )
        try:
            self.dynamodb.update_item(**action.body)
            result.written += 1
        except Exception as exc:
            error = translate_error(exc)
            if not isinstance(error, DuplicateItem):
                raise error from exc
            result.skipped_newer += 1
        return result

    def register_dataset(self, namespace: str, name: str, registered_at: str, by: str | None = None) -> None:
        """An operator registers a dataset: it becomes a full asset (no longer partial)."""
        pk = keys.dataset_key(namespace, name)
        update = _Update(
            sets={
                "type": "dataset",
                "namespace": namespace,
                "name": name,
                "gsi1pk": pk,
                "gsi1sk": DATASET_SK,
                "registered": True,
                "partial": False,
            },
            set_if_absent={"registeredAt": registered_at, **({"registeredBy": by} if by else {})},
        )
        action = self._update_action(pk, DATASET_SK, update, None, {})
        try:
            self.dynamodb.update_item(**action.body)
        except Exception as exc:
            raise translate_error(exc) from exc

    # ================================================================== shared machinery
    def _write_job_scope(
        self,
        *,
        job: Ref,
        section: str,
        version: str,
        content: dict[str, Any],
        edges: Sequence[Edge],
        column_edges: Sequence[ColumnEdge],
        guards: list[_Guard],
        merged_at: str,
        result: WriteResult,
    ) -> bool:
        """Claim one section of the job item, then bring its edge items in line. False: a newer writer owns it."""
        job_pk = keys.job_key(job.namespace, job.name)
        source = "R" if section == "run" else "S"
        version_attr, hash_attr = f"{section}Version", f"{section}Hash"
        wanted = {self._edge_sk(e, source): self._edge_item(job_pk, e, source) for e in edges}
        wanted |= {self._column_sk(c, source): self._column_item(job_pk, c, source) for c in column_edges}
        digest = content_hash([content, sorted((sk, item["contentHash"]) for sk, item in wanted.items())])
        stored = self._get(job_pk, JOB_SK, [version_attr, hash_attr])
        have = str(stored.get(version_attr, "")) if stored else ""
        if section == "run":
            # The latest run owns the section; a re-merge of that run may skip the claim when nothing changed
            # (a stale merge of the same run is fenced by the run guard).
            if _order(have) > _order(version):
                result.skipped_newer += 1
                return False
            if have > version:
                raise Superseded("a newer merge of this run has claimed the job")
            unchanged = bool(have) and _order(have) == _order(version) and stored_hash(stored, hash_attr) == digest
        else:
            # JobEvents: the merge that read the most events owns the section.
            if have > version:
                result.skipped_newer += 1
                return False
            unchanged = have == version and stored_hash(stored, hash_attr) == digest
        claimed = version
        if unchanged:
            claimed = have  # nothing new to claim: check the edges under the current claim
            result.unchanged += 1
        else:
            update = _Update(
                sets={
                    "type": "job",
                    "namespace": job.namespace,
                    "name": job.name,
                    **content,
                    version_attr: version,
                    hash_attr: digest,
                    "mergedAt": merged_at,
                },
                removes=["placeholder"],
            )
            action = self._update_action(
                job_pk,
                JOB_SK,
                update,
                "attribute_not_exists(#v) OR #v < :v OR (#v = :v AND #h <> :h)",
                {":v": {"S": version}, ":h": {"S": digest}},
                {"#v": version_attr, "#h": hash_attr},
            )
            claim = _Transaction(self, [action], guards, result)
            if claim.run() is not None:
                raise Superseded("a newer merge of this run has been written")
            if claim.dropped:
                return False  # a newer run claimed the job between our read and our write
        job_guard = _Guard(job_pk, JOB_SK, version_attr, claimed)
        existing = {
            item["sk"]: item
            for prefix in (f"EDGE#{source}#", f"COL#{source}#")
            for item in self._query_prefix(job_pk, prefix, ["sk", "contentHash"])
        }
        actions = []
        for sk, item in sorted(wanted.items()):
            current = existing.get(sk)
            if current is not None and current.get("contentHash") == item["contentHash"]:
                result.unchanged += 1
                continue
            full = {**item, "mergedAt": merged_at}
            actions.append(_Action("Put", {"TableName": self.table, "Item": to_item(full)}, approximate_size(full)))
        for sk in sorted(set(existing) - set(wanted)):
            actions.append(self._delete_action(job_pk, sk))
        try:
            self._transact(actions, [*guards, job_guard], result)
        except _TakenOver:
            return False
        return True

    @staticmethod
    def _edge_sk(edge: Edge, source: str) -> str:
        return f"EDGE#{source}#{edge.direction}#{keys.dataset_key(edge.dataset.namespace, edge.dataset.name)}"

    def _edge_item(self, job_pk: str, edge: Edge, source: str) -> dict[str, Any]:
        content = {"type": "edge", **edge.content()}
        return {
            "pk": job_pk,
            "sk": self._edge_sk(edge, source),
            **content,
            "gsi1pk": keys.dataset_key(edge.dataset.namespace, edge.dataset.name),
            "gsi1sk": f"{'DOWN' if edge.direction == 'IN' else 'UP'}#{job_pk}#{source}",
            "contentHash": content_hash(content),
        }

    @staticmethod
    def _column_sk(edge: ColumnEdge, source: str) -> str:
        out = keys.field_key(edge.output.namespace, edge.output.name, edge.output_field)
        inp = keys.field_key(edge.input.namespace, edge.input.name, edge.input_field)
        return f"COL#{source}#{out}#{inp}"

    def _column_item(self, job_pk: str, edge: ColumnEdge, source: str) -> dict[str, Any]:
        out = keys.field_key(edge.output.namespace, edge.output.name, edge.output_field)
        inp = keys.field_key(edge.input.namespace, edge.input.name, edge.input_field)
        content = {"type": "column", **edge.content()}
        return {
            "pk": job_pk,
            "sk": self._column_sk(edge, source),
            **content,
            "gsi1pk": out,
            "gsi1sk": f"{job_pk}#{source}#{inp}",
            "gsi2pk": inp,
            "gsi2sk": f"{out}#{job_pk}#{source}",
            "contentHash": content_hash(content),
        }

    def _ensure_datasets(self, refs: Iterable[Ref], result: WriteResult) -> None:
        """Datasets named by static lineage exist at least as partial assets."""
        wanted = {keys.dataset_key(r.namespace, r.name): r for r in refs}
        stored = self._batch_get([(pk, DATASET_SK) for pk in wanted], ["pk"], consistent=True)
        for pk, ref in sorted(wanted.items()):
            if (pk, DATASET_SK) in stored:
                result.unchanged += 1
                continue
            update = _Update(
                sets={
                    "type": "dataset",
                    "namespace": ref.namespace,
                    "name": ref.name,
                    "gsi1pk": pk,
                    "gsi1sk": DATASET_SK,
                },
                set_if_absent={"partial": True},
            )
            try:
                self.dynamodb.update_item(**self._update_action(pk, DATASET_SK, update, None, {}).body)
            except Exception as exc:
                raise translate_error(exc) from exc
            result.written += 1

    def _create_if_absent(self, item: dict[str, Any]) -> int:
        try:
            self.dynamodb.put_item(
                TableName=self.table, Item=to_item(item), ConditionExpression="attribute_not_exists(pk)"
            )
            return 1
        except Exception as exc:
            error = translate_error(exc)
            if isinstance(error, DuplicateItem):
                return 0
            raise error from exc

    def _update_action(
        self,
        pk: str,
        sk: str,
        update: _Update,
        condition: str | None,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> _Action:
        expression, expr_names, expr_values = update.expression()
        body: dict[str, Any] = {
            "TableName": self.table,
            "Key": _key(pk, sk),
            "UpdateExpression": expression,
            "ExpressionAttributeNames": {**expr_names, **(names or {})},
        }
        if expr_values or values:
            body["ExpressionAttributeValues"] = {**expr_values, **values}
        if condition:
            body["ConditionExpression"] = condition
        return _Action("Update", body, approximate_size(update.sets))

    def _delete_action(self, pk: str, sk: str) -> _Action:
        return _Action("Delete", {"TableName": self.table, "Key": _key(pk, sk)}, 100)

    def _transact(self, actions: list[_Action], guards: list[_Guard], result: WriteResult) -> None:
        """Write in chunks, each fenced by the guards. A failed guard raises ``Superseded`` (run guard) or
        ``_TakenOver`` (job guard: a newer run or JobEvent now owns the section)."""
        for chunk in _chunks(actions):
            failed = _Transaction(self, chunk, guards, result).run()
            if failed is None:
                continue
            if failed.sk == JOB_SK:
                raise _TakenOver(f"a newer writer claimed {failed.attribute}")
            raise Superseded("a newer merge of this run has been written")

    # ================================================================== low-level reads
    def _get(self, pk: str, sk: str, attributes: Sequence[str] | None = None) -> dict[str, Any] | None:
        kwargs: dict[str, Any] = {"TableName": self.table, "Key": _key(pk, sk), "ConsistentRead": True}
        if attributes:
            names = {f"#a{i}": a for i, a in enumerate(attributes)}
            kwargs["ProjectionExpression"] = ", ".join(names)
            kwargs["ExpressionAttributeNames"] = names
        try:
            answer = self.dynamodb.get_item(**kwargs)
        except Exception as exc:
            raise translate_error(exc) from exc
        item = answer.get("Item")
        return from_dynamodb(item) if item else None

    def _batch_get(
        self, wanted: Sequence[tuple[str, str]], attributes: Sequence[str], consistent: bool
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Items by (pk, sk); missing items are left out. Projection always includes pk and sk."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        names = {f"#a{i}": a for i, a in enumerate(dict.fromkeys(["pk", "sk", *attributes]))}
        unique = list(dict.fromkeys(wanted))
        for start in range(0, len(unique), 100):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [_key(pk, sk) for pk, sk in unique[start : start + 100]],
                    "ConsistentRead": consistent,
                    "ProjectionExpression": ", ".join(names),
                    "ExpressionAttributeNames": names,
                }
            }
            attempt = 0
            while request:
                try:
                    answer = self.dynamodb.batch_get_item(RequestItems=request)
                except Exception as exc:
                    raise translate_error(exc) from exc
                for raw in answer.get("Responses", {}).get(self.table, []):
                    item = from_dynamodb(raw)
                    found[(item["pk"], item["sk"])] = item
                request = answer.get("UnprocessedKeys") or {}
                if request:
                    attempt += 1
                    if attempt > TRANSACTION_ATTEMPTS:
                        raise StorageUnavailable("the lineage table keeps throttling reads; retry later")
                    self.sleep(0.05 * 2**attempt)
        return found

    def _query_prefix(
        self,
        pk: str,
        prefix: str,
        attributes: Sequence[str] | None = None,
        *,
        index: str | None = None,
        forward: bool = True,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """One paged Query: the items of a partition whose sort key starts with ``prefix``."""
        pk_name, sk_name = ("pk", "sk") if index is None else (f"{index}pk", f"{index}sk")
        names = {"#p": pk_name, **({"#s": sk_name} if prefix else {})}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "#p = :p" + (" AND begins_with(#s, :s)" if prefix else ""),
            "ExpressionAttributeValues": {":p": {"S": pk}, **({":s": {"S": prefix}} if prefix else {})},
            "ScanIndexForward": forward,
        }
        if index is None:
            kwargs["ConsistentRead"] = True
        else:
            kwargs["IndexName"] = index
        if attributes:
            projection = {f"#a{i}": a for i, a in enumerate(attributes)}
            names |= projection
            kwargs["ProjectionExpression"] = ", ".join(projection)
        kwargs["ExpressionAttributeNames"] = names
        returned = 0
        while True:
            if limit is not None:
                kwargs["Limit"] = max(1, limit - returned)
            try:
                page = self.dynamodb.query(**kwargs)
            except Exception as exc:
                raise translate_error(exc) from exc
            for raw in page.get("Items", []):
                yield from_dynamodb(raw)
                returned += 1
                if limit is not None and returned >= limit:
                    return
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    # ================================================================== read API
    def get_run(self, namespace: str, job: str, run_id: str) -> dict[str, Any] | None:
        return self._get(keys.run_key(namespace, job, run_id), RUN_SK)

    def list_runs(self, namespace: str, job: str, limit: int = 50) -> list[dict[str, Any]]:
        """A job's runs, newest first (by START time, else first event time)."""
        return list(self._query_prefix(keys.job_key(namespace, job), "RUN#", index="gsi1", forward=False, limit=limit))

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(keys.job_key(namespace, name), JOB_SK)

    def job_edges(self, namespace: str, name: str) -> dict[str, list[dict[str, Any]]]:
        """A job's inputs and outputs (its latest run's, and its JobEvents'), from one query."""
        out: dict[str, list[dict[str, Any]]] = {"inputs": [], "outputs": []}
        for item in self._query_prefix(keys.job_key(namespace, name), "EDGE#"):
            out["inputs" if item.get("direction") == "IN" else "outputs"].append(item)
        return out

    def get_dataset(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(keys.dataset_key(namespace, name), DATASET_SK)

    def dataset_lineage(self, namespace: str, name: str) -> dict[str, Any]:
        """A dataset with its upstream jobs (that write it) and downstream jobs (that read it): one query."""
        out: dict[str, Any] = {"dataset": None, "upstream": [], "downstream": []}
        for item in self._query_prefix(keys.dataset_key(namespace, name), "", index="gsi1"):
            sort_key = str(item.get("gsi1sk", ""))
            if sort_key == DATASET_SK:
                out["dataset"] = item
            elif sort_key.startswith("UP#"):
                out["upstream"].append(item)
            elif sort_key.startswith("DOWN#"):
                out["downstream"].append(item)
        return out

    def column_lineage(self, namespace: str, name: str, field_name: str) -> list[dict[str, Any]]:
        """The input fields that a dataset field is computed from, one item per (job, input field)."""
        return list(self._query_prefix(keys.field_key(namespace, name, field_name), "", index="gsi1"))

    def column_downstream(self, namespace: str, name: str, field_name: str) -> list[dict[str, Any]]:
        """The output fields computed from a dataset field."""
        return list(self._query_prefix(keys.field_key(namespace, name, field_name), "", index="gsi2"))

    def run_children(self, namespace: str, job: str, run_id: str) -> list[dict[str, Any]]:
        return list(self._query_prefix(keys.run_key(namespace, job, run_id), "CHILD#"))

    def list_awaiting_start(self, limit: int = 100) -> list[dict[str, Any]]:
        """Runs with a terminal event and no START yet, oldest first."""
        return list(self._query_prefix(AWAITING_START, "", index="gsi2", limit=limit))


class _Transaction:
    """One TransactWriteItems with its guards.

    ``run`` returns the guard that failed (someone newer holds the claim), or None when the writes are done.
    A write whose own condition failed (a newer run got there first) is dropped, counted in ``dropped``, and
    the rest is retried; conflicts and throttling are retried a few times, then ``StorageUnavailable``.
    """

    def __init__(self, store: LineageStore, actions: list[_Action], guards: list[_Guard], result: WriteResult):
        self.store = store
        self.actions = list(actions)
        self.guards = guards
        self.result = result
        self.dropped = 0
        self.dropped_actions: list[_Action] = []

    def run(self) -> _Guard | None:
        attempt = 0
        while self.actions:
            items = [g.transact(self.store.table) for g in self.guards] + [a.transact() for a in self.actions]
            try:
                self.store.dynamodb.transact_write_items(TransactItems=items)
            except Exception as exc:
                reasons = _cancellation_reasons(exc)
                if reasons is None:
                    raise translate_error(exc) from exc
                codes = [str(r.get("Code") or "None") for r in reasons]
                guard_codes, action_codes = codes[: len(self.guards)], codes[len(self.guards) :]
                for guard, code in zip(self.guards, guard_codes, strict=False):
                    if code == "ConditionalCheckFailed":
                        return guard
                failed = {i for i, code in enumerate(action_codes) if code == "ConditionalCheckFailed"}
                if failed:
                    self.dropped += len(failed)
                    self.dropped_actions += [a for i, a in enumerate(self.actions) if i in failed]
                    self.result.skipped_newer += len(failed)
                    self.actions = [a for i, a in enumerate(self.actions) if i not in failed]
                    continue
                attempt += 1
                if attempt >= TRANSACTION_ATTEMPTS:
                    raise StorageUnavailable(
                        f"lineage writes keep conflicting or throttling ({', '.join(sorted(set(codes)))}); retry later"
                    ) from exc
                self.store.sleep(0.05 * 2**attempt)
                continue
            for action in self.actions:
                if action.op == "Delete":
                    self.result.deleted += 1
                else:
                    self.result.written += 1
            return None
        return None


def _cancellation_reasons(exc: Exception) -> list[dict[str, Any]] | None:
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return None
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return None
    reasons = exc.response.get("CancellationReasons")
    return list(reasons) if isinstance(reasons, list) else []


def stored_hash(stored: Mapping[str, Any] | None, attribute: str) -> str | None:
    value = stored.get(attribute) if stored else None
    return str(value) if value is not None else None


def _chunks(actions: list[_Action]) -> Iterator[list[_Action]]:
    chunk: list[_Action] = []
    size = 0
    for action in actions:
        if chunk and (len(chunk) >= TRANSACTION_WRITES or size + action.size > TRANSACTION_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(action)
        size += action.size
    if chunk:
        yield chunk


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
