"""A merge that failed half-way is completed by its retry (issue 13, docs/merge.md "Concurrency"): the job's
lineage is claimed pending and sealed with its digest by the merge's last write, so a retry that finds its own
claim pending resumes it, and an older merge, retried late, still never lands over a newer one."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import boto3
import pytest
from lineage_intake import keys
from lineage_intake.errors import StorageUnavailable
from lineage_intake.merge import MergedRun
from lineage_intake.store.lineage import StoredRun
from lineage_intake.store.lineage_items import JOB_SK

from tests.helpers.dynamo_faults import ItemUpdates, lost_answer_after_update, throttle_transactions
from tests.helpers.pipeline import Pipeline, fresh_pipeline
from tests.helpers.runs import at, wide_run

NS, JOB = "team-r", "load_orders"
OLDER, NEWER = (f"0193a3c4-5b6d-7e8f-9a0b-1c2d3e4f5b0{i}" for i in (1, 2))
JOB_PK = keys.job_key(NS, JOB)
#: 30 outputs of 4 columns: 180 edge and column-edge writes, two transactions.
OUTPUTS, FIELDS = 30, 4
_prefixes = itertools.count()


def pipeline_of(session: boto3.Session) -> Pipeline:
    return fresh_pipeline(session, f"resume{next(_prefixes)}")


def run_of(run_id: str, start: float, fields: int = FIELDS) -> list[dict[str, Any]]:
    return wide_run(NS, JOB, run_id, outputs=OUTPUTS, fields=fields, start=start)


def clean_merge(session: boto3.Session, *runs: list[dict[str, Any]]) -> Pipeline:
    """A pipeline where nothing failed, the runs merged one after the other: the reference tables."""
    clean = pipeline_of(session)
    for events in runs:
        clean.send(*events)
    return clean


def failed_merge(pipeline: Pipeline, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Store the run's events and deliver their records, whose merge must fail as retriable; the records."""
    for event in events:
        pipeline.store(event)
    records = pipeline.filtered(pipeline.new_records())
    with pytest.raises(StorageUnavailable):
        pipeline.deliver(records)
    assert pipeline.outcomes[-1].status == "failed" and pipeline.outcomes[-1].retriable
    return records


def job_item(pipeline: Pipeline) -> dict[str, Any]:
    return pipeline.snapshot()[(JOB_PK, JOB_SK)]


@pytest.mark.parametrize("failing", ["first", "last"], ids=["first-transaction", "last-transaction"])
def test_the_retry_of_a_merge_that_failed_at_its_edge_transactions_leaves_the_tables_of_a_clean_merge(
    aws: boto3.Session, failing: str
) -> None:
    # Given a run merged on a clean pipeline, as the reference
    clean = clean_merge(aws, run_of(NEWER, 100))
    # And the same run on a pipeline where storage throttles its first (or its last, the one that seals the
    # job) edge transaction and every retry of it
    throttled = pipeline_of(aws)
    stop = throttle_transactions(throttled.dynamodb, after=0 if failing == "first" else 1)
    records = failed_merge(throttled, run_of(NEWER, 100))
    # Then the failed merge left the job's lineage claimed but pending: no digest, so it is not "unchanged"
    pending = job_item(throttled)
    assert pending["lineageVersion"] == job_item(clean)["lineageVersion"]
    assert "lineageDigest" not in pending
    # When storage recovers and the stream delivers the records again
    stop()
    (retried,) = throttled.deliver(records)[-1:]
    # Then the retry merges the run, and the Lineage table is the clean merge's, digest included
    assert retried.status == "merged" and retried.lineage_changed
    assert throttled.snapshot() == clean.snapshot()


def test_a_merge_that_crashed_right_after_claiming_the_job_is_completed_by_its_retry_without_a_second_claim(
    aws: boto3.Session,
) -> None:
    # Given a run merged on a clean pipeline, as the reference
    clean = clean_merge(aws, run_of(NEWER, 100))
    # And the same run on a pipeline where the job's claim lands but its answer is lost (a timeout, a crash)
    crashed = pipeline_of(aws)
    lost_answer_after_update(crashed.dynamodb, JOB_PK, JOB_SK)
    job_updates = ItemUpdates(crashed.dynamodb, JOB_PK, JOB_SK)
    records = failed_merge(crashed, run_of(NEWER, 100))
    # Then the claim is all the merge wrote of the job's lineage: no digest, no edge, no dataset
    assert "lineageDigest" not in job_item(crashed)
    assert crashed.lineage.job_edges(NS, JOB)["outputs"] == []
    assert crashed.lineage.get_dataset(NS, "out0") is None
    # When the stream delivers the records again
    (retried,) = crashed.deliver(records)[-1:]
    # Then the retry resumes the claim it finds (no second claim) and the tables are the clean merge's
    assert retried.status == "merged" and retried.lineage_changed
    assert len(job_updates.expressions) == 1
    assert crashed.snapshot() == clean.snapshot()


def test_an_older_run_retried_after_a_newer_run_merged_stays_history_as_if_merged_in_order(
    aws: boto3.Session,
) -> None:
    # Given two runs of a job merged in order on a clean pipeline, the older with one column more
    older, newer = run_of(OLDER, 0, fields=FIELDS + 1), run_of(NEWER, 100)
    clean = clean_merge(aws, older, newer)
    # And a pipeline where the older run's merge crashed right after claiming the job
    crashed = pipeline_of(aws)
    lost_answer_after_update(crashed.dynamodb, JOB_PK, JOB_SK)
    records = failed_merge(crashed, older)
    # And the newer run merged meanwhile, over the older run's pending claim
    (newer_outcome,) = crashed.send(*newer)[-1:]
    assert newer_outcome.status == "merged" and newer_outcome.latest_run
    # When the older run's records are delivered again
    (retried,) = crashed.deliver(records)[-1:]
    # Then the older run is history: the newer run's lineage, schemas and digest stay current
    assert retried.status == "merged" and retried.latest_run is False
    assert job_item(crashed)["lineageVersion"].split("#")[1] == NEWER
    # And the tables are those of the two runs merged in order, without failure, but for the dataset listing's
    # column names: the last merged run that reports them wins, by design (docs/read-api.md)
    assert merge_order_free(crashed.snapshot()) == merge_order_free(clean.snapshot())
    assert job_item(crashed)["lineageDigest"] == job_item(clean)["lineageDigest"]


def merge_order_free(snapshot: dict[tuple[str, str], dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """A snapshot without the dataset items' ``columnLineageFields``, which follow the last merged run."""
    return {k: {a: v for a, v in item.items() if a != "columnLineageFields"} for k, item in snapshot.items()}


def later_merge_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    """A RUNNING event of the run, between its START and COMPLETE, reporting one more output: its next merge
    reads one event more (a newer merge version) and changes the job's lineage."""
    running = copy.deepcopy(events[0])
    extra = copy.deepcopy(running["outputs"][0]) | {"name": "late_output"}
    return running | {"eventType": "RUNNING", "eventTime": at(105), "outputs": [*running["outputs"], extra]}


@pytest.mark.parametrize("stale_read", [False, True], ids=["fresh-read", "stale-read"])
def test_a_stale_retry_of_an_older_merge_of_a_run_never_lands_over_its_newer_merge(
    aws: boto3.Session, monkeypatch: pytest.MonkeyPatch, stale_read: bool
) -> None:
    # Given a run whose first merge crashed right after claiming the job; the merged run it was writing kept
    pipeline = pipeline_of(aws)
    tried: list[MergedRun] = []
    write_run = pipeline.lineage.write_run

    def keep(run: MergedRun, merged_at: str, stored: StoredRun | None = None) -> Any:
        tried.append(run)
        return write_run(run, merged_at, stored)

    monkeypatch.setattr(pipeline.lineage, "write_run", keep)
    lost_answer_after_update(pipeline.dynamodb, JOB_PK, JOB_SK)
    events = run_of(NEWER, 100)
    failed_merge(pipeline, events)
    older = tried[-1]
    # And a newer merge of the run (one event more, one output more) completed meanwhile
    (newer,) = pipeline.send(later_merge_of(events))[-1:]
    assert newer.status == "merged" and tried[-1].merge_version > older.merge_version
    after_newer = pipeline.snapshot()
    # When the older merge is written again, late, after a read of the run that saw nothing (stale) or all
    result = pipeline.lineage.write_run(older, "2026-11-21T20:00:00.000000Z", StoredRun() if stale_read else None)
    # Then it is superseded and writes nothing: the newer merge's run, job, edges and datasets stay
    assert result.superseded and result.written == 0
    assert pipeline.snapshot() == after_newer
    assert "late_output" in {o["dataset"]["name"] for o in pipeline.lineage.job_edges(NS, JOB)["outputs"]}
