"""``jobs delete``, ``datasets delete``, ``namespaces delete``: remove lineage records and raw events.

For cleanup and data-protection requests (docs/operations.md#retention-and-deletion). What goes:

- a job: its Lineage partition (the job record, its edges and column edges), every run partition of the job
  (merged runs from gsi1, and any run that has stored events), the raw events of its runs and its JobEvents
  (with their S3 bodies), and the quarantined events that name it;
- a dataset: its Lineage partition, the edges that jobs hold about it (found through gsi1), its DatasetEvents
  and their bodies; the runs that read or wrote it keep their run records (they are the jobs' history);
- a namespace: every job and dataset of the namespace, as above.

A run of another job that was this job's parent keeps a child link to a run that no longer exists; a later
merge of the parent drops it. Deletes are not transactional: a failure midway leaves part of the data, and
running the command again finishes it (every step is idempotent).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lineage_intake import keys
from lineage_intake.store.quarantine import KIND as REJECTED
from lineage_intake.store.retention import RetentionStore


@dataclass
class Removed:
    what: str
    lineage_records: int = 0
    runs: int = 0
    events: int = 0
    bodies: int = 0
    quarantined: int = 0
    names: list[str] = field(default_factory=list)

    def add(self, other: Removed) -> None:
        self.lineage_records += other.lineage_records
        self.runs += other.runs
        self.events += other.events
        self.bodies += other.bodies
        self.quarantined += other.quarantined
        self.names += [other.what]

    def as_dict(self) -> dict[str, Any]:
        return {
            "removed": self.what,
            "lineageRecords": self.lineage_records,
            "runs": self.runs,
            "events": self.events,
            "s3Bodies": self.bodies,
            "quarantinedEvents": self.quarantined,
            **({"parts": self.names} if self.names else {}),
        }


@dataclass
class Retention:
    store: RetentionStore
    events_table: str
    lineage_table: str

    # ------------------------------------------------------------------ what would go (for the confirmation)
    def job_runs(self, namespace: str, job: str) -> set[str]:
        """Run ids of a job: merged (gsi1 of the job) and stored (events naming the job)."""
        runs = {
            str(i["runId"])
            for i in self.store.index_partition(self.lineage_table, "gsi1", keys.job_key(namespace, job))
            if "runId" in i
        }
        for item in self.store.scan_keys(self.events_table, {"namespace": namespace, "job": job}):
            if item.get("kind") == "RUN" and item.get("runId"):
                runs.add(str(item["runId"]))
        return runs

    def namespace_members(self, namespace: str) -> tuple[set[str], set[str]]:
        """The jobs and datasets of a namespace, from both tables."""
        jobs: set[str] = set()
        datasets: set[str] = set()
        for table in (self.events_table, self.lineage_table):
            for item in self.store.scan_keys(table, {"namespace": namespace}):
                if item.get("kind") in ("RUN", "JOB", REJECTED) or item.get("type") == "run":
                    jobs.add(str(item.get("job")))
                elif item.get("type") == "job":
                    jobs.add(str(item.get("name")))
                if item.get("kind") == "DATASET" or item.get("type") == "dataset":
                    datasets.add(str(item.get("dataset") or item.get("name")))
        jobs.discard("None")
        datasets.discard("None")
        return jobs, datasets

    # ------------------------------------------------------------------ deletes
    def delete_job(self, namespace: str, job: str) -> Removed:
        removed = Removed(what=f"job {namespace}/{job}")
        runs = self.job_runs(namespace, job)
        lineage_keys = self._keys(self.store.partition(self.lineage_table, keys.job_key(namespace, job)))
        event_items: list[dict[str, Any]] = list(self.store.partition(self.events_table, keys.job_pk(namespace, job)))
        job_pk = keys.job_key(namespace, job)
        for run_id in runs:
            # A runId's partition may hold runs of other jobs: take this job's run item, its checkpoint and the
            # child links it is the parent of (docs/merge.md).
            run_items = self.store.partition(self.lineage_table, keys.run_key(run_id))
            mine = [i for i in run_items if str(i.get("sk", "")).startswith((job_pk, f"CHILD#{job_pk}"))]
            lineage_keys += self._keys(mine)
            event_items += self.store.partition(self.events_table, keys.run_pk(namespace, job, run_id))
        rejected = [
            i
            for i in self.store.scan_keys(self.events_table, {"namespace": namespace, "job": job})
            if i.get("kind") == REJECTED
        ]
        removed.runs = len(runs)
        removed.bodies = self.store.delete_objects(self._refs([*event_items, *rejected]))
        removed.events = self.store.delete(self.events_table, self._keys(event_items))
        removed.quarantined = self.store.delete(self.events_table, self._keys(rejected))
        removed.lineage_records = self.store.delete(self.lineage_table, lineage_keys)
        return removed

    def delete_dataset(self, namespace: str, name: str) -> Removed:
        removed = Removed(what=f"dataset {namespace}/{name}")
        dataset_key = keys.dataset_key(namespace, name)
        lineage_keys = self._keys(self.store.partition(self.lineage_table, dataset_key))
        lineage_keys += self._keys(self.store.index_partition(self.lineage_table, "gsi1", dataset_key))
        event_items = list(self.store.partition(self.events_table, keys.dataset_pk(namespace, name)))
        removed.bodies = self.store.delete_objects(self._refs(event_items))
        removed.events = self.store.delete(self.events_table, self._keys(event_items))
        removed.lineage_records = self.store.delete(self.lineage_table, lineage_keys)
        return removed

    def delete_namespace(self, namespace: str) -> Removed:
        removed = Removed(what=f"namespace {namespace}")
        jobs, datasets = self.namespace_members(namespace)
        for job in sorted(jobs):
            removed.add(self.delete_job(namespace, job))
        for dataset in sorted(datasets):
            removed.add(self.delete_dataset(namespace, dataset))
        return removed

    @staticmethod
    def _keys(items: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(str(i["pk"]), str(i["sk"])) for i in items]

    @staticmethod
    def _refs(items: Iterable[dict[str, Any]]) -> list[str]:
        return [str(i["bodyRef"]) for i in items if i.get("bodyRef")]
