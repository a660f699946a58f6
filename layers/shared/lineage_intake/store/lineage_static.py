"""The Lineage table's shared write machinery and its static lineage (JobEvents, DatasetEvents, registration).

``LineageStore`` (``store.lineage``) inherits them and adds the run merges; why writes are versioned and
fenced: docs/merge.md, "Concurrency".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lineage_intake import keys
from lineage_intake.errors import ConflictError, DuplicateItem
from lineage_intake.lineage import ColumnEdge, Edge, Ref, content_hash
from lineage_intake.static_lineage import DatasetDefinition, JobDefinition
from lineage_intake.store.dynamo import (
    Action,
    Guard,
    Transaction,
    Update,
    WriteCounts,
    approximate_size,
    chunks,
    delete_action,
    dynamo_errors,
    newer_or_changed,
    to_item,
    update_action,
)
from lineage_intake.store.lineage_items import (
    DATASET_SK,
    JOB_SK,
    column_item,
    column_sk,
    dataset_identity,
    edge_item,
    edge_sk,
    job_identity,
    namespace_item,
    stored_hash,
)
from lineage_intake.store.lineage_reads import LineageReader


class Superseded(ConflictError):
    """A newer merge of the same run has already written its run item: this merge stops writing."""


class TakenOver(ConflictError):
    """While a merge was writing a job's edges, a newer run (or newer JobEvents) claimed the job section."""


# ---------------------------------------------------------------------------------------------- results
@dataclass
class WriteResult(WriteCounts):
    """What a merge wrote: the counts of its log line, and what the merge service reports about the run."""

    superseded: bool = False
    latest_run: bool | None = None
    previous_state: str | None = None
    lineage_changed: bool = False


class LineageWrites(LineageReader):
    """Writes shared by the run merges and the static lineage."""

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
        """Claim the static section of the job item (JobEvents), then bring its edge items in line (replaced, no
        history: a JobEvent states the job's whole static lineage). False: a newer writer owns it."""
        job_pk = keys.job_key(job.namespace, job.name)
        source = "R" if section == "run" else "S"
        version_attr, hash_attr = f"{section}Version", f"{section}Hash"
        wanted = {edge_sk(e, source): edge_item(job_pk, e, source) for e in edges}
        wanted |= {column_sk(c, source): column_item(job_pk, c, source) for c in column_edges}
        digest = content_hash([content, sorted((sk, item["contentHash"]) for sk, item in wanted.items())])
        stored = self._get(job_pk, JOB_SK, [version_attr, hash_attr])
        if stored is None:
            result.written += self._create_if_absent(namespace_item(job.namespace, merged_at))
        have = str(stored.get(version_attr, "")) if stored else ""
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
                    **job_identity(job.namespace, job.name),
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
        except TakenOver:
            return False
        return True

    def _ensure_datasets(self, refs: Iterable[Ref], result: WriteResult, merged_at: str) -> None:
        """Datasets named by static lineage exist at least as partial assets."""
        wanted = {keys.dataset_key(r.namespace, r.name): r for r in refs}
        stored = self._batch_get([(pk, DATASET_SK) for pk in wanted], ["pk"], consistent=True)
        listed: set[str] = set()  # one create-only namespace item per namespace, not per dataset
        for pk, ref in sorted(wanted.items()):
            if (pk, DATASET_SK) in stored:
                result.unchanged += 1
                continue
            if ref.namespace not in listed:
                listed.add(ref.namespace)
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

    def _transact(
        self, actions: list[Action], guards: list[Guard], result: WriteResult, seal: Guard | None = None
    ) -> None:
        """Write in chunks, each fenced by the guards. ``seal``, a guard that writes (``Guard.sets``), is made
        last: with the last chunk, in place of the guard of its item (no extra action), or alone when there is
        nothing else to write. A failed guard raises ``Superseded`` (run guard) or ``TakenOver`` (job guard: a
        newer run or JobEvent now owns the section)."""
        parts = list(chunks(actions))
        if seal is not None and not parts:
            try:
                with dynamo_errors():
                    self.dynamodb.update_item(**seal.update(self.table).body)
            except DuplicateItem:
                raise _lost(seal) from None
            return
        for i, chunk in enumerate(parts):
            fence = guards
            if seal is not None and i == len(parts) - 1:
                fence = [seal, *(g for g in guards if (g.pk, g.sk) != (seal.pk, seal.sk))]
            failed = Transaction(self.dynamodb, self.table, chunk, fence, result, self.sleep).run()
            if failed is not None:
                raise _lost(failed)

    def _update_if(self, action: Action) -> int:
        """One conditional UpdateItem on its own; 0 when its condition (a newer or earlier value) refused it."""
        try:
            with dynamo_errors():
                self.dynamodb.update_item(**action.body)
            return 1
        except DuplicateItem:
            return 0


def _lost(guard: Guard) -> ConflictError:
    """What a failed guard means: a newer writer owns the job's section, or a newer merge of the run is stored."""
    if guard.sk == JOB_SK:
        return TakenOver(f"a newer writer claimed {guard.attribute}")
    return Superseded("a newer merge of this run has been written")
