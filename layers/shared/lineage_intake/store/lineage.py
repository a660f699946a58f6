"""The Lineage table: merged runs, jobs, datasets and their edges, in one table (single-table design).

Key patterns (names only as digests), one query per read use case, and why writes never let an older result
overwrite a newer one (versions, claims, guards): docs/merge.md, "Lineage table".
The DynamoDB mechanics are in ``store.dynamo``, the item layout in ``store.lineage_items``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from typing import Any

from lineage_intake import keys
from lineage_intake.errors import DuplicateItem
from lineage_intake.lineage import RunRef, content_hash
from lineage_intake.merge import Checkpoint, MergedRun
from lineage_intake.store.dynamo import (
    Action,
    Guard,
    Update,
    approximate_size,
    delete_action,
    dynamo_errors,
    key,
    newer_or_changed,
    to_item,
    update_action,
)
from lineage_intake.store.lineage_items import (
    AWAITING_START,
    CHECKPOINT_SUFFIX,
    CHILD_INDEX,
    DATASET_SK,
    DATASET_UI_ATTRIBUTES,
    JOB_SK,
    checkpoint_item,
    child_link_suffix,
    column_item,
    column_sk,
    dataset_identity,
    dataset_ui_changes,
    edge_item,
    edge_sk,
    job_identity,
    namespace_item,
    read_checkpoint,
    run_item,
    run_sk,
    tag_item,
    version_order,
)
from lineage_intake.store.lineage_quality import write_quality
from lineage_intake.store.lineage_static import LineageWrites, Superseded, TakenOver, WriteResult


@dataclass
class StoredRun:
    """What the run's partition holds for one job: its run item (or None) and its checkpoint (or None)."""

    item: dict[str, Any] | None = None
    checkpoint: Checkpoint | None = None
    checkpoint_version: str = ""

    @property
    def state(self) -> str | None:
        return None if self.item is None or self.item.get("placeholder") else self.item.get("state")

    @property
    def start_missing(self) -> bool:
        return bool(self.item and self.item.get("startMissing"))


#: A merge's dataset and schema-version writes run on at most this many threads. Each is one round trip
#: conditional on its own item, so they overlap freely; 8 stays under botocore's default connection pool (10)
#: of the one client the merge passes in, so no thread waits for or discards a connection (docs/merge.md,
#: "Parallel dataset writes"). boto3's low-level clients are thread-safe.
DATASET_WRITE_THREADS = 8
#: Fewer datasets to write than this are written one after the other: a run of a handful of datasets (most
#: runs) saves a few milliseconds at most, and starts no threads.
PARALLEL_DATASET_WRITES = 8

#: One write of a merge: called, it makes its request and says how many items it wrote (0: its condition refused).
Write = Callable[[], int]


# ---------------------------------------------------------------------------------------------- store
class LineageStore(LineageWrites):
    """Repository of the Lineage table. The client is passed in, so it runs on moto and on AWS alike.

    ``time_index``: write the run item's gsi3 keys (the read API's time index; +1 write unit per run).
    ``write_threads``: how many of a merge's dataset writes may be in flight at once (1: one after the other).
    """

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        sleep: Callable[[float], None] = time.sleep,
        time_index: bool = True,
        write_threads: int = DATASET_WRITE_THREADS,
    ) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.sleep = sleep
        self.time_index = time_index
        self.write_threads = write_threads

    # ================================================================== run merges
    def read_run(self, namespace: str, job: str, run_id: str) -> StoredRun:
        """The run item and checkpoint of one (job, runId): one eventually consistent Query (a stale answer is
        safe: writes are conditional, and an older checkpoint only makes the merge read more events)."""
        stored = StoredRun()
        sk = run_sk(namespace, job)
        for item in self._query_prefix(keys.run_key(run_id), sk, consistent=False):
            if item["sk"] == sk:
                stored.item = item
            elif item["sk"] == sk + CHECKPOINT_SUFFIX:
                stored.checkpoint = read_checkpoint(item)
                stored.checkpoint_version = str(item.get("mergeVersion", ""))
        return stored

    def write_run(self, run: MergedRun, merged_at: str, stored: StoredRun | None = None) -> WriteResult:
        """Write a merged run: its run item (conditional on itself), its checkpoint, and only when they change,
        its job's lineage, its datasets and its parent link (docs/merge.md, "Who writes what, when").

        Raises ``StorageUnavailable`` when storage throttles; a newer merge that got there first is not an
        error: the result says ``superseded``.
        """
        stored = stored if stored is not None else self.read_run(run.namespace, run.job, run.run_id)
        result = WriteResult(previous_state=stored.state)
        item = run_item(run, merged_at, time_index=self.time_index)
        stored_version = str(stored.item.get("mergeVersion", "")) if stored.item else ""
        if stored_version > run.merge_version:
            result.superseded = True
            return result
        if (
            stored.item is not None
            and stored_version == run.merge_version
            and (stored.item.get("contentHash") == item["contentHash"])
        ):
            result.unchanged += 1
        elif run.status != "pending":
            if run.data_quality:  # before the run item: a retry that finds the run unchanged would skip it
                written, skipped = write_quality(self.dynamodb, self.table, run)
                result.written, result.skipped_newer = result.written + written, result.skipped_newer + skipped
            try:
                self._put_versioned(item, "contentHash")
            except DuplicateItem:
                result.superseded = True
                return result
            result.written += 1
        self._write_checkpoint(run, stored, result)
        if not run.builds_lineage:
            return result
        try:
            self._write_job_lineage(run, merged_at, result)
            self._write_parent(run, stored, result)
        except Superseded:
            result.superseded = True
        return result

    def _put_versioned(self, item: dict[str, Any], hash_attr: str | None) -> None:
        """Put over no item, an older ``mergeVersion`` or (with ``hash_attr``) the same one with other content."""
        if hash_attr:
            condition, names, values = newer_or_changed(
                "mergeVersion", hash_attr, item["mergeVersion"], item[hash_attr]
            )
        else:
            condition = "attribute_not_exists(#v) OR #v < :v"
            names, values = {"#v": "mergeVersion"}, {":v": {"S": item["mergeVersion"]}}
        with dynamo_errors(duplicate_message="a newer merge of this run is stored"):
            self.dynamodb.put_item(
                TableName=self.table,
                Item=to_item(item),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )

    def _write_checkpoint(self, run: MergedRun, stored: StoredRun, result: WriteResult) -> None:
        """Kept while the run is open; a final merge removes it (a late event then re-reads the run whole)."""
        item = checkpoint_item(run)
        if item is None and stored.checkpoint_version and run.status in ("merged", "awaiting_start"):
            condition = "#v <= :v"
            names, values = {"#v": "mergeVersion"}, {":v": {"S": run.merge_version}}
            try:
                with dynamo_errors():
                    self.dynamodb.delete_item(
                        TableName=self.table,
                        Key=key(keys.run_key(run.run_id), run_sk(run.namespace, run.job) + CHECKPOINT_SUFFIX),
                        ConditionExpression=condition,
                        ExpressionAttributeNames=names,
                        ExpressionAttributeValues=values,
                    )
                result.deleted += 1
            except DuplicateItem:
                result.skipped_newer += 1
            return
        if item is None or stored.checkpoint_version >= run.merge_version:
            return
        try:
            self._put_versioned(item, None)
            result.written += 1
        except DuplicateItem:
            result.skipped_newer += 1

    # ------------------------------------------------------------------ job lineage
    def _write_job_lineage(self, run: MergedRun, merged_at: str, result: WriteResult) -> None:
        """The job's current lineage follows its latest run that reported datasets; a run without datasets never
        touches it. The job item's ``lineageDigest`` tells, from one GetItem, whether anything changed; it is
        written last (the seal), so a merge that failed midway is resumed by its retry, not skipped."""
        job_pk = keys.job_key(run.namespace, run.job)
        job = self._get(job_pk, JOB_SK, ["lineageVersion", "lineageDigest", "placeholder"], consistent=False)
        listed: set[str] = set()  # namespaces whose item this merge has created (or found) already
        if job is None:  # the job's creation: its namespace is listed from now on (read API)
            result.written += self._create_if_absent(namespace_item(run.namespace, merged_at))
            listed.add(run.namespace)
        if not run.has_lineage:
            if job is None or job.get("placeholder"):
                self._create_job(run, merged_at, result)
            else:
                result.unchanged += 1
            return
        version = f"{run.order}#{run.merge_version}"
        have = str(job.get("lineageVersion", "")) if job else ""
        digest = run.lineage_digest()
        if version_order(have) > run.order:
            # An older run merged late: the newer run's lineage stays current; this one's edges, datasets and
            # schemas are recorded as history, as if it had been merged in order (rare: runs out of order).
            result.latest_run = False
            self._write_history(run, job_pk, result)
            self._write_datasets(run, result, listed)
            return
        result.latest_run = True
        if job is not None and job.get("lineageDigest") == digest:
            result.unchanged += 1  # steady state: same edges, same schemas; lastSeen is derived at read
            return
        if have > version:
            raise Superseded("a newer merge of this run has claimed the job")
        # Claimed without a digest (pending), sealed with it by the last write: a merge that fails in between
        # leaves its claim pending, and its retry resumes it (docs/merge.md, "Concurrency").
        resumed = have == version
        if not resumed:
            claim = Update(
                sets={
                    **job_identity(run.namespace, run.job),
                    **run.job_content(),
                    "lineageVersion": version,
                    "mergedAt": merged_at,
                },
                removes=["placeholder", "lineageDigest"],
            )
            # The same version too: a stale read may not show this version's pending claim (rewrites are idempotent).
            condition = (
                "attribute_not_exists(#lv) OR #lv <= :lv",
                {"#lv": "lineageVersion"},
                {":lv": {"S": version}},
            )
            try:
                with dynamo_errors():
                    self.dynamodb.update_item(**update_action(self.table, job_pk, JOB_SK, claim, condition).body)
            except DuplicateItem:
                result.skipped_newer += 1  # a newer run claimed the job between our read and our write
                return
            result.written += 1
        result.lineage_changed = True
        self._write_tags(run, result)
        # Datasets before the edges: the seal goes with the last edges, and nothing may be left after it.
        self._write_datasets(run, result, listed)
        guard = Guard(job_pk, JOB_SK, "lineageVersion", version)
        seal = Guard(job_pk, JOB_SK, "lineageVersion", version, sets={"lineageDigest": digest})
        try:
            self._write_edges(run, job_pk, have, guard, result, seal)
        except TakenOver:
            return
        if resumed:
            result.written += 1  # the job item: this merge made no claim, its seal completed the item

    def _write_edges(
        self, run: MergedRun, job_pk: str, previous: str, guard: Guard, result: WriteResult, seal: Guard
    ) -> None:
        """New edges become current (firstSeen written once); edges the run no longer reports become history
        (``current: false``, lastSeen of the latest earlier run with lineage); column edges are replaced. The
        job's ``seal`` (its lineageDigest) is written last, with the last transaction."""
        existing = {i["sk"]: i for i in self._query_prefix(job_pk, "EDGE#R#", ["sk", "current", "contentHash"])}
        wanted = {edge_sk(e, "R"): edge_item(job_pk, e, "R") for e in run.edges()}
        actions: list[Action] = []
        for sk, item in sorted(wanted.items()):
            current = existing.get(sk)
            if current is None:
                full = {**item, "current": True, "firstSeen": run.sort_time, "firstRun": run.run_id}
                actions.append(Action("Put", {"TableName": self.table, "Item": to_item(full)}, approximate_size(full)))
            elif current.get("current") is not True:
                revive = Update(sets={"current": True, "lastSeen": None, "lastRun": None})
                actions.append(update_action(self.table, job_pk, sk, revive))
            else:
                result.unchanged += 1
        dropped = [sk for sk, i in sorted(existing.items()) if sk not in wanted and i.get("current") is True]
        if dropped:
            seen = self._last_lineage_run(run, previous)
            for sk in dropped:
                history = Update(sets={"current": False, "lastSeen": seen[0], "lastRun": seen[1]})
                actions.append(update_action(self.table, job_pk, sk, history))
        columns = {i["sk"]: i for i in self._query_prefix(job_pk, "COL#R#", ["sk", "contentHash"])}
        wanted_columns = {column_sk(c, "R"): column_item(job_pk, c, "R") for c in run.column_edges()}
        for sk, item in sorted(wanted_columns.items()):
            if columns.get(sk, {}).get("contentHash") == item["contentHash"]:
                result.unchanged += 1
                continue
            actions.append(Action("Put", {"TableName": self.table, "Item": to_item(item)}, approximate_size(item)))
        actions += [delete_action(self.table, job_pk, sk) for sk in sorted(set(columns) - set(wanted_columns))]
        self._transact(actions, [guard], result, seal)

    def _last_lineage_run(self, run: MergedRun, previous: str) -> tuple[str, str | None]:
        """(lastEventTime, runId) of the job's latest run before this one that reported datasets: when the edges
        this run drops were last seen. Read newest first from gsi1, on this rare path only."""
        job_pk = keys.job_key(run.namespace, run.job)
        for item in self._query_prefix(job_pk, "RUN#", index="gsi1", forward=False):
            if str(item.get("gsi1sk", "")) >= f"RUN#{run.order}":
                continue
            if item.get("hasLineage"):
                return str(item.get("lastEventTime") or item["gsi1sk"][4:31]), item.get("runId")
        return version_order(previous).partition("#")[0] or run.sort_time, version_order(previous).partition("#")[2]

    def _write_history(self, run: MergedRun, job_pk: str, result: WriteResult) -> None:
        """An older run's edges: created as history when absent, ``firstSeen`` moved back and a history edge's
        ``lastSeen`` moved forward when this run is earlier or later. Each write conditional on itself."""
        existing = {
            i["sk"]: i for i in self._query_prefix(job_pk, "EDGE#R#", ["sk", "current", "firstSeen", "lastSeen"])
        }
        for edge in run.edges():
            item = edge_item(job_pk, edge, "R")
            current = existing.get(item["sk"])
            if current is None:
                seen = {"firstSeen": run.sort_time, "firstRun": run.run_id}
                history = {**item, "current": False, **seen, "lastSeen": run.last_event_time, "lastRun": run.run_id}
                result.written += self._create_if_absent(history)
                continue
            if str(current.get("firstSeen", "")) > run.sort_time:
                moved = Update(sets={"firstSeen": run.sort_time, "firstRun": run.run_id})
                condition = ("#f > :f", {"#f": "firstSeen"}, {":f": {"S": run.sort_time}})
                result.written += self._update_if(update_action(self.table, job_pk, item["sk"], moved, condition))
            if current.get("current") is not True and str(current.get("lastSeen", "")) < run.last_event_time:
                moved = Update(sets={"lastSeen": run.last_event_time, "lastRun": run.run_id})
                condition = ("#l < :l", {"#l": "lastSeen"}, {":l": {"S": run.last_event_time}})
                result.written += self._update_if(update_action(self.table, job_pk, item["sk"], moved, condition))

    def _write_datasets(self, run: MergedRun, result: WriteResult, listed: set[str]) -> None:
        """Each dataset of the run exists (partial until defined); its schema and symlinks follow the latest run
        that reported them (``schemaVersion``); each distinct schema has one version item with the first run
        that reported it. Each write is conditional on itself, so no transaction is needed, and the datasets
        are written side by side (``_run_writes``); one dataset's writes stay in order (below)."""
        wanted = {keys.dataset_key(v.ref.namespace, v.ref.name): v for v in run.datasets}
        markers = ["schemaDigest", "schemaVersion", "createdAt", *DATASET_UI_ATTRIBUTES]
        stored = self._batch_get([(pk, DATASET_SK) for pk in wanted], markers, consistent=True)
        # Per dataset, in this order: its namespace item, createdAt moved back, its tag listings and its schema
        # version, then the dataset item: the marker a retry reads (finding it written, it skips the others).
        writes: list[list[Write]] = []
        for pk, view in sorted(wanted.items()):  # one create-only namespace item per namespace, not per dataset
            current = stored.get((pk, DATASET_SK))
            mine: list[Write] = []
            writes.append(mine)
            if current is None and view.ref.namespace not in listed:
                listed.add(view.ref.namespace)
                mine.append(partial(self._create_if_absent, namespace_item(view.ref.namespace, run.last_event_time)))
            if current is not None and str(current.get("createdAt") or "~") > run.first_event_time:
                mine.append(partial(self._update_if, self._created_back_action(pk, run.first_event_time)))
            ui = dataset_ui_changes(view, current)
            mine += [partial(self._create_if_absent, tag_item(tag)) for tag in ui.get("tags") or ()]
            sets: dict[str, Any] = dict(dataset_identity(view.ref.namespace, view.ref.name)) | ui
            condition = None
            if view.fields is not None or view.symlinks is not None:
                digest = content_hash({"fields": view.fields, "symlinks": view.symlinks})
                have = str(current.get("schemaVersion", "")) if current else ""
                # The run's order and this merge's version: a later merge of the same run (a streaming run, a
                # late event) that reports another schema replaces the one its earlier merge wrote.
                version = f"{run.order}#{run.merge_version}"
                if view.fields is not None and (have > version or not current or current.get("schemaDigest") != digest):
                    mine.append(partial(self._update_if, self._version_action(pk, view, digest, run)))
                if current is not None and (current.get("schemaDigest") == digest or have > version):
                    self._dataset_ui_write(pk, ui, mine, result)
                    continue
                sets |= {
                    "fields": [dict(f) for f in view.fields] if view.fields is not None else None,
                    "symlinks": [dict(s) for s in view.symlinks] if view.symlinks is not None else None,
                    "schemaDigest": digest,
                    "schemaVersion": version,
                }
                condition = (
                    "attribute_not_exists(#sv) OR #sv < :sv",
                    {"#sv": "schemaVersion"},
                    {":sv": {"S": version}},
                )
            elif current is not None:
                self._dataset_ui_write(pk, ui, mine, result)
                continue
            update = Update(sets=sets, set_if_absent={"partial": True, "createdAt": run.first_event_time})
            mine.append(partial(self._update_if, update_action(self.table, pk, DATASET_SK, update, condition)))
        result.written += self._run_writes([w for w in writes if w])

    def _run_writes(self, groups: Sequence[Sequence[Write]]) -> int:
        """Make the writes of each group in order, the groups side by side on at most ``write_threads`` threads
        (a pool for this merge only; fewer than ``PARALLEL_DATASET_WRITES`` groups: none). Returns the items
        written. The first write that fails fails the merge once the writes in flight have finished (the
        groups not started are not): no write outlives the merge (what its retry redoes: docs/merge.md,
        "Parallel dataset writes")."""
        if self.write_threads <= 1 or len(groups) < PARALLEL_DATASET_WRITES:
            return sum(_in_order(group) for group in groups)
        with ThreadPoolExecutor(min(self.write_threads, len(groups)), thread_name_prefix="lineage-write") as pool:
            futures = [pool.submit(_in_order, group) for group in groups]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                future.cancel()  # only the ones not started yet: the pool's exit waits for the rest
        errors = {f: e for f in futures if not f.cancelled() and (e := f.exception()) is not None}
        if errors:
            error = next(e for f, e in errors.items() if f in done)  # the failure that stopped the pool
            if len(errors) > 1:
                error.add_note(f"{len(errors) - 1} other dataset writes of this merge failed too")
            raise error
        return sum(f.result() for f in futures)

    def _created_back_action(self, pk: str, first_event_time: str) -> Action:
        """``createdAt`` is the earliest first event of the runs that reported the dataset, whatever order they
        (or a streaming run's events) were merged in: a later merge that saw earlier events moves it back. Rare:
        only out-of-order arrivals write."""
        update = Update(sets={"createdAt": first_event_time})
        condition = ("attribute_not_exists(#c) OR #c > :c", {"#c": "createdAt"}, {":c": {"S": first_event_time}})
        return update_action(self.table, pk, DATASET_SK, update, condition)

    def _dataset_ui_write(self, pk: str, ui: dict[str, Any], writes: list[Write], result: WriteResult) -> None:
        """Tags or column-lineage fields that changed while the schema did not: one update, rare (the last merged
        run that reports them wins). Nothing changed: no write."""
        if not ui:
            result.unchanged += 1
            return
        update = Update(sets=ui)
        condition: tuple[str, dict[str, str], dict[str, Any]] = ("attribute_exists(pk)", {}, {})
        writes.append(partial(self._update_if, update_action(self.table, pk, DATASET_SK, update, condition)))

    def _version_action(self, pk: str, view: Any, digest: str, run: MergedRun) -> Action:
        """One item per distinct schema of a dataset; ``firstSeen``/``firstRun``: the earliest run that had it."""
        update = Update(
            sets={
                "type": "datasetVersion",
                "namespace": view.ref.namespace,
                "name": view.ref.name,
                "fields": [dict(f) for f in view.fields],
                "schemaDigest": digest,
                "firstSeen": run.sort_time,
                "firstRun": {"namespace": run.namespace, "job": run.job, "runId": run.run_id},
                # Marquez's dataset version lifecycleState: the facet of the run that made the version, or none.
                "lifecycleState": view.lifecycle_state,
            }
        )
        condition = ("attribute_not_exists(#f) OR #f > :f", {"#f": "firstSeen"}, {":f": {"S": run.sort_time}})
        return update_action(self.table, pk, f"VER#{digest}", update, condition)

    def _create_job(self, run: MergedRun, merged_at: str, result: WriteResult) -> None:
        """The job of a run without datasets exists, without lineage (a placeholder becomes a job)."""
        update = Update(
            sets={**job_identity(run.namespace, run.job), **run.job_content()},
            removes=["placeholder"],
        )
        values: dict[str, Any] = {}
        condition = ("attribute_not_exists(#lv)", {"#lv": "lineageVersion"}, values)
        try:
            with dynamo_errors():
                self.dynamodb.update_item(
                    **update_action(self.table, keys.job_key(run.namespace, run.job), JOB_SK, update, condition).body
                )
            result.written += 1
            self._write_tags(run, result)
        except DuplicateItem:
            result.unchanged += 1

    def _write_tags(self, run: MergedRun, result: WriteResult) -> None:
        """A create-only listing item per tag name, on the rare path where the job item changes (its tags are in
        the lineage digest): ``/tags`` is one Query."""
        for tag in run.tags or ():
            result.written += self._create_if_absent(tag_item(tag))

    # ------------------------------------------------------------------ parents
    def _write_parent(self, run: MergedRun, stored: StoredRun, result: WriteResult) -> None:
        """The child link under the parent run, written when the run first builds lineage or changes parent, with
        create-only placeholders for a parent run and job not seen yet (no read: a failed create costs a write).

        A parent in a namespace that the run's tokens could not write (``parent_closed``) gets neither: the run
        item's gsi4 keys index the child under its parent instead (docs/auth.md, "Namespaces stay closed")."""
        old = stored.item.get("parent") if stored.item else None
        new = run.parent.as_dict() if run.parent else None
        indexed = bool(stored.item and stored.item.get("gsi4pk"))  # the old link was the run item's gsi4 keys
        already = stored.state not in (None, AWAITING_START) and old == new and indexed == run.parent_closed
        if already:
            return
        if not indexed and isinstance(old, Mapping) and old.get("runId") and (old != new or run.parent_closed):
            # The link is this run's own record: removing it changes nothing the parent's namespace wrote.
            self._delete(keys.run_key(str(old["runId"])), child_sk(run, RunRef(old["namespace"], old["job"], None)))
            result.deleted += 1
        parent = run.parent
        if parent is None or run.parent_closed:
            return
        if parent.run_id is not None:
            link = {"pk": keys.run_key(parent.run_id), "sk": child_sk(run, parent), "type": "child"}
            result.written += self._create_if_absent(
                {**link, "namespace": run.namespace, "job": run.job, "runId": run.run_id}
            )
            placeholder = {
                "pk": keys.run_key(parent.run_id),
                "sk": run_sk(parent.namespace, parent.job),
                "type": "run",
                "namespace": parent.namespace,
                "job": parent.job,
                "runId": parent.run_id,
                "state": "PLACEHOLDER",
                "placeholder": True,
            }
            result.written += self._create_if_absent(placeholder)
        job_placeholder = {
            "pk": keys.job_key(parent.namespace, parent.job),
            "sk": JOB_SK,
            **job_identity(parent.namespace, parent.job),
            "placeholder": True,
        }
        if self._create_if_absent(job_placeholder):
            result.written += 1 + self._create_if_absent(namespace_item(parent.namespace, run.last_event_time))


def _in_order(group: Sequence[Write]) -> int:
    return sum(write() for write in group)


def child_sk(child: MergedRun, parent: RunRef) -> str:
    """A child link's sort key under its parent's runId: parent job first, so a job's children are one prefix."""
    return CHILD_INDEX + child_link_suffix(parent.namespace, parent.job, child.run_id, child.namespace, child.job)
