"""The Lineage table: merged runs, jobs, datasets and their edges, in one table (single-table design).

Key patterns (names only as digests), one query per read use case, and why writes never let an older result
overwrite a newer one (versions, claims, guards): docs/merge.md, "Lineage table".
The DynamoDB mechanics are in ``store.dynamo``, the item layout in ``store.lineage_items``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lineage_intake import keys
from lineage_intake.errors import ConflictError, DuplicateItem, StorageUnavailable
from lineage_intake.lineage import ColumnEdge, Edge, Ref, content_hash
from lineage_intake.merge import DatasetDefinition, JobDefinition, MergedRun
from lineage_intake.store.dynamo import (
    ATTEMPTS,
    Action,
    Guard,
    Transaction,
    Update,
    WriteCounts,
    approximate_size,
    batch_get,
    chunks,
    delete_action,
    dynamo_errors,
    get_item,
    newer_or_changed,
    query_prefix,
    to_item,
    update_action,
)
from lineage_intake.store.lineage_items import (
    AWAITING_START,
    DATASET_PARTS,
    DATASET_SK,
    JOB_SK,
    RUN_SK,
    column_item,
    column_sk,
    dataset_identity,
    edge_item,
    edge_sk,
    fit_item,
    listing_keys,
    namespace_item,
    order,
    run_index_keys,
    stored_hash,
)


class Superseded(ConflictError):
    """A newer merge of the same run has already written its run item: this merge stops writing."""


class _TakenOver(ConflictError):
    """While a merge was writing a job's edges, a newer run (or newer JobEvents) claimed the job section."""


# ---------------------------------------------------------------------------------------------- results
@dataclass
class WriteResult(WriteCounts):
    """What a merge wrote: the counts of its log line, and what the merge service reports about the run."""

    superseded: bool = False
    latest_run: bool | None = None
    previous_state: str | None = None


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
        guard = Guard(run_pk, RUN_SK, "mergeVersion", run.merge_version)
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
            **run_index_keys(run.run_id, run_pk, run.last_event_time),
            "mergeVersion": run.merge_version,
            "contentHash": digest,
            "mergedAt": merged_at,
        }
        if run.status == "awaiting_start":
            item["gsi2pk"] = AWAITING_START
            item["gsi2sk"] = f"{run.end_time}#{run.run_id}"
        item = fit_item(item)
        condition, names, values = newer_or_changed("mergeVersion", "contentHash", run.merge_version, digest)
        with dynamo_errors(duplicate_message="a newer merge of this run is stored"):
            self.dynamodb.put_item(
                TableName=self.table,
                Item=to_item(item),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )

    def _write_run_datasets(self, run: MergedRun, guard: Guard, merged_at: str, result: WriteResult) -> None:
        """Each dataset the run read or wrote: created as a partial asset; each part of its lineage section
        (``lineage``, ``fields``, ``symlinks``) holds what the latest run that reported it said."""
        wanted = {keys.dataset_key(v.ref.namespace, v.ref.name): v for v in run.datasets}
        for _attempt in range(ATTEMPTS):
            if not wanted:
                return
            markers = [f"{part}{suffix}" for part in DATASET_PARTS for suffix in ("Version", "Hash")]
            stored = self._batch_get([(pk, DATASET_SK) for pk in wanted], ["pk", *markers], consistent=True)
            actions = []
            for pk, view in sorted(wanted.items()):
                if (pk, DATASET_SK) not in stored:
                    result.written += self._create_if_absent(namespace_item(view.ref.namespace, merged_at))
                action = self._dataset_action(run, pk, view, stored.get((pk, DATASET_SK)), merged_at, result)
                if action is not None:
                    actions.append(action)
            dropped: list[Action] = []
            for chunk in chunks(actions):
                transaction = Transaction(self.dynamodb, self.table, chunk, [guard], result, self.sleep)
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
    ) -> Action | None:
        version = run.shared_version
        sets: dict[str, Any] = {}
        clauses: list[str] = []
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        for i, (part, content) in enumerate(run.dataset_parts(view).items()):
            digest = content_hash(content)
            have = str(current.get(f"{part}Version", "")) if current else ""
            if have and (order(have) > run.order or (order(have) == run.order and have > version)):
                result.skipped_newer += 1
                continue
            if have and order(have) == run.order and stored_hash(current, f"{part}Hash") == digest:
                result.unchanged += 1
                continue
            sets |= {**content, f"{part}Version": version, f"{part}Hash": digest}
            clause, part_names, part_values = newer_or_changed(f"{part}Version", f"{part}Hash", version, digest, str(i))
            names |= part_names
            values |= part_values
            clauses.append(clause)
        if not sets:
            return None
        update = Update(
            sets={
                **dataset_identity(view.ref.namespace, view.ref.name),
                **sets,
                "mergedAt": merged_at,
            },
            set_if_absent={"partial": True},
        )
        action = update_action(self.table, pk, DATASET_SK, update, (" AND ".join(clauses), names, values))
        action.key = pk
        return action

    def _write_parent(
        self,
        run: MergedRun,
        run_pk: str,
        stored: Mapping[str, Any] | None,
        guard: Guard,
        merged_at: str,
        result: WriteResult,
    ) -> None:
        """The child link under the parent run, and placeholders for a parent run and job not seen yet."""
        actions: list[Action] = []
        old_parent = stored.get("parent") if stored else None
        if isinstance(old_parent, Mapping) and old_parent.get("runId"):
            old = (old_parent.get("namespace"), old_parent.get("job"), old_parent.get("runId"))
            new = (run.parent.namespace, run.parent.job, run.parent.run_id) if run.parent else None
            if old != new:
                old_pk = keys.run_key(str(old[0]), str(old[1]), str(old[2]))
                actions.append(delete_action(self.table, old_pk, f"CHILD#{run_pk}"))
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
                condition, names, values = newer_or_changed("childVersion", "contentHash", run.merge_version, digest)
                put = {"TableName": self.table, "Item": to_item(item), "ConditionExpression": condition}
                put |= {"ExpressionAttributeNames": names, "ExpressionAttributeValues": values}
                actions.append(Action("Put", put, approximate_size(item)))
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
                **listing_keys(parent.namespace, parent.job, "J", parent_job_pk),
                "placeholder": True,
            }
            if self._create_if_absent(placeholder):
                result.written += 1 + self._create_if_absent(namespace_item(parent.namespace, merged_at))

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
        self._ensure_datasets([v.ref for v in job.datasets], result, merged_at)
        return result

    def write_dataset_definition(self, dataset: DatasetDefinition, merged_at: str) -> WriteResult:
        """A dataset's DatasetEvents: its defined section; the dataset is no longer partial."""
        result = WriteResult()
        pk = keys.dataset_key(dataset.ref.namespace, dataset.ref.name)
        content = dataset.content()
        digest = content_hash(content)
        stored = self._get(pk, DATASET_SK, ["definedVersion", "definedHash"])
        if stored is None:
            result.written += self._create_if_absent(namespace_item(dataset.ref.namespace, merged_at))
        have = str(stored.get("definedVersion", "")) if stored else ""
        if have > dataset.version or (have == dataset.version and stored and stored.get("definedHash") == digest):
            result.unchanged += 1
            return result
        update = Update(
            sets={
                **dataset_identity(dataset.ref.namespace, dataset.ref.name),
                **content,
                "partial": False,
                "definedVersion": dataset.version,
                "definedHash": digest,
                "mergedAt": merged_at,
            }
        )
        condition = newer_or_changed("definedVersion", "definedHash", dataset.version, digest)
        action = update_action(self.table, pk, DATASET_SK, update, condition)
        try:
            with dynamo_errors():
                self.dynamodb.update_item(**action.body)
            result.written += 1
        except DuplicateItem:
            result.skipped_newer += 1
        return result

    def register_dataset(self, namespace: str, name: str, registered_at: str, by: str | None = None) -> None:
        """An operator registers a dataset: it becomes a full asset (no longer partial)."""
        pk = keys.dataset_key(namespace, name)
        update = Update(
            sets={
                **dataset_identity(namespace, name),
                "registered": True,
                "partial": False,
            },
            set_if_absent={"registeredAt": registered_at, **({"registeredBy": by} if by else {})},
        )
        with dynamo_errors():
            self.dynamodb.update_item(**update_action(self.table, pk, DATASET_SK, update).body)
        self._create_if_absent(namespace_item(namespace, registered_at))

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
        guards: list[Guard],
        merged_at: str,
        result: WriteResult,
    ) -> bool:
        """Claim one section of the job item, then bring its edge items in line. False: a newer writer owns it."""
        job_pk = keys.job_key(job.namespace, job.name)
        source = "R" if section == "run" else "S"
        version_attr, hash_attr = f"{section}Version", f"{section}Hash"
        wanted = {edge_sk(e, source): edge_item(job_pk, e, source) for e in edges}
        wanted |= {column_sk(c, source): column_item(job_pk, c, source) for c in column_edges}
        digest = content_hash([content, sorted((sk, item["contentHash"]) for sk, item in wanted.items())])
        stored = self._get(job_pk, JOB_SK, [version_attr, hash_attr])
        if stored is None:  # the job's creation: its namespace is listed from now on
            result.written += self._create_if_absent(namespace_item(job.namespace, merged_at))
        have = str(stored.get(version_attr, "")) if stored else ""
        if section == "run":
            # The latest run owns the section; a re-merge of that run may skip the claim when nothing changed
            # (a stale merge of the same run is fenced by the run guard).
            if order(have) > order(version):
                result.skipped_newer += 1
                return False
            if have > version:
                raise Superseded("a newer merge of this run has claimed the job")
            unchanged = bool(have) and order(have) == order(version) and stored_hash(stored, hash_attr) == digest
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
            update = Update(
                sets={
                    "type": "job",
                    "namespace": job.namespace,
                    "name": job.name,
                    **listing_keys(job.namespace, job.name, "J", job_pk),
                    **content,
                    version_attr: version,
                    hash_attr: digest,
                    "mergedAt": merged_at,
                },
                removes=["placeholder"],
            )
            condition = newer_or_changed(version_attr, hash_attr, version, digest)
            action = update_action(self.table, job_pk, JOB_SK, update, condition)
            claim = Transaction(self.dynamodb, self.table, [action], guards, result, self.sleep)
            if claim.run() is not None:
                raise Superseded("a newer merge of this run has been written")
            if claim.dropped:
                return False  # a newer run claimed the job between our read and our write
        job_guard = Guard(job_pk, JOB_SK, version_attr, claimed)
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
            actions.append(Action("Put", {"TableName": self.table, "Item": to_item(full)}, approximate_size(full)))
        for sk in sorted(set(existing) - set(wanted)):
            actions.append(delete_action(self.table, job_pk, sk))
        try:
            self._transact(actions, [*guards, job_guard], result)
        except _TakenOver:
            return False
        return True

    def _ensure_datasets(self, refs: Iterable[Ref], result: WriteResult, merged_at: str) -> None:
        """Datasets named by static lineage exist at least as partial assets."""
        wanted = {keys.dataset_key(r.namespace, r.name): r for r in refs}
        stored = self._batch_get([(pk, DATASET_SK) for pk in wanted], ["pk"], consistent=True)
        for pk, ref in sorted(wanted.items()):
            if (pk, DATASET_SK) in stored:
                result.unchanged += 1
                continue
            result.written += self._create_if_absent(namespace_item(ref.namespace, merged_at))
            update = Update(
                sets={
                    **dataset_identity(ref.namespace, ref.name),
                },
                set_if_absent={"partial": True},
            )
            with dynamo_errors():
                self.dynamodb.update_item(**update_action(self.table, pk, DATASET_SK, update).body)
            result.written += 1

    def _create_if_absent(self, item: dict[str, Any]) -> int:
        try:
            with dynamo_errors():
                self.dynamodb.put_item(
                    TableName=self.table, Item=to_item(item), ConditionExpression="attribute_not_exists(pk)"
                )
            return 1
        except DuplicateItem:
            return 0

    def _transact(self, actions: list[Action], guards: list[Guard], result: WriteResult) -> None:
        """Write in chunks, each fenced by the guards. A failed guard raises ``Superseded`` (run guard) or
        ``_TakenOver`` (job guard: a newer run or JobEvent now owns the section)."""
        for chunk in chunks(actions):
            failed = Transaction(self.dynamodb, self.table, chunk, guards, result, self.sleep).run()
            if failed is None:
                continue
            if failed.sk == JOB_SK:
                raise _TakenOver(f"a newer writer claimed {failed.attribute}")
            raise Superseded("a newer merge of this run has been written")

    # ================================================================== low-level reads
    def _get(self, pk: str, sk: str, attributes: Sequence[str] | None = None) -> dict[str, Any] | None:
        return get_item(self.dynamodb, self.table, pk, sk, attributes)

    def _batch_get(
        self, wanted: Sequence[tuple[str, str]], attributes: Sequence[str], consistent: bool
    ) -> dict[tuple[str, str], dict[str, Any]]:
        return batch_get(self.dynamodb, self.table, wanted, attributes, consistent=consistent, sleep=self.sleep)

    def _query_prefix(self, pk: str, prefix: str, *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        return query_prefix(self.dynamodb, self.table, pk, prefix, *args, **kwargs)

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
