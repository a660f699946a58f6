"""What the merge's dead-letter queue holds, by run, and re-merging those runs (``lineage-intake dlq``).

``redrive`` merges each named run (or dataset, or job) again from all of its stored events, which is what the
failed stream batch would have done, and deletes a message only when every target of it merged. A message
whose records cannot be read back any more stays, with the reason. docs/operations.md#the-dead-letter-queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lineage_intake.service.merge import MergeOutcome, MergeService
from lineage_intake.store.deadletter import DeadLetter, DeadLetterStore


@dataclass(frozen=True)
class Target:
    """What a stream record makes the merge merge: a run, a dataset or a job."""

    kind: str
    namespace: str
    name: str
    run_id: str | None = None

    def label(self) -> str:
        return f"{self.kind.lower()} {self.namespace}/{self.name}" + (f" {self.run_id}" if self.run_id else "")


def targets_of(letter: DeadLetter) -> list[Target]:
    found: dict[Target, None] = {}
    for image in letter.images:
        kind, namespace = image.get("kind"), image.get("namespace")
        if kind == "RUN" and image.get("job") and image.get("runId"):
            found[Target("RUN", str(namespace), str(image["job"]), str(image["runId"]))] = None
        elif kind == "DATASET" and image.get("dataset"):
            found[Target("DATASET", str(namespace), str(image["dataset"]))] = None
        elif kind == "JOB" and image.get("job"):
            found[Target("JOB", str(namespace), str(image["job"]))] = None
    return list(found)


def remerge(merge: MergeService, target: Target) -> MergeOutcome:
    """The one call into the merge service (adapt here if its entry points change)."""
    if target.kind == "RUN":
        assert target.run_id is not None
        return merge.merge_run(target.namespace, target.name, target.run_id)
    if target.kind == "DATASET":
        return merge.merge_dataset(target.namespace, target.name)
    return merge.merge_job(target.namespace, target.name)


@dataclass
class Letter:
    message_id: str
    condition: str | None
    batch_size: int | None
    targets: list[Target]
    unreadable: str | None
    results: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "messageId": self.message_id,
            "condition": self.condition,
            "batchSize": self.batch_size,
            "targets": [t.label() for t in self.targets],
            "unreadable": self.unreadable,
            "results": self.results,
            "deleted": self.deleted,
        }


@dataclass
class DeadLetters:
    store: DeadLetterStore
    merge: MergeService | None = None

    def inspect(self, limit: int = 100) -> list[Letter]:
        raws = list(self.store.messages(limit))  # all received first: a released message is not seen twice
        letters = [self._describe(raw) for raw in raws]
        for raw in raws:
            self.store.release(raw)
        return letters

    def redrive(self, limit: int = 100) -> list[Letter]:
        assert self.merge is not None
        letters, kept = [], []
        for raw in list(self.store.messages(limit)):
            letter = self._describe(raw)
            if letter.unreadable is None:
                ok = True
                for target in letter.targets:
                    try:
                        outcome = remerge(self.merge, target)
                        status = outcome.status
                        ok = ok and status != "failed"
                    except Exception as exc:  # report and keep the message
                        status, ok = f"failed: {type(exc).__name__}: {exc}", False
                    letter.results.append({"target": target.label(), "status": status})
                if ok:
                    self.store.delete(raw)
                    letter.deleted = True
            if not letter.deleted:
                kept.append(raw)
            letters.append(letter)
        for raw in kept:
            self.store.release(raw)
        return letters

    def _describe(self, raw: DeadLetter) -> Letter:
        self.store.read_back(raw)
        context = raw.body.get("requestContext", {}) if isinstance(raw.body.get("requestContext"), dict) else {}
        return Letter(
            message_id=raw.message_id,
            condition=context.get("condition"),
            batch_size=raw.batch.get("batchSize"),
            targets=targets_of(raw),
            unreadable=raw.unreadable,
        )
